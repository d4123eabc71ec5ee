"""The background worker: a bounded queue and one thread per transport.

Two stages keep the calling thread cheap and the memory bounded:

- the *intake*, a deque of envelopes as the client built them (Python objects),
  bounded by ``transport_queue_size``. `submit` is an append, plus waking the
  worker if it sleeps;
- the *backlog*, the same envelopes encoded (a few hundred bytes each instead of
  a tree of dicts), bounded in bytes.

The worker empties the whole intake every time it runs, so in a burst it keeps
up with the producer even though each HTTP request takes far longer than a
capture. While the intake is over half full, every other `submit` yields the
interpreter lock (a sleep of ~70 us) so the worker gets a turn to empty it. If
the worker still cannot run (on a loaded machine the OS may not give it a CPU for
milliseconds), a `submit` that finds the intake full moves its two oldest
envelopes to the backlog itself: the only encoding ever done on a calling
thread, instead of a lost event. The calling thread never waits for the network.
When the backlog's budget is hit, transactions, spans and logs are dropped before
errors, and every drop is counted (queue_overflow). Queued entries are packed
(see `Entry.pack`) once the backlog holds a quarter of its budget, so 20,000
small events fit in ~10 MB.

While a request is out the worker does not just wait: it sends the next entry on
a second connection if the delivery has one (`Delivery.lanes`), or encodes and
prepares what comes next (`_meanwhile`).

Fork safety: `os.register_at_fork` gives a child fresh locks, empty queues and no
thread (it starts its own on first use); the parent's queue stays the parent's.
"""

from __future__ import annotations

import os
import sys
import threading
import time
import weakref
from collections import deque
from typing import TYPE_CHECKING, Any, Callable, Optional, Protocol, Union

from tripwire._log import logger, suppress
from tripwire._threads import start_own
from tripwire._wake import Wake
from tripwire.outcomes import DropReason
from tripwire.transport._policy import Entry

if TYPE_CHECKING:
    from tripwire.envelope import Envelope

# sys._is_gil_enabled exists on 3.13+; without a GIL the worker runs in parallel and
# yielding would only cost a syscall.
_HAS_GIL: bool = getattr(sys, "_is_gil_enabled", lambda: True)()
# How the calling thread hands the interpreter lock over: a sleep long enough for the
# worker to take it (~70 us with the kernel's timer slack). Before 3.11 sleep(0) does
# not release the lock at all, so the shortest real sleep is used there.
_YIELD_SECONDS = 0.0 if sys.version_info >= (3, 11) else 1e-6
# At most one yield per this many submits: each costs the caller that sleep, and a
# worker blocked on a slow server cannot use the lock anyway.
_YIELD_EVERY = 2

DEFAULT_BACKLOG_BYTES = 16 * 1024 * 1024
# Deflate looks back 32 KiB at most; a fresh dictionary now and then follows drift.
_ZDICT_MAX = 32 * 1024
_ZDICT_REFRESH = 4096

# Envelopes a calling thread moves to the backlog when it finds the intake full.
_HELP_TAKE = 2
# Envelopes encoded while a request is out (see Worker._meanwhile): about one
# loopback round trip's worth; the rest waits for the next turn.
_MEANWHILE_ENCODES = 4
# How long the worker encodes while a calling thread waits for the interpreter lock
# (it yielded in `submit`) before handing the lock back. Without this the worker
# keeps it until the intake is empty or the switch interval (5 ms) forces a switch,
# and that wait is the caller's worst case under overload. Long enough to encode
# more envelopes than the caller adds between two yields.
_HOLD_SECONDS = 0.0005

_monotonic = time.monotonic
_perf = time.perf_counter


