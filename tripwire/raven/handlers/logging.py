"""raven's logging handler (`raven.handlers.logging.SentryHandler`).

Every record the handler receives becomes an event: a message event with the
record's template and arguments, or an exception event when it carries
``exc_info``. The record's attributes (``pathname``, ``lineno``, ``threadName``,
fields passed with ``extra=``) go into ``extra``; ``extra={"tags": {...}}``,
``"data"``, ``"stack"``, ``"fingerprint"``, ``"culprit"``, ``"user"`` and
``"server_name"`` have their raven meanings.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Optional

from tripwire._log import logger as _sdk_logger
from tripwire._log import suppressed

# Record attributes that are not sent as extra (they are the event itself).
RESERVED = frozenset(
    (
        "stack",
        "name",
        "module",
        "funcName",
        "args",
        "msg",
        "levelno",
        "exc_text",
        "exc_info",
        "data",
        "created",
        "levelname",
        "msecs",
        "relativeCreated",
        "tags",
        "message",
    )
)
# Extra keys that set event fields instead of extra data.
CONTEXTUAL = frozenset(("server_name", "user", "fingerprint", "culprit"))
# Attributes every record has (pathname, lineno, threadName, ...), as opposed to `extra=`.
_STANDARD = frozenset((*vars(logging.LogRecord("", 0, "", 0, "", (), None)), "taskName"))
# Loggers whose records are never sent (the SDKs' own: sending could loop).
_OWN_LOGGERS = ("sentry.errors", "raven", "tripwire")


def extract_extra(
    record: logging.LogRecord,
    reserved: frozenset[str] = RESERVED,
    contextual: frozenset[str] = CONTEXTUAL,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a record's attributes into (extra, event fields).

    The fields passed with ``extra=`` come first in the extra dict, then the standard
    attributes (``pathname``, ``lineno``, ...): the server keeps only the first keys
    of a large extra dict, and the caller's own data matters most.
    """
    extra: dict[str, Any] = {}
    standard: dict[str, Any] = {}
    fields: dict[str, Any] = {}
    for key, value in vars(record).items():
        if key in reserved or key.startswith("_"):
            continue
        if key in contextual:
            fields[key] = value
        elif key in _STANDARD:
            standard[key] = value
        else:
            extra[key] = value
    extra.update(standard)
    return extra, fields


def _is_client(value: Any) -> bool:
    return callable(getattr(value, "capture", None)) and callable(
        getattr(value, "captureException", None)
    )


def _call_site() -> Any:
    """The frame that called into `logging` (for ``extra={"stack": True}``)."""
    frame: Any = sys._getframe(1)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if not (
            isinstance(module, str)
            and (module == "logging" or module.startswith(("logging.", "tripwire.")))
        ):
            return frame
        frame = frame.f_back
    return None


class SentryHandler(logging.Handler):
    """A logging handler that sends records to a raven `Client`.

    ``SentryHandler(client)``, ``SentryHandler(client=client)``, or
    ``SentryHandler("https://key@host/1", **client_options)`` (builds a client, of
    ``client_cls`` if given).

    Args:
        level: The handler's level (default NOTSET).
        tags: Tags added to every event of this handler.

    Raises:
        ValueError: The first argument is neither a client nor a DSN.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        client = kwargs.pop("client", None)
        client_cls = kwargs.pop("client_cls", None)
        level = kwargs.pop("level", logging.NOTSET)
        tags = kwargs.pop("tags", None)
        if client is None:
            if args and _is_client(args[0]):
                client = args[0]
            elif args and args[0] is not None and not isinstance(args[0], str):
                raise ValueError(
                    "The first argument to SentryHandler must be either a Client instance "
                    f"or a DSN, got {args[0]!r} instead."
                )
            else:
                if client_cls is None:
                    from tripwire.raven.base import Client

                    client_cls = Client
                client = client_cls(*args, **kwargs)
        super().__init__(level=level)
        self.client = client
        self.tags: dict[str, Any] = dict(tags) if isinstance(tags, dict) else {}

    def can_record(self, record: logging.LogRecord) -> bool:
        """False for the SDKs' own loggers."""
        name = record.name
        return not any(name == own or name.startswith(own + ".") for own in _OWN_LOGGERS)

    def emit(self, record: logging.LogRecord) -> None:
        """Send `record` (never raises: the application's logging must go on)."""
        try:
            if suppressed() or not self.can_record(record):
                return
            self._emit(record)
        except Exception:
            _sdk_logger.debug("SentryHandler failed to send a record", exc_info=True)

    def _emit(self, record: logging.LogRecord, **kwargs: Any) -> Optional[str]:
        data: dict[str, Any] = {}
        raw = getattr(record, "data", None)
        # raven: a dict `data` extends extra, anything else is sent as extra["data"].
        extra = dict(raw) if isinstance(raw, dict) else ({"data": raw} if raw else {})
        more, fields = extract_extra(record)
        extra.update(more)
        data.update(fields)

        stack = getattr(record, "stack", None)
        if stack is True:
            stack = _call_site()

        tags = dict(self.tags)
        record_tags = getattr(record, "tags", None)
        if isinstance(record_tags, dict):
            tags.update(record_tags)

        msg = record.msg
        template = msg if isinstance(msg, str) else repr(msg)
        try:
            formatted = record.getMessage()
        except Exception:
            formatted = template
        params: Any = record.args
        if isinstance(params, tuple):
            params = list(params)
        data["level"] = record.levelno
        data["logger"] = record.name
        logentry: dict[str, Any] = {"message": template, "formatted": formatted}
        if params:
            logentry["params"] = params
        data["logentry"] = logentry

        handler_kwargs: dict[str, Any]
        exc_info = record.exc_info
        if exc_info and exc_info[0] is not None and exc_info[1] is not None:
            if self.client.skip_error_for_logging(exc_info):
                return None
            event_type = "raven.events.Exception"
            handler_kwargs = {"exc_info": exc_info}
        else:
            event_type = "raven.events.Message"
            handler_kwargs = {"message": template, "params": params, "formatted": formatted}
        handler_kwargs.update(kwargs)
        result: Optional[str] = self.client.capture(
            event_type,
            data=data,
            extra=extra,
            stack=stack,
            tags=tags,
            date=record.created,
            **handler_kwargs,
        )
        return result


__all__ = ["SentryHandler", "extract_extra"]
