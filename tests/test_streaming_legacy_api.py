"""The transaction-model API under span streaming, side by side with sentry-sdk 2.75.

With ``trace_lifecycle="stream"`` sentry_sdk 2.75's old tracing API does nothing:
`start_transaction`, `start_span`, `Scope.start_transaction` / `start_span` and the
`Hub`'s warn (``DeprecationWarning: Scope.start_transaction is not available in
streaming mode.``, at the caller of the `Scope` method, or in the SDK's own module for
`sentry_sdk.start_*` and `Hub`) and return a `NoOpSpan` that never becomes the current
span: nothing is sent, `traces_sampler` is not asked. `@sentry_sdk.trace` makes no
span, `get_current_span()` sees no streamed span, `update_current_span` and
`set_measurement` warn, a transaction the user builds and enters is not current. What
still streams: `ai_track`, `record_sql_queries` (segments or children, as
`traces.start_span`) and the integrations (tripwire's call `tracing._api.sdk_start_*`).

One script, run once per SDK: scenario 1 drives every entry point (types, current
span, warnings and sampler questions as notes; the spans sent); scenario 2 checks that
integrations still stream: a WSGI app (its request a segment) and an http.client call
to a loopback server inside a `traces.start_span` segment (a child).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from _side_by_side import WARNING_PROBE, of_type, run_each
from _stream_shapes import assert_same, canonical, sent, spans

SCRIPT = (
    """
import asyncio
import http.client
import http.server
import threading
import warnings
import wsgiref.util

import sentry_sdk
import sentry_sdk.ai.monitoring
import sentry_sdk.traces
import sentry_sdk.tracing
import sentry_sdk.tracing_utils
from sentry_sdk.integrations.stdlib import StdlibIntegration
from sentry_sdk.integrations.wsgi import SentryWsgiMiddleware


def sampler(context):
    NOTES.append(["sampled", context["transaction_context"].get("name")])
    return 1.0


"""
    + WARNING_PROBE
    + """


def kind(value):
    return type(value).__name__


def current():
    return kind(sentry_sdk.get_current_span())


def in_segment(call):
    def run():
        with sentry_sdk.traces.start_span(name="seg"):
            return call()
    return run


def entered(make):
    def run():
        span = make()
        before = sentry_sdk.get_traceparent()
        with span as inside:
            return [kind(span), inside is span, current(), sentry_sdk.get_traceparent() == before]
    return run


def user_transaction():
    built = sentry_sdk.tracing.Transaction(name="built", op="task")
    started = sentry_sdk.start_transaction(built)
    child = built.start_child(op="child", name="c")
    with child:
        in_child = current()
    with built:
        in_built = current()
    return [kind(started), started is built, kind(child), in_child, in_built, built.sampled]


def continued():
    transaction = sentry_sdk.continue_trace(
        {"sentry-trace": "771a43a4192642f0b136d5159a501700-1234567890abcdef-1"},
        op="http.server",
        name="continued",
    )
    started = sentry_sdk.start_transaction(transaction)
    with started:
        return [kind(transaction), kind(started), current()]


@sentry_sdk.trace
def traced():
    return current()


@sentry_sdk.tracing.trace(op="custom")
async def traced_async():
    return current()


with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # ai_track is deprecated, in both SDKs

    @sentry_sdk.ai.monitoring.ai_track("pipeline")
    def tracked():
        return current()


def query():
    with sentry_sdk.tracing_utils.record_sql_queries(
        None, "SELECT 1", None, None, False, span_origin="manual"
    ) as span:
        span.set_attribute("db.system", "sqlite")
        return current()


def nested_start_span():
    with sentry_sdk.start_span(op="db", name="inner") as span:
        return [kind(span), current(), kind(span.start_child(op="grandchild"))]


OPTIONS = dict(
    transport=KEEP, release="r", default_integrations=False, auto_enabling_integrations=False,
    traces_sampler=sampler, trace_lifecycle="stream",
)
sentry_sdk.init(**OPTIONS)
scope = sentry_sdk.get_current_scope
isolation = sentry_sdk.get_isolation_scope
probe("start_transaction", entered(lambda: sentry_sdk.start_transaction(name="tx", op="task")))
probe("start_span", entered(lambda: sentry_sdk.start_span(op="db", name="q")))
probe("Scope.start_transaction", entered(lambda: scope().start_transaction(name="tx")))
probe("Scope.start_span", entered(lambda: scope().start_span(name="s")))
probe("isolation Scope.start_span", entered(lambda: isolation().start_span(name="s")))
probe("Hub.start_transaction", entered(lambda: sentry_sdk.Hub.current.start_transaction(name="h")))
probe("Hub.start_span", entered(lambda: sentry_sdk.Hub.current.start_span(name="h")))
probe("NoOpSpan.start_child", entered(lambda: sentry_sdk.start_transaction(name="n").start_child()))
probe("user's Transaction", user_transaction)
probe("continue_trace + start_transaction", continued)
probe("start_transaction(otel)", lambda: kind(sentry_sdk.start_transaction(instrumenter="otel")))
probe("start_span(otel)", lambda: kind(sentry_sdk.start_span(op="o", instrumenter="otel")))
probe("start_span(description=)", lambda: kind(sentry_sdk.start_span(description="d")))
probe("start_transaction(unknown=)", lambda: kind(sentry_sdk.start_transaction(unknown=1)))
probe("@trace", traced)
probe("@tracing.trace async", lambda: asyncio.run(traced_async()))
probe("ai_track", tracked)
probe("record_sql_queries", query)
probe("in segment: start_span", in_segment(nested_start_span))
probe("in segment: Scope.start_span", in_segment(lambda: kind(scope().start_span(name="s"))))
probe("in segment: start_transaction", in_segment(lambda: kind(sentry_sdk.start_transaction())))
probe("in segment: @trace", in_segment(traced))
probe("in segment: @tracing.trace async", in_segment(lambda: asyncio.run(traced_async())))
probe("in segment: ai_track", in_segment(tracked))
probe("in segment: record_sql_queries", in_segment(query))
probe("in segment: get_current_span", in_segment(current))
probe("in segment: update_current_span", in_segment(lambda: sentry_sdk.update_current_span(op="x")))
probe("in segment: set_measurement", in_segment(lambda: sentry_sdk.set_measurement("m", 1.0)))
next_scenario()


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
thread = threading.Thread(target=server.serve_forever, daemon=True)
thread.start()


