"""Drops an event for an exception object that was already captured."""

from __future__ import annotations

from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from tripwire.integrations import Integration
from tripwire.integrations._processors import add_internal_processor
from tripwire.scope._current import capturing_client

if TYPE_CHECKING:
    from tripwire.types import EventDict, Hint

# A weak reference would be nicer, but not every exception type supports one.
_last_seen: ContextVar[Any] = ContextVar("tripwire_dedupe_last_seen", default=None)


class DedupeIntegration(Integration):
    """The same exception object captured twice (say, by a framework and by hand) is sent once."""

    identifier = "dedupe"

    @staticmethod
    def setup_once() -> None:
        """Register the processor."""

        def dedupe(event: EventDict, hint: Hint) -> EventDict | None:
            exc_info = hint.get("exc_info") if hint else None
            if exc_info is None or capturing_client().get_integration(DedupeIntegration) is None:
                return event
            exc = exc_info[1]
            if exc is not None and _last_seen.get() is exc:
                return None
            _last_seen.set(exc)
            return event

        add_internal_processor(dedupe)

    @staticmethod
    def reset_last_seen() -> None:
        """Forget the last exception seen (sentry_sdk's API)."""
        _last_seen.set(None)
