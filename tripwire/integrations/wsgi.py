"""WSGI: `SentryWsgiMiddleware`, for any WSGI application.

As sentry_sdk 2.75's ``wsgi`` module, for every request the middleware wraps:

- an isolation scope of its own (breadcrumbs cleared), kept active while the server
  iterates and closes the response, so nothing set while serving one request reaches
  another's events; a nested middleware (Flask inside a wrapped WSGI stack) does
  nothing a second time;
- a request-mode session (when `auto_session_tracking` is on);
- the incoming trace continued (`sentry-trace`/`traceparent`, `baggage`) and, with
  tracing on and the method in `http_methods_to_capture`, an ``http.server``
  transaction "generic WSGI request" (source ``route``) whose status comes from the
  response's status line; the sampling context carries ``wsgi_environ``;
- an exception escaping the application, or raised while the response is iterated or
  closed, captured unhandled (mechanism ``wsgi``; `SystemExit` with code 0 or None is
  not an error) and re-raised;
- events get the `request` (url, method, query string, ``SERVER_NAME``/``SERVER_PORT``
  in `env`, headers with the sensitive ones removed) and, with `send_default_pii`,
  the user's IP address (``X-Forwarded-For``, ``X-Real-Ip``, else ``REMOTE_ADDR``).
  The request part is built only when an event is sent, from a copy of the environ
  taken when the request arrived: what the application changes later (Django's
  decoded ``PATH_INFO`` and ``FORCE_SCRIPT_NAME``, werkzeug's ``ProxyFix``) is not
  reported, as sentry_sdk reports the request as it arrived;
- the request's scope carries ``sentry.is_localhost`` and ``user_agent.original``
  (its logs and metrics show them, streaming or not) and, under span streaming,
  ``user.ip_address`` as the options allow; a streamed segment gets the request's
  attributes (method, headers, scheme, port; path, query, full URL and client's
  address as the options allow), built only under streaming.

A response that is a file (``wsgi.file_wrapper`` in the environ and a ``fileno``) is
returned as it is, so servers can send it with ``sendfile``/uWSGI offloading.
"""

from __future__ import annotations

import sys
from contextvars import ContextVar
from typing import Any, Callable, Optional

from tripwire import _data_collection
from tripwire.integrations._common.unhandled import capture_unhandled
from tripwire.integrations._common.web import (
    DEFAULT_HTTP_METHODS_TO_CAPTURE,
    ServerRequest,
    attach_request,
    may_send_user,
    request_part,
    request_scope_attributes,
)
from tripwire.scope._current import _isolation_scope, get_client, get_isolation_scope

_DEFAULT_TRANSACTION_NAME = "generic WSGI request"
_MECHANISM = "wsgi"

# The request processor of the request being served in this context (None outside a
# request): a nested middleware passes through, and Flask's signals find the request.
_wsgi_middleware_applied: ContextVar[Any] = ContextVar(
    "tripwire_wsgi_middleware_applied", default=None
)

_TRACE_KEYS = (
    ("HTTP_SENTRY_TRACE", "sentry-trace"),
    ("HTTP_BAGGAGE", "baggage"),
    ("HTTP_TRACEPARENT", "traceparent"),
)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Any]


def wsgi_decoding_dance(s: str, charset: str = "utf-8", errors: str = "replace") -> str:
    """A WSGI "bytes as latin-1" string decoded as `charset`.

    A string that is not latin-1 was decoded already (a server or framework that put
    text in the environ): it is returned as it is, not an error.
    """
    try:
        raw = s.encode("latin1")
    except UnicodeEncodeError:
        return s
    return raw.decode(charset, errors)


def _strip_default_port(host: str, scheme: Optional[str]) -> str:
    if scheme == "http" and host.endswith(":80"):
        return host[:-3]
    if scheme == "https" and host.endswith(":443"):
        return host[:-4]
    return host


def get_host(environ: dict[str, Any], use_x_forwarded_for: bool = False) -> str:
    """The request's host (with a port only when not the scheme's default)."""
    scheme = environ.get("wsgi.url_scheme")
    if use_x_forwarded_for:
        scheme = environ.get("HTTP_X_FORWARDED_PROTO", scheme)
        forwarded = environ.get("HTTP_X_FORWARDED_HOST")
        if forwarded is not None:
            return _strip_default_port(forwarded, scheme)
    host = environ.get("HTTP_HOST")
    if host:
        return _strip_default_port(host, scheme)
    name = environ.get("SERVER_NAME")
    if not name:
        return "unknown"
    port = environ.get("SERVER_PORT")
    if (environ.get("wsgi.url_scheme"), port) in (("https", "443"), ("http", "80")):
        return str(name)
    return f"{name}:{port}"


