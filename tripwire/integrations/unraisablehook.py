"""Unraisable exceptions (`__del__`, finalizers, callbacks Python cannot raise from).

As sentry_sdk 2.75's ``unraisablehook`` integration (not a default one): a hook
chained in front of `sys.unraisablehook` captures the exception at level ``error``
with mechanism ``{"type": "unraisablehook", "handled": false}``, then the hook that
was installed before runs as usual (Python's own prints it to stderr).
"""

from __future__ import annotations

import sys
from typing import Any

from tripwire.integrations import Integration
from tripwire.integrations._common.unhandled import capture_unhandled
from tripwire.scope._current import get_client


class UnraisablehookIntegration(Integration):
    """Captures exceptions that reach `sys.unraisablehook`."""

    identifier = "unraisablehook"

    @staticmethod
    def setup_once() -> None:
        """Chain a hook in front of the current `sys.unraisablehook` (undone by `testing.reset`)."""
        from tripwire.integrations._patch import patch

        previous = sys.unraisablehook

        def tripwire_unraisablehook(unraisable: Any) -> None:
            try:
                _capture(unraisable)
            finally:
                previous(unraisable)

        patch(sys, "unraisablehook", tripwire_unraisablehook)


def _capture(unraisable: Any) -> None:
    try:
        value = getattr(unraisable, "exc_value", None)
        if value is None:
            return
        client = get_client()
        if client.get_integration(UnraisablehookIntegration) is None:
            return
        traceback = getattr(unraisable, "exc_traceback", None)
        capture_unhandled(client, (type(value), value, traceback), "unraisablehook")
    except Exception:  # the hook must go on to the previous one whatever happens
        pass


__all__ = ["UnraisablehookIntegration"]
