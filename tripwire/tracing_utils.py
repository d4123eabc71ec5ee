"""Tracing helpers at sentry_sdk's import path (`sentry_sdk.tracing_utils`)."""

from __future__ import annotations

from tripwire.tracing._consts import (
    BAGGAGE_HEADER_NAME,
    LOW_QUALITY_TRANSACTION_SOURCES,
    OP,
    SENTRY_TRACE_HEADER_NAME,
    SPANDATA,
)
from tripwire.tracing._propagation import (
    SENTRY_TRACE_REGEX,
    Baggage,
    EnvironHeaders,
    PropagationContext,
    extract_sentrytrace_data,
    match_regex_list,
    normalize_incoming_data,
    should_propagate_trace,
)
from tripwire.tracing._sampling import has_tracing_enabled, is_valid_sample_rate
from tripwire.tracing._span import Span


def get_current_span(scope: object = None) -> Span | None:
    """The active span of `scope` (default: the current scope), or None."""
    from tripwire.scope._current import get_current_scope
    from tripwire.scope._scope import Scope

    target = scope if isinstance(scope, Scope) else get_current_scope()
    span = target.span
    return span if isinstance(span, Span) else None


def add_sentry_baggage_to_headers(headers: dict[str, str], sentry_baggage: str) -> None:
    """Merge our `sentry-*` baggage into an outgoing request's existing `baggage` header.

    Another SDK's `sentry-*` entries are replaced (one trace, one DSC); third-party
    entries are kept.
    """
    existing = headers.get(BAGGAGE_HEADER_NAME, "")
    kept = Baggage.strip_sentry_baggage(existing) if existing else ""
    headers[BAGGAGE_HEADER_NAME] = ",".join(part for part in (kept, sentry_baggage) if part)


__all__ = [
    "BAGGAGE_HEADER_NAME",
    "LOW_QUALITY_TRANSACTION_SOURCES",
    "OP",
    "SENTRY_TRACE_HEADER_NAME",
    "SENTRY_TRACE_REGEX",
    "SPANDATA",
    "Baggage",
    "EnvironHeaders",
    "PropagationContext",
    "add_sentry_baggage_to_headers",
    "extract_sentrytrace_data",
    "get_current_span",
    "has_tracing_enabled",
    "is_valid_sample_rate",
    "match_regex_list",
    "normalize_incoming_data",
    "should_propagate_trace",
]
