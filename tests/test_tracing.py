"""Transactions and spans: what reaches the transport, and the Span/Transaction API."""

from __future__ import annotations

import asyncio
import sys
import threading
from datetime import datetime, timezone
from typing import Any

import pytest

import tripwire
from tripwire.outcomes import DataCategory, DropReason
from tripwire.testing import MemoryTransport, deterministic_ids, frozen_clock, reset
from tripwire.tracing import (
    SPANDATA,
    SPANSTATUS,
    NoOpSpan,
    Span,
    Transaction,
    TransactionSource,
    get_span_status_from_http_code,
)

DSN = "https://pub@o17.ingest.example.com/5"
THREAD = str(threading.get_ident())


def init(**options: Any) -> MemoryTransport:
    transport = MemoryTransport()
    options.setdefault("traces_sample_rate", 1.0)
    tripwire.init(
        dsn=DSN, transport=transport, release="1.0", default_integrations=False, **options
    )
    return transport


def lost(reason: DropReason, category: DataCategory) -> int:
    return tripwire.get_client().outcomes.snapshot().get((reason.value, category.value), 0)


# -- the transaction as it reaches the transport -------------------------------------------


def test_transaction_event_on_the_wire() -> None:
    transport = init(environment="prod")
    deterministic_ids()
    frozen_clock(at=1_700_000_000.0, step=0.25)
    tripwire.set_tag("region", "eu")
    with tripwire.start_transaction(name="checkout", op="http.server", source="route") as tx:
        tx.set_tag("plan", "pro")
        tx.set_data("cart.items", 3)
        with pytest.warns(DeprecationWarning, match="set_measurement"):
            tx.set_measurement("ttfb", 12.5, "millisecond")
        with tripwire.start_span(op="db", name="SELECT 1") as span:
            span.set_data("db.system", "sqlite")

    [envelope] = transport.envelopes
    [item] = envelope.items
    assert item.type == "transaction"
    trace_id = "%032x" % 1
    assert envelope.headers["trace"] == {
        "trace_id": trace_id,
        "sample_rand": envelope.headers["trace"]["sample_rand"],
        "environment": "prod",
        "release": "1.0",
        "public_key": "pub",
        "org_id": "17",
        "transaction": "checkout",
        "sample_rate": "1.0",
        "sampled": "true",
    }
    event = transport.transactions[0]
    assert event["event_id"] == envelope.headers["event_id"]
    assert {k: event[k] for k in ("type", "transaction", "transaction_info", "tags")} == {
        "type": "transaction",
        "transaction": "checkout",
        "transaction_info": {"source": "route"},
        "tags": {"plan": "pro", "region": "eu"},
    }
    assert event["start_timestamp"] == "2023-11-14T22:13:20.000000Z"
    assert event["timestamp"] == "2023-11-14T22:13:20.750000Z"
    assert event["contexts"]["trace"] == {
        "trace_id": trace_id,
        "span_id": "%016x" % 3,  # ids are made on first read: the child's came first
        "parent_span_id": None,
        "op": "http.server",
        "description": None,
        "origin": "manual",
        "data": {"thread.id": THREAD, "thread.name": "MainThread", "cart.items": 3},
    }
    assert event["measurements"] == {"ttfb": {"value": 12.5, "unit": "millisecond"}}
    assert event["spans"] == [
        {
            "trace_id": trace_id,
            "span_id": "%016x" % 2,
            "parent_span_id": "%016x" % 3,
            "same_process_as_parent": True,
            "op": "db",
            "description": "SELECT 1",
            "start_timestamp": "2023-11-14T22:13:20.250000Z",
            "timestamp": "2023-11-14T22:13:20.500000Z",
            "origin": "manual",
            "data": {"thread.id": THREAD, "thread.name": "MainThread", "db.system": "sqlite"},
        }
    ]
    assert event["release"] == "1.0"
    assert "_meta" not in event


def test_finish_returns_the_event_id_once() -> None:
    transport = init()
    tx = tripwire.start_transaction(name="job")
    event_id = tx.finish()
    assert event_id == transport.transactions[0]["event_id"]
    assert tx.finish() is None
    assert len(transport.transactions) == 1


