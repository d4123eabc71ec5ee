"""The worker (queue and thread) with a scripted delivery; the monitor, Spotlight, atexit."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from typing import Any, Callable, Optional

import pytest
from _receiver import (
    LeakCheck,
    Receiver,
    assert_sdk_threads_ended,
    make_envelope,
    make_transaction,
    wait_until,
)

import tripwire
from tripwire.envelope import Envelope
from tripwire.monitor import MAX_DOWNSAMPLE_FACTOR, Monitor
from tripwire.outcomes import DropReason
from tripwire.spotlight import DEFAULT_URL, spotlight_url
from tripwire.tracing import Transaction
from tripwire.transport._policy import ENTRY_OVERHEAD, Entry, is_low_priority
from tripwire.transport._worker import Worker


class FakeDelivery:
    """Records what the worker asks for; `gate` blocks `send` until set."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []
        self.lost: list[tuple[bytes, DropReason]] = []
        self.parked: list[bytes] = []
        self.prepared: list[bytes] = []
        self.out: list[int] = []  # the lanes of the requests out now
        self.lanes_used: list[int] = []
        self.reports_while_out = 0
        self.park_ok = False
        self.gate = threading.Event()
        self.gate.set()
        self.sending = threading.Event()
        self.reports = 0
        self.forks = 0
        self.closed_by: list[str] = []  # the name of each thread that closed it

    def encode(self, envelope: Envelope) -> Optional[Entry]:
        return Entry(
            envelope.serialize(), None, (("x", 1),), frozenset(), is_low_priority(envelope), 0.0
        )

    lanes = 1

    def send(
        self, entry: Entry, meanwhile: Optional[Callable[[], None]] = None, lane: int = 0
    ) -> Optional[float]:
        self.sending.set()
        self.out.append(lane)
        try:
            if meanwhile is not None:
                meanwhile()  # as the wire client does: after writing, before reading
            self.gate.wait(30)
            self.sent.append(entry.plain())
            self.lanes_used.append(lane)
        finally:
            self.out.remove(lane)
        return None

    def prepare(self, entry: Entry) -> None:
        self.prepared.append(entry.plain())

    def lost_envelope(self, envelope: Envelope, reason: DropReason) -> None:
        self.lost.append((envelope.serialize(), reason))

    def lost_entry(self, entry: Entry, reason: DropReason) -> None:
        self.lost.append((entry.plain(), reason))

    def can_park(self) -> bool:
        return self.park_ok

    def park(self, entry: Entry) -> bool:
        if self.park_ok:
            self.parked.append(entry.plain())
        return self.park_ok

    def idle(self) -> Optional[float]:
        return None

    def report(self) -> None:
        self.reports += 1
        if self.out:
            self.reports_while_out += 1

    def wants_flush(self) -> bool:
        return False

    def after_fork(self) -> None:
        self.forks += 1

    def close(self) -> None:
        self.closed_by.append(threading.current_thread().name)


@pytest.fixture
def leaks() -> Iterator[None]:
    check = LeakCheck()
    yield
    check.assert_clean()


def env(n: int) -> Envelope:
    return make_envelope("%032x" % n)


def test_flush_sends_everything_in_order_then_reports(leaks: None) -> None:
    delivery = FakeDelivery()
    worker = Worker(delivery, queue_size=100)
    envelopes = [env(i) for i in range(30)]
    for e in envelopes:
        assert worker.submit(e)
    assert worker.flush(10)
    assert delivery.sent == [e.serialize() for e in envelopes]
    assert delivery.reports == 1
    worker.kill()
    worker.join(10)


def test_second_lane_overlaps_and_the_report_waits_for_both(leaks: None) -> None:
    delivery = FakeDelivery()
    delivery.lanes = 2
    delivery.gate.clear()
    worker = Worker(delivery, queue_size=100)
    assert worker.submit(env(0))  # held at the gate, with nothing to overlap
    assert delivery.sending.wait(10)
    flusher = threading.Thread(target=worker.flush, args=(10,))
    flusher.start()
    wait_until(lambda: worker._intake, what="the flush's marker")  # it is queued first
    assert worker.submit(env(1))
    assert worker.submit(env(2))
    delivery.gate.set()
    flusher.join(10)
    assert sorted(delivery.sent) == sorted(env(i).serialize() for i in range(3))
    assert delivery.lanes_used == [0, 1, 0]  # 2 went out while 1 was out, and came back first
    assert delivery.reports == 1
    assert delivery.reports_while_out == 0  # never in the middle of a request
    worker.kill()
    worker.join(10)


