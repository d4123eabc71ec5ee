"""Flask: every request of every `Flask` application, through the WSGI middleware.

As sentry_sdk 2.75's ``flask`` integration:

- `Flask.__call__` runs the application inside `SentryWsgiMiddleware`'s request
  handling (origin ``auto.http.flask``, the integration's `http_methods_to_capture`);
- at ``request_started`` the transaction and the request's events are named after the
  matched rule: its endpoint (source ``component``, the default `transaction_style`)
  or its URL rule (``transaction_style="url"``, source ``route``); with
  `send_default_pii` (or `data_collection.user_info`), Flask-Login's current user
  (``id``, and ``email``/``username`` where the user object has them) becomes the
  scope's user;
- events get, besides the WSGI request part, the request's cookies (with PII), and its
  body bounded by `max_request_body_size`: form fields (uploaded files marked as
  removed raw data), else JSON, else a raw body marked as removed;
- an exception Flask handles as a 500 (``got_request_exception``) is captured
  unhandled with mechanism ``flask``;
- every template rendered gets ``sentry_trace`` / ``sentry_trace_meta`` in its
  context: the trace `<meta>` tags (``before_render_template``).

Set-up raises `DidNotEnable` when Flask is not installed, and, once Flask is imported,
when it is older than 1.1.4 or blinker is missing (then a logged skip if Flask is
imported after `init()`). Nothing imports Flask: the patch is installed when the
application imports it.
"""

from __future__ import annotations

import functools
import sys
from types import ModuleType
from typing import Any, Callable, Optional

from tripwire._log import logger
from tripwire.integrations import DidNotEnable, Integration, _check_minimum_version
from tripwire.integrations._common._hooks import when_imported
from tripwire.integrations._common.unhandled import capture_unhandled
from tripwire.integrations._common.web import (
    DEFAULT_HTTP_METHODS_TO_CAPTURE,
    body_part,
    checked_transaction_style,
    may_send_user,
    set_route,
)
from tripwire.integrations.wsgi import WsgiRequestProcessor, _wsgi_middleware_applied, serve
from tripwire.scope._current import get_client, get_current_scope, get_isolation_scope
from tripwire.utils import AnnotatedValue

TRANSACTION_STYLE_VALUES = ("endpoint", "url")
_SOURCE_FOR_STYLE = {"endpoint": "component", "url": "route"}
_MARK = "__tripwire_flask__"

# Flask's request proxy and markupsafe's Markup, once Flask is imported.
_flask_request: Any = None
_Markup: Any = None


class FlaskIntegration(Integration):
    """Errors, transactions, request data and the user of Flask applications.

    Args:
        transaction_style: Name transactions after the view's ``"endpoint"`` or its
            ``"url"`` rule.
        http_methods_to_capture: The methods whose requests get a transaction.

    Raises:
        ValueError: An unknown `transaction_style`.
    """

    identifier = "flask"
    origin = f"auto.http.{identifier}"

    transaction_style = ""

    def __init__(
        self,
        transaction_style: str = "endpoint",
        http_methods_to_capture: tuple[str, ...] = DEFAULT_HTTP_METHODS_TO_CAPTURE,
    ) -> None:
        self.transaction_style = checked_transaction_style(
            transaction_style, TRANSACTION_STYLE_VALUES
        )
        self.http_methods_to_capture = tuple(map(str.upper, http_methods_to_capture))

    @staticmethod
    def setup_once() -> None:
        """Patch Flask and connect its signals when it is imported (now if it is)."""
        module = sys.modules.get("flask")
        if module is not None:
            _check_flask()
        else:
            import importlib.util

            if importlib.util.find_spec("flask") is None:
                raise DidNotEnable("Flask is not installed")
        when_imported("flask", _setup_flask)


def _check_flask() -> None:
    # Flask's own __version__ is deprecated (a warning): the distribution's metadata.
    from tripwire.utils import package_version

    _check_minimum_version(FlaskIntegration, package_version("flask"), "Flask")
    try:
        import blinker  # noqa: F401
    except ImportError:
        raise DidNotEnable("blinker is not installed") from None
    quart = sys.modules.get("quart")
    if quart is not None and getattr(quart, "Quart", None) is sys.modules["flask"].Flask:
        raise DidNotEnable("This is not a Flask app but rather Quart pretending to be Flask")


def _setup_flask(module: ModuleType) -> None:
    try:
        _check_flask()
    except DidNotEnable as exc:
        logger.debug("Did not enable integration flask: %s", exc)
        return
    from flask import signals
    from markupsafe import Markup

    from tripwire.integrations._patch import on_undo, patch_once

    global _flask_request, _Markup
    _flask_request, _Markup = module.request, Markup

    patch_once(module.Flask, "__call__", _wrap_call, _MARK)
    receivers: tuple[tuple[Any, Callable[..., None]], ...] = (
        (signals.before_render_template, _add_sentry_trace),
        (signals.request_started, _request_started),
        (signals.got_request_exception, _capture_exception),
    )
    for signal, receiver in receivers:
        signal.connect(receiver, weak=False)
        on_undo(functools.partial(signal.disconnect, receiver))


