"""The SDK's own logger and the re-entrancy guard around user code.

The logger is silent unless `debug=True`. While the SDK runs user hooks
(before_send, processors, `__repr__`), `suppressed()` is set so that logging
integrations ignore records produced there instead of capturing them again.
"""

from __future__ import annotations

import logging
import threading

logger = logging.getLogger("tripwire.errors")
logger.addHandler(logging.NullHandler())

_state = threading.local()
_debug_handler: logging.Handler | None = None


def suppressed() -> bool:
    """True while the SDK itself is working on this thread (used to stop recursion)."""
    return getattr(_state, "depth", 0) > 0


class Suppress:
    """Marks the current thread as inside the SDK for the duration of a `with` block."""

    __slots__ = ()

    def __enter__(self) -> None:
        _state.depth = getattr(_state, "depth", 0) + 1

    def __exit__(self, *exc: object) -> None:
        _state.depth -= 1


suppress = Suppress()


def configure_debug(enabled: bool) -> None:
    """Send SDK debug output to stderr when `enabled` (debug=True), else stay silent."""
    global _debug_handler
    if enabled and _debug_handler is None:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(" [tripwire] %(levelname)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.DEBUG)
        _debug_handler = handler
    elif not enabled and _debug_handler is not None:
        logger.removeHandler(_debug_handler)
        logger.setLevel(logging.NOTSET)
        _debug_handler = None
