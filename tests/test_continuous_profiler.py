"""Continuous profiling: profile_chunk items, the two lifecycles, links to spans.

Real workloads run until the running chunk holds enough samples (polled with a
deadline that only bounds a failure); the chunks are read from what was sent.
"""

from __future__ import annotations

import json
import sys
import threading
import time
import warnings
from typing import Any

import pytest
from _profiles import HEX32, busy_work, check_sampled_profile, run_until, share, stacks_of
from _sentry_side import run_both

import tripwire
from tripwire.profiler import continuous_profiler
from tripwire.testing import MemoryTransport

DSN = "http://key@127.0.0.1:1/1"


def init(**options: Any) -> MemoryTransport:
    memory = MemoryTransport()
    options.setdefault("traces_sample_rate", 1.0)
    options.setdefault("profile_session_sample_rate", 1.0)
    tripwire.init(dsn=DSN, transport=memory, default_integrations=False, **options)
    return memory


def chunks(memory: MemoryTransport) -> list[dict[str, Any]]:
    return [
        json.loads(item.get_bytes())
        for envelope in list(memory.envelopes)
        for item in envelope.items
        if item.headers.get("type") == "profile_chunk"
    ]


def ticks_in_buffer() -> int:
    scheduler = continuous_profiler._scheduler
    buffer = scheduler.buffer if scheduler is not None else None
    return len(buffer.chunk._ticks) if buffer is not None else 0


def test_manual_lifecycle_sends_a_chunk_linked_to_spans() -> None:
    memory = init(profile_lifecycle="manual")
    before = time.time()
    tripwire.profiler.start_profiler()
    profiler_id = continuous_profiler.get_profiler_id()
    assert profiler_id is not None and HEX32.match(profiler_id)
    with tripwire.start_transaction(name="work", op="task"):
        with tripwire.start_span(op="child"):
            run_until(lambda: ticks_in_buffer() >= 30, lambda: busy_work(20_000))
    tripwire.profiler.stop_profiler()
    after = time.time()
    assert continuous_profiler.get_profiler_id() is None
    tripwire.flush()
    (chunk,) = chunks(memory)
    assert chunk["version"] == "2" and chunk["platform"] == "python"
    assert chunk["profiler_id"] == profiler_id and HEX32.match(chunk["chunk_id"])
    assert chunk["client_sdk"]["name"] == "tripwire.python"
    assert chunk["environment"] == "production"
    profile = chunk["profile"]
    check_sampled_profile(profile, "timestamp")
    assert all(before <= s["timestamp"] <= after for s in profile["samples"])
    main = str(threading.main_thread().ident)
    assert share(stacks_of(profile, main), "busy_work") > 0.5
    (event,) = memory.transactions
    assert event["contexts"]["profile"] == {"profiler_id": profiler_id}
    assert event["contexts"]["trace"]["data"]["profiler_id"] == profiler_id
    (span,) = event["spans"]
    assert span["data"]["profiler_id"] == profiler_id
    assert span["data"]["thread.id"] == main


