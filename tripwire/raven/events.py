"""Event types of raven 6.x (`raven.events`): what `Client.capture(event_type)` builds.

A handler is built with the client; ``capture(**kwargs)`` returns the event data
specific to its type, in the modern protocol shape. `Client.build_msg` adds the rest.
"""

from __future__ import annotations

import builtins
from typing import TYPE_CHECKING, Any, Optional

from tripwire.raven._event import format_message, resolve_exc_info

if TYPE_CHECKING:
    from tripwire.raven.base import Client


class BaseEvent:
    """Base class of event handlers."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def capture(self, **kwargs: Any) -> dict[str, Any]:
        """The event data of this type built from the capture arguments."""
        return {}

    def to_string(self, data: dict[str, Any]) -> str:
        """A one-line description of an event built by this handler."""
        logentry = data.get("logentry")
        if isinstance(logentry, dict):
            return str(logentry.get("formatted") or logentry.get("message") or "")
        return str(data.get("message") or "")


class ExceptionEvent(BaseEvent):
    """An exception with its chain and stack frames (raven's ``events.Exception``)."""

    name = "exception"

    def capture(
        self,
        exc_info: Any = None,
        mechanism: Optional[dict[str, Any]] = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Build ``exception`` from `exc_info` (the exception being handled when None).

        Raises:
            ValueError: There is no exception to capture.
        """
        resolved = resolve_exc_info(exc_info)
        if resolved is None:
            raise ValueError("no exception to capture")
        event, _hint = self.client.tripwire_client._event_from_exception(resolved, mechanism)
        return {"exception": event["exception"]}

    def to_string(self, data: dict[str, Any]) -> str:
        """``"Type: value"`` of the outermost exception."""
        try:
            last = data["exception"]["values"][-1]
            return f"{last.get('type')}: {last.get('value')}"
        except (KeyError, IndexError, TypeError, AttributeError):
            return super().to_string(data)


class MessageEvent(BaseEvent):
    """A message, optionally a %-template with `params` (raven's ``events.Message``)."""

    name = "sentry.interfaces.Message"

    def capture(
        self,
        message: Any = None,
        params: Any = (),
        formatted: Optional[str] = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        """Build ``message``, or ``logentry`` when there are parameters."""
        text = message if isinstance(message, str) else _safe_str(message)
        if params:
            values = params if isinstance(params, dict) else list(params)
            return {
                "logentry": {
                    "message": text,
                    "params": values,
                    "formatted": formatted or format_message(text, params),
                }
            }
        if formatted and formatted != text:
            return {"logentry": {"message": text, "formatted": formatted}}
        return {"message": text}


class QueryEvent(BaseEvent):
    """A database query (raven's ``events.Query``): the statement is the message."""

    name = "sentry.interfaces.Query"

    def capture(self, query: Any = None, engine: Any = None, **kwargs: Any) -> dict[str, Any]:
        """Build ``message`` and a ``query`` context."""
        text = query if isinstance(query, str) else _safe_str(query)
        context: dict[str, Any] = {"query": text}
        if engine is not None:
            context["engine"] = engine if isinstance(engine, str) else _safe_str(engine)
        return {"message": text, "contexts": {"query": context}}


def _safe_str(value: object) -> str:
    try:
        return str(value)
    except builtins.Exception:
        return "<unprintable>"


# raven's names (they shadow builtins inside raven.events, hence the aliases last).
Message = MessageEvent
Query = QueryEvent
Exception = ExceptionEvent

__all__ = ["BaseEvent", "Exception", "Message", "Query"]
