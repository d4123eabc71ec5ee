"""Transaction profiles: real workloads, what the `profile` item says about them.

Each test runs real code (a CPU-bound function, a thread blocked on a loopback
socket, an asyncio loop) inside a profiled transaction until the profile holds
enough samples (polled, with a deadline that only bounds a failure), then reads the
profile item sent in the transaction's envelope.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
import threading
import warnings
from decimal import Decimal
from typing import Any

import pytest
from _profiles import (
    HEX32,
    busy_work,
    check_sampled_profile,
    run_until,
    share,
    stacks_of,
)
from _sentry_side import run_both

import tripwire
from tripwire.profiler import transaction_profiler
from tripwire.profiler._sampler import Epoch, Sampler
from tripwire.testing import MemoryTransport

DSN = "http://key@127.0.0.1:1/1"


def init(**options: Any) -> MemoryTransport:
    memory = MemoryTransport()
    options.setdefault("traces_sample_rate", 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # transaction profiling is
        tripwire.init(dsn=DSN, transport=memory, default_integrations=False, **options)
    return memory


def items_of(memory: MemoryTransport, kind: str) -> list[dict[str, Any]]:
    out = []
    for envelope in memory.envelopes:
        for item in envelope.items:
            if item.headers.get("type") == kind:
                out.append(json.loads(item.get_bytes()))
    return out


def profiled(min_samples: int = 30) -> Any:
    """Run busy_work inside a transaction until its profile has `min_samples` ticks."""
    with tripwire.start_transaction(name="work", op="task") as transaction:
        profile = transaction._profile
        assert profile is not None and profile.active
        run_until(lambda: profile.unique_samples >= min_samples, lambda: busy_work(20_000))
    return transaction


def test_cpu_bound_function_is_in_most_samples_of_the_main_thread() -> None:
    memory = init(profiles_sample_rate=1.0)
    profiled()
    tripwire.flush()
    (envelope,) = memory.envelopes
    types = [item.headers["type"] for item in envelope.items]
    assert sorted(types) == ["profile", "transaction"]  # one envelope, as sentry_sdk
    (event,) = items_of(memory, "transaction")
    (payload,) = items_of(memory, "profile")
    main = str(threading.main_thread().ident)
    assert payload["version"] == "1" and payload["platform"] == "python"
    assert HEX32.match(payload["event_id"]) and payload["event_id"] != event["event_id"]
    (tx,) = payload["transactions"]
    assert tx["id"] == event["event_id"]
    assert tx["name"] == "work"
    assert tx["trace_id"] == event["contexts"]["trace"]["trace_id"]
    assert tx["active_thread_id"] == main
    assert int(tx["relative_end_ns"]) > 0
    assert payload["timestamp"] == event["start_timestamp"]
    profile = payload["profile"]
    check_sampled_profile(profile, "elapsed_since_start_ns")
    assert profile["thread_metadata"][main]["name"] == "MainThread"
    stacks = stacks_of(profile, main)
    assert len(stacks) >= 30
    assert share(stacks, "busy_work") > 0.5
    assert all(names[-1] == "<module>" or "pytest" in " ".join(names) for names in stacks)
    (frame,) = [f for f in profile["frames"] if f["function"] == "busy_work"]
    assert frame["module"] == "_profiles" and frame["filename"] == "_profiles.py"
    assert frame["abs_path"].endswith(os.path.join("tests", "_profiles.py"))
    # The sampler's own thread is not profiled.
    assert not any(
        meta["name"].startswith("tripwire.profiler")
        and tid in {s["thread_id"] for s in profile["samples"]}
        for tid, meta in profile["thread_metadata"].items()
    )


def wait_for_io(sock: socket.socket) -> bytes:
    return sock.recv(1)


def test_a_thread_blocked_on_a_socket_and_a_busy_main_thread() -> None:
    memory = init(profiles_sample_rate=1.0)
    left, right = socket.socketpair()
    reader = threading.Thread(target=wait_for_io, args=(left,), name="io-reader")
    reader.start()
    try:
        profiled()
    finally:
        right.sendall(b"x")
        reader.join()
        left.close()
        right.close()
    tripwire.flush()
    (payload,) = items_of(memory, "profile")
    profile = payload["profile"]
    tid = str(reader.ident)
    assert profile["thread_metadata"].get(tid, {"name": "io-reader"})["name"] == "io-reader"
    io_stacks = stacks_of(profile, tid)
    assert len(io_stacks) >= 20
    assert share(io_stacks, "wait_for_io") > 0.9  # blocked in it from start to end
    assert share(io_stacks, "busy_work") == 0
    assert share(stacks_of(profile, str(threading.main_thread().ident)), "busy_work") > 0.5


async def crunch(profile: Any) -> None:
    # Long steps: each `await` passes through select(), which releases the GIL and
    # hands it to the waiting sampler, so short steps would be sampled in select().
    while profile.unique_samples < 30:
        busy_work(400_000)
        await asyncio.sleep(0)


async def idle_task(stop: asyncio.Event) -> None:
    await stop.wait()


def test_an_asyncio_loop_names_the_busy_coroutine() -> None:
    memory = init(profiles_sample_rate=1.0)

    async def main() -> None:
        stop = asyncio.Event()
        waiter = asyncio.ensure_future(idle_task(stop))
        with tripwire.start_transaction(name="loop", op="task") as transaction:
            await asyncio.wait_for(crunch(transaction._profile), 30)
        stop.set()
        await waiter

    asyncio.run(main())
    tripwire.flush()
    (payload,) = items_of(memory, "profile")
    stacks = stacks_of(payload["profile"], str(threading.main_thread().ident))
    assert share(stacks, "crunch") > 0.5
    assert share(stacks, "busy_work") > 0.5
    assert share(stacks, "idle_task") < 0.2  # suspended: not on the thread's stack


def test_profiles_sampler_sees_the_sampling_context_and_decides() -> None:
    seen: list[dict[str, Any]] = []

    def sampler(context: dict[str, Any]) -> float:
        seen.append(context)
        return 1.0 if context["transaction_context"]["name"] == "yes" else 0.0

    memory = init(profiles_sampler=sampler)
    for name in ("yes", "no"):
        with tripwire.start_transaction(
            name=name, op="task", custom_sampling_context={"k": 1}
        ) as tx:
            if tx._profile is not None and tx._profile.active:
                run_until(lambda: tx._profile.unique_samples >= 3, lambda: busy_work(5_000))
    tripwire.flush()
    assert [c["transaction_context"]["name"] for c in seen] == ["yes", "no"]
    assert all(c["k"] == 1 and c["parent_sampled"] is None for c in seen)
    assert [p["transactions"][0]["name"] for p in items_of(memory, "profile")] == ["yes"]
    assert len(items_of(memory, "transaction")) == 2


def test_no_profile_without_rate_or_for_unsampled_transactions() -> None:
    memory = init(profiles_sample_rate=0.0)
    with tripwire.start_transaction(name="a") as tx:
        assert tx._profile is None
    tripwire.get_client().close()
    memory = init(traces_sample_rate=0.0, profiles_sample_rate=1.0)
    with tripwire.start_transaction(name="b") as tx:
        assert tx._profile is None
    tripwire.flush()
    assert items_of(memory, "profile") == []


def test_any_real_number_is_a_rate_and_a_string_is_none() -> None:
    # As sentry_sdk: a Decimal profiles (it was refused: only int and float counted);
    # a string profiles nothing (sentry_sdk's init() raises).
    memory = init(profiles_sample_rate=Decimal("1"))
    profiled(min_samples=2)
    tripwire.get_client().close()
    assert len(items_of(memory, "profile")) == 1
    memory = init(profiles_sample_rate="1")
    with tripwire.start_transaction(name="b") as tx:
        assert tx._profile is None
    tripwire.flush()
    assert items_of(memory, "profile") == []


def test_a_profile_with_fewer_than_two_samples_is_not_sent() -> None:
    init(profiles_sample_rate=1.0)
    scheduler = transaction_profiler.ThreadScheduler(101)
    profile = transaction_profiler.Profile(True, 0, scheduler=scheduler)
    profile._set_initial_sampling_decision({})
    assert profile.sampled is True
    profile.unique_samples = 1
    assert not profile.valid()
    profile.unique_samples = 2
    assert profile.valid()


def test_deprecated_experiments_rate_profiles_and_warns(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="tripwire"):
        memory = init(_experiments={"profiles_sample_rate": 1.0})
        profiled(min_samples=5)
    tripwire.flush()
    assert len(items_of(memory, "profile")) == 1
    assert any(
        "_experiments['profiles_sample_rate'] is deprecated" in r.message for r in caplog.records
    )


def test_profile_1x_constructor_and_hub_deprecation() -> None:
    init(profiles_sample_rate=1.0)
    with tripwire.start_transaction(name="t") as tx:
        profile = transaction_profiler.Profile(tx)
        assert profile.sampled is True
        with pytest.warns(DeprecationWarning, match="hub"):
            transaction_profiler.Profile(tx, hub=object())


def test_profile_reaches_a_loopback_receiver(rx: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        tripwire.init(dsn=rx.dsn(), traces_sample_rate=1.0, profiles_sample_rate=1.0)
    profiled(min_samples=10)
    tripwire.flush()
    (request,) = rx.wait_for(1)
    assert sorted(request.item_types) == ["profile", "transaction"]
    (profile,) = [json.loads(item.payload.get_bytes()) for item in rx.items("profile")]
    (event,) = [json.loads(item.payload.get_bytes()) for item in rx.items("transaction")]
    assert profile["transactions"][0]["id"] == event["event_id"]
    check_sampled_profile(profile["profile"], "elapsed_since_start_ns")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_profiling_works_in_a_forked_child() -> None:
    memory = init(profiles_sample_rate=1.0)
    profiled(min_samples=5)  # the sampler thread runs in the parent
    read_end, write_end = os.pipe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads (3.12+)
        pid = os.fork()
    if pid == 0:  # the child: only this thread exists
        status = 1
        try:
            before = len(memory.envelopes)
            profiled(min_samples=10)
            tripwire.flush()
            sent = [
                json.loads(item.get_bytes())
                for envelope in memory.envelopes[before:]
                for item in envelope.items
                if item.headers.get("type") == "profile"
            ]
            os.write(write_end, json.dumps(len(sent[0]["profile"]["samples"])).encode())
            status = 0
        finally:
            os._exit(status)
    os.close(write_end)
    _, status = os.waitpid(pid, 0)
    data = os.read(read_end, 100)
    os.close(read_end)
    assert status == 0 and int(data) >= 10


def test_epochs_are_bounded_and_profiles_span_them(monkeypatch: pytest.MonkeyPatch) -> None:
    from tripwire.profiler import _sampler

    monkeypatch.setattr(_sampler, "MAX_STACKS", 3)
    sampler = Sampler()
    ticks = []
    epochs = set()

    def deep(n: int) -> None:
        if n:
            deep(n - 1)
            return
        tick = sampler._take()
        ticks.append(tick)
        epochs.add(id(tick[1]))

    for n in range(8):  # eight different stacks on this thread
        deep(n)
    assert len(epochs) >= 2
    # An epoch is full at MAX_STACKS; one tick may add a stack per thread past it.
    threads = len(threading.enumerate())
    assert all(len(tick[1].stacks) <= 3 + threads for tick in ticks)
    profile = transaction_profiler.Profile(True, 1)
    profile._ticks = ticks
    out = profile.process()
    main = str(threading.get_ident())
    depths = [len(names) for names in stacks_of(out, main)]
    assert depths == sorted(depths) and len(set(depths)) == 8  # each stack resolved in its epoch


def test_unchanged_stacks_of_idle_threads_are_not_walked_again() -> None:
    stop = threading.Event()
    idle = threading.Thread(target=stop.wait, name="idle")
    idle.start()
    try:
        sampler = Sampler()
        first = sampler._take()
        run_until(lambda: idle.ident in sampler._prev, lambda: sampler._take())
        frame = sampler._prev[idle.ident][0]
        second = sampler._take()
        assert sampler._prev[idle.ident][0] is frame
        pairs1 = dict(zip(first[2][::2], first[2][1::2]))
        pairs2 = dict(zip(second[2][::2], second[2][1::2]))
        assert pairs1[idle.ident] == pairs2[idle.ident]
        assert isinstance(first[1], Epoch)
    finally:
        stop.set()
        idle.join()


def test_reset_stops_the_sampler_thread() -> None:
    init(profiles_sample_rate=1.0)
    profiled(min_samples=3)
    names = [t.name for t in threading.enumerate()]
    assert "tripwire.profiler.ThreadScheduler" in names
    # conftest's _fresh_sdk fails the test if reset() leaves the thread running.


# -- differential: the item's shape against sentry_sdk 2.75 -------------------------------


def shape(value: Any) -> Any:
    """Keys and nesting, not values (lists: the shape of their first element)."""
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def test_profile_item_shape_matches_sentry_sdk() -> None:
    def scenario(sdk: Any) -> None:
        with sdk.start_transaction(name="work", op="task") as transaction:
            profile = transaction._profile
            run_until(lambda: profile.unique_samples >= 5, lambda: busy_work(20_000))

    try:
        (theirs, _), (ours, _) = run_both(
            scenario, traces_sample_rate=1.0, profiles_sample_rate=1.0
        )
    finally:
        sentry_tp = sys.modules["sentry_sdk.profiler.transaction_profiler"]
        sentry_tp.teardown_profiler()
    their_items = dict(theirs[0][1])
    our_items = dict(ours[0][1])
    assert set(their_items) == set(our_items) == {"profile", "transaction"}
    theirs_shape, ours_shape = shape(their_items["profile"]), shape(our_items["profile"])
    # Frames: in_app is set by both only where a rule decides; compare the keys they always have.
    for s in (theirs_shape, ours_shape):
        s["profile"]["frames"][0].pop("in_app", None)
        s["profile"]["thread_metadata"] = sorted(
            set(map(str, s["profile"]["thread_metadata"].values()))
        )
    assert ours_shape == theirs_shape
    assert (
        our_items["transaction"]["contexts"].keys() == their_items["transaction"]["contexts"].keys()
    )
