"""OTel context keys under which the propagator leaves the incoming Sentry trace."""

from __future__ import annotations

from tripwire.integrations import DidNotEnable

try:
    from opentelemetry.context import create_key
except ImportError:
    raise DidNotEnable("opentelemetry not installed") from None

# The parsed `sentry-trace` header (trace_id, parent_span_id, parent_sampled).
SENTRY_TRACE_KEY = create_key("sentry-trace")
# The incoming `baggage` as a frozen tripwire Baggage.
SENTRY_BAGGAGE_KEY = create_key("sentry-baggage")

__all__ = ["SENTRY_BAGGAGE_KEY", "SENTRY_TRACE_KEY"]
