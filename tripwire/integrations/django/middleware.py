"""Spans for Django middleware (``middleware_spans=True``), as sentry_sdk 2.75.

Each middleware class Django loads while the integration has ``middleware_spans`` on is
wrapped: its `__call__` (or `__acall__`) and its ``process_*`` hooks run inside a
``middleware.django`` span named ``<dotted path>.<method>``, tagged
``django.function_name`` and ``django.middleware_name`` (a streamed span: the
attribute ``middleware.name``). With the option off (the
default) middleware is loaded untouched and costs nothing per request.
"""

from __future__ import annotations

import functools
from contextvars import ContextVar
from types import ModuleType
from typing import Any, Callable, Optional

from asgiref.sync import iscoroutinefunction, markcoroutinefunction

from tripwire.consts import OP, SPANDATA
from tripwire.integrations._common.web import streamed
from tripwire.integrations._patch import patch_once
from tripwire.integrations.django import _MARK, _integration, _start_span
from tripwire.utils import transaction_from_function

_HOOKS = (
    "process_request",
    "process_view",
    "process_template_response",
    "process_response",
    "process_exception",
)
_wrap_loaded: ContextVar[bool] = ContextVar("tripwire_django_wrap_middleware", default=False)


def patch_django_middlewares(base: ModuleType) -> None:
    """Wrap the middleware `BaseHandler.load_middleware` imports (module `base`)."""
    patch_once(base, "import_string", _wrap_import_string, _MARK)
    patch_once(base.BaseHandler, "load_middleware", _wrap_load_middleware, _MARK)


def _wrap_import_string(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def import_string(dotted_path: str) -> Any:
        found = original(dotted_path)
        if _wrap_loaded.get():
            found = _wrap_middleware(found, dotted_path)
        return found

    return import_string


def _wrap_load_middleware(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def load_middleware(*args: Any, **kwargs: Any) -> Any:
        integration = _integration()
        token = _wrap_loaded.set(integration is not None and bool(integration.middleware_spans))
        try:
            return original(*args, **kwargs)
        finally:
            _wrap_loaded.reset(token)

    return load_middleware


def _middleware_span(method: Any, middleware_name: str) -> Any:
    integration = _integration()
    if integration is None or not integration.middleware_spans:
        return None
    basename = getattr(method, "__name__", None)
    span = _start_span(
        OP.MIDDLEWARE_DJANGO,
        f"{middleware_name}.{basename}" if basename else middleware_name,
        attributes={SPANDATA.MIDDLEWARE_NAME: middleware_name},
    )
    if span is not None:
        if streamed(span) is not None:  # sentry_sdk's streamed name, without the tags
            span.set_attribute(SPANDATA.MIDDLEWARE_NAME, middleware_name)
        else:
            span.set_tag("django.function_name", transaction_from_function(method))
            span.set_tag("django.middleware_name", middleware_name)
    return span


def _wrap_method(method: Any, middleware_name: str) -> Any:
    if iscoroutinefunction(method):

        async def async_hook(*args: Any, **kwargs: Any) -> Any:
            span = _middleware_span(method, middleware_name)
            if span is None:
                return await method(*args, **kwargs)
            with span:
                return await method(*args, **kwargs)

        wrapped: Any = async_hook
    else:

        def hook(*args: Any, **kwargs: Any) -> Any:
            span = _middleware_span(method, middleware_name)
            if span is None:
                return method(*args, **kwargs)
            with span:
                return method(*args, **kwargs)

        wrapped = hook
    try:
        wrapped = functools.wraps(method)(wrapped)
        wrapped.__self__ = method.__self__
    except Exception:
        pass
    return wrapped


def _wrap_middleware(middleware: Any, middleware_name: str) -> Any:
    class SentryWrappingMiddleware:
        """Runs the middleware's methods inside spans (sentry_sdk's class name)."""

        sync_capable = getattr(middleware, "sync_capable", True)
        async_capable = getattr(middleware, "async_capable", False)

        def __init__(
            self, get_response: Optional[Callable[..., Any]] = None, *args: Any, **kwargs: Any
        ) -> None:
            if get_response:
                self._inner = middleware(get_response, *args, **kwargs)
            else:
                self._inner = middleware(*args, **kwargs)
            self.get_response = get_response
            self._is_async = bool(self.async_capable and iscoroutinefunction(get_response))
            if self._is_async:
                markcoroutinefunction(self)

        def __getattr__(self, name: str) -> Any:
            # Only the hooks the inner middleware has: Django asks with `hasattr`.
            if name not in _HOOKS:
                raise AttributeError(name)
            wrapped = _wrap_method(getattr(self._inner, name), middleware_name)
            self.__dict__[name] = wrapped
            return wrapped

        def __call__(self, *args: Any, **kwargs: Any) -> Any:
            if self._is_async:
                return self.__acall__(*args, **kwargs)
            method = self._inner.__call__
            span = _middleware_span(method, middleware_name)
            if span is None:
                return method(*args, **kwargs)
            with span:
                return method(*args, **kwargs)

        async def __acall__(self, *args: Any, **kwargs: Any) -> Any:
            method = getattr(self._inner, "__acall__", self._inner)
            span = _middleware_span(method, middleware_name)
            if span is None:
                return await method(*args, **kwargs)
            with span:
                return await method(*args, **kwargs)

    for attr in ("__name__", "__module__", "__qualname__"):
        if hasattr(middleware, attr):
            setattr(SentryWrappingMiddleware, attr, getattr(middleware, attr))
    return SentryWrappingMiddleware


__all__ = ["patch_django_middlewares"]
