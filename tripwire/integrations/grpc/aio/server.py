"""The `grpc.aio` server interceptor: a transaction per unary-unary call, errors captured."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable
from typing import Any, Callable, Optional

import grpc
from grpc.aio import AbortError

import tripwire
from tripwire.integrations.grpc._shared import (
    capture_handler_error,
    enabled,
    find_name,
    server_transaction,
)
from tripwire.tracing._api import sdk_start_transaction


class ServerInterceptor(grpc.aio.ServerInterceptor):  # type: ignore[misc]
    """Runs each unary-unary call in its own isolation scope and transaction.

    An exception from the handler is captured (mechanism ``grpc``, unhandled) and
    raised on; ``context.abort()`` is not an error.

    Args:
        find_name: Called with the servicer context, returns the transaction name
            (default: the method path). A false name runs the call without one.
    """

    # Set on the interceptor the integration adds (see `client.ClientInterceptor`).
    _patched = False

    def __init__(self, find_name: Optional[Callable[[Any], str]] = None) -> None:
        self._custom_find_name = find_name
        super().__init__()

    async def intercept_service(
        self, continuation: Callable[[Any], Awaitable[Any]], handler_call_details: Any
    ) -> Any:
        """Wrap the unary-unary handler of the call; other handlers are left alone."""
        handler = await continuation(handler_call_details)
        if handler is None or handler.request_streaming or handler.response_streaming:
            return handler
        unary = handler.unary_unary
        if unary is None:
            return handler
        wrapped = (_wrap_async if inspect.iscoroutinefunction(unary) else _wrap_sync)(
            unary, handler_call_details.method, self._custom_find_name, self._patched
        )
        return grpc.unary_unary_rpc_method_handler(
            wrapped,
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def _wrap_async(
    unary: Callable[..., Any], method: str, custom: Any, patched: bool
) -> Callable[[Any, Any], Any]:
    async def behavior(request: Any, context: Any) -> Any:
        if patched and not enabled():
            return await unary(request, context)
        with tripwire.isolation_scope():
            name = find_name(custom, context, method)
            if not name:
                return await unary(request, context)
            with sdk_start_transaction(transaction=server_transaction(context, name)):
                try:
                    return await unary(request, context)
                except AbortError:
                    raise
                except Exception as exc:
                    capture_handler_error(exc)
                    raise

    return behavior


def _wrap_sync(
    unary: Callable[..., Any], method: str, custom: Any, patched: bool
) -> Callable[[Any, Any], Any]:
    # grpc.aio runs a plain-function handler in its thread pool; so does this wrapper.
    def behavior(request: Any, context: Any) -> Any:
        if patched and not enabled():
            return unary(request, context)
        with tripwire.isolation_scope():
            name = find_name(custom, context, method)
            if not name:
                return unary(request, context)
            with sdk_start_transaction(transaction=server_transaction(context, name)):
                try:
                    return unary(request, context)
                except AbortError:
                    raise
                except Exception as exc:
                    capture_handler_error(exc)
                    raise

    return behavior


__all__ = ["ServerInterceptor"]
