"""`BackgroundWorker`: run callables one after another on a daemon thread;
`AsyncWorker`: run coroutine functions as tasks on the running event loop.

sentry_sdk's transports queue their sends on these, and custom transports written
for sentry_sdk do the same. tripwire's own transports have their own worker
(`tripwire.transport._worker`) and sender task (`tripwire.transport._async`); these
classes are for code that uses sentry_sdk's.
"""

from __future__ import annotations

import asyncio
import os
import queue
import threading
import time
from typing import Any, Callable, Optional

from tripwire._log import logger
from tripwire._threads import start_own
from tripwire.consts import DEFAULT_QUEUE_SIZE as DEFAULT_QUEUE_SIZE
from tripwire.transport._tasks import create_own_task, mark_sentry_task_internal

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
        # Never waits: if the lock is taken, another call is starting the thread (another
        # thread's, or the one a signal handler or a finalizer interrupted on this thread,
        # inside `Thread.start`); the jobs queued meanwhile are the new thread's.
        lock = self._lock
        if not lock.acquire(False):
            return
        try:
            if self.is_alive:
                return
            if self._thread_for_pid not in (None, os.getpid()):
                # A forked child: the parent's queue may hold a lock taken at fork time.
                self._queue = queue.Queue(self._queue.maxsize)
            thread = threading.Thread(
                target=self._target, name="tripwire.BackgroundWorker", daemon=True
            )
            start_own(thread)
            self._thread = thread
            self._thread_for_pid = os.getpid()
        finally:
            lock.release()

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
        # Not under `_lock`: the callback is user code, and a signal handler may flush
        # (or submit, which may start the thread) while this thread waits here.
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


class AsyncWorker(Worker):
    """Runs submitted coroutine functions as tasks on the event loop running at `start`.

    As sentry_sdk 2.75's: `submit(callback)` queues a callable returning an
    awaitable; each runs in its own task (so several may be out at once), marked
    as the SDK's own (`mark_sentry_task_internal`); `flush` returns a task to
    await (None outside the loop); `kill` cancels the consumer and the running
    jobs. Outside a running loop it cannot start, and `submit` refuses.

    Args:
        queue_size: Jobs that may wait; `submit` refuses more.
    """

    def __init__(self, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self._queue: Optional[asyncio.Queue[Any]] = None
        self._queue_size = queue_size
        self._task: Optional[asyncio.Task[None]] = None
        self._task_for_pid: Optional[int] = None
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        # Strong references: a task nobody holds may be collected while it runs.
        self._active_tasks: set[asyncio.Task[None]] = set()

    @property
    def is_alive(self) -> bool:
        """Whether the consumer task runs on a running loop, in this process."""
        if self._task_for_pid != os.getpid() or self._task is None or self._loop is None:
            return False
        return self._loop.is_running() and not self._task.done()

    def kill(self) -> None:
        """Cancel the consumer and every job still running; queued jobs are dropped."""
        task, self._task = self._task, None
        if task is None:
            return
        for job in [task, *self._active_tasks]:
            try:
                job.cancel()
            except RuntimeError:  # its loop is closed
                pass
        self._active_tasks.clear()
        self._loop = None
        self._task_for_pid = None

    def start(self) -> None:
        """Start the consumer on the running loop (a warning if there is none)."""
        if self.is_alive:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            logger.warning("No event loop running, async worker not started")
            self._loop = self._task = self._task_for_pid = None
            return
        self._loop = loop
        # A fresh queue: one from an earlier loop cannot be awaited on this one.
        self._queue = asyncio.Queue(maxsize=self._queue_size)
        # In a context of its own: the jobs it runs (sends) are no part of the scope of
        # whichever submit started it (see `create_own_task`).
        self._task = create_own_task(loop, self._target(self._queue))
        self._task_for_pid = os.getpid()

    def full(self) -> bool:
        """Whether `submit` would refuse a job now."""
        return self._queue is None or self._queue.full()

    def submit(self, callback: Callable[[], Any]) -> bool:
        """Queue `callback` (returning an awaitable); False if it cannot be queued."""
        if not self.is_alive:
            self.start()
        jobs = self._queue
        if jobs is None or not self.is_alive:
            return False
        try:
            jobs.put_nowait(callback)
        except asyncio.QueueFull:
            return False
        return True

    def flush(  # type: ignore[override]
        self, timeout: float, callback: Optional[Any] = None
    ) -> Optional[asyncio.Task[None]]:
        """A task that waits up to `timeout` seconds for the queued jobs (None if idle)."""
        loop = self._loop
        if not self.is_alive or timeout <= 0.0 or loop is None:
            return None
        with mark_sentry_task_internal():
            return loop.create_task(self._wait_flush(timeout, callback))

    async def _wait_flush(self, timeout: float, callback: Optional[Any]) -> None:
        jobs = self._queue
        if jobs is None:
            return
        first = min(0.1, timeout)
        try:
            await asyncio.wait_for(jobs.join(), first)
            return
        except asyncio.TimeoutError:
            pending = jobs.qsize() + len(self._active_tasks)
            if callback is not None:
                callback(pending, timeout)
        try:
            await asyncio.wait_for(jobs.join(), timeout - first)
        except asyncio.TimeoutError:
            pending = jobs.qsize() + len(self._active_tasks)
            logger.error("flush timed out, dropped %s events", pending)

    async def _target(self, jobs: asyncio.Queue[Any]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            callback = await jobs.get()
            if callback is _STOP:
                jobs.task_done()
                return
            # A task per job: several requests may be out at once.
            with mark_sentry_task_internal():
                task = loop.create_task(_await(callback))
            self._active_tasks.add(task)
            task.add_done_callback(lambda done: self._job_done(done, jobs))

    def _job_done(self, task: asyncio.Task[None], jobs: asyncio.Queue[Any]) -> None:
        # `jobs` as captured at dispatch: after kill() and start() it is not self._queue.
        try:
            if not task.cancelled() and task.exception() is not None:
                exc = task.exception()
                assert exc is not None
                logger.error("Failed processing job", exc_info=(type(exc), exc, exc.__traceback__))
        finally:
            jobs.task_done()
            self._active_tasks.discard(task)


async def _await(callback: Callable[[], Any]) -> None:
    await callback()


__all__ = [
    "DEFAULT_QUEUE_SIZE",
    "AsyncWorker",
    "BackgroundWorker",
    "FullError",
    "Queue",
    "Worker",
]
