"""AWS Lambda: a transaction per invocation, its errors, timeout warnings and a flush.

As sentry_sdk 2.75's ``aws_lambda`` integration, inside the Lambda Python runtime
(the ``bootstrap`` module of the runtime interface client, ``awslambdaric``, or of
AWS's images), the function handler is wrapped for every invocation:

- the invocation runs in a fork of the isolation scope with breadcrumbs cleared,
  tagged ``aws_region`` (and ``batch_request`` / ``batch_size`` for a list event);
- the incoming trace (``sentry-trace`` / ``baggage`` in the event's ``headers``) is
  continued in a ``function.aws`` transaction named after the function, source
  ``component``, origin ``auto.function.aws_lambda``; ``aws_event`` and
  ``aws_context`` are in the sampling context;
- an exception escaping the handler is captured (mechanism
  ``{"type": "aws_lambda", "handled": false}``) and re-raised for the runtime;
- events get ``extra.lambda`` (function name, version, ARN, request id, execution
  duration and remaining time), ``extra["cloudwatch logs"]`` (console URL, group,
  stream) and a ``request`` (method, URL, query string, headers, body) from an API
  Gateway event, the body and the user (``requestContext.identity``) only with
  ``send_default_pii`` or ``data_collection``'s permission;
- ``AwsLambdaIntegration(timeout_warning=True)``: a `TimeoutThread` raises a
  ``ServerlessTimeoutWarning`` event 1.5 s before the configured timeout;
- the client is flushed before the runtime posts the invocation's result or error
  (the platform may freeze the process right after), and an initialisation error
  the runtime reports is captured.

Under span streaming (``trace_lifecycle="stream"``) the invocation is a segment with
sentry_sdk's attributes (``cloud.*``, ``faas.*``, ``aws.*``, the batch size, an API
Gateway event's headers, method and query as the options allow), given when it starts
so `traces_sampler` and `ignore_spans` see them.

Not covered: the Python 3.6 runtime's bootstrap. Outside Lambda (no bootstrap module)
set-up logs a warning and does nothing, as sentry_sdk. Patches go through `_patch.py`
and fall through when the active client lacks this integration.
"""

from __future__ import annotations

import functools
import json
import re
import sys
from datetime import datetime, timedelta, timezone
from os import environ
from typing import Any, Callable, Optional
from urllib.parse import urlencode

from tripwire import _data_collection
from tripwire._log import logger
from tripwire._timeout_thread import TimeoutThread
from tripwire.api import capture_event, continue_trace
from tripwire.consts import OP
from tripwire.integrations import Integration
from tripwire.integrations._common.unhandled import capture_unhandled
from tripwire.integrations._common.web import may_send_user
from tripwire.scope._current import (
    get_client,
    get_current_scope,
    get_isolation_scope,
    isolation_scope,
)
from tripwire.tracing._api import sdk_start_transaction
from tripwire.tracing._sampling import has_span_streaming_enabled
from tripwire.utils import AnnotatedValue

ORIGIN = "auto.function.aws_lambda"
TIMEOUT_WARNING_BUFFER = 1500  # ms before the timeout at which the warning is raised
MILLIS_TO_SECONDS = 1000.0
_FRAME = re.compile(r'File "(.+)", line (\d+), in (.+)')


class AwsLambdaIntegration(Integration):
    """A transaction per Lambda invocation, its errors and an optional timeout warning.

    Args:
        timeout_warning: Report a ``ServerlessTimeoutWarning`` 1.5 s before the
            function's timeout.
    """

    identifier = "aws_lambda"
    origin = ORIGIN

    def __init__(self, timeout_warning: bool = False) -> None:
        self.timeout_warning = timeout_warning

    @staticmethod
    def setup_once() -> None:
        """Patch the runtime's bootstrap (a warning and nothing else outside Lambda)."""
        bootstrap = get_lambda_bootstrap()
        if not bootstrap:
            logger.warning(
                "Not running in AWS Lambda environment, "
                "AwsLambdaIntegration disabled (could not find bootstrap module)"
            )
            return
        if not hasattr(bootstrap, "handle_event_request"):
            logger.warning(
                "Not running in AWS Lambda environment, "
                "AwsLambdaIntegration disabled (could not find handle_event_request)"
            )
            return
        _patch_bootstrap(bootstrap)