class Delivery(Protocol):
    """What the worker drives: encoding, sending and counting (see `HttpTransport`)."""

    @property
    def lanes(self) -> int:
        """How many requests it can have out at once now (one connection each)."""

    def encode(self, envelope: Envelope) -> Optional[Entry]:
        """The entry to queue for `envelope`, or None (nothing left to send)."""

    def send(
        self, entry: Entry, meanwhile: Optional[Callable[[], None]] = None, lane: int = 0
    ) -> Optional[float]:
        """Try to deliver `entry` on connection `lane`: None when done with it, else
        seconds until a retry.

        `meanwhile` (it never raises) is to be called while the request is out, if
        the HTTP client can: the worker's next work, overlapping the server's.
        """

    def prepare(self, entry: Entry) -> None:
        """Make `entry`'s request body ahead of its turn."""

    def lost_envelope(self, envelope: Envelope, reason: DropReason) -> None:
        """Count an envelope dropped before it was encoded."""

    def lost_entry(self, entry: Entry, reason: DropReason) -> None:
        """Count an encoded entry that will not be sent."""

    def park(self, entry: Entry) -> bool:
        """Keep `entry` for a later process (the spool); False if it cannot be kept."""

    def can_park(self) -> bool:
        """Whether `park` may keep anything (a spool is configured)."""

    def idle(self) -> Optional[float]:
        """Background work when the queue is empty; seconds until it is wanted again."""

    def report(self) -> None:
        """Send the pending client report now (flush)."""

    def wants_flush(self) -> bool:
        """True if a flush has something to send even with an empty queue."""

    def after_fork(self) -> None:
        """Reset connections and locks in a forked child."""

    def close(self) -> None:
        """Close the connections (called once no thread can send any more)."""


class _Marker:
    """A flush request travelling through the queue behind everything submitted before it."""

    __slots__ = ("done", "seq")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.seq = -1


_Queued = Union["Envelope", _Marker]


def _call_weak(ref: Callable[[], Any]) -> Callable[[], None]:
    def hook() -> None:
        method = ref()
        if method is not None:
            method()

    return hook


def park_or_lose(delivery: Delivery, item: Union[Envelope, Entry]) -> None:
    """Spool `item` (an envelope or its encoded entry) if `delivery` can, else count it
    as lost to the network: what a stopped transport does with what it still holds."""
    try:
        if not isinstance(item, Entry) and not delivery.can_park():
            # Counted from its items, never encoded: at exit with the server
            # unreachable thousands may be left, on a thread sharing the GIL.
            delivery.lost_envelope(item, DropReason.NETWORK_ERROR)
            return
        entry = item if isinstance(item, Entry) else delivery.encode(item)
        if entry is not None and not delivery.park(entry):
            delivery.lost_entry(entry, DropReason.NETWORK_ERROR)
    except Exception:
        logger.debug("could not keep an unsent envelope", exc_info=True)


