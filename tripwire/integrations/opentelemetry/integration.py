"""`OpenTelemetryIntegration`: OTel's tracer provider and propagator report to Sentry.

Deprecated in sentry_sdk 2.x in favour of `OTLPIntegration`, kept for its users. Use
with `instrumenter="otel"`: a new global TracerProvider gets the `SentrySpanProcessor`,
and the `SentryPropagator` becomes OTel's global text-map propagator.
"""

from __future__ import annotations

import warnings
from typing import Any, Optional

from tripwire._log import logger
from tripwire.integrations import DidNotEnable, Integration
from tripwire.integrations.opentelemetry.propagator import SentryPropagator
from tripwire.integrations.opentelemetry.span_processor import SentrySpanProcessor
from tripwire.tracing_utils import has_span_streaming_enabled

try:
    from opentelemetry import trace
    from opentelemetry.propagate import set_global_textmap
    from opentelemetry.sdk.trace import TracerProvider
except ImportError:
    raise DidNotEnable("opentelemetry not installed") from None

try:
    from opentelemetry.instrumentation.django import (  # type: ignore[import-not-found,unused-ignore]
        DjangoInstrumentor,
    )
except ImportError:
    DjangoInstrumentor = None

# Instrumentors and the arguments they would be set up with (not set up automatically).
CONFIGURABLE_INSTRUMENTATIONS: dict[Any, dict[str, Any]] = {
    DjangoInstrumentor: {"is_sql_commentor_enabled": True},
}


class OpenTelemetryIntegration(Integration):
    """Routes OpenTelemetry spans and trace propagation through Sentry."""

    identifier = "opentelemetry"

    @staticmethod
    def setup_once() -> None:
        pass

    def setup_once_with_options(self, options: Optional[dict[str, Any]] = None) -> None:
        if has_span_streaming_enabled(options):
            logger.warning(
                "[OTel] OpenTelemetryIntegration does not work with span streaming "
                "(trace_lifecycle='stream'); it stays off."
            )
            return
        warnings.warn(
            "OpenTelemetryIntegration is deprecated. Please use OTLPIntegration instead: "
            "https://docs.sentry.io/platforms/python/integrations/otlp/",
            DeprecationWarning,
            stacklevel=2,
        )
        _setup_sentry_tracing()
        logger.debug("[OTel] OpenTelemetry integration set up")


def _setup_sentry_tracing() -> None:
    provider = TracerProvider()
    provider.add_span_processor(SentrySpanProcessor())
    trace.set_tracer_provider(provider)
    set_global_textmap(SentryPropagator())


__all__ = ["CONFIGURABLE_INSTRUMENTATIONS", "OpenTelemetryIntegration"]