def get_request_url(environ: dict[str, Any], use_x_forwarded_for: bool = False) -> str:
    """The absolute URL of the request, without its query string."""
    script_name = environ.get("SCRIPT_NAME", "").rstrip("/")
    path_info = environ.get("PATH_INFO", "").lstrip("/")
    scheme = environ.get("wsgi.url_scheme")
    if use_x_forwarded_for:
        scheme = environ.get("HTTP_X_FORWARDED_PROTO", scheme)
    path = wsgi_decoding_dance(f"{script_name}/{path_info}").lstrip("/")
    return f"{scheme}://{get_host(environ, use_x_forwarded_for)}/{path}"


def get_client_ip(environ: dict[str, Any]) -> Optional[Any]:
    """The client's address as the headers tell it (forgeable: not for security)."""
    forwarded = environ.get("HTTP_X_FORWARDED_FOR")
    if forwarded is not None:
        return forwarded.split(",")[0].strip()
    real = environ.get("HTTP_X_REAL_IP")
    if real is not None:
        return real
    return environ.get("REMOTE_ADDR")


def _get_headers(environ: dict[str, Any]) -> dict[str, Any]:
    """The HTTP headers of the environ, named as sent ("User-Agent")."""
    out = {}
    for key, value in environ.items():
        key = str(key)
        if key.startswith("HTTP_"):
            if key not in ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH"):
                out[key[5:].replace("_", "-").title()] = value
        elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            out[key.replace("_", "-").title()] = value
    return out


def _get_environ(
    environ: dict[str, Any], options: Optional[dict[str, Any]] = None
) -> dict[str, Any]:
    """The environ keys an event carries: the server's name and port, the peer with PII."""
    if options is None:
        options = get_client().options
    keys: tuple[str, ...] = ("SERVER_NAME", "SERVER_PORT")
    if may_send_user(options):
        keys += ("REMOTE_ADDR",)
    return {key: environ[key] for key in keys if key in environ}


