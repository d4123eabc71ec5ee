"""aiohttp integration, client side: requests of `aiohttp.ClientSession`.

As sentry_sdk 2.75's ``aiohttp`` integration, every `ClientSession` made while a
client has this integration gets one more `aiohttp.TraceConfig`; for each request:

- inside a span (a transaction), an ``http.client`` span "METHOD url" (credentials
  filtered, query and fragment as data) with origin ``auto.http.aiohttp``, finished
  with the status and reason of the response (the code location when slower than
  ``http_request_source_threshold_ms``). A request that gets no response leaves its
  span unfinished, so it is not sent, as in sentry_sdk;
- the trace headers, as `_common.http.outgoing_trace_headers` decides; headers the
  caller set are kept (an existing ``sentry-trace``, a ``baggage`` with
  ``sentry-*`` entries), other ``baggage`` is appended to;
- an ``httplib`` breadcrumb once the response came (level from its status).

Not built yet: the server side (a transaction per `aiohttp.web` request, named by
``transaction_style``, with ``failed_request_status_codes`` captured). The options are
accepted and kept, as sentry_sdk's, for the web-framework work. Also not yet: leaving
out trace headers that an AWS SigV4 signature covers.
"""

from __future__ import annotations

from collections.abc import Set
from types import ModuleType
from typing import Any, Callable

from tripwire.integrations import (
    _DEFAULT_FAILED_REQUEST_STATUS_CODES,
    DidNotEnable,
    Integration,
)
from tripwire.integrations._common._hooks import when_imported

ORIGIN = "auto.http.aiohttp"
TRANSACTION_STYLE_VALUES = ("handler_name", "method_and_path_pattern")
_MARK = "__tripwire_aiohttp__"


class AioHttpIntegration(Integration):
    """Spans, breadcrumbs and trace propagation for `aiohttp.ClientSession` requests.

    Args:
        transaction_style: How server-side transactions will be named:
            ``"handler_name"`` or ``"method_and_path_pattern"``.
        failed_request_status_codes: Server responses whose status is in this set
            will be captured as errors (default 500-599).

    The server side (transactions per request) is not built yet: the two options are
    validated and kept, and have no effect for now.
    """

    identifier = "aiohttp"
    origin = ORIGIN

    def __init__(
        self,
        transaction_style: str = "handler_name",
        *,
        failed_request_status_codes: Set[int] = _DEFAULT_FAILED_REQUEST_STATUS_CODES,
    ) -> None:
        if transaction_style not in TRANSACTION_STYLE_VALUES:
            raise ValueError(
                f"Invalid value for transaction_style: {transaction_style} "
                f"(must be in {TRANSACTION_STYLE_VALUES})"
            )
        self.transaction_style = transaction_style
        self._failed_request_status_codes = failed_request_status_codes

    @staticmethod
    def setup_once() -> None:
        """Patch `ClientSession.__init__` once aiohttp is imported."""
        import importlib.util

        if importlib.util.find_spec("aiohttp") is None:
            raise DidNotEnable("AIOHTTP not installed")
        when_imported("aiohttp", _patch_aiohttp)


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


def _trace_config() -> Any:
    from aiohttp import TraceConfig

    from tripwire.integrations._common.http import OutgoingRequest

    async def on_request_start(session: Any, context: Any, params: Any) -> None:
        outgoing = OutgoingRequest.begin(
            AioHttpIntegration, ORIGIN, params.method.upper(), params.url
        )
        if outgoing is None:
            return
        try:
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


__all__ = ["AioHttpIntegration"]
