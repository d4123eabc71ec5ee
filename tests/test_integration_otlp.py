"""OTLPIntegration: the real OTel SDK exports spans over OTLP/HTTP to the DSN's endpoint.

A receiver on 127.0.0.1 takes both Sentry's envelopes and the OTLP POSTs; the OTLP
bodies are decoded with the opentelemetry-proto classes. The propagation round trip
crosses a real HTTP request to a server thread on 127.0.0.1. The differential test
runs one scenario on sentry_sdk 2.75 and on tripwire, each against its own receiver.
"""

from __future__ import annotations

import json
import threading
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _otel import attributes, fresh_otel, otlp_spans
from _receiver import Receiver, Request
from _side_by_side import events, run_both

import tripwire
from tripwire.consts import VERSION
from tripwire.integrations.otlp import OTLPIntegration, SentryOTLPPropagator
from tripwire.testing import reset

if TYPE_CHECKING:
    from opentelemetry import context as otel_context
    from opentelemetry import propagate, trace
    from opentelemetry.sdk.trace import Span, TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind, format_span_id, format_trace_id


@pytest.fixture(autouse=True, scope="module")
def _opentelemetry() -> None:
    """OpenTelemetry is imported when the module's tests start, not at collection (every xdist
    worker collects every module; tests/_lazy.py)."""
    global otel_context, propagate, trace, Span, TracerProvider, SimpleSpanProcessor
    global InMemorySpanExporter, SpanKind, format_span_id, format_trace_id
    from opentelemetry import context as otel_context
    from opentelemetry import propagate, trace
    from opentelemetry.sdk.trace import Span, TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    from opentelemetry.trace import SpanKind, format_span_id, format_trace_id


TRACE_ID = "771a43a4192642f0b136d5159a501700"
PARENT_ID = "1234567890abcdef"
BAGGAGE = "other=1,sentry-trace_id=771a43a4192642f0b136d5159a501700,sentry-sample_rate=0.25"


@pytest.fixture
def rx() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


@pytest.fixture(autouse=True)
def otel(rx: Receiver) -> Iterator[None]:
    # After the receiver: the provider's shutdown exports what is left while it listens.
    yield from fresh_otel()


def init(rx: Receiver, project: int = 1, **integration: Any) -> None:
    tripwire.init(
        dsn=rx.dsn(project=project),
        integrations=[OTLPIntegration(**integration)],
        default_integrations=False,
    )


def exported(rx: Receiver) -> list[Request]:
    """Flush the global provider; the OTLP requests the receiver got."""
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    assert provider.force_flush()
    return [r for r in rx.requests if "/otlp/" in r.path or r.path == "/v1/traces"]


def envelope_events(rx: Receiver) -> list[Any]:
    tripwire.flush()
    return [
        item.payload.json
        for r in rx.requests
        if r.path.endswith("/envelope/")
        for item in r.envelope.items
        if item.type == "event"
    ]


def ids(span: Any) -> tuple[str, str]:
    ctx = span.get_span_context()
    return format_trace_id(ctx.trace_id), format_span_id(ctx.span_id)


def test_spans_are_exported_to_the_dsn_endpoint(rx: Receiver) -> None:
    init(rx, project=7)
    tracer = trace.get_tracer("shop")
    with tracer.start_as_current_span("checkout", kind=SpanKind.SERVER) as root:
        with tracer.start_as_current_span("charge", attributes={"amount": 12, "currency": "EUR"}):
            pass
    (request,) = exported(rx)
    assert (request.method, request.path) == ("POST", "/api/7/integration/otlp/v1/traces/")
    assert request.headers["content-type"] == "application/x-protobuf"
    assert request.headers["x-sentry-auth"] == (
        f"Sentry sentry_key=public, sentry_version=7, sentry_client=tripwire.python/{VERSION}"
    )
    spans = {span.name: span for span in otlp_spans(request.body)}
    assert set(spans) == {"checkout", "charge"}
    trace_id, root_id = ids(root)
    assert spans["checkout"].trace_id.hex() == trace_id
    assert spans["charge"].parent_span_id.hex() == root_id == spans["checkout"].span_id.hex()
    assert attributes(spans["charge"]) == {"amount": 12, "currency": "EUR"}


def test_collector_url_replaces_the_dsn_endpoint(rx: Receiver) -> None:
    init(rx, collector_url=rx.url + "/v1/traces")
    with trace.get_tracer("t").start_as_current_span("to collector"):
        pass
    (request,) = exported(rx)
    assert request.path == "/v1/traces"
    assert "x-sentry-auth" not in request.headers
    assert [span.name for span in otlp_spans(request.body)] == ["to collector"]


def test_the_applications_provider_is_kept(rx: Receiver) -> None:
    provider = TracerProvider()
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    trace.set_tracer_provider(provider)
    init(rx)
    assert trace.get_tracer_provider() is provider
    with trace.get_tracer("t").start_as_current_span("both"):
        pass
    (request,) = exported(rx)
    assert [span.name for span in otlp_spans(request.body)] == ["both"]
    assert [span.name for span in memory.get_finished_spans()] == ["both"]


