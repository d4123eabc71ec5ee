"""Tornado: every request a `tornado.web.RequestHandler` serves.

As sentry_sdk 2.75's ``tornado`` integration, `RequestHandler._execute` and
`RequestHandler.log_exception` are patched when `tornado.web` is imported; each
request gets:

- its own isolation scope (breadcrumbs cleared), kept to the handler's task, so
  concurrent requests never see each other's data (no request-mode session: sentry_sdk
  makes none for Tornado);
- the incoming trace continued (``sentry-trace``/``traceparent`` and ``baggage``) and,
  with tracing on, an ``http.server`` transaction for every method (origin
  ``auto.http.tornado``, sampling context ``tornado_request``). As sentry_sdk's, it
  gets no response status: Tornado answers errors itself, inside ``_execute``;
- an exception Tornado logs (`log_exception`) reported unhandled, mechanism
  ``tornado``, unless it is an `HTTPError` (a status the application chose);
- events (transactions included) named after the handler's method for the request's
  verb (``module.Handler.get``, source ``component``), and the event's ``request``
  built only for events sent: url, query string, method, ``env.REMOTE_ADDR`` (as
  sentry_sdk, without `send_default_pii` too), headers (sensitive ones filtered),
  cookies with PII, and the body bounded by ``max_request_body_size`` (form fields as
  lists, files marked, JSON parsed, any other body marked as raw data). With PII, a
  handler whose ``current_user`` is set adds ``user.is_authenticated``.

With span streaming (``trace_lifecycle="stream"``) the request's span is named after
the handler's method and gets the response's status and sentry_sdk's request
attributes (method, filtered headers, protocol, the body as text; the url, query and
client's address with `send_default_pii`) when the handler returns. The request's
scope carries ``sentry.is_localhost`` and ``user_agent.original`` in both modes.
Tornado's access log (``tornado.access``) makes no breadcrumbs or events.
"""

from __future__ import annotations

import sys
import weakref
from types import ModuleType
from typing import Any, Callable, Optional

from tripwire.integrations import DidNotEnable, Integration, _check_minimum_version
from tripwire.integrations._common._hooks import when_imported

ORIGIN = "auto.http.tornado"
_MARK = "__tripwire_tornado__"
# The transaction's name until an event processor names it (sentry_sdk's).
_DEFAULT_NAME = "generic Tornado request"


class TornadoIntegration(Integration):
    """Errors, transactions and request data of Tornado applications."""

    identifier = "tornado"
    origin = ORIGIN

    @staticmethod
    def setup_once() -> None:
        """Check Tornado's version; patch `tornado.web` once it is imported.

        Raises:
            DidNotEnable: Tornado is not installed or older than 6.0.
        """
        import importlib.util

        from tripwire.integrations.logging import ignore_logger
        from tripwire.utils import package_version

        if importlib.util.find_spec("tornado") is None:
            raise DidNotEnable("Tornado not installed")
        loaded = sys.modules.get("tornado")
        version = getattr(loaded, "version_info", None)
        found = tuple(version[:3]) if version else package_version("tornado")
        _check_minimum_version(TornadoIntegration, found)
        ignore_logger("tornado.access")
        when_imported("tornado.web", _patch_web)


def _patch_web(module: ModuleType) -> None:
    from tripwire.integrations._patch import patch_once

    patch_once(module.RequestHandler, "_execute", _wrap_execute, _MARK)
    patch_once(module.RequestHandler, "log_exception", _wrap_log_exception, _MARK)


