"""Quart: every request and websocket of every `Quart` application, through ASGI.

As sentry_sdk 2.75's ``quart`` integration, when `quart` is imported:

- `Quart.__call__` runs the application inside `SentryAsgiMiddleware`'s request
  handling (origin ``auto.http.quart``): an isolation scope per request or websocket,
  a request-mode session, the incoming trace continued and, with tracing on, an
  ``http.server`` (``websocket.server``) transaction with the response's status;
- at ``request_started`` / ``websocket_started`` the transaction and the request's
  events are named after the matched rule: its endpoint (source ``component``, the
  default `transaction_style`) or its URL rule (``transaction_style="url"``, source
  ``route``); without a rule (a 404) the ASGI middleware's name (the url) stays;
- events get Quart's view of the request: url (with its query), query string,
  method, headers (sensitive ones filtered) and, with `send_default_pii` (or
  `data_collection.user_info`), the client's address (``env.REMOTE_ADDR``, the first
  hop of the access route) and quart-auth's user id. No body (Quart reads it only by
  awaiting);
- an exception Quart handles as a 500 (``got_request_exception``), or raised in a
  websocket or a background task, is reported unhandled, mechanism ``quart``;
- under span streaming, the segment gets Quart's view of the request as sentry_sdk's
  streaming path sets it: ``http.route``, method and headers (``Remote-Addr``
  included) and, with `send_default_pii`, ``url.full``, ``url.query`` and
  ``client.address`` (the address and quart-auth's id also on the scope's user);
- a synchronous view (run by Quart in a thread) marks that thread as the
  transaction's (and the profile's) active thread.
"""

from __future__ import annotations

import functools
import sys
from types import ModuleType
from typing import Any, Callable, Optional

from tripwire.integrations import DidNotEnable, Integration, _check_minimum_version
from tripwire.integrations._common._hooks import when_imported

ORIGIN = "auto.http.quart"
TRANSACTION_STYLE_VALUES = ("endpoint", "url")
_SOURCE_FOR_STYLE = {"endpoint": "component", "url": "route"}
_MARK = "__tripwire_quart__"


class QuartIntegration(Integration):
    """Errors, transactions and request data of Quart applications.

    Args:
        transaction_style: Name transactions after the view's ``"endpoint"`` or its
            ``"url"`` rule.

    Raises:
        ValueError: An unknown `transaction_style`.
    """

    identifier = "quart"
    origin = ORIGIN

    transaction_style = ""

    def __init__(self, transaction_style: str = "endpoint") -> None:
        from tripwire.integrations._common.web import checked_transaction_style

        self.transaction_style = checked_transaction_style(
            transaction_style, TRANSACTION_STYLE_VALUES
        )
        self._asgi: Any = None

    @staticmethod
    def setup_once() -> None:
        """Check Quart's version; patch Quart and connect its signals once imported.

        Raises:
            DidNotEnable: Quart is not installed, or older than 0.16.
        """
        import importlib.util

        from tripwire.utils import package_version

        if importlib.util.find_spec("quart") is None:
            raise DidNotEnable("Quart is not installed")
        _check_minimum_version(QuartIntegration, package_version("quart"), "Quart")
        when_imported("quart", _setup_quart)

    def asgi_middleware(self) -> Any:
        """The middleware configuration the applications run in (made once)."""
        middleware = self._asgi
        if middleware is None:
            from tripwire.integrations.asgi import SentryAsgiMiddleware

            middleware = self._asgi = SentryAsgiMiddleware(None, span_origin=ORIGIN, asgi_version=3)
        return middleware


def _setup_quart(module: ModuleType) -> None:
    from quart import signals

    from tripwire.integrations._patch import on_undo, patch_once

    patch_once(module.Quart, "__call__", _wrap_call, _MARK)
    if hasattr(module.Quart, "sync_to_async"):  # Quart 0.15+: how sync views are run
        patch_once(module.Quart, "sync_to_async", _wrap_sync_to_async, _MARK)
    started = _request_started_receiver(module)
    capture = _exception_receiver()
    receivers: tuple[tuple[Any, Callable[..., Any]], ...] = (
        (signals.request_started, started),
        (signals.websocket_started, started),
        (signals.got_request_exception, capture),
        (signals.got_websocket_exception, capture),
        (signals.got_background_exception, capture),
    )
    for signal, receiver in receivers:
        signal.connect(receiver, weak=False)
        on_undo(functools.partial(signal.disconnect, receiver))


def _wrap_call(original: Callable[..., Any]) -> Callable[..., Any]:
    from tripwire.scope._current import get_client

    @functools.wraps(original)
    async def __call__(self: Any, scope: Any, receive: Any, send: Any) -> Any:
        integration = get_client().get_integration(QuartIntegration)
        if integration is None:
            return await original(self, scope, receive, send)
        middleware = integration._asgi or integration.asgi_middleware()
        return await middleware._serve(
            original.__get__(self, type(self)), scope, receive, send, True
        )

    return __call__


def _wrap_sync_to_async(original: Callable[..., Any]) -> Callable[..., Any]:
    from tripwire.scope._current import get_client, get_current_scope, get_isolation_scope

    def mark_thread() -> None:
        transaction = getattr(get_current_scope()._d.span, "containing_transaction", None)
        if transaction is not None:
            transaction.update_active_thread()
        profile = get_isolation_scope().profile
        if profile is not None:
            profile.update_active_thread_id()

    @functools.wraps(original)
    def sync_to_async(self: Any, func: Callable[..., Any]) -> Any:
        if get_client().get_integration(QuartIntegration) is None:
            return original(self, func)

        @functools.wraps(func)
        def in_thread(*args: Any, **kwargs: Any) -> Any:
            try:
                mark_thread()
            except Exception:
                pass
            return func(*args, **kwargs)

        return original(self, in_thread)

    return sync_to_async


