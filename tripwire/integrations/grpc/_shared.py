"""What the sync and aio interceptors share: the switch, the client span, the trace
metadata and the server transaction.

Under span streaming (``trace_lifecycle="stream"``), as sentry_sdk 2.75 there: a client
span only inside a streamed span, with ``rpc.method`` and ``rpc.response.status_code``
(instead of ``type`` / ``method`` / ``code``); outside a span the call carries the
scope's trace. The server's transaction becomes a segment through the
transaction-model mapping (`tracing._stream_compat`), as sentry_sdk's streamed one.
"""

from __future__ import annotations

from typing import Any, Optional

import tripwire
from tripwire.consts import OP, SPANDATA
from tripwire.integrations._common.streaming import start_child, streaming
from tripwire.integrations.grpc.consts import SPAN_ORIGIN
from tripwire.scope._current import get_client
from tripwire.tracing._api import sdk_start_span
from tripwire.tracing._consts import TransactionSource
from tripwire.tracing._stream_compat import CompatSpan
from tripwire.tracing._streamed import StreamedSpan

RPC_METHOD = SPANDATA.RPC_METHOD
RPC_RESPONSE_STATUS_CODE = SPANDATA.RPC_RESPONSE_STATUS_CODE


def enabled() -> bool:
    """Whether the active client has the grpc integration (interceptors the patches
    added do nothing otherwise)."""
    from tripwire.integrations.grpc import GRPCIntegration

    return get_client().get_integration(GRPCIntegration) is not None


def method_name(method: Any) -> str:
    """The method path as text (`grpc.aio` gives it as bytes)."""
    if isinstance(method, bytes):
        return method.decode("utf-8", "replace")
    return str(method)


def client_span(kind: str, method: str) -> Any:
    """The (unstarted) ``grpc.client`` span of a `kind` ("unary unary") call.

    Under span streaming, as sentry_sdk 2.75 there: ``rpc.method`` instead of ``type``
    and ``method``, and no span (None) outside a span.
    """
    client = get_client()
    if streaming(client):
        try:
            return start_child(
                f"{kind} call to {method}",
                {"sentry.op": OP.GRPC_CLIENT, "sentry.origin": SPAN_ORIGIN, RPC_METHOD: method},
            )
        except Exception:  # instrumentation must not break the call
            return None
    span = sdk_start_span(op=OP.GRPC_CLIENT, name=f"{kind} call to {method}", origin=SPAN_ORIGIN)
    span.set_data("type", kind)
    span.set_data("method", method)
    return span


def set_code(span: Any, code: Any) -> None:
    """The call's status code (a `grpc.StatusCode`) on its span, by name."""
    if isinstance(span, StreamedSpan) and not isinstance(span, CompatSpan):
        span.set_attribute(RPC_RESPONSE_STATUS_CODE, code.name)
    else:
        span.set_data("code", code.name)


def trace_metadata(span: Any) -> list[tuple[str, str]]:
    """The ``sentry-trace`` / ``baggage`` pairs for a call made in `span`.

    The rules of the HTTP clients (`_common.http.outgoing_trace_headers`) without the
    URL check: with tracing on, only a span inside a transaction speaks for the trace
    (none outside one, as sentry_sdk); with tracing off, the scope's propagation context.
    """
    from tripwire.integrations._common.http import outgoing_trace_headers

    try:
        return outgoing_trace_headers(get_client(), None, span)
    except Exception:  # instrumentation must not break the call
        return []


def server_transaction(context: Any, name: str) -> Any:
    """The ``grpc.server`` transaction `name`, continuing the trace in the call's metadata."""
    try:
        incoming: dict[str, Any] = dict(context.invocation_metadata() or ())
    except Exception:
        incoming = {}
    return tripwire.continue_trace(
        incoming,
        op=OP.GRPC_SERVER,
        name=name,
        source=TransactionSource.CUSTOM,
        origin=SPAN_ORIGIN,
    )


def capture_handler_error(exc: BaseException) -> None:
    """Capture an exception a handler raised (mechanism ``grpc``, unhandled)."""
    from tripwire.utils import event_from_exception

    event, hint = event_from_exception(exc, mechanism={"type": "grpc", "handled": False})
    tripwire.capture_event(event, hint=hint)


def find_name(custom: Optional[Any], context: Any, method: str) -> Optional[str]:
    """The transaction name: `custom(context)` if given, else the method path."""
    return custom(context) if custom is not None else method