def test_flush_without_anything_queued_starts_no_thread(leaks: None) -> None:
    worker = Worker(FakeDelivery())
    assert worker.flush(1)
    assert worker._thread is None
    worker.kill()


def test_a_full_intake_is_moved_to_the_backlog_by_the_caller_not_dropped(leaks: None) -> None:
    # The worker cannot run (here: stuck in a request; on a loaded machine: no CPU):
    # a submit that finds the intake full encodes its oldest envelopes itself.
    delivery = FakeDelivery()
    delivery.gate.clear()
    worker = Worker(delivery, queue_size=3)
    worker.submit(env(0))
    delivery.sending.wait(10)  # the worker is stuck sending env(0)
    for i in range(1, 50):
        assert worker.submit(env(i))
    assert len(worker._intake) <= 3
    assert delivery.lost == []
    delivery.gate.set()
    assert worker.flush(10)
    assert delivery.sent == [env(i).serialize() for i in range(50)]  # in order, all of them
    worker.kill()
    worker.join(10)


def test_full_backlog_drops_low_priority_first(leaks: None) -> None:
    delivery = FakeDelivery()
    delivery.gate.clear()
    size = len(env(0).serialize()) + ENTRY_OVERHEAD
    worker = Worker(delivery, queue_size=1, backlog_bytes=3 * size)
    worker.submit(env(0))
    delivery.sending.wait(10)  # the worker is stuck sending env(0): nothing leaves
    first_tx = make_transaction(spans=0, event_id="%032x" % 1000)
    submitted = [first_tx]
    for i in range(1, 101):
        submitted.append(env(i))
        if i % 10 == 0:
            submitted.append(make_transaction(spans=0, event_id="%032x" % (1000 + i)))
    for e in submitted:
        worker.submit(e)
    delivery.gate.set()
    assert worker.flush(10)
    lost = [b for b, r in delivery.lost if r is DropReason.QUEUE_OVERFLOW]
    assert len(lost) == len(delivery.lost)
    assert lost[0] == first_tx.serialize()  # the oldest transaction went first
    sent_kinds = [b"transaction" in b.split(b"\n")[1] for b in delivery.sent]
    lost_errors = [b for b in lost if b"transaction" not in b.split(b"\n")[1]]
    assert lost_errors  # the budget was too small for all the errors
    assert not any(sent_kinds)  # so no transaction kept a place an error could have had
    assert len(delivery.sent) + len(lost) == len(submitted) + 1  # every envelope accounted for
    worker.kill()
    worker.join(10)


def test_with_the_backlog_full_of_errors_the_caller_stops_encoding(leaks: None) -> None:
    delivery = FakeDelivery()
    delivery.gate.clear()
    encodes: list[int] = []
    encode = delivery.encode
    delivery.encode = lambda envelope: encodes.append(1) or encode(envelope)  # type: ignore[method-assign]
    worker = Worker(delivery, queue_size=2, backlog_bytes=20 * 1024)
    worker.submit(env(0))
    delivery.sending.wait(10)  # the worker is stuck sending env(0)
    for i in range(1, 200):
        worker.submit(env(i))
    before = len(encodes)
    for i in range(200, 300):
        assert not worker.submit(env(i))  # dropped at once, and counted
    assert len(encodes) == before
    assert sum(1 for _, r in delivery.lost if r is DropReason.QUEUE_OVERFLOW) >= 100
    delivery.gate.set()
    assert worker.flush(10)
    worker.kill()
    worker.join(10)


def test_backlog_budget_is_bytes(leaks: None) -> None:
    delivery = FakeDelivery()
    delivery.gate.clear()
    size = len(env(0).serialize()) + 200
    worker = Worker(delivery, queue_size=1000, backlog_bytes=3 * size + 100)
    worker.submit(env(0))
    delivery.sending.wait(10)
    for i in range(1, 10):
        worker.submit(env(i))
    delivery.gate.set()
    assert worker.flush(10)
    # The first went out at once; the backlog held what fit (packed entries are small).
    assert len(delivery.sent) + len(delivery.lost) == 10
    assert all(r is DropReason.QUEUE_OVERFLOW for _, r in delivery.lost)
    worker.kill()
    worker.join(10)


