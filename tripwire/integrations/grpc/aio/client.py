"""The `grpc.aio` client interceptors: a span and trace metadata per unary-request call."""

from __future__ import annotations

from typing import Any, Callable

from grpc.aio import Metadata, UnaryStreamClientInterceptor, UnaryUnaryClientInterceptor

from tripwire.integrations.grpc._shared import (
    client_span,
    enabled,
    method_name,
    set_code,
    trace_metadata,
)


class ClientInterceptor:
    """What the two aio interceptors share: the call details with the trace metadata."""

    # Set on the interceptors the integration adds: they do nothing while the active
    # client lacks the integration. One added by hand always works, as sentry_sdk's.
    _patched = False

    @staticmethod
    def _with_trace(details: Any, span: Any) -> Any:
        # A new Metadata: the caller's object may be reused for other calls.
        metadata = Metadata(*tuple(details.metadata or ()), *trace_metadata(span))
        return details._replace(metadata=metadata)


class SentryUnaryUnaryClientInterceptor(ClientInterceptor, UnaryUnaryClientInterceptor):  # type: ignore[misc]
    """A ``grpc.client`` span per unary-unary call, with the status code's name."""

    async def intercept_unary_unary(
        self, continuation: Callable[[Any, Any], Any], client_call_details: Any, request: Any
    ) -> Any:
        """Run the call inside its span; the span ends with the call's status."""
        if self._patched and not enabled():
            return await continuation(client_call_details, request)
        span = client_span("unary unary", method_name(client_call_details.method))
        if span is None:
            return await continuation(self._with_trace(client_call_details, None), request)
        with span:
            call = await continuation(self._with_trace(client_call_details, span), request)
            set_code(span, await call.code())
            return call


class SentryUnaryStreamClientInterceptor(ClientInterceptor, UnaryStreamClientInterceptor):  # type: ignore[misc]
    """A ``grpc.client`` span per unary-stream call, ended when the call starts."""

    async def intercept_unary_stream(
        self, continuation: Callable[[Any, Any], Any], client_call_details: Any, request: Any
    ) -> Any:
        """Start the call inside its span (no status code, as sentry_sdk)."""
        if self._patched and not enabled():
            return await continuation(client_call_details, request)
        span = client_span("unary stream", method_name(client_call_details.method))
        if span is None:
            return await continuation(self._with_trace(client_call_details, None), request)
        with span:
            return await continuation(self._with_trace(client_call_details, span), request)


__all__ = [
    "ClientInterceptor",
    "SentryUnaryStreamClientInterceptor",
    "SentryUnaryUnaryClientInterceptor",
]
