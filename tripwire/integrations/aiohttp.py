"""aiohttp integration: `aiohttp.web` requests (server side) and `ClientSession` requests.

As sentry_sdk 2.75's ``aiohttp`` integration.

Server side: `aiohttp.web.Application._handle` and `UrlDispatcher.resolve` are patched
when `aiohttp.web` is imported. Every request the application handles gets:

- its own isolation scope (breadcrumbs cleared) and a request-mode session;
- the incoming trace continued (``sentry-trace``/``traceparent`` and ``baggage``) and,
  with tracing enabled, an ``http.server`` transaction (origin ``auto.http.aiohttp``,
  for every method), named ``generic AIOHTTP request`` until the router resolves the
  route, then per ``transaction_style``: the handler's qualified name (source
  ``component``) or ``"METHOD /path/{pattern}"`` (source ``route``);
- the status of the response, or of the `HTTPException` raised; such an exception is
  reported (``handled: false``, mechanism ``aiohttp``) only when its status is in
  ``failed_request_status_codes``; any other exception is reported and re-raised;
  `asyncio.CancelledError` and `ConnectionResetError` are not reported (the
  transaction ends ``internal_error``, as sentry_sdk's does in the end);
- the event's ``request`` built only for events sent: url, query string, method,
  ``env.REMOTE_ADDR``, headers (sensitive ones removed without ``send_default_pii``),
  and the body as text if the handler read it and ``max_request_body_size`` allows
  (else a placeholder, as sentry_sdk: aiohttp's body cannot be read without awaiting).

The request's scope carries ``sentry.is_localhost`` and ``user_agent.original`` (in
both modes). Under span streaming the segment gets sentry_sdk's request attributes
(method, filtered headers; url, path, query and client's address with
`send_default_pii`) and ``http.route`` once resolved, and a client span ``url.path``.

Client side: every `ClientSession` made while a client has this integration gets one
more `aiohttp.TraceConfig`; for each request:

- inside a span (a transaction), an ``http.client`` span "METHOD url" (credentials
  filtered, query and fragment as data) with origin ``auto.http.aiohttp``, finished
  with the status and reason of the response (the code location when slower than
  ``http_request_source_threshold_ms``). A request that gets no response leaves its
  span unfinished, so it is not sent, as in sentry_sdk;
- the trace headers, as `_common.http.outgoing_trace_headers` decides; headers the
  caller set are kept (an existing ``sentry-trace``, a ``baggage`` with
  ``sentry-*`` entries), other ``baggage`` is appended to; a trace header that an AWS
  SigV4 signature covers (``SignedHeaders`` of the ``Authorization`` header, or
  ``X-Amz-SignedHeaders`` of a presigned URL) is left out, as changing it would
  invalidate the signature;
- an ``httplib`` breadcrumb once the response came (level from its status).

Unlike sentry_sdk, `HTTPException` is not made a "control flow" exception for every
span of the process: only the request's transaction keeps the exception's status.
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Set
from types import ModuleType
from typing import Any, Callable

from tripwire.integrations import (
    _DEFAULT_FAILED_REQUEST_STATUS_CODES,
    DidNotEnable,
    Integration,
    _check_minimum_version,
)
from tripwire.integrations._common._hooks import when_imported

ORIGIN = "auto.http.aiohttp"
TRANSACTION_STYLE_VALUES = ("handler_name", "method_and_path_pattern")
_MARK = "__tripwire_aiohttp__"
# The transaction's name until the router has resolved the request (sentry_sdk's).
_UNRESOLVED_NAME = "generic AIOHTTP request"
# sentry_sdk's placeholder for a body the handler did not read.
BODY_NOT_READ_MESSAGE = "[Can't show request body due to implementation details.]"


class AioHttpIntegration(Integration):
    """Transactions for `aiohttp.web` requests; spans for `aiohttp.ClientSession` ones.

    Args:
        transaction_style: How server-side transactions are named: ``"handler_name"``
            (the handler's qualified name) or ``"method_and_path_pattern"``
            (``"GET /users/{id}"``).
        failed_request_status_codes: An `HTTPException` whose status is in this set
            is reported as an error (default 500-599).

    Raises:
        ValueError: `transaction_style` is not one of the two.
    """

    identifier = "aiohttp"
    origin = ORIGIN

    def __init__(
        self,
        transaction_style: str = "handler_name",
        *,
        failed_request_status_codes: Set[int] = _DEFAULT_FAILED_REQUEST_STATUS_CODES,
    ) -> None:
        from tripwire.integrations._common.web import checked_transaction_style

        self.transaction_style = checked_transaction_style(
            transaction_style, TRANSACTION_STYLE_VALUES
        )
        self._failed_request_status_codes = failed_request_status_codes

    @staticmethod
    def setup_once() -> None:
        """Check aiohttp's version; patch aiohttp (and `aiohttp.web`) once imported.

        Raises:
            DidNotEnable: aiohttp is not installed or older than 3.4.
        """
        import importlib.util

        from tripwire.utils import package_version, parse_version

        if importlib.util.find_spec("aiohttp") is None:
            raise DidNotEnable("AIOHTTP not installed")
        loaded = sys.modules.get("aiohttp")
        version = getattr(loaded, "__version__", None)
        found = parse_version(version) if version else package_version("aiohttp")
        _check_minimum_version(AioHttpIntegration, found)
        when_imported("aiohttp", _patch_aiohttp)
        when_imported("aiohttp.web", _patch_web)


# -- client side ------------------------------------------------------------------------


def _patch_aiohttp(module: ModuleType) -> None:
    from tripwire.integrations._patch import patch_once

    patch_once(module.ClientSession, "__init__", _wrap_init, _MARK)


def _wrap_init(original: Callable[..., Any]) -> Callable[..., Any]:
    import functools

    from tripwire.scope._current import get_client

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        if get_client().get_integration(AioHttpIntegration) is not None:
            try:
                configs = list(kwargs.get("trace_configs") or ())
                configs.append(_trace_config())
                kwargs["trace_configs"] = configs
            except Exception:
                pass
        original(self, *args, **kwargs)

    return __init__


# sentry_sdk's key order of the aiohttp breadcrumb's data.
_CRUMB_ORDER = (
    "http.query",
    "http.fragment",
    "url",
    "http.method",
    "http.response.status_code",
    "reason",
)

_TRACE_HEADER_NAMES = frozenset(("baggage", "sentry-trace"))


def _trace_config() -> Any:
    from aiohttp import TraceConfig

    from tripwire.integrations._common.http import OutgoingRequest, sigv4_signed_headers

    async def on_request_start(session: Any, context: Any, params: Any) -> None:
        # Under streaming the span starts with its url attributes (with ``url.path``), as
        # sentry_sdk's.
        outgoing = OutgoingRequest.begin(
            AioHttpIntegration, ORIGIN, params.method.upper(), params.url, params.url.path
        )
        if outgoing is None:
            return
        try:
            if outgoing.headers:
                authorization = params.headers.get("Authorization")
                if isinstance(authorization, bytes):
                    authorization = authorization.decode("latin-1")
                signed = sigv4_signed_headers(authorization, str(params.url)).intersection(
                    _TRACE_HEADER_NAMES
                )
                if signed:
                    outgoing.headers = [
                        (k, v) for k, v in outgoing.headers if k.lower() not in signed
                    ]
            outgoing.add_headers_to(params.headers)
        except Exception:
            pass
        context._tripwire_request = outgoing

    async def on_request_end(session: Any, context: Any, params: Any) -> None:
        outgoing = getattr(context, "_tripwire_request", None)
        if outgoing is not None:
            response = params.response
            outgoing.responded(int(response.status), response.reason, _CRUMB_ORDER)

    config = TraceConfig()
    config.on_request_start.append(on_request_start)
    config.on_request_end.append(on_request_end)
    return config


# -- server side ------------------------------------------------------------------------


def _patch_web(module: ModuleType) -> None:
    from tripwire.integrations._patch import patch_once
    from tripwire.integrations.logging import ignore_logger

    patch_once(module.Application, "_handle", _wrap_handle, _MARK)
    patch_once(module.UrlDispatcher, "resolve", _wrap_resolve, _MARK)
    # aiohttp logs the exception it answers with a 500: it is reported already.
    ignore_logger("aiohttp.server")


def _wrap_handle(original: Callable[..., Any]) -> Callable[..., Any]:
    import functools
    from asyncio import CancelledError

    from aiohttp.web import HTTPException

    from tripwire.integrations._common.unhandled import capture_unhandled
    from tripwire.integrations._common.web import (
        EVERY_METHOD,
        ServerRequest,
        incoming_trace_headers,
    )
    from tripwire.scope._current import get_client
    from tripwire.tracing._consts import TransactionSource

    route = TransactionSource.ROUTE
    processor_class = _request_processor_class()

    @functools.wraps(original)
    async def _handle(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
        client = get_client()
        integration = client.get_integration(AioHttpIntegration)
        if integration is None:
            return await original(self, request, *args, **kwargs)
        options = client.options
        server = ServerRequest(client).start(
            incoming_trace_headers(request.headers),
            processor_class(request),
            method=request.method,
            name=_UNRESOLVED_NAME,
            source=route,
            origin=ORIGIN,
            methods_to_capture=EVERY_METHOD,
            sampling_context={"aiohttp_request": request},
            # sentry_sdk's segment starts with all of them (`traces_sampler` and
            # `ignore_spans` see them).
            start_attributes=lambda: _request_attributes(request, options),
            scope_attributes=lambda: _scope_attributes(request, options),
        )
        try:
            response = await original(self, request, *args, **kwargs)
        except HTTPException as exc:
            # Kept as the response's status: the exception is how aiohttp answers.
            server.set_status(exc.status_code)
            if exc.status_code in integration._failed_request_status_codes:
                capture_unhandled(client, sys.exc_info(), "aiohttp")
            server.finish()
            raise
        except (CancelledError, ConnectionResetError) as exc:
            server.finish(exc)  # the client went away: not an error of the application
            raise
        except BaseException as exc:
            if isinstance(exc, Exception):
                capture_unhandled(client, sys.exc_info(), "aiohttp")
            server.finish(exc)
            raise
        status = getattr(response, "status", None)  # a handler may return something else
        if status is not None:
            server.set_status(status)
        server.finish()
        return response

    return _handle


def _wrap_resolve(original: Callable[..., Any]) -> Callable[..., Any]:
    import functools

    from tripwire.integrations._common.web import streamed
    from tripwire.scope._current import get_client, get_current_scope
    from tripwire.tracing._consts import SOURCE_FOR_STYLE
    from tripwire.utils import transaction_from_function

    @functools.wraps(original)
    async def resolve(self: Any, request: Any) -> Any:
        match_info = await original(self, request)
        integration = get_client().get_integration(AioHttpIntegration)
        if integration is None:
            return match_info
        try:
            style = integration.transaction_style
            if style == "handler_name":
                name = transaction_from_function(match_info.handler)
            else:
                info = match_info.get_info()
                pattern = info.get("path") or info.get("formatter")
                name = f"{request.method} {pattern}"
            if name is not None:
                get_current_scope().set_transaction_name(name, SOURCE_FOR_STYLE[style])
            segment = streamed(get_current_scope()._d.span)
            if segment is not None:
                info = match_info.get_info()
                pattern = info.get("path") or info.get("formatter")
                if pattern is not None:
                    segment.containing_transaction.set_attribute("http.route", pattern)
        except Exception:
            pass
        return match_info

    return resolve


def _scope_attributes(request: Any, options: Any) -> dict[str, Any]:
    from tripwire.integrations._common.web import client_ip, request_scope_attributes

    headers = request.headers  # case-insensitive
    return request_scope_attributes(
        options,
        client_address=client_ip(headers, request.remote),
        host=headers.get("host"),
        forwarded_host=headers.get("x-forwarded-host"),
        user_agent=headers.get("user-agent"),
        user_address=request.remote,
    )


def _request_attributes(request: Any, options: Any) -> dict[str, Any]:
    """The streamed segment's request attributes (sentry_sdk's names and rules)."""
    from tripwire import _data_collection

    out: dict[str, Any] = {"http.request.method": request.method}
    collecting = _data_collection.enabled(options)
    if collecting or options.get("send_default_pii"):
        url = f"{request.scheme}://{request.host}{request.path}"
        query = request.query_string
        if query and collecting:
            query = _data_collection.request_query(query, options)
        if query:
            out["url.query"] = query
            url += "?" + query
        out["url.full"] = url
        out["url.path"] = request.path
        remote = request.remote
        if remote and (not collecting or options["data_collection"].get("user_info")):
            out["client.address"] = remote
    headers = _data_collection.request_headers(dict(request.headers), options)
    for key, value in headers.items():
        out["http.request.header." + key.lower()] = value
    return out


def _request_processor_class() -> type:
    """The class of the requests' event processors (its imports bound once, here)."""
    from tripwire import _data_collection
    from tripwire.scope._current import get_client
    from tripwire.utils import AnnotatedValue

    body_limits = _data_collection._BODY_LIMITS
    collecting_rules = _data_collection.enabled
    query_rules = _data_collection.request_query
    header_rules = _data_collection.request_headers

    def body(request: Any, options: Any) -> Any:
        read = request._read_bytes  # set once the handler has read the body
        if read is not None:
            limit = body_limits.get(options.get("max_request_body_size"))
            if limit is not None and len(read) > limit:
                return AnnotatedValue.substituted_because_over_size_limit()
            return read.decode(request.charset or "utf-8", "replace")
        if request.can_read_body:
            return BODY_NOT_READ_MESSAGE
        return None

    def add_request(event: dict[str, Any], request: Any) -> None:
        options = get_client().options
        collecting = collecting_rules(options)
        info = event.setdefault("request", {})
        info["url"] = f"{request.scheme}://{request.host}{request.path}"
        query = request.query_string
        if not collecting:
            info["query_string"] = query
        elif query:
            kept = query_rules(query, options)
            if kept:
                info["query_string"] = kept
        info["method"] = request.method
        # REMOTE_ADDR goes whatever send_default_pii says, as in sentry_sdk (with
        # data_collection, only with user_info).
        if not collecting or options["data_collection"].get("user_info"):
            info["env"] = {"REMOTE_ADDR": request.remote}
        info["headers"] = header_rules(
            dict(request.headers), options, AnnotatedValue.removed_because_over_size_limit()
        )
        if not collecting or "incoming_request" in options["data_collection"]["http_bodies"]:
            info["data"] = body(request, options)

    class RequestProcessor:
        """A request's event processor: its `request` part, for events sent only.

        Holds the request weakly (a scope may outlive it, in a task the handler started).
        """

        __slots__ = ("request",)

        def __init__(self, request: Any) -> None:
            self.request = weakref.ref(request)

        def __call__(self, event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
            request = self.request()
            if request is not None:
                try:
                    add_request(event, request)
                except Exception:
                    pass
            return event

    return RequestProcessor


__all__ = ["AioHttpIntegration"]
