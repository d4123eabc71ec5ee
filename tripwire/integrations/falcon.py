"""Falcon: every request of every WSGI `falcon.App`, through the WSGI middleware.

As sentry_sdk 2.75's ``falcon`` integration:

- `App.__call__` runs the application inside `SentryWsgiMiddleware`'s request
  handling (origin ``auto.http.falcon``); ASGI applications are left alone;
- once Falcon routed the request, the transaction and the request's events are named
  after its URI template (source ``route``, the default `transaction_style`
  ``"uri_template"``) or its path (``transaction_style="path"``, source ``url``);
- an exception Falcon handles (`App._handle_exception`) is captured unhandled with
  mechanism ``falcon`` when the response is a 5xx and the exception is an `HTTPError`
  with a 5xx status or not an `HTTPError`/`HTTPStatus` at all;
- events get, besides the WSGI request part, the cookies (with PII) and, bounded by
  `max_request_body_size`, the media the application already parsed, else a body
  marked as removed raw data (Falcon's stream can be read only once).

Unlike sentry_sdk, a request no route matched keeps the name "generic WSGI request"
(rather than none), and the name is set on the scope when Falcon routes the request
(not by each event), so what the request sends afterwards carries it too. Nothing
imports Falcon: the patches are installed when the application imports it.
"""

from __future__ import annotations

import sys
from contextvars import ContextVar
from types import ModuleType
from typing import Any, Callable, Optional

from tripwire._log import logger
from tripwire.integrations import DidNotEnable, Integration, _check_minimum_version
from tripwire.integrations._common._hooks import when_imported
from tripwire.integrations._common.unhandled import capture_unhandled
from tripwire.integrations._common.web import (
    body_part,
    checked_transaction_style,
    set_route,
)
from tripwire.integrations.wsgi import (
    WsgiRequestProcessor,
    _wsgi_middleware_applied,
    serve_framework,
)
from tripwire.scope._current import get_client, get_current_scope
from tripwire.utils import parse_version

TRANSACTION_STYLE_VALUES = ("uri_template", "path")
_SOURCE_FOR_STYLE = {"uri_template": "route", "path": "url"}
_MARK = "__tripwire_falcon__"

# Falcon's module, its "not parsed yet" marker of `Request._media`, once imported.
_falcon: Any = None
_UNSET: Any = None

# The processor of the WSGI request the app serves in this context.
_request_processor: ContextVar[Any] = ContextVar("tripwire_falcon_request", default=None)


class FalconIntegration(Integration):
    """Errors, transactions and request data of Falcon (WSGI) applications.

    Args:
        transaction_style: Name transactions after the route's ``"uri_template"`` or
            the request's ``"path"``.

    Raises:
        ValueError: An unknown `transaction_style`.
    """

    identifier = "falcon"
    origin = f"auto.http.{identifier}"

    transaction_style = ""

    def __init__(self, transaction_style: str = "uri_template") -> None:
        self.transaction_style = checked_transaction_style(
            transaction_style, TRANSACTION_STYLE_VALUES
        )

    @staticmethod
    def setup_once() -> None:
        """Patch Falcon when it is imported (now if it is)."""
        module = sys.modules.get("falcon")
        if module is not None:
            _check_falcon(module)
        else:
            import importlib.util

            if importlib.util.find_spec("falcon") is None:
                raise DidNotEnable("Falcon not installed")
        when_imported("falcon", _setup_falcon)


def _check_falcon(module: ModuleType) -> None:
    version = parse_version(str(getattr(module, "__version__", "")))
    _check_minimum_version(FalconIntegration, version)


def _setup_falcon(module: ModuleType) -> None:
    try:
        _check_falcon(module)
    except DidNotEnable as exc:
        logger.debug("Did not enable integration falcon: %s", exc)
        return
    import falcon.request

    from tripwire.integrations._patch import patch_once

    global _falcon, _UNSET
    _falcon = module
    _UNSET = getattr(falcon.request, "_UNSET", None)
    app_class = getattr(module, "App", None) or module.API  # Falcon < 3: `API`
    patch_once(app_class, "__call__", _wrap_call, _MARK)
    patch_once(app_class, "_get_responder", _wrap_get_responder, _MARK)
    patch_once(app_class, "_handle_exception", _wrap_handle_exception, _MARK)


