"""OpenTelemetry's process-wide state, put back between tests.

OTel lets a process set its global TracerProvider once; the integrations set it (and
the global propagator), so each test that lets them starts and ends from OTel's
just-imported state. A provider left behind is shut down: its batch exporter thread
stops and its HTTP session closes.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.util._once import Once

_DEFAULT_TEXTMAP = propagate.get_global_textmap()


def reset_otel() -> None:
    """Shut the global provider down (if an SDK one) and forget it and the propagator."""
    provider = trace.get_tracer_provider()
    if isinstance(provider, TracerProvider):
        provider.shutdown()
    # OTel's own test utilities reset these two the same way.
    trace._TRACER_PROVIDER = None
    trace._TRACER_PROVIDER_SET_ONCE = Once()
    propagate.set_global_textmap(_DEFAULT_TEXTMAP)


def fresh_otel() -> Iterator[None]:
    """Fixture body: OTel's globals fresh before and after the test."""
    reset_otel()
    try:
        yield
    finally:
        reset_otel()


def otlp_spans(body: bytes) -> list[Any]:
    """The spans of one OTLP/HTTP protobuf export request."""
    request = ExportTraceServiceRequest()
    request.ParseFromString(body)
    return [
        span
        for resource_spans in request.resource_spans
        for scope_spans in resource_spans.scope_spans
        for span in scope_spans.spans
    ]


def attributes(span: Any) -> dict[str, Any]:
    """An OTLP span's attributes as plain values."""
    out: dict[str, Any] = {}
    for kv in span.attributes:
        value = kv.value
        out[kv.key] = getattr(value, value.WhichOneof("value"))
    return out