class WsgiRequestProcessor:
    """The event processor of one request: adds the `request` part (and the IP).

    Made when the request arrives, it keeps a shallow copy of the environ then
    (`arrived`: a dict copy, the cheapest snapshot) and builds the request part from
    it only for events sent, so the request is reported as it arrived whatever the
    application does to the environ meanwhile (as sentry_sdk, which builds the part
    up front). `environ` is the live one, for a framework's cookies and body.
    """

    __slots__ = ("arrived", "environ", "use_x_forwarded_for")

    def __init__(self, environ: dict[str, Any], use_x_forwarded_for: bool) -> None:
        self.environ = environ
        self.arrived = dict(environ)
        self.use_x_forwarded_for = use_x_forwarded_for

    def inside(self, outer: WsgiRequestProcessor) -> None:
        """Report the request as `outer` (the processor of the middleware this
        framework's app runs in) saw it arrive, under that middleware's options."""
        self.arrived = outer.arrived
        self.use_x_forwarded_for = outer.use_x_forwarded_for

    def __call__(self, event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        try:
            self.apply(event, get_client().options)
        except Exception:  # a request part we cannot build must not cost the event
            pass
        return event

    def apply(self, event: dict[str, Any], options: dict[str, Any]) -> None:
        """Fill the event's `request` (and `user.ip_address` with PII) from the environ
        as the request arrived."""
        environ = self.arrived
        if may_send_user(options):
            ip = get_client_ip(environ)
            user = event.get("user")
            if user is None:
                user = event["user"] = {}
            if ip:
                user.setdefault("ip_address", ip)
        part = request_part(
            options,
            method=environ.get("REQUEST_METHOD", ""),
            url=get_request_url(environ, self.use_x_forwarded_for),
            query_string=environ.get("QUERY_STRING"),
            headers=_get_headers(environ),
            env=_get_environ(environ, options),
            cookies=self.cookies(),
        )
        self.add_body(part, options)
        attach_request(event, part)

    def cookies(self) -> Optional[dict[str, Any]]:
        """The request's cookies, for a framework that parses them (None: not known)."""
        return None

    def add_body(self, part: dict[str, Any], options: dict[str, Any]) -> None:
        """Add the request body to `part`, for a framework that reads it."""


def _make_wsgi_event_processor(
    environ: dict[str, Any], use_x_forwarded_for: bool
) -> WsgiRequestProcessor:
    """The event processor for a request (sentry_sdk's name)."""
    return WsgiRequestProcessor(environ, use_x_forwarded_for)


class _StatusRecorder:
    """`start_response` that also gives the status to the request's transaction."""

    __slots__ = ("start_response", "transaction")

    def __init__(self, start_response: Callable[..., Any], transaction: Any) -> None:
        self.start_response = start_response
        self.transaction = transaction

    def __call__(self, status: str, headers: Any, exc_info: Any = None) -> Any:
        try:
            self.transaction.set_http_status(int(status.split(" ", 1)[0]))
        except Exception:
            pass
        if exc_info is None:
            # Some servers' start_response (test clients) take no third argument.
            return self.start_response(status, headers)
        return self.start_response(status, headers, exc_info)


def _capture_exception(exc: Optional[BaseException] = None) -> Any:
    """Capture the exception being handled (or `exc`) as unhandled; returns its exc_info.

    `SystemExit` with code 0 or None is a normal end, not captured.
    """
    exc_info: Any = sys.exc_info() if exc is None else (type(exc), exc, exc.__traceback__)
    value = exc_info[1]
    if not (isinstance(value, SystemExit) and value.code in (0, None)):
        capture_unhandled(get_client(), exc_info, _MECHANISM)
    return exc_info


def _trace_headers(environ: dict[str, Any]) -> Optional[dict[str, Any]]:
    """The trace headers of the request (None without any): no scan of the environ."""
    found = None
    for key, name in _TRACE_KEYS:
        value = environ.get(key)
        if value is not None:
            if found is None:
                found = {}
            found[name] = value
    return found


def request_attributes(
    environ: dict[str, Any], options: dict[str, Any], use_x_forwarded_for: bool = False
) -> dict[str, Any]:
    """A streamed segment's request attributes from the environ (sentry_sdk's names and
    rules): method, headers (sensitive ones filtered), scheme and port; with
    `send_default_pii` (or as `data_collection` allows) path, query, full URL and the
    client's address."""
    out: dict[str, Any] = {}
    method = environ.get("REQUEST_METHOD")
    if method:
        out["http.request.method"] = method.upper()
    for key, value in _data_collection.request_headers(_get_headers(environ), options).items():
        out["http.request.header." + key.lower()] = value
    scheme = environ.get("wsgi.url_scheme")
    if scheme:
        out["network.protocol.name"] = scheme
    port = environ.get("SERVER_PORT")
    if port:
        try:
            out["server.port"] = int(port)
        except ValueError:
            pass
    collection = _data_collection.enabled(options)
    if collection or options.get("send_default_pii"):
        query = environ.get("QUERY_STRING") or None
        if collection and query:
            query = _data_collection.request_query(query, options)
        if query:
            out["http.query"] = query
        path = environ.get("PATH_INFO")
        if path:
            out["url.path"] = path
        url = get_request_url(environ, use_x_forwarded_for)
        out["url.full"] = f"{url}?{query}" if query else url
        if may_send_user(options):
            ip = get_client_ip(environ)
            if ip:
                out["client.address"] = ip
    return out


def scope_attributes(
    environ: dict[str, Any], options: dict[str, Any], captured: bool
) -> dict[str, Any]:
    """What the request's logs, metrics and streamed spans carry: whether it is local and
    its user agent (in both modes, as sentry_sdk), and under span streaming, for a
    `captured` method, the client's address as the options allow."""
    host = environ.get("HTTP_HOST")
    return request_scope_attributes(
        options,
        client_address=get_client_ip(environ),
        host=host,
        forwarded_host=environ.get("HTTP_X_FORWARDED_HOST"),
        user_agent=environ.get("HTTP_USER_AGENT"),
        url_host=environ.get("SERVER_NAME") if not host else None,
        with_user=captured,
    )


def serve(
    app: WsgiApp,
    environ: dict[str, Any],
    start_response: Callable[..., Any],
    processor: WsgiRequestProcessor,
    origin: str,
    methods: Any,
) -> Any:
    """Run one request through `app` inside its own scopes (the middleware's body).

    The caller has checked that no middleware is applied yet in this context.
    """
    client = get_client()
    request = ServerRequest(client)
    method = environ.get("REQUEST_METHOD", "").upper()
    options = client.options
    forwarded = processor.use_x_forwarded_for
    token = _wsgi_middleware_applied.set(processor)
    try:
        request.start(
            _trace_headers(environ),
            processor,
            method=method,
            name=_DEFAULT_TRANSACTION_NAME,
            source="route",
            origin=origin,
            methods_to_capture=methods,
            sampling_context={"wsgi_environ": environ},
            attributes=lambda: request_attributes(environ, options, forwarded),
            scope_attributes=lambda: scope_attributes(environ, options, method in methods),
        )
        transaction = request.transaction
        if transaction is not None:
            start_response = _StatusRecorder(start_response, transaction)
        try:
            response = app(environ, start_response)
        except BaseException as exc:
            _capture_exception(exc)
            request.finish(exc)
            raise
        request.finish()
    finally:
        _wsgi_middleware_applied.reset(token)
    if (
        environ.get("wsgi.file_wrapper") is not None
        and getattr(response, "fileno", None) is not None
    ):
        return response
    return _ScopedResponse(request.isolation_scope, response)


def serve_framework(
    app: WsgiApp,
    environ: dict[str, Any],
    start_response: Callable[..., Any],
    processor: WsgiRequestProcessor,
    origin: str,
) -> Any:
    """A WSGI framework's entry point (Bottle, Falcon, Pyramid): its request served
    in scopes of its own, or, inside a user's SentryWsgiMiddleware, the framework's
    part of the request added to that request's scope. An app of the same framework
    inside another adds nothing. The methods that get a transaction are the default
    ones (sentry_sdk has no option for these frameworks)."""
    applied = _wsgi_middleware_applied.get()
    if applied is None:
        return serve(
            app, environ, start_response, processor, origin, DEFAULT_HTTP_METHODS_TO_CAPTURE
        )
    if not isinstance(applied, type(processor)):
        try:
            processor.inside(applied)
            get_isolation_scope().add_event_processor(processor)
        except Exception:
            pass
    return app(environ, start_response)


class SentryWsgiMiddleware:
    """Wrap a WSGI application: one isolation scope, session and transaction per request.

    Args:
        app: The WSGI application.
        use_x_forwarded_for: Take the URL's scheme and host from ``X-Forwarded-Proto``
            and ``X-Forwarded-Host`` (behind a proxy you trust).
        span_origin: The transaction's ``origin``.
        http_methods_to_capture: The methods whose requests get a transaction.
    """

    __slots__ = ("app", "http_methods_to_capture", "span_origin", "use_x_forwarded_for")

    def __init__(
        self,
        app: WsgiApp,
        use_x_forwarded_for: bool = False,
        span_origin: str = "manual",
        http_methods_to_capture: tuple[str, ...] = DEFAULT_HTTP_METHODS_TO_CAPTURE,
    ) -> None:
        self.app = app
        self.use_x_forwarded_for = use_x_forwarded_for
        self.span_origin = span_origin
        self.http_methods_to_capture = http_methods_to_capture

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if _wsgi_middleware_applied.get() is not None:
            return self.app(environ, start_response)
        return serve(
            self.app,
            environ,
            start_response,
            WsgiRequestProcessor(environ, self.use_x_forwarded_for),
            self.span_origin,
            self.http_methods_to_capture,
        )


class _ScopedResponse:
    """The application's response iterable, iterated and closed in the request's scope.

    The isolation scope is set around each `next()` and around `close()` (servers may
    iterate from another thread, interleave responses, or never call close); an error
    raised there is captured and re-raised.
    """

    __slots__ = ("_response", "_scope")

    def __init__(self, scope: Any, response: Any) -> None:
        self._scope = scope
        self._response = response

    def __iter__(self) -> Any:
        iterator = iter(self._response)
        scope = self._scope
        while True:
            token = _isolation_scope.set(scope)
            try:
                chunk = next(iterator)
            except StopIteration:
                break
            except BaseException as exc:
                _capture_exception(exc)
                raise
            finally:
                _isolation_scope.reset(token)
            yield chunk

    def close(self) -> None:
        """Close the application's response (if it can be), in the request's scope."""
        close = getattr(self._response, "close", None)
        if close is None:
            return
        token = _isolation_scope.set(self._scope)
        try:
            close()
        except BaseException as exc:
            _capture_exception(exc)
            raise
        finally:
            _isolation_scope.reset(token)


__all__ = ["SentryWsgiMiddleware", "get_client_ip", "get_request_url"]
