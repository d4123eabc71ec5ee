"""Google Cloud Functions: a transaction per call, its errors, timeout warnings, a flush.

As sentry_sdk 2.75's ``gcp`` integration, in the Cloud Functions Python runtime whose
``__main__`` holds ``worker_v1`` (the Python 3.7 runtime's worker; the newer runtimes
built on ``functions-framework`` have none, and sentry_sdk instruments nothing there
either), ``worker_v1.FunctionHandler.invoke_user_function`` is wrapped. When
``FUNCTION_TIMEOUT_SEC`` is set, each call:

- runs in a fork of the isolation scope with breadcrumbs cleared, tagged
  ``gcp_region`` (``FUNCTION_REGION``);
- continues the incoming trace (the request's ``sentry-trace`` / ``baggage``) in a
  ``function.gcp`` transaction named ``FUNCTION_NAME``, source ``component``, origin
  ``auto.function.gcp``; ``gcp_env`` and ``gcp_event`` are in the sampling context;
- captures an exception escaping the function (mechanism
  ``{"type": "gcp", "handled": false}``), then re-raises it;
- gives events ``extra["google cloud functions"]`` (name, entry point, identity,
  region, project, duration, configured timeout), ``extra["google cloud logs"]`` (the
  console URL) and a ``request`` (``gcp:///<function>``, method, query string,
  headers, body: the body only with ``send_default_pii`` or ``data_collection``);
- with ``GcpIntegration(timeout_warning=True)``, reports a ``ServerlessTimeoutWarning``
  1.5 s before the configured timeout;
- flushes the client at its end.

Under span streaming (``trace_lifecycle="stream"``) the call is a segment with
sentry_sdk's attributes (``cloud.provider``, ``faas.*``, ``gcp.project.id``, the
request's headers, method and query as the options allow), given when it starts so
`traces_sampler` and `ignore_spans` see them. Elsewhere set-up logs a
warning and does nothing, as sentry_sdk. The patch goes through `_patch.py` and falls through
when the active client lacks this integration.
"""

from __future__ import annotations

import functools
import sys
from datetime import datetime, timedelta, timezone
from os import environ
from typing import Any, Callable, Optional

from tripwire import _data_collection
from tripwire._log import logger
from tripwire._timeout_thread import TimeoutThread
from tripwire.api import continue_trace
from tripwire.consts import OP
from tripwire.integrations import Integration
from tripwire.integrations._common.unhandled import capture_unhandled
from tripwire.scope._current import get_client, get_current_scope, isolation_scope
from tripwire.tracing._api import sdk_start_transaction
from tripwire.tracing._sampling import has_span_streaming_enabled
from tripwire.utils import AnnotatedValue

ORIGIN = "auto.function.gcp"
TIMEOUT_WARNING_BUFFER = 1.5  # seconds before the timeout at which the warning is raised
_UNKNOWN_FUNCTION = "<unknown GCP function>"
# The function's environment variables a streamed segment carries, and their attributes.
_FUNCTION_ATTRIBUTES = (
    ("GCP_PROJECT", "gcp.project.id"),
    ("FUNCTION_IDENTITY", "faas.identity"),
    ("ENTRY_POINT", "faas.entry_point"),
)


class GcpIntegration(Integration):
    """A transaction per Cloud Function call, its errors and an optional timeout warning.

    Args:
        timeout_warning: Report a ``ServerlessTimeoutWarning`` 1.5 s before the
            function's timeout.
    """

    identifier = "gcp"
    origin = ORIGIN

    def __init__(self, timeout_warning: bool = False) -> None:
        self.timeout_warning = timeout_warning

    @staticmethod
    def setup_once() -> None:
        """Wrap the runtime worker's `invoke_user_function` (a warning outside it)."""
        main = sys.modules.get("__main__")
        worker = getattr(main, "worker_v1", None)
        if worker is None:
            logger.warning("GcpIntegration currently supports only Python 3.7 runtime environment.")
            return
        from tripwire.integrations._patch import patch

        handler = worker.FunctionHandler
        patch(handler, "invoke_user_function", _wrap_func(handler.invoke_user_function))


