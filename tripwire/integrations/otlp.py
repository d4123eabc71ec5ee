"""`OTLPIntegration`: OpenTelemetry traces go to Sentry's OTLP endpoint.

The application keeps instrumenting with OpenTelemetry; this integration
- adds an OTLP/HTTP exporter (batched) to the global SDK TracerProvider (making one if
  there is none), aimed at the DSN's `/api/<project>/integration/otlp/v1/traces/`
  endpoint with the `X-Sentry-Auth` header, or at `collector_url`;
- makes `SentryOTLPPropagator` OTel's global propagator (`sentry-trace` out of the
  current OTel span, incoming `baggage` passed on);
- links events to the current OTel span (their `contexts.trace` takes its ids), and
  with `capture_exceptions=True` reports `Span.record_exception` calls as errors.
"""

from __future__ import annotations

from typing import Any, Optional

from tripwire import api
from tripwire._log import logger
from tripwire.consts import USER_AGENT, EndpointType
from tripwire.integrations import DidNotEnable, Integration
from tripwire.integrations._patch import on_undo, patch_once
from tripwire.scope import (
    register_external_propagation_context,
    remove_external_propagation_context,
)
from tripwire.tracing import BAGGAGE_HEADER_NAME, SENTRY_TRACE_HEADER_NAME
from tripwire.tracing_utils import Baggage
from tripwire.utils import Dsn, capture_internal_exceptions, event_from_exception

try:
    from opentelemetry.context import Context, get_current, get_value
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.propagate import set_global_textmap
    from opentelemetry.propagators.textmap import CarrierT, Setter, default_setter
    from opentelemetry.sdk.trace import Span, TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.trace import (
        INVALID_SPAN_ID,
        INVALID_TRACE_ID,
        SpanContext,
        format_span_id,
        format_trace_id,
        get_current_span,
        get_tracer_provider,
        set_tracer_provider,
    )

    from tripwire.integrations.opentelemetry.consts import SENTRY_BAGGAGE_KEY
    from tripwire.integrations.opentelemetry.propagator import SentryPropagator
except ImportError:
    raise DidNotEnable("opentelemetry-distro[otlp] is not installed") from None

_MARK = "_tripwire_otlp"


def otel_propagation_context() -> Optional[tuple[str, str]]:
    """(trace_id, span_id) of the current OTel span, if there is a valid one."""
    span_context = get_current_span().get_span_context()
    if span_context.trace_id == INVALID_TRACE_ID or span_context.span_id == INVALID_SPAN_ID:
        return None
    return format_trace_id(span_context.trace_id), format_span_id(span_context.span_id)


def setup_otlp_traces_exporter(
    dsn: Optional[str] = None, collector_url: Optional[str] = None
) -> None:
    """Add a batched OTLP/HTTP exporter to the global TracerProvider (made if missing)."""
    provider = get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        logger.debug("[OTLP] No TracerProvider configured by the application, making one")
        provider = TracerProvider()
        set_tracer_provider(provider)
    endpoint: Optional[str] = None
    headers: Optional[dict[str, str]] = None
    if collector_url:
        endpoint = collector_url
    elif dsn:
        auth = Dsn(dsn).to_auth(USER_AGENT)
        endpoint = auth.get_api_url(EndpointType.OTLP_TRACES)
        headers = {"X-Sentry-Auth": auth.to_header()}
    logger.debug("[OTLP] Sending traces to %s", endpoint)
    provider.add_span_processor(
        BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint, headers=headers))
    )


def _capture_recorded(exception: BaseException) -> None:
    integration = api.get_client().get_integration(OTLPIntegration)
    if integration is None or not integration.capture_exceptions:
        return
    with capture_internal_exceptions():
        event, hint = event_from_exception(
            exception,
            client_options=api.get_client().options,
            mechanism={"type": OTLPIntegration.identifier, "handled": False},
        )
        api.capture_event(event, hint=hint)


def setup_capture_exceptions() -> None:
    """Report what the application passes to OTel's `Span.record_exception`."""

    def make(original: Any) -> Any:
        def record_exception(
            self: Span, exception: BaseException, *args: Any, **kwargs: Any
        ) -> None:
            _capture_recorded(exception)
            original(self, exception, *args, **kwargs)

        return record_exception

    patch_once(Span, "record_exception", make, _MARK)


def _to_traceparent(span_context: SpanContext) -> str:
    """The `sentry-trace` value of an OTel span context."""
    sampled = "1" if span_context.trace_flags.sampled else "0"
    return (
        f"{format_trace_id(span_context.trace_id)}-{format_span_id(span_context.span_id)}-{sampled}"
    )


class SentryOTLPPropagator(SentryPropagator):
    """Injects `sentry-trace` from the current OTel span, and the incoming baggage.

    Without transactions there is no sampling context to make as the head of a trace,
    so only a baggage that came in (through `extract`) goes out.
    """

    def inject(
        self,
        carrier: CarrierT,
        context: Optional[Context] = None,
        setter: Setter[CarrierT] = default_setter,
    ) -> None:
        if api.get_client().get_integration(OTLPIntegration) is None:
            return
        if context is None:
            context = get_current()
        span_context = get_current_span(context).get_span_context()
        if not span_context.is_valid:
            return
        setter.set(carrier, SENTRY_TRACE_HEADER_NAME, _to_traceparent(span_context))
        baggage = get_value(SENTRY_BAGGAGE_KEY, context)
        if isinstance(baggage, Baggage):
            serialized = baggage.serialize()
            if serialized:
                setter.set(carrier, BAGGAGE_HEADER_NAME, serialized)


class OTLPIntegration(Integration):
    """Send OpenTelemetry traces to Sentry over OTLP, set up from the DSN.

    Args:
        setup_otlp_traces_exporter: Add the exporter to the TracerProvider (False: the
            application sets up its own).
        collector_url: Export to this OTLP collector instead of the DSN's endpoint.
        setup_propagator: Make `SentryOTLPPropagator` the global OTel propagator.
        capture_exceptions: Also report exceptions recorded on OTel spans (duplicates
            of errors Sentry already captured may be dropped by the dedupe integration).
    """

    identifier = "otlp"

    def __init__(
        self,
        setup_otlp_traces_exporter: bool = True,
        collector_url: Optional[str] = None,
        setup_propagator: bool = True,
        capture_exceptions: bool = False,
    ) -> None:
        self.setup_otlp_traces_exporter = setup_otlp_traces_exporter
        self.collector_url = collector_url
        self.setup_propagator = setup_propagator
        self.capture_exceptions = capture_exceptions

    @staticmethod
    def setup_once() -> None:
        register_external_propagation_context(otel_propagation_context)
        on_undo(remove_external_propagation_context)

    def setup_once_with_options(self, options: Optional[dict[str, Any]] = None) -> None:
        if self.setup_otlp_traces_exporter:
            dsn = options.get("dsn") if options else None
            setup_otlp_traces_exporter(dsn, collector_url=self.collector_url)
        if self.setup_propagator:
            set_global_textmap(SentryOTLPPropagator())
        setup_capture_exceptions()


__all__ = [
    "OTLPIntegration",
    "SentryOTLPPropagator",
    "otel_propagation_context",
    "setup_capture_exceptions",
    "setup_otlp_traces_exporter",
]
