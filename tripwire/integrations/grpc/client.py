"""The sync client interceptor: a span and trace metadata per unary-request call."""

from __future__ import annotations

from collections import namedtuple
from typing import Any, Callable

import grpc

from tripwire.integrations.grpc._shared import (
    client_span,
    enabled,
    method_name,
    set_code,
    trace_metadata,
)

_Fields = namedtuple(
    "_Fields", ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")
)


class _CallDetails(_Fields, grpc.ClientCallDetails):  # type: ignore[misc]
    """Call details with the trace metadata added (grpc's own class is private)."""


def _with_trace(details: Any, span: Any) -> Any:
    metadata = list(details.metadata or ())
    metadata.extend(trace_metadata(span))
    return _CallDetails(
        details.method,
        details.timeout,
        metadata,
        details.credentials,
        getattr(details, "wait_for_ready", None),
        getattr(details, "compression", None),
    )


class ClientInterceptor(
    grpc.UnaryUnaryClientInterceptor,  # type: ignore[misc]
    grpc.UnaryStreamClientInterceptor,  # type: ignore[misc]
):
    """A ``grpc.client`` span and ``sentry-trace`` / ``baggage`` metadata per call.

    Add it with ``grpc.intercept_channel(channel, ClientInterceptor())``; the
    integration adds it to the channels grpc makes.
    """

    # Set on the interceptors the integration adds: they do nothing while the active
    # client lacks the integration. One added by hand always works, as sentry_sdk's.
    _patched = False

    def intercept_unary_unary(
        self, continuation: Callable[[Any, Any], Any], client_call_details: Any, request: Any
    ) -> Any:
        """A unary-unary call: span with the status code's name."""
        if self._patched and not enabled():
            return continuation(client_call_details, request)
        span = client_span("unary unary", method_name(client_call_details.method))
        if span is None:
            return continuation(_with_trace(client_call_details, None), request)
        with span:
            response = continuation(_with_trace(client_call_details, span), request)
            set_code(span, response.code())
            return response

    def intercept_unary_stream(
        self, continuation: Callable[[Any, Any], Any], client_call_details: Any, request: Any
    ) -> Any:
        """A unary-stream call: the span ends when the call starts (no code, as sentry_sdk)."""
        if self._patched and not enabled():
            return continuation(client_call_details, request)
        span = client_span("unary stream", method_name(client_call_details.method))
        if span is None:
            return continuation(_with_trace(client_call_details, None), request)
        with span:
            return continuation(_with_trace(client_call_details, span), request)


__all__ = ["ClientInterceptor"]