def test_finish_with_end_timestamp() -> None:
    transport = init()
    frozen_clock(at=1_700_000_000.0)
    tx = tripwire.start_transaction(name="job")
    child = tx.start_child(op="step")
    child.finish(end_timestamp=1_700_000_001.5)
    tx.finish(end_timestamp=datetime(2023, 11, 14, 22, 13, 22, tzinfo=timezone.utc))
    event = transport.transactions[0]
    assert event["spans"][0]["timestamp"] == "2023-11-14T22:13:21.500000Z"
    assert event["timestamp"] == "2023-11-14T22:13:22.000000Z"
    assert child.timestamp == datetime(2023, 11, 14, 22, 13, 21, 500000, tzinfo=timezone.utc)


def test_unnamed_transaction_is_labelled() -> None:
    transport = init()
    tripwire.start_transaction().finish()
    assert transport.transactions[0]["transaction"] == "<unlabeled transaction>"


def test_transaction_contexts_status_and_response() -> None:
    transport = init()
    with tripwire.start_transaction(name="GET /", op="http.server") as tx:
        tx.set_context("shop", {"id": 7})
        tx.set_http_status(404)
    event = transport.transactions[0]
    assert event["contexts"]["shop"] == {"id": 7}
    assert event["contexts"]["response"] == {"status_code": 404}
    assert event["contexts"]["trace"]["status"] == "not_found"
    assert event["tags"] == {"http.status_code": "404"}


def test_exception_in_block_sets_internal_error() -> None:
    transport = init()
    with pytest.raises(KeyError), tripwire.start_transaction(name="t"):
        with tripwire.start_span(op="ok") as ok:
            ok.set_status(SPANSTATUS.OK)
        with tripwire.start_span(op="bad"):
            raise KeyError("boom")
    event = transport.transactions[0]
    assert event["contexts"]["trace"]["status"] == "internal_error"
    ok_span, bad_span = event["spans"]
    assert ok_span["status"] == "ok"
    assert ok_span["tags"] == {"status": "ok"}
    assert bad_span["status"] == "internal_error"
    assert bad_span["tags"] == {"status": "internal_error"}


@pytest.mark.parametrize(("code", "status"), [(0, None), (None, None), (1, "internal_error")])
def test_system_exit_is_an_error_only_with_a_failure_code(code: Any, status: Any) -> None:
    transport = init()
    with pytest.raises(SystemExit), tripwire.start_transaction(name="t"):
        raise SystemExit(code)
    assert transport.transactions[0]["contexts"]["trace"].get("status") == status


def test_active_span_is_restored_after_the_block() -> None:
    init()
    assert tripwire.get_current_span() is None
    with tripwire.start_transaction(name="t") as tx:
        assert tripwire.get_current_span() is tx
        with tripwire.start_span(op="a") as a:
            assert tripwire.get_current_span() is a
            with tripwire.start_span(op="b") as b:
                assert b.parent_span_id == a.span_id
            assert tripwire.get_current_span() is a
        assert tripwire.get_current_span() is tx
    assert tripwire.get_current_span() is None


def test_unfinished_children_are_dropped_and_counted() -> None:
    transport = init()
    with tripwire.start_transaction(name="t") as tx:
        tx.start_child(op="never.finished")
        with tx.start_child(op="done") as done:
            done.start_child(op="grandchild").finish()
    event = transport.transactions[0]
    assert [s["op"] for s in event["spans"]] == ["done", "grandchild"]
    assert event["_meta"] == {"spans": {"": {"len": 3}}}
    assert lost(DropReason.BUFFER_OVERFLOW, DataCategory.SPAN) == 1


def test_spans_per_transaction_are_bounded() -> None:
    transport = init()
    with tripwire.start_transaction(name="t") as tx:
        for i in range(1005):
            tx.start_child(op=f"op{i}").finish()
    event = transport.transactions[0]
    assert len(event["spans"]) == 1000
    assert event["spans"][-1]["op"] == "op999"
    assert event["_meta"] == {"spans": {"": {"len": 1005}}}
    assert lost(DropReason.BUFFER_OVERFLOW, DataCategory.SPAN) == 5
    assert len(tx._spans or ()) == 1000  # memory stays bounded too


