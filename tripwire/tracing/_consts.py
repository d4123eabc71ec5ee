"""Tracing constants: transaction sources, span statuses, span data keys and ops.

The string values are the protocol's (Sentry and OpenTelemetry semantic conventions), so
code written against sentry_sdk's names keeps producing the same payloads.
"""

from __future__ import annotations

import enum

from tripwire._enums import SPANTEMPLATE as SPANTEMPLATE
from tripwire.consts import INSTRUMENTER as INSTRUMENTER
from tripwire.consts import OP as OP
from tripwire.consts import SPANDATA as SPANDATA
from tripwire.consts import SPANSTATUS as SPANSTATUS

SENTRY_TRACE_HEADER_NAME = "sentry-trace"
BAGGAGE_HEADER_NAME = "baggage"
W3C_TRACEPARENT_HEADER_NAME = "traceparent"

# Child spans kept per transaction; the rest are counted as dropped (as sentry_sdk 2.x).
MAX_SPANS = 1000

UNLABELED_TRANSACTION = "<unlabeled transaction>"


class TransactionSource(str, enum.Enum):
    """How a transaction got its name; Sentry groups low-quality sources differently."""

    COMPONENT = "component"
    CUSTOM = "custom"
    ROUTE = "route"
    TASK = "task"
    URL = "url"
    VIEW = "view"

    def __str__(self) -> str:
        return str(self.value)


# Sources whose names are too high-cardinality to go into the dynamic sampling context.
LOW_QUALITY_TRANSACTION_SOURCES = [TransactionSource.URL]

# Framework integrations' `transaction_style` values and the source each implies.
SOURCE_FOR_STYLE = {
    "endpoint": TransactionSource.COMPONENT,
    "function_name": TransactionSource.COMPONENT,
    "handler_name": TransactionSource.COMPONENT,
    "method_and_path_pattern": TransactionSource.ROUTE,
    "path": TransactionSource.URL,
    "route_name": TransactionSource.COMPONENT,
    "route_pattern": TransactionSource.ROUTE,
    "uri_template": TransactionSource.ROUTE,
    "url": TransactionSource.ROUTE,
}


# HTTP 4xx codes with a status of their own; other 4xx are "invalid_argument".
_HTTP_4XX = {
    401: SPANSTATUS.UNAUTHENTICATED,
    403: SPANSTATUS.PERMISSION_DENIED,
    404: SPANSTATUS.NOT_FOUND,
    409: SPANSTATUS.ALREADY_EXISTS,
    413: SPANSTATUS.FAILED_PRECONDITION,
    429: SPANSTATUS.RESOURCE_EXHAUSTED,
}
# HTTP 5xx codes with a status of their own; other 5xx are "internal_error".
_HTTP_5XX = {
    501: SPANSTATUS.UNIMPLEMENTED,
    503: SPANSTATUS.UNAVAILABLE,
    504: SPANSTATUS.DEADLINE_EXCEEDED,
}


def get_span_status_from_http_code(http_status_code: int) -> str:
    """The span status for an HTTP status code (as sentry_sdk 2.x maps them).

    Args:
        http_status_code: The response's status code.

    Returns:
        One of the `SPANSTATUS` values.
    """
    if http_status_code < 400:
        return SPANSTATUS.OK
    if http_status_code < 500:
        return _HTTP_4XX.get(http_status_code, SPANSTATUS.INVALID_ARGUMENT)
    if http_status_code < 600:
        return _HTTP_5XX.get(http_status_code, SPANSTATUS.INTERNAL_ERROR)
    return SPANSTATUS.UNKNOWN_ERROR
