"""Tracing: transactions, spans, sampling and distributed trace propagation.

Public names mirror `sentry_sdk.tracing`. The module is imported on first use of
tracing (scopes import it lazily), never by `import tripwire` itself.

Layout: `_span` (Span, NoOpSpan), `_transaction` (Transaction and the event it
sends), `_sampling` (pure sampling decisions), `_propagation` (sentry-trace,
traceparent, baggage, the propagation context), `_api` (what `Scope` calls),
`_decorator` (`@trace`, functions_to_trace), `_consts`.
"""

from __future__ import annotations

import sys

from tripwire._late import hooks

# What `Scope` and the client call (not part of sentry_sdk's public surface).
from tripwire.tracing._api import baggage_for_scope as baggage_for_scope
from tripwire.tracing._api import continue_trace as continue_trace
from tripwire.tracing._api import (
    dynamic_sampling_context_for_scope as dynamic_sampling_context_for_scope,
)
from tripwire.tracing._api import iter_propagation_headers as iter_propagation_headers
from tripwire.tracing._api import (
    propagation_context_from_headers as propagation_context_from_headers,
)
from tripwire.tracing._api import start_span as start_span
from tripwire.tracing._api import start_transaction as start_transaction
from tripwire.tracing._api import trace_context_for_scope as trace_context_for_scope
from tripwire.tracing._api import traceparent_for_scope as traceparent_for_scope
from tripwire.tracing._consts import (
    BAGGAGE_HEADER_NAME,
    INSTRUMENTER,
    LOW_QUALITY_TRANSACTION_SOURCES,
    OP,
    SENTRY_TRACE_HEADER_NAME,
    SOURCE_FOR_STYLE,
    SPANDATA,
    SPANSTATUS,
    SPANTEMPLATE,
    TransactionSource,
    get_span_status_from_http_code,
)
from tripwire.tracing._decorator import setup_functions_to_trace as setup_functions_to_trace
from tripwire.tracing._decorator import trace
from tripwire.tracing._propagation import (
    Baggage,
    EnvironHeaders,
    PropagationContext,
    extract_sentrytrace_data,
)
from tripwire.tracing._sampling import has_tracing_enabled, is_valid_sample_rate
from tripwire.tracing._span import NoOpSpan, Span
from tripwire.tracing._transaction import Transaction

__all__ = [
    "BAGGAGE_HEADER_NAME",
    "INSTRUMENTER",
    "LOW_QUALITY_TRANSACTION_SOURCES",
    "OP",
    "SENTRY_TRACE_HEADER_NAME",
    "SOURCE_FOR_STYLE",
    "SPANDATA",
    "SPANSTATUS",
    "SPANTEMPLATE",
    "Baggage",
    "EnvironHeaders",
    "NoOpSpan",
    "PropagationContext",
    "Span",
    "Transaction",
    "TransactionSource",
    "extract_sentrytrace_data",
    "get_span_status_from_http_code",
    "has_tracing_enabled",
    "is_valid_sample_rate",
    "trace",
]

# Scopes reach tracing through this hook (`Scope.start_span`, `get_traceparent`...).
hooks.tracing = sys.modules[__name__]
