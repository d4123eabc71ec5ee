"""Sanic: every request of every `Sanic` application (Sanic 21.9 and later).

As sentry_sdk 2.75's ``sanic`` integration, `Sanic._startup` (each application, as it
starts) connects three of Sanic's signals, and `ErrorHandler.lookup` is patched, when
`sanic` is imported. Each request gets:

- at ``http.lifecycle.request`` (the request just made, its body not read): its own
  isolation scope (breadcrumbs cleared; no request-mode session, as sentry_sdk), the
  incoming trace continued (``sentry-trace``/``traceparent`` and ``baggage``) and,
  with tracing on, an ``http.server`` transaction for every method (origin
  ``auto.http.sanic``), named after the path (source ``url``) until routed;
- at ``http.routing.after``: the route's name without the application's prefix
  (source ``component``) for the transaction and the request's events;
- at ``http.lifecycle.response`` (also sent for a handler's error): the response's
  status on the transaction, which is dropped (not sampled) when the status is in
  `unsampled_statuses` (404 by default), and the scopes restored;
- an exception Sanic looks up an error handler for reported unhandled (mechanism
  ``sanic``), and one raised by that error handler too; a `SanicException` (a status
  the application chose: `NotFound`, `Forbidden`...) is never reported, and events
  whose exception is one are dropped, as sentry_sdk does;
- the event's ``request`` built only for events sent: url (without the query),
  query string, method, ``env.REMOTE_ADDR`` (Sanic's `remote_addr`: set only behind a
  configured proxy), headers (sensitive ones filtered), cookies with PII, and the body
  bounded by ``max_request_body_size`` (form fields, files marked, JSON, any other
  body marked as raw data).

The request's scope carries ``sentry.is_localhost`` and ``user_agent.original`` (in
both modes). Under span streaming the segment gets sentry_sdk's request attributes
(method, filtered headers, protocol; url, query and client's address with
`send_default_pii`), and `unsampled_statuses` has no effect, as in sentry_sdk.

The three signal handlers run in the request's task (Sanic dispatches them inline),
so the request's scopes are seen by its handler and nothing else.
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Container
from types import ModuleType
from typing import Any, Callable, Optional
from urllib.parse import urlsplit

from tripwire.integrations import DidNotEnable, Integration, _check_minimum_version
from tripwire.integrations._common._hooks import when_imported

ORIGIN = "auto.http.sanic"
_MARK = "__tripwire_sanic__"
# Where the request's lifecycle state is kept, on `request.ctx`.
_CTX_KEY = "_tripwire_request"


class SanicIntegration(Integration):
    """Errors, transactions and request data of Sanic applications.

    Args:
        unsampled_statuses: Transactions of responses with these statuses are not
            sent (default: 404); None or empty sends them all.
    """

    identifier = "sanic"
    origin = ORIGIN
    version: Optional[tuple[int, ...]] = None

    def __init__(self, unsampled_statuses: Optional[Container[int]] = frozenset({404})) -> None:
        self._unsampled_statuses: Container[int] = unsampled_statuses or frozenset()

    @staticmethod
    def setup_once() -> None:
        """Check Sanic's version; patch Sanic once it is imported.

        Raises:
            DidNotEnable: Sanic is not installed, or older than 21.9.
        """
        import importlib.util

        from tripwire.utils import package_version, parse_version

        if importlib.util.find_spec("sanic") is None:
            raise DidNotEnable("Sanic not installed")
        loaded = sys.modules.get("sanic")
        version = getattr(loaded, "__version__", None)
        found = parse_version(version) if version else package_version("sanic")
        _check_minimum_version(SanicIntegration, found)
        if found is not None and found < (21, 9):
            # Sanic before 21.9 has no lifecycle signals to hook onto.
            raise DidNotEnable("tripwire supports Sanic 21.9 or later")
        SanicIntegration.version = found
        when_imported("sanic", _patch_sanic)


def _patch_sanic(module: ModuleType) -> None:
    from sanic.handlers import ErrorHandler

    from tripwire.integrations._patch import patch_once

    patch_once(module.Sanic, "_startup", _wrap_startup, _MARK)
    patch_once(ErrorHandler, "lookup", _wrap_lookup, _MARK)


def _wrap_startup(original: Callable[..., Any]) -> Callable[..., Any]:
    import functools

    handlers = _signal_handlers()

    @functools.wraps(original)
    async def _startup(self: Any, *args: Any, **kwargs: Any) -> Any:
        # Connected before Sanic finalizes its signal router (in `_startup`).
        for event, handler in handlers:
            try:
                self.signal(event)(handler)
            except Exception:
                pass
        return await original(self, *args, **kwargs)

    return _startup


def _scope_attributes(request: Any, options: Any) -> dict[str, Any]:
    from tripwire.integrations._common.web import request_scope_attributes

    headers = request.headers
    return request_scope_attributes(
        options,
        client_address=request.remote_addr or None,
        host=headers.get("host"),
        forwarded_host=headers.get("x-forwarded-host"),
        user_agent=headers.get("user-agent"),
        url_host=urlsplit(request.url).hostname,
    )


def _request_attributes(request: Any, options: Any) -> dict[str, Any]:
    """The streamed segment's request attributes (sentry_sdk's names and rules)."""
    from tripwire import _data_collection
    from tripwire.integrations._common.web import may_send_user

    out: dict[str, Any] = {}
    if request.method:
        out["http.request.method"] = request.method.upper()
    for key, value in _data_collection.request_headers(dict(request.headers), options).items():
        out["http.request.header." + key.lower()] = value
    url = urlsplit(request.url)
    if _data_collection.enabled(options):
        out["url.path"] = url.path
        kept = _data_collection.request_query(url.query, options) if url.query else None
        if kept:
            out["http.query"] = kept
        out["url.full"] = url._replace(query=kept or "").geturl()
    elif options.get("send_default_pii"):
        out["url.full"] = request.url
        out["url.path"] = url.path
        if url.query:
            out["http.query"] = url.query
    if request.remote_addr and may_send_user(options):
        out["client.address"] = request.remote_addr
    if url.scheme:
        out["network.protocol.name"] = url.scheme
    return out


def _signal_handlers() -> tuple[tuple[str, Callable[..., Any]], ...]:
    """The three signal handlers (their imports bound once, here)."""
    from tripwire.integrations._common.web import (
        EVERY_METHOD,
        ServerRequest,
        incoming_trace_headers,
        streamed,
    )
    from tripwire.scope._current import get_client

    processor_class = _request_processor_class()

    async def request_started(request: Any, **_: Any) -> None:
        client = get_client()
        if client.get_integration(SanicIntegration) is None:
            return
        try:
            server = ServerRequest(client).start(
                incoming_trace_headers(request.headers),
                processor_class(request),
                method=request.method,
                name=request.path,
                source="url",
                origin=ORIGIN,
                methods_to_capture=EVERY_METHOD,
                sampling_context={"sanic_request": request},
                attributes=lambda: _request_attributes(request, client.options),
                scope_attributes=lambda: _scope_attributes(request, client.options),
                track_session=False,  # sentry_sdk makes no request session here
            )
            setattr(request.ctx, _CTX_KEY, server)
        except Exception:  # instrumentation must never fail the request
            pass

    async def routed(request: Any, route: Any = None, **_: Any) -> None:
        server = getattr(request.ctx, _CTX_KEY, None)
        if server is None or route is None:
            return
        try:
            name = route.name.replace(request.app.name, "").strip(".")
            server.set_name(name, "component")
        except Exception:
            pass

    async def responded(request: Any, response: Any = None, **_: Any) -> None:
        server = getattr(request.ctx, _CTX_KEY, None)
        if server is None:
            return
        try:
            setattr(request.ctx, _CTX_KEY, None)
            integration = server.client.get_integration(SanicIntegration)
            status = getattr(response, "status", None)
            transaction = server.transaction
            if status is not None:
                server.set_status(status)
            # `unsampled_statuses` has no effect on a streamed segment (as sentry_sdk).
            if (
                transaction is not None
                and streamed(transaction) is None
                and (integration is None or status in integration._unsampled_statuses)
            ):
                transaction.sampled = False
        finally:
            server.finish()

    return (
        ("http.lifecycle.request", request_started),
        ("http.routing.after", routed),
        ("http.lifecycle.response", responded),
    )


def _wrap_lookup(original: Callable[..., Any]) -> Callable[..., Any]:
    import functools
    from inspect import isawaitable

    from tripwire.integrations._common.unhandled import capture_unhandled
    from tripwire.scope._current import get_client

    def capture(exc: BaseException) -> None:
        client = get_client()
        if client.get_integration(SanicIntegration) is None:
            return
        if getattr(type(exc), "quiet", False):
            return  # Sanic's own quiet exceptions (NotFound...): not errors of the app
        capture_unhandled(client, (type(exc), exc, exc.__traceback__), "sanic")

    @functools.wraps(original)
    def lookup(self: Any, exception: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(exception, BaseException):
            capture(exception)
        handler = original(self, exception, *args, **kwargs)
        if handler is None or get_client().get_integration(SanicIntegration) is None:
            return handler

        async def error_handler(request: Any, exception: Any) -> Any:
            try:
                response = handler(request, exception)
                if isawaitable(response):
                    response = await response
                return response
            except Exception as exc:  # an error in the error handler: Sanic hides it
                capture(exc)
                raise

        return error_handler

    return lookup


def _request_processor_class() -> type:
    """The class of the requests' event processors (its imports bound once, here)."""
    from sanic.exceptions import SanicException

    from tripwire import _data_collection
    from tripwire.integrations._common.web import (
        attach_request,
        body_part,
        may_send_user,
        request_part,
    )
    from tripwire.scope._current import get_client
    from tripwire.utils import AnnotatedValue

    def read_body(request: Any) -> Any:
        form = request.form
        files = request.files
        if form or files:
            data: dict[str, Any] = dict(form.items()) if form else {}
            for key in files or ():
                data[key] = AnnotatedValue.removed_because_raw_data()
            return data
        try:
            parsed = request.json
        except Exception:  # not JSON: a raw body
            parsed = None
        return parsed if parsed is not None else request.body

    def add_request(event: dict[str, Any], request: Any) -> None:
        options = get_client().options
        url = urlsplit(request.url)
        env = None
        # sentry_sdk sends the address without PII too (not under data_collection).
        if not _data_collection.enabled(options) or may_send_user(options):
            env = {"REMOTE_ADDR": request.remote_addr}
        part = request_part(
            options,
            method=request.method,
            url=f"{url.scheme}://{url.netloc}{url.path}",
            query_string=url.query,
            headers=dict(request.headers),
            env=env,
            cookies=dict(request.cookies),
        )
        body = request.body or b""
        data = body_part(options, len(body), lambda: read_body(request))
        if data is not None:
            part["data"] = data
        attach_request(event, part)

    class RequestProcessor:
        """A request's event processor: its `request` part, for events sent only.

        Holds the request weakly (a scope may outlive it, in a task the handler
        started). Drops events of a `SanicException`, as sentry_sdk does.
        """

        __slots__ = ("request",)

        def __init__(self, request: Any) -> None:
            self.request = weakref.ref(request)

        def __call__(self, event: dict[str, Any], hint: dict[str, Any]) -> Any:
            exc_info = hint.get("exc_info") if hint else None
            kind = exc_info[0] if exc_info else None
            if isinstance(kind, type) and issubclass(kind, SanicException):
                return None
            request = self.request()
            if request is not None:
                try:
                    add_request(event, request)
                except Exception:
                    pass
            return event

    return RequestProcessor


__all__ = ["SanicIntegration"]
