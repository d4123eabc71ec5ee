"""`TimeoutThread` and `ServerlessTimeoutWarning`, public as `tripwire.utils` names.

As sentry_sdk 2.75's ``utils.TimeoutThread``: a serverless integration starts one
per invocation with the time left before the platform's timeout minus a margin;
unless `stop()` is called first, after `waiting_time` seconds it raises a
`ServerlessTimeoutWarning` ("... Configured timeout duration = N seconds.", N the
configured timeout rounded up). Given the invocation's isolation and current scopes,
it first captures that exception in them (mechanism
``{"type": "threading", "handled": false}``); either way the exception then escapes
`run()`, so `threading.excepthook` (and the threading integration) see it too.

Unlike sentry_sdk's, the thread is a daemon: one never stopped cannot hold up the
interpreter's exit.
"""

from __future__ import annotations

import math
import sys
import threading
from typing import TYPE_CHECKING, Optional

from tripwire.integrations._common.unhandled import capture_unhandled
from tripwire.scope._current import get_client, use_isolation_scope, use_scope

if TYPE_CHECKING:
    from tripwire.scope._scope import Scope


class ServerlessTimeoutWarning(Exception):
    """Raised when a serverless function is about to reach its timeout."""


class TimeoutThread(threading.Thread):
    """Raises a `ServerlessTimeoutWarning` after `waiting_time` seconds unless stopped.

    Args:
        waiting_time: Seconds to wait before warning.
        configured_timeout: The function's configured timeout in seconds (for the message).
        isolation_scope: With `current_scope`: capture the warning in these scopes.
        current_scope: See `isolation_scope`.
    """

    def __init__(
        self,
        waiting_time: float,
        configured_timeout: float,
        isolation_scope: Optional[Scope] = None,
        current_scope: Optional[Scope] = None,
    ) -> None:
        super().__init__(name="tripwire.TimeoutThread", daemon=True)
        self.waiting_time = waiting_time
        self.configured_timeout = configured_timeout
        self.isolation_scope = isolation_scope
        self.current_scope = current_scope
        self._stop_event = threading.Event()

    def stop(self) -> None:
        """Stop waiting: the thread ends without a warning (if it has not warned yet)."""
        self._stop_event.set()

    def run(self) -> None:
        """Wait, then raise the warning (captured first when scopes were given)."""
        if self._stop_event.wait(self.waiting_time):
            return
        warning = ServerlessTimeoutWarning(
            "WARNING : Function is expected to get timed out. "
            f"Configured timeout duration = {math.ceil(self.configured_timeout)} seconds."
        )
        if self.isolation_scope is not None and self.current_scope is not None:
            with use_isolation_scope(self.isolation_scope), use_scope(self.current_scope):
                try:
                    raise warning
                except ServerlessTimeoutWarning:
                    _capture()
                    raise
        raise warning


def _capture() -> None:
    try:
        capture_unhandled(get_client(), sys.exc_info(), "threading")
    except Exception:  # the warning itself must still be raised
        pass


# Public under tripwire.utils (as sentry_sdk.utils): reprs, pickling and event "module".
ServerlessTimeoutWarning.__module__ = "tripwire.utils"
TimeoutThread.__module__ = "tripwire.utils"

__all__ = ["ServerlessTimeoutWarning", "TimeoutThread"]
