"""Litestar integration: `Litestar` applications, through the ASGI middleware.

As sentry_sdk 2.75's ``litestar`` integration. Patched when Litestar's modules are
imported (never at `init()`); an application built while the integration is active:

- gets `SentryAsgiMiddleware`'s request handling as its outermost middleware (origin
  ``auto.http.litestar``): one isolation scope, session and ``http.server``
  transaction per routed request, status from the response. Litestar runs its
  middleware per route, so an unrouted request (a 404) has none (as sentry_sdk);
- gets an ``after_exception`` hook that reports the exceptions Litestar turns into
  responses (mechanism ``litestar``, unhandled), except an `HTTPException` whose
  status is not in `failed_request_status_codes` (default 500-599); with
  `send_default_pii` the user Litestar put in the ASGI scope (a dict, an object
  with ``asdict()``, a pydantic model) becomes the request's user;
- names the request's events and transaction after the route handler: its ``name``
  if it has one, else the handler function's qualified name (source ``component``);
- adds to the request part ``content_length``, the cookies (with `send_default_pii`)
  and the body: JSON or a form (files marked removed), a raw body marked removed,
  bounded by `max_request_body_size` and `data_collection`. It is read before the
  handler (Litestar caches it for the handler) only when the request has one;
- with a transaction, a ``middleware.litestar`` span per middleware of the route
  (and ``.receive`` / ``.send`` spans for their calls), tagged
  ``litestar.middleware_name``.

The ``litestar`` logger is ignored by the logging integration (the hook reports the
errors Litestar logs).

Differences from sentry_sdk: a handler run in a thread (``sync_to_thread``) is named
after its function (sentry_sdk: ``generic Litestar request``); ``content_length`` is
the body's length (sentry_sdk 2.75 sends 0 with Litestar 2); the body obeys
`max_request_body_size` and a raw one is marked removed (sentry_sdk sends it); a
middleware made by a factory function or Litestar's `ASGIMiddleware` gets its span
too; an exception escaping the route after its response started is reported by the
ASGI middleware (mechanism ``asgi``; sentry_sdk drops it).

`StarliteIntegration` (`tripwire.integrations.starlite`) runs on the same code with
Starlite's names (`Framework`).
"""

from __future__ import annotations

import functools
from collections.abc import Set
from types import FunctionType, ModuleType
from typing import Any, Callable, Optional

from tripwire import _data_collection
from tripwire.integrations import (
    _DEFAULT_FAILED_REQUEST_STATUS_CODES,
    DidNotEnable,
    Integration,
)
from tripwire.integrations._common._hooks import when_imported
from tripwire.integrations._common.start_attributes import child_start
from tripwire.integrations._common.unhandled import capture_unhandled
from tripwire.integrations._common.web import may_send_user, streamed
from tripwire.integrations.asgi import SCOPE_KEY, AsgiRequest, SentryAsgiMiddleware
from tripwire.scope._current import get_client, get_current_scope, get_isolation_scope
from tripwire.tracing._api import sdk_start_span
from tripwire.utils import AnnotatedValue, transaction_from_function