@pytest.mark.parametrize("park", [False, True])
def test_kill_parks_or_counts_what_is_left(leaks: None, park: bool) -> None:
    delivery = FakeDelivery()
    delivery.park_ok = park
    delivery.gate.clear()
    worker = Worker(delivery, queue_size=100)
    for i in range(5):
        worker.submit(env(i))
    delivery.sending.wait(10)
    assert not worker.flush(0.05)
    worker.kill()
    delivery.gate.set()
    worker.join(10)
    assert delivery.sent == [env(0).serialize()]  # the one in flight finished
    left = sorted(env(i).serialize() for i in range(1, 5))
    if park:
        assert sorted(delivery.parked) == left and delivery.lost == []
    else:
        assert sorted(b for b, _ in delivery.lost) == left
        assert {r for _, r in delivery.lost} == {DropReason.NETWORK_ERROR}
    assert not worker.submit(env(9))  # stopped
    # Closed once, by the thread that was still sending: a close from `kill()` would
    # have missed the connection that send might still open.
    assert delivery.closed_by == [worker.name]


def test_kill_takes_what_is_left_without_encoding_it(leaks: None) -> None:
    # At exit, with daemon threads still capturing, the worker gets a sliver of the GIL:
    # encoding every queued envelope before kill() could take the lock held the exit
    # for minutes. The worker stops at the envelope it is on; the rest is counted.
    delivery = FakeDelivery()
    encoding, go = threading.Event(), threading.Event()
    encoded: list[Envelope] = []
    plain_encode = delivery.encode

    def encode(envelope: Envelope) -> Optional[Entry]:
        encoded.append(envelope)
        if len(encoded) == 1:
            encoding.set()
            go.wait(30)
        return plain_encode(envelope)

    delivery.encode = encode  # type: ignore[method-assign]
    worker = Worker(delivery, queue_size=1000)
    for i in range(50):
        worker.submit(env(i))
    assert encoding.wait(10)
    killer = threading.Thread(target=worker.kill)
    killer.start()
    wait_until(lambda: worker._stopped, what="kill() to begin")
    go.set()
    killer.join(30)
    worker.join(10)
    assert len(encoded) == 1
    assert len(delivery.lost) == 50  # the one encoded, and the 49 never encoded
    assert {reason for _, reason in delivery.lost} == {DropReason.NETWORK_ERROR}


def test_kill_without_a_thread_closes_the_connections_at_once(leaks: None) -> None:
    delivery = FakeDelivery()
    worker = Worker(delivery, queue_size=100)
    worker.kill()
    assert delivery.closed_by == [threading.current_thread().name]


