"""Bottle: every request of every `Bottle` application, through the WSGI middleware.

As sentry_sdk 2.75's ``bottle`` integration:

- `Bottle.__call__` runs the application inside `SentryWsgiMiddleware`'s request
  handling (origin ``auto.http.bottle``);
- once Bottle matched a route, the transaction and the request's events are named
  after it: the route's name, else its callback's qualified name (source
  ``component``, the default `transaction_style` ``"endpoint"``), or its rule
  (``transaction_style="url"``, source ``route``); an unmatched request keeps the
  WSGI name;
- an exception raised by a route's callback (Bottle answers 500) is captured
  unhandled with mechanism ``bottle``; an `HTTPResponse` the callback returns (or an
  `abort()`) whose status is in `failed_request_status_codes` (5xx by default) is
  captured handled;
- events get, besides the WSGI request part, the cookies (with PII) and the body
  bounded by `max_request_body_size`: form fields (uploads marked as removed raw
  data), else JSON, else a raw body marked as removed.

Unlike sentry_sdk, an unmatched request (a 404) keeps the name "generic WSGI request"
rather than an empty one. Nothing imports Bottle: the patches are installed when the
application imports it.
"""

from __future__ import annotations

import json
import sys
from types import ModuleType
from typing import Any, Callable, Optional

from tripwire._log import logger
from tripwire.capture import capture_event
from tripwire.integrations import DidNotEnable, Integration, _check_minimum_version
from tripwire.integrations._common._hooks import when_imported
from tripwire.integrations._common.unhandled import capture_unhandled
from tripwire.integrations._common.web import (
    DEFAULT_FAILED_REQUEST_STATUS_CODES,
    body_part,
    checked_transaction_style,
    failed_status_codes,
    set_route,
)
from tripwire.integrations.wsgi import WsgiRequestProcessor, serve_framework
from tripwire.scope._current import get_client, get_current_scope
from tripwire.utils import AnnotatedValue, parse_version, transaction_from_function

TRANSACTION_STYLE_VALUES = ("endpoint", "url")
_SOURCE_FOR_STYLE = {"endpoint": "component", "url": "route"}
_MARK = "__tripwire_bottle__"

# Bottle's module, once imported.
_bottle: Any = None


class BottleIntegration(Integration):
    """Errors, transactions and request data of Bottle applications.

    Args:
        transaction_style: Name transactions after the route's ``"endpoint"`` (its
            name, else its callback) or its ``"url"`` rule.
        failed_request_status_codes: Statuses of responses a callback returns that
            are reported as errors (default: 500-599).

    Raises:
        ValueError: An unknown `transaction_style`.
    """

    identifier = "bottle"
    origin = f"auto.http.{identifier}"

    transaction_style = ""

    def __init__(
        self,
        transaction_style: str = "endpoint",
        *,
        failed_request_status_codes: Any = DEFAULT_FAILED_REQUEST_STATUS_CODES,
    ) -> None:
        self.transaction_style = checked_transaction_style(
            transaction_style, TRANSACTION_STYLE_VALUES
        )
        self.failed_request_status_codes = failed_status_codes(failed_request_status_codes)

    @staticmethod
    def setup_once() -> None:
        """Patch Bottle when it is imported (now if it is)."""
        module = sys.modules.get("bottle")
        if module is not None:
            _check_bottle(module)
        else:
            import importlib.util

            if importlib.util.find_spec("bottle") is None:
                raise DidNotEnable("Bottle not installed")
        when_imported("bottle", _setup_bottle)


def _check_bottle(module: ModuleType) -> None:
    version = parse_version(str(getattr(module, "__version__", "")))
    _check_minimum_version(BottleIntegration, version)


def _setup_bottle(module: ModuleType) -> None:
    try:
        _check_bottle(module)
    except DidNotEnable as exc:
        logger.debug("Did not enable integration bottle: %s", exc)
        return
    from tripwire.integrations._patch import patch_once

    global _bottle
    _bottle = module
    patch_once(module.Bottle, "__call__", _wrap_call, _MARK)
    patch_once(module.Route, "_make_callback", _wrap_make_callback, _MARK)