def _wrap_call(original: Callable[..., Any]) -> Callable[..., Any]:
    def __call__(self: Any, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        integration = get_client().get_integration(FlaskIntegration)
        if integration is None or _wsgi_middleware_applied.get() is not None:
            return original(self, environ, start_response)
        return serve(
            original.__get__(self),
            environ,
            start_response,
            FlaskRequestProcessor(environ, False),
            FlaskIntegration.origin,
            integration.http_methods_to_capture,
        )

    __call__.__wrapped__ = original  # type: ignore[attr-defined]
    __call__.__doc__ = original.__doc__
    return __call__


class FlaskRequestProcessor(WsgiRequestProcessor):
    """The WSGI request part plus, once Flask matched the request, cookies and body."""

    __slots__ = ("request",)

    def __init__(self, environ: dict[str, Any], use_x_forwarded_for: bool) -> None:
        super().__init__(environ, use_x_forwarded_for)
        self.request: Any = None

    def apply(self, event: dict[str, Any], options: dict[str, Any]) -> None:
        """The WSGI part, Flask's cookies and body, and Flask-Login's user with PII."""
        super().apply(event, options)
        if self.request is not None and may_send_user(options):
            try:
                _add_user_to_event(event)
            except Exception:  # outside the request context: the scope's user stands
                pass

    def cookies(self) -> Optional[dict[str, Any]]:
        """The cookies Flask parsed (None before Flask matched the request)."""
        request = self.request
        if request is None:
            return None
        try:
            return dict(request.cookies.items())
        except Exception:
            return {}

    def add_body(self, part: dict[str, Any], options: dict[str, Any]) -> None:
        """The body as sentry_sdk reads it, bounded by `max_request_body_size`."""
        request = self.request
        if request is None:
            return
        try:
            length = int(self.environ.get("CONTENT_LENGTH") or 0)
        except ValueError:
            length = 0
        data = body_part(options, length, lambda: _read_body(request))
        if data is not None:
            part["data"] = data


def _read_body(request: Any) -> Any:
    """Form fields (files marked), else JSON, else the raw bytes (as sentry_sdk reads it)."""
    raw = request.get_data()  # cached: the form and JSON parsers read it again
    form = request.form
    files = request.files
    if form or files:
        data: dict[str, Any] = dict(form.items())
        for key in files:
            data[key] = AnnotatedValue.removed_because_raw_data()
        return data
    if request.is_json:
        parsed = request.get_json(silent=True)
        if parsed is not None:
            return parsed
    return raw


def _request_started(sender: Any, **kwargs: Any) -> None:
    client = get_client()
    integration = client.get_integration(FlaskIntegration)
    if integration is None:
        return
    try:
        request = _flask_request._get_current_object()
        processor = _wsgi_middleware_applied.get()
        if isinstance(processor, FlaskRequestProcessor):
            processor.request = request
        else:  # the app runs inside a user's SentryWsgiMiddleware: add Flask's part
            outer = processor
            processor = FlaskRequestProcessor(request.environ, False)
            if isinstance(outer, WsgiRequestProcessor):
                processor.inside(outer)  # the request as it reached the middleware
            processor.request = request
            get_isolation_scope().add_event_processor(processor)
        rule = request.url_rule
        if rule is not None:
            style = integration.transaction_style
            name = rule.rule if style == "url" else rule.endpoint
            get_current_scope().set_transaction_name(name, _SOURCE_FOR_STYLE[style])
            set_route(rule.rule)
        if may_send_user(client.options):
            user = _get_flask_user_properties()
            if user:
                get_isolation_scope().set_user(user)
    except Exception:  # instrumentation must never fail the request
        pass


def _capture_exception(sender: Any, exception: BaseException, **kwargs: Any) -> None:
    client = get_client()
    if client.get_integration(FlaskIntegration) is None:
        return
    capture_unhandled(client, (type(exception), exception, exception.__traceback__), "flask")


def _add_sentry_trace(sender: Any, template: Any, context: dict[str, Any], **extra: Any) -> None:
    if "sentry_trace" in context or get_client().get_integration(FlaskIntegration) is None:
        return
    try:
        meta = _Markup(get_current_scope().trace_propagation_meta())
        context["sentry_trace"] = meta  # the older name
        context["sentry_trace_meta"] = meta
    except Exception:
        pass


def _get_flask_user_properties() -> dict[str, Any]:
    """Flask-Login's current user as an event's user (nothing without Flask-Login)."""
    flask_login = sys.modules.get("flask_login")
    if flask_login is None:
        return {}
    user = flask_login.current_user
    if user is None:
        return {}
    properties: dict[str, Any] = {}
    try:
        user_id = user.get_id()
        if user_id is not None:
            properties["id"] = user_id
    except AttributeError:  # Flask-Login not set up, or nobody logged in
        pass
    # Flask-User and others document these optional attributes.
    for attribute in ("email", "username"):
        value = getattr(user, attribute, None)
        if value is not None:
            properties[attribute] = value
    return properties


def _add_user_to_event(event: dict[str, Any], user: Optional[dict[str, Any]] = None) -> None:
    """Flask-Login's user into `event` (keys already there win)."""
    properties = user if user is not None else _get_flask_user_properties()
    if properties:
        target = event.setdefault("user", {})
        for key, value in properties.items():
            target.setdefault(key, value)


__all__ = ["FlaskIntegration"]
