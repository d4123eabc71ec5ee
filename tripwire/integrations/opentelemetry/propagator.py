"""`SentryPropagator`: `sentry-trace` and `baggage` in and out of OpenTelemetry contexts.

`extract` turns the incoming headers into a remote (sampled) OTel span context, so the
OTel span started under it continues the trace; the parsed headers ride along in the
context for the span processor. `inject` writes the headers of the Sentry span that
the span processor made for the current OTel span.
"""

from __future__ import annotations

from typing import Any, Optional

from tripwire.integrations import DidNotEnable
from tripwire.integrations.opentelemetry.consts import SENTRY_BAGGAGE_KEY, SENTRY_TRACE_KEY
from tripwire.integrations.opentelemetry.span_processor import SentrySpanProcessor
from tripwire.tracing import BAGGAGE_HEADER_NAME, SENTRY_TRACE_HEADER_NAME
from tripwire.tracing_utils import Baggage, extract_sentrytrace_data

try:
    from opentelemetry import trace
    from opentelemetry.context import Context, get_current, set_value
    from opentelemetry.propagators.textmap import (
        CarrierT,
        Getter,
        Setter,
        TextMapPropagator,
        default_getter,
        default_setter,
    )
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags
except ImportError:
    raise DidNotEnable("opentelemetry not installed") from None


def _first(getter: Getter[Any], carrier: Any, name: str) -> Optional[str]:
    values = getter.get(carrier, name)
    return values[0] if values else None


class SentryPropagator(TextMapPropagator):
    """An OTel text-map propagator speaking Sentry's `sentry-trace` and `baggage`."""

    def extract(
        self,
        carrier: CarrierT,
        context: Optional[Context] = None,
        getter: Getter[CarrierT] = default_getter,
    ) -> Context:
        if context is None:
            context = get_current()
        header = _first(getter, carrier, SENTRY_TRACE_HEADER_NAME)
        parsed = extract_sentrytrace_data(header) if header else None
        if not parsed or not parsed.get("trace_id") or not parsed.get("parent_span_id"):
            return context
        context = set_value(SENTRY_TRACE_KEY, parsed, context)
        raw_baggage = _first(getter, carrier, BAGGAGE_HEADER_NAME)
        # No baggage (an older SDK upstream): an empty one, frozen, so this service does
        # not make up a sampling context of its own for a trace it did not start.
        baggage = (
            Baggage.from_incoming_header(raw_baggage) if raw_baggage else Baggage(sentry_items={})
        )
        baggage.freeze()
        context = set_value(SENTRY_BAGGAGE_KEY, baggage, context)
        remote = SpanContext(
            trace_id=int(parsed["trace_id"], 16),
            span_id=int(parsed["parent_span_id"], 16),
            # OTel samples everything; the sampling decision stays Sentry's.
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
            is_remote=True,
        )
        return trace.set_span_in_context(NonRecordingSpan(remote), context)

    def inject(
        self,
        carrier: CarrierT,
        context: Optional[Context] = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        if context is None:
            context = get_current()
        span_context = trace.get_current_span(context).get_span_context()
        if not span_context.is_valid:
            return
        sentry_span = SentrySpanProcessor.otel_span_map.get(
            trace.format_span_id(span_context.span_id)
        )
        if sentry_span is None:
            return
        setter.set(carrier, SENTRY_TRACE_HEADER_NAME, sentry_span.to_traceparent())
        transaction = sentry_span.containing_transaction
        if transaction is None:
            return
        serialized = transaction.get_baggage().serialize()
        if serialized:
            setter.set(carrier, BAGGAGE_HEADER_NAME, serialized)

    @property
    def fields(self) -> set[str]:
        return {SENTRY_TRACE_HEADER_NAME, BAGGAGE_HEADER_NAME}


__all__ = ["SentryPropagator"]