def get_lambda_bootstrap() -> Optional[Any]:
    """The runtime's bootstrap module, wherever this runtime put it (None: not Lambda).

    An imported ``bootstrap`` module wins; else ``__main__`` holds it (as
    ``awslambdaricmain.bootstrap``, or ``bootstrap`` for ``python -m awslambdaric``),
    or is it.
    """
    if "bootstrap" in sys.modules:
        return sys.modules["bootstrap"]
    main = sys.modules.get("__main__")
    if main is None:
        return None
    ric_main = getattr(main, "awslambdaricmain", None)
    if ric_main is not None and hasattr(ric_main, "bootstrap"):
        return ric_main.bootstrap
    if hasattr(main, "bootstrap"):
        return main.bootstrap
    return main


def _patch_bootstrap(bootstrap: Any) -> None:
    from tripwire.integrations._patch import patch

    runtime_client = bootstrap.LambdaRuntimeClient
    patch(runtime_client, "post_init_error", _wrap_init_error(runtime_client.post_init_error))
    original = bootstrap.handle_event_request

    @functools.wraps(original)
    def handle_event_request(
        lambda_runtime_client: Any, request_handler: Any, *args: Any, **kwargs: Any
    ) -> Any:
        return original(lambda_runtime_client, _wrap_handler(request_handler), *args, **kwargs)

    patch(bootstrap, "handle_event_request", handle_event_request)
    for name in ("post_invocation_result", "post_invocation_error"):
        patch(runtime_client, name, _flushing(getattr(runtime_client, name)))


