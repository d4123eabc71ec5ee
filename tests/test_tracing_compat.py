"""Tracing details where tripwire once differed from sentry_sdk 2.75, run through both SDKs.

Each scenario runs with sentry_sdk (a Transport subclass keeps `envelope.serialize()`)
and with tripwire (MemoryTransport); the envelopes are compared after replacing ids
by their order of first appearance and timestamps by a placeholder. sample_rand is
compared verbatim wherever it comes from the incoming trace or a fixed trace id.
"""

from __future__ import annotations

import warnings
from typing import Any, Callable

import pytest

import tripwire
from tripwire.testing import MemoryTransport

sentry_sdk = pytest.importorskip("sentry_sdk")
from _sentry_side import (  # noqa: E402
    DSN,
    VOLATILE,
    Ids,
    SentryCapture,
    normalise,
    reset_sentry,
    run_both,
)

TRACE = "771a43a4192642f0b136d5159a501700"
OTHER_TRACE = "0123456789abcdef0123456789abcdef"
PARENT = "1234567890abcdef"


# The machine's contexts are not tracing's.
_DROP = VOLATILE | {"os", "runtime", "device"}


def _same(theirs: Any, ours: Any, mask_rand: bool = False) -> None:
    """Equal after normalising; `mask_rand` for new traces, whose sample_rand is random."""
    known = {TRACE: "<incoming>", PARENT: "<parent>"}
    assert normalise(ours, Ids(known), mask_rand, _DROP) == normalise(
        theirs, Ids(known), mask_rand, _DROP
    )


def _baggage_class(sdk: Any) -> Any:
    if sdk is sentry_sdk:
        from sentry_sdk.tracing_utils import Baggage as SentryBaggage

        return SentryBaggage
    return tripwire.tracing.Baggage


def _propagation_context_class(sdk: Any) -> Any:
    if sdk is sentry_sdk:
        from sentry_sdk.tracing_utils import PropagationContext as SentryContext

        return SentryContext
    return tripwire.tracing.PropagationContext


# -- 1. the incoming sample_rand decides, and travels on ----------------------------------------


@pytest.mark.parametrize("rand", ["0.1", "0.9", "0.123456789", "0.4999999", "bogus", "1.5"])
def test_start_transaction_with_baggage_uses_its_sample_rand(rand: str) -> None:
    def scenario(sdk: Any) -> Any:
        baggage = _baggage_class(sdk).from_incoming_header(
            f"sentry-trace_id={TRACE},sentry-sample_rand={rand},sentry-sample_rate=0.5,vendor=x"
        )
        # A fixed trace id: where the baggage has no valid sample_rand, both SDKs
        # derive one from it, so even that case is deterministic.
        tx = sdk.start_transaction(name="checkout", trace_id=TRACE, baggage=baggage)
        with tx:
            pass
        return [tx.sampled, tx.sample_rate, tx.get_baggage().serialize()]

    (theirs, their_result), (ours, our_result) = run_both(scenario, traces_sample_rate=0.5)
    assert our_result == their_result
    _same(theirs, ours)
    if rand in ("0.1", "0.123456789"):
        assert our_result[0] is True
        assert ours[0][0]["trace"]["sample_rand"] == rand  # forwarded verbatim
    if rand == "0.9":
        assert our_result[0] is False
        assert ours == []


@pytest.mark.parametrize("rand", ["0.1", "0.9"])
def test_continue_trace_sampling_uses_the_incoming_sample_rand(rand: str) -> None:
    headers = {
        "sentry-trace": f"{TRACE}-{PARENT}",  # no upstream decision: the rate decides
        "baggage": f"sentry-trace_id={TRACE},sentry-sample_rand={rand},sentry-public_key=up",
    }

    def scenario(sdk: Any) -> Any:
        with sdk.isolation_scope():
            tx = sdk.continue_trace(headers, op="http.server", name="GET /")
            with sdk.start_transaction(tx), sdk.start_span(op="db"):
                outgoing = sdk.get_baggage()
            sdk.capture_message("after")
        return [tx.sampled, tx.sample_rate, outgoing]

    (theirs, their_result), (ours, our_result) = run_both(scenario, traces_sample_rate=0.5)
    assert our_result == their_result
    assert our_result[0] is (rand == "0.1")
    _same(theirs, ours)


