"""Backpressure: halve the trace sample rate while the transport is unhealthy.

As sentry_sdk.monitor: `Monitor(transport, interval=10)` checks the transport's
health every `interval` seconds from its own thread (started on first use). Each
unhealthy check raises `downsample_factor` by one (up to 10); the trace sampler
divides its rate by ``2 ** downsample_factor``. A healthy check resets it to 0.
The transport is unhealthy while it is rate-limited or its queue is full.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING, Optional

from tripwire._log import logger
from tripwire._threads import start_own

if TYPE_CHECKING:
    from tripwire.transport import Transport

MAX_DOWNSAMPLE_FACTOR = 10

# This process's id, kept current by a fork hook: `downsample_factor` is read for
# every transaction, and an `os.getpid()` call each time is measurable there.
_pid = os.getpid()


def _after_fork_in_child() -> None:
    global _pid
    _pid = os.getpid()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


class Monitor:
    """Periodic transport health check driving the downsample factor.

    Args:
        transport: The transport whose `is_healthy()` is polled.
        interval: Seconds between checks.
    """

    name = "tripwire.monitor"

    def __init__(self, transport: Transport, interval: float = 10) -> None:
        self.transport = transport
        self.interval = interval
        self._healthy = True
        self._downsample_factor = 0
        self._running = True
        self._thread: Optional[threading.Thread] = None
        self._thread_for_pid: Optional[int] = None
        self._thread_lock = threading.Lock()
        self._stop = threading.Event()

    def _ensure_running(self) -> None:
        # A forked child inherits the object but not the thread: start one per pid.
        pid = _pid
        if self._thread_for_pid == pid or not self._running:
            return
        # Never waits: if the lock is taken, another call is starting the thread (another
        # thread's, or the one a signal handler or a finalizer interrupted on this thread,
        # inside `Thread.start`); until it has, the factor stays 0.
        lock = self._thread_lock
        if not lock.acquire(False):
            return
        try:
            if self._thread_for_pid == pid or not self._running:
                return
            if self._thread_for_pid is not None:
                self._stop = threading.Event()  # the parent's may be in any state
            thread = threading.Thread(target=self.run, name=self.name, daemon=True)
            try:
                start_own(thread)
            except RuntimeError:
                self._running = False  # interpreter shutting down
                return
            self._thread = thread
            self._thread_for_pid = pid
        finally:
            lock.release()

    def run(self) -> None:
        """The thread body: check, adjust, wait `interval`, until `kill()`."""
        stop = self._stop
        while not stop.wait(self.interval):
            if not self._running:
                break
            self.check_health()
            self.set_downsample_factor()

    def set_downsample_factor(self) -> None:
        """Raise the factor after an unhealthy check, reset it after a healthy one."""
        if self._healthy:
            if self._downsample_factor > 0:
                logger.debug("transport healthy again: trace sampling back to normal")
            self._downsample_factor = 0
        else:
            if self._downsample_factor < MAX_DOWNSAMPLE_FACTOR:
                self._downsample_factor += 1
            logger.debug(
                "transport unhealthy: trace sampling divided by %d", 2**self._downsample_factor
            )

    def check_health(self) -> None:
        """Poll the transport now."""
        try:
            self._healthy = bool(self.transport.is_healthy())
        except Exception:
            logger.debug("transport health check failed", exc_info=True)
            self._healthy = True

    def is_healthy(self) -> bool:
        """The result of the last check (True before the first one)."""
        self._ensure_running()
        return self._healthy

    @property
    def downsample_factor(self) -> int:
        """Trace sample rates are divided by ``2 ** downsample_factor``."""
        self._ensure_running()
        return self._downsample_factor

    def kill(self) -> None:
        """Stop the thread."""
        self._running = False
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(1.0)
