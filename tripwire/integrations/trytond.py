"""Tryton: the requests of trytond's WSGI application, through the WSGI middleware.

As sentry_sdk 2.75's ``trytond`` integration (`TrytondWSGIIntegration`, identifier
``trytond_wsgi``):

- `trytond.wsgi.app` serves each request inside `SentryWsgiMiddleware`'s request
  handling (origin ``auto.http.trytond_wsgi``): scopes, session, trace continuation,
  an ``http.server`` transaction "generic WSGI request" and the request on events;
- an exception that an endpoint raises and Tryton turns into a response (a JSON-RPC or
  XML-RPC fault, a 500) reaches Tryton's error handlers: there it is captured
  unhandled with mechanism ``trytond``, unless it is a `TrytonException` (`UserError`,
  `UserWarning`, `ConcurrencyException`, ...), which are messages meant for the user;
- the ``trytond.wsgi`` logger is ignored, so the traceback Tryton logs for the same
  error is not reported a second time.

Set-up imports `trytond.wsgi` (the integration is not auto-enabled). Unlike sentry_sdk,
with the integration off (a client without it) requests pass straight through.
"""

from __future__ import annotations

from typing import Any, Callable

from tripwire.integrations import DidNotEnable, Integration
from tripwire.integrations._common.unhandled import capture_unhandled
from tripwire.integrations.wsgi import SentryWsgiMiddleware
from tripwire.scope._current import get_client

_MECHANISM = "trytond"


class TrytondWSGIIntegration(Integration):
    """Errors, transactions and request data of trytond's WSGI application."""

    identifier = "trytond_wsgi"
    origin = f"auto.http.{identifier}"

    @staticmethod
    def setup_once() -> None:
        import importlib

        # Imported by name: trytond ships no type information.
        try:
            TrytonException = importlib.import_module("trytond.exceptions").TrytonException
            app = importlib.import_module("trytond.wsgi").app
        except ImportError as exc:
            raise DidNotEnable("Trytond is not installed.") from exc

        from tripwire.integrations._patch import on_undo, patch
        from tripwire.integrations.logging import ignore_logger

        ignore_logger("trytond.wsgi")
        middleware = SentryWsgiMiddleware(app.wsgi_app, span_origin=TrytondWSGIIntegration.origin)
        patch(app, "wsgi_app", _gated(app.wsgi_app, middleware))
        # Tryton calls its error handlers with the exception an endpoint raised, before
        # it turns it into a response (Tryton 5.4+ signature: app, request, error).
        handler = _error_handler(TrytonException)
        app.error_handler(handler)
        on_undo(lambda: _remove(app.error_handlers, handler))


def _gated(original: Callable[..., Any], middleware: SentryWsgiMiddleware) -> Callable[..., Any]:
    """`app.wsgi_app` through the middleware while the integration is on."""

    def wsgi_app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        if get_client().get_integration(TrytondWSGIIntegration) is not None:
            return middleware(environ, start_response)
        return original(environ, start_response)

    return wsgi_app


def _error_handler(ignored: type[BaseException]) -> Callable[..., None]:
    """A Tryton error handler that reports errors other than `ignored` ones."""

    def tripwire_error_handler(app: Any, request: Any, error: BaseException) -> None:
        try:
            client = get_client()
            if isinstance(error, ignored) or client.get_integration(TrytondWSGIIntegration) is None:
                return
            capture_unhandled(client, (type(error), error, error.__traceback__), _MECHANISM)
        except Exception:  # reporting must never break Tryton's own error response
            pass

    return tripwire_error_handler


def _remove(handlers: list[Any], handler: Any) -> None:
    if handler in handlers:
        handlers.remove(handler)


__all__ = ["TrytondWSGIIntegration"]