def _flushing(post: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(post)
    def flush_then_post(*args: Any, **kwargs: Any) -> Any:
        try:
            client = get_client()
            if client.get_integration(AwsLambdaIntegration) is not None:
                client.flush()
        except Exception:  # the runtime must get its result whatever happens here
            pass
        return post(*args, **kwargs)

    return flush_then_post


def _wrap_init_error(post_init_error: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(post_init_error)
    def report_init_error(*args: Any, **kwargs: Any) -> Any:
        client = get_client()
        if client.get_integration(AwsLambdaIntegration) is not None:
            try:
                get_isolation_scope().clear_breadcrumbs()
                exc_info = sys.exc_info()
                if exc_info[0] is not None:
                    capture_unhandled(client, exc_info, "aws_lambda")
                else:  # the runtime's JSON form of the error is all there is
                    error = args[1]
                    if isinstance(error, str):
                        error = json.loads(error)
                    event: Any = _event_from_error_json(error)
                    capture_event(event)
            except Exception:
                pass
        return post_init_error(*args, **kwargs)

    return report_init_error


def _wrap_handler(handler: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(handler)
    def invocation(aws_event: Any, aws_context: Any, *args: Any, **kwargs: Any) -> Any:
        client = get_client()
        integration = client.get_integration(AwsLambdaIntegration)
        if integration is None:
            return handler(aws_event, aws_context, *args, **kwargs)
        return _invoke(client, integration, handler, aws_event, aws_context, args, kwargs)

    return invocation


def _invoke(
    client: Any,
    integration: AwsLambdaIntegration,
    handler: Callable[..., Any],
    aws_event: Any,
    aws_context: Any,
    args: Any,
    kwargs: Any,
) -> Any:
    if isinstance(aws_event, list) and aws_event:
        request_data, batch_size = aws_event[0], len(aws_event)
    else:
        request_data, batch_size = aws_event, 1
    if not isinstance(request_data, dict):
        request_data = {}
    configured_time = aws_context.get_remaining_time_in_millis()
    region = aws_context.invoked_function_arn.split(":")[3]
    with isolation_scope() as scope:
        timeout_thread = None
        try:
            scope.clear_breadcrumbs()
            scope.add_event_processor(_event_processor(request_data, aws_context, configured_time))
            scope.set_tag("aws_region", region)
            if batch_size > 1:
                scope.set_tag("batch_request", True)
                scope.set_tag("batch_size", batch_size)
            if integration.timeout_warning and configured_time > TIMEOUT_WARNING_BUFFER:
                timeout_thread = TimeoutThread(
                    (configured_time - TIMEOUT_WARNING_BUFFER) / MILLIS_TO_SECONDS,
                    configured_time / MILLIS_TO_SECONDS,
                    isolation_scope=scope,
                    current_scope=get_current_scope(),
                )
                timeout_thread.start()
            if not scope._user and may_send_user(client.options):
                user = _user_from_event(request_data)
                if user:
                    scope.set_user(user)
        except Exception:
            pass
        headers = request_data.get("headers")
        if not isinstance(headers, dict):  # EventBridge sends a list, or None
            headers = {}
        transaction = continue_trace(
            headers,
            op=OP.FUNCTION_AWS,
            name=aws_context.function_name,
            source="component",
            origin=ORIGIN,
        )
        sampling_context = {"aws_event": aws_event, "aws_context": aws_context}
        # Under streaming the segment starts with its attributes, as sentry_sdk's:
        # `traces_sampler` and `ignore_spans` see them.
        at_start: dict[str, Any] = {}
        if has_span_streaming_enabled(client.options):
            try:
                at_start["attributes"] = _segment_attributes(
                    client.options, request_data, headers, aws_context, region, batch_size
                )
            except Exception:
                pass
        with sdk_start_transaction(
            transaction, custom_sampling_context=sampling_context, **at_start
        ):
            try:
                return handler(aws_event, aws_context, *args, **kwargs)
            except Exception:
                capture_unhandled(client, sys.exc_info(), "aws_lambda")
                raise
            finally:
                if timeout_thread is not None:
                    timeout_thread.stop()


def _segment_attributes(
    options: dict[str, Any],
    request_data: dict[str, Any],
    headers: dict[str, Any],
    aws_context: Any,
    region: str,
    batch_size: int,
) -> dict[str, Any]:
    """A streamed invocation segment's attributes, as sentry_sdk's: the function and its
    logs, the batch size, and an API Gateway event's headers (sensitive ones filtered),
    method and (as the options allow) query."""
    arn = aws_context.invoked_function_arn
    out: dict[str, Any] = {
        "cloud.region": region,
        "cloud.resource_id": arn,
        "cloud.platform": "aws_lambda",
        "cloud.provider": "aws",
        "faas.name": aws_context.function_name,
        "faas.invocation_id": aws_context.aws_request_id,
        "faas.version": aws_context.function_version,
        "aws.lambda.invoked_arn": arn,
        "aws.log.group.names": [aws_context.log_group_name],
        "aws.log.stream.names": [aws_context.log_stream_name],
        "messaging.batch.message_count": batch_size,
    }
    for key, value in _data_collection.request_headers(headers, options).items():
        out["http.request.header." + key.lower()] = value
    if "httpMethod" in request_data:
        out["http.request.method"] = request_data["httpMethod"]
    query = request_data.get("queryStringParameters")
    if query:
        if _data_collection.enabled(options):
            behaviour = options["data_collection"]["url_query_params"]
            kept = _data_collection.filter_key_values(query, behaviour)
            if kept:
                out["url.query"] = urlencode(kept)
        elif options.get("send_default_pii"):
            out["url.query"] = urlencode(query)
    return out


def _user_from_event(aws_event: Any) -> dict[str, Any]:
    if not isinstance(aws_event, dict):
        return {}
    identity = (aws_event.get("requestContext") or {}).get("identity")
    if identity is None:
        return {}
    user: dict[str, Any] = {}
    if identity.get("userArn") is not None:
        user["id"] = identity["userArn"]
    if identity.get("sourceIp") is not None:
        user["ip_address"] = identity["sourceIp"]
    return user


def _event_processor(aws_event: Any, aws_context: Any, configured_timeout: Any) -> Any:
    start_time = datetime.now(timezone.utc)

    def process(event: dict[str, Any], hint: Any) -> Optional[dict[str, Any]]:
        remaining = aws_context.get_remaining_time_in_millis()
        extra = event.setdefault("extra", {})
        extra["lambda"] = {
            "function_name": aws_context.function_name,
            "function_version": aws_context.function_version,
            "invoked_function_arn": aws_context.invoked_function_arn,
            "aws_request_id": aws_context.aws_request_id,
            "execution_duration_in_millis": configured_timeout - remaining,
            "remaining_time_in_millis": remaining,
        }
        extra["cloudwatch logs"] = {
            "url": _cloudwatch_logs_url(aws_context, start_time),
            "log_group": aws_context.log_group_name,
            "log_stream": aws_context.log_stream_name,
        }
        event["request"] = _request(event.get("request") or {}, aws_event, aws_context, event)
        return event

    return process


def _request(
    request: dict[str, Any], aws_event: Any, aws_context: Any, event: dict[str, Any]
) -> dict[str, Any]:
    request = dict(request)
    options = get_client().options
    if "httpMethod" in aws_event:
        request["method"] = aws_event["httpMethod"]
    request["url"] = _url(aws_event, aws_context)
    if "queryStringParameters" in aws_event:
        query = aws_event["queryStringParameters"]
        if _data_collection.enabled(options):
            if query:
                behaviour = options["data_collection"]["url_query_params"]
                kept = _data_collection.filter_key_values(query, behaviour)
                if kept:
                    request["query_string"] = kept
        else:
            request["query_string"] = query
    if isinstance(aws_event.get("headers"), dict):
        request["headers"] = _data_collection.request_headers(
            aws_event["headers"], options, AnnotatedValue.removed_because_over_size_limit()
        )
    if may_send_user(options):
        user = _user_from_event(aws_event)
        if user:
            found = event.setdefault("user", {})
            for key, value in user.items():
                found.setdefault(key, value)
    if _data_collection.enabled(options):
        if "incoming_request" in options["data_collection"]["http_bodies"] and "body" in aws_event:
            request["data"] = aws_event.get("body", "")
    elif options.get("send_default_pii"):
        if "body" in aws_event:
            request["data"] = aws_event.get("body", "")
    elif aws_event.get("body"):
        # A Lambda event's body is a string: nothing structured to keep.
        request["data"] = AnnotatedValue.removed_because_raw_data()
    return request


def _url(aws_event: Any, aws_context: Any) -> str:
    path = aws_event.get("path")
    headers = aws_event.get("headers")
    if not isinstance(headers, dict):
        headers = {}
    host = headers.get("Host")
    proto = headers.get("X-Forwarded-Proto")
    if proto and host and path:
        return f"{proto}://{host}{path}"
    return f"awslambda:///{aws_context.function_name}"


def _cloudwatch_logs_url(aws_context: Any, start_time: datetime) -> str:
    """The CloudWatch Logs console URL of the invocation's log stream and time."""
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    region = environ.get("AWS_REGION", "")
    domain = "amazonaws.cn" if region.startswith("cn-") else "aws.amazon.com"
    start = (start_time - timedelta(seconds=1)).strftime(fmt)
    end = (datetime.now(timezone.utc) + timedelta(seconds=2)).strftime(fmt)
    return (
        f"https://console.{domain}/cloudwatch/home?region={region}"
        f"#logEventViewer:group={aws_context.log_group_name};"
        f"stream={aws_context.log_stream_name};start={start};end={end}"
    )


def _event_from_error_json(error_json: dict[str, Any]) -> dict[str, Any]:
    """An error event from the JSON the runtime reports an initialisation error with."""
    frames = []
    for line in error_json.get("stackTrace", []):
        match = _FRAME.match(line.strip())
        if match:
            filename, lineno, function = match.groups()
            frames.append(
                {
                    "filename": filename,
                    "function": function,
                    "lineno": int(lineno),
                    "vars": None,
                    "pre_context": None,
                    "context_line": None,
                    "post_context": None,
                }
            )
    return {
        "level": "error",
        "exception": {
            "values": [
                {
                    "type": error_json.get("errorType"),
                    "value": error_json.get("errorMessage"),
                    "stacktrace": {"frames": frames},
                    "mechanism": {"type": "aws_lambda", "handled": False},
                }
            ]
        },
    }


__all__ = ["AwsLambdaIntegration", "get_lambda_bootstrap"]
