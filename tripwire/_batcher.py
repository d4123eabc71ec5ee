"""One generic batcher for items sent in bulk (logs, metrics, streamed spans, session aggregates).

Producers call `Batcher.add(item)`: an append under a lock, nothing more. A daemon
flusher thread, started on the first add, sends the buffer as one envelope every
`interval` seconds, or sooner once `flush_size` items are waiting. At most
`max_size` items are held; beyond that new items are dropped and counted as
``queue_overflow``. `Client.flush()` / `close()` drain every batcher of the client
(see `flush_batchers` / `close_batchers`), so nothing waits for the timer at exit.

Each client has at most one batcher of each kind, kept in one registry (the end of
this module): a kind is a `PerClient` (``"log"``, ``"metric"``, ``"span"``; sessions
use `batcher_for`) whose `get(client)` is the client's `ClientState` of that kind (the
batcher and what the producer needs per client), made once per client. The registry
survives a fork (its lock is renewed in the child, as each batcher's); a closed
client's batchers stay closed.

Envelopes are built on the thread that flushes (the flusher, or the caller of
`flush`), never on the producer's thread: turning items into their wire form is
the costly part, and producers are on the application's hot path. `build` may
return several envelopes (streamed spans: one per trace, each with its trace's
header), and a producer may ask for a flush soon (`add(item, urgent=True)`: a
finished segment) without waiting for the size or the timer.
"""

from __future__ import annotations

import os
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, Callable, Generic, TypeVar

from tripwire import _json, envelope  # noqa: F401 - envelope: loaded for the flusher
from tripwire._log import logger, suppress
from tripwire._threads import start_own
from tripwire._wake import Wake
from tripwire.outcomes import DataCategory, DropReason

if TYPE_CHECKING:
    from tripwire._client_base import BaseClient
    from tripwire.envelope import Envelope

T = TypeVar("T")

DEFAULT_FLUSH_SIZE = 100
DEFAULT_MAX_SIZE = 1000
DEFAULT_INTERVAL = 5.0


