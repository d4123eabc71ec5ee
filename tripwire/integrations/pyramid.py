"""Pyramid: every request of every Pyramid `Router`, through the WSGI middleware.

As sentry_sdk 2.75's ``pyramid`` integration:

- `Router.__call__` runs the application inside `SentryWsgiMiddleware`'s request
  handling (origin ``auto.http.pyramid``); an exception escaping the router (no
  exception view for it) is captured unhandled with mechanism ``pyramid`` (then the
  WSGI middleware's capture of the same exception is dropped by the dedupe
  integration); `HTTPException`s are not reported;
- when Pyramid calls the view, the transaction and the request's events are named
  after the matched route: its name (source ``component``, the default
  `transaction_style` ``"route_name"``) or its pattern (``"route_pattern"``, source
  ``route``); an unmatched request keeps the WSGI name;
- an exception an exception view answers with a 500 is captured unhandled (mechanism
  ``pyramid``);
- events get, besides the WSGI request part, the cookies (with PII), the body bounded
  by `max_request_body_size` (form fields with uploads marked as removed raw data,
  else JSON, else a raw body marked as removed), and with PII the user id
  (``request.authenticated_userid``). The request is held weakly: an event sent after
  Pyramid let go of it (a transaction finishing) gets only the WSGI part.

Nothing imports Pyramid: the patches are installed when the application imports
``pyramid.router``.
"""

from __future__ import annotations

import json
import sys
import weakref
from contextvars import ContextVar
from types import ModuleType
from typing import Any, Callable, Optional

from tripwire.integrations import DidNotEnable, Integration
from tripwire.integrations._common._hooks import when_imported
from tripwire.integrations._common.unhandled import capture_unhandled
from tripwire.integrations._common.web import (
    body_part,
    checked_transaction_style,
    may_send_user,
    set_route,
)
from tripwire.integrations.wsgi import (
    WsgiRequestProcessor,
    _wsgi_middleware_applied,
    serve_framework,
)
from tripwire.scope._current import get_client, get_current_scope
from tripwire.utils import AnnotatedValue

TRANSACTION_STYLE_VALUES = ("route_name", "route_pattern")
_SOURCE_FOR_STYLE = {"route_name": "component", "route_pattern": "route"}
_MARK = "__tripwire_pyramid__"

# Pyramid's HTTPException, once imported.
_HTTPException: Any = None

# The processor of the WSGI request the router serves in this context.
_request_processor: ContextVar[Any] = ContextVar("tripwire_pyramid_request", default=None)


class PyramidIntegration(Integration):
    """Errors, transactions, request data and the user of Pyramid applications.

    Args:
        transaction_style: Name transactions after the matched route's
            ``"route_name"`` or its ``"route_pattern"``.

    Raises:
        ValueError: An unknown `transaction_style`.
    """

    identifier = "pyramid"
    origin = f"auto.http.{identifier}"

    transaction_style = ""

    def __init__(self, transaction_style: str = "route_name") -> None:
        self.transaction_style = checked_transaction_style(
            transaction_style, TRANSACTION_STYLE_VALUES
        )

    @staticmethod
    def setup_once() -> None:
        """Patch Pyramid when its router is imported (now if it is)."""
        if "pyramid" not in sys.modules:
            import importlib.util

            if importlib.util.find_spec("pyramid") is None:
                raise DidNotEnable("Pyramid not installed")
        when_imported("pyramid.router", _setup_pyramid)


def _setup_pyramid(router: ModuleType) -> None:
    import importlib

    from tripwire.integrations._patch import patch_once

    global _HTTPException
    _HTTPException = importlib.import_module("pyramid.httpexceptions").HTTPException
    Request = importlib.import_module("pyramid.request").Request
    patch_once(router.Router, "__call__", _wrap_call, _MARK)
    patch_once(router, "_call_view", _wrap_call_view, _MARK)
    if hasattr(Request, "invoke_exception_view"):
        patch_once(Request, "invoke_exception_view", _wrap_invoke_exception_view, _MARK)


