"""Capturing an exception that escaped the application (excepthook, threads, tasks...)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tripwire.capture import capture_event
from tripwire.scope._current import get_current_scope

if TYPE_CHECKING:
    from tripwire.client import BaseClient
    from tripwire.types import ExcInfo


def capture_unhandled(client: BaseClient, exc_info: ExcInfo, mechanism: str) -> None:
    """Capture `exc_info` on `client` in the current scope, marked unhandled; never raises.

    The caller has checked that its integration is on; `mechanism` is its type
    (``{"type": mechanism, "handled": false}``), as sentry_sdk names them.
    """
    try:
        event, hint = client._event_from_exception(
            exc_info, mechanism={"type": mechanism, "handled": False}
        )
        capture_event(get_current_scope(), event, hint, None, {}, built_by_sdk=True)
    except Exception:  # reporting must never replace or mask the application's own error
        pass
