"""Sampling: rates, traces_sampler, parent decisions, sample_rand, outcomes, the free path."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from _side_by_side import run_both
from hypothesis import given
from hypothesis import strategies as st

import tripwire
from tripwire._ids import ids
from tripwire.outcomes import DataCategory, DropReason
from tripwire.testing import MemoryTransport
from tripwire.tracing import Transaction
from tripwire.tracing._propagation import sample_rand_from_trace_id
from tripwire.tracing._sampling import decide, has_tracing_enabled, to_rate

DSN = "https://pub@o17.ingest.example.com/5"
TRACE = "771a43a4192642f0b136d5159a501700"


def init(**options: Any) -> MemoryTransport:
    transport = MemoryTransport()
    tripwire.init(dsn=DSN, transport=transport, default_integrations=False, **options)
    return transport


def lost() -> dict[tuple[str, str], int]:
    return tripwire.get_client().outcomes.snapshot()


# -- the pure decision ---------------------------------------------------------------------


@given(
    rate=st.floats(min_value=0.0, max_value=1.0),
    rand=st.floats(min_value=0.0, max_value=1.0, exclude_max=True),
    factor=st.integers(min_value=0, max_value=5),
)
def test_decide_samples_exactly_below_the_rate(rate: float, rand: float, factor: int) -> None:
    result = decide(rate, rand, factor)
    effective = rate / 2**factor
    assert result.sample_rate == effective
    assert result.sampled == (effective > 0 and rand < effective)


@pytest.mark.parametrize("value", ["0.5", 1.5, -0.1, float("nan"), None, object(), [1]])
def test_invalid_rates_never_sample(value: Any) -> None:
    result = decide(value, 0.0)
    assert (result.sampled, result.sample_rate) == (False, None)


def test_rates_accept_numbers_and_bools() -> None:
    assert [to_rate(v) for v in (True, False, 1, Decimal("0.25"), 0.5)] == [
        1.0,
        0.0,
        1.0,
        0.25,
        0.5,
    ]


@pytest.mark.parametrize(
    ("options", "enabled"),
    [
        ({}, False),
        ({"traces_sample_rate": 0.0}, True),
        ({"traces_sampler": lambda ctx: 1}, True),
        ({"enable_tracing": True}, True),
        ({"enable_tracing": False, "traces_sample_rate": 1.0}, False),
    ],
)
def test_has_tracing_enabled(options: dict[str, Any], enabled: bool) -> None:
    assert has_tracing_enabled(options) is enabled


@given(
    trace_id=st.from_regex(r"\A[0-9a-f]{32}\Z"),
    rate=st.floats(min_value=0.0, max_value=1.0),
    sampled=st.booleans(),
)
def test_derived_sample_rand_agrees_with_the_parent(
    trace_id: str, rate: float, sampled: bool
) -> None:
    if (sampled and rate == 0.0) or (not sampled and rate == 1.0):
        with pytest.raises(ValueError):  # no value agrees: sentry_sdk then leaves it out
            sample_rand_from_trace_id(trace_id, sampled, rate)
        return
    rand = sample_rand_from_trace_id(trace_id, sampled, rate)
    assert rand == sample_rand_from_trace_id(trace_id, sampled, rate)  # a pure function
    assert 0.0 <= rand < 1.0
    if 0.000001 <= rate <= 0.999999:
        assert (rand < rate) == sampled


# -- options ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "sampled", "rate"),
    [
        ({"traces_sample_rate": 1.0}, True, 1.0),
        ({"traces_sample_rate": 0.0}, False, 0.0),
        ({"enable_tracing": True}, True, 1.0),
        ({"enable_tracing": False, "traces_sample_rate": 1.0}, False, None),
        ({}, False, None),
        ({"traces_sampler": lambda ctx: True}, True, 1.0),
        ({"traces_sampler": lambda ctx: "0.5"}, False, None),
        ({"traces_sampler": lambda ctx: None}, False, None),
        ({"traces_sampler": lambda ctx: 1 / 0}, False, None),
    ],
)
def test_sampling_options(options: dict[str, Any], sampled: bool, rate: Any) -> None:
    if "enable_tracing" in options:  # deprecated (as in sentry_sdk 2.x), still honoured
        with pytest.warns(DeprecationWarning, match="enable_tracing"):
            transport = init(**options)
    else:
        transport = init(**options)
    with tripwire.start_transaction(name="t") as tx:
        pass
    assert (tx.sampled, tx.sample_rate) == (sampled, rate)
    assert len(transport.transactions) == int(sampled)


def test_traces_sampler_gets_the_sampling_context() -> None:
    contexts: list[dict[str, Any]] = []

    def sampler(context: dict[str, Any]) -> float:
        contexts.append(context)
        return 0.5 if context.get("priority") == "high" else 0.0

    init(traces_sampler=sampler)
    tx = tripwire.continue_trace(
        {"sentry-trace": f"{TRACE}-1234567890abcdef-1"}, op="http.server", name="GET /"
    )
    tripwire.start_transaction(tx, custom_sampling_context={"priority": "high"})
    [context] = contexts
    assert context["parent_sampled"] is True
    assert context["priority"] == "high"
    tx_context = context["transaction_context"]
    assert (tx_context["name"], tx_context["op"], tx_context["trace_id"]) == (
        "GET /",
        "http.server",
        TRACE,
    )
    assert tx_context["parent_span_id"] == "1234567890abcdef"
    # The sampler's rate replaces the parent's decision; sample_rand comes from the trace id.
    assert tx.sample_rate == 0.5
    assert sample_rand_from_trace_id(TRACE) == 0.471308
    assert tx.sampled is True


@pytest.mark.parametrize("parent", [True, False])
def test_parent_decision_is_inherited(parent: bool) -> None:
    init(traces_sample_rate=0.5)
    flag = "1" if parent else "0"
    tx = tripwire.continue_trace({"sentry-trace": f"{TRACE}-1234567890abcdef-{flag}"})
    tripwire.start_transaction(tx)
    assert tx.sampled is parent
    assert tx.sample_rate == float(parent)


def test_explicit_sampled_wins_when_tracing_is_on() -> None:
    init(traces_sample_rate=0.0)
    tx = tripwire.start_transaction(name="t", sampled=True)
    assert (tx.sampled, tx.sample_rate) == (True, 1.0)
    init()  # tracing off: nothing is sampled
    assert tripwire.start_transaction(name="t", sampled=True).sampled is False


def test_sample_rand_of_a_new_trace_travels_with_it() -> None:
    init(traces_sample_rate=1.0)
    rands = set()
    for _ in range(20):
        tx = tripwire.start_transaction(name="t")
        rand = tx.get_baggage().sentry_items["sample_rand"]
        assert len(rand) == 8 and 0.0 <= float(rand) < 1.0  # six decimals
        assert f"sentry-sample_rand={rand}" in tx.get_baggage().serialize()
        rands.add(rand)
    assert len(rands) > 1


def test_spans_needing_no_serialization_skip_it() -> None:
    """The fast path for plain spans sends exactly what the full serializer would."""
    transport = init(traces_sample_rate=1.0, max_value_length=8)
    for value in ("short", "much too long", float("nan"), 10**5000, {"k": [1, (2,)]}):
        with tripwire.start_transaction(name="t") as tx:
            tx.start_child(op="op", name="desc").finish()
            tx.start_child(op="op").set_data("v", value)
            tx._spans[-1].finish()
    sent = [event["spans"][1]["data"]["v"] for event in transport.transactions]
    assert sent[0] == "short"
    assert sent[1] == "much ..."
    assert sent[2] == "nan" and sent[3] == "<broken repr>" and sent[4] == {"k": [1, [2]]}
    assert transport.transactions[1]["_meta"]["spans"]["1"]["data"]["v"][""]["len"] == 13


# -- outcomes --------------------------------------------------------------------------------


def test_unsampled_transactions_are_counted() -> None:
    init(traces_sample_rate=0.0)
    with tripwire.start_transaction(name="t") as tx:
        tx.start_child(op="a").finish()
    assert lost() == {("sample_rate", "transaction"): 1, ("sample_rate", "span"): 1}


def test_tracing_off_counts_nothing() -> None:
    init()
    with tripwire.start_transaction(name="t"):
        pass
    assert lost() == {}


class _Monitor:
    downsample_factor = 2


def test_backpressure_downsamples_and_is_the_reason() -> None:
    init(traces_sample_rate=1.0)
    client = tripwire.get_client()
    client.monitor = _Monitor()
    tx = tripwire.start_transaction(name="t")
    assert tx.sample_rate == 0.25
    assert tx.get_baggage().sentry_items["sample_rate"] == "0.25"
    unsampled = tripwire.start_transaction(name="t", sampled=False)
    unsampled.finish()
    assert lost()[(DropReason.BACKPRESSURE.value, DataCategory.TRANSACTION.value)] == 1


# -- the unsampled path is (nearly) free -----------------------------------------------------


def _work() -> Transaction:
    with tripwire.start_transaction(name="bench", op="task") as tx:
        for _ in range(10):
            with tripwire.start_span(op="db", name="q") as span:
                span.set_tag("k", "v")
    return tx  # type: ignore[no-any-return]


def test_tracing_off_makes_no_ids_and_no_data() -> None:
    transport = init()
    made: list[str] = []

    def trace_id() -> str:
        made.append("trace")
        return "0" * 32

    def span_id() -> str:
        made.append("span")
        return "0" * 16

    ids.trace_id = trace_id
    ids.span_id = span_id
    tx = _work()
    assert made == []
    assert tx._data is None
    assert transport.raw == []


def test_unsampled_children_are_not_recorded() -> None:
    init(traces_sample_rate=0.0)
    tx = _work()
    assert tx._spans is None


def test_sampling_context_matches_sentry_sdk(tmp_path: Path) -> None:
    # What traces_sampler sees of a new, a continued and an explicitly built
    # transaction: its data (the thread) and whether it is in its parent's process.
    script = """
    import threading

    def sampler(context):
        tx = dict(context["transaction_context"])
        for key in ("trace_id", "span_id", "start_timestamp"):
            tx[key] = type(tx.pop(key)).__name__
        data = tx.get("data") or {}
        if data.get("thread.id") == str(threading.get_ident()):
            data["thread.id"] = "this thread"
        tx["source"] = str(tx["source"])
        NOTES.append([sorted(context), tx])
        return 1.0

    sentry_sdk.init(transport=KEEP, traces_sampler=sampler)
    with sentry_sdk.start_transaction(name="new", op="task"):
        pass
    headers = {"sentry-trace": "a" * 32 + "-" + "b" * 16 + "-1"}
    with sentry_sdk.start_transaction(sentry_sdk.continue_trace(headers, op="http", name="go")):
        pass
    from sentry_sdk.tracing import Transaction
    with sentry_sdk.start_transaction(Transaction(name="built", same_process_as_parent=False)):
        pass
    finish()
    """
    sentry, ours = run_both(script, tmp_path)
    assert ours["notes"] == sentry["notes"]
    assert [tx["same_process_as_parent"] for _, tx in ours["notes"]] == [True, False, False]
    assert ours["notes"][0][1]["data"] == {"thread.id": "this thread", "thread.name": "MainThread"}