def _wrap_func(func: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(func)
    def invoke_user_function(
        function_handler: Any, gcp_event: Any, *args: Any, **kwargs: Any
    ) -> Any:
        client = get_client()
        integration = client.get_integration(GcpIntegration)
        if integration is None:
            return func(function_handler, gcp_event, *args, **kwargs)
        configured = environ.get("FUNCTION_TIMEOUT_SEC")
        if not configured:
            logger.debug(
                "The configured timeout could not be fetched from Cloud Functions configuration."
            )
            return func(function_handler, gcp_event, *args, **kwargs)
        return _invoke(
            client, integration, int(configured), func, function_handler, gcp_event, args, kwargs
        )

    return invoke_user_function


def _invoke(
    client: Any,
    integration: GcpIntegration,
    configured_time: int,
    func: Callable[..., Any],
    function_handler: Any,
    gcp_event: Any,
    args: Any,
    kwargs: Any,
) -> Any:
    initial_time = datetime.now(timezone.utc)
    with isolation_scope() as scope:
        timeout_thread = None
        try:
            scope.clear_breadcrumbs()
            scope.add_event_processor(_event_processor(gcp_event, configured_time, initial_time))
            scope.set_tag("gcp_region", environ.get("FUNCTION_REGION"))
            if integration.timeout_warning and configured_time > TIMEOUT_WARNING_BUFFER:
                timeout_thread = TimeoutThread(
                    configured_time - TIMEOUT_WARNING_BUFFER,
                    configured_time,
                    isolation_scope=scope,
                    current_scope=get_current_scope(),
                )
                timeout_thread.start()
        except Exception:
            pass
        headers = getattr(gcp_event, "headers", None) or {}
        sampling_context = {
            "gcp_env": {
                "function_name": environ.get("FUNCTION_NAME"),
                "function_entry_point": environ.get("ENTRY_POINT"),
                "function_identity": environ.get("FUNCTION_IDENTITY"),
                "function_region": environ.get("FUNCTION_REGION"),
                "function_project": environ.get("GCP_PROJECT"),
            },
            "gcp_event": gcp_event,
        }
        # Under streaming the segment starts with its attributes, as sentry_sdk's:
        # `traces_sampler` and `ignore_spans` see them. Unnamed, it gets sentry_sdk's
        # placeholder name.
        at_start: dict[str, Any] = {}
        unnamed = ""
        if has_span_streaming_enabled(client.options):
            unnamed = _UNKNOWN_FUNCTION
            try:
                at_start["attributes"] = _segment_attributes(client.options, gcp_event)
            except Exception:
                pass
        transaction = continue_trace(
            headers,
            op=OP.FUNCTION_GCP,
            name=environ.get("FUNCTION_NAME", unnamed),
            source="component",
            origin=ORIGIN,
        )
        with sdk_start_transaction(
            transaction, custom_sampling_context=sampling_context, **at_start
        ):
            try:
                return func(function_handler, gcp_event, *args, **kwargs)
            except Exception:
                capture_unhandled(client, sys.exc_info(), "gcp")
                raise
            finally:
                if timeout_thread is not None:
                    timeout_thread.stop()
                try:
                    client.flush()
                except Exception:
                    pass


def _segment_attributes(options: dict[str, Any], gcp_event: Any) -> dict[str, Any]:
    """A streamed call segment's attributes, as sentry_sdk's: the function (name, project,
    identity, entry point), the request's headers (sensitive ones filtered), method and
    (as the options allow) query."""
    out: dict[str, Any] = {
        "cloud.provider": "gcp",
        "faas.name": environ.get("FUNCTION_NAME", _UNKNOWN_FUNCTION),
    }
    headers = getattr(gcp_event, "headers", None)
    if headers is not None:
        for key, value in _data_collection.request_headers(headers, options).items():
            out["http.request.header." + key.lower()] = value
    method = getattr(gcp_event, "method", None)
    if method is not None:
        out["http.request.method"] = method
    raw = getattr(gcp_event, "query_string", None)
    query = raw.decode("utf-8", errors="replace") if raw else None
    if query:
        if _data_collection.enabled(options):
            behaviour = options["data_collection"]["url_query_params"]
            filtered = _data_collection.filter_query_string(query, behaviour)
            if filtered:
                out["url.query"] = filtered
        elif options.get("send_default_pii"):
            out["url.query"] = query
    for variable, key in _FUNCTION_ATTRIBUTES:
        value = environ.get(variable)
        if value:
            out[key] = value
    return out


def _event_processor(gcp_event: Any, configured_timeout: Any, initial_time: datetime) -> Any:
    def process(event: dict[str, Any], hint: Any) -> Optional[dict[str, Any]]:
        final_time = datetime.now(timezone.utc)
        extra = event.setdefault("extra", {})
        extra["google cloud functions"] = {
            "function_name": environ.get("FUNCTION_NAME"),
            "function_entry_point": environ.get("ENTRY_POINT"),
            "function_identity": environ.get("FUNCTION_IDENTITY"),
            "function_region": environ.get("FUNCTION_REGION"),
            "function_project": environ.get("GCP_PROJECT"),
            "execution_duration_in_millis": (final_time - initial_time) / timedelta(milliseconds=1),
            "configured_timeout_in_seconds": configured_timeout,
        }
        extra["google cloud logs"] = {"url": _logs_url(final_time)}
        event["request"] = _request(dict(event.get("request") or {}), gcp_event)
        return event

    return process


def _request(request: dict[str, Any], gcp_event: Any) -> dict[str, Any]:
    options = get_client().options
    request["url"] = "gcp:///{}".format(environ.get("FUNCTION_NAME"))
    if hasattr(gcp_event, "method"):
        request["method"] = gcp_event.method
    if hasattr(gcp_event, "query_string"):
        query = gcp_event.query_string.decode("utf-8", errors="replace")
        if _data_collection.enabled(options):
            if query:
                behaviour = options["data_collection"]["url_query_params"]
                kept = _data_collection.filter_query_string(query, behaviour)
                if kept:
                    request["query_string"] = kept
        else:
            request["query_string"] = query
    if hasattr(gcp_event, "headers"):
        request["headers"] = _data_collection.request_headers(
            dict(gcp_event.headers), options, AnnotatedValue.removed_because_over_size_limit()
        )
    if hasattr(gcp_event, "data"):
        if _data_collection.enabled(options):
            if "incoming_request" in options["data_collection"]["http_bodies"]:
                request["data"] = _body(gcp_event.data)
        elif options.get("send_default_pii"):
            request["data"] = _body(gcp_event.data)
        else:
            # A function's body is unstructured to us: nothing to keep.
            request["data"] = AnnotatedValue.removed_because_raw_data()
    return request


def _body(data: Any) -> Any:
    """The body as text when it is UTF-8 (Flask gives bytes), else as given."""
    if isinstance(data, bytes):
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            return data
    return data


def _logs_url(final_time: datetime) -> str:
    """The Cloud Logging console URL of the function's last hour."""
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    end = final_time.strftime(fmt)
    start = (final_time - timedelta(hours=1)).strftime(fmt)
    return (
        "https://console.cloud.google.com/logs/viewer?project={project}"
        "&resource=cloud_function%2Ffunction_name%2F{name}%2Fregion%2F{region}"
        "&minLogLevel=0&expandAll=false&timestamp={end}&customFacets="
        "&limitCustomFacetWidth=true&dateRangeStart={start}&dateRangeEnd={end}"
        "&interval=PT1H&scrollTimestamp={end}"
    ).format(
        project=environ.get("GCP_PROJECT"),
        name=environ.get("FUNCTION_NAME"),
        region=environ.get("FUNCTION_REGION"),
        start=start,
        end=end,
    )


__all__ = ["GcpIntegration"]