def _wrap_call(original: Callable[..., Any]) -> Callable[..., Any]:
    def __call__(self: Any, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if get_client().get_integration(FalconIntegration) is None:
            return original(self, environ, start_response)
        if isinstance(_wsgi_middleware_applied.get(), FalconRequestProcessor):
            return original(self, environ, start_response)  # a Falcon app inside another
        processor = FalconRequestProcessor(environ)
        token = _request_processor.set(processor)
        try:
            return serve_framework(
                original.__get__(self), environ, start_response, processor, FalconIntegration.origin
            )
        finally:
            _request_processor.reset(token)

    __call__.__wrapped__ = original  # type: ignore[attr-defined]
    __call__.__doc__ = original.__doc__
    return __call__


def _processor_for(environ: Any) -> Optional[FalconRequestProcessor]:
    """This WSGI request's Falcon processor (None in ASGI apps or another request)."""
    processor: Optional[FalconRequestProcessor] = _request_processor.get()
    if processor is not None and processor.environ is environ:
        return processor
    return None


def _wrap_get_responder(original: Callable[..., Any]) -> Callable[..., Any]:
    def _get_responder(self: Any, req: Any) -> Any:
        route = original(self, req)
        integration = get_client().get_integration(FalconIntegration)
        if integration is None:
            return route
        try:
            processor = _processor_for(req.env)
            if processor is not None:
                processor.request = req
                # `route`: (responder, params, resource, uri_template)
                name = req.path if integration.transaction_style == "path" else route[3]
                set_route(route[3])
                if name:
                    style = integration.transaction_style
                    get_current_scope().set_transaction_name(name, _SOURCE_FOR_STYLE[style])
        except Exception:  # instrumentation must never fail the request
            pass
        return route

    _get_responder.__wrapped__ = original  # type: ignore[attr-defined]
    return _get_responder


def _wrap_handle_exception(original: Callable[..., Any]) -> Callable[..., Any]:
    def _handle_exception(self: Any, *args: Any) -> Any:
        handled = original(self, *args)
        client = get_client()
        if client.get_integration(FalconIntegration) is None:
            return handled
        try:
            # Falcon 2 changed the order of the arguments: find them by type.
            exc = next(a for a in args if isinstance(a, Exception))
            response = next(a for a in args if isinstance(a, _falcon.Response))
            request = next((a for a in args if isinstance(a, _falcon.Request)), None)
            if request is not None:
                processor = _processor_for(request.env)
                if processor is not None and processor.request is None:
                    processor.request = request
            if _leads_to_5xx(exc, response):
                capture_unhandled(client, (type(exc), exc, exc.__traceback__), "falcon")
        except Exception:
            pass
        return handled

    _handle_exception.__wrapped__ = original  # type: ignore[attr-defined]
    return _handle_exception


def _leads_to_5xx(exc: Exception, response: Any) -> bool:
    """Whether Falcon answers `exc` with a server error worth reporting."""
    if isinstance(exc, _falcon.HTTPError):
        reportable = _is_5xx(exc.status or "")
    else:
        reportable = not isinstance(exc, _falcon.HTTPStatus)
    return reportable and _is_5xx(response.status)


def _is_5xx(status: Any) -> bool:
    if isinstance(status, int):
        return 500 <= status < 600
    return isinstance(status, str) and status.startswith("5")


class FalconRequestProcessor(WsgiRequestProcessor):
    """The WSGI request part plus, once Falcon routed the request, cookies and body."""

    __slots__ = ("request",)

    def __init__(self, environ: dict[str, Any]) -> None:
        super().__init__(environ, False)
        self.request: Any = None

    def cookies(self) -> Optional[dict[str, Any]]:
        """The cookies Falcon parsed (None before Falcon routed the request)."""
        request = self.request
        if request is None:
            return None
        try:
            return dict(request.cookies)
        except Exception:
            return {}

    def add_body(self, part: dict[str, Any], options: dict[str, Any]) -> None:
        """The media already parsed, else a raw body marked as removed."""
        request = self.request
        if request is None:
            return
        try:
            length = int(self.environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        data = body_part(options, length, lambda: _read_body(request, length))
        if data is not None:
            part["data"] = data


def _read_body(request: Any, length: int) -> Any:
    # The stream can be read once: only what the application parsed is sent, and an
    # unparsed body only as a mark, when the request says it has one (as sentry_sdk).
    media = getattr(request, "_media", _UNSET)
    if media is not _UNSET:
        return media
    return "[REQUEST_CONTAINING_RAW_DATA]" if length > 0 else None


__all__ = ["FalconIntegration"]