def _wrap_execute(original: Callable[..., Any]) -> Callable[..., Any]:
    import functools

    from tripwire.integrations._common.web import (
        EVERY_METHOD,
        ServerRequest,
        incoming_trace_headers,
    )
    from tripwire.scope._current import get_client
    from tripwire.tracing._sampling import has_span_streaming_enabled

    add_to_event = _event_adder()

    @functools.wraps(original)
    async def _execute(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = get_client()
        if client.get_integration(TornadoIntegration) is None:
            return await original(self, *args, **kwargs)
        request = self.request
        server = ServerRequest(client).start(
            incoming_trace_headers(request.headers),
            _RequestProcessor(self, add_to_event),
            method=request.method or "",
            name=_DEFAULT_NAME,
            source="route",
            origin=ORIGIN,
            methods_to_capture=EVERY_METHOD,
            sampling_context={"tornado_request": request},
            scope_attributes=lambda: _scope_attributes(request, client.options),
            track_session=False,  # sentry_sdk makes no request session here
        )
        try:
            result = await original(self, *args, **kwargs)
        except BaseException as exc:
            if server.transaction is not None and has_span_streaming_enabled(client.options):
                _name_streamed_span(server, self)
            server.finish(exc)
            raise
        if server.transaction is not None and has_span_streaming_enabled(client.options):
            _name_streamed_span(server, self)
        server.finish()
        return result

    return _execute


def _name_streamed_span(server: Any, handler: Any) -> None:
    """A streamed span skips the event processors: named (and given the request's
    attributes and the response's status) here, as sentry_sdk's streamed Tornado spans."""
    from tripwire.integrations._common.web import streamed
    from tripwire.utils import transaction_from_function

    try:
        segment = streamed(server.transaction)
        if segment is not None:
            segment.set_attributes(_request_attributes(handler.request, server.client.options))
    except Exception:
        pass
    try:
        method = getattr(handler, handler.request.method.lower(), None)
        name = transaction_from_function(method) if method is not None else None
        if name:
            server.set_name(name, "component")
        server.set_status(handler.get_status())
    except Exception:
        pass


def _scope_attributes(request: Any, options: Any) -> dict[str, Any]:
    from tripwire.integrations._common.web import client_ip, request_scope_attributes

    headers = request.headers  # case-insensitive
    return request_scope_attributes(
        options,
        client_address=client_ip(headers, request.remote_ip),
        host=headers.get("host"),
        forwarded_host=headers.get("x-forwarded-host"),
        user_agent=headers.get("user-agent"),
        user_address=request.remote_ip,
    )


def _request_attributes(request: Any, options: Any) -> dict[str, Any]:
    """The streamed segment's request attributes (sentry_sdk's names and rules), the
    body (as text) included."""
    from tripwire import _data_collection
    from tripwire.integrations._common.web import may_send_user

    out: dict[str, Any] = {}
    if request.method:
        out["http.request.method"] = request.method.upper()
    for key, value in _data_collection.request_headers(dict(request.headers), options).items():
        out["http.request.header." + key.lower()] = value
    collecting = _data_collection.enabled(options)
    if collecting:
        out["url.path"] = request.path
        kept = _data_collection.request_query(request.query, options) if request.query else None
        if kept:
            out["url.query"] = kept
        url = request.full_url().split("?", 1)[0].split("#", 1)[0]
        out["url.full"] = f"{url}?{kept}" if kept else url
    elif options.get("send_default_pii"):
        out["url.full"] = request.full_url()
        out["url.path"] = request.path
        if request.query:
            out["url.query"] = request.query
    if request.remote_ip and may_send_user(options):
        out["client.address"] = request.remote_ip
    if request.protocol:
        out["network.protocol.name"] = request.protocol
    if not collecting or "incoming_request" in options["data_collection"]["http_bodies"]:
        body = request.body
        if body:
            decision = _data_collection.body_decision(options, "incoming_request", len(body))
            if decision == "too_large":
                out["http.request.body.data"] = "[Exceeds maximum size]"
            else:
                out["http.request.body.data"] = body.decode("utf-8", "replace")
    return out


def _wrap_log_exception(original: Callable[..., Any]) -> Callable[..., Any]:
    import functools

    from tornado.web import HTTPError

    from tripwire.integrations._common.unhandled import capture_unhandled
    from tripwire.scope._current import get_client

    @functools.wraps(original)
    def log_exception(self: Any, typ: Any, value: Any, tb: Any, *args: Any, **kwargs: Any) -> Any:
        client = get_client()
        if client.get_integration(TornadoIntegration) is not None and not isinstance(
            value, HTTPError
        ):
            capture_unhandled(client, (typ, value, tb), "tornado")
        return original(self, typ, value, tb, *args, **kwargs)

    return log_exception


class _RequestProcessor:
    """A request's event processor: the name and the `request` part, for events sent.

    Holds the handler weakly (a scope may outlive it, in a task the handler started).
    """

    __slots__ = ("add", "handler")

    def __init__(self, handler: Any, add: Callable[[dict[str, Any], Any], None]) -> None:
        self.handler = weakref.ref(handler)
        self.add = add

    def __call__(self, event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        handler = self.handler()
        if handler is None:
            return event
        try:
            self.add(event, handler)
        except Exception:  # the event goes out without what could not be added
            pass
        return event


def _event_adder() -> Callable[[dict[str, Any], Any], None]:
    """What the processors add to an event (its imports bound once, here)."""
    from tripwire import _data_collection
    from tripwire.integrations._common.web import (
        attach_request,
        body_part,
        may_send_user,
        request_part,
    )
    from tripwire.scope._current import get_client
    from tripwire.utils import transaction_from_function

    def add_to_event(event: dict[str, Any], handler: Any) -> None:
        request = handler.request
        method = getattr(handler, request.method.lower(), None)
        if method is not None:
            event["transaction"] = transaction_from_function(method) or ""
            event["transaction_info"] = {"source": "component"}
        options = get_client().options
        send_user = may_send_user(options)
        env = None
        # sentry_sdk sends the peer's address without PII too (not under data_collection).
        if send_user or not _data_collection.enabled(options):
            env = {"REMOTE_ADDR": request.remote_ip}
        part = request_part(
            options,
            method=request.method,
            url=f"{request.protocol}://{request.host}{request.path}",
            query_string=request.query,
            headers=dict(request.headers),
            env=env,
            cookies={k: v.value for k, v in request.cookies.items()},
        )
        body = request.body or b""
        data = body_part(options, len(body), lambda: _read_body(request))
        if data is not None:
            part["data"] = data
        attach_request(event, part)
        if send_user:
            try:
                user = handler.current_user
            except Exception:
                user = None
            if user:
                event.setdefault("user", {}).setdefault("is_authenticated", True)

    return add_to_event


def _read_body(request: Any) -> Any:
    """Form fields (files marked), else JSON, else the raw bytes (as sentry_sdk reads it)."""
    from tripwire.utils import AnnotatedValue

    form: dict[str, Any] = {
        key: [value.decode("latin1", "replace") for value in values]
        for key, values in request.body_arguments.items()
    }
    files = [key for key, values in request.files.items() if values]
    if form or files:
        for key in files:
            form[key] = AnnotatedValue.removed_because_raw_data()
        return form
    if _is_json(request.headers.get("Content-Type")):
        import json

        try:
            parsed = json.loads(request.body.decode("utf-8"))
        except ValueError:
            parsed = None
        if parsed is not None:
            return parsed
    return request.body


def _is_json(content_type: Optional[str]) -> bool:
    if not content_type:
        return False
    mime = content_type.split(";", 1)[0].strip().lower()
    return mime == "application/json" or (
        mime.startswith("application/") and mime.endswith("+json")
    )


__all__ = ["TornadoIntegration"]
