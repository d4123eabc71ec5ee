"""Propagation: sentry-trace, traceparent, baggage, continue_trace, outgoing headers."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import tripwire
from tripwire.testing import MemoryTransport, reset
from tripwire.tracing import Baggage, Span, extract_sentrytrace_data
from tripwire.tracing._propagation import extract_w3c_traceparent
from tripwire.tracing_utils import (
    EnvironHeaders,
    add_sentry_baggage_to_headers,
    normalize_incoming_data,
    should_propagate_trace,
)

DSN = "https://pub@o17.ingest.example.com/5"
TRACE = "771a43a4192642f0b136d5159a501700"
PARENT = "1234567890abcdef"


def init(**options: Any) -> MemoryTransport:
    transport = MemoryTransport()
    tripwire.init(
        dsn=options.pop("dsn", DSN),
        transport=transport,
        release="1.0",
        default_integrations=False,
        **options,
    )
    return transport


def outgoing() -> dict[str, str]:
    return dict(tripwire.get_current_scope().iter_trace_propagation_headers())


# -- header parsing ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (f"{TRACE}-{PARENT}-1", (TRACE, PARENT, True)),
        (f"{TRACE}-{PARENT}-0", (TRACE, PARENT, False)),
        (f" {TRACE}-{PARENT} ", (TRACE, PARENT, None)),
        (TRACE, (TRACE, None, None)),
        (f"-{PARENT}-1", (None, PARENT, True)),
        (f"{TRACE}-{PARENT}-x", None),
        (f"{TRACE.upper()}-{PARENT}", None),
        ("garbage", None),
        ("", None),
        (None, None),
    ],
)
def test_sentry_trace_parsing(header: Any, expected: Any) -> None:
    parsed = extract_sentrytrace_data(header)
    if expected is None:
        assert parsed is None
    else:
        assert parsed is not None
        assert (parsed["trace_id"], parsed["parent_span_id"], parsed["parent_sampled"]) == expected


@pytest.mark.parametrize(
    ("header", "sampled"),
    [
        (f"00-{TRACE}-{PARENT}-01", True),
        (f"00-{TRACE}-{PARENT}-00", False),
        (f"00-{TRACE.upper()}-{PARENT}-03", True),
        (f"ff-{TRACE}-{PARENT}-01", None),
        (f"00-{'0' * 32}-{PARENT}-01", None),
        (f"00-{TRACE}-{'0' * 16}-01", None),
        ("00-abc-def-01", None),
    ],
)
def test_w3c_traceparent_parsing(header: str, sampled: Any) -> None:
    parsed = extract_w3c_traceparent(header)
    if sampled is None:
        assert parsed is None
    else:
        assert parsed == {"trace_id": TRACE, "parent_span_id": PARENT, "parent_sampled": sampled}


def test_incoming_baggage_keeps_third_party_entries() -> None:
    baggage = Baggage.from_incoming_header(
        "other=1, sentry-trace_id=abc,sentry-user_id=Am%C3%A9lie , vendor=x;prop=1,novalue"
    )
    assert baggage.sentry_items == {"trace_id": "abc", "user_id": "Amélie"}
    assert baggage.third_party_items == "other=1,vendor=x;prop=1"
    assert baggage.mutable is False
    assert baggage.serialize() == "sentry-trace_id=abc,sentry-user_id=Am%C3%A9lie"
    assert baggage.serialize(include_third_party=True) == (
        "sentry-trace_id=abc,sentry-user_id=Am%C3%A9lie,other=1,vendor=x;prop=1"
    )
    assert Baggage.strip_sentry_baggage("a=1, sentry-trace_id=abc,b=2") == "a=1,b=2"
    only_theirs = Baggage.from_incoming_header("foo=bar")
    assert (only_theirs.sentry_items, only_theirs.mutable) == ({}, True)


_values = st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=20)


@given(st.dictionaries(st.from_regex(r"\A[a-z_]{1,10}\Z"), _values, max_size=6))
def test_baggage_round_trips(items: dict[str, str]) -> None:
    header = Baggage(items).serialize()
    assert Baggage.from_incoming_header(header).sentry_items == items


@given(st.text(max_size=300))
def test_baggage_parsing_never_raises(header: str) -> None:
    Baggage.from_incoming_header(header).serialize(include_third_party=True)


def test_oversized_baggage_is_ignored() -> None:
    header = "sentry-trace_id=abc," + "x=1," * 20_000
    assert Baggage.from_incoming_header(header).sentry_items == {}


def test_add_sentry_baggage_replaces_only_sentry_entries() -> None:
    headers = {"baggage": "vendor=1,sentry-trace_id=old"}
    add_sentry_baggage_to_headers(headers, "sentry-trace_id=new")
    assert headers == {"baggage": "vendor=1,sentry-trace_id=new"}


def test_incoming_header_names() -> None:
    environ = {"HTTP_SENTRY_TRACE": "a", "HTTP_BAGGAGE": "b", "CONTENT_TYPE": "c", 1: "x"}
    assert normalize_incoming_data(environ) == {
        "sentry-trace": "a",
        "baggage": "b",
        "content-type": "c",
    }
    assert dict(EnvironHeaders(environ)) == {"SENTRY_TRACE": "a", "BAGGAGE": "b"}
    assert EnvironHeaders(environ)["sentry-trace"] == "a"


# -- continuing a trace --------------------------------------------------------------------------


def test_continue_trace_sets_the_isolation_scope_trace() -> None:
    transport = init(traces_sample_rate=1.0)
    baggage = f"sentry-trace_id={TRACE},sentry-sample_rate=0.3,sentry-sample_rand=0.1,vendor=v"
    tx = tripwire.continue_trace(
        {"sentry-trace": f"{TRACE}-{PARENT}-1", "baggage": baggage}, op="http.server", name="GET /"
    )
    assert (tx.trace_id, tx.parent_span_id, tx.parent_sampled) == (TRACE, PARENT, True)
    assert tx.sampled is None  # not started yet
    before = outgoing()
    assert before["sentry-trace"].startswith(f"{TRACE}-")
    assert (
        before["baggage"]
        == f"sentry-trace_id={TRACE},sentry-sample_rate=0.3,sentry-sample_rand=0.1"
    )
    with tripwire.start_transaction(tx):
        inside = outgoing()
        tripwire.capture_message("handled")
    assert inside == {"sentry-trace": f"{TRACE}-{tx.span_id}-1", "baggage": before["baggage"]}
    # The incoming DSC is forwarded and reported unchanged (the rate was the parent's).
    for envelope in transport.envelopes:
        assert envelope.headers["trace"] == {
            "trace_id": TRACE,
            "sample_rate": "0.3",
            "sample_rand": "0.1",
        }
    assert transport.events[0]["contexts"]["trace"]["trace_id"] == TRACE


def test_continue_trace_without_headers_keeps_the_trace_in_force() -> None:
    init(traces_sample_rate=1.0)
    with tripwire.isolation_scope():
        tripwire.continue_trace({"sentry-trace": f"{TRACE}-{PARENT}-1"})
        kept = tripwire.continue_trace(None, name="x")  # type: ignore[arg-type]
        assert (kept.trace_id, kept.parent_span_id, kept.parent_sampled) == (TRACE, PARENT, True)
        assert outgoing()["sentry-trace"].startswith(TRACE)
        fresh = tripwire.continue_trace({}, name="y")  # empty headers: a new trace
        assert fresh.trace_id != TRACE and fresh.parent_span_id is None


def test_continue_trace_from_environ_and_bytes() -> None:
    init(traces_sample_rate=1.0)
    tx = tripwire.continue_trace({"HTTP_SENTRY_TRACE": f"{TRACE}-{PARENT}-0"})
    assert (tx.trace_id, tx.parent_sampled) == (TRACE, False)
    tx = tripwire.continue_trace({"sentry-trace": f"{TRACE}-{PARENT}".encode()})
    assert tx.trace_id == TRACE
    tx = Span.continue_from_environ({"HTTP_SENTRY_TRACE": f"{TRACE}-{PARENT}"}, name="x")
    assert (tx.trace_id, tx.name) == (TRACE, "x")
    legacy = Span.from_traceparent(f"{TRACE}-{PARENT}-1")
    assert legacy is not None and legacy.parent_sampled is True
    assert Span.from_traceparent("garbage") is None


def test_w3c_traceparent_is_continued_and_sentry_trace_wins() -> None:
    transport = init(traces_sample_rate=1.0)
    tx = tripwire.continue_trace({"traceparent": f"00-{TRACE}-{PARENT}-01"})
    assert (tx.trace_id, tx.parent_span_id, tx.parent_sampled) == (TRACE, PARENT, None)
    # Its sampled flag decides nothing: the rates do (an upstream's "00" dropped all).
    unsampled_upstream = tripwire.continue_trace({"traceparent": f"00-{TRACE}-{PARENT}-00"})
    with tripwire.start_transaction(unsampled_upstream):
        pass
    assert len(transport.transactions) == 1
    tripwire.get_client().close()
    init(traces_sample_rate=0.0)
    assert not tripwire.start_transaction(
        tripwire.continue_trace({"traceparent": f"00-{TRACE}-{PARENT}-01"})
    ).sampled
    other = "0af7651916cd43dd8448eb211c80319c"
    tx = tripwire.continue_trace(
        {"traceparent": f"00-{other}-{PARENT}-01", "sentry-trace": f"{TRACE}-{PARENT}-0"}
    )
    assert (tx.trace_id, tx.parent_sampled) == (TRACE, False)


def test_no_headers_start_a_new_trace_each_time() -> None:
    init(traces_sample_rate=1.0)
    first = tripwire.continue_trace({})
    second = tripwire.continue_trace({})
    assert first.trace_id != second.trace_id
    assert first.parent_span_id is None
    assert tripwire.get_traceparent().startswith(second.trace_id)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("incoming_org", "dsn_org", "option", "strict", "continued"),
    [
        ("17", "17", None, False, True),
        ("17", "17", None, True, True),
        ("99", "17", None, False, False),
        ("99", "17", None, True, False),
        (None, "17", None, False, True),
        (None, "17", None, True, False),
        ("99", None, None, False, True),
        ("99", None, None, True, False),
        (None, None, None, True, True),
        ("99", "17", "99", True, True),
    ],
)
def test_org_id_and_strict_trace_continuation(
    incoming_org: Any, dsn_org: Any, option: Any, strict: bool, continued: bool
) -> None:
    host = f"o{dsn_org}.ingest.example.com" if dsn_org else "example.com"
    init(dsn=f"https://pub@{host}/5", org_id=option, strict_trace_continuation=strict)
    baggage = f"sentry-trace_id={TRACE}" + (
        f",sentry-org_id={incoming_org}" if incoming_org else ""
    )
    tx = tripwire.continue_trace({"sentry-trace": f"{TRACE}-{PARENT}-1", "baggage": baggage})
    assert (tx.trace_id == TRACE) is continued
    assert (tx.parent_span_id == PARENT) is continued


# -- outgoing headers ------------------------------------------------------------------------------


def test_outgoing_headers_and_meta_tags() -> None:
    init(traces_sample_rate=1.0, environment="staging")
    with tripwire.start_transaction(name="/users/123", source="url") as tx:
        headers = outgoing()
        meta = tripwire.get_current_scope().trace_propagation_meta()
    assert headers["sentry-trace"] == f"{tx.trace_id}-{tx.span_id}-1"
    items = dict(item.split("=", 1) for item in headers["baggage"].split(","))
    assert items == {
        "sentry-trace_id": tx.trace_id,
        "sentry-sample_rand": items["sentry-sample_rand"],
        "sentry-environment": "staging",
        "sentry-release": "1.0",
        "sentry-public_key": "pub",
        "sentry-org_id": "17",
        "sentry-sample_rate": "1.0",
        "sentry-sampled": "true",
    }  # no transaction name: a raw URL is too high-cardinality
    assert meta == (
        f'<meta name="sentry-trace" content="{headers["sentry-trace"]}">'
        f'<meta name="baggage" content="{headers["baggage"]}">'
    )
    assert tripwire.get_traceparent() != headers["sentry-trace"]  # outside: the scope's trace


def test_dsc_is_frozen_once_sent() -> None:
    init(traces_sample_rate=1.0)
    with tripwire.start_transaction(name="before") as tx:
        first = tripwire.get_baggage()
        tripwire.set_transaction_name("after")
        assert tripwire.get_baggage() == first
    assert "sentry-transaction=before" in (first or "")
    assert tx.name == "after"


def test_propagate_traces_off_sends_no_headers() -> None:
    with pytest.warns(DeprecationWarning, match="propagate_traces"):
        init(traces_sample_rate=1.0, propagate_traces=False)
    with tripwire.start_transaction(name="t"):
        assert outgoing() == {}


def test_unsampled_transaction_sends_its_decision() -> None:
    init(traces_sample_rate=0.0)
    with tripwire.start_transaction(name="t") as tx:
        headers = outgoing()
    assert headers["sentry-trace"] == f"{tx.trace_id}-{tx.span_id}-0"
    assert "sentry-sampled=false" in headers["baggage"]


def test_span_outside_a_transaction_propagates_the_scope_trace() -> None:
    init(traces_sample_rate=1.0)
    with tripwire.start_span(op="http.client") as span:
        headers = dict(tripwire.get_current_scope().iter_trace_propagation_headers(span=span))
    assert headers["sentry-trace"].split("-")[0] == span.trace_id


def test_should_propagate_trace() -> None:
    init(trace_propagation_targets=["api.example.org", r"^https://internal\."])
    client = tripwire.get_client()
    assert should_propagate_trace(client, "https://api.example.org/v1")
    assert should_propagate_trace(client, "https://internal.corp/x")
    assert not should_propagate_trace(client, "https://elsewhere.com/")
    assert not should_propagate_trace(client, "https://o17.ingest.example.com/api/5/envelope/")
    init(trace_propagation_targets=[])
    assert not should_propagate_trace(tripwire.get_client(), "https://api.example.org/")


# -- cross-service: one trace, one decision ------------------------------------------------------


def _service_a(rate: float, n: int) -> list[tuple[str, bool, dict[str, str]]]:
    init(traces_sample_rate=rate)
    calls = []
    for _ in range(n):
        with tripwire.isolation_scope():
            with tripwire.start_transaction(name="A", op="task") as tx:
                with tripwire.start_span(op="http.client"):
                    calls.append((tx.trace_id, bool(tx.sampled), outgoing()))
    reset()
    return calls


def test_service_b_continues_service_a() -> None:
    calls = _service_a(rate=0.5, n=60)
    transport = init(traces_sample_rate=0.01)  # B's own rate is irrelevant for A's traces
    for trace_id, sampled, headers in calls:
        with tripwire.isolation_scope():
            tx = tripwire.continue_trace(headers, op="http.server", name="B")
            with tripwire.start_transaction(tx):
                tripwire.capture_message("in B")
            assert tx.trace_id == trace_id
            assert tx.parent_span_id == headers["sentry-trace"].split("-")[1]
            assert tx.sampled is sampled
    assert {True, False} <= {sampled for _, sampled, _ in calls}
    sent = [event["contexts"]["trace"]["trace_id"] for event in transport.transactions]
    assert sent == [trace_id for trace_id, sampled, _ in calls if sampled]
    # B's errors report A's DSC, so Sentry links both services to the same trace.
    dscs = [env.headers["trace"] for env in transport.envelopes if env.get_event() is not None]
    assert [dsc["trace_id"] for dsc in dscs] == [trace_id for trace_id, _, _ in calls]
    assert all(dsc["sample_rate"] == "0.5" for dsc in dscs)


def test_deferred_decisions_agree_across_services() -> None:
    """Two services continue a trace without a decision: the shared sample_rand agrees."""
    calls = _service_a(rate=0.5, n=40)
    deferred = [
        {"sentry-trace": headers["sentry-trace"].rsplit("-", 1)[0], "baggage": headers["baggage"]}
        for _, _, headers in calls
    ]
    old_sdk = [{"sentry-trace": f"{trace_id}-{PARENT}"} for trace_id, _, _ in calls]

    def decisions(rate: float, incoming: list[dict[str, str]]) -> list[bool]:
        init(traces_sample_rate=rate)
        out = []
        for headers in incoming:
            with tripwire.isolation_scope():
                out.append(
                    bool(tripwire.start_transaction(tripwire.continue_trace(headers)).sampled)
                )
        reset()
        return out

    for incoming in (deferred, old_sdk):
        b1, b2 = decisions(0.5, incoming), decisions(0.5, incoming)
        assert b1 == b2
        assert {True, False} <= set(b1)
        # A higher rate keeps a superset of the traces a lower rate keeps.
        assert all(high or not low for low, high in zip(decisions(0.2, incoming), b1))
    # With A's sample_rand forwarded, B at A's rate decides exactly as A did.
    assert decisions(0.5, deferred) == [sampled for _, sampled, _ in calls]