def app(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


sentry_sdk.init(**{**OPTIONS, "integrations": [StdlibIntegration()]})
environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/hello", "SERVER_NAME": "127.0.0.1"}
wsgiref.util.setup_testing_defaults(environ)
body = b"".join(SentryWsgiMiddleware(app)(environ, lambda status, headers, exc=None: None))
with sentry_sdk.traces.start_span(name="outgoing"):
    connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1])
    connection.request("GET", "/path")
    connection.getresponse().read()
    connection.close()
server.shutdown()
server.server_close()
thread.join()
NOTES.append(["wsgi body", body.decode()])
finish()
"""
)

_PORT = re.compile(r"127\.0\.0\.1:\d+")


def _span_tree(found: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Each span sent: name (ports masked), op, segment flag, parent's name, status."""
    sent_spans = sent(found)
    names = {span["span_id"]: span["name"] for span in sent_spans}
    return sorted(
        (
            _PORT.sub("127.0.0.1:PORT", span["name"]),
            span.get("attributes", {}).get("sentry.op", {}).get("value"),
            span["is_segment"],
            names.get(span.get("parent_span_id") or "", None),
            span["status"],
        )
        for span in sent_spans
    )


def test_the_legacy_api_under_streaming_as_sentry_sdk(tmp_path: Path) -> None:
    (api_sentry, api_ours), (integrations_sentry, integrations_ours) = run_each(SCRIPT, tmp_path)

    # Scenario 1: every entry point (types, current span, warnings, sampler questions).
    assert_same(api_ours["notes"], api_sentry["notes"])
    notes = {note[0]: note[1:] for note in api_ours["notes"] if note[0] != "sampled"}
    unavailable = "Scope.{} is not available in streaming mode."
    for label, method, where in (
        ("start_transaction", "start_transaction", "sdk"),
        ("start_span", "start_span", "sdk"),
        ("Scope.start_transaction", "start_transaction", "caller"),
        ("Scope.start_span", "start_span", "caller"),
        ("Hub.start_span", "start_span", "sdk"),
    ):
        result, warned = notes[label]
        # A NoOpSpan, not current when entered (the trace headers stay the scope's).
        assert result == ["NoOpSpan", True, "NoneType", True], label
        assert warned == [["DeprecationWarning", unavailable.format(method), where]], label
    # Neither a transaction the user built nor its child becomes current when entered.
    user_built = ["NoOpSpan", False, "Span", "NoneType", "NoneType", None]
    assert notes["user's Transaction"][0] == user_built
    assert notes["@trace"][0] == notes["in segment: @trace"][0] == "NoneType"
    assert notes["in segment: get_current_span"][0] == "NoneType"
    assert notes["in segment: update_current_span"][1][0][0] == "DeprecationWarning"
    # Only segments of `traces.start_span`, `ai_track` and `record_sql_queries` were sampled.
    sampled = sorted({note[1] for note in api_ours["notes"] if note[0] == "sampled"})
    assert sampled == ["SELECT 1", "pipeline", "seg"]

    # What was sent: the same spans, none of the transaction-model API's.
    shapes = canonical(spans(api_ours))
    assert_same(shapes, canonical(spans(api_sentry)))
    assert of_type(api_ours, "transaction") == []
    assert sorted({(s["name"], s["is_segment"]) for s in shapes}) == [
        ("SELECT 1", False),
        ("SELECT 1", True),
        ("pipeline", False),
        ("pipeline", True),
        ("seg", True),
    ]

    # Scenario 2: the integrations still stream.
    tree = _span_tree(integrations_ours)
    assert_same(tree, _span_tree(integrations_sentry))
    assert_same(integrations_ours["notes"], integrations_sentry["notes"])
    assert integrations_ours["notes"] == [
        ["sampled", "generic WSGI request"],
        ["sampled", "outgoing"],
        ["wsgi body", "hello"],
    ]
    assert ("generic WSGI request", "http.server", True, None, "ok") in tree
    assert ("GET http://127.0.0.1:PORT/path", "http.client", False, "outgoing", "ok") in tree
