"""OpenTelemetry as the instrumenter: the real OTel SDK's spans reach Sentry as transactions.

The OTel SDK's TracerProvider runs `SentrySpanProcessor`; tripwire sends to a real HTTP
receiver on 127.0.0.1. The propagation round trip crosses a real HTTP request between
this process and a server process, each with `OpenTelemetryIntegration`. The
differential test runs one scenario on sentry_sdk 2.75 and on tripwire.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _otel import fresh_otel
from _receiver import Receiver
from _side_by_side import of_type, run_both

import tripwire
from tripwire.integrations.opentelemetry import (
    OpenTelemetryIntegration,
    SentryPropagator,
    SentrySpanProcessor,
)
from tripwire.integrations.opentelemetry.consts import SENTRY_BAGGAGE_KEY, SENTRY_TRACE_KEY
from tripwire.tracing import NoOpSpan
from tripwire.tracing_utils import Baggage

if TYPE_CHECKING:
    from opentelemetry import context as otel_context
    from opentelemetry import propagate, trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import SpanKind, Status, StatusCode, format_span_id, format_trace_id


@pytest.fixture(autouse=True, scope="module")
def _opentelemetry() -> None:
    """OpenTelemetry is imported when the module's tests start, not at collection (every xdist
    worker collects every module; tests/_lazy.py)."""
    global otel_context, propagate, trace, TracerProvider, SpanKind, Status, StatusCode
    global format_span_id, format_trace_id
    from opentelemetry import context as otel_context
    from opentelemetry import propagate, trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import SpanKind, Status, StatusCode, format_span_id, format_trace_id


TRACE_ID = "771a43a4192642f0b136d5159a501700"
PARENT_ID = "1234567890abcdef"
BAGGAGE = (
    "other-vendor=x,sentry-trace_id=771a43a4192642f0b136d5159a501700,"
    "sentry-public_key=49d0f7386ad645858ae85020e393bef3,sentry-sample_rate=0.5"
)


@pytest.fixture(autouse=True)
def otel() -> Iterator[None]:
    yield from fresh_otel()


@pytest.fixture
def rx() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


@pytest.fixture
def provider() -> Iterator[TracerProvider]:
    """A tracer provider of the test's own (not the global one) running the processor."""
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SentrySpanProcessor())
    yield tracer_provider
    tracer_provider.shutdown()


def init(rx: Receiver, **options: Any) -> None:
    options.setdefault("instrumenter", "otel")
    tripwire.init(dsn=rx.dsn(), traces_sample_rate=1.0, default_integrations=False, **options)


def transactions(rx: Receiver, count: int) -> list[dict[str, Any]]:
    tripwire.flush()
    found = [item.payload.json for item in rx.items("transaction")]
    assert len(found) == count, found
    return found


def hex_ids(span: Any) -> tuple[str, str]:
    ctx = span.get_span_context()
    return format_trace_id(ctx.trace_id), format_span_id(ctx.span_id)


def test_otel_spans_become_a_transaction(rx: Receiver, provider: TracerProvider) -> None:
    init(rx)
    tracer = provider.get_tracer("shop")
    server_attributes: dict[str, Any] = {
        "http.method": "GET",
        "http.target": "/cart",
        "http.status_code": 404,
    }
    with tracer.start_as_current_span(
        "GET /cart", kind=SpanKind.SERVER, attributes=server_attributes
    ) as root:
        with tracer.start_as_current_span(
            "query", attributes={"db.system": "postgresql", "db.statement": "SELECT 1"}
        ) as query:
            query.set_status(Status(StatusCode.ERROR))
        client_attributes: dict[str, Any] = {
            "http.method": "POST",
            "http.url": "http://user:pw@api.example:8080/pay/now?card=1",
            "http.status_code": 503,
        }
        with tracer.start_as_current_span(
            "pay", kind=SpanKind.CLIENT, attributes=client_attributes
        ) as pay:
            pay.set_status(Status(StatusCode.ERROR))
        with tracer.start_as_current_span("render") as render:
            render.set_status(Status(StatusCode.OK))
        with tracer.start_as_current_span("idle"):
            pass
    trace_id, root_id = hex_ids(root)
    (tx,) = transactions(rx, 1)
    assert tx["transaction"] == "GET /cart"
    context = tx["contexts"]["trace"]
    assert (context["trace_id"], context["span_id"]) == (trace_id, root_id)
    assert context["parent_span_id"] is None
    assert (context["op"], context["status"], context["origin"]) == (
        "http.server",
        "not_found",
        "auto.otel",
    )
    otel_ctx = tx["contexts"]["otel"]
    assert otel_ctx["attributes"] == server_attributes
    assert otel_ctx["resource"]["telemetry.sdk.name"] == "opentelemetry"
    spans = {span["description"]: span for span in tx["spans"]}
    assert set(spans) == {"SELECT 1", "POST http://api.example:8080/pay/now", "render", "idle"}
    db = spans["SELECT 1"]
    assert (db["op"], db["origin"], db["parent_span_id"]) == ("db", "auto.otel", root_id)
    assert db["data"]["db.system"] == "postgresql"
    assert db["data"]["otel.kind"] == "<SpanKind.INTERNAL: 0>"
    assert db["status"] == "internal_error"
    http = spans["POST http://api.example:8080/pay/now"]
    # The HTTP status, set after the OTel status, is the more precise one.
    assert (http["op"], http["status"]) == ("http.client", "unavailable")
    assert http["data"]["http.response.status_code"] == 503
    assert http["data"]["otel.kind"] == "<SpanKind.CLIENT: 2>"
    assert (spans["render"]["op"], spans["render"]["status"]) == ("render", "ok")
    assert "status" not in spans["idle"]  # OTel status unset
    assert all(span["trace_id"] == trace_id for span in tx["spans"])


