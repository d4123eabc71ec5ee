"""View spans for Django, as sentry_sdk 2.75.

- With ``middleware_spans``, the view runs inside a ``view.render`` span named by its
  URL name (``request.resolver_match.view_name``); a sync view run in a worker thread
  (ASGI) makes that thread the transaction's.
- `SimpleTemplateResponse.render` runs inside a ``view.response.render`` span
  ("serialize response").

Without a transaction and without ``middleware_spans`` the view is not wrapped.
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import Any, Callable

from asgiref.sync import iscoroutinefunction

from tripwire.consts import OP
from tripwire.integrations._patch import patch_once
from tripwire.integrations.django import _MARK, _integration, _start_span
from tripwire.scope._current import _current_scope, get_current_scope


def patch_views(base: ModuleType) -> None:
    """`BaseHandler.make_view_atomic` (of module `base`), which every view goes through."""
    patch_once(base.BaseHandler, "make_view_atomic", _wrap_make_view_atomic, _MARK)


def patch_response_render(module: ModuleType) -> None:
    """`SimpleTemplateResponse.render` (of module `django.template.response`)."""
    patch_once(module.SimpleTemplateResponse, "render", _wrap_render, _MARK)


def _wrap_render(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def render(self: Any) -> Any:
        if _integration() is None:
            return original(self)
        span = _start_span(OP.VIEW_RESPONSE_RENDER, "serialize response")
        if span is None:
            return original(self)
        with span:
            return original(self)

    return render


def _wrap_make_view_atomic(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def make_view_atomic(self: Any, *args: Any, **kwargs: Any) -> Any:
        callback = original(self, *args, **kwargs)
        integration = _integration()
        if integration is None:
            return callback
        span = (_current_scope.get() or get_current_scope())._d.span
        if (
            not integration.middleware_spans
            and getattr(span, "containing_transaction", None) is None
        ):
            return callback
        if iscoroutinefunction(callback):
            return _wrap_async_view(callback)
        return _wrap_sync_view(callback)

    return make_view_atomic


def _view_span(request: Any) -> Any:
    scope = _current_scope.get() or get_current_scope()
    transaction = getattr(scope._d.span, "containing_transaction", None)
    if transaction is not None:
        transaction.update_active_thread()
    integration = _integration()
    if integration is None or not integration.middleware_spans:
        return None
    return _start_span(OP.VIEW_RENDER, request.resolver_match.view_name)


def _wrap_sync_view(callback: Any) -> Any:
    @functools.wraps(callback)
    def view(request: Any, *args: Any, **kwargs: Any) -> Any:
        span = _view_span(request)
        if span is None:
            return callback(request, *args, **kwargs)
        with span:
            return callback(request, *args, **kwargs)

    return view


def _wrap_async_view(callback: Any) -> Any:
    @functools.wraps(callback)
    async def view(request: Any, *args: Any, **kwargs: Any) -> Any:
        span = _view_span(request)
        if span is None:
            return await callback(request, *args, **kwargs)
        with span:
            return await callback(request, *args, **kwargs)

    return view


wrap_async_view = _wrap_async_view

__all__ = ["patch_views", "wrap_async_view"]
