"""`Scope.span` and `Scope.transaction` under span streaming, side by side with sentry-sdk 2.75.

With ``trace_lifecycle="stream"`` sentry_sdk 2.75's scope hides a streamed span from
the transaction-model properties: `Scope.span` is None (no warning), `Scope.transaction`
is None with ``DeprecationWarning: Scope.transaction is not available in streaming
mode.`` (at the caller), and ``scope.transaction = "x"`` warns the same and names the
scope's events but not the segment; `set_transaction_name` (the scope's and the
module's) renames the segment, also from a child, and sets its name source.
`Scope.streamed_span` is the span. The `Scope.span` setter takes a streamed span (it
becomes the active span: trace headers and events follow it) without naming the
scope's events after it, where the `streamed_span` setter does for a segment.
`Hub.current.scope` is the isolation scope, which has no span.

One script, run once per SDK: scenario 1 drives the properties inside a
`traces.start_span` segment and child; scenario 2 inside a WSGI request (a segment the
integration starts: tripwire's is a `CompatSpan`, the same to the user); scenario 3 is
the transaction model, where nothing of this changes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from _side_by_side import WARNING_PROBE, of_type, run_each
from _stream_shapes import assert_same

SCRIPT = (
    """
import warnings
import wsgiref.util

import sentry_sdk
import sentry_sdk.traces
from sentry_sdk.integrations.wsgi import SentryWsgiMiddleware


"""
    + WARNING_PROBE
    + """


def kind(value):
    name = type(value).__name__
    return "StreamedSpan" if name == "CompatSpan" else name  # what tripwire's integrations start


def scope():
    return sentry_sdk.get_current_scope()


def current_ids(span):
    traceparent = sentry_sdk.get_traceparent()
    return traceparent is not None and traceparent.split("-")[1] == span.span_id


def getters():
    return [
        kind(scope().span),
        kind(scope().transaction),
        kind(scope().streamed_span),
        kind(sentry_sdk.get_isolation_scope().span),
        kind(sentry_sdk.Hub.current.scope.span),
        kind(sentry_sdk.Hub.current.scope.transaction),
        kind(sentry_sdk.get_current_span()),
    ]


def in_segment(call):
    def run():
        with sentry_sdk.traces.start_span(name="seg") as segment:
            return call(segment)
    return run


def in_child(call):
    def run():
        with sentry_sdk.traces.start_span(name="seg") as segment:
            with sentry_sdk.traces.start_span(name="child"):
                return call(segment)
    return run


def assign(segment):
    scope().transaction = "assigned"
    sentry_sdk.capture_message("after assign")
    return segment.name


def named(segment):
    scope().set_transaction_name("named", source="task")
    sentry_sdk.capture_message("after name")
    return segment.name


def module_named(segment):
    sentry_sdk.set_transaction_name("module-named")
    return segment.name


def set_span(setter):
    def run():
        scope().set_transaction_name("before")
        span = sentry_sdk.traces.start_span(name="inactive-" + setter, active=False)
        setattr(scope(), setter, span)
        found = getters() + [scope().streamed_span is span, current_ids(span)]
        sentry_sdk.capture_message("set " + setter)
        setattr(scope(), setter, None)
        found.append(kind(scope().streamed_span))
        span.end()
        return found
    return run


def unsampled():
    with sentry_sdk.traces.start_span(name="unsampled") as segment:
        found = getters()
        sentry_sdk.capture_message("unsampled 0")
        scope().transaction = "unsampled-assigned"
        sentry_sdk.capture_message("unsampled 1")
        scope().set_transaction_name("unsampled-named")
        sentry_sdk.capture_message("unsampled 2")
        return found + [kind(segment), segment.name]


def sampler(context):
    return 0.0 if context["transaction_context"].get("name") == "unsampled" else 1.0


OPTIONS = dict(
    transport=KEEP, release="r", default_integrations=False, auto_enabling_integrations=False,
    traces_sampler=sampler, trace_lifecycle="stream",
)
sentry_sdk.init(**OPTIONS)
probe("no span", getters)
probe("in segment", in_segment(lambda segment: getters()))
probe("in child", in_child(lambda segment: getters()))
probe("assign", in_segment(assign))
probe("assign in child", in_child(assign))
probe("set_transaction_name", in_segment(named))
probe("set_transaction_name in child", in_child(named))
probe("module set_transaction_name", in_segment(module_named))
probe("Scope.span setter", set_span("span"))
probe("Scope.streamed_span setter", set_span("streamed_span"))
probe("unsampled segment", unsampled)
next_scenario()


def app(environ, start_response):
    probe("wsgi getters", getters)
    probe("wsgi assign", lambda: setattr(scope(), "transaction", "wsgi-assigned"))
    sentry_sdk.capture_message("in wsgi 1")
    probe("wsgi set_transaction_name", lambda: scope().set_transaction_name("wsgi-named"))
    sentry_sdk.capture_message("in wsgi 2")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


sentry_sdk.init(**OPTIONS)
environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/hello", "SERVER_NAME": "127.0.0.1"}
wsgiref.util.setup_testing_defaults(environ)
body = b"".join(SentryWsgiMiddleware(app)(environ, lambda status, headers, exc=None: None))
NOTES.append(["wsgi body", body.decode()])
next_scenario()


