"""Tracing through sentry-sdk 2.x and tripwire: the same trace gives the same payloads.

Ids, timestamps, thread ids and SDK metadata differ by nature and are normalised
away (ids are replaced by their order of first appearance, so the *shape* of the
trace, which span is whose parent, is still compared). When both SDKs continue
the same incoming trace, even the derived sample_rand must be identical.
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest

import tripwire

sentry_sdk = pytest.importorskip("sentry_sdk")
from _sentry_side import Ids, normalise, run_both  # noqa: E402

TRACE = "771a43a4192642f0b136d5159a501700"
PARENT = "1234567890abcdef"


def _normalised(envelopes: list[Any], keep_rand: bool = False) -> list[Any]:
    ids = Ids()
    out = []
    for header, items in envelopes:
        norm_items = []
        for item_type, payload in items:
            payload = dict(payload)
            contexts = dict(payload.get("contexts") or {})
            for key in ("os", "runtime", "device"):  # environment contexts are not tracing's
                contexts.pop(key, None)
            if "contexts" in payload:
                payload["contexts"] = contexts
            norm_items.append((item_type, normalise(payload, ids, not keep_rand)))
        out.append((normalise(header, ids, not keep_rand), norm_items))
    return out


def _transaction_with_children(sdk: Any) -> None:
    sdk.set_tag("region", "eu")
    with sdk.start_transaction(name="checkout", op="http.server", source="route") as tx:
        tx.set_tag("plan", "pro")
        tx.set_data("cart.items", 3)
        tx.set_context("shop", {"id": 7})
        with warnings.catch_warnings():  # deprecated in sentry_sdk 2.28, still sent
            warnings.simplefilter("ignore", DeprecationWarning)
            tx.set_measurement("ttfb", 12.5, "millisecond")
        with sdk.start_span(op="db", name="SELECT 1") as span:
            span.set_data("db.system", "sqlite")
            span.set_tag("cached", "no")
            with sdk.start_span(op="db.cursor.fetch", name="fetch"):
                pass
        with tx.start_child(op="http.client", name="GET /api") as call:
            call.set_http_status(503)
        try:
            with sdk.start_span(op="task", name="failing"):
                raise KeyError("x")
        except KeyError:
            pass
        tx.start_child(op="never.finished")
        tx.set_http_status(200)


def test_transaction_payload_matches_sentry_sdk() -> None:
    (theirs, _), (ours, _) = run_both(_transaction_with_children, traces_sample_rate=1.0)
    assert len(ours) == len(theirs) == 1
    assert _normalised(ours) == _normalised(theirs)
    header, items = ours[0]
    assert items[0][0] == "transaction"
    assert header["trace"]["transaction"] == "checkout"


def test_error_inside_span_matches_sentry_sdk() -> None:
    def scenario(sdk: Any) -> None:
        with sdk.start_transaction(name="job", op="task"), sdk.start_span(op="step"):
            sdk.capture_message("inside")
        sdk.capture_message("outside")

    (theirs, _), (ours, _) = run_both(scenario, traces_sample_rate=1.0)

    def traces(envelopes: list[Any]) -> list[Any]:
        # The envelope's DSC and each event's trace context; the rest is not tracing's.
        return [
            [header.get("trace"), payload["contexts"]["trace"]]
            for header, items in envelopes
            for _, payload in items
        ]

    assert normalise(traces(ours), Ids(), True) == normalise(traces(theirs), Ids(), True)


@pytest.mark.parametrize(
    "headers",
    [
        # An older SDK upstream: no sample_rand, so both derive it from the trace id.
        {"sentry-trace": f"{TRACE}-{PARENT}-1"},
        {
            "sentry-trace": f"{TRACE}-{PARENT}-1",
            "baggage": f"sentry-trace_id={TRACE},sentry-sample_rate=0.25,sentry-sampled=true,"
            "vendor=1",
        },
        {
            "sentry-trace": f"{TRACE}-{PARENT}-0",
            "baggage": f"sentry-trace_id={TRACE},sentry-sample_rate=0.25,sentry-sampled=false",
        },
        {
            "sentry-trace": f"{TRACE}-{PARENT}",
            "baggage": f"sentry-trace_id={TRACE},sentry-public_key=up,sentry-sample_rand=0.012345",
        },
        {"HTTP_SENTRY_TRACE": f"{TRACE}-{PARENT}", "HTTP_BAGGAGE": f"sentry-trace_id={TRACE}"},
        {},
    ],
    ids=["no-baggage", "sampled", "not-sampled", "deferred", "environ", "no-headers"],
)
def test_continued_trace_matches_sentry_sdk_exactly(headers: dict[str, str]) -> None:
    def scenario(sdk: Any) -> Any:
        with sdk.isolation_scope():
            tx = sdk.continue_trace(headers, op="http.server", name="GET /items")
            before = _outgoing(sdk)
            with sdk.start_transaction(tx):
                with sdk.start_span(op="http.client"):
                    inside = _outgoing(sdk)
                sdk.capture_message("handled")
            return {"sampled": tx.sampled, "rate": tx.sample_rate, "out": [before, inside]}

    # A new trace's decision is random: sample all of them so both SDKs agree.
    rate = 0.5 if headers else 1.0
    (theirs, their_result), (ours, our_result) = run_both(scenario, traces_sample_rate=rate)
    keep = bool(headers)  # a continued trace id is fixed, so is its derived sample_rand
    assert normalise(our_result, Ids(), not keep) == normalise(their_result, Ids(), not keep)
    assert _normalised(ours, keep_rand=keep) == _normalised(theirs, keep_rand=keep)


def _outgoing(sdk: Any) -> dict[str, Any]:
    """The trace headers an outgoing request would carry, taken apart."""
    trace_id, span_id, *flag = (sdk.get_traceparent() or "").split("-")
    baggage = dict(
        item[len("sentry-") :].split("=", 1)
        for item in (sdk.get_baggage() or "").split(",")
        if item
    )
    return {"trace_id": trace_id, "span_id": span_id, "flag": flag, "baggage": baggage}


@pytest.mark.parametrize("first", ["sentry_sdk", "tripwire"])
def test_cross_sdk_trace_is_one_trace(first: str) -> None:
    """A service on one SDK calls a service on the other: one trace, one decision."""
    upstream, downstream = (
        (sentry_sdk, tripwire) if first == "sentry_sdk" else (tripwire, sentry_sdk)
    )
    results: dict[str, Any] = {}

    def service_a(sdk: Any) -> Any:
        if sdk is not upstream:
            return None
        with sdk.start_transaction(name="A", op="task") as tx:
            with sdk.start_span(op="http.client"):
                results["headers"] = dict(sdk.get_current_scope().iter_trace_propagation_headers())
            return tx.trace_id, tx.sampled

    def service_b(sdk: Any) -> Any:
        if sdk is not downstream:
            return None
        with sdk.isolation_scope():
            tx = sdk.continue_trace(results["headers"], op="http.server", name="B")
            with sdk.start_transaction(tx):
                pass
            return tx.trace_id, tx.parent_span_id, tx.sampled

    (_, a_sentry), (_, a_ours) = run_both(service_a, traces_sample_rate=1.0)
    trace_a, sampled_a = a_sentry if first == "sentry_sdk" else a_ours
    span_a = results["headers"]["sentry-trace"].split("-")[1]
    # Downstream uses rate 0: only the parent's decision can make it sample.
    (_, b_sentry), (_, b_ours) = run_both(service_b, traces_sample_rate=0.0)
    trace_b, parent_b, sampled_b = b_ours if first == "sentry_sdk" else b_sentry
    assert (trace_b, parent_b, sampled_b) == (trace_a, span_a, sampled_a) == (trace_a, span_a, True)