class Framework:
    """What differs between Litestar and Starlite: names, and how errors are filtered.

    `http_exception` is the framework's `HTTPException` class once imported (None:
    every exception the hook sees is reported, as sentry_sdk's Starlite integration).
    """

    __slots__ = (
        "default_name",
        "http_exception",
        "integration",
        "mark",
        "name_at_start",
        "package",
    )

    def __init__(
        self, package: str, integration: type[Integration], *, name_at_start: bool = False
    ) -> None:
        self.package = package
        # Under streaming, sentry_sdk's Starlite middleware spans start with their
        # ``middleware.name`` (`ignore_spans` sees it); Litestar's get it later.
        self.name_at_start = name_at_start
        self.integration = integration
        self.default_name = f"generic {package.capitalize()} request"
        self.mark = f"__tripwire_{package}__"
        self.http_exception: Optional[type[BaseException]] = None

    def require(self) -> None:
        """Check that the framework is installed (without importing it).

        Raises:
            DidNotEnable: The framework is not installed.
        """
        import importlib.util

        if importlib.util.find_spec(self.package) is None:
            raise DidNotEnable(f"{self.package.capitalize()} is not installed")

    def setup(self) -> None:
        """Patch the framework's modules once they are imported."""
        package = self.package
        when_imported(f"{package}.app", self._patch_app)
        when_imported(f"{package}.handlers.base", self._patch_handlers)
        when_imported(f"{package}.routes.http", self._patch_routes)

    def active(self) -> Any:
        """The active client's integration (None when it has none)."""
        return get_client().get_integration(self.integration)

    # -- the application ---------------------------------------------------------------

    def _patch_app(self, module: ModuleType) -> None:
        from tripwire.integrations._patch import patch_once

        app_class = getattr(module, "Litestar" if self.package == "litestar" else "Starlite")
        patch_once(app_class, "__init__", self._wrap_app_init, self.mark)

    def _wrap_app_init(self, original: Callable[..., Any]) -> Callable[..., Any]:
        framework = self

        @functools.wraps(original)
        def __init__(app: Any, *args: Any, **kwargs: Any) -> None:
            integration = framework.active()
            if integration is not None:
                hooks = kwargs.get("after_exception") or []
                if not isinstance(hooks, (list, tuple)):
                    hooks = [hooks]
                kwargs["after_exception"] = [framework.after_exception, *hooks]
                middleware = kwargs.get("middleware") or []
                kwargs["middleware"] = [RequestMiddleware.factory(framework), *middleware]
            original(app, *args, **kwargs)

        return __init__

    async def after_exception(self, exc: BaseException, scope: Any, *rest: Any) -> None:
        """The application's ``after_exception`` hook: report what Litestar handled."""
        client = get_client()
        integration = client.get_integration(self.integration)
        if integration is None:
            return
        try:
            if may_send_user(client.options):
                user = user_from_scope(scope)
                if user:
                    get_isolation_scope().set_user(user)
            http_exception = self.http_exception
            if (
                http_exception is not None
                and isinstance(exc, http_exception)
                and getattr(exc, "status_code", None) not in integration.failed_request_status_codes
            ):
                return
        except Exception:
            return
        capture_unhandled(client, (type(exc), exc, exc.__traceback__), self.package)

    # -- middleware spans ------------------------------------------------------------------

    def _patch_handlers(self, module: ModuleType) -> None:
        from tripwire.integrations._patch import patch_once

        patch_once(module.BaseRouteHandler, "resolve_middleware", self._wrap_resolve, self.mark)

    def _wrap_resolve(self, original: Callable[..., Any]) -> Callable[..., Any]:
        framework = self

        @functools.wraps(original)
        def resolve_middleware(handler: Any) -> Any:
            found = original(handler)
            if framework.active() is None:
                return found
            return [
                entry
                if isinstance(entry, (RequestMiddleware, SpannedMiddleware))
                or getattr(entry, "_tripwire_request_middleware", False)
                else SpannedMiddleware(framework, entry)
                for entry in found
            ]

        return resolve_middleware

    # -- the route ---------------------------------------------------------------------------

    def _patch_routes(self, module: ModuleType) -> None:
        from tripwire.integrations._patch import patch_once

        try:
            exceptions = __import__(f"{self.package}.exceptions", fromlist=["HTTPException"])
            if self.package == "litestar":  # Starlite reports every exception (sentry_sdk)
                self.http_exception = exceptions.HTTPException
        except Exception:
            pass
        patch_once(module.HTTPRoute, "handle", self._wrap_handle, self.mark)

    def _wrap_handle(self, original: Callable[..., Any]) -> Callable[..., Any]:
        framework = self

        @functools.wraps(original)
        async def handle(route: Any, scope: Any, receive: Any, send: Any) -> None:
            if framework.active() is not None:
                await framework.before_handler(scope, receive, send)
            return await original(route, scope, receive, send)  # type: ignore[no-any-return]

        return handle

    async def before_handler(self, scope: Any, receive: Any, send: Any) -> None:
        """Name the request after its handler and read its body for its events."""
        try:
            name, source = self.handler_name(scope.get("route_handler"))
            state = scope.get(SCOPE_KEY)
            if type(state) is not AsgiRequest:
                # Not served by the middleware (an application built before `init()`):
                # its scopes are shared, so only the name is set.
                get_current_scope().set_transaction_name(name, source)
                return
            state.namer = lambda _scope: (name, source)
            state.set_name(name, source)
            request = scope["app"].request_class(scope=scope, receive=receive, send=send)
            extras = RequestExtras(request)
            state.extras = extras
        except Exception:
            return
        length = _content_length(scope)
        if length:
            extras.length = length
            extras.data = await _read_body(request, length)

    def handler_name(self, handler: Any) -> tuple[str, str]:
        """The route handler's name, else its function's qualified name."""
        if handler is None:
            return self.default_name, "route"
        name = getattr(handler, "name", None)
        if name:
            return str(name), "component"
        func = getattr(handler, "fn", None)
        # Starlite's `Ref`, Litestar's `AsyncCallable` (a handler run in a thread).
        for attribute in ("value", "func"):
            inner = getattr(func, attribute, None)
            if callable(inner):
                func = inner
                break
        found = transaction_from_function(func) if func is not None else None
        if not found:
            return self.default_name, "route"
        return found, "component"