def test_before_send_transaction_sees_and_can_drop_it() -> None:
    seen: list[dict[str, Any]] = []

    def hook(event: dict[str, Any], hint: dict[str, Any]) -> Any:
        seen.append(event)
        return None if event["transaction"] == "drop me" else event

    transport = init(before_send_transaction=hook)
    with tripwire.start_transaction(name="keep me") as tx:
        tx.start_child(op="a").finish()
    with tripwire.start_transaction(name="drop me") as tx:
        tx.start_child(op="a").finish()
        tx.start_child(op="b").finish()
    assert [e["transaction"] for e in seen] == ["keep me", "drop me"]
    assert isinstance(seen[0]["start_timestamp"], str)
    assert [e["transaction"] for e in transport.transactions] == ["keep me"]
    assert lost(DropReason.BEFORE_SEND, DataCategory.TRANSACTION) == 1
    assert lost(DropReason.BEFORE_SEND, DataCategory.SPAN) == 3


def test_event_processors_and_scrubber_apply_to_transactions() -> None:
    transport = init()

    def processor(event: dict[str, Any], hint: dict[str, Any]) -> Any:
        if event.get("type") == "transaction":
            event["tags"]["processed"] = "yes"
        return event

    tripwire.get_isolation_scope().add_event_processor(processor)
    with tripwire.start_transaction(name="t") as tx, tx.start_child(op="auth") as span:
        span.set_data("password", "hunter2")
    event = transport.transactions[0]
    assert event["tags"]["processed"] == "yes"
    assert event["spans"][0]["data"]["password"] == "[Filtered]"


def test_trace_ignore_status_codes() -> None:
    transport = init(trace_ignore_status_codes={404, range(500, 503)})
    for code in (200, 404, 501, 503):
        with tripwire.start_transaction(name=f"GET {code}", op="http.server") as tx:
            tx.start_child(op="handler").finish()
            tx.set_http_status(code)
    assert [e["transaction"] for e in transport.transactions] == ["GET 200", "GET 503"]
    assert lost(DropReason.EVENT_PROCESSOR, DataCategory.TRANSACTION) == 2
    assert lost(DropReason.EVENT_PROCESSOR, DataCategory.SPAN) == 4


def test_set_transaction_name_renames_the_active_transaction() -> None:
    transport = init()
    with tripwire.start_transaction(name="initial"):
        tripwire.set_transaction_name("/users/{id}", source="route")
        tripwire.capture_message("inside")
    event = transport.events[0]
    assert event["transaction"] == "/users/{id}"
    assert event["transaction_info"] == {"source": "route"}
    tx_event = transport.transactions[0]
    assert tx_event["transaction"] == "/users/{id}"
    assert tx_event["transaction_info"] == {"source": "route"}


def test_set_measurement_and_update_current_span() -> None:
    transport = init()
    with tripwire.start_transaction(name="t"):
        with pytest.warns(DeprecationWarning, match="set_measurement"):
            tripwire.set_measurement("lcp", 2.5, "second")
        with tripwire.start_span(op="old"):
            tripwire.update_current_span(op="new", name="renamed", attributes={"k": 1})
    event = transport.transactions[0]
    assert event["measurements"] == {"lcp": {"value": 2.5, "unit": "second"}}
    assert event["spans"][0]["op"] == "new"
    assert event["spans"][0]["description"] == "renamed"
    assert event["spans"][0]["data"]["k"] == 1


def test_update_current_span_describes_a_transaction_without_renaming_it() -> None:
    transport = init()
    with tripwire.start_transaction(name="original", op="task"):
        tripwire.update_current_span(name="described", attributes={"k": "v"})
    (event,) = transport.transactions
    assert event["transaction"] == "original"  # the name that groups it, as sentry_sdk
    assert event["contexts"]["trace"]["description"] == "described"
    assert event["contexts"]["trace"]["data"]["k"] == "v"


# -- errors link to traces --------------------------------------------------------------------


def test_error_inside_a_span_carries_its_trace_context() -> None:
    transport = init()
    with tripwire.start_transaction(name="job", op="task") as tx:
        with tripwire.start_span(op="step") as span:
            tripwire.capture_message("inside")
    [error_envelope, tx_envelope] = transport.envelopes
    trace = transport.events[0]["contexts"]["trace"]
    assert trace["trace_id"] == tx.trace_id
    assert trace["span_id"] == span.span_id
    assert trace["parent_span_id"] == tx.span_id
    assert trace["op"] == "step"
    assert "dynamic_sampling_context" not in trace  # it went to the envelope header
    assert error_envelope.headers["trace"] == tx_envelope.headers["trace"]
    assert transport.events[0]["transaction"] == "job"