class Worker:
    """The bounded queue and the thread that empties it.

    Args:
        delivery: Encodes, sends and counts (the transport's policy and I/O).
        queue_size: Envelopes the intake holds (0: unbounded, as in sentry_sdk).
        backlog_bytes: Bytes of encoded envelopes kept waiting for the network.
        name: The thread's name.
    """

    __slots__ = (
        "__weakref__",
        "_backlog",
        "_backlog_bytes",
        "_budget",
        "_delivery",
        "_high_water",
        "_ident",
        "_inflight",
        "_intake",
        "_lock",
        "_low",
        "_markers",
        "_no_room",
        "_packed",
        "_queue_size",
        "_retry_at",
        "_seq",
        "_since_yield",
        "_start_lock",
        "_stopped",
        "_thread",
        "_wake",
        "_yielding",
        "_zdict",
        "name",
    )

    def __init__(
        self,
        delivery: Delivery,
        queue_size: int = 100,
        backlog_bytes: int = DEFAULT_BACKLOG_BYTES,
        name: str = "tripwire.worker",
    ) -> None:
        self._delivery = delivery
        self._queue_size = max(int(queue_size), 0)
        self._high_water = max(self._queue_size // 2, 1)
        self._budget = backlog_bytes
        self.name = name
        self._reset_state()
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=_call_weak(weakref.WeakMethod(self._after_fork)))

    def _reset_state(self) -> None:
        self._intake: deque[_Queued] = deque()
        self._backlog: deque[Entry] = deque()
        self._low: deque[Entry] = deque()  # low-priority backlog entries, oldest first
        self._backlog_bytes = 0
        self._inflight: list[Entry] = []
        self._markers: list[_Marker] = []
        self._lock = threading.Lock()  # backlog and markers: worker vs kill()
        self._start_lock = threading.Lock()
        self._wake = Wake()
        self._thread: Optional[threading.Thread] = None
        self._ident: Optional[int] = None
        self._stopped = False
        self._seq = 0
        self._retry_at = 0.0
        self._zdict: Optional[bytes] = None
        self._since_yield = 0
        self._yielding = False
        self._packed = 0
        self._no_room = False

    # -- calling thread ------------------------------------------------------------------

    def submit(self, envelope: Envelope) -> bool:
        """Queue `envelope` (never blocks on I/O); False if it was dropped (and counted)."""
        if self._stopped:
            return False
        intake = self._intake
        size = self._queue_size
        if size and len(intake) >= size:
            if not self._backlog_has_room():
                # Sustained overload (a slow server): the backlog is full of errors
                # too, so encoding more would only be thrown away.
                self._delivery.lost_envelope(envelope, DropReason.QUEUE_OVERFLOW)
                return False
            # The worker cannot get a CPU to empty the intake (a loaded machine):
            # move its oldest envelopes to the backlog here rather than lose one.
            # This encodes on the calling thread, the only time it does; it never
            # waits for the network. The backlog's byte budget decides what is
            # dropped, transactions and the like first.
            self._take_intake(_HELP_TAKE, blocking=False)
        intake.append(envelope)
        if self._thread is None:
            self.start()
        elif not self._wake.is_set():
            self._wake.set()
        if size and _HAS_GIL and len(intake) >= self._high_water:
            self._since_yield += 1
            if self._since_yield >= _YIELD_EVERY and threading.get_ident() != self._ident:
                # Hand the interpreter lock to the worker so it can empty the intake;
                # without this a busy producer keeps it for whole switch intervals
                # (5 ms) and overflows the queue. No network wait: the worker gives
                # the lock back as soon as it blocks on a socket.
                self._since_yield = 0
                # Tells the worker to give the lock back soon (see _take_intake): a
                # plain store, safe from a signal handler.
                self._yielding = True
                time.sleep(_YIELD_SECONDS)
                self._yielding = False
        return True

    def adopt(self, entry: Entry) -> None:
        """Queue an entry encoded elsewhere (the async transport's, when its loop went away)."""
        if self._stopped:
            self._park_or_lose(entry)
            return
        with self._lock:
            self._seq += 1
            entry.seq = self._seq
            self._admit(entry)
        if self._thread is None:
            self.start()
        else:
            self._wake.set()

    def _backlog_has_room(self) -> bool:
        """False once the backlog turned an error away (nothing evictable) and
        nothing has left it since."""
        return not self._no_room

    def start(self) -> bool:
        """Start the thread if it is not running; False if it cannot be (interpreter exit).

        Never waits: if another call is starting the thread (another thread, or the
        code a signal handler interrupted on this one), this one leaves it to that
        call; what it queued is taken by the thread that call starts.
        """
        lock = self._start_lock
        if not lock.acquire(False):
            return True
        try:
            thread = self._thread
            if thread is not None and thread.is_alive():
                return True
            if self._stopped:
                return False
            thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            try:
                start_own(thread)
            except RuntimeError:
                # Python 3.12+ refuses new threads during shutdown; flush() then
                # delivers on the calling thread instead.
                logger.debug("cannot start the %s thread", self.name, exc_info=True)
                self._thread = None
                return False
            self._thread = thread
            self._ident = thread.ident
            return True
        finally:
            lock.release()

    def flush(
        self, timeout: float, callback: Optional[Callable[[int, float], None]] = None
    ) -> bool:
        """Wait up to `timeout` seconds until everything queued so far is sent or dropped.

        Then the pending client report is sent. `callback(pending, timeout)` is
        called once if this takes more than a moment (as sentry_sdk's flush does).
        Returns True if everything was handled in time.
        """
        if self._stopped:
            return True
        # Only a worker that never ran is known to be idle without asking it: a
        # running one may be encoding what it just took from the intake.
        if self._thread is None and not self._intake and not self._delivery.wants_flush():
            return True
        marker = _Marker()
        self._intake.append(marker)
        thread = self._thread
        if (thread is None or not thread.is_alive()) and not self.start():
            return self._flush_here(marker, timeout)
        self._wake.set()
        deadline = _monotonic() + timeout
        if marker.done.wait(min(0.1, timeout)):
            return True
        if callback is not None:
            try:
                callback(self.pending(), timeout)
            except Exception:
                logger.debug("flush callback failed", exc_info=True)
        return marker.done.wait(max(deadline - _monotonic(), 0.0))

    def _flush_here(self, marker: _Marker, timeout: float) -> bool:
        """Deliver on the calling thread: no worker thread can run (interpreter exit)."""
        deadline = _monotonic() + timeout
        with suppress:
            while not marker.done.is_set() and not self._stopped:
                left = deadline - _monotonic()
                if left <= 0:
                    return False
                self._cycle(max_wait=left)
        return marker.done.is_set()

    def pending(self) -> int:
        """Envelopes queued or in flight."""
        intake = sum(1 for q in list(self._intake) if not isinstance(q, _Marker))
        return intake + len(self._backlog) + len(self._inflight)

    def full(self) -> bool:
        """True when the queue is near its bounds: the intake full, or the backlog's
        bytes over half the budget (envelopes may soon be dropped)."""
        size = self._queue_size
        return (bool(size) and len(self._intake) >= size) or (
            self._backlog_bytes * 2 > self._budget
        )

    def kill(self, join_timeout: float = 0.1) -> None:
        """Stop the thread; what is still queued is parked on disk or counted as lost."""
        self._stopped = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread.ident != threading.get_ident():
            thread.join(join_timeout)
        with self._lock:
            leftovers: list[Any] = list(self._backlog)
            self._backlog.clear()
            self._low.clear()
            self._backlog_bytes = 0
            markers, self._markers = self._markers, []
        while self._intake:
            try:
                queued = self._intake.popleft()
            except IndexError:
                break
            if isinstance(queued, _Marker):
                markers.append(queued)
            else:
                leftovers.append(queued)
        for item in leftovers:
            self._park_or_lose(item)
        for marker in markers:
            marker.done.set()
        if thread is None or not thread.is_alive():
            self._close_delivery()
        # Else the thread closes them on its way out: a request it is still making may
        # have to open a connection, which a close from here would miss (and leak).

    def join(self, timeout: Optional[float] = None) -> None:
        """Wait for the thread to end (after `kill`)."""
        thread = self._thread
        if thread is not None and thread.ident != threading.get_ident():
            thread.join(timeout)

    def _park_or_lose(self, item: Any) -> None:
        park_or_lose(self._delivery, item)

    # -- worker thread -------------------------------------------------------------------

    def _run(self) -> None:
        self._ident = threading.get_ident()
        with suppress:  # nothing the SDK logs from here is captured as an event
            try:
                while not self._stopped:
                    try:
                        self._cycle()
                    except Exception:
                        logger.warning("the %s thread hit an error", self.name, exc_info=True)
            finally:
                self._close_delivery()

    def _close_delivery(self) -> None:
        try:
            self._delivery.close()
        except Exception:
            logger.debug("closing the %s connections failed", self.name, exc_info=True)

    def _cycle(self, max_wait: Optional[float] = None) -> None:
        """One turn: empty the intake, send one entry or do idle work, else sleep."""
        self._hand_back()
        self._take_intake()
        if self._stopped:
            return
        now = _monotonic()
        head = self._backlog[0] if self._backlog else None
        timeout: Optional[float]
        if head is not None:
            if now >= self._retry_at:
                self._send(head)
                return
            timeout = self._retry_at - now
        else:
            timeout = self._delivery.idle()
            if timeout is not None and timeout <= 0:
                return  # it did some work (a spooled envelope): flushes wait for the rest
            if self._markers:
                self._settle_markers()
        if max_wait is not None:
            timeout = max_wait if timeout is None else min(timeout, max_wait)
        wake = self._wake
        wake.clear()
        if self._intake or self._stopped:
            return
        wake.wait(timeout)

    def _take_intake(self, limit: int = -1, blocking: bool = True) -> None:
        """Encode what the intake holds (at most `limit` envelopes if >= 0) into the backlog.

        A calling thread passes `blocking=False`: if the worker holds the lock, the
        worker is emptying the intake already (and a signal handler must never wait
        for the code it interrupted).
        """
        intake = self._intake
        if not intake:
            return
        lock = self._lock
        while True:
            if not lock.acquire(blocking):
                return
            try:
                if self._stopped:
                    return
                limit = self._encode_some(limit, blocking)
            finally:
                lock.release()
            if not (intake and limit != 0 and self._yielding):
                return
            # Outside our lock, which a capture may try.
            self._hand_back()

    def _hand_back(self) -> None:
        """Give the interpreter lock back to a calling thread that yielded it in `submit`.

        The worker otherwise keeps it between its socket calls: each request
        releases and retakes it faster than the waiting thread wakes up, and every
        retake restarts that thread's switch-interval wait.
        """
        if self._yielding and _HAS_GIL:
            self._yielding = False
            time.sleep(_YIELD_SECONDS)

    def _encode_some(self, limit: int, worker: bool) -> int:
        """The body of `_take_intake`, under the lock; returns what is left of `limit`.

        On the worker, stops early once it has held the interpreter lock for
        `_HOLD_SECONDS` while a calling thread waits for it.
        """
        intake = self._intake
        delivery = self._delivery
        hand_back_at = _perf() + _HOLD_SECONDS if worker and _HAS_GIL else None
        # Not once `kill()` has begun: it takes what is left without encoding it. (At
        # exit, daemon threads still capturing left the worker a sliver of the GIL:
        # encoding thousands of envelopes held the exit for minutes.)
        while intake and limit != 0 and not self._stopped:
            if hand_back_at is not None and self._yielding and _perf() >= hand_back_at:
                break
            limit -= 1
            try:
                queued = intake.popleft()
            except IndexError:  # kill() emptied it meanwhile
                break
            if isinstance(queued, _Marker):
                queued.seq = self._seq
                self._markers.append(queued)
                continue
            try:
                entry = delivery.encode(queued)
            except Exception:
                logger.warning("could not encode an envelope", exc_info=True)
                delivery.lost_envelope(queued, DropReason.INTERNAL_SDK_ERROR)
                continue
            if entry is not None:
                self._seq += 1
                entry.seq = self._seq
                self._admit(entry)
        return limit

    def _admit(self, entry: Entry) -> None:
        """Append to the backlog, evicting low-priority entries if it is over budget."""
        low = self._low
        while self._backlog_bytes + entry.size > self._budget:
            if entry.low_priority or not low:
                if not low:
                    self._no_room = True  # until an entry leaves the backlog
                self._delivery.lost_entry(entry, DropReason.QUEUE_OVERFLOW)
                return
            victim = low.popleft()
            try:
                self._backlog.remove(victim)
            except ValueError:
                continue  # already sent
            self._backlog_bytes -= victim.size
            self._delivery.lost_entry(victim, DropReason.QUEUE_OVERFLOW)
        if self._backlog and self._backlog_bytes + entry.size > self._budget // 4:
            # A long wait ahead and memory getting used: keep it compact (deflated
            # against a recent envelope, see Entry; ~2 us per KB). Short queues stay
            # as they are, since packing and unpacking only cost CPU there.
            zdict = self._zdict
            if zdict is None or self._packed >= _ZDICT_REFRESH:
                zdict = self._zdict = entry.plain()[-_ZDICT_MAX:]
                self._packed = 0
            entry.pack(zdict)
            self._packed += 1
        elif not self._backlog:
            self._zdict = None
        self._backlog.append(entry)
        self._backlog_bytes += entry.size
        if entry.low_priority:
            low.append(entry)

    def _send(self, entry: Entry, lane: int = 0) -> None:
        with self._lock:
            if self._stopped or not self._backlog or self._backlog[0] is not entry:
                return
            self._backlog.popleft()
            self._backlog_bytes -= entry.size
            self._no_room = False
            if self._low and self._low[0] is entry:
                self._low.popleft()
            self._inflight.append(entry)
        try:
            meanwhile = self._meanwhile if lane == 0 else self._prepare_next
            delay = self._delivery.send(entry, meanwhile, lane)
        except Exception:
            logger.warning("sending an envelope failed", exc_info=True)
            self._delivery.lost_entry(entry, DropReason.INTERNAL_SDK_ERROR)
            delay = None
        with self._lock:
            self._inflight.remove(entry)
            if delay is None:
                pass
            elif self._halted():  # kill() ran while the request was out
                self._park_or_lose(entry)
            elif delay > 0 and self._markers and self._unreachable():
                # A flush (the exit) is waiting and the server refuses, resets or fails
                # TLS: nothing queued can be delivered in time. Spool or count it all
                # now instead of retrying until the timeout.
                leftovers: list[Entry] = [entry, *self._backlog]
                self._backlog.clear()
                self._low.clear()
                self._backlog_bytes = 0
                self._no_room = False
                for item in leftovers:
                    self._park_or_lose(item)
            else:
                # Back to the head of the line, with its place in flush order.
                self._backlog.appendleft(entry)
                self._backlog_bytes += entry.size
                if entry.low_priority:
                    self._low.appendleft(entry)
                self._retry_at = _monotonic() + delay
        # Not from the second lane: the first request's answer is still unread, and
        # settling may send the client report on that connection.
        if self._markers and lane == 0:
            self._settle_markers()

    def _meanwhile(self) -> None:
        """While a request is out: send the next one on the second lane, or prepare it.

        The server's turn is otherwise idle time on the worker's critical path. So
        the next entry goes out on a second connection right away, and is handled
        to the end (its own wait overlaps encoding) before the first answer is
        read. Envelopes that must stay in order (`Entry.ordered`) never overlap.
        Whatever happens here, the first request's answer is read afterwards.
        """
        self._use_the_wait(overlap=True)

    def _prepare_next(self) -> None:
        """While the second lane's request is out: encode and prepare, no third request."""
        self._use_the_wait(overlap=False)

    def _use_the_wait(self, overlap: bool) -> None:
        """Encode a few new envelopes, then send the next entry (`overlap`) or make its body.

        Work the worker has to do anyway, done while the server answers instead of
        after. Bounded, so the answer (maybe a rate limit) is read soon after it
        arrives.
        """
        try:
            self._hand_back()
            self._take_intake(_MEANWHILE_ENCODES)
            backlog = self._backlog
            head = backlog[0] if backlog else None
            if head is None:
                return
            inflight = self._inflight
            if (
                overlap
                and not head.ordered
                and len(inflight) == 1
                and not inflight[0].ordered
                and not self._stopped
                and _monotonic() >= self._retry_at
                and self._delivery.lanes > 1
            ):
                self._send(head, lane=1)
            else:
                self._delivery.prepare(head)
        except Exception:
            logger.debug("work between request and response failed", exc_info=True)

    def _halted(self) -> bool:
        return self._stopped

    def _unreachable(self) -> bool:
        check = getattr(self._delivery, "unreachable", None)
        return bool(check()) if check is not None else False

    def _settle_markers(self) -> None:
        """Release the flushes whose envelopes are all handled (then report losses)."""
        with self._lock:
            head = self._backlog[0].seq if self._backlog else None
            oldest = min((e.seq for e in self._inflight), default=None)
            ready = [
                m
                for m in self._markers
                if (head is None or head > m.seq) and (oldest is None or oldest > m.seq)
            ]
            if not ready:
                return
            self._markers = [m for m in self._markers if m not in ready]
        try:
            self._delivery.report()
        except Exception:
            logger.debug("sending the client report failed", exc_info=True)
        for marker in ready:
            marker.done.set()

    # -- fork ----------------------------------------------------------------------------

    def _after_fork(self) -> None:
        # The child must not touch the parent's queue (the parent sends it) nor any
        # lock another parent thread may have held at fork time.
        stopped = self._stopped
        self._reset_state()
        self._stopped = stopped
        try:
            self._delivery.after_fork()
        except Exception:
            logger.debug("after-fork reset failed", exc_info=True)
