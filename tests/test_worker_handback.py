"""The worker hands the interpreter lock back to a calling thread that yielded it."""

from __future__ import annotations

import time

import pytest
from test_transport_worker import FakeDelivery, env

from tripwire.transport import _worker
from tripwire.transport._worker import Worker


def test_handing_back_mid_intake_keeps_every_envelope_in_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Hand back after every envelope: the intake is still emptied, in order.
    monkeypatch.setattr(_worker, "_HOLD_SECONDS", 0.0)
    sleeps: list[float] = []
    monkeypatch.setattr(time, "sleep", sleeps.append)
    delivery = FakeDelivery()
    worker = Worker(delivery, queue_size=100)
    sent = [env(i) for i in range(10)]
    worker._intake.extend(sent)
    worker._yielding = True  # as submit sets it around its yield
    worker._take_intake()
    assert not worker._intake
    assert [e.plain() for e in worker._backlog] == [e.serialize() for e in sent]
    assert len(sleeps) == 1  # the flag is cleared once handed back
    assert worker._yielding is False
    assert not delivery.lost


def test_submit_clears_the_yield_flag_after_its_yield(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[bool] = []
    worker = Worker(FakeDelivery(), queue_size=4)
    monkeypatch.setattr(time, "sleep", lambda _s: seen.append(worker._yielding))
    worker._thread = object()  # type: ignore[assignment]  # no thread: only the yield matters
    for i in range(4):
        assert worker.submit(env(i))
    assert seen == [True]  # the worker sees the flag while the caller waits
    assert worker._yielding is False