def test_error_outside_any_transaction_carries_the_propagation_context() -> None:
    transport = init()
    traceparent = tripwire.get_traceparent()
    assert traceparent is not None
    tripwire.capture_message("outside")
    trace = transport.events[0]["contexts"]["trace"]
    trace_id, span_id = traceparent.split("-")
    assert trace == {"trace_id": trace_id, "span_id": span_id, "parent_span_id": None}
    assert transport.envelopes[0].headers["trace"] == {
        "trace_id": trace_id,
        "environment": "production",
        "release": "1.0",
        "public_key": "pub",
        "org_id": "17",
        "sample_rate": "1.0",
    }


def test_with_tracing_off_errors_in_a_transaction_use_the_propagation_context() -> None:
    transport = init(traces_sample_rate=None)
    outside = tripwire.get_traceparent()
    with tripwire.start_transaction(name="t") as tx:
        assert tx.sampled is False
        assert tripwire.get_traceparent() == outside
        tripwire.capture_message("inside")
    assert outside is not None
    assert transport.events[0]["contexts"]["trace"]["trace_id"] == outside.split("-")[0]
    assert transport.transactions == []


# -- the Span / Transaction API ------------------------------------------------------------------


def test_span_api_surface() -> None:
    init()
    tx: Transaction
    with tripwire.start_transaction(name="t", op="task") as tx:
        span = tx.start_child(op="db", name="q", origin="auto.db")
        assert isinstance(span, Span)
        assert span.containing_transaction is tx
        assert tx.containing_transaction is tx
        assert span.name == span.description == "q"
        assert span.origin == "auto.db"
        assert span.trace_id == tx.trace_id
        assert span.sampled is True
        assert isinstance(span.start_timestamp, datetime)
        assert span.timestamp is None
        span.set_tag("t", 1)
        span.set_data("d", [1])
        span.update_data({"e": 2})
        span.set_flag("feature", True)
        with pytest.warns(DeprecationWarning, match="set_measurement"):
            span.set_measurement("m", 3)
        span.set_http_status(500)
        assert not span.is_success()
        span.finish()
        as_json = span.to_json()
        assert isinstance(as_json["timestamp"], datetime)
        assert as_json["status"] == "internal_error"
        assert as_json["tags"] == {"t": 1, "http.status_code": "500", "status": "internal_error"}
        assert as_json["data"]["feature"] is True
        assert as_json["data"][SPANDATA.HTTP_STATUS_CODE] == 500
        assert as_json["measurements"] == {"m": {"value": 3, "unit": ""}}
        assert isinstance(as_json["start_timestamp"], datetime)
        assert span.to_traceparent() == f"{tx.trace_id}-{span.span_id}-1"
        assert span.to_baggage() is tx.get_baggage()
        headers = dict(span.iter_headers())
        assert headers["sentry-trace"] == span.to_traceparent()
        assert headers["baggage"] == tx.get_baggage().serialize()
        context = span.get_trace_context()
        assert context["dynamic_sampling_context"]["trace_id"] == tx.trace_id
        assert span.new_span(op="legacy").parent_span_id == span.span_id
    tx_json = tx.to_json()
    assert (tx_json["name"], tx_json["source"], tx_json["sampled"]) == ("t", "custom", True)
    assert "Transaction(name='t'" in repr(tx)
    assert "Span(op='db'" in repr(span)


def test_flags_are_capped_at_ten() -> None:
    span = Span()
    for i in range(12):
        span.set_flag(f"f{i}", True)
    assert sorted(span.to_json()["data"]) == sorted(
        [f"f{i}" for i in range(10)] + ["thread.id", "thread.name"]
    )


def test_transaction_source_and_status_constants() -> None:
    assert str(TransactionSource.ROUTE) == "route"
    assert SPANSTATUS.DEADLINE_EXCEEDED == "deadline_exceeded"
    assert [get_span_status_from_http_code(c) for c in (200, 401, 418, 429, 503, 599, 600)] == [
        "ok",
        "unauthenticated",
        "invalid_argument",
        "resource_exhausted",
        "unavailable",
        "internal_error",
        "unknown_error",
    ]


def test_noop_span_records_nothing() -> None:
    noop = NoOpSpan()
    assert isinstance(noop, Span)
    with noop as entered:
        child = entered.start_child(op="x")
        child.set_tag("a", 1)
        child.set_data("b", 2)
        child.set_http_status(500)
    assert isinstance(child, NoOpSpan)
    assert noop.to_json() == {} and noop.get_trace_context() == {}
    assert noop.to_traceparent() == "" and list(noop.iter_headers()) == []
    assert noop.containing_transaction is None and noop.finish() is None
    assert repr(noop) == "<NoOpSpan>"


