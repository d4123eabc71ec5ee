"""`Wake`: a wake-up flag for the SDK's threads whose setter never waits."""

from __future__ import annotations

import threading
from typing import Any, Callable, Optional


class Wake:
    """A flag a producer sets and one thread waits on; `set` is safe from a signal handler.

    `threading.Event.set` runs Python code under the event's own lock: a signal handler
    or a finalizer (`__del__`) that sets the same event while the code it interrupted
    on that thread is inside `set()` would wait for it forever. Here the flag is a plain
    lock held while "clear": `set` releases it (one C call, never blocking), `wait`
    acquires it (and leaves the flag set).
    """

    __slots__ = ("_lock",)

    def __init__(self, allocate_lock: Callable[[], Any] = threading.Lock) -> None:
        # `allocate_lock`: gevent's saved original, for a sampler that is an OS thread.
        self._lock = allocate_lock()
        self._lock.acquire()

    def set(self) -> None:
        try:
            self._lock.release()
        except RuntimeError:  # already set
            pass

    def is_set(self) -> bool:
        return not self._lock.locked()

    def clear(self) -> None:
        self._lock.acquire(False)

    def wait(self, timeout: Optional[float] = None) -> bool:
        """Wait until set (then it stays set); True if it was set."""
        limit = -1 if timeout is None else min(max(timeout, 0.0), threading.TIMEOUT_MAX)
        if self._lock.acquire(True, limit):
            self.set()
            return True
        return False
