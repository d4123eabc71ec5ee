"""Starlette integration: `Starlette` applications, through the ASGI middleware.

As sentry_sdk 2.75's ``starlette`` integration. Patched when Starlette's modules are
imported (never at `init()`):

- ``Starlette.__call__`` runs the application inside `SentryAsgiMiddleware` (mechanism
  ``starlette``, origin ``auto.http.starlette``): one isolation scope, session and
  ``http.server`` transaction per request, unhandled errors reported, status from
  the response (see `tripwire.integrations.asgi`); a mounted Starlette application
  runs inside its parent's;
- ``starlette.routing.request_response`` wraps each endpoint: the request's events
  are named per `transaction_style` (``url``: the route's path template, after the
  path templates of the `Mount`s it is in, source ``route``; ``endpoint``: the
  endpoint's qualified name, source ``component``) and get the cookies (with
  `send_default_pii`) and, for async endpoints, the body: JSON, or a form whose
  files are marked removed, or a raw body marked removed, bounded by
  `max_request_body_size` and `data_collection`. The body is read (and cached by
  Starlette's `Request` for the endpoint) only when the request has one;
- ``ExceptionMiddleware``'s exception handlers report an exception whose
  ``status_code`` is in `failed_request_status_codes` (handled, mechanism
  ``starlette``); a handled 4xx is not reported;
- with `send_default_pii`, the user `AuthenticationMiddleware` put in the ASGI scope
  (``username``, ``id``, ``email``) goes with the events;
- with `middleware_spans`, a ``middleware.starlette`` span per middleware and
  ``middleware.starlette.receive``/``.send`` spans for their calls (middleware
  declared while no client asked for them is left as it is, at no cost per request);
- `Jinja2Templates` get a ``sentry_trace_meta`` context processor;
- under span streaming the segment gets ``http.route`` (the route's path template)
  and ``http.request.body.data`` (the JSON or form read for events, as JSON text),
  and middleware spans ``middleware.name`` instead of the tag;
- ``Mount.handle`` records the mount's path template for those names: a request
  none of a mount's routes matched (a 404) is named, with ``url``, by the mounts'
  templates (``/api`` under ``Mount("/api")``, source ``route``, as sentry_sdk).

Differences: an unrouted request (404, at the top or under a `Mount`) named by
``endpoint`` keeps its url, source ``url`` (sentry_sdk names it after the innermost
middleware class: finding that would cost a wrapper around every middleware on
every request); a mounted route is named with its mounts' templates (sentry_sdk:
``generic Starlette request``), and so is a 404 under nested mounts (sentry_sdk: the
innermost mount's path alone).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Set
from types import ModuleType
from typing import Any, Callable, Optional

from tripwire import _data_collection
from tripwire.integrations import (
    _DEFAULT_FAILED_REQUEST_STATUS_CODES,
    DidNotEnable,
    Integration,
    _check_minimum_version,
)
from tripwire.integrations._common._hooks import when_imported
from tripwire.integrations._common.start_attributes import child_start
from tripwire.integrations._common.web import (
    DEFAULT_HTTP_METHODS_TO_CAPTURE,
    checked_transaction_style,
    failed_status_codes,
    may_send_user,
    streamed,
)
from tripwire.integrations.asgi import (
    SCOPE_KEY,
    AsgiRequest,
    SentryAsgiMiddleware,
    record_mount,
    route_path,
)
from tripwire.scope._capture import capture_event
from tripwire.scope._current import get_client, get_current_scope
from tripwire.tracing._api import sdk_start_span
from tripwire.utils import AnnotatedValue, transaction_from_function

ORIGIN = "auto.http.starlette"
TRANSACTION_STYLE_VALUES = ("endpoint", "url")
_DEFAULT_TRANSACTION_NAME = "generic Starlette request"
_MARK = "__tripwire_starlette__"

# Set up from the installed version: Starlette 0.33+ passes paths with the root path.
_state: dict[str, Any] = {"root_path_in_path": "excluded", "multipart": None}


class StarletteIntegration(Integration):
    """Errors, transactions and request data for Starlette applications.

    Args:
        transaction_style: ``"url"`` (the route's path, source ``route``) or
            ``"endpoint"`` (the endpoint's qualified name, source ``component``).
        failed_request_status_codes: An exception with a ``status_code`` in this set,
            answered by an exception handler, is reported (default 500-599). A list
            of ints and ranges, or None, is deprecated (as sentry_sdk).
        middleware_spans: A span per middleware (and its receive/send calls).
        http_methods_to_capture: Methods whose requests get a transaction.

    Raises:
        ValueError: `transaction_style` is not one of the two.
    """

    identifier = "starlette"
    origin = ORIGIN

    def __init__(
        self,
        transaction_style: str = "url",
        failed_request_status_codes: Any = _DEFAULT_FAILED_REQUEST_STATUS_CODES,
        middleware_spans: bool = False,
        http_methods_to_capture: tuple[str, ...] = DEFAULT_HTTP_METHODS_TO_CAPTURE,
    ) -> None:
        self.transaction_style = checked_transaction_style(
            transaction_style, TRANSACTION_STYLE_VALUES
        )
        self.middleware_spans = middleware_spans
        self.http_methods_to_capture = tuple(m.upper() for m in http_methods_to_capture)
        if isinstance(failed_request_status_codes, Set):
            self.failed_request_status_codes: Any = failed_request_status_codes
        else:
            from tripwire._deprecation import deprecated

            deprecated(
                "Passing a list or None for failed_request_status_codes is deprecated. "
                "Please pass a set of int instead."
            )
            self.failed_request_status_codes = failed_status_codes(failed_request_status_codes)
        self._asgi: Optional[SentryAsgiMiddleware] = None
        # Stored once: a bound method read from the instance is a new object each time.
        self._namer = self._name_and_source

    @staticmethod
    def setup_once() -> None:
        """Check Starlette's version; patch its modules once they are imported.

        Raises:
            DidNotEnable: Starlette is not installed, or older than 0.16.
        """
        import importlib.util

        from tripwire.utils import package_version

        if importlib.util.find_spec("starlette") is None:
            raise DidNotEnable("Starlette is not installed")
        version = package_version("starlette")
        _check_minimum_version(StarletteIntegration, version, "Starlette")
        if version is not None and version >= (0, 33):
            _state["root_path_in_path"] = "either"
        when_imported("starlette.applications", _patch_applications)
        when_imported("starlette.routing", _patch_routing)
        when_imported("starlette.middleware", _patch_middleware)
        when_imported("starlette.middleware.exceptions", _patch_exception_middleware)
        when_imported("starlette.templating", _patch_templates)

    def asgi_middleware(self) -> SentryAsgiMiddleware:
        """The middleware configuration the application runs in (made once)."""
        middleware = self._asgi
        if middleware is None:
            middleware = self._asgi = SentryAsgiMiddleware(
                None,
                transaction_style=self.transaction_style,
                mechanism_type=StarletteIntegration.identifier,
                span_origin=StarletteIntegration.origin,
                http_methods_to_capture=self.http_methods_to_capture,
                asgi_version=3,
                root_path_in_path=_state["root_path_in_path"],
            )
            middleware._user_from_scope = user_from_scope
        return middleware

    def _name_and_source(self, scope: Any) -> tuple[str, str]:
        if self.transaction_style == "endpoint":
            endpoint = scope.get("endpoint")
            name = transaction_from_function(endpoint) if endpoint else None
            if name:
                return name, "component"
            return _DEFAULT_TRANSACTION_NAME, "route"
        route = scope.get("route")
        path = route_path(scope, route) if route is not None else _route_from_router(scope)
        if not path:
            return _DEFAULT_TRANSACTION_NAME, "route"
        return path, "route"

    def _http_route(self, scope: Any) -> Optional[str]:
        """The route's path template (``http.route``), whatever the transaction style."""
        route = scope.get("route")
        return route_path(scope, route) if route is not None else _route_from_router(scope)


def _route_from_router(scope: Any) -> Optional[str]:
    """Starlette before ``scope["route"]``: the first route of the router that matches."""
    router = scope.get("router")
    if router is None:
        return None
    try:
        from starlette.routing import Match

        for route in router.routes:
            if route.matches(scope)[0] == Match.FULL:
                path = getattr(route, "path", None) or scope.get("path")
                return str(path) if path is not None else None
    except Exception:
        pass
    return None


# -- the application ---------------------------------------------------------------------


def _patch_applications(module: ModuleType) -> None:
    from tripwire.integrations._patch import patch_once

    patch_once(module.Starlette, "__call__", _wrap_app_call, _MARK)


def _wrap_app_call(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def __call__(self: Any, scope: Any, receive: Any, send: Any) -> None:
        integration = get_client().get_integration(StarletteIntegration)
        if integration is None:
            return await original(self, scope, receive, send)  # type: ignore[no-any-return]
        middleware = integration._asgi or integration.asgi_middleware()
        return await middleware._serve(  # type: ignore[no-any-return]
            original.__get__(self, type(self)), scope, receive, send, True
        )

    return __call__


# -- endpoints -----------------------------------------------------------------------------


def _patch_routing(module: ModuleType) -> None:
    from tripwire.integrations._patch import patch_once

    patch_once(module, "request_response", _wrap_request_response, _MARK)
    patch_mount(module)


def patch_mount(module: ModuleType) -> None:
    """``Mount.handle`` records the mount's path template on the request's state (the
    prefix of the names of the routes under it, and the name of a 404 under it)."""
    from tripwire.integrations._patch import patch_once

    mount = getattr(module, "Mount", None)
    if mount is not None:
        patch_once(mount, "handle", _wrap_mount_handle, _MARK)


def _wrap_mount_handle(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def handle(self: Any, scope: Any, receive: Any, send: Any) -> None:
        try:
            record_mount(scope, self)
        except Exception:
            pass
        return await original(self, scope, receive, send)  # type: ignore[no-any-return]

    return handle


def is_async_callable(obj: Any) -> bool:
    """Whether calling `obj` returns a coroutine (as Starlette decides it)."""
    while isinstance(obj, functools.partial):
        obj = obj.func
    return inspect.iscoroutinefunction(obj) or (
        callable(obj) and inspect.iscoroutinefunction(getattr(obj, "__call__", None))  # noqa: B004
    )


def _wrap_request_response(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def request_response(func: Callable[..., Any]) -> Any:
        if is_async_callable(func):

            async def endpoint(request: Any) -> Any:
                integration = get_client().get_integration(StarletteIntegration)
                if integration is not None:
                    await before_endpoint(integration, request, integration._namer, True)
                return await func(request)

            return original(endpoint)

        @functools.wraps(func)
        def sync_endpoint(request: Any) -> Any:
            integration = get_client().get_integration(StarletteIntegration)
            if integration is not None:
                _update_active_thread()
                _start_request_info(integration, request, integration._namer)
            return func(request)

        return original(sync_endpoint)

    return request_response


def _update_active_thread() -> None:
    """A sync endpoint runs in a worker thread: the transaction says which."""
    try:
        transaction = getattr(get_current_scope()._d.span, "containing_transaction", None)
        if transaction is not None:
            transaction.update_active_thread()
    except Exception:
        pass


class RequestExtras:
    """What the framework layer adds to the request part: cookies and the body."""

    __slots__ = ("data", "form", "request")

    def __init__(self, request: Any) -> None:
        self.request = request
        self.data: Any = None
        self.form: Any = None  # a form parsed here: its files are closed with the request

    async def close(self) -> None:
        """Close the files of a form parsed for the event (the request is over)."""
        form, self.form = self.form, None
        if form is not None:
            try:
                await form.close()
            except Exception:
                pass

    def add_to(self, info: dict[str, Any], event: dict[str, Any], scope: Any, options: Any) -> None:
        """Add the cookies and the body to the event's request part `info`."""
        cookies = _data_collection.request_cookies(self.request.cookies, options)
        if cookies is not None:
            info["cookies"] = cookies
        data = self.data
        if data is not None and (
            not _data_collection.enabled(options)
            or "incoming_request" in options["data_collection"]["http_bodies"]
        ):
            info["data"] = data


def _start_request_info(integration: Any, request: Any, namer: Any) -> Optional[RequestExtras]:
    """Record on the request state how to name it and what to add; never raises."""
    try:
        extras = RequestExtras(request)
        state = request.scope.get(SCOPE_KEY)
        if type(state) is AsgiRequest:
            state.namer = namer
            state.extras = extras
            if state.transaction is not None:
                state.set_name(*namer(request.scope))
                if streamed(state.transaction) is not None:
                    route = integration._http_route(request.scope)
                    if route is not None:
                        state.set_attribute("http.route", route)
        else:
            # The application does not run in the ASGI middleware (FastAPI without the
            # Starlette integration): its scopes are shared by every request, so only
            # the name is set; a processor added per request would pile up (sentry_sdk's
            # does) and give one request's body to another's events.
            name, source = namer(request.scope)
            get_current_scope().set_transaction_name(name, source)
            return None
        return extras
    except Exception:
        return None


async def before_endpoint(integration: Any, request: Any, namer: Any, read_body: bool) -> None:
    """Name the request and, if it has a body, read it for its events."""
    extras = _start_request_info(integration, request, namer)
    if extras is not None and read_body:
        headers = request.scope.get("headers") or ()
        for key, value in headers:
            if key == b"content-length":
                extras.data = await _read_body(request, value, extras)
                break
        if extras.data is not None:  # extras: the request runs in the middleware
            state = request.scope.get(SCOPE_KEY)
            if streamed(getattr(state, "transaction", None)) is not None:
                body = _body_attribute(extras.data)
                if body is not None:
                    state.set_attribute("http.request.body.data", body)


def _body_attribute(data: Any) -> Optional[str]:
    """The body read for events as the streamed segment's ``http.request.body.data``:
    JSON text of the parsed JSON or form (its files as ``[Unparsable]``), or the marker
    of a body too large; nothing for a raw body (as sentry_sdk)."""
    import json

    if isinstance(data, AnnotatedValue):
        if data.metadata.get("rem", [[None]])[0][0] == "!config":
            return "[Exceeds maximum size]"
        return None
    try:
        return json.dumps(
            data,
            default=lambda value: "[Unparsable]" if isinstance(value, AnnotatedValue) else None,
        )
    except Exception:
        return None


def _is_json(content_type: Optional[str]) -> bool:
    mime = (content_type or "").split(";", 1)[0]
    return mime == "application/json" or (
        mime.startswith("application/") and mime.endswith("+json")
    )


def _multipart() -> bool:
    found = _state["multipart"]
    if found is None:
        import importlib.util

        found = _state["multipart"] = any(
            importlib.util.find_spec(name) is not None for name in ("python_multipart", "multipart")
        )
    return bool(found)


async def _read_body(request: Any, raw_length: bytes, extras: RequestExtras) -> Any:
    """The body as sentry_sdk's Starlette integration attaches it (None: nothing).

    Errors reading the stream are the application's own (a client gone, a body over
    a limit) and propagate; a body that does not parse is marked removed.
    """
    try:
        length = int(raw_length)
    except ValueError:
        return None
    if not length:
        return None
    options = get_client().options
    decision = _data_collection.body_decision(options, "incoming_request", length)
    if decision == "off":
        return None
    if decision == "too_large":
        return AnnotatedValue.removed_because_over_size_limit()
    if _is_json(request.headers.get("content-type")):
        await request.body()
        try:
            parsed = await request.json()
        except Exception:
            parsed = None
        if parsed:
            return parsed
    if _multipart():
        await request.body()  # cached first: Starlette does not cache the form's stream
        try:
            form = await request.form()
        except Exception:
            form = None
        extras.form = form
        if form:
            from starlette.datastructures import UploadFile

            return {
                key: AnnotatedValue.removed_because_raw_data()
                if isinstance(value, UploadFile)
                else value
                for key, value in form.items()
            }
    return AnnotatedValue.removed_because_raw_data()


# -- the user ------------------------------------------------------------------------------


def user_from_scope(scope: Any, options: Any) -> Optional[dict[str, Any]]:
    """The user `AuthenticationMiddleware` put in the ASGI scope, if it may be sent."""
    user = scope.get("user")
    if user is None or not may_send_user(options):
        return None
    info: dict[str, Any] = {}
    for key in ("username", "id", "email"):
        value = getattr(user, key, None)
        if value:
            info[key] = value
    return info or None


# -- middleware ------------------------------------------------------------------------------


def _patch_middleware(module: ModuleType) -> None:
    from tripwire.integrations._patch import patch_once

    patch_once(module.Middleware, "__init__", _wrap_middleware_init, _MARK)


def _wrap_middleware_init(original: Callable[..., Any]) -> Callable[..., Any]:
    from tripwire.integrations._patch import patch_once

    @functools.wraps(original)
    def __init__(self: Any, cls: Any, *args: Any, **kwargs: Any) -> None:
        original(self, cls, *args, **kwargs)
        # Only while spans are asked for: otherwise every request would go through one
        # more coroutine per middleware for nothing. Starlette makes the Middleware of
        # its own stack when it serves its first request (after `init()`).
        integration = get_client().get_integration(StarletteIntegration)
        if (
            integration is not None
            and integration.middleware_spans
            and isinstance(cls, type)
            and not issubclass(cls, SentryAsgiMiddleware)
        ):
            try:
                patch_once(cls, "__call__", _wrap_middleware_call, _MARK)
            except Exception:
                pass

    return __init__


def _wrap_middleware_call(original: Callable[..., Any]) -> Callable[..., Any]:
    from tripwire.consts import OP

    @functools.wraps(original)
    async def __call__(self: Any, scope: Any, receive: Any, send: Any, **kwargs: Any) -> Any:
        integration = get_client().get_integration(StarletteIntegration)
        if integration is None or not integration.middleware_spans:
            return await original(self, scope, receive, send, **kwargs)
        current = get_current_scope()
        if current._d.span is None:
            return await original(self, scope, receive, send, **kwargs)
        name = type(self).__name__
        # Under streaming the span starts with ``middleware.name``, as sentry_sdk's.
        with sdk_start_span(
            op=OP.MIDDLEWARE_STARLETTE,
            name=name,
            origin=ORIGIN,
            **child_start({"middleware.name": name}, current._d.span),
        ) as span:
            _name_middleware(span, name)
            if getattr(receive, "__name__", None) != "_tripwire_receive":
                receive = _spanned(
                    receive, OP.MIDDLEWARE_STARLETTE_RECEIVE, name, "_tripwire_receive"
                )
            if getattr(send, "__name__", None) != "_tripwire_send":
                send = _spanned(send, OP.MIDDLEWARE_STARLETTE_SEND, name, "_tripwire_send")
            return await original(self, scope, receive, send, **kwargs)

    return __call__


def _name_middleware(span: Any, name: str) -> None:
    """The middleware's name: a tag, or a streamed span's ``middleware.name``."""
    if streamed(span) is not None:
        span.set_attribute("middleware.name", name)
    else:
        span.set_tag("starlette.middleware_name", name)


def _spanned(call: Callable[..., Any], op: str, middleware: str, marker: str) -> Any:
    description = getattr(call, "__qualname__", None) or str(call)

    async def spanned(*args: Any, **kwargs: Any) -> Any:
        current = get_current_scope()
        with sdk_start_span(
            op=op,
            name=description,
            origin=ORIGIN,
            **child_start({"middleware.name": middleware}, current._d.span),
        ) as span:
            _name_middleware(span, middleware)
            return await call(*args, **kwargs)

    spanned.__name__ = marker
    return spanned


def _patch_exception_middleware(module: ModuleType) -> None:
    from tripwire.integrations._patch import patch_once

    patch_once(module.ExceptionMiddleware, "__init__", _wrap_exception_init, _MARK)


def _wrap_exception_init(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        try:
            handlers = self._exception_handlers
            for key, handler in list(handlers.items()):
                if not getattr(handler, _MARK, False):
                    handlers[key] = _wrap_handler(handler)
        except Exception:
            pass

    return __init__


def _report_http_exception(exc: BaseException) -> None:
    """Report an exception answered by a handler when its status is a failure."""
    client = get_client()
    integration = client.get_integration(StarletteIntegration)
    if integration is None:
        return
    code = getattr(exc, "status_code", None)
    if not isinstance(code, int) or code not in integration.failed_request_status_codes:
        return
    try:
        event, hint = client._event_from_exception(
            (type(exc), exc, exc.__traceback__),
            mechanism={"type": StarletteIntegration.identifier, "handled": True},
        )
        capture_event(get_current_scope(), event, hint, None, {}, built_by_sdk=True)
    except Exception:
        pass


def _wrap_handler(handler: Callable[..., Any]) -> Callable[..., Any]:
    if is_async_callable(handler):

        async def async_handler(conn: Any, exc: BaseException) -> Any:
            _report_http_exception(exc)
            return await handler(conn, exc)

        setattr(async_handler, _MARK, True)
        return async_handler

    def sync_handler(conn: Any, exc: BaseException) -> Any:
        _report_http_exception(exc)
        return handler(conn, exc)

    setattr(sync_handler, _MARK, True)
    return sync_handler


# -- templates -------------------------------------------------------------------------------


def _patch_templates(module: ModuleType) -> None:
    from tripwire.integrations._patch import patch_once

    templates = getattr(module, "Jinja2Templates", None)
    if templates is not None:
        patch_once(templates, "__init__", _wrap_templates_init, _MARK)


def _trace_meta(request: Any) -> dict[str, Any]:
    """The ``sentry_trace_meta`` template variable: the trace's <meta> tags.

    The values are escaped (an incoming ``baggage`` may carry anything), unlike
    sentry_sdk's.
    """
    from markupsafe import Markup

    tag = Markup('<meta name="{}" content="{}">')
    headers = get_current_scope().iter_trace_propagation_headers()
    return {"sentry_trace_meta": Markup("").join(tag.format(k, v) for k, v in headers)}


def _wrap_templates_init(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if get_client().get_integration(StarletteIntegration) is not None:
            processors = list(kwargs.get("context_processors") or ())
            if _trace_meta not in processors:
                processors.append(_trace_meta)
            kwargs["context_processors"] = processors
        original(self, *args, **kwargs)

    return __init__


__all__ = ["StarletteIntegration"]
