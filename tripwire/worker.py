"""`BackgroundWorker`: run callables one after another on a daemon thread.

sentry_sdk's transports queue their sends on it, and custom transports written for
sentry_sdk do the same. tripwire's own transport has its own worker
(`tripwire.transport._worker`); this class is for code that uses sentry_sdk's.
"""

from __future__ import annotations

import os
import queue
import threading
import time
from typing import Any, Callable, Optional

from tripwire._log import logger
from tripwire.consts import DEFAULT_QUEUE_SIZE as DEFAULT_QUEUE_SIZE

FullError = queue.Full
Queue = queue.Queue

_STOP = object()


class Worker:
    """What a worker offers: submit jobs, flush them, stop."""

    @property
    def is_alive(self) -> bool:
        """Whether the worker is running."""
        raise NotImplementedError

    def kill(self) -> None:
        """Stop after the job being run; jobs still queued are dropped."""
        raise NotImplementedError

    def flush(self, timeout: float, callback: Optional[Any] = None) -> None:
        """Wait up to `timeout` seconds for queued jobs to finish."""
        raise NotImplementedError

    def full(self) -> bool:
        """Whether the queue is full (`submit` would refuse)."""
        raise NotImplementedError

    def submit(self, callback: Callable[[], Any]) -> bool:
        """Queue `callback`; False if the queue is full."""
        raise NotImplementedError


class BackgroundWorker(Worker):
    """Runs submitted callables in order on a daemon thread started on first use.

    A job's exception is logged and the next job runs. After a fork the child starts
    its own thread on its next `submit`.

    Args:
        queue_size: Jobs that may wait; `submit` refuses more.
    """

    def __init__(self, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self._queue: queue.Queue[Any] = queue.Queue(queue_size)
        self._lock = threading.Lock()
        self._thread: Optional[threading.Thread] = None
        self._thread_for_pid: Optional[int] = None

    @property
    def is_alive(self) -> bool:
        """Whether this process has a running worker thread."""
        if self._thread_for_pid != os.getpid():
            return False
        return self._thread is not None and self._thread.is_alive()

    def _ensure_thread(self) -> None:
        if not self.is_alive:
            self.start()

    def start(self) -> None:
        """Start the thread (again, after `kill` or in a forked child)."""
        with self._lock:
            if self.is_alive:
                return
            if self._thread_for_pid not in (None, os.getpid()):
                # A forked child: the parent's queue may hold a lock taken at fork time.
                self._queue = queue.Queue(self._queue.maxsize)
            thread = threading.Thread(
                target=self._target, name="tripwire.BackgroundWorker", daemon=True
            )
            thread.start()
            self._thread = thread
            self._thread_for_pid = os.getpid()

    def kill(self) -> None:
        """Stop the thread after its current job, without waiting for it."""
        with self._lock:
            if self._thread is None:
                return
            try:
                self._queue.put_nowait(_STOP)
            except queue.Full:
                logger.debug("background worker queue full, kill request ignored")
            self._thread = None
            self._thread_for_pid = None

    def flush(self, timeout: float, callback: Optional[Any] = None) -> None:
        """Wait up to `timeout` seconds for the queue to drain.

        If jobs are still pending after a short wait, ``callback(pending, timeout)`` is
        called (sentry_sdk's flush callback) before waiting for the rest.
        """
        with self._lock:
            if not self.is_alive or timeout <= 0.0:
                return
            first = min(0.1, timeout)
            if self._join(first):
                return
            pending = self._queue.qsize() + 1
            if callback is not None:
                callback(pending, timeout)
            if not self._join(timeout - first):
                logger.error("flush timed out, dropped %s events", self._queue.qsize() + 1)

    def _join(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        jobs = self._queue
        with jobs.all_tasks_done:
            while jobs.unfinished_tasks:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                jobs.all_tasks_done.wait(left)
        return True

    def full(self) -> bool:
        """Whether `submit` would refuse a job now."""
        return self._queue.full()

    def submit(self, callback: Callable[[], Any]) -> bool:
        """Queue `callback` to run on the worker thread; False if the queue is full."""
        self._ensure_thread()
        try:
            self._queue.put_nowait(callback)
        except queue.Full:
            return False
        return True

    def _target(self) -> None:
        jobs = self._queue
        while True:
            job = jobs.get()
            try:
                if job is _STOP:
                    return
                try:
                    job()
                except Exception:
                    logger.error("Failed processing job", exc_info=True)
            finally:
                jobs.task_done()


__all__ = ["DEFAULT_QUEUE_SIZE", "BackgroundWorker", "FullError", "Queue", "Worker"]