def test_timestamps_are_the_otel_spans(rx: Receiver, provider: TracerProvider) -> None:
    init(rx)
    tracer = provider.get_tracer("t")
    start = (time.time_ns() // 10**9 - 5) * 10**9  # a whole second, a moment ago
    span = tracer.start_span("timed", start_time=start)
    span.end(end_time=start + 1_500_000_000)
    (tx,) = transactions(rx, 1)
    begun = datetime.fromtimestamp(start / 1e9, timezone.utc)
    assert tx["start_timestamp"] == begun.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    ended = begun + timedelta(seconds=1.5)
    assert tx["timestamp"] == ended.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_spans_open_too_long_are_forgotten(rx: Receiver, provider: TracerProvider) -> None:
    # As sentry_sdk: a span started over 10 minutes ago is dropped from the map at once.
    init(rx)
    start = time.time_ns() - 11 * 60 * 10**9
    provider.get_tracer("t").start_span("stale", start_time=start).end()
    with provider.get_tracer("t").start_as_current_span("fresh"):
        pass
    assert [tx["transaction"] for tx in transactions(rx, 1)] == ["fresh"]


def test_error_in_otel_span_is_linked_to_its_span(rx: Receiver, provider: TracerProvider) -> None:
    init(rx)
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("outer"), tracer.start_as_current_span("inner") as inner:
        try:
            raise ValueError("boom")
        except ValueError:
            tripwire.capture_exception()
    trace_id, inner_id = hex_ids(inner)
    tripwire.flush()
    (event,) = rx.events()
    trace_context = event["contexts"]["trace"]
    assert (trace_context["trace_id"], trace_context["span_id"]) == (trace_id, inner_id)
    assert trace_context["origin"] == "auto.otel"
    (tx,) = transactions(rx, 1)
    assert tx["contexts"]["trace"]["trace_id"] == trace_id


def test_sentry_instrumenter_ignores_otel_spans(rx: Receiver, provider: TracerProvider) -> None:
    init(rx, instrumenter="sentry")
    with provider.get_tracer("t").start_as_current_span("otel only"):
        with tripwire.start_transaction(name="native"):
            pass
    names = [tx["transaction"] for tx in transactions(rx, 1)]
    assert names == ["native"]


def test_otel_instrumenter_turns_native_spans_off(rx: Receiver, provider: TracerProvider) -> None:
    init(rx)
    with provider.get_tracer("t").start_as_current_span("otel"):
        native = tripwire.start_transaction(name="native")
        assert isinstance(native, NoOpSpan)
        assert isinstance(tripwire.start_span(op="child"), NoOpSpan)
    names = [tx["transaction"] for tx in transactions(rx, 1)]
    assert names == ["otel"]


def test_requests_to_sentry_are_not_reported(rx: Receiver, provider: TracerProvider) -> None:
    init(rx)
    url = rx.url + "/api/1/envelope/"
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("job"):
        with tracer.start_as_current_span(
            "POST", attributes={"http.method": "POST", "http.url": url}
        ):
            pass
        with tracer.start_as_current_span("work"):
            pass
    (tx,) = transactions(rx, 1)
    assert [span["description"] for span in tx["spans"]] == ["work"]


def test_extract_reads_sentry_trace_and_baggage() -> None:
    carrier = {"sentry-trace": f"{TRACE_ID}-{PARENT_ID}-0", "baggage": BAGGAGE}
    ctx = SentryPropagator().extract(carrier)
    span_context = trace.get_current_span(ctx).get_span_context()
    assert (format_trace_id(span_context.trace_id), format_span_id(span_context.span_id)) == (
        TRACE_ID,
        PARENT_ID,
    )
    assert span_context.is_remote and span_context.trace_flags.sampled
    assert otel_context.get_value(SENTRY_TRACE_KEY, ctx) == {
        "trace_id": TRACE_ID,
        "parent_span_id": PARENT_ID,
        "parent_sampled": False,
    }
    baggage = otel_context.get_value(SENTRY_BAGGAGE_KEY, ctx)
    assert isinstance(baggage, Baggage)
    assert baggage.sentry_items["sample_rate"] == "0.5"
    assert baggage.mutable is False


def test_extract_without_baggage_freezes_an_empty_one() -> None:
    ctx = SentryPropagator().extract({"sentry-trace": f"{TRACE_ID}-{PARENT_ID}"})
    baggage = otel_context.get_value(SENTRY_BAGGAGE_KEY, ctx)
    assert isinstance(baggage, Baggage)
    assert (baggage.sentry_items, baggage.mutable) == ({}, False)


@pytest.mark.parametrize("carrier", [{}, {"sentry-trace": "nonsense"}, {"baggage": BAGGAGE}])
def test_extract_without_a_trace_keeps_the_context(carrier: dict[str, str]) -> None:
    before = otel_context.get_current()
    assert SentryPropagator().extract(carrier) is before


def _extracted(propagator: Any, consts: Any, carrier: dict[str, str]) -> Any:
    ctx = propagator.extract(carrier, context=otel_context.Context())
    span_context = trace.get_current_span(ctx).get_span_context()
    baggage: Any = otel_context.get_value(consts.SENTRY_BAGGAGE_KEY, ctx)
    return {
        "span": (span_context.trace_id, span_context.span_id, span_context.trace_flags),
        "remote": span_context.is_remote,
        "sentry_trace": otel_context.get_value(consts.SENTRY_TRACE_KEY, ctx),
        "baggage": None
        if baggage is None
        else (baggage.sentry_items, baggage.third_party_items, baggage.mutable),
    }


@pytest.mark.parametrize(
    "carrier",
    [
        {"sentry-trace": f"{TRACE_ID}-{PARENT_ID}-1", "baggage": BAGGAGE},
        {"sentry-trace": f"{TRACE_ID}-{PARENT_ID}-0"},
        {"sentry-trace": f"{TRACE_ID}-{PARENT_ID}"},
        {"sentry-trace": f"00-{TRACE_ID}-{PARENT_ID}-00"},
        {"sentry-trace": f",{TRACE_ID}-{PARENT_ID}-1", "baggage": "a=b"},
        {"sentry-trace": "nonsense"},
        {"baggage": BAGGAGE},
        {},
    ],
    ids=["full", "unsampled", "no-flag", "w3c-like", "comma-joined", "nonsense", "baggage", "none"],
)
def test_extract_matches_sentry_sdk(carrier: dict[str, str]) -> None:
    from sentry_sdk.integrations.opentelemetry import SentryPropagator as Theirs
    from sentry_sdk.integrations.opentelemetry import consts as their_consts

    from tripwire.integrations.opentelemetry import consts as our_consts

    ours = _extracted(SentryPropagator(), our_consts, carrier)
    assert ours == _extracted(Theirs(), their_consts, carrier)


def test_inject_writes_the_sentry_span_of_the_current_otel_span(
    rx: Receiver, provider: TracerProvider
) -> None:
    init(rx, release="1.0")
    tracer = provider.get_tracer("t")
    carrier: dict[str, str] = {}
    with tracer.start_as_current_span("root"), tracer.start_as_current_span("child") as child:
        SentryPropagator().inject(carrier)
    trace_id, child_id = hex_ids(child)
    assert carrier["sentry-trace"] == f"{trace_id}-{child_id}-1"
    sentry_items = Baggage.from_incoming_header(carrier["baggage"]).sentry_items
    assert sentry_items["trace_id"] == trace_id
    assert (sentry_items["release"], sentry_items["transaction"]) == ("1.0", "root")
    assert sentry_items["public_key"] == "public"
    assert SentryPropagator().fields == {"sentry-trace", "baggage"}


def test_inject_outside_spans_writes_nothing(rx: Receiver) -> None:
    init(rx)
    carrier: dict[str, str] = {}
    SentryPropagator().inject(carrier)
    # A span of a provider without the processor has no Sentry span.
    with TracerProvider().get_tracer("t").start_as_current_span("x"):
        SentryPropagator().inject(carrier)
    assert carrier == {}


def test_incoming_trace_is_continued(rx: Receiver, provider: TracerProvider) -> None:
    init(rx)
    ctx = SentryPropagator().extract(
        {"sentry-trace": f"{TRACE_ID}-{PARENT_ID}-1", "baggage": BAGGAGE}
    )
    with provider.get_tracer("t").start_as_current_span("handler", context=ctx):
        pass
    tripwire.flush()
    (request,) = [r for r in rx.requests if "transaction" in r.item_types]
    tx: Any = request.envelope.items[0].payload.json
    assert tx["contexts"]["trace"]["trace_id"] == TRACE_ID
    assert tx["contexts"]["trace"]["parent_span_id"] == PARENT_ID
    # The incoming sampling context goes on, with the rate this service sampled at (as
    # sentry_sdk: the OTel parent is always "sampled", the rate is traces_sample_rate).
    assert request.envelope.headers["trace"] == {
        "trace_id": TRACE_ID,
        "public_key": "49d0f7386ad645858ae85020e393bef3",
        "sample_rate": "1.0",
    }


def test_integration_sets_up_otel_globals(rx: Receiver) -> None:
    with pytest.warns(DeprecationWarning, match="OTLPIntegration"):
        init(rx, integrations=[OpenTelemetryIntegration()])
    provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    assert isinstance(propagate.get_global_textmap(), SentryPropagator)
    with trace.get_tracer("t").start_as_current_span("global"):
        pass
    assert [tx["transaction"] for tx in transactions(rx, 1)] == ["global"]


def test_integration_stays_off_with_span_streaming(rx: Receiver) -> None:
    default_textmap = propagate.get_global_textmap()
    init(rx, integrations=[OpenTelemetryIntegration()], trace_lifecycle="stream")
    assert not isinstance(trace.get_tracer_provider(), TracerProvider)
    assert propagate.get_global_textmap() is default_textmap


_SERVER = """
    import json
    import sys
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from opentelemetry import propagate, trace
    from opentelemetry.trace import SpanKind

    import tripwire
    from tripwire.integrations.opentelemetry import OpenTelemetryIntegration

    tripwire.init(
        dsn=sys.argv[1],
        instrumenter="otel",
        traces_sample_rate=1.0,
        default_integrations=False,
        integrations=[OpenTelemetryIntegration()],
    )
    tracer = trace.get_tracer("server")


    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            incoming = {k.lower(): v for k, v in self.headers.items()}
            ctx = propagate.extract(incoming)
            attributes = {"http.method": "GET", "http.target": self.path, "http.status_code": 200}
            with tracer.start_as_current_span(
                "GET /work", context=ctx, kind=SpanKind.SERVER, attributes=attributes
            ):
                outgoing = {}
                propagate.inject(outgoing)
            body = json.dumps(outgoing).encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass


    server = HTTPServer(("127.0.0.1", 0), Handler)
    print(server.server_address[1], flush=True)
    server.handle_request()
    server.server_close()
    tripwire.flush()
"""


def test_propagation_round_trip_over_http(rx: Receiver, tmp_path: Path) -> None:
    script = tmp_path / "server.py"
    script.write_text(textwrap.dedent(_SERVER))
    server = subprocess.Popen(
        [sys.executable, str(script), rx.dsn(project=2)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        with pytest.warns(DeprecationWarning):
            init(rx, integrations=[OpenTelemetryIntegration()])
        tracer = trace.get_tracer("client")
        with tracer.start_as_current_span("checkout"):
            with tracer.start_as_current_span(
                "GET", kind=SpanKind.CLIENT, attributes={"http.method": "GET"}
            ) as call:
                headers: dict[str, str] = {}
                propagate.inject(headers)
                request = urllib.request.Request(f"http://127.0.0.1:{port}/work", headers=headers)
                with urllib.request.urlopen(request, timeout=10) as response:
                    answered = json.loads(response.read())
        _, stderr = server.communicate(timeout=30)
        assert server.returncode == 0, stderr
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    trace_id, call_id = hex_ids(call)
    tripwire.flush()
    by_project: dict[str, Any] = {
        r.path: (r.envelope.headers, r.envelope.items[0].payload.json)
        for r in rx.requests
        if "transaction" in r.item_types
    }
    client_header, client_tx = by_project["/api/1/envelope/"]
    server_header, server_tx = by_project["/api/2/envelope/"]
    assert client_tx["transaction"] == "checkout"
    server_trace = server_tx["contexts"]["trace"]
    assert (server_trace["trace_id"], server_trace["parent_span_id"]) == (trace_id, call_id)
    assert (server_trace["op"], server_tx["transaction"]) == ("http.server", "GET /work")
    # The server forwards the client's sampling context, and its own span's id.
    assert server_header["trace"] == client_header["trace"]
    assert answered["sentry-trace"] == f"{trace_id}-{server_trace['span_id']}-1"
    assert Baggage.from_incoming_header(answered["baggage"]).sentry_items == (
        Baggage.from_incoming_header(headers["baggage"]).sentry_items
    )


_SCENARIO = """
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import SpanKind, Status, StatusCode
    from sentry_sdk.integrations.opentelemetry import SentryPropagator, SentrySpanProcessor

    # sentry_sdk's span processor needs the transport to know the DSN.
    DSN = "https://abc@o1.ingest.sentry.io/42"
    KEEP.__init__({"dsn": DSN})
    sentry_sdk.init(
        dsn=DSN,
        transport=KEEP,
        traces_sample_rate=1.0,
        instrumenter="otel",
        release="r1",
        default_integrations=False,
    )
    provider = TracerProvider()
    provider.add_span_processor(SentrySpanProcessor())
    tracer = provider.get_tracer("t")
    incoming = SentryPropagator().extract(
        {"sentry-trace": "771a43a4192642f0b136d5159a501700-1234567890abcdef-1"}
    )
    attributes = {"http.method": "GET", "http.status_code": 404, "http.target": "/x"}
    with tracer.start_as_current_span(
        "GET /x", context=incoming, kind=SpanKind.SERVER, attributes=attributes
    ):
        with tracer.start_as_current_span(
            "query", attributes={"db.system": "sqlite", "db.statement": "SELECT 1"}
        ):
            pass
        with tracer.start_as_current_span(
            "out",
            kind=SpanKind.CLIENT,
            attributes={"http.method": "POST", "http.url": "http://e.example:81/a?q=1"},
        ) as span:
            span.set_status(Status(StatusCode.ERROR))
        with tracer.start_as_current_span("plain", kind=SpanKind.PRODUCER) as span:
            span.set_status(Status(StatusCode.OK))
            carrier = {}
            SentryPropagator().inject(carrier)
            NOTES.append(carrier)
            try:
                1 / 0
            except ZeroDivisionError:
                sentry_sdk.capture_exception()
    finish()
"""

_SPAN_KEYS = ("op", "description", "status", "origin", "tags")


def _shape(found: dict[str, Any]) -> dict[str, Any]:
    (tx,) = of_type(found, "transaction")
    (event,) = of_type(found, "event")
    otel = tx["contexts"]["otel"]
    ids = {tx["contexts"]["trace"]["span_id"]: "root"}
    ids.update({span["span_id"]: span["description"] for span in tx["spans"]})
    return {
        "transaction": (tx["transaction"], tx["transaction_info"]),
        "trace": {
            k: ids.get(v, v)
            for k, v in tx["contexts"]["trace"].items()
            if k not in ("span_id", "data")
        },
        "otel_attributes": otel["attributes"],
        "otel_resource_keys": sorted(otel["resource"]),
        "spans": [
            {
                **{key: span.get(key) for key in _SPAN_KEYS},
                "parent": ids[span["parent_span_id"]],
                "data": {k: v for k, v in span["data"].items() if not k.startswith("thread.")},
            }
            for span in tx["spans"]
        ],
        "error_span": ids[event["contexts"]["trace"]["span_id"]],
        "error_trace": event["contexts"]["trace"]["trace_id"],
        "propagated": {
            "sentry-trace": found["notes"][0]["sentry-trace"].replace(
                tx["spans"][-1]["span_id"], "<plain>"
            ),
            "baggage": found["notes"][0].get("baggage"),
        },
    }


def test_matches_sentry_sdk(tmp_path: Path) -> None:
    sentry, ours = run_both(_SCENARIO, tmp_path)
    assert _shape(ours) == _shape(sentry)