def test_explicit_decision_on_a_continued_trace_updates_the_sample_rate() -> None:
    headers = {
        "sentry-trace": f"{TRACE}-{PARENT}-0",
        "baggage": f"sentry-trace_id={TRACE},sentry-sample_rand=0.7,sentry-sample_rate=0.5",
    }

    def scenario(sdk: Any) -> Any:
        with sdk.isolation_scope():
            tx = sdk.continue_trace(headers, name="forced")
            tx.sampled = True
            with sdk.start_transaction(tx):
                pass
        return [tx.sample_rate, tx.get_baggage().serialize()]

    (theirs, their_result), (ours, our_result) = run_both(scenario, traces_sample_rate=0.5)
    assert our_result == their_result
    assert "sentry-sample_rate=1.0" in our_result[1]
    _same(theirs, ours)


def test_mutable_baggage_sentry_entries_take_precedence() -> None:
    def scenario(sdk: Any) -> Any:
        baggage = _baggage_class(sdk)({"sample_rand": "0.25", "custom": "yes"}, mutable=True)
        with sdk.start_transaction(name="t", trace_id=TRACE, baggage=baggage) as tx:
            pass
        return [tx.sampled, tx.get_baggage().serialize()]

    (theirs, their_result), (ours, our_result) = run_both(scenario, traces_sample_rate=0.5)
    assert our_result == their_result
    _same(theirs, ours)


# -- 2. PropagationContext -------------------------------------------------------------------


def test_propagation_context_dsc_without_a_client_is_empty() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        theirs = _propagation_context_class(sentry_sdk)().dynamic_sampling_context
    ours = tripwire.tracing.PropagationContext().dynamic_sampling_context
    assert ours == theirs == {}


def test_propagation_context_dsc_and_update_match() -> None:
    def scenario(sdk: Any) -> Any:
        cls = _propagation_context_class(sdk)
        fresh = cls(trace_id=TRACE).dynamic_sampling_context
        incoming = cls(
            trace_id=TRACE,
            baggage=_baggage_class(sdk).from_incoming_header("vendor=1"),
        ).dynamic_sampling_context
        updated = cls(trace_id=OTHER_TRACE)
        updated.update(
            {
                "trace_id": TRACE,
                "parent_span_id": PARENT,
                "parent_sampled": True,
                "not_an_attribute": 1,
                "dynamic_sampling_context": {"ignored": "yes"},
            }
        )
        return [
            fresh,
            incoming,
            updated.trace_id,
            updated.parent_span_id,
            updated.parent_sampled,
            hasattr(updated, "not_an_attribute"),
            updated.to_traceparent().split("-")[0],
        ]

    (_, their_result), (_, our_result) = run_both(scenario, traces_sample_rate=0.5)
    assert our_result == their_result
    assert our_result[0]["trace_id"] == TRACE
    assert our_result[1] == {}


@pytest.mark.parametrize(
    "sentry_trace",
    [
        f"{TRACE}-{PARENT}-1, {OTHER_TRACE}-fedcba9876543210-0",  # joined by a proxy
        f" , {TRACE}-{PARENT}-0",
        f"{TRACE}-{PARENT}-1,",
        ",",
        f"00-{TRACE}-{PARENT}-00",
        f"00-{TRACE}-{PARENT}-01",
        f"garbage, {TRACE}-{PARENT}-1",
        "-",
    ],
)
def test_sentry_trace_header_variants_continue_as_in_sentry_sdk(sentry_trace: str) -> None:
    headers = {
        "sentry-trace": sentry_trace,
        "baggage": f"sentry-trace_id={TRACE},sentry-sample_rand=0.2,sentry-sample_rate=0.5",
    }

    def scenario(sdk: Any) -> Any:
        with sdk.isolation_scope():
            tx = sdk.continue_trace(headers, name="GET /")
            with sdk.start_transaction(tx):
                pass
            sdk.capture_message("after")
        return {
            "trace_id": tx.trace_id,
            "parent_span_id": tx.parent_span_id,
            "sampled": [tx.parent_sampled, tx.sampled],
        }

    (theirs, their_result), (ours, our_result) = run_both(scenario, traces_sample_rate=1.0)
    continued = our_result["trace_id"] == TRACE
    _same([their_result, theirs], [our_result, ours], mask_rand=not continued)
    if sentry_trace in (",", "-", f"00-{TRACE}-{PARENT}-01", f"garbage, {TRACE}-{PARENT}-1"):
        assert not continued


