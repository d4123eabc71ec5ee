"""OpenTelemetry as the instrumenter: OTel spans become Sentry transactions.

As sentry_sdk's `sentry_sdk.integrations.opentelemetry` (deprecated there in favour of
`tripwire.integrations.otlp`): `SentrySpanProcessor`, `SentryPropagator` and
`OpenTelemetryIntegration`.
"""

from __future__ import annotations

from tripwire.integrations.opentelemetry.integration import OpenTelemetryIntegration
from tripwire.integrations.opentelemetry.propagator import SentryPropagator
from tripwire.integrations.opentelemetry.span_processor import SentrySpanProcessor

__all__ = ["OpenTelemetryIntegration", "SentryPropagator", "SentrySpanProcessor"]
