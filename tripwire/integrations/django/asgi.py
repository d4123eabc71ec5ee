"""Django under ASGI, as sentry_sdk 2.75: `ASGIHandler` runs inside `SentryAsgiMiddleware`.

The request is named and its data attached to events in `get_response_async` (as in
`get_response` for WSGI); async views and middleware get the same spans as sync ones
(`views`, `middleware`).
"""

from __future__ import annotations

import functools
from typing import Any, Callable

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from tripwire.integrations._patch import patch_once
from tripwire.integrations.django import _MARK, DjangoIntegration, _integration
from tripwire.integrations.django.views import wrap_async_view


def patch_django_asgi_handler_impl(cls: Any) -> None:
    """Run `cls.__call__` (an ASGI handler) inside `SentryAsgiMiddleware`."""
    patch_once(cls, "__call__", _wrap_asgi_call, _MARK)


def _wrap_asgi_call(original: Callable[..., Any]) -> Callable[..., Any]:
    from tripwire.integrations.asgi import SentryAsgiMiddleware

    @functools.wraps(original)
    async def __call__(self: Any, scope: Any, receive: Any, send: Any) -> Any:
        integration = _integration()
        if integration is None:
            return await original(self, scope, receive, send)
        # One middleware per handler and integration (sentry_sdk makes one per request).
        cached = self.__dict__.get(_MARK)
        if cached is None or cached[0] is not integration:
            middleware = SentryAsgiMiddleware(
                original.__get__(self, type(self)),
                unsafe_context_data=True,
                span_origin=DjangoIntegration.origin,
                http_methods_to_capture=integration.http_methods_to_capture,
            )
            cached = self.__dict__[_MARK] = (integration, middleware)
        return await cached[1]._run_asgi3(scope, receive, send)

    return __call__


def patch_get_response_async(cls: Any, before: Callable[[Any], Any]) -> None:
    """`cls.get_response_async` calls `before(request)` first."""
    if hasattr(cls, "get_response_async"):
        patch_once(cls, "get_response_async", lambda f: _wrap_async(f, before), _MARK)


def _wrap_async(original: Callable[..., Any], before: Callable[[Any], Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def get_response_async(self: Any, request: Any) -> Any:
        before(request)
        return await original(self, request)

    return get_response_async


__all__ = [
    "iscoroutinefunction",
    "markcoroutinefunction",
    "patch_django_asgi_handler_impl",
    "patch_get_response_async",
    "wrap_async_view",
]