def _wrap_call(original: Callable[..., Any]) -> Callable[..., Any]:
    def __call__(self: Any, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if get_client().get_integration(BottleIntegration) is None:
            return original(self, environ, start_response)
        return serve_framework(
            original.__get__(self),
            environ,
            start_response,
            BottleRequestProcessor(environ),
            BottleIntegration.origin,
        )

    __call__.__wrapped__ = original  # type: ignore[attr-defined]
    __call__.__doc__ = original.__doc__
    return __call__


def _wrap_make_callback(original: Callable[..., Any]) -> Callable[..., Any]:
    def _make_callback(self: Any, *args: Any, **kwargs: Any) -> Any:
        prepared = original(self, *args, **kwargs)
        if isinstance(prepared, _RouteCallback):  # Bottle retried after a RouteReset
            return prepared
        return _RouteCallback(self, prepared)

    _make_callback.__wrapped__ = original  # type: ignore[attr-defined]
    return _make_callback


class _RouteCallback:
    """A route's prepared callback: names the request, reports its failure.

    Checks the integration on every call: Bottle keeps a route's prepared callback
    for the application's life, also after the client changed.
    """

    __slots__ = ("__wrapped__", "_names", "route")

    def __init__(self, route: Any, prepared: Callable[..., Any]) -> None:
        self.route = route
        self.__wrapped__ = prepared
        self._names: dict[str, str] = {}

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        client = get_client()
        integration = client.get_integration(BottleIntegration)
        if integration is None:
            return self.__wrapped__(*args, **kwargs)
        self._name_request(integration.transaction_style)
        set_route(self.route.rule)
        try:
            result = self.__wrapped__(*args, **kwargs)
        except Exception as exc:
            capture_unhandled(client, (type(exc), exc, exc.__traceback__), "bottle")
            raise
        try:
            if (
                isinstance(result, _bottle.HTTPResponse)
                and result.status_code in integration.failed_request_status_codes
            ):
                _capture_handled(client, result)
        except Exception:
            pass
        return result

    def _name_request(self, style: str) -> None:
        try:
            name = self._names.get(style)
            if name is None:
                route = self.route
                if style == "url":
                    name = route.rule or ""
                else:
                    name = route.name or transaction_from_function(route.callback) or ""
                self._names[style] = name
            if name:
                get_current_scope().set_transaction_name(name, _SOURCE_FOR_STYLE[style])
        except Exception:  # instrumentation must never fail the request
            pass


def _capture_handled(client: Any, exc: BaseException) -> None:
    event, hint = client._event_from_exception(
        (type(exc), exc, exc.__traceback__), mechanism={"type": "bottle", "handled": True}
    )
    capture_event(get_current_scope(), event, hint, None, {}, built_by_sdk=True)


class BottleRequestProcessor(WsgiRequestProcessor):
    """The WSGI request part plus Bottle's cookies and body (read from the environ)."""

    __slots__ = ()

    def __init__(self, environ: dict[str, Any]) -> None:
        super().__init__(environ, False)

    def cookies(self) -> Optional[dict[str, Any]]:
        """The cookies Bottle parses from the request."""
        try:
            return dict(_request_of(self.environ).cookies.items())
        except Exception:
            return {}

    def add_body(self, part: dict[str, Any], options: dict[str, Any]) -> None:
        """The body as sentry_sdk reads it, bounded by `max_request_body_size`."""
        try:
            length = int(self.environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        data = body_part(options, length, lambda: _read_body(self.environ))
        if data is not None:
            part["data"] = data


def _read_body(environ: dict[str, Any]) -> Any:
    """Form fields (files marked), else JSON, else the raw bytes (as sentry_sdk reads it).

    Bottle caches what it parsed in the environ: the application's own reads and these
    share one read of the input.
    """
    request = _request_of(environ)
    raw = request.body.read()
    if _is_json(environ.get("CONTENT_TYPE")):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    form = request.forms.decode()
    files = request.files
    if form or files:
        data: dict[str, Any] = dict(form.items())
        for key in files:
            data[key] = AnnotatedValue.removed_because_raw_data()
        return data
    return raw


def _request_of(environ: dict[str, Any]) -> Any:
    """A Bottle request over `environ`, leaving the environ's ``bottle.request`` as it was."""
    before = environ.get("bottle.request", _MISSING)
    request = _bottle.BaseRequest(environ)
    if before is _MISSING:
        del environ["bottle.request"]
    else:
        environ["bottle.request"] = before
    return request


_MISSING = object()


def _is_json(content_type: Optional[str]) -> bool:
    # As sentry_sdk decides it: the media type as sent, no parameters.
    mime = (content_type or "").split(";", 1)[0]
    return mime == "application/json" or (
        mime.startswith("application/") and mime.endswith("+json")
    )


__all__ = ["BottleIntegration"]