def transaction_model():
    with sentry_sdk.start_transaction(name="tx", op="task") as transaction:
        with sentry_sdk.start_span(op="child") as child:
            found = getters() + [scope().span is child, scope().transaction is transaction]
            scope().transaction = "tx-assigned"
            found.append(transaction.name)
            scope().set_transaction_name("tx-named", source="task")
            found += [transaction.name, transaction.source]
            sentry_sdk.capture_message("in transaction")
            return found


sentry_sdk.init(**{**OPTIONS, "trace_lifecycle": "static"})
probe("transaction model", transaction_model)
finish()
"""
)


def _events(found: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Each event: message, transaction name and info, whether it has a trace span."""
    return [
        (
            (event.get("logentry") or {}).get("message") or event.get("message"),
            event.get("transaction"),
            event.get("transaction_info"),
            "span_id" in event.get("contexts", {}).get("trace", {}),
        )
        for event in of_type(found, "event")
    ]


def _spans(found: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Each span sent, in order: name, segment flag, name source."""
    return [
        (
            span["name"],
            span["is_segment"],
            span.get("attributes", {}).get("sentry.segment.name.source", {}).get("value"),
        )
        for payload in of_type(found, "span")
        for span in payload["items"]
    ]


def test_scope_properties_under_streaming_as_sentry_sdk(tmp_path: Path) -> None:
    scenarios = run_each(SCRIPT, tmp_path)
    for sentry, ours in scenarios:
        assert_same(ours["notes"], sentry["notes"])
        assert_same(_events(ours), _events(sentry))
        assert_same(_spans(ours), _spans(sentry))
        assert_same(of_type(ours, "transaction") == [], of_type(sentry, "transaction") == [])
    (_, api), (_, wsgi), (_, transaction_model) = scenarios

    # Scenario 1: the properties inside a segment and inside its child.
    notes = {note[0]: note[1:] for note in api["notes"]}
    unavailable = "Scope.transaction is not available in streaming mode."
    warned = [["DeprecationWarning", unavailable, "caller"]]
    none = "NoneType"
    hidden = [none, none, "StreamedSpan", none, none, none, none]
    assert notes["no span"] == [["NoneType"] * 7, []]
    assert notes["in segment"] == notes["in child"] == [hidden, warned]
    # Assigning names the events, not the segment; set_transaction_name renames it.
    assert notes["assign"] == notes["assign in child"] == ["seg", warned]
    assert notes["set_transaction_name"] == notes["set_transaction_name in child"] == ["named", []]
    assert notes["module set_transaction_name"] == ["module-named", []]
    # Either setter makes a streamed span active (the trace headers follow it).
    assert notes["Scope.span setter"] == [[*hidden, True, True, none], warned]
    assert notes["Scope.streamed_span setter"] == notes["Scope.span setter"]
    events = {event[0]: event[1:] for event in _events(api)}
    assert events["after assign"] == ("assigned", {"source": "custom"}, True)
    assert events["after name"] == ("named", {"source": "task"}, True)
    # Only the `streamed_span` setter names the events after a segment.
    assert events["set span"][0] == "before"
    assert events["set streamed_span"][0] == "inactive-streamed_span"
    sent = _spans(api)
    assert [name for name, is_segment, _ in sent if is_segment] == [
        "seg",
        "seg",
        "seg",
        "seg",
        "named",
        "named",
        "module-named",
        "inactive-span",
        "inactive-streamed_span",
    ]
    assert ("named", True, "task") in sent
    # An unsampled segment (a NoOpStreamedSpan) alike: it names the events, sends nothing.
    hidden_noop = [*hidden[:2], "NoOpStreamedSpan", *hidden[3:]]
    assert notes["unsampled segment"] == [
        [*hidden_noop, "NoOpStreamedSpan", "unsampled-named"],
        warned * 2,
    ]
    assert [event[:2] for event in _events(api) if event[0].startswith("unsampled")] == [
        ("unsampled 0", "unsampled"),
        ("unsampled 1", "unsampled-assigned"),
        ("unsampled 2", "unsampled-named"),
    ]

    # Scenario 2: the segment a WSGI request runs in.
    notes = {note[0]: note[1:] for note in wsgi["notes"]}
    assert notes["wsgi getters"] == [hidden, warned]
    assert notes["wsgi assign"] == [None, warned]
    assert notes["wsgi set_transaction_name"] == [None, []]
    assert [event[:2] for event in _events(wsgi)] == [
        ("in wsgi 1", "wsgi-assigned"),
        ("in wsgi 2", "wsgi-named"),
    ]
    assert _spans(wsgi) == [("wsgi-named", True, "route")]

    # Scenario 3: the transaction model is unchanged.
    [(_, found, seen)] = transaction_model["notes"]
    assert found == [
        "Span",
        "Transaction",
        "NoneType",
        "NoneType",
        "NoneType",
        "NoneType",
        "Span",
        True,
        True,
        "tx-assigned",
        "tx-named",
        "task",
    ]
    assert seen == []
    assert [event[:2] for event in _events(transaction_model)] == [("in transaction", "tx-named")]
    assert [payload["transaction"] for payload in of_type(transaction_model, "transaction")] == [
        "tx-named"
    ]