class RequestMiddleware:
    """The application's outermost middleware: the ASGI middleware's request handling."""

    __slots__ = ("app", "framework")

    # Litestar builds middleware by calling `factory(app=...)`.
    _tripwire_request_middleware = True

    def __init__(self, framework: Framework, app: Any) -> None:
        self.framework = framework
        self.app = app

    @staticmethod
    def factory(framework: Framework) -> Callable[..., Any]:
        """A middleware entry for the application's list."""

        def make(app: Any) -> RequestMiddleware:
            return RequestMiddleware(framework, app)

        make._tripwire_request_middleware = True  # type: ignore[attr-defined]
        return make

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        integration = self.framework.active()
        if integration is None:
            return await self.app(scope, receive, send)  # type: ignore[no-any-return]
        middleware = integration._asgi or integration.asgi_middleware()
        return await middleware._serve(self.app, scope, receive, send, True)  # type: ignore[no-any-return]


class SpannedMiddleware:
    """A middleware entry whose instances run in a ``middleware.<framework>`` span."""

    __slots__ = ("entry", "framework")

    def __init__(self, framework: Framework, entry: Any) -> None:
        self.framework = framework
        self.entry = entry

    def __call__(self, app: Any) -> Any:
        entry = self.entry
        if hasattr(entry, "__iter__"):  # (factory, kwargs), as Litestar builds it
            factory, kwargs = entry
            built = factory(app=app, **kwargs)
        else:
            built = entry(app=app)
        name = type(built).__name__
        if isinstance(built, FunctionType):  # a factory's closure, Litestar's ASGIMiddleware
            name = getattr(entry, "__name__", None) or type(entry).__name__
        return _SpannedApp(self.framework, built, name)


class _SpannedApp:
    __slots__ = ("app", "framework", "name")

    def __init__(self, framework: Framework, app: Any, name: str) -> None:
        self.framework = framework
        self.app = app
        self.name = name

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        framework = self.framework
        current = get_current_scope()
        if current._d.span is None or framework.active() is None:
            return await self.app(scope, receive, send)  # type: ignore[no-any-return]
        from tripwire.consts import OP

        package = framework.package
        origin = f"auto.http.{package}"
        op = getattr(OP, f"MIDDLEWARE_{package.upper()}")
        tag = f"{package}.middleware_name"
        name = self.name
        at_start = framework.name_at_start
        with sdk_start_span(
            op=op, name=name, origin=origin, **_start(at_start, name, current._d.span)
        ) as span:
            _name_middleware(span, tag, name)
            if getattr(receive, "__name__", None) != "_tripwire_receive":
                receive = _spanned(
                    receive, f"{op}.receive", origin, tag, name, "_tripwire_receive", at_start
                )
            if getattr(send, "__name__", None) != "_tripwire_send":
                send = _spanned(send, f"{op}.send", origin, tag, name, "_tripwire_send", at_start)
            return await self.app(scope, receive, send)  # type: ignore[no-any-return]


def _name_middleware(span: Any, tag: str, name: str) -> None:
    """The middleware's name: a tag, or a streamed span's ``middleware.name``."""
    if streamed(span) is not None:
        span.set_attribute("middleware.name", name)
    else:
        span.set_tag(tag, name)


def _start(at_start: bool, name: str, parent: Any) -> dict[str, Any]:
    """The ``middleware.name`` a streamed span starts with (Starlite's), else nothing."""
    return child_start({"middleware.name": name}, parent) if at_start else {}


def _spanned(
    call: Callable[..., Any],
    op: str,
    origin: str,
    tag: str,
    middleware: str,
    marker: str,
    at_start: bool = False,
) -> Any:
    description = getattr(call, "__qualname__", None) or str(call)

    async def spanned(*args: Any, **kwargs: Any) -> Any:
        current = get_current_scope()
        if current._d.span is None:
            return await call(*args, **kwargs)
        with sdk_start_span(
            op=op, name=description, origin=origin, **_start(at_start, middleware, current._d.span)
        ) as span:
            _name_middleware(span, tag, middleware)
            return await call(*args, **kwargs)

    spanned.__name__ = marker
    return spanned


