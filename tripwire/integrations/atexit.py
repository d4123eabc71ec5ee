"""Flush queued events when the interpreter exits.

The handler closes the active client: it waits up to ``shutdown_timeout``
seconds for the queue to be sent (the worker thread is already running, which
matters on Python 3.12+ where no thread can be started during shutdown; if it is
not, delivery happens on the exiting thread), then stops the transport. With the
server unreachable it returns after ``shutdown_timeout`` at the latest.
"""

from __future__ import annotations

import atexit
import sys
from typing import Callable, Optional

from tripwire._log import logger
from tripwire.integrations import Integration
from tripwire.integrations._patch import on_undo
from tripwire.scope._current import get_client


def default_callback(pending: int, timeout: float) -> None:
    """Tell the user on stderr why exit is taking a moment (as sentry_sdk does)."""
    sys.stderr.write(f"tripwire is attempting to send {pending} pending events\n")
    sys.stderr.write(f"Waiting up to {timeout:g} seconds\n")
    sys.stderr.write("Press Ctrl-C to quit\n")
    sys.stderr.flush()


class AtexitIntegration(Integration):
    """Sends what is queued at interpreter exit, waiting at most ``shutdown_timeout``.

    Args:
        callback: Called with (pending, timeout) when the flush takes more than a
            moment; defaults to a note on stderr.
    """

    identifier = "atexit"

    def __init__(self, callback: Optional[Callable[[int, float], None]] = None) -> None:
        self.callback = callback if callback is not None else default_callback

    @staticmethod
    def setup_once() -> None:
        """Register the exit handler (once per process)."""
        atexit.register(_shutdown)
        on_undo(lambda: atexit.unregister(_shutdown))


def _shutdown() -> None:
    try:
        client = get_client()
        integration = client.get_integration(AtexitIntegration)
        if integration is None or not client.is_active():
            return
        logger.debug("interpreter exiting: flushing the queue")
        client.close(callback=integration.callback)
    except Exception:
        logger.debug("flush at exit failed", exc_info=True)