def test_comma_joined_sentry_trace_uses_the_first_value() -> None:
    data = tripwire.tracing.extract_sentrytrace_data(f"{TRACE}-{PARENT}-1, {OTHER_TRACE}-0")
    assert data == {"trace_id": TRACE, "parent_span_id": PARENT, "parent_sampled": True}


def test_error_after_third_party_only_baggage_matches() -> None:
    headers = {"sentry-trace": f"{TRACE}-{PARENT}-1", "baggage": "vendor=1,other=2"}

    def scenario(sdk: Any) -> Any:
        with sdk.isolation_scope():
            sdk.continue_trace(headers)
            sdk.capture_message("outside any transaction")

    (theirs, _), (ours, _) = run_both(scenario, traces_sample_rate=1.0)
    _same(theirs, ours)


# -- 3. instrumenter="otel" ---------------------------------------------------------------------


def test_otel_instrumenter_gives_noop_spans_where_sentry_sdk_does() -> None:
    def scenario(sdk: Any) -> Any:
        kinds = []

        def kind(value: Any) -> str:
            kinds.append(type(value).__name__)
            return value

        kind(sdk.start_transaction(name="default"))
        kind(sdk.start_span(op="free"))
        kind(sdk.start_span(op="free", instrumenter="otel"))
        kind(sdk.get_current_scope().start_span(op="scope"))
        kind(sdk.get_current_scope().start_transaction(name="scope"))
        continued = sdk.continue_trace({}, name="continued")
        kind(continued)
        kind(sdk.start_transaction(continued))
        kind(continued.start_child(op="child"))
        kind(continued.start_child(op="child", instrumenter="otel"))
        with kind(sdk.start_transaction(name="otel", instrumenter="otel")):
            kind(sdk.start_span(op="in"))
            kind(sdk.start_span(op="in", instrumenter="otel"))
            kind(sdk.start_span(op="in", name="n", origin="auto"))

            @sdk.trace
            def traced() -> Any:
                sdk.capture_message("inside a no-op span")
                kinds.append(sdk.get_traceparent() or "")
                kinds.append(sdk.get_baggage() or "")
                headers = dict(sdk.get_current_scope().iter_trace_propagation_headers())
                kinds.append(sorted(headers))  # the propagation context's: ids are random
                return sdk.get_current_span()

            kind(traced())
        return kinds

    (theirs, their_result), (ours, our_result) = run_both(
        scenario, traces_sample_rate=1.0, instrumenter="otel"
    )
    assert our_result == their_result
    assert "NoOpSpan" in our_result
    _same(theirs, ours, mask_rand=True)


# -- 4. max_spans ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "children"), [({"max_spans": 3}, 5), ({"max_spans": 3}, 2), ({}, 4)]
)
def test_max_spans_trims_spans_with_a_meta_length(options: dict[str, Any], children: int) -> None:
    def scenario(sdk: Any) -> None:
        with sdk.start_transaction(name="many", op="task"):
            for i in range(children):
                with sdk.start_span(op=f"child.{i}"):
                    pass
            sdk.start_span(op="never.finished")

    (theirs, _), (ours, _) = run_both(scenario, traces_sample_rate=1.0, _experiments=options)
    _same(theirs, ours, mask_rand=True)
    [(_, [(_, event)])] = ours
    kept = min(children, options.get("max_spans", 1000))
    assert len(event["spans"]) == kept
    assert event["_meta"] == {"spans": {"": {"len": children + 1}}}
    lost = tripwire.get_client().outcomes.snapshot()
    assert lost[("buffer_overflow", "span")] == children + 1 - kept


