"""Spans for Django signal receivers, as sentry_sdk 2.75.

While a span is active, each sync receiver a signal calls runs inside an
``event.django`` span named by the receiver (``module.qualname``), with the name as
``signal`` data; not with ``signals_spans=False`` nor for a signal in
``signals_denylist``. Async receivers (Django 5+) are called as they are.
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import Any, Callable

from tripwire.consts import OP, SPANDATA
from tripwire.integrations._common.web import streamed
from tripwire.integrations._patch import patch_once
from tripwire.integrations.django import _MARK, _integration, _start_span
from tripwire.scope._current import _current_scope, get_current_scope, get_isolation_scope


def _get_receiver_name(receiver: Callable[..., Any]) -> str:
    name = getattr(receiver, "__qualname__", None) or getattr(receiver, "__name__", None) or ""
    if not name:
        inner = getattr(receiver, "func", None)
        if inner is not None and hasattr(inner, "__name__"):
            name = "partial(<function " + inner.__name__ + ">)"
    if not name:
        return str(receiver)
    module = getattr(receiver, "__module__", None)
    return f"{module}.{name}" if module is not None else name


def patch_signals(module: ModuleType) -> None:
    """`Signal._live_receivers` (module `django.dispatch.dispatcher`)."""
    patch_once(module.Signal, "_live_receivers", _wrap_live_receivers, _MARK)


def _tracing() -> bool:
    scope = _current_scope.get() or get_current_scope()
    return scope._d.span is not None or get_isolation_scope()._d.span is not None


def _wrap_live_receivers(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def _live_receivers(self: Any, sender: Any) -> Any:
        found = original(self, sender)
        if not _tracing():
            return found
        integration = _integration()
        if (
            integration is None
            or not integration.signals_spans
            or self in integration.signals_denylist
        ):
            return found
        if isinstance(found, tuple):  # Django 5+: (sync, async)
            sync, other = found
            return [_wrap_receiver(receiver) for receiver in sync], other
        return [_wrap_receiver(receiver) for receiver in found]

    return _live_receivers


def _wrap_receiver(receiver: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(receiver)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        name = _get_receiver_name(receiver)
        span = _start_span(OP.EVENT_DJANGO, name, attributes={SPANDATA.CODE_FUNCTION_NAME: name})
        if span is None:
            return receiver(*args, **kwargs)
        with span:
            if streamed(span) is not None:
                span.set_attribute(SPANDATA.CODE_FUNCTION_NAME, name)
            else:
                span.set_data("signal", name)
            return receiver(*args, **kwargs)

    return wrapper


__all__ = ["patch_signals"]