def test_exporter_setup_can_be_left_to_the_application(rx: Receiver) -> None:
    init(rx, setup_otlp_traces_exporter=False, setup_propagator=False)
    assert not isinstance(trace.get_tracer_provider(), TracerProvider)
    assert not isinstance(propagate.get_global_textmap(), SentryOTLPPropagator)


def test_events_join_the_current_otel_span(rx: Receiver) -> None:
    init(rx)
    with trace.get_tracer("t").start_as_current_span("work") as span:
        tripwire.capture_message("inside")
    tripwire.capture_message("outside")
    found = {event["message"]: event for event in envelope_events(rx)}
    inside, outside = found["inside"], found["outside"]
    trace_id, span_id = ids(span)
    assert inside["contexts"]["trace"]["trace_id"] == trace_id
    assert inside["contexts"]["trace"]["span_id"] == span_id
    assert outside["contexts"]["trace"]["trace_id"] != trace_id


def test_recorded_exceptions_are_captured_when_asked(rx: Receiver) -> None:
    init(rx, capture_exceptions=True)
    tracer = trace.get_tracer("t")
    with tracer.start_as_current_span("recording") as span:
        span.record_exception(ValueError("recorded"))
    # OTel's context manager records the exception leaving the span (once it is no
    # longer current: the event does not join it).
    with pytest.raises(KeyError):
        with tracer.start_as_current_span("failing"):
            raise KeyError("sku")
    # Sorted: the transport may send the two envelopes over two connections.
    failing, recorded = sorted(
        envelope_events(rx), key=lambda e: e["exception"]["values"][0]["type"]
    )
    for event, kind in ((recorded, "ValueError"), (failing, "KeyError")):
        (value,) = event["exception"]["values"]
        assert (value["type"], value["mechanism"]) == (kind, {"type": "otlp", "handled": False})
    assert recorded["contexts"]["trace"]["span_id"] == ids(span)[1]
    assert failing["contexts"]["trace"]["trace_id"] != ids(span)[0]
    # The exceptions still reach the OTel spans.
    spans = {s.name: s for r in exported(rx) for s in otlp_spans(r.body)}
    assert [e.name for e in spans["recording"].events] == ["exception"]
    assert [e.name for e in spans["failing"].events] == ["exception"]


def test_recorded_exceptions_are_not_captured_by_default(rx: Receiver) -> None:
    init(rx)
    with trace.get_tracer("t").start_as_current_span("failing") as span:
        span.record_exception(ValueError("x"))
    assert envelope_events(rx) == []


def test_reset_restores_record_exception(rx: Receiver) -> None:
    original = Span.record_exception
    init(rx, capture_exceptions=True)
    assert Span.record_exception is not original
    reset()
    assert Span.record_exception is original


def test_propagator_injects_the_current_otel_span(rx: Receiver) -> None:
    init(rx)
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    assert carrier == {}  # no span
    with trace.get_tracer("t").start_as_current_span("out") as span:
        propagate.inject(carrier)
    trace_id, span_id = ids(span)
    # As head of the trace there is no sampling context to send: no baggage.
    assert carrier == {"sentry-trace": f"{trace_id}-{span_id}-1"}


def test_propagator_passes_incoming_baggage_on(rx: Receiver) -> None:
    init(rx)
    incoming = propagate.extract({"sentry-trace": f"{TRACE_ID}-{PARENT_ID}-1", "baggage": BAGGAGE})
    carrier: dict[str, str] = {}
    # As OTel's server instrumentations do: the extracted context becomes the current one.
    token = otel_context.attach(incoming)
    try:
        with trace.get_tracer("t").start_as_current_span("handler") as span:
            propagate.inject(carrier)
    finally:
        otel_context.detach(token)
    assert ids(span)[0] == TRACE_ID
    assert carrier == {
        "sentry-trace": f"{TRACE_ID}-{ids(span)[1]}-1",
        "baggage": "sentry-trace_id=771a43a4192642f0b136d5159a501700,sentry-sample_rate=0.25",
    }


def test_propagator_is_quiet_without_the_integration(rx: Receiver) -> None:
    tripwire.init(dsn=rx.dsn(), default_integrations=False)
    provider = TracerProvider()
    carrier: dict[str, str] = {}
    with provider.get_tracer("t").start_as_current_span("x"):
        SentryOTLPPropagator().inject(carrier)
    provider.shutdown()
    assert carrier == {}


class _Echo(BaseHTTPRequestHandler):
    """Continues the incoming trace in a server span; answers the headers it would send."""

    def do_GET(self) -> None:
        incoming = {k.lower(): v for k, v in self.headers.items()}
        ctx = propagate.extract(incoming)
        tracer = trace.get_tracer("server")
        with tracer.start_as_current_span("GET /stock", context=ctx, kind=SpanKind.SERVER):
            outgoing: dict[str, str] = {}
            propagate.inject(outgoing)
        body = json.dumps(outgoing).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def test_propagation_round_trip_over_http(rx: Receiver) -> None:
    init(rx)
    server = HTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        tracer = trace.get_tracer("client")
        with tracer.start_as_current_span("GET", kind=SpanKind.CLIENT) as call:
            headers: dict[str, str] = {}
            propagate.inject(headers)
            url = f"http://127.0.0.1:{server.server_address[1]}/stock"
            with urllib.request.urlopen(urllib.request.Request(url, headers=headers)) as answer:
                answered = json.loads(answer.read())
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    trace_id, call_id = ids(call)
    spans = {span.name: span for r in exported(rx) for span in otlp_spans(r.body)}
    served = spans["GET /stock"]
    assert served.trace_id.hex() == trace_id
    assert served.parent_span_id.hex() == call_id
    assert answered == {"sentry-trace": f"{trace_id}-{served.span_id.hex()}-1"}


