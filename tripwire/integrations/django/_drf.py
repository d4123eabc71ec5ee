"""Django REST framework, as sentry_sdk 2.75: its parsed body on events, an auth span.

`APIView.initial` leaves a weak reference to the DRF request on Django's, so events
carry `request.data` (DRF has consumed the body); `Request._authenticate` runs inside
a ``view.authenticate`` span ("authenticate") when the view has authenticators.
"""

from __future__ import annotations

import functools
import weakref
from types import ModuleType
from typing import Any, Callable

from tripwire.consts import OP
from tripwire.integrations._patch import patch_once
from tripwire.integrations.django import _MARK, _integration, _start_span


def patch_api_view(module: ModuleType) -> None:
    """`rest_framework.views.APIView.initial`."""
    patch_once(module.APIView, "initial", _wrap_initial, _MARK)


def patch_authenticate(module: ModuleType) -> None:
    """`rest_framework.request.Request._authenticate`."""
    patch_once(module.Request, "_authenticate", _wrap_authenticate, _MARK)


def _wrap_initial(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def initial(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        if _integration() is not None:
            try:
                request._request._sentry_drf_request_backref = weakref.ref(request)
            except Exception:
                pass
        return original(self, request, *args, **kwargs)

    return initial


def _wrap_authenticate(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def _authenticate(self: Any) -> Any:
        if _integration() is None or not getattr(self, "authenticators", None):
            return original(self)
        span = _start_span(OP.VIEW_AUTHENTICATE, "authenticate")
        if span is None:
            return original(self)
        with span:
            return original(self)

    return _authenticate