class Batcher(Generic[T]):
    """Collects items and hands them to the client's transport in batches.

    Args:
        client: The client whose transport receives the envelopes (and whose
            outcomes count overflow drops).
        build: Turns a non-empty list of items into an envelope, or a list of
            envelopes (None: nothing to send).
        category: The data category of one item, for overflow outcomes.
        name: Names the flusher thread.
        flush_size: Wake the flusher once this many items are waiting.
        max_size: Drop new items while this many are waiting.
        interval: Seconds between timed flushes.
        min_gap: Seconds the flusher keeps between two flushes when woken early (by
            size or `urgent`): spans ask for a flush at each segment's end, and one
            flush per segment would cost a thread switch per segment.
    """

    def __init__(
        self,
        client: BaseClient,
        build: Callable[[list[T]], Envelope | list[Envelope] | None],
        category: DataCategory,
        name: str = "batcher",
        flush_size: int = DEFAULT_FLUSH_SIZE,
        max_size: int = DEFAULT_MAX_SIZE,
        interval: float = DEFAULT_INTERVAL,
        min_gap: float = 0.0,
    ) -> None:
        # The client is held weakly: a batcher must not keep a replaced client alive.
        self._client = weakref.ref(client)
        self._build = build
        self._category = category
        self._name = name
        self._flush_size = max(1, flush_size)
        self._max_size = max(self._flush_size, max_size)
        self._interval = interval
        self._min_gap = min_gap
        self._last_flush = 0.0
        # Set while a wake is pending: producers do not signal the flusher twice.
        self._signalled = False
        self._stop = threading.Event()
        # Re-entrant, as is `_flush_lock`: a signal handler or a finalizer (`__del__`, a
        # weakref callback) runs on the thread it interrupts, also inside these blocks,
        # and it may log, count a metric or flush. Re-entry is harmless: an `add` in the
        # middle of another sees a consistent list (one item over `max_size` at most),
        # a nested flush sends its newer batch before the interrupted one.
        self._lock = threading.RLock()
        self._items: list[T] = []
        self._wake = Wake()
        self._thread: threading.Thread | None = None
        self._closed = False
        # Serialises flushes so that batches reach the transport in order.
        self._flush_lock = threading.RLock()
        _register_fork_hook(self)

    # -- producers -------------------------------------------------------------------------

    def add(self, item: T, urgent: bool = False) -> None:
        """Queue `item`; never blocks on I/O and never raises.

        `urgent`: wake the flusher now (it sends on its thread, not the caller's).
        """
        overflow = wake = False
        with self._lock:
            if self._closed:
                return
            if len(self._items) >= self._max_size:
                overflow = True
            else:
                self._items.append(item)
                wake = urgent or len(self._items) >= self._flush_size
        if overflow:
            self._record(DropReason.QUEUE_OVERFLOW, 1)
            return
        if self._thread is None:
            self._start()
        if wake and not self._signalled:
            self._signalled = True
            self._wake.set()

    def __len__(self) -> int:
        return len(self._items)

    # -- flushing ----------------------------------------------------------------------------

    def flush(self) -> None:
        """Send what is waiting now, on the calling thread."""
        with self._flush_lock:
            with self._lock:
                items, self._items = self._items, []
            if not items:
                return
            client = self._client()
            transport = client.transport if client is not None else None
            if transport is None:
                return
            # Building may run user `__repr__`s: the logging integration must ignore
            # what they log, or a log record could feed itself back into the batch.
            with suppress:
                try:
                    built = self._build(items)
                    if isinstance(built, list):
                        for envelope in built:
                            transport.capture_envelope(envelope)
                    elif built is not None:
                        transport.capture_envelope(built)
                except Exception:
                    logger.debug(
                        "%s: a batch of %d was lost", self._name, len(items), exc_info=True
                    )
                    self._record(DropReason.INTERNAL_SDK_ERROR, len(items))

    def kill(self) -> None:
        """Stop the flusher thread and send what is left; later adds are ignored."""
        with self._lock:
            self._closed = True
            thread, self._thread = self._thread, None
        self._stop.set()
        self._wake.set()
        if thread is not None and thread is not threading.current_thread():
            # The flusher only ever waits on `_wake` or runs one flush: short.
            thread.join(timeout=1.0)
        self.flush()

    def _start(self) -> None:
        # What the flusher needs is imported by this module, on the thread that imports it
        # (a fork while the flusher holds an import lock would leave the child stuck on
        # that import forever); the JSON backend is picked now, not on the flusher.
        _json.dumps(None)
        # Made outside the lock: `Thread()` runs Python code, where an `add` from a signal
        # handler would find no thread yet and start a second flusher.
        thread = threading.Thread(target=self._run, name=f"tripwire.{self._name}", daemon=True)
        with self._lock:
            if self._thread is not None or self._closed:
                return
            self._thread = thread
        try:
            start_own(thread)
        except RuntimeError:
            # Interpreter shutdown: no new threads. Items go out with the final flush.
            with self._lock:
                self._thread = None

    def _run(self) -> None:
        while True:
            self._wake.wait(self._interval)
            gap = self._min_gap
            if gap:
                remaining = self._last_flush + gap - time.monotonic()
                if remaining > 0:
                    self._stop.wait(remaining)
            self._signalled = False
            self._wake.clear()
            if self._closed or self._client() is None:
                return  # killed, or its client is gone: nothing will ever be sent
            self._last_flush = time.monotonic()
            self.flush()

    def _record(self, reason: DropReason, quantity: int) -> None:
        client = self._client()
        if client is not None:
            try:
                client.outcomes.record(reason, self._category, quantity)
            except Exception:
                logger.debug("could not record a %s outcome", reason.value, exc_info=True)

    def _after_fork_in_child(self) -> None:
        # Only the forking thread survives a fork: the flusher is gone and either lock
        # may have been held by a thread that no longer exists. The pending items
        # belong to the parent, which sends them itself.
        self._lock = threading.RLock()
        self._flush_lock = threading.RLock()
        self._wake = Wake()
        self._stop = threading.Event()
        self._signalled = False
        self._items = []
        self._thread = None


def _register_fork_hook(batcher: Batcher[Any]) -> None:
    register = getattr(os, "register_at_fork", None)
    if register is None:  # Windows
        return
    # A fork hook can never be unregistered: hold the batcher weakly so that a
    # discarded batcher is neither kept alive nor touched after a fork.
    method = weakref.WeakMethod(batcher._after_fork_in_child)

    def after_in_child() -> None:
        bound = method()
        if bound is not None:
            bound()

    register(after_in_child=after_in_child)


