"""Uncaught exceptions: a chained `sys.excepthook` captures them before Python reports them.

As sentry_sdk 2.x, the exception is captured at level ``error`` with mechanism
``{"type": "excepthook", "handled": false}``, then the hook that was installed
before (Python's own, by default) runs as usual. In an interactive session
(``sys.ps1`` set) nothing is captured unless ``always_run=True``: a typo at the
prompt is not an incident.
"""

from __future__ import annotations

import sys
from types import TracebackType

from tripwire.integrations import Integration
from tripwire.integrations._common.unhandled import capture_unhandled
from tripwire.scope._current import get_client


class ExcepthookIntegration(Integration):
    """Captures exceptions that reach `sys.excepthook`.

    Args:
        always_run: Capture in interactive sessions too.
    """

    identifier = "excepthook"

    def __init__(self, always_run: bool = False) -> None:
        if not isinstance(always_run, bool):
            raise ValueError(f"always_run must be a bool, got {always_run!r}")
        self.always_run = always_run

    @staticmethod
    def setup_once() -> None:
        """Chain a hook in front of the current `sys.excepthook` (undone by `testing.reset`)."""
        from tripwire.integrations._patch import patch

        previous = sys.excepthook

        def tripwire_excepthook(
            exc_type: type[BaseException],
            value: BaseException,
            traceback: TracebackType | None,
        ) -> None:
            try:
                _capture(exc_type, value, traceback)
            finally:
                previous(exc_type, value, traceback)

        patch(sys, "excepthook", tripwire_excepthook)


def _capture(
    exc_type: type[BaseException], value: BaseException, traceback: TracebackType | None
) -> None:
    try:
        client = get_client()
        integration = client.get_integration(ExcepthookIntegration)
        if integration is None:
            return
        if not integration.always_run and hasattr(sys, "ps1"):
            return
        capture_unhandled(client, (exc_type, value, traceback), "excepthook")
    except Exception:  # the process is going down anyway: never mask the real error
        pass


__all__ = ["ExcepthookIntegration"]