def test_chunks_every_interval_share_the_profiler_id(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(continuous_profiler, "PROFILE_BUFFER_SECONDS", 0.2)
    memory = init(profile_lifecycle="manual")
    tripwire.profiler.start_profiler()
    run_until(lambda: len(chunks(memory)) >= 2, lambda: busy_work(20_000))
    tripwire.profiler.stop_profiler()
    tripwire.flush()
    sent = chunks(memory)
    assert len(sent) >= 3  # two full chunks, and the rest at stop
    assert len({c["profiler_id"] for c in sent}) == 1
    assert len({c["chunk_id"] for c in sent}) == len(sent)
    last = [max(s["timestamp"] for s in c["profile"]["samples"]) for c in sent]
    first = [min(s["timestamp"] for s in c["profile"]["samples"]) for c in sent]
    assert all(first[i + 1] >= last[i] for i in range(len(sent) - 1))  # consecutive


def test_trace_lifecycle_runs_while_a_root_span_runs() -> None:
    memory = init(profile_lifecycle="trace")
    tripwire.profiler.start_profiler()  # no effect in "trace"
    assert continuous_profiler.get_profiler_id() is None
    with tripwire.start_transaction(name="first", op="task") as transaction:
        profiler_id = continuous_profiler.get_profiler_id()
        assert profiler_id is not None
        run_until(lambda: ticks_in_buffer() >= 10, lambda: busy_work(20_000))
    # The sampler ends the chunk at its next tick once no root span holds it.
    deadline = time.monotonic() + 20
    while continuous_profiler.get_profiler_id() is not None or not chunks(memory):
        assert time.monotonic() < deadline
        busy_work(20_000)
    tripwire.flush()
    (chunk,) = chunks(memory)
    assert chunk["profiler_id"] == profiler_id
    assert transaction.get_profile_context() == {"profiler_id": profiler_id}
    (event,) = memory.transactions
    assert event["contexts"]["profile"] == {"profiler_id": profiler_id}
    # The next root span starts a new session.
    with tripwire.start_transaction(name="second", op="task"):
        second = continuous_profiler.get_profiler_id()
    assert second is not None and second != profiler_id


def test_unsampled_session_never_profiles() -> None:
    memory = init(profile_session_sample_rate=0.0, profile_lifecycle="manual")
    tripwire.profiler.start_profiler()
    assert continuous_profiler.get_profiler_id() is None
    with tripwire.start_transaction(name="t"), tripwire.start_span(op="s"):
        pass
    tripwire.profiler.stop_profiler()
    tripwire.flush()
    assert chunks(memory) == []
    (event,) = memory.transactions
    assert "profile" not in event["contexts"]
    assert "profiler_id" not in event["spans"][0]["data"]


def test_stop_then_start_is_a_new_profiler_id_and_old_names_warn() -> None:
    init(profile_lifecycle="manual")
    with pytest.warns(DeprecationWarning, match="start_profile_session"):
        tripwire.profiler.start_profile_session()
    first = continuous_profiler.get_profiler_id()
    with pytest.warns(DeprecationWarning, match="stop_profile_session"):
        tripwire.profiler.stop_profile_session()
    tripwire.profiler.start_profiler()
    second = continuous_profiler.get_profiler_id()
    tripwire.profiler.stop_profiler()
    assert first and second and first != second


def test_chunk_reaches_a_loopback_receiver(rx: Any) -> None:
    tripwire.init(dsn=rx.dsn(), profile_session_sample_rate=1.0, release="r1")
    tripwire.profiler.start_profiler()
    run_until(lambda: ticks_in_buffer() >= 5, lambda: busy_work(20_000))
    tripwire.profiler.stop_profiler()
    tripwire.flush()
    (request,) = rx.wait_for(1)
    assert request.item_types == ["profile_chunk"]
    (item,) = rx.items("profile_chunk")
    chunk = json.loads(item.payload.get_bytes())
    assert chunk["release"] == "r1"
    check_sampled_profile(chunk["profile"], "timestamp")


def test_relay_normalizes_a_transaction_linked_to_a_profile() -> None:
    """sentry-relay's Python bindings normalize events only: they expose no profile or
    profile_chunk processor, so the chunk's shape is checked by check_sampled_profile
    and the transaction that links to it goes through Relay's StoreNormalizer."""
    processing = pytest.importorskip("sentry_relay.processing")
    memory = init(profile_lifecycle="manual")
    tripwire.profiler.start_profiler()
    with tripwire.start_transaction(name="work", op="task"), tripwire.start_span(op="child"):
        run_until(lambda: ticks_in_buffer() >= 5, lambda: busy_work(20_000))
    tripwire.profiler.stop_profiler()
    tripwire.flush()
    (event,) = memory.transactions
    normalized = processing.StoreNormalizer(project_id=1).normalize_event(event)
    assert "errors" not in normalized, normalized.get("errors")
    assert normalized["contexts"]["profile"]["profiler_id"] == event["contexts"]["profile"][
        "profiler_id"
    ].replace("-", "")
    assert normalized["spans"][0]["data"]["profiler_id"] == event["spans"][0]["data"]["profiler_id"]


def shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    return type(value).__name__


def test_chunk_shape_matches_sentry_sdk() -> None:
    def scenario(sdk: Any) -> None:
        sdk.profiler.start_profiler()
        with sdk.start_transaction(name="work", op="task"), sdk.start_span(op="child"):
            end = time.monotonic() + 0.2
            run_until(lambda: time.monotonic() > end, lambda: busy_work(20_000))
        sdk.profiler.stop_profiler()

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        try:
            (theirs, _), (ours, _) = run_both(
                scenario,
                traces_sample_rate=1.0,
                profile_session_sample_rate=1.0,
                profile_lifecycle="manual",
            )
        finally:
            sys.modules["sentry_sdk.profiler.continuous_profiler"].teardown_continuous_profiler()

    def by_type(envelopes: Any) -> dict[str, Any]:
        return {t: p for _, items in envelopes for t, p in items}

    their_items, our_items = by_type(theirs), by_type(ours)
    assert set(our_items) == set(their_items) == {"profile_chunk", "transaction"}
    a, b = shape(their_items["profile_chunk"]), shape(our_items["profile_chunk"])
    for s in (a, b):
        s["profile"]["frames"][0].pop("in_app", None)
        s["profile"]["thread_metadata"] = sorted(
            set(map(str, s["profile"]["thread_metadata"].values()))
        )
    assert b == a
    their_tx, our_tx = their_items["transaction"], our_items["transaction"]
    assert their_tx["contexts"]["profile"].keys() == our_tx["contexts"]["profile"].keys()
    assert their_tx["spans"][0]["data"].keys() == our_tx["spans"][0]["data"].keys()
