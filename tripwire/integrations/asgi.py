"""ASGI: `SentryAsgiMiddleware`, for any ASGI application (and under Starlette/FastAPI).

As sentry_sdk 2.75's ``asgi`` module, for every ``http`` or ``websocket`` connection the
middleware wraps:

- an isolation scope of its own (breadcrumbs cleared), so nothing set while serving one
  request (in its task or the tasks it starts) reaches another's events; a nested
  middleware (a Starlette sub-application, a second wrapper) passes through;
- a request-mode session (when `auto_session_tracking` is on);
- the incoming trace continued (`sentry-trace`/`traceparent`, `baggage`; a header
  sent twice is joined, so the first `sentry-trace` is continued, as sentry_sdk) and,
  with tracing on, an ``http.server`` transaction (for methods in
  `http_methods_to_capture`) or a ``websocket.server`` one, tagged ``asgi.type``, its
  status taken from the ``http.response.start`` message; the sampling context carries
  ``asgi_scope``, and its ``transaction_context`` the ``asgi.type`` tag;
- an `Exception` escaping the application captured unhandled (the middleware's
  `mechanism_type`) and re-raised; ``lifespan`` passes through, its errors captured;
- events get the `request` (method, headers with the sensitive ones filtered, query
  string, url, and with `send_default_pii` the client's IP as ``env.REMOTE_ADDR``) and,
  unless the application named it (component, route or custom source), the transaction
  name per `transaction_style`: the endpoint's qualified name or the route's path when
  the framework put them in the ASGI scope, else the url (never an empty name). The
  request part and the name are built only when an event is sent, from the ASGI scope.

The request's isolation scope carries ``sentry.is_localhost`` and
``user_agent.original`` (onto its logs, metrics and streamed spans), in both modes.
Under span streaming the segment gets sentry_sdk's request attributes instead of the
``asgi.type`` tag: ``network.protocol.name``, ``http.request.method``, the headers
(``http.request.header.<name>``, sensitive ones filtered) and, with `send_default_pii`
or as `data_collection` allows, ``url.path``, ``http.query``, ``url.full`` and
``client.address`` (``user.ip_address`` on the scope); a segment the application did
not name is named when the request ends.

The ASGI version (2: ``app(scope)(receive, send)``, 3: ``app(scope, receive, send)``)
is detected as uvicorn does unless given.
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Container
from functools import partial
from typing import Any, Callable, Optional
from urllib.parse import unquote

from tripwire import _data_collection
from tripwire.integrations._common.unhandled import capture_unhandled
from tripwire.integrations._common.web import (
    DEFAULT_HTTP_METHODS_TO_CAPTURE,
    EVERY_METHOD,
    ServerRequest,
    checked_transaction_style,
    client_ip,
    may_send_user,
    request_scope_attributes,
    streamed,
)
from tripwire.scope._current import get_client
from tripwire.tracing._sampling import has_tracing_enabled
from tripwire.utils import transaction_from_function

_DEFAULT_TRANSACTION_NAME = "generic ASGI request"
TRANSACTION_STYLE_VALUES = ("endpoint", "url")

# Where the request being served keeps its state in the ASGI scope: a nested middleware
# sees it and passes through; the Starlette/FastAPI layers add what they know to it.
SCOPE_KEY = "tripwire.request"

# Names the application chose: the event keeps them (sentry_sdk's rule).
_SET_BY_APP = ("component", "route", "custom")  # a tuple: sources may be str enums
_TRACE_HEADERS = frozenset((b"sentry-trace", b"traceparent", b"baggage"))
# The headers the request's scope attributes read (`sentry.is_localhost`, the user agent
# and the client's address), picked in the same pass as the trace headers.
_SCOPE_HEADERS = frozenset(
    (b"host", b"x-forwarded-host", b"user-agent", b"x-forwarded-for", b"x-real-ip")
)
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def _looks_like_asgi3(app: Any) -> bool:
    """Whether `app` takes ``(scope, receive, send)`` (as uvicorn decides)."""
    if inspect.isclass(app):
        return hasattr(app, "__await__")
    if inspect.isfunction(app):
        return inspect.iscoroutinefunction(app)
    call = getattr(app, "__call__", None)  # noqa: B004 - an object, its __call__ method
    while isinstance(call, partial):
        call = call.func
    return inspect.iscoroutinefunction(call)


class SentryAsgiMiddleware:
    """Wrap an ASGI application: one isolation scope, session and transaction per request.

    Args:
        app: The ASGI application (version 2 or 3).
        unsafe_context_data: Accepted for sentry_sdk compatibility (contextvars always work).
        transaction_style: ``"endpoint"`` (the endpoint's qualified name, source
            ``component``) or ``"url"`` (the route's path, source ``route``); the url
            (source ``url``) when the application sets neither.
        mechanism_type: The mechanism of the errors reported.
        span_origin: The transaction's origin.
        http_methods_to_capture: Methods whose requests get a transaction.
        asgi_version: 2 or 3; detected when None.
        root_path_in_path: ``"excluded"`` (the url is root_path + path) or ``"either"``
            (the path may already start with the root path, as Starlette 0.33+ passes it).

    Raises:
        ValueError: `transaction_style` is not one of the two.
    """

    __slots__ = (
        "__call__",
        "_path_either",
        "_user_from_scope",
        "app",
        "http_methods_to_capture",
        "mechanism_type",
        "span_origin",
        "transaction_style",
    )

    def __init__(
        self,
        app: Any,
        unsafe_context_data: bool = False,
        transaction_style: str = "endpoint",
        mechanism_type: str = "asgi",
        span_origin: str = "manual",
        http_methods_to_capture: tuple[str, ...] = DEFAULT_HTTP_METHODS_TO_CAPTURE,
        asgi_version: Optional[int] = None,
        root_path_in_path: Any = "excluded",
    ) -> None:
        self.app = app
        self.transaction_style = checked_transaction_style(
            transaction_style, TRANSACTION_STYLE_VALUES
        )
        self.mechanism_type = mechanism_type
        self.span_origin = span_origin
        self.http_methods_to_capture = http_methods_to_capture
        # Starlette's: the user its AuthenticationMiddleware put in the ASGI scope.
        self._user_from_scope: Optional[Callable[[Any, Any], Any]] = None
        self._path_either = getattr(root_path_in_path, "value", root_path_in_path) == "either"
        if asgi_version is None:
            asgi_version = 3 if _looks_like_asgi3(app) else 2
        # An instance attribute: servers look at `__call__` to detect the version too.
        self.__call__: Callable[..., Any] = (
            self._run_asgi3 if asgi_version == 3 else self._run_asgi2
        )

    def _run_asgi2(self, scope: Any) -> Callable[..., Any]:
        async def inner(receive: Any, send: Any) -> Any:
            return await self._serve(self.app, scope, receive, send, False)

        return inner

    async def _run_asgi3(self, scope: Any, receive: Any, send: Any) -> Any:
        return await self._serve(self.app, scope, receive, send, True)

    async def _serve(self, app: Any, scope: Any, receive: Any, send: Any, asgi3: bool) -> Any:
        """Serve one connection through `app` (which takes the ASGI 3 or 2 call)."""
        kind = scope["type"]
        client = get_client()
        if kind == "lifespan" or SCOPE_KEY in scope or not client.is_active():
            try:
                if asgi3:
                    return await app(scope, receive, send)
                return await app(scope)(receive, send)
            except Exception:
                if kind == "lifespan" and client.is_active():
                    capture_unhandled(client, sys.exc_info(), self.mechanism_type)
                raise
        request = AsgiRequest(client, self, scope)
        scope[SCOPE_KEY] = request
        # A header sent twice is joined (as the event's headers): of two `sentry-trace`
        # the first is continued (as sentry_sdk), two baggages add up.
        trace_headers: dict[str, str] = {}
        found: dict[str, str] = {}
        for key, value in scope.get("headers") or ():
            if key in _TRACE_HEADERS:
                into = trace_headers
            elif key in _SCOPE_HEADERS:
                into = found
            else:
                continue
            name = key.decode("latin-1")
            text = value.decode("latin-1")
            into[name] = into[name] + ", " + text if name in into else text
        if kind == "http":
            method = scope.get("method", "").upper()
            methods: Container[str] = self.http_methods_to_capture
            op = "http.server"
        else:
            method = ""
            methods = EVERY_METHOD
            op = "websocket.server" if kind == "websocket" else "http.server"
            if kind != "websocket":
                trace_headers = {}  # sentry_sdk starts a new trace for other types
        sampling_context = None
        if has_tracing_enabled(client.options) and method in methods:
            name, source = self._name_and_source(scope)
            sampling_context = {"asgi_scope": scope}
        else:  # named when an event is sent (`process`)
            name, source = _DEFAULT_TRANSACTION_NAME, "route"
        request.start(
            trace_headers,
            request.process,
            method=method,
            name=name,
            source=source,
            origin=self.span_origin,
            op=op,
            methods_to_capture=methods,
            sampling_context=sampling_context,
            attributes=lambda: self.request_attributes(scope, client.options),
            scope_attributes=lambda: _scope_attributes(scope, found, client.options),
            # The one request attribute sentry_sdk's segment starts with.
            start_attributes=lambda: {"network.protocol.name": kind},
            # On the transaction before it is sampled (`traces_sampler` sees it, as
            # sentry_sdk's); a streamed segment has network.protocol.name instead.
            tags={"asgi.type": kind},
        )
        transaction = request.transaction
        if transaction is not None:
            request._send = send
            send = request.send
        try:
            if asgi3:
                result = await app(scope, receive, send)
            else:
                result = await app(scope)(receive, send)
        except Exception as exc:
            capture_unhandled(client, sys.exc_info(), self.mechanism_type)
            await _end(request, scope, exc)
            raise
        except BaseException as exc:  # cancelled: not an error of the application
            await _end(request, scope, exc)
            raise
        await _end(request, scope, None)
        return result

    # -- naming -------------------------------------------------------------------------

    def _path(self, scope: Any) -> str:
        path: str = scope.get("path", "")
        root: str = scope.get("root_path", "")
        if not root:
            return path
        if self._path_either and (path == root or path.startswith(root + "/")):
            return path
        return root + path

    def _url(self, scope: Any, host: Optional[str]) -> str:
        """The request's url without its query string."""
        kind = scope.get("type")
        scheme = scope.get("scheme", "http" if kind == "http" else "ws")
        path = self._path(scope)
        if host:
            return f"{scheme}://{host}{path}"
        server = scope.get("server")
        if server is not None:
            server_host, port = server[0], server[1]
            if port != _DEFAULT_PORTS.get(scheme):
                return f"{scheme}://{server_host}:{port}{path}"
            return f"{scheme}://{server_host}{path}"
        return path

    def _name_and_source(self, scope: Any) -> tuple[str, str]:
        """The name sentry_sdk's ASGI middleware gives: endpoint or route, else the url."""
        if self.transaction_style == "endpoint":
            endpoint = scope.get("endpoint")
            # An endpoint without a name (an application instance, as the `Router` of
            # a `Mount` none of whose routes matched) leaves the url: never "".
            name = transaction_from_function(endpoint) if endpoint else None
            if name:
                return name, "component"
        else:
            route = scope.get("route")
            if route:
                path = route_path(scope, route)
                if not path:
                    return _DEFAULT_TRANSACTION_NAME, "route"
                return path, "route"
        return self._url(scope, None), "url"

    # -- the request's attributes and the event's request -----------------------------

    def request_attributes(self, scope: Any, options: Any) -> dict[str, Any]:
        """The streamed segment's request attributes (sentry_sdk's names and rules):
        method, headers (sensitive ones filtered), and with `send_default_pii` (or as
        `data_collection` allows) the path, query, full url and client's address."""
        kind = scope.get("type")
        out: dict[str, Any] = {"network.protocol.name": kind}
        headers: dict[str, str] = {}
        if kind in ("http", "websocket"):
            method = scope.get("method")
            if method:
                out["http.request.method"] = method.upper()
            for raw_key, raw_value in scope.get("headers") or ():
                key = raw_key.decode("latin-1")
                value = raw_value.decode("latin-1")
                headers[key] = headers[key] + ", " + value if key in headers else value
            for key, value in _data_collection.request_headers(headers, options).items():
                out["http.request.header." + key.lower()] = value
            raw_query = scope.get("query_string")
            query = unquote(raw_query.decode("latin-1")) if raw_query else None
            collection = _data_collection.enabled(options)
            if collection or options.get("send_default_pii"):
                if collection:
                    query = _data_collection.request_query(query, options) if query else None
                if query:
                    out["http.query"] = query
                out["url.path"] = self._path(scope)
                url = self._url(scope, headers.get("host"))
                out["url.full"] = f"{url}?{query}" if query is not None else url
        peer = scope.get("client")
        if peer and may_send_user(options):
            out["client.address"] = client_ip(headers, peer[0])
        return out

    def request_data(self, scope: Any, options: Any) -> dict[str, Any]:
        """The event's ``request`` from the ASGI scope, as the options allow."""
        out: dict[str, Any] = {}
        kind = scope.get("type")
        headers: dict[str, str] = {}
        if kind in ("http", "websocket"):
            out["method"] = scope.get("method")
            for raw_key, raw_value in scope.get("headers") or ():
                key = raw_key.decode("latin-1")
                value = raw_value.decode("latin-1")
                headers[key] = headers[key] + ", " + value if key in headers else value
            out["headers"] = _data_collection.request_headers(headers, options)
            raw_query = scope.get("query_string")
            query = unquote(raw_query.decode("latin-1")) if raw_query else None
            if _data_collection.enabled(options):
                kept = _data_collection.request_query(query, options) if query else None
                if kept:
                    out["query_string"] = kept
            else:
                out["query_string"] = query
            out["url"] = self._url(scope, headers.get("host"))
        peer = scope.get("client")
        if peer and may_send_user(options):
            out["env"] = {"REMOTE_ADDR": client_ip(headers, peer[0])}
        return out


def _scope_attributes(scope: Any, headers: dict[str, str], options: Any) -> dict[str, Any]:
    peer = scope.get("client")
    host = headers.get("host")
    server = scope.get("server")
    return request_scope_attributes(
        options,
        client_address=client_ip(headers, peer[0] if peer else None),
        host=host,
        forwarded_host=headers.get("x-forwarded-host"),
        user_agent=headers.get("user-agent"),
        url_host=server[0] if server and not host else None,
    )


def _rename_segment(request: AsgiRequest, scope: Any) -> None:
    """Under span streaming, a segment the application did not name is named at its end
    (as sentry_sdk: the framework may have put the endpoint or route in the scope)."""
    segment = streamed(request.transaction)
    if segment is None:
        return
    try:
        source = segment.get_attributes().get("sentry.segment.name.source")
        if segment.name == _DEFAULT_TRANSACTION_NAME or source not in _SET_BY_APP:
            name, source = request.middleware._name_and_source(scope)
            segment.name = name
            segment.set_attribute("sentry.segment.name.source", source)
    except Exception:
        pass


async def _end(request: AsgiRequest, scope: Any, exc: Optional[BaseException]) -> None:
    _rename_segment(request, scope)
    request.finish(exc)
    extras = request.extras
    if extras is not None:
        await extras.close()
    scope.pop(SCOPE_KEY, None)  # no reference cycle left for the collector


def route_path(scope: Any, route: Any) -> Optional[str]:
    """The route's path template, after the path templates of the mounts it is in.

    Starlette keeps the innermost route in ``scope["route"]``: a route, or the `Mount`
    itself when none of the mount's routes matched (a 404 under it), whose path is
    then the last of the mounts' (not added twice).
    """
    path = getattr(route, "path", None)
    if path is None:
        return None
    prefix = mount_prefix(scope)
    if prefix and _is_mount(scope, route):
        return prefix
    return prefix + str(path)


def mount_prefix(scope: Any) -> str:
    """The path templates of the mounts the request went through ("" for none).

    Recorded as each `Mount` handles the request (the Starlette integration's patch);
    without that record (an application served outside the middleware), the part of
    ``root_path`` the mounts added beyond ``app_root_path``, as the request's url has
    it (a mount's path parameters by their values).
    """
    state = scope.get(SCOPE_KEY)
    if type(state) is AsgiRequest and state.mount is not None:
        return state.mount[1]
    root = scope.get("root_path") or ""
    if root:
        top = scope.get("app_root_path")
        if top is not None and len(root) > len(top) and root.startswith(top):
            return str(root[len(top) :])
    return ""


def record_mount(scope: Any, mount: Any) -> None:
    """`mount` (a Starlette `Mount`) handles the request: its path follows the others."""
    state = scope.get(SCOPE_KEY)
    if type(state) is AsgiRequest:
        outer = state.mount
        state.mount = (mount, (outer[1] if outer is not None else "") + str(mount.path))


def _is_mount(scope: Any, route: Any) -> bool:
    state = scope.get(SCOPE_KEY)
    if type(state) is AsgiRequest and state.mount is not None and state.mount[0] is route:
        return True
    routing = sys.modules.get("starlette.routing")
    mount = getattr(routing, "Mount", None)
    return mount is not None and isinstance(route, mount)


class AsgiRequest(ServerRequest):
    """One ASGI connection's request state; its `process` is the event processor.

    Framework layers (Starlette, FastAPI) record on it how to name the events
    (`namer`), what else goes into the request part (`extras`) and the mounts the
    request went through (`mount`).
    """

    __slots__ = ("_send", "asgi_scope", "extras", "middleware", "mount", "namer")

    def __init__(self, client: Any, middleware: SentryAsgiMiddleware, asgi_scope: Any) -> None:
        super().__init__(client)
        self.middleware = middleware
        self.asgi_scope = asgi_scope
        self.namer: Any = None
        self.extras: Any = None
        # The innermost `Mount` the request went through, after the path templates of
        # all of them (`record_mount`).
        self.mount: Optional[tuple[Any, str]] = None
        self._send: Any = None

    async def send(self, message: Any) -> Any:
        """The application's `send`: the response's status goes onto the transaction."""
        if message.get("type") == "http.response.start" and "status" in message:
            try:
                self.set_status(message["status"])
            except Exception:
                pass
        return await self._send(message)

    def name_and_source(self) -> tuple[str, str]:
        """The name the framework layer (else the middleware) gives the request."""
        namer = self.namer
        if namer is not None:
            result: tuple[str, str] = namer(self.asgi_scope)
            return result
        return self.middleware._name_and_source(self.asgi_scope)

    def process(self, event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        """Add the request part, and the transaction name unless the application set one."""
        try:
            options = self.client.options
            scope = self.asgi_scope
            info = dict(event.get("request") or ())
            info.update(self.middleware.request_data(scope, options))
            extras = self.extras
            if extras is not None:
                extras.add_to(info, event, scope, options)
            event["request"] = info
            user_from_scope = self.middleware._user_from_scope
            if user_from_scope is not None and not event.get("user"):
                user = user_from_scope(scope, options)
                if user:
                    event["user"] = user
            name = event.get("transaction")
            source = (event.get("transaction_info") or {}).get("source")
            if name is None or name == _DEFAULT_TRANSACTION_NAME or source not in _SET_BY_APP:
                name, source = self.name_and_source()
                event["transaction"] = name
                event["transaction_info"] = {"source": source}
        except Exception:  # the event goes out without what could not be added
            pass
        return event


__all__ = ["TRANSACTION_STYLE_VALUES", "SentryAsgiMiddleware"]
