"""Django integration: requests, errors, database queries, signals, templates, caches.

As sentry_sdk 2.75's ``django`` integration:

- `WSGIHandler` and `ASGIHandler` run inside `SentryWsgiMiddleware` /
  `SentryAsgiMiddleware` (origin ``auto.http.django``): one isolation scope, session
  and ``http.server`` transaction per request, the incoming trace continued;
- the transaction is named after the URL pattern that matched (``url`` style,
  ``/polls/{poll_id}/``, source ``route``) or the view's dotted name
  (``function_name``, source ``component``); the request path (source ``url``)
  when nothing matched;
- events carry the Django request's cookies (the CSRF and session cookies filtered)
  and body (form fields, file names, JSON; bounded by ``max_request_body_size``),
  and, when personal data may be sent, the `django.contrib.auth` user (id, email,
  username); all built only when an event is sent;
- an exception Django gives up on (``got_request_exception``) is reported as
  unhandled (mechanism ``django``); one Django answers itself (`Http404`,
  `PermissionDenied`, `SuspiciousOperation`...) only if its response's status is in
  ``failed_request_status_codes`` (5xx by default), as handled;
- spans: ``db`` per query (``db.system``, ``db.name``, server address/port, the
  query's code location when slower than ``db_query_source_threshold_ms``) and
  connect (commits and rollbacks with ``db_transaction_spans``),
  ``middleware.django`` per middleware method and ``view.render`` with
  ``middleware_spans``, ``event.django`` per signal receiver (``signals_spans``,
  ``signals_denylist``), ``template.render`` and ``view.response.render``,
  ``cache.get`` / ``cache.put`` with ``cache_spans``; `django.shortcuts.render` gets
  ``sentry_trace_meta`` in its context;
- template errors get the template's frame; unevaluated querysets are not evaluated
  to be shown;
- under span streaming (``trace_lifecycle="stream"``) the segment carries the route
  (``http.route``) and, as the options allow, the logged-in user; the spans take
  sentry_sdk's streamed attributes (``db.system.name``, ``db.namespace``,
  ``db.query.text``, ``middleware.name``, ``code.function.name``; no template context).

Django is never imported by tripwire: each part is patched when the application
imports the Django module it belongs to, and every patch falls through when the
active client lacks this integration. With tracing off a request costs scope
forking, naming its transaction and one event processor; the span hooks only look
for an active span.
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Container, Mapping
from types import ModuleType
from typing import Any, Callable, Optional

from tripwire.integrations import (
    _DEFAULT_FAILED_REQUEST_STATUS_CODES,
    DidNotEnable,
    Integration,
    _check_minimum_version,
)
from tripwire.integrations._common._hooks import when_imported
from tripwire.integrations._common.start_attributes import child_start
from tripwire.integrations._common.unhandled import capture_unhandled
from tripwire.integrations._common.web import (
    DEFAULT_HTTP_METHODS_TO_CAPTURE,
    body_part,
    checked_transaction_style,
    may_send_user,
    server_segment,
    set_route,
)
from tripwire.options import span_streaming_enabled
from tripwire.scope._capture import capture_event
from tripwire.scope._current import (
    _current_scope,
    get_client,
    get_current_scope,
    get_isolation_scope,
)
from tripwire.tracing._api import start_child
from tripwire.utils import AnnotatedValue, transaction_from_function

TRANSACTION_STYLE_VALUES = ("function_name", "url")
SENSITIVE_DATA_SUBSTITUTE = "[Filtered]"
_MARK = "__tripwire_django__"
# sentry_sdk's source per transaction style.
_SOURCE_FOR_STYLE = {"function_name": "component", "url": "route"}


def is_authenticated(request_user: Any) -> bool:
    """Whether a `request.user` is a logged-in user."""
    return bool(request_user.is_authenticated)


class DjangoIntegration(Integration):
    """Auto-instruments a Django application (sentry_sdk's options and defaults).

    Args:
        transaction_style: "url" (the URL pattern) or "function_name" (the view).
        middleware_spans: A span per middleware method and one for the view.
        signals_spans: A span per signal receiver.
        cache_spans: Spans for cache get/set.
        db_transaction_spans: Spans for commits and rollbacks.
        signals_denylist: Signals whose receivers get no span.
        http_methods_to_capture: The methods whose requests get a transaction.
        failed_request_status_codes: The statuses of the responses Django makes from
            an exception (404, 403, 400...) that are reported; 5xx by default.
    """

    identifier = "django"
    origin = f"auto.http.{identifier}"
    origin_db = f"auto.db.{identifier}"

    transaction_style = ""
    middleware_spans: Optional[bool] = None
    signals_spans: Optional[bool] = None
    cache_spans: Optional[bool] = None
    signals_denylist: list[Any] = []

    def __init__(
        self,
        transaction_style: str = "url",
        middleware_spans: bool = False,
        signals_spans: bool = True,
        cache_spans: bool = False,
        db_transaction_spans: bool = False,
        signals_denylist: Optional[list[Any]] = None,
        http_methods_to_capture: tuple[str, ...] = DEFAULT_HTTP_METHODS_TO_CAPTURE,
        *,
        failed_request_status_codes: Container[int] = _DEFAULT_FAILED_REQUEST_STATUS_CODES,
    ) -> None:
        self.transaction_style = checked_transaction_style(
            transaction_style, TRANSACTION_STYLE_VALUES
        )
        self.middleware_spans = middleware_spans
        self.signals_spans = signals_spans
        self.signals_denylist = signals_denylist or []
        self.cache_spans = cache_spans
        self.db_transaction_spans = db_transaction_spans
        self.http_methods_to_capture = tuple(map(str.upper, http_methods_to_capture))
        self.failed_request_status_codes = failed_request_status_codes

    @staticmethod
    def setup_once() -> None:
        """Check Django's version; patch each Django module when it is imported."""
        import importlib.util

        from tripwire.integrations._patch import on_undo
        from tripwire.integrations.logging import ignore_logger, unignore_logger
        from tripwire.utils import package_version

        if importlib.util.find_spec("django") is None:
            raise DidNotEnable("Django not installed")
        _check_minimum_version(DjangoIntegration, package_version("django"))

        # Django logs every 500 and every query; the integration reports them itself.
        for name in ("django.server", "django.request", "django.db.backends"):
            ignore_logger(name)
            on_undo(lambda name=name: unignore_logger(name))  # type: ignore[misc]

        for module, patcher in _PATCHERS:
            when_imported(module, patcher)


def _remove(items: list[Any], item: Any) -> None:
    while item in items:
        items.remove(item)


def _integration() -> Optional[DjangoIntegration]:
    integration: Optional[DjangoIntegration] = get_client().get_integration(DjangoIntegration)
    return integration


# -- the handlers ---------------------------------------------------------------------


def _patch_wsgi_handler(module: ModuleType) -> None:
    from tripwire.integrations._patch import patch_once

    patch_once(module.WSGIHandler, "__call__", _wrap_wsgi_call, _MARK)


def _wrap_wsgi_call(original: Callable[..., Any]) -> Callable[..., Any]:
    import functools

    from tripwire.integrations.wsgi import SentryWsgiMiddleware

    @functools.wraps(original)
    def __call__(self: Any, environ: Any, start_response: Any) -> Any:
        integration = _integration()
        if integration is None:
            return original(self, environ, start_response)
        # One middleware per handler and integration (sentry_sdk makes one per request).
        cached = self.__dict__.get(_MARK)
        if cached is None or cached[0] is not integration:
            from django.conf import settings

            middleware = SentryWsgiMiddleware(
                original.__get__(self, type(self)),
                settings.USE_X_FORWARDED_HOST,
                span_origin=DjangoIntegration.origin,
                http_methods_to_capture=integration.http_methods_to_capture,
            )
            cached = self.__dict__[_MARK] = (integration, middleware)
        return cached[1](environ, start_response)

    return __call__


def _patch_asgi_handler(module: ModuleType) -> None:
    from tripwire.integrations.django.asgi import patch_django_asgi_handler_impl

    patch_django_asgi_handler_impl(module.ASGIHandler)


def _patch_channels_http(module: ModuleType) -> None:
    # Channels 3's own AsgiHandler has Django's signature; Channels 4 serves HTTP with
    # Django's ASGIHandler (patched above) and has no channels.http.
    handler = getattr(module, "AsgiHandler", None)
    if handler is None or "__call__" not in vars(handler):
        return
    from tripwire.integrations.django.asgi import patch_django_asgi_handler_impl

    patch_django_asgi_handler_impl(handler)


def _patch_base_handler(module: ModuleType) -> None:
    from tripwire.integrations._patch import patch_once
    from tripwire.integrations.django.asgi import patch_get_response_async
    from tripwire.integrations.django.middleware import patch_django_middlewares
    from tripwire.integrations.django.views import patch_views

    patch_once(module.BaseHandler, "get_response", _wrap_get_response, _MARK)
    patch_get_response_async(module.BaseHandler, _before_get_response)
    patch_django_middlewares(module)
    patch_views(module)


def _wrap_get_response(original: Callable[..., Any]) -> Callable[..., Any]:
    import functools

    @functools.wraps(original)
    def get_response(self: Any, request: Any) -> Any:
        integration = _before_get_response(request)
        response = original(self, request)
        if integration is not None:
            if hasattr(request, "urlconf"):
                _resolve_again(request, integration)
            _user_onto_scope(request)
        return response

    return get_response


def _before_get_response(request: Any) -> Optional[DjangoIntegration]:
    """Name the request's transaction and attach its data to events; never raises."""
    integration = _integration()
    if integration is None:
        return None
    try:
        scope = _current_scope.get() or get_current_scope()
        _name_transaction(scope, integration.transaction_style, request)
        if integration.transaction_style != "url" and server_segment() is not None:
            set_route(_route(request))  # named after the view: the route is looked up
        scope.add_event_processor(_RequestProcessor(request))
    except Exception:
        pass
    return integration


def _user_onto_scope(request: Any) -> None:
    """Under span streaming (as sentry_sdk), the request's authenticated user onto the
    scope as the options allow: the segment, ending after the response, carries it."""
    try:
        options = get_client().options
        if not span_streaming_enabled(options) or not may_send_user(options):
            return
        from django.utils.functional import SimpleLazyObject

        user = getattr(request, "user", None)
        if isinstance(user, SimpleLazyObject):
            # Evaluating it may query (or fail in an async view): only a loaded user.
            user = getattr(request, "_cached_user", None)
        if user is None or not is_authenticated(user):
            return
        found: dict[str, Any] = {}
        _set_user_info(request, {"user": found})
        if found:
            get_isolation_scope().set_user(found)
    except Exception:
        pass


def _resolve_again(request: Any, integration: DjangoIntegration) -> None:
    # A middleware may have set `request.urlconf`: the route is looked up in it.
    if integration.transaction_style == "url":
        try:
            _name_transaction(get_current_scope(), "url", request)
        except Exception:
            pass


# Bound on the first request (no import statement on the request path).
_resolver: Any = None


def _route(request: Any) -> Optional[str]:
    """The request's route as a pattern (``/polls/{poll_id}/``), None if none matches."""
    global _resolver
    if _resolver is None:
        from tripwire.integrations.django.transactions import LEGACY_RESOLVER

        _resolver = LEGACY_RESOLVER
    try:
        found: Optional[str] = _resolver.resolve(
            request.path_info, getattr(request, "urlconf", None)
        )
        return found
    except Exception:
        return None


def _name_transaction(scope: Any, style: str, request: Any) -> None:
    name: Optional[str] = None
    if style == "url":
        name = _route(request)
        set_route(name)
    else:
        from django.urls import Resolver404, resolve

        try:
            view = resolve(request.path).func
            name = transaction_from_function(getattr(view, "view_class", view))
        except Resolver404:
            _name_after_handler404(scope)
            return
    if name is None:
        scope.set_transaction_name(request.path_info, "url")
    else:
        scope.set_transaction_name(name, _SOURCE_FOR_STYLE[style])


def _name_after_handler404(scope: Any) -> None:
    # As sentry_sdk: the name of the project's 404 view, if it has one (source unchanged).
    from importlib import import_module

    from django.conf import settings

    urlconf = import_module(settings.ROOT_URLCONF)
    handler = getattr(urlconf, "handler404", None)
    if handler is None:
        return
    if isinstance(handler, str):
        scope.transaction = handler
    else:
        scope.transaction = transaction_from_function(getattr(handler, "view_class", handler))


# -- errors ---------------------------------------------------------------------------


def _connect_signals(module: ModuleType) -> None:
    from tripwire.integrations._patch import on_undo

    signal = module.got_request_exception
    signal.connect(_got_request_exception, dispatch_uid=_MARK)
    on_undo(lambda: signal.disconnect(dispatch_uid=_MARK))


def _got_request_exception(request: Any = None, **kwargs: Any) -> None:
    client = get_client()
    integration = client.get_integration(DjangoIntegration)
    if integration is None:
        return
    try:
        request._sentry_exception_reported = True
    except Exception:
        pass
    exc_info = sys.exc_info()
    if exc_info[1] is None:
        return
    if request is not None and hasattr(request, "urlconf"):
        _resolve_again(request, integration)
    capture_unhandled(client, exc_info, "django")


def _patch_exception_handler(module: ModuleType) -> None:
    from tripwire.integrations._patch import patch_once

    if hasattr(module, "response_for_exception"):
        patch_once(module, "response_for_exception", _wrap_response_for_exception, _MARK)


def _wrap_response_for_exception(original: Callable[..., Any]) -> Callable[..., Any]:
    import functools

    @functools.wraps(original)
    def response_for_exception(request: Any, exc: BaseException) -> Any:
        client = get_client()
        integration = client.get_integration(DjangoIntegration)
        if integration is None:
            return original(request, exc)
        # The same request may come here twice (the view, then a middleware).
        try:
            request._sentry_exception_reported = False
        except Exception:
            pass
        response = original(request, exc)
        # Reported already if Django gave up on it (`got_request_exception`).
        if (
            not getattr(request, "_sentry_exception_reported", False)
            and getattr(response, "status_code", None) in integration.failed_request_status_codes
        ):
            _capture_handled(client, request, integration, exc)
        return response

    return response_for_exception


def _capture_handled(
    client: Any, request: Any, integration: DjangoIntegration, exc: BaseException
) -> None:
    try:
        if hasattr(request, "urlconf"):
            _resolve_again(request, integration)
        event, hint = client._event_from_exception(
            (type(exc), exc, exc.__traceback__), mechanism={"type": "django", "handled": True}
        )
        capture_event(get_current_scope(), event, hint, None, {}, built_by_sdk=True)
    except Exception:
        pass


# -- the request's data on events -----------------------------------------------------


class _RequestProcessor:
    """Adds the Django request's cookies, body and user to an event being sent."""

    __slots__ = ("request",)

    def __init__(self, request: Any) -> None:
        # Weak: a scope kept beyond the request does not keep the request alive.
        self.request = weakref.ref(request)

    def __call__(self, event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        request = self.request()
        if request is None:
            return event
        options = get_client().options
        try:
            info = event.get("request")
            if not isinstance(info, dict):
                info = event["request"] = {}
            _extract_into(info, request, options)
        except Exception:
            pass
        if may_send_user(options):
            try:
                _set_user_info(request, event)
            except Exception:
                pass
        return event


def _extract_into(info: dict[str, Any], request: Any, options: dict[str, Any]) -> None:
    from tripwire import _data_collection

    cookies = _data_collection.request_cookies(_cookies(request), options)
    if cookies:
        info["cookies"] = cookies
    try:
        length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        length = 0
    data = body_part(options, length, lambda: _read_body(request))
    if data is not None:
        info["data"] = data


def _cookies(request: Any) -> dict[str, Any]:
    from django.conf import settings

    private = (settings.CSRF_COOKIE_NAME, settings.SESSION_COOKIE_NAME)
    return {
        key: SENSITIVE_DATA_SUBSTITUTE if key in private else value
        for key, value in request.COOKIES.items()
    }


def _read_body(request: Any) -> Any:
    """The parsed body (form fields and files, or JSON), else the raw body, else None.

    The raw body is read first: Django then keeps it, so the form can still be parsed.
    """
    import json

    from django.http.request import RawPostDataException

    drf = getattr(request, "_sentry_drf_request_backref", None)
    if drf is not None:
        wrapped = drf()
        if wrapped is not None:
            try:
                return wrapped.data
            except Exception:
                pass
    raw: Any = None
    try:
        raw = request.body
    except (RawPostDataException, ValueError):
        raw = None
    form: Any = None
    files: Any = None
    try:
        form = request.POST
    except Exception:
        form = None
    try:
        files = request.FILES
    except Exception:
        files = None
    if form or files:
        data: dict[str, Any] = dict(form.items()) if form else {}
        for key in files or ():
            data[key] = AnnotatedValue.removed_because_raw_data()
        return data
    if raw and _is_json(request.META.get("CONTENT_TYPE")):
        try:
            return json.loads(raw if isinstance(raw, str) else raw.decode("utf-8"))
        except ValueError:
            pass
    return raw


def _is_json(content_type: Optional[str]) -> bool:
    media = (content_type or "").split(";", 1)[0]
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _set_user_info(request: Any, event: dict[str, Any]) -> None:
    user_info = event.get("user")
    if not isinstance(user_info, dict):
        user_info = event["user"] = {}
    user = getattr(request, "user", None)
    if user is None or not is_authenticated(user):
        return
    try:
        user_info.setdefault("id", str(user.pk))
    except Exception:
        pass
    try:
        user_info.setdefault("email", user.email)
    except Exception:
        pass
    try:
        user_info.setdefault("username", user.get_username())
    except Exception:
        pass


# -- events: template frames, querysets ----------------------------------------------


def _add_template_frames(event: Any, hint: Any) -> Any:
    """A template error's stack gets the template's line as a frame."""
    if not hint or "django.template" not in sys.modules:
        return event
    exc_info = hint.get("exc_info")
    exception = event.get("exception") if exc_info else None
    values = exception.get("values") if isinstance(exception, dict) else None
    if not values:
        return event
    if get_client().get_integration(DjangoIntegration) is None:
        return event
    from tripwire.integrations.django.templates import get_template_frame_from_exception
    from tripwire.utils import walk_exception_chain

    for value, (_, exc_value, _) in zip(reversed(values), walk_exception_chain(exc_info)):
        frame = get_template_frame_from_exception(exc_value)
        if frame is None:
            continue
        frames = (value.get("stacktrace") or {}).get("frames")
        if frames is None:
            continue
        at = len(frames)
        for index in range(len(frames) - 1, -1, -1):
            found = frames[index]
            if found.get("module") == "django.template.base" and found.get("function") in (
                "Parser.parse",
                "parse",
                "render",
            ):
                at = index + 1
                break
        frames.insert(at, frame)
    return event


def _queryset_repr(value: Any, hint: Any) -> Any:
    """An unevaluated queryset is shown as its type, not run to be shown."""
    query = sys.modules.get("django.db.models.query")
    queryset = getattr(query, "QuerySet", None)
    if queryset is None or not isinstance(value, queryset) or value._result_cache:
        return NotImplemented
    return f"<{type(value).__name__} from {type(value).__module__} at 0x{id(value):x}>"


def _add_context_sequence(module: ModuleType) -> None:
    from tripwire.serializer import add_repr_sequence_type

    context = getattr(module, "BaseContext", None)
    if context is not None:
        from tripwire.serializer import sequence_types

        if context not in sequence_types:
            add_repr_sequence_type(context)


# -- the other patches, each run when its Django module is imported -------------------


def _patch_db_utils(module: ModuleType) -> None:
    from tripwire.integrations.django._db import patch_cursor_wrapper

    patch_cursor_wrapper(module)


def _patch_db_base(module: ModuleType) -> None:
    from tripwire.integrations.django._db import patch_database_wrapper

    patch_database_wrapper(module)


def _patch_signals(module: ModuleType) -> None:
    from tripwire.integrations.django.signals_handlers import patch_signals

    patch_signals(module)


def _patch_template_response(module: ModuleType) -> None:
    from tripwire.integrations.django.templates import patch_template_response

    patch_template_response(module)


def _patch_shortcuts(module: ModuleType) -> None:
    from tripwire.integrations.django.templates import patch_shortcuts

    patch_shortcuts(module)


def _patch_cache(module: ModuleType) -> None:
    from tripwire.integrations.django.caching import patch_caching

    patch_caching(module)


def _patch_drf_views(module: ModuleType) -> None:
    from tripwire.integrations.django._drf import patch_api_view

    patch_api_view(module)


def _patch_drf_request(module: ModuleType) -> None:
    from tripwire.integrations.django._drf import patch_authenticate

    patch_authenticate(module)


def _register_processors(module: ModuleType) -> None:
    # Only in processes that use Django: the template-frame processor is the SDK's own
    # (internal: events keep the fast serialization path) and a repr processor would
    # slow every serialization down.
    from tripwire.integrations._patch import on_undo
    from tripwire.integrations._processors import add_internal_processor
    from tripwire.serializer import add_global_repr_processor, global_repr_processors

    add_internal_processor(_add_template_frames)
    add_global_repr_processor(_queryset_repr)
    on_undo(lambda: _remove(global_repr_processors, _queryset_repr))


_PATCHERS: tuple[tuple[str, Callable[[ModuleType], None]], ...] = (
    ("django", _register_processors),
    ("django.core.handlers.wsgi", _patch_wsgi_handler),
    ("django.core.handlers.asgi", _patch_asgi_handler),
    ("channels.http", _patch_channels_http),
    ("django.core.handlers.base", _patch_base_handler),
    ("django.core.handlers.exception", _patch_exception_handler),
    ("django.core.signals", _connect_signals),
    ("django.dispatch.dispatcher", _patch_signals),
    ("django.template.response", _patch_template_response),
    ("django.template.context", _add_context_sequence),
    ("django.shortcuts", _patch_shortcuts),
    ("django.db.backends.utils", _patch_db_utils),
    ("django.db.backends.base.base", _patch_db_base),
    ("django.core.cache", _patch_cache),
    ("rest_framework.views", _patch_drf_views),
    ("rest_framework.request", _patch_drf_request),
)


def _start_span(
    op: str,
    name: Any,
    origin: str = DjangoIntegration.origin,
    attributes: Optional[Mapping[str, Any]] = None,
) -> Any:
    """A child of the active span (origin ``auto.http.django`` by default), or None.

    `attributes` are given at its start when it is a streamed span (`ignore_spans` sees
    them), as sentry_sdk's; never to a span of a transaction.
    """
    parent = (_current_scope.get() or get_current_scope())._d.span or get_isolation_scope()._d.span
    if parent is None:
        return None
    if attributes:
        return start_child(
            parent, op=op, name=name, origin=origin, **child_start(attributes, parent)
        )
    return start_child(parent, op=op, name=name, origin=origin)


__all__ = ["DjangoIntegration"]
