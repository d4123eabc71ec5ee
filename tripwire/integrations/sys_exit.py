"""`sys.exit()`: an exit with a failure status is reported before the process goes down.

As sentry_sdk 2.75's ``sys_exit`` integration (not a default one): `sys.exit` is
wrapped; when the `SystemExit` it raises carries a status other than ``None`` or
``0`` (or any status, with ``capture_successful_exits=True``) it is captured at level
``error`` with mechanism ``{"type": "sys_exit", "handled": false}``, then re-raised
unchanged. A `SystemExit` raised directly, or a `sys.exit` imported by name before
the SDK was set up, is not seen.
"""

from __future__ import annotations

import sys
from typing import Any

from tripwire.integrations import Integration
from tripwire.integrations._common.unhandled import capture_unhandled
from tripwire.scope._current import get_client

_MARK = "__tripwire_sys_exit__"


class SysExitIntegration(Integration):
    """Captures `sys.exit()` calls with a failure status.

    Args:
        capture_successful_exits: Also capture ``sys.exit()``, ``sys.exit(0)``.
    """

    identifier = "sys_exit"

    def __init__(self, *, capture_successful_exits: bool = False) -> None:
        self.capture_successful_exits = capture_successful_exits

    @staticmethod
    def setup_once() -> None:
        """Wrap `sys.exit` (undone by `tripwire.testing.reset`)."""
        from tripwire.integrations._patch import patch

        original = sys.exit
        if getattr(original, _MARK, False):
            return

        def exit(status: Any = None, /) -> Any:
            try:
                original(status)
            except SystemExit as exc:
                _capture(exc)
                raise

        setattr(exit, _MARK, True)
        exit.__doc__ = original.__doc__
        patch(sys, "exit", exit)


def _successful(code: Any) -> bool:
    return code is None or (isinstance(code, int) and code == 0)


def _capture(exc: SystemExit) -> None:
    try:
        client = get_client()
        integration = client.get_integration(SysExitIntegration)
        if integration is None:
            return
        if not integration.capture_successful_exits and _successful(exc.code):
            return
        capture_unhandled(client, (type(exc), exc, exc.__traceback__), "sys_exit")
    except Exception:  # the exit goes ahead whatever happens here
        pass


__all__ = ["SysExitIntegration"]