# -- 5. unknown keyword arguments --------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda sdk: sdk.start_transaction(name="t", data={"a": 1}),
        lambda sdk: sdk.start_transaction(name="t", tags={"a": 1}),
        lambda sdk: sdk.start_span(op="x", data={"a": 1}),
        lambda sdk: sdk.tracing.Span(bogus=1),
        lambda sdk: sdk.tracing.Transaction(name="t", data={}),
    ],
    ids=["start_transaction-data", "start_transaction-tags", "start_span-data", "Span", "Tx"],
)
def test_unknown_keyword_arguments_raise_type_error(call: Callable[[Any], Any]) -> None:
    def scenario(sdk: Any) -> Any:
        with pytest.raises(TypeError) as info:
            call(sdk)
        return str(info.value)

    (theirs, their_message), (ours, our_message) = run_both(scenario, traces_sample_rate=1.0)
    assert our_message == their_message
    assert ours == theirs == []


def test_start_span_with_data_inside_a_transaction_raises_too() -> None:
    def scenario(sdk: Any) -> Any:
        with sdk.start_transaction(name="t"):
            with pytest.raises(TypeError) as info:
                sdk.start_span(op="x", data={"a": 1})
        return str(info.value)

    (_, their_message), (_, our_message) = run_both(scenario, traces_sample_rate=1.0)
    assert our_message == their_message


# -- 6. DeprecationWarnings --------------------------------------------------------------------


def _deprecations(sdk: Any, action: Callable[[Any], Any]) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        action(sdk)
    return [w for w in caught if issubclass(w.category, DeprecationWarning)]


def _in_transaction(call: Callable[[Any, Any], Any]) -> Callable[[Any], Any]:
    def action(sdk: Any) -> None:
        with sdk.start_transaction(name="t") as tx:
            call(sdk, tx)

    return action


def _finish_with_hub(sdk: Any) -> None:
    tx = sdk.start_transaction(name="t")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hub = sdk.Hub.current  # Hub itself may warn; not what is checked here
    tx.finish(hub=hub)


def _span_with_hub(sdk: Any) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hub = sdk.Hub.current
    sdk.tracing.Span(op="x", hub=hub)


_DEPRECATED: dict[str, Callable[[Any], Any]] = {
    "Span-hub": _span_with_hub,
    "start_span-description": _in_transaction(
        lambda sdk, tx: sdk.start_span(op="x", description="d").finish()
    ),
    "scope.start_span-description": _in_transaction(
        lambda sdk, tx: sdk.get_current_scope().start_span(op="x", description="d").finish()
    ),
    "start_child-description": _in_transaction(
        lambda sdk, tx: tx.start_child(op="x", description="d").finish()
    ),
    "set_measurement": _in_transaction(lambda sdk, tx: sdk.set_measurement("lcp", 1.0)),
    "transaction.set_measurement": _in_transaction(lambda sdk, tx: tx.set_measurement("a", 1)),
    "span.set_measurement": _in_transaction(
        lambda sdk, tx: tx.start_child(op="x").set_measurement("a", 1)
    ),
    "finish-hub": _finish_with_hub,
    "update_current_span-data": _in_transaction(
        lambda sdk, tx: sdk.update_current_span(data={"k": 1})
    ),
}


@pytest.mark.parametrize("name", sorted(_DEPRECATED))
def test_deprecation_warnings_point_at_the_caller(name: str) -> None:
    action = _DEPRECATED[name]
    sentry_sdk.init(
        dsn=DSN, transport=SentryCapture(), traces_sample_rate=1.0, default_integrations=False
    )
    try:
        theirs = _deprecations(sentry_sdk, action)
    finally:
        reset_sentry()
    tripwire.init(dsn=DSN, transport=MemoryTransport(), traces_sample_rate=1.0)
    ours = _deprecations(tripwire, action)
    assert theirs, "sentry_sdk warns here"
    assert ours
    assert len(ours) <= len(theirs)
    assert {w.category for w in ours} == {DeprecationWarning}
    assert all(w.filename == __file__ for w in ours), [(w.filename, w.lineno) for w in ours]