# -- the batchers of each client ------------------------------------------------------------
#
# One registry owns "the batcher of this kind for this client": a client's entry holds
# one `ClientState` per kind (its batcher, and whatever the producer of that kind needs
# per client), made at the kind's first item for that client. `Client.flush()` and
# `close()` reach every batcher through it. Clients are weak keys: a state never holds
# its client (its batcher holds it weakly), so a dropped client and its batchers go.


class ClientState:
    """What a producer keeps per client for one kind of item; at least its batcher.

    Producers with more per-client data (the hook, the SDK's attributes) subclass it.
    """

    __slots__ = ("batcher",)

    def __init__(self, batcher: Batcher[Any]) -> None:
        self.batcher = batcher


S = TypeVar("S", bound=ClientState)

# Re-entrant: a signal handler or a finalizer may make a state while this thread is
# inside one of the blocks below (making another).
_registry_lock = threading.RLock()
_registry: weakref.WeakKeyDictionary[Any, dict[str, ClientState]] = weakref.WeakKeyDictionary()
# Clients whose batchers were closed: a state made for one later is closed at once.
_closed: weakref.WeakSet[Any] = weakref.WeakSet()


def _state_for(client: BaseClient, key: str, make: Callable[[BaseClient], S]) -> S:
    states = _registry.get(client)
    found = states.get(key) if states is not None else None
    if found is not None:
        return found  # type: ignore[return-value]
    # Made outside the lock: making a state may log, and a log record may be an item
    # of a kind this client has no state for yet.
    made = make(client)
    with _registry_lock:
        # setdefault, not a test then a store: a nested call on this thread (a signal
        # handler or a finalizer that logs, the lock being re-entrant) may have stored
        # a state between the two, and its items must not be orphaned.
        states = _registry.get(client)
        if states is None:
            states = _registry.setdefault(client, {})
        found = states.setdefault(key, made)  # another call's may win: ours never started
        closed = found is made and client in _closed
    if closed:
        found.batcher.kill()  # items for a closed client are ignored
    return found  # type: ignore[return-value]


class PerClient(Generic[S]):
    """One kind of batched item (``"log"``, ``"metric"``, ``"span"``...): `get(client)`
    is that client's `ClientState` of this kind, made by `make` once per client.

    `get` is on the producers' hot path: the client seen last and its state are kept as
    one pair (swapped whole, so threads never see one client's state under another),
    and only another client costs a registry lookup. The pair holds its client until
    another client produces or the client closes.
    """

    __slots__ = ("_key", "_last", "_make")

    def __init__(self, key: str, make: Callable[[BaseClient], S]) -> None:
        self._key = key
        self._make = make
        self._last: tuple[Any, S | None] = (None, None)
        _kinds.append(self)

    def get(self, client: BaseClient) -> S:
        """The state (and batcher) of this kind for `client`."""
        last_client, state = self._last
        if last_client is client and state is not None:
            return state
        state = _state_for(client, self._key, self._make)
        self._last = (client, state)
        return state

    def _forget(self, client: BaseClient) -> None:
        if self._last[0] is client:
            self._last = (None, None)


# Every kind (module-level objects, made at import): `close_batchers` clears their pairs.
_kinds: list[PerClient[Any]] = []


def batcher_for(
    client: BaseClient, key: str, factory: Callable[[BaseClient], Batcher[Any]]
) -> Batcher[Any]:
    """The client's batcher for `key`, made by `factory` once (a kind with no other state)."""
    return _state_for(client, key, lambda owner: ClientState(factory(owner))).batcher


def flush_batchers(client: BaseClient) -> None:
    """Send everything the client's batchers hold (called by `Client.flush`)."""
    with _registry_lock:
        states = list((_registry.get(client) or {}).values())
    for state in states:
        state.batcher.flush()


def close_batchers(client: BaseClient) -> None:
    """Stop the client's batchers after a final flush (called by `Client.close`)."""
    with _registry_lock:
        _closed.add(client)
        states = list((_registry.get(client) or {}).values())
    for kind in tuple(_kinds):
        kind._forget(client)
    for state in states:
        state.batcher.kill()


def _after_fork_in_child() -> None:
    # The registry's lock may have been held by a thread the fork left behind.
    global _registry_lock
    _registry_lock = threading.RLock()


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_after_fork_in_child)


__all__ = [
    "Batcher",
    "ClientState",
    "PerClient",
    "batcher_for",
    "close_batchers",
    "flush_batchers",
]
