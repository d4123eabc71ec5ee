"""pyreqwest integration: outgoing requests of pyreqwest's clients.

As sentry_sdk 2.75's ``pyreqwest`` integration, a middleware is added to every client
(`ClientBuilder.build`, `SyncClientBuilder.build`) and one-off request
(`OneOffRequestBuilder.send`, `SyncOneOffRequestBuilder.send`) built while a client
has this integration. For every request it sees:

- inside a span (a transaction), an ``http.client`` span "METHOD url" (credentials
  filtered, query and fragment as data) with origin ``auto.http.pyreqwest``, with the
  response's status, or ``internal_error`` if none came;
- the trace headers, as `_common.http.outgoing_trace_headers` decides (an existing
  ``baggage`` header keeps its third-party entries);
- an ``httplib`` breadcrumb with the method and status once a response came (and,
  with the user's consent, the URL, query and fragment).

Under span streaming, as httpx's (see `tripwire.integrations.httpx`); the breadcrumb
then has the URL, query and fragment with the user's consent.

The builders are patched when `pyreqwest` is imported (at once if it is); set-up
raises `DidNotEnable` if pyreqwest is not installed.
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import Any, Callable

from tripwire.consts import SPANDATA
from tripwire.integrations import DidNotEnable, Integration
from tripwire.integrations._common._hooks import when_imported

ORIGIN = "auto.http.pyreqwest"
_MARK = "__tripwire_pyreqwest__"
_INSTRUMENTED = "_tripwire_instrumented"


class PyreqwestIntegration(Integration):
    """Spans, breadcrumbs and trace propagation for pyreqwest requests."""

    identifier = "pyreqwest"
    origin = ORIGIN

    @staticmethod
    def setup_once() -> None:
        """Patch pyreqwest's builders once `pyreqwest` is imported."""
        import importlib.util

        if importlib.util.find_spec("pyreqwest") is None:
            raise DidNotEnable("pyreqwest is not installed")
        when_imported("pyreqwest", _patch_pyreqwest)


def _patch_pyreqwest(_module: ModuleType) -> None:
    # The builders are native classes, shared by every module that re-exports them
    # (`pyreqwest.simple...` does not import `pyreqwest.request`): patch them at once.
    import importlib

    from tripwire.integrations._patch import patch_once

    try:
        client = importlib.import_module("pyreqwest.client")
        request = importlib.import_module("pyreqwest.request")
    except ImportError:  # an incompatible version: its requests go out unobserved
        return
    for module, name, method, middleware in (
        (client, "ClientBuilder", "build", sentry_async_middleware),
        (client, "SyncClientBuilder", "build", sentry_sync_middleware),
        (request, "OneOffRequestBuilder", "send", sentry_async_middleware),
        (request, "SyncOneOffRequestBuilder", "send", sentry_sync_middleware),
    ):
        cls = getattr(module, name, None)
        if cls is not None and hasattr(cls, method):
            patch_once(cls, method, _with_middleware(middleware), _MARK)


def _with_middleware(middleware: Callable[..., Any]) -> Callable[[Any], Any]:
    def make(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def method(self: Any, *args: Any, **kwargs: Any) -> Any:
            try:
                if _enabled() and not getattr(self, _INSTRUMENTED, False):
                    self.with_middleware(middleware)
                    try:
                        setattr(self, _INSTRUMENTED, True)
                    except (AttributeError, TypeError):  # a native object without a __dict__
                        pass
            except Exception:  # a builder that refuses: the request goes out unobserved
                pass
            return original(self, *args, **kwargs)

        return method

    return make


def _enabled() -> bool:
    from tripwire.scope._current import get_client

    return get_client().get_integration(PyreqwestIntegration) is not None


def _begin(request: Any) -> Any:
    from tripwire.integrations._common.http import OutgoingRequest

    outgoing = OutgoingRequest.begin(PyreqwestIntegration, ORIGIN, str(request.method), request.url)
    if outgoing is not None:
        try:
            outgoing.merge_headers_into(request.headers)
        except Exception:
            pass
    return outgoing


def _responded(outgoing: Any, response: Any) -> None:
    from tripwire.tracing_utils import add_http_breadcrumb

    try:
        status = response.status
        outgoing.end_span(status, with_reason=False)
        if outgoing.streamed is not None:
            # Under span streaming the breadcrumb has the URL, with the user's consent.
            data = outgoing.crumb_data(status, None, _STREAMED_CRUMB_ORDER)
        else:
            # As sentry_sdk 2.75: the URL (without query) only with the user's consent.
            data = {SPANDATA.HTTP_METHOD: outgoing.method, SPANDATA.HTTP_STATUS_CODE: status}
            data.update(_consented_url(outgoing))
        add_http_breadcrumb(status, data)
    except Exception:
        pass


def _consented_url(outgoing: Any) -> dict[str, Any]:
    """The breadcrumb's URL, query and fragment, if the user consented to URL data."""
    from tripwire.integrations._common.streaming import url_attributes
    from tripwire.scope._current import get_client

    full = outgoing.url
    if outgoing.query:
        full += "?" + outgoing.query
    if outgoing.fragment:
        full += "#" + outgoing.fragment
    found = url_attributes(get_client(), full)
    if not found:
        return {}
    return {
        "url": outgoing.url,
        SPANDATA.HTTP_QUERY: found.get(SPANDATA.URL_QUERY, ""),
        SPANDATA.HTTP_FRAGMENT: found.get(SPANDATA.URL_FRAGMENT, ""),
    }


_STREAMED_CRUMB_ORDER = (
    SPANDATA.HTTP_METHOD,
    SPANDATA.HTTP_STATUS_CODE,
    "url",
    SPANDATA.HTTP_QUERY,
    SPANDATA.HTTP_FRAGMENT,
)


def sentry_sync_middleware(request: Any, next_handler: Any) -> Any:
    outgoing = _begin(request)
    if outgoing is None:
        return next_handler.run(request)
    try:
        response = next_handler.run(request)
    except BaseException as exc:
        outgoing.failed(exc)
        raise
    _responded(outgoing, response)
    return response


# Named as sentry_sdk's: pyreqwest runs the async middleware as an asyncio task, which
# the asyncio integration names after it.
async def sentry_async_middleware(request: Any, next_handler: Any) -> Any:
    outgoing = _begin(request)
    if outgoing is None:
        return await next_handler.run(request)
    try:
        response = await next_handler.run(request)
    except BaseException as exc:
        outgoing.failed(exc)
        raise
    _responded(outgoing, response)
    return response


__all__ = ["PyreqwestIntegration"]
