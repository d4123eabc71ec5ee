"""httpx integration: outgoing requests of `httpx.Client` and `httpx.AsyncClient`.

As sentry_sdk 2.75's ``httpx`` integration, for every request a client sends:

- inside a span (a transaction), an ``http.client`` span "METHOD url" (credentials
  filtered, query and fragment as data) with origin ``auto.http.httpx``: the status
  and reason of the response, ``internal_error`` if no response came; the code
  location when slower than ``http_request_source_threshold_ms``;
- the trace headers, as `_common.http.outgoing_trace_headers` decides (an existing
  ``baggage`` header keeps its third-party entries);
- an ``httplib`` breadcrumb once a response came (level from its status).

Under span streaming (``trace_lifecycle="stream"``) as sentry_sdk 2.75 there
(`_common.http.OutgoingRequest`): a span only inside a streamed span, current while the
request runs, with ``http.request.method`` and, with the user's consent, the ``url.*``
attributes (then also the breadcrumb's URL, in full); outside a span the scope's trace.

`send` of both clients is patched when httpx is imported (at once if it is; set-up
raises `DidNotEnable` if httpx is not installed); the patches fall through to httpx
when no client has this integration.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Callable

from tripwire.integrations import DidNotEnable, Integration
from tripwire.integrations._common._hooks import when_imported

ORIGIN = "auto.http.httpx"
_MARK = "__tripwire_httpx__"


class HttpxIntegration(Integration):
    """Spans, breadcrumbs and trace propagation for httpx requests."""

    identifier = "httpx"
    origin = ORIGIN

    @staticmethod
    def setup_once() -> None:
        """Patch `Client.send` and `AsyncClient.send` once httpx is imported."""
        import importlib.util

        if importlib.util.find_spec("httpx") is None:
            raise DidNotEnable("httpx is not installed")
        when_imported("httpx", _patch_httpx)


def _patch_httpx(module: ModuleType) -> None:
    patch_clients(module, HttpxIntegration, ORIGIN, _MARK)


def patch_clients(module: ModuleType, integration: type, origin: str, mark: str) -> None:
    """Patch `send` of `module`'s `Client` and `AsyncClient` (httpx, and httpx2's copy)."""
    import functools

    from tripwire.integrations._patch import patch_once

    patch_once(module.Client, "send", functools.partial(_wrap_send, integration, origin), mark)
    patch_once(
        module.AsyncClient, "send", functools.partial(_wrap_async_send, integration, origin), mark
    )


def _wrap_send(integration: type, origin: str, original: Callable[..., Any]) -> Callable[..., Any]:
    import functools

    from tripwire.integrations._common.http import OutgoingRequest

    @functools.wraps(original)
    def send(self: Any, request: Any, **kwargs: Any) -> Any:
        outgoing = OutgoingRequest.begin(integration, origin, request.method, request.url)
        if outgoing is None:
            return original(self, request, **kwargs)
        outgoing.merge_headers_into(request.headers)
        try:
            response = original(self, request, **kwargs)
        except BaseException as exc:
            outgoing.failed(exc)
            raise
        outgoing.responded(response.status_code, response.reason_phrase, _CRUMB_ORDER)
        return response

    return send


def _wrap_async_send(
    integration: type, origin: str, original: Callable[..., Any]
) -> Callable[..., Any]:
    import functools

    from tripwire.integrations._common.http import OutgoingRequest

    @functools.wraps(original)
    async def send(self: Any, request: Any, **kwargs: Any) -> Any:
        outgoing = OutgoingRequest.begin(integration, origin, request.method, request.url)
        if outgoing is None:
            return await original(self, request, **kwargs)
        outgoing.merge_headers_into(request.headers)
        try:
            response = await original(self, request, **kwargs)
        except BaseException as exc:
            outgoing.failed(exc)
            raise
        outgoing.responded(response.status_code, response.reason_phrase, _CRUMB_ORDER)
        return response

    return send


# sentry_sdk's key order of the httpx breadcrumb's data.
_CRUMB_ORDER = (
    "http.method",
    "http.response.status_code",
    "reason",
    "url",
    "http.query",
    "http.fragment",
)

__all__ = ["HttpxIntegration"]