def test_no_warning_for_the_current_forms() -> None:
    tripwire.init(dsn=DSN, transport=MemoryTransport(), traces_sample_rate=1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with tripwire.start_transaction(name="t") as tx:
            tripwire.start_span(op="x", name="n").finish()
            tx.start_child(op="x", description=None).finish()
            tripwire.update_current_span(attributes={"k": 1})
        tx.finish()


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"enable_tracing": True}, "enable_tracing"),
        ({"enable_tracing": False}, "enable_tracing"),
        ({"propagate_traces": False}, "propagate_traces"),
    ],
)
def test_deprecated_options_warn_at_init(options: dict[str, Any], match: str) -> None:
    with pytest.warns(DeprecationWarning, match=match) as caught:
        tripwire.init(dsn=DSN, transport=MemoryTransport(), **options)
    assert [w.filename for w in caught] == [__file__]


def test_deprecated_option_warnings_in_sentry_sdk() -> None:
    # What the two option warnings above mirror.
    with pytest.warns(DeprecationWarning, match="enable_tracing"):
        sentry_sdk.init(
            dsn=DSN, transport=SentryCapture(), enable_tracing=True, default_integrations=False
        )
    try:
        sentry_sdk.init(
            dsn=DSN,
            transport=SentryCapture(),
            propagate_traces=False,
            default_integrations=False,
        )
        with pytest.warns(DeprecationWarning, match="propagate_traces"):
            dict(sentry_sdk.get_current_scope().iter_trace_propagation_headers())
    finally:
        reset_sentry()


def test_deprecation_warning_once_per_call_site() -> None:
    tripwire.init(dsn=DSN, transport=MemoryTransport(), traces_sample_rate=1.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        with tripwire.start_transaction(name="t"):
            for _ in range(3):
                tripwire.start_span(op="x", description="same line").finish()
            tripwire.start_span(op="x", description="another line").finish()
    assert [w.category for w in caught] == [DeprecationWarning, DeprecationWarning]
    assert caught[0].lineno != caught[1].lineno


# -- conversation id on AI spans ---------------------------------------------------------------


def _conversation_ids(envelopes: list[Any]) -> dict[str, Any]:
    """op -> gen_ai.conversation.id of every span sent, in a transaction or streamed.

    (sentry_sdk 2.75 sends gen_ai spans as `span` items beside the transaction; tripwire
    keeps them in the transaction until span streaming lands: what each span carries is
    compared here, not where it travels.)
    """
    found: dict[str, Any] = {}
    for _, items in envelopes:
        for kind, payload in items:
            if kind == "transaction":
                trace = payload["contexts"]["trace"]
                found[trace["op"]] = trace.get("data", {}).get("gen_ai.conversation.id")
                for span in payload["spans"]:
                    found[span["op"]] = span.get("data", {}).get("gen_ai.conversation.id")
            elif kind == "span":
                for span in payload["items"]:
                    attributes = span["attributes"]
                    value = attributes.get("gen_ai.conversation.id", {}).get("value")
                    found[attributes["sentry.op"]["value"]] = value
    return found


def test_ai_spans_carry_the_scopes_conversation_id() -> None:
    def scenario(sdk: Any) -> None:
        with sdk.new_scope() as scope:
            scope.set_conversation_id("conv-1")
            with sdk.start_transaction(name="agent", op="gen_ai.invoke_agent"):
                with sdk.start_span(op="gen_ai.chat"):
                    pass
                with sdk.start_span(op="http.client") as span:
                    span.set_data("gen_ai.operation.name", "embeddings")
                with sdk.start_span(op="ai.run"):
                    pass
                with sdk.start_span(op="db"):
                    pass

    (theirs, _), (ours, _) = run_both(scenario, traces_sample_rate=1.0)
    assert _conversation_ids(ours) == _conversation_ids(theirs)
    assert _conversation_ids(ours) == {
        "gen_ai.invoke_agent": "conv-1",
        "gen_ai.chat": "conv-1",
        "http.client": "conv-1",
        "ai.run": "conv-1",
        "db": None,
    }