# -- the request part ------------------------------------------------------------------------


class RequestExtras:
    """What the framework adds to the event's request: length, cookies and the body."""

    __slots__ = ("data", "length", "request")

    def __init__(self, request: Any) -> None:
        self.request = request
        self.length = 0
        self.data: Any = None

    async def close(self) -> None:
        """Nothing to release (the framework closes the form it parsed)."""

    def add_to(self, info: dict[str, Any], event: dict[str, Any], scope: Any, options: Any) -> None:
        """Add ``content_length``, the cookies and the body to the request part `info`."""
        info["content_length"] = self.length
        try:
            cookies = _data_collection.request_cookies(self.request.cookies, options)
        except Exception:
            cookies = None
        if cookies is not None:
            info["cookies"] = cookies
        data = self.data
        if data is not None and (
            not _data_collection.enabled(options)
            or "incoming_request" in options["data_collection"]["http_bodies"]
        ):
            info["data"] = data


def _content_length(scope: Any) -> int:
    for key, value in scope.get("headers") or ():
        if key == b"content-length":
            try:
                return max(int(value), 0)
            except ValueError:
                return 0
    return 0


async def _read_body(request: Any, length: int) -> Any:
    """The body as the event carries it (None: nothing), read through the framework's
    request, which keeps it for the handler."""
    options = get_client().options
    decision = _data_collection.body_decision(options, "incoming_request", length)
    if decision == "off":
        return None
    if decision == "too_large":
        return AnnotatedValue.removed_because_over_size_limit()
    try:
        content_type = (request.headers.get("content-type") or "").split(";", 1)[0].strip()
        if content_type == "application/json" or (
            content_type.startswith("application/") and content_type.endswith("+json")
        ):
            parsed = await request.json()
            if parsed is not None:
                return parsed
        elif content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
            form = await request.form()
            return {
                key: value if isinstance(value, str) else AnnotatedValue.removed_because_raw_data()
                for key, value in form.items()
            }
        else:
            await request.body()
    except Exception:  # a body that does not parse: the handler will say so
        pass
    return AnnotatedValue.removed_because_raw_data()


def user_from_scope(scope: Any) -> Optional[dict[str, Any]]:
    """The user the framework's authentication put in the ASGI scope, as a dict."""
    user = scope.get("user")
    if not user:
        return None
    if isinstance(user, dict):
        return user
    # Objects with `asdict()` (as sentry_sdk), pydantic 2 then 1 models (Starlite's).
    for method in ("asdict", "model_dump", "dict"):
        to_dict = getattr(user, method, None)
        if callable(to_dict):
            found = to_dict()
            return found if isinstance(found, dict) else None
    return None


# -- the integration ----------------------------------------------------------------------------


class LitestarIntegration(Integration):
    """Errors, transactions and request data of Litestar applications.

    Args:
        failed_request_status_codes: An `HTTPException` with a status in this set is
            reported (default 500-599); other exceptions always are.
    """

    identifier = "litestar"
    origin = "auto.http.litestar"

    def __init__(
        self, failed_request_status_codes: Set[int] = _DEFAULT_FAILED_REQUEST_STATUS_CODES
    ) -> None:
        self.failed_request_status_codes = failed_request_status_codes
        self._asgi: Optional[SentryAsgiMiddleware] = None

    @staticmethod
    def setup_once() -> None:
        """Patch Litestar once it is imported; ignore its logger (the hook reports).

        Raises:
            DidNotEnable: Litestar is not installed.
        """
        _LITESTAR.require()
        _LITESTAR.setup()
        from tripwire.integrations.logging import ignore_logger

        ignore_logger("litestar")

    def asgi_middleware(self) -> SentryAsgiMiddleware:
        """The middleware configuration the applications run in (made once)."""
        middleware = self._asgi
        if middleware is None:
            middleware = self._asgi = make_asgi_middleware(self.origin)
        return middleware


def make_asgi_middleware(origin: str) -> SentryAsgiMiddleware:
    """The ASGI middleware configuration of a Litestar or Starlite integration."""
    return SentryAsgiMiddleware(
        None, transaction_style="endpoint", span_origin=origin, asgi_version=3
    )


_LITESTAR = Framework("litestar", LitestarIntegration)

__all__ = ["LitestarIntegration"]
