"""The SDK's own logger and the re-entrancy guard around user code.

The logger is silent unless `debug=True`. While the SDK runs user hooks
(before_send, processors, `__repr__`), `suppressed()` is set so that logging
integrations ignore records produced there instead of capturing them again.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import logging

LOGGER_NAME = "tripwire.errors"


class _LazyLogger:
    """The "tripwire.errors" logger, created on first use: `import tripwire` skips `logging`."""

    __slots__ = ("_logger",)
    name = LOGGER_NAME

    def __init__(self) -> None:
        self._logger: logging.Logger | None = None

    def get(self) -> logging.Logger:
        """The real logger."""
        if self._logger is None:
            import logging  # lazy: no logging at `import tripwire` (pinned)

            real = logging.getLogger(LOGGER_NAME)
            real.addHandler(logging.NullHandler())
            self._logger = real
        return self._logger

    def debug(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self.get().debug(msg, *args, **kwargs)

    def info(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self.get().info(msg, *args, **kwargs)

    def warning(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self.get().warning(msg, *args, **kwargs)

    def error(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self.get().error(msg, *args, **kwargs)

    def exception(self, msg: str, *args: Any, **kwargs: Any) -> None:
        self.get().exception(msg, *args, **kwargs)

    def isEnabledFor(self, level: int) -> bool:
        return self.get().isEnabledFor(level)


logger = _LazyLogger()

_state = threading.local()
_debug_handler: Any = None


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
    """Send SDK debug output to stderr when `enabled` (debug=True), else stay silent.

    Called by `init()`: the real logger (and `logging`) is bound here, never on the
    capture path, where a lazy import can be interrupted by a signal handler that
    captures too and then finds `logging` half imported.
    """
    global _debug_handler
    import logging  # lazy: no logging at `import tripwire` (pinned)

    real = logger.get()
    if not enabled and _debug_handler is None:
        return
    if enabled and _debug_handler is None:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter(" [tripwire] %(levelname)s: %(message)s"))
        real.addHandler(handler)
        real.setLevel(logging.DEBUG)
        _debug_handler = handler
    elif not enabled and _debug_handler is not None:
        real.removeHandler(_debug_handler)
        real.setLevel(logging.NOTSET)
        _debug_handler = None