def _request_started_receiver(module: ModuleType) -> Callable[..., Any]:
    from tripwire.integrations._common.web import streamed
    from tripwire.integrations.asgi import SCOPE_KEY
    from tripwire.scope._current import get_client, get_current_scope, get_isolation_scope

    quart_request = module.request
    quart_websocket = module.websocket
    has_request_context = module.has_request_context
    has_websocket_context = module.has_websocket_context
    processor = _event_processor()

    async def request_started(sender: Any, **kwargs: Any) -> None:
        integration = get_client().get_integration(QuartIntegration)
        if integration is None:
            return
        try:
            current = None
            if has_request_context():
                current = quart_request._get_current_object()
            if has_websocket_context():
                current = quart_websocket._get_current_object()
            if current is None:
                return
            rule = getattr(current, "url_rule", None)
            if rule is not None:
                style = integration.transaction_style
                name = rule.rule if style == "url" else rule.endpoint
                get_current_scope().set_transaction_name(name, _SOURCE_FOR_STYLE[style])
            isolation = get_isolation_scope()
            state = current.scope.get(SCOPE_KEY)
            if state is not None and streamed(state.transaction) is not None:
                _stream_request(state, current, rule, isolation)
            isolation.add_event_processor(functools.partial(processor, current))
        except Exception:  # instrumentation must never fail the request
            pass

    return request_started


def _stream_request(state: Any, request: Any, rule: Any, isolation: Any) -> None:
    """Quart's view of the request onto its streamed segment (as sentry_sdk's streaming
    path): the route, method and headers (Quart's, ``Remote-Addr`` included), and with
    `send_default_pii` (or as `data_collection` allows) the url, query and client's
    address, which also go on the scope's user with quart-auth's user id."""
    from tripwire import _data_collection
    from tripwire.integrations._common.web import may_send_user
    from tripwire.scope._current import get_client

    options = get_client().options
    if rule is not None:
        state.set_attribute("http.route", rule.rule)
    state.set_attribute("http.request.method", request.method)
    for key, value in _data_collection.request_headers(dict(request.headers), options).items():
        state.set_attribute("http.request.header." + key.lower(), value)
    query = request.query_string.decode("utf-8", "replace")
    collection = _data_collection.enabled(options)
    if collection:
        kept = _data_collection.request_query(query, options) if query else None
        if kept:
            state.set_attribute("url.query", kept)
        url = request.url.split("?", 1)[0].split("#", 1)[0]
        state.set_attribute("url.full", f"{url}?{kept}" if kept else url)
    elif options.get("send_default_pii"):
        state.set_attribute("url.full", request.url)
        state.set_attribute("url.query", query)
    if not may_send_user(options):
        return
    user: dict[str, Any] = {}
    route = request.access_route
    if len(route) >= 1:
        state.set_attribute("client.address", route[0])
        user["ip_address"] = route[0]
    user_id = _quart_auth_user_id()
    if user_id:
        user["id"] = user_id
    if user:
        isolation.set_user({**(isolation.user or {}), **user})


def _event_processor() -> Callable[[Any, dict[str, Any], dict[str, Any]], dict[str, Any]]:
    """The requests' event processor (its imports bound once, here)."""
    from tripwire import _data_collection
    from tripwire.integrations._common.web import may_send_user
    from tripwire.scope._current import get_client

    def process(request: Any, event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        try:
            options = get_client().options
            info = event.setdefault("request", {})
            info["url"] = request.url
            query = request.query_string.decode("utf-8", "replace")
            if _data_collection.enabled(options):
                kept = _data_collection.request_query(query, options) if query else None
                if kept:
                    info["query_string"] = kept
                else:
                    info.pop("query_string", None)
            else:
                info["query_string"] = query
            info["method"] = request.method
            info["headers"] = _data_collection.request_headers(dict(request.headers), options)
            if may_send_user(options):
                route = request.access_route
                if len(route) >= 1:
                    info["env"] = {"REMOTE_ADDR": route[0]}
                user_id = _quart_auth_user_id()
                if user_id:
                    event.setdefault("user", {})["id"] = user_id
        except Exception:  # the event goes out without what could not be added
            pass
        return event

    return process


def _quart_auth_user_id() -> Optional[str]:
    """quart-auth's current user's id (None without quart-auth or outside a request)."""
    quart_auth = sys.modules.get("quart_auth")
    if quart_auth is None:
        return None
    try:
        user = quart_auth.current_user
        if user is None:
            return None
        user_id = user._auth_id
        return str(user_id) if user_id is not None else None
    except Exception:
        return None


def _exception_receiver() -> Callable[..., Any]:
    from tripwire.integrations._common.unhandled import capture_unhandled
    from tripwire.scope._current import get_client

    async def capture(sender: Any, exception: BaseException, **kwargs: Any) -> None:
        client = get_client()
        if client.get_integration(QuartIntegration) is None:
            return
        exc_info = (type(exception), exception, exception.__traceback__)
        capture_unhandled(client, exc_info, "quart")

    return capture


__all__ = ["QuartIntegration"]
