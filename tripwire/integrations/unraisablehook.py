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
from tripwire.scope._current import get_client, get_current_scope


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
        event, hint = client._event_from_exception(
            (type(value), value, getattr(unraisable, "exc_traceback", None)),
            mechanism={"type": "unraisablehook", "handled": False},
        )
        from tripwire.scope._capture import capture_event

        capture_event(get_current_scope(), event, hint, None, {}, built_by_sdk=True)
    except Exception:  # the hook must go on to the previous one whatever happens
        pass


__all__ = ["UnraisablehookIntegration"]