_SCENARIO = """
    import sys

    sys.path.insert(0, {tests!r})
    from _otel import attributes, otlp_spans
    from _receiver import Receiver
    from opentelemetry import propagate, trace
    from opentelemetry.trace import SpanKind
    from sentry_sdk.integrations.otlp import OTLPIntegration

    with Receiver() as rx:
        sentry_sdk.init(
            dsn=rx.dsn(key="k1", project=9),
            transport=KEEP,
            integrations=[OTLPIntegration(capture_exceptions=True)],
            default_integrations=False,
        )
        tracer = trace.get_tracer("shop")
        incoming = propagate.extract(
            {{"sentry-trace": "771a43a4192642f0b136d5159a501700-1234567890abcdef-1"}}
        )
        with tracer.start_as_current_span("root", context=incoming, kind=SpanKind.SERVER):
            with tracer.start_as_current_span("child", attributes={{"n": 1}}) as child:
                carrier = {{}}
                propagate.inject(carrier)
                sentry_sdk.capture_message("inside")
                child.record_exception(ValueError("recorded"))
        trace.get_tracer_provider().force_flush()
        (request,) = [r for r in rx.requests if "otlp" in r.path]
        exported = otlp_spans(request.body)
        names = {{s.span_id.hex(): s.name for s in exported}}
        child_id = format(child.get_span_context().span_id, "016x")
        auth = request.headers["x-sentry-auth"]
        NOTES.append({{
            "path": request.path,
            "headers": sorted(request.headers),
            "content_type": request.headers["content-type"],
            "auth": auth[: auth.index("sentry_client=")],
            "spans": sorted(
                (
                    s.name,
                    s.kind,
                    names.get(s.parent_span_id.hex(), s.parent_span_id.hex()),
                    s.trace_id.hex(),
                    attributes(s),
                    [e.name for e in s.events],
                )
                for s in exported
            ),
            "carrier": carrier["sentry-trace"].replace(child_id, "<child>"),
        }})
    finish()
"""


def test_matches_sentry_sdk(tmp_path: Path) -> None:
    script = _SCENARIO.format(tests=str(Path(__file__).parent))
    sentry, ours = run_both(script, tmp_path)
    (sentry_notes,) = sentry["notes"]
    (our_notes,) = ours["notes"]
    # The root continues the remote parent; the child is the root's.
    assert [span[:3] for span in our_notes["spans"]] == [
        ["child", 1, "root"],
        ["root", 2, "1234567890abcdef"],
    ]
    assert our_notes == sentry_notes
    assert events(ours) == events(sentry)
    for found in (sentry, ours):
        traces = [e["payload"]["contexts"]["trace"] for e in found["items"]]
        assert [t["trace_id"] for t in traces] == ["771a43a4192642f0b136d5159a501700"] * 2


_OUTGOING = """
    import sys
    import urllib.request

    sys.path.insert(0, {tests!r})
    from _receiver import Receiver
    from opentelemetry import trace
    from sentry_sdk.integrations.otlp import OTLPIntegration
    from sentry_sdk.integrations.stdlib import StdlibIntegration

    with Receiver() as rx, Receiver() as app:
        sentry_sdk.init(
            dsn=rx.dsn(),
            transport=KEEP,
            traces_sample_rate=1.0,
            integrations=[OTLPIntegration(), StdlibIntegration()],
            default_integrations=False,
        )
        with trace.get_tracer("t").start_as_current_span("root"):
            urllib.request.urlopen(app.url + "/in-otel-span").read()
            with sentry_sdk.start_transaction(name="native"):
                urllib.request.urlopen(app.url + "/in-transaction").read()
        urllib.request.urlopen(app.url + "/outside").read()
        trace.get_tracer_provider().force_flush()
        for r in app.requests:
            NOTES.append([r.path, sorted(k for k in r.headers if k in ("sentry-trace", "baggage"))])
    finish()
"""


def test_outgoing_requests_leave_propagation_to_otel_as_sentry_sdk(tmp_path: Path) -> None:
    # With OTLP the SDK adds trace headers only inside its own transactions; OTel's
    # instrumentations (with the Sentry propagator) do the rest.
    script = _OUTGOING.format(tests=str(Path(__file__).parent))
    sentry, ours = run_both(script, tmp_path)
    assert (
        ours["notes"]
        == sentry["notes"]
        == [
            ["/in-otel-span", []],
            ["/in-transaction", ["baggage", "sentry-trace"]],
            ["/outside", []],
        ]
    )