def test_flush_runs_on_the_calling_thread_when_no_thread_can_start(
    leaks: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    # What Python 3.12+ does during interpreter shutdown.
    def refuse(self: threading.Thread) -> None:
        raise RuntimeError("can't create new thread at interpreter shutdown")

    monkeypatch.setattr(threading.Thread, "start", refuse)
    delivery = FakeDelivery()
    worker = Worker(delivery)
    for i in range(3):
        worker.submit(env(i))
    assert worker._thread is None
    assert worker.flush(10)
    assert delivery.sent == [env(i).serialize() for i in range(3)]
    worker.kill()


def test_after_fork_starts_empty(leaks: None) -> None:
    delivery = FakeDelivery()
    delivery.gate.clear()
    worker = Worker(delivery)
    for i in range(3):
        worker.submit(env(i))
    delivery.sending.wait(10)
    parent_lock, parent_thread = worker._lock, worker._thread
    worker._after_fork()  # what os.register_at_fork runs in the child
    assert worker.pending() == 0 and worker._thread is None
    assert worker._lock is not parent_lock and delivery.forks == 1
    # In a real child that thread does not exist; here it has to be stopped by hand.
    delivery.gate.set()
    worker.kill()
    assert parent_thread is not None
    parent_thread.join(10)


# -- monitor ---------------------------------------------------------------------------------


class Health:
    def __init__(self) -> None:
        self.healthy = True

    def is_healthy(self) -> bool:
        return self.healthy


def test_the_thread_started_inside_a_transaction_keeps_none_of_it(rx: Receiver) -> None:
    # The SDK's threads start with scopes of their own, not forks of the caller's: a
    # transport thread holding the current scope as it was at the first capture would
    # keep that transaction (and its spans) alive for the life of the process.
    name = "the first capture's"
    tripwire.init(dsn=rx.dsn(), traces_sample_rate=1.0)
    with tripwire.start_transaction(name=name):
        tripwire.capture_message("first")  # starts the transport's thread
    tripwire.flush()
    gc.collect()
    # `type(o) is`: isinstance() would ask lazy objects (Django's settings) their class.
    alive = [o for o in gc.get_objects() if type(o) is Transaction and o.name == name]
    assert alive == []
    assert len(rx.items("transaction")) == 1


def test_monitor_downsamples_while_unhealthy(leaks: None) -> None:
    transport: Any = Health()
    monitor = Monitor(transport, interval=3600)
    assert monitor.downsample_factor == 0  # starts the thread
    assert monitor._thread is not None and monitor._thread.is_alive()
    transport.healthy = False
    for expected in range(1, MAX_DOWNSAMPLE_FACTOR + 3):
        monitor.check_health()
        monitor.set_downsample_factor()
        assert monitor.downsample_factor == min(expected, MAX_DOWNSAMPLE_FACTOR)
    assert not monitor.is_healthy()
    transport.healthy = True
    monitor.check_health()
    monitor.set_downsample_factor()
    assert monitor.downsample_factor == 0 and monitor.is_healthy()
    monitor.kill()


def test_client_has_a_monitor_fed_by_the_transport(rx: Receiver) -> None:
    tripwire.init(dsn=rx.dsn(), default_integrations=False)
    client = tripwire.get_client()
    assert isinstance(client.monitor, Monitor)
    assert client.monitor.transport is client.transport
    assert not isinstance(tripwire.monitor, type(tripwire))  # still the crons decorator
    tripwire.init(dsn=rx.dsn(), default_integrations=False, enable_backpressure_handling=False)
    assert tripwire.get_client().monitor is None
    client.close()
    _join_workers(client)


def _join_workers(*clients: Any) -> None:
    """The closed clients' threads end: fails (instead of waiting it out) on a leak."""
    assert_sdk_threads_ended()


# -- spotlight -------------------------------------------------------------------------------


def test_spotlight_url_values() -> None:
    assert spotlight_url(True) == DEFAULT_URL
    assert spotlight_url("1") == DEFAULT_URL
    assert spotlight_url("false") is None
    assert spotlight_url(None) is None
    assert spotlight_url("http://h:1/stream") == "http://h:1/stream"


def test_spotlight_gets_a_copy_of_every_envelope(rx: Receiver) -> None:
    tripwire.init(spotlight=f"{rx.url}/stream", default_integrations=False)  # no DSN needed
    tripwire.capture_message("to the sidecar")
    tripwire.flush(10)
    (request,) = rx.wait_for(1)
    assert request.path == "/stream"
    assert request.headers["content-type"] == "application/x-sentry-envelope"
    assert "content-encoding" not in request.headers
    event = request.envelope.get_event()
    assert event is not None and event["message"] == "to the sidecar"
    tripwire.get_client().close()
    _join_workers()


def test_spotlight_from_environment_alongside_the_dsn(
    rx: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Receiver() as sidecar:
        monkeypatch.setenv("SENTRY_SPOTLIGHT", f"{sidecar.url}/stream")
        tripwire.init(dsn=rx.dsn(), default_integrations=False)
        tripwire.capture_message("both")
        tripwire.flush(10)
        assert [e["message"] for e in rx.events()] == ["both"]
        assert sidecar.wait_for(1)[0].path == "/stream"
        tripwire.get_client().close()
        _join_workers()


# -- atexit ----------------------------------------------------------------------------------


def test_atexit_handler_closes_the_client_with_the_callback(rx: Receiver) -> None:
    from tripwire.integrations.atexit import AtexitIntegration, _shutdown

    calls: list[tuple[int, float]] = []
    tripwire.init(
        dsn=rx.dsn(),
        default_integrations=False,
        shutdown_timeout=0.2,
        integrations=[AtexitIntegration(lambda pending, timeout: calls.append((pending, timeout)))],
        # One request out at a time, so which envelope is still queued is certain.
        _experiments={"transport_connections": 1},
    )
    client = tripwire.get_client()
    rx.hold()  # the server never answers: the flush gives up after shutdown_timeout
    tripwire.capture_message("at exit")
    tripwire.capture_message("never sent")
    rx.wait_for(1)
    _shutdown()
    rx.release()
    assert client.transport is None  # closed
    assert calls == [(2, 0.2)]
    assert client.outcomes.snapshot() == {("network_error", "error"): 1}
    _join_workers()


def test_default_integrations_include_atexit(rx: Receiver) -> None:
    tripwire.init(dsn=rx.dsn())
    assert tripwire.get_client().get_integration("atexit") is not None
    tripwire.get_client().close()
    _join_workers()
