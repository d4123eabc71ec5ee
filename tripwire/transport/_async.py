"""`AsyncHttpTransport`: envelopes sent from the application's event loop.

As sentry_sdk 2.75's (``_experiments={"transport_async": True}``, chosen by
`make_transport` when ``init()`` runs inside an event loop with the asyncio
integration listed): `capture_envelope` queues and returns; one sender task, the
SDK's own (`mark_sentry_task_internal`: the asyncio integration leaves it alone),
encodes and POSTs one envelope after another on a kept-alive asyncio connection
(`_aio`); `flush()` called on the loop returns a task to await, `kill()` stops.
The policy is the sync transport's, object for object: the same `_HttpDelivery`
(rate limits, client reports, size limits, retry, backoff, spool), only the
request is awaited. Up to `LANES` requests are out at once, each on its own
kept-alive connection (sentry_sdk's runs a task per envelope); envelopes holding
sessions or check-ins (`Entry.ordered`) never overlap another, as in the sync
worker.

Where it does better than sentry_sdk's: nothing queued is lost when the loop goes
away. sentry_sdk drops what is captured once its loop stopped, and what its tasks
held when `asyncio.run()` cancelled them. Here the sender task hands what it holds
to the sync transport's worker thread when it is cancelled by a closing loop, and
a capture, `flush()` or `close()` with no loop running does the same; the thread
delivers it with the same policy (`flush()` waits for it, as the asyncio
integration's `loop.close()` and the exit do). Proxies and the urllib3 path are
sent through the sync client in the loop's executor.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any, Callable, Optional

from tripwire._log import logger, suppress
from tripwire.outcomes import DropReason
from tripwire.transport._aio import AsyncConnection
from tripwire.transport._http11 import NetworkError
from tripwire.transport._http_transport import HttpTransport
from tripwire.transport._policy import Entry
from tripwire.transport._tasks import create_own_task, mark_sentry_task_internal
from tripwire.transport._worker import park_or_lose

if TYPE_CHECKING:
    from tripwire.envelope import Envelope
    from tripwire.transport._http11 import Response

# How long flush() waits before telling its callback what is pending (as the sync one).
_FIRST_WAIT = 0.1
# Requests out at once, one connection each: a server far away is waited for in
# parallel, not once per envelope.
LANES = 4

_running_loop = asyncio._get_running_loop


def running_loop() -> Optional[asyncio.AbstractEventLoop]:
    """The event loop running on this thread, or None."""
    return _running_loop()


class AsyncHttpTransport(HttpTransport):
    """Sends envelopes from the event loop running when it was made.

    Raises:
        RuntimeError: no event loop is running (as sentry_sdk 2.75).
    """

    is_async = True

    def __init__(self, options: dict[str, Any]) -> None:
        # Needs the running loop at init, as sentry_sdk's (RuntimeError otherwise).
        self.loop = asyncio.get_running_loop()
        super().__init__(options)
        # `self._worker` (the sync transport's thread worker) stays unstarted until the
        # loop goes away and it takes over.
        self._intake: deque[Envelope] = deque()
        self._queue_size = max(int(options.get("transport_queue_size") or 0), 0)
        # Encoded entries waiting for a lane (a retry goes back to the front).
        self._waiting: deque[Entry] = deque()
        self._retry_at = 0.0
        self._inflight: dict[asyncio.Task[None], Entry] = {}
        self._task: Optional[asyncio.Task[None]] = None
        # Set while the sender task waits for work (or does not exist); `_wake` wakes it.
        self._idle = asyncio.Event()
        self._idle.set()
        self._wake = asyncio.Event()
        self._report_wanted = False
        self._killed = False
        http = self._delivery.http
        experiments = options.get("_experiments") or {}
        # Otherwise (proxies, urllib3) requests go through the sync client in the
        # loop's executor.
        self._direct = (
            http.pool is None
            and http.make_backend is None
            and http.proxy_url() is None
            and experiments.get("http_client") != "urllib3"
        )
        self._lanes = 1 if experiments.get("transport_connections") == 1 else LANES
        self._conns: list[AsyncConnection] = []  # every connection made
        self._free: list[AsyncConnection] = []  # those no request is using

    # -- the Transport interface -----------------------------------------------------------

    def capture_envelope(self, envelope: Envelope) -> None:
        """Queue `envelope`; the sender task sends it. Never waits for the network."""
        if self._killed:
            return
        loop = self.loop
        if not loop.is_running():
            # No loop to send from: the worker thread sends it, with the same policy.
            self._handoff()
            self._worker.submit(envelope)
            return
        intake = self._intake
        size = self._queue_size
        if size and len(intake) >= size:
            self._delivery.lost_envelope(envelope, DropReason.QUEUE_OVERFLOW)
            return
        intake.append(envelope)  # a deque append: safe from any thread
        if _running_loop() is loop:
            self._kick()
            return
        try:
            loop.call_soon_threadsafe(self._kick)
        except RuntimeError:  # the loop closed meanwhile
            self._handoff()

    def flush(  # type: ignore[override]
        self, timeout: float, callback: Optional[Callable[[int, float], None]] = None
    ) -> Optional[asyncio.Task[None]]:
        """Send what is queued, then the client report.

        On the loop's thread, returns a task to await (as sentry_sdk's; None if
        `timeout` is 0); elsewhere, or with the loop gone, waits up to `timeout`.
        """
        loop = self.loop
        if self._killed:
            return None
        if loop.is_running() and _running_loop() is loop:
            if timeout <= 0:
                return None
            with mark_sentry_task_internal():
                return loop.create_task(self._flush(timeout, callback))
        self.flush_sync(timeout, callback)
        return None

    def flush_sync(
        self, timeout: float, callback: Optional[Callable[[int, float], None]] = None
    ) -> None:
        """Wait up to `timeout` seconds for what is queued to be sent, from any thread.

        With the loop running on another thread, its sender task does the work; on
        the loop's own thread (a sync `close()` there) or with no loop running, the
        worker thread takes over what is queued.
        """
        loop = self.loop
        if loop.is_running() and _running_loop() is not loop:
            done = threading.Event()

            def start() -> None:
                with mark_sentry_task_internal():
                    task = loop.create_task(self._flush(timeout, callback))
                task.add_done_callback(lambda _task: done.set())

            try:
                loop.call_soon_threadsafe(start)
            except RuntimeError:
                pass  # closed meanwhile: the worker thread below
            else:
                if done.wait(timeout) or loop.is_running():
                    return
        self._handoff()
        self._worker.flush(timeout, callback)

    def kill(self) -> None:
        """Stop sending. What is still queued is spooled (if enabled) or counted as lost."""
        self._killed = True
        tasks = [self._task, *self._inflight]
        self._task = None
        for task in tasks:
            if task is not None and not task.done():
                try:
                    task.cancel()
                except RuntimeError:  # its loop is closed: the task will never run again
                    pass
        leftovers: list[Any] = [*self._inflight.values(), *self._waiting, *self._intake]
        self._inflight.clear()
        self._waiting.clear()
        self._intake.clear()
        for item in leftovers:
            park_or_lose(self._delivery, item)
        self._close_connections()
        super().kill()

    def is_healthy(self) -> bool:
        """False while rate-limited or while the queue is full."""
        size = self._queue_size
        full = bool(size) and len(self._intake) >= size
        return not (full or self._delivery.ratelimits.any_active() or self._worker.full())

    def on_its_loop(self) -> bool:
        """True when called from the running loop this transport sends from."""
        loop = self.loop
        return loop.is_running() and _running_loop() is loop

    def pending(self) -> int:
        """Envelopes queued or being sent on the loop."""
        return len(self._intake) + len(self._waiting) + len(self._inflight)

    # -- the loop's side -------------------------------------------------------------------

    def _kick(self) -> None:
        """Wake the sender task, or start it (on the loop's thread)."""
        if self._killed:
            return
        # Cleared here, not by the task: a flush() made before the task runs must
        # wait for it.
        self._idle.clear()
        if self._task is None:
            task = self._task = create_own_task(self.loop, self._run())
            # A callback, not a `finally`: a task cancelled before it first ran (the
            # loop closing right after a capture) never runs its coroutine.
            task.add_done_callback(self._ended)
        elif not self._wake.is_set():
            self._wake.set()

    def _ended(self, task: asyncio.Task[None]) -> None:
        if self._task is task:
            self._task = None
        self._idle.set()
        if not self._killed:
            # The loop is closing (asyncio.run cancels every task at its end): the
            # worker thread sends what is left, and the connections are closed while
            # the loop can still finish closing them.
            self._handoff()

    # The SDK's own log records must not become events (`suppress`), but `suppress` is
    # per thread, and the loop's thread runs the application between awaits: it is
    # held only around the synchronous steps, never across an await.

    async def _run(self) -> None:
        """Start requests while lanes are free; in between, wait to be woken.

        It lives as long as the loop (or the transport), like sentry_sdk's consumer
        task: `asyncio.run` cancels it at the end, and then (`_ended`) what is left
        goes to the worker thread and the connections are closed cleanly.
        """
        wake = self._wake
        while True:
            wake.clear()
            with suppress:
                retry_in = self._dispatch()
            if self._inflight or self._waiting or self._intake:
                if retry_in is None:
                    await wake.wait()
                else:
                    try:
                        await asyncio.wait_for(wake.wait(), retry_in)  # backoff
                    except asyncio.TimeoutError:
                        pass
                continue
            if self._report_wanted:
                self._report_wanted = False
                await self._send_report()
                continue
            self._idle.set()
            await wake.wait()

    def _dispatch(self) -> Optional[float]:
        """Start what the free lanes can take; seconds until a retry is due, or None."""
        waiting = self._waiting
        intake = self._intake
        inflight = self._inflight
        while len(inflight) < self._lanes:
            if not waiting:
                if not intake:
                    return None
                entry = self._encode(intake.popleft())
                if entry is not None:
                    waiting.append(entry)
                continue
            now = time.monotonic()
            if now < self._retry_at:
                return self._retry_at - now
            head = waiting[0]
            if inflight and (head.ordered or any(e.ordered for e in inflight.values())):
                return None  # sessions and check-ins go out alone, in order
            waiting.popleft()
            task = self.loop.create_task(self._send(head))
            inflight[task] = head
            task.add_done_callback(self._sent)
        return None

    def _sent(self, task: asyncio.Task[None]) -> None:
        entry = self._inflight.pop(task, None)
        if entry is not None and task.cancelled() and not self._killed:
            # Cancelled by the loop closing mid-request: it goes out again (the thread).
            self._waiting.appendleft(entry)
            self._handoff()
        if not self._wake.is_set():
            self._wake.set()

    def _encode(self, envelope: Envelope) -> Optional[Entry]:
        delivery = self._delivery
        try:
            return delivery.encode(envelope)
        except Exception:
            logger.warning("could not encode an envelope", exc_info=True)
            delivery.lost_envelope(envelope, DropReason.INTERNAL_SDK_ERROR)
            return None

    async def _send(self, entry: Entry) -> None:
        try:
            delay = await self._attempt(entry)
        except Exception:
            with suppress:
                logger.warning("sending an envelope failed", exc_info=True)
                self._delivery.lost_entry(entry, DropReason.INTERNAL_SDK_ERROR)
            return
        if delay is not None:
            # Back to the front, in its place; no lane starts anything before then.
            self._waiting.appendleft(entry)
            self._retry_at = time.monotonic() + delay

    async def _attempt(self, entry: Entry) -> Optional[float]:
        """One try at `entry`: None when done with it, else seconds until the retry."""
        delivery = self._delivery
        with suppress:
            checked = delivery.sendable(entry)
            if checked is None:
                return None
            body, headers = delivery.request(checked)
        try:
            response = await self._post(body, headers)
        except NetworkError as exc:
            with suppress:
                verdict, reason = delivery.failed(exc)
        else:
            with suppress:
                verdict, reason = delivery.answered(checked, response)
        with suppress:
            return delivery.settle(checked, verdict, reason)

    async def _post(self, body: bytes, headers: dict[str, str]) -> Response:
        if not self._direct:
            return await self.loop.run_in_executor(None, self._post_in_executor, body, headers)
        free = self._free
        if free:
            conn = free.pop()
        else:
            http = self._delivery.http
            conn = AsyncConnection(http.url, http.timeout, http.ssl_context)
            self._conns.append(conn)
        try:
            return await conn.post(body, headers)
        finally:
            if conn in self._conns:  # not closed meanwhile
                free.append(conn)

    async def _send_report(self) -> None:
        delivery = self._delivery
        with suppress:
            entry = delivery.sender.report_entry()
            if entry is None or delivery.sendable(entry) is None:
                return
            body, headers = delivery.request(entry)
        try:
            response = await self._post(body, headers)
        except NetworkError as exc:
            with suppress:
                delivery.failed(exc)
            return
        with suppress:
            delivery.answered(entry, response)

    async def _flush(
        self, timeout: float, callback: Optional[Callable[[int, float], None]]
    ) -> None:
        self._report_wanted = True
        self._kick()
        idle = self._idle
        try:
            await asyncio.wait_for(idle.wait(), min(_FIRST_WAIT, timeout))
            return
        except asyncio.TimeoutError:
            pass
        if callback is not None:
            try:
                callback(self.pending(), timeout)
            except Exception:
                logger.debug("flush callback failed", exc_info=True)
        try:
            await asyncio.wait_for(idle.wait(), max(timeout - _FIRST_WAIT, 0.0))
        except asyncio.TimeoutError:
            logger.error("flush timed out, %s envelope(s) still pending", self.pending())

    def _post_in_executor(self, body: bytes, headers: dict[str, str]) -> Response:
        """The sync client's POST, on an executor thread that may outlive `kill()`."""
        http = self._delivery.http
        try:
            return http.post(body, headers)
        finally:
            if self._killed:  # the connection it may have opened after kill's close
                http.close()

    def _handoff(self) -> None:
        """The loop is gone or going: the worker thread takes what it left."""
        entries = [*self._inflight.values(), *self._waiting]
        self._inflight.clear()
        self._waiting.clear()
        for entry in entries:
            self._worker.adopt(entry)
        intake = self._intake
        while intake:
            try:
                envelope = intake.popleft()
            except IndexError:
                break
            self._worker.submit(envelope)
        self._close_connections()

    def _close_connections(self) -> None:
        conns, self._conns = self._conns, []
        self._free.clear()
        for conn in conns:
            conn.close()

    def __repr__(self) -> str:
        return f"<AsyncHttpTransport {self.options.get('dsn')!r}>"


__all__ = ["LANES", "AsyncHttpTransport", "running_loop"]