def test_other_instrumenter_gets_noop_spans() -> None:
    transport = init(instrumenter="otel")
    with tripwire.start_transaction(name="t") as tx:
        assert isinstance(tx, NoOpSpan)
    assert isinstance(tripwire.start_transaction(name="t", instrumenter="otel"), Transaction)
    assert transport.transactions == []


def test_span_outside_a_transaction() -> None:
    init()
    with tripwire.start_span(op="http.client") as span:
        assert span.containing_transaction is None
        assert span.trace_id == tripwire.get_traceparent().split("-")[0]  # type: ignore[union-attr]
        assert list(span.iter_headers()) == []
        child = tripwire.start_span(op="child")
        assert child.parent_span_id == span.span_id


def test_transaction_constructed_directly_and_started() -> None:
    transport = init()
    tx = Transaction(name="direct", op="task", sampled=None)
    assert tripwire.start_transaction(tx) is tx
    assert tx.sampled is True
    tx.finish()
    assert transport.transactions[0]["transaction"] == "direct"


def test_transaction_never_started_is_not_sent() -> None:
    transport = init()
    Transaction(name="not started").finish()
    assert transport.transactions == []


def test_fast_constructors_set_every_slot() -> None:
    slots = {s for cls in Transaction.__mro__ for s in getattr(cls, "__slots__", ())}
    continued = tripwire.continue_trace({}, name="x")
    child = continued.start_child(op="c")
    for obj, names in ((continued, slots), (child, set(Span.__slots__))):
        missing = [name for name in names if not hasattr(obj, name)]
        assert missing == []


def test_unknown_span_arguments_raise_type_error() -> None:
    # As sentry_sdk 2.x, whose Span has a fixed signature.
    with pytest.raises(TypeError, match="bogus"):
        Span(op="x", bogus=1)


# -- @trace and functions_to_trace -------------------------------------------------------------


@tripwire.trace
def traced_sync(x: int) -> int:
    return x + 1


@tripwire.trace(op="custom.op", name="Custom name", attributes={"a": 1})
async def traced_async() -> str:
    await asyncio.sleep(0)
    return "done"


@tripwire.trace
def traced_failing() -> None:
    raise ValueError("x")


def test_trace_decorator() -> None:
    transport = init()
    assert traced_sync(1) == 2  # no transaction: just runs
    with tripwire.start_transaction(name="t"):
        assert traced_sync(1) == 2
        assert asyncio.run(traced_async()) == "done"
        with pytest.raises(ValueError):
            traced_failing()
    spans = transport.transactions[0]["spans"]
    assert [(s["op"], s["description"]) for s in spans] == [
        ("function", f"{__name__}.traced_sync"),
        ("custom.op", "Custom name"),
        ("function", f"{__name__}.traced_failing"),
    ]
    assert spans[1]["data"]["a"] == 1
    assert spans[2]["status"] == "internal_error"
    assert traced_sync.__name__ == "traced_sync"


class _Traced:
    def method(self) -> int:
        return 1

    @staticmethod
    def static() -> int:
        return 2

    @classmethod
    def klass(cls) -> int:
        return 3


def plain_function() -> int:
    return 4


def test_functions_to_trace() -> None:
    module = sys.modules[__name__].__name__
    transport = init(
        functions_to_trace=[
            {"qualified_name": f"{module}.plain_function"},
            {"qualified_name": f"{module}._Traced.method"},
            {"qualified_name": f"{module}._Traced.static"},
            {"qualified_name": f"{module}._Traced.klass"},
            {"qualified_name": "no.such.module.function"},
            {"qualified_name": "nodots"},
        ]
    )
    with tripwire.start_transaction(name="t"):
        assert plain_function() == 4
        assert _Traced().method() == 1
        assert _Traced.static() == 2
        assert _Traced().static() == 2
        assert _Traced.klass() == 3
    names = [s["description"] for s in transport.transactions[0]["spans"]]
    assert names == [
        f"{module}.plain_function",
        f"{module}._Traced.method",
        f"{module}._Traced.static",
        f"{module}._Traced.static",
        f"{module}._Traced.klass",
    ]
    reset()  # undoes the wrapping
    assert not hasattr(plain_function, "__wrapped__")
    assert isinstance(_Traced.__dict__["static"], staticmethod)
    assert _Traced().static() == 2