def _wrap_call(original: Callable[..., Any]) -> Callable[..., Any]:
    def __call__(self: Any, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        client = get_client()
        if client.get_integration(PyramidIntegration) is None:
            return original(self, environ, start_response)
        if isinstance(_wsgi_middleware_applied.get(), PyramidRequestProcessor):
            return original(self, environ, start_response)  # a Pyramid app inside another
        processor = PyramidRequestProcessor(environ)
        token = _request_processor.set(processor)
        try:

            def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
                return _call_router(original, self, environ, start_response)

            return serve_framework(
                app, environ, start_response, processor, PyramidIntegration.origin
            )
        finally:
            _request_processor.reset(token)

    __call__.__wrapped__ = original  # type: ignore[attr-defined]
    __call__.__doc__ = original.__doc__
    return __call__


def _call_router(
    original: Callable[..., Any],
    router: Any,
    environ: dict[str, Any],
    start_response: Callable[..., Any],
) -> Any:
    try:
        return original(router, environ, start_response)
    except Exception as exc:
        _capture(exc)
        raise


def _capture(exc: BaseException) -> None:
    client = get_client()
    if client.get_integration(PyramidIntegration) is None or isinstance(exc, _HTTPException):
        return
    capture_unhandled(client, (type(exc), exc, exc.__traceback__), "pyramid")


def _wrap_call_view(original: Callable[..., Any]) -> Callable[..., Any]:
    def _call_view(registry: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        integration = get_client().get_integration(PyramidIntegration)
        if integration is not None:
            try:
                processor = _request_processor.get()
                if processor is not None and processor.environ is request.environ:
                    processor.set_request(request)
                route = request.matched_route
                if route is not None:
                    style = integration.transaction_style
                    name = route.name if style == "route_name" else route.pattern
                    get_current_scope().set_transaction_name(name, _SOURCE_FOR_STYLE[style])
                    set_route(route.pattern)
            except Exception:  # instrumentation must never fail the request
                pass
        return original(registry, request, *args, **kwargs)

    _call_view.__wrapped__ = original  # type: ignore[attr-defined]
    return _call_view


def _wrap_invoke_exception_view(original: Callable[..., Any]) -> Callable[..., Any]:
    def invoke_exception_view(self: Any, *args: Any, **kwargs: Any) -> Any:
        response = original(self, *args, **kwargs)
        try:
            exc_info = self.exc_info
            if exc_info and all(exc_info) and response.status_int == 500:
                _capture(exc_info[1])
        except Exception:
            pass
        return response

    invoke_exception_view.__wrapped__ = original  # type: ignore[attr-defined]
    invoke_exception_view.__doc__ = original.__doc__
    return invoke_exception_view


class PyramidRequestProcessor(WsgiRequestProcessor):
    """The WSGI request part plus, while Pyramid holds the request, cookies, body, user."""

    __slots__ = ("_request",)

    def __init__(self, environ: dict[str, Any]) -> None:
        super().__init__(environ, False)
        self._request: Callable[[], Any] = _no_request

    def set_request(self, request: Any) -> None:
        """The request Pyramid made, held weakly."""
        self._request = weakref.ref(request)

    def apply(self, event: dict[str, Any], options: dict[str, Any]) -> None:
        """The WSGI part, Pyramid's cookies and body, and the user id with PII."""
        super().apply(event, options)
        request = self._request()
        if request is not None and may_send_user(options):
            try:
                user_id = request.authenticated_userid
            except Exception:
                return
            event.setdefault("user", {}).setdefault("id", user_id)

    def cookies(self) -> Optional[dict[str, Any]]:
        """The request's cookies (None once Pyramid let go of the request)."""
        request = self._request()
        if request is None:
            return None
        try:
            return dict(request.cookies)
        except Exception:
            return {}

    def add_body(self, part: dict[str, Any], options: dict[str, Any]) -> None:
        """The body as sentry_sdk reads it, bounded by `max_request_body_size`."""
        request = self._request()
        if request is None:
            return
        try:
            length = int(self.environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        data = body_part(options, length, lambda: _read_body(request))
        if data is not None:
            part["data"] = data


def _no_request() -> Any:
    return None


def _read_body(request: Any) -> Any:
    """Form fields (files marked), else JSON, else the raw text (as sentry_sdk reads it)."""
    try:
        raw = request.text
    except ValueError:
        raw = None
    fields = list(request.POST.items())
    data: dict[str, Any] = {k: v for k, v in fields if not getattr(v, "filename", None)}
    for key, value in fields:  # uploads after the fields, as sentry_sdk lists them
        if getattr(value, "filename", None):
            data[key] = AnnotatedValue.removed_because_raw_data()
    if data:
        return data
    if raw and _is_json(request.environ.get("CONTENT_TYPE")):
        try:
            return json.loads(raw)
        except ValueError:
            pass
    return raw


def _is_json(content_type: Optional[str]) -> bool:
    # As sentry_sdk decides it: the media type as sent, no parameters.
    mime = (content_type or "").split(";", 1)[0]
    return mime == "application/json" or (
        mime.startswith("application/") and mime.endswith("+json")
    )


__all__ = ["PyramidIntegration"]
