"""The sync server interceptor: a ``grpc.server`` transaction per unary-unary call."""

from __future__ import annotations

from typing import Any, Callable, Optional

import grpc

import tripwire
from tripwire.integrations.grpc._shared import enabled, find_name, server_transaction
from tripwire.tracing._api import sdk_start_transaction


class ServerInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    """Runs each unary-unary call in its own isolation scope and transaction.

    Args:
        find_name: Called with the servicer context, returns the transaction name
            (default: the method path, "/pkg.Service/Method"). A false name runs the
            call without a transaction.
    """

    # Set on the interceptor the integration adds (see `client.ClientInterceptor`).
    _patched = False

    def __init__(self, find_name: Optional[Callable[[Any], str]] = None) -> None:
        self._custom_find_name = find_name
        super().__init__()

    def intercept_service(
        self, continuation: Callable[[Any], Any], handler_call_details: Any
    ) -> Any:
        """Wrap the unary-unary handler of the call; other handlers are left alone."""
        handler = continuation(handler_call_details)
        if handler is None or handler.request_streaming or handler.response_streaming:
            return handler
        unary = handler.unary_unary
        if unary is None:
            return handler
        method = handler_call_details.method
        custom = self._custom_find_name
        patched = self._patched

        def behavior(request: Any, context: Any) -> Any:
            if patched and not enabled():
                return unary(request, context)
            with tripwire.isolation_scope():
                name = find_name(custom, context, method)
                if not name:
                    return unary(request, context)
                with sdk_start_transaction(transaction=server_transaction(context, name)):
                    return unary(request, context)

        return grpc.unary_unary_rpc_method_handler(
            behavior,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


__all__ = ["ServerInterceptor"]
