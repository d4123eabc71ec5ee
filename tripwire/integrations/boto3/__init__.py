"""boto3 (botocore): a span and breadcrumb per AWS API call, and trace propagation.

As sentry_sdk 2.75's ``boto3`` integration (origin ``auto.http.boto3``), for every
call a botocore client makes (``BaseClient._make_api_call``):

- inside a span, an ``http.client`` span ``aws.<service id>.<Operation>`` (e.g.
  ``aws.s3.GetObject``), tags ``aws.service_id`` / ``aws.operation_name``, data
  ``rpc.method``, ``rpc.system.name`` (``aws-api``), ``sentry.kind`` (``client``),
  ``rpc.service``, ``cloud.region``, ``server.address`` / ``server.port``; per attempt
  ``aws.request.url``, ``http.query``, ``http.fragment``, ``http.method``; then
  ``http.response.status_code``, ``http.request.resend_count`` (retries),
  ``aws.request_id`` and ``aws.extended_request_id``. A failed call ends it
  ``internal_error`` with ``error.type`` (the AWS error code, else the exception's
  qualified name). The span is the active one while the call runs (the stdlib
  ``http.client`` span nests under it) but is not left active afterwards;
- a streaming response body (S3 ``GetObject``): the span stays open, with an
  ``http.client.stream`` child, until the body is read to its end or closed;
- per attempt, an ``httplib`` breadcrumb (URL, query, fragment, method);
- before signing, the trace headers `_common.http.outgoing_trace_headers` decides, so
  they are signed with the request; an existing ``baggage`` keeps its third-party
  entries. Presigned requests (``*-query``, ``*-presign-post``) get none.

Under span streaming (``trace_lifecycle="stream"``), as sentry_sdk 2.75 there: the
same spans as streamed spans, the call's data as attributes (no tags), the attempt's
``http.request.method`` and ``url.*`` attributes (only with the user's consent)
instead of ``aws.request.url`` / ``http.query`` / ``http.fragment`` / ``http.method``,
in its breadcrumb too; a failed call's span has status ``error``.

Bedrock runtime chats (``Converse``, ``ConverseStream``) are ``gen_ai.chat`` spans,
see `.bedrock`. Outside a span no span is made (sentry_sdk makes one that is never
sent; under span streaming a Bedrock runtime call is a segment of its own); breadcrumbs
and headers are the same.

``BaseClient`` (and botocore's ``EventStream``, for ``ConverseStream``) is patched when
``botocore.client`` is imported; the patches fall through when the active client lacks
this integration.
"""

from __future__ import annotations

import functools
import time
from types import ModuleType
from typing import Any, Callable, Optional
from urllib.parse import urlsplit

from tripwire.consts import OP, SPANDATA
from tripwire.integrations import DidNotEnable, Integration, _check_minimum_version
from tripwire.integrations._common._hooks import when_imported
from tripwire.integrations._common.http import outgoing_trace_headers
from tripwire.integrations._common.streaming import start_child, streaming, url_attributes
from tripwire.integrations.boto3 import bedrock
from tripwire.integrations.boto3._spans import finish as _finish
from tripwire.integrations.boto3._spans import is_streamed
from tripwire.integrations.boto3._spans import set_data as _set_data
from tripwire.scope._current import get_client, get_current_scope
from tripwire.tracing._consts import BAGGAGE_HEADER_NAME
from tripwire.tracing._streamed import StreamedSpan, get_current_span, start_span
from tripwire.tracing_utils import add_http_breadcrumb, add_sentry_baggage_to_headers
from tripwire.utils import parse_url

ORIGIN = "auto.http.boto3"
AWS_RPC_SYSTEM_NAME = "aws-api"
_MARK = "__tripwire_boto3__"
_CONTEXT_KEY = "_tripwire_span"
_DEFAULT_PORTS = {"http": 80, "https": 443}

# botocore's classes, bound when botocore.client is imported.
_StreamingBody: Any = None
_ClientError: Any = None


class Boto3Integration(Integration):
    """Spans, breadcrumbs and trace headers for botocore API calls."""

    identifier = "boto3"
    origin = ORIGIN

    @staticmethod
    def setup_once() -> None:
        """Patch botocore's `BaseClient` once ``botocore.client`` is imported.

        Raises:
            DidNotEnable: botocore is not installed, or older than 1.16.
        """
        import importlib.util

        from tripwire.utils import package_version

        if importlib.util.find_spec("botocore") is None:
            raise DidNotEnable("botocore is not installed")
        _check_minimum_version(Boto3Integration, package_version("botocore"), "botocore")
        when_imported("botocore.client", _patch_botocore)


def _patch_botocore(module: ModuleType) -> None:
    from botocore.eventstream import EventStream
    from botocore.exceptions import ClientError
    from botocore.response import StreamingBody

    from tripwire.integrations._patch import patch_once

    global _ClientError, _StreamingBody
    _ClientError, _StreamingBody = ClientError, StreamingBody
    patch_once(module.BaseClient, "__init__", _wrap_init, _MARK)
    patch_once(module.BaseClient, "_make_api_call", _wrap_make_api_call, _MARK)
    patch_once(EventStream, "__iter__", bedrock.wrap_iter, _MARK)
    patch_once(EventStream, "close", bedrock.wrap_close, _MARK)


def _wrap_init(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        try:
            events = self.meta.events
            events.register("request-created", _request_created)
            # Last: a `before-sign` handler of the application may have set baggage.
            events.register_last("before-sign", _before_sign)
        except Exception:
            pass

    return __init__


def _make_current(scope: Any, span: Any) -> None:
    # A streamed span through `streamed_span`, as sentry_sdk's: a Bedrock segment names
    # the scope's events (the `span` setter names them after a transaction only).
    if getattr(span, "_streamed", False):
        scope.streamed_span = span
    else:
        scope.span = span


def _wrap_make_api_call(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def _make_api_call(self: Any, operation_name: str, api_params: Any) -> Any:
        if get_client().get_integration(Boto3Integration) is None:
            return original(self, operation_name, api_params)
        scope = get_current_scope()
        parent = scope._d.span
        call = _bedrock_call(self, operation_name)
        if streaming(get_client()):
            span = _start_streamed_span(self, operation_name, call, api_params)
        elif parent is not None:
            span = _start_span(self, operation_name, parent, call, api_params)
        else:
            span = None
        if span is None:
            return original(self, operation_name, api_params)
        if call is not None:
            call.started = time.perf_counter()
        # Active while botocore works (the HTTP request nests under it), not entered:
        # a streaming body may outlive the call.
        _make_current(scope, span)
        try:
            parsed = original(self, operation_name, api_params)
        except BaseException as error:
            _make_current(scope, parent)
            _set_data(span, _error_data(error))
            _finish(span, error)
            raise
        _make_current(scope, parent)
        try:
            _set_data(span, _response_data(parsed))
            if call is not None:
                # Only ConverseStream's event stream is watched, no other body.
                if call.responded(span, parsed, get_client().options):
                    return parsed
            elif _instrument_body(span, parsed):
                return parsed
        except Exception:
            pass
        _finish(span, None)
        return parsed

    return _make_api_call


def _bedrock_call(client: Any, operation_name: str) -> Optional[bedrock.BedrockCall]:
    try:
        if client.meta.service_model.service_name == bedrock.SERVICE_NAME:
            return bedrock.BedrockCall(operation_name)
    except Exception:
        pass
    return None


def _start_span(
    client: Any,
    operation_name: str,
    parent: Any,
    call: Optional[bedrock.BedrockCall],
    params: Any,
) -> Optional[Any]:
    try:
        meta = client.meta
        service_id = meta.service_model.service_id
        hyphenized = service_id.hyphenize()
        op, origin, extra = OP.HTTP_CLIENT, ORIGIN, {}
        if call is not None:
            op, origin = call.op(), call.origin(ORIGIN)
            extra = call.request_data(params, get_client().options)
        span = parent.start_child(op=op, name=f"aws.{hyphenized}.{operation_name}", origin=origin)
        span.set_data(SPANDATA.RPC_METHOD, operation_name)
        span.set_data(SPANDATA.RPC_SYSTEM_NAME, AWS_RPC_SYSTEM_NAME)
        span.set_data(SPANDATA.SENTRY_KIND, "client")
        span.set_data(SPANDATA.RPC_SERVICE, str(service_id))
        region = meta.region_name
        if region:
            span.set_data(SPANDATA.CLOUD_REGION, region)
        _set_data(span, _server_data(meta.endpoint_url))
        _set_data(span, extra)
        span.set_tag("aws.service_id", hyphenized)
        span.set_tag("aws.operation_name", operation_name)
        return span
    except Exception:
        return None


def _start_streamed_span(
    client: Any, operation_name: str, call: Optional[bedrock.BedrockCall], params: Any
) -> Optional[StreamedSpan]:
    """The call's span under span streaming: a child of the current span (None outside
    one, but for Bedrock: a segment), not current by itself (a streaming body may outlive
    the call)."""
    try:
        meta = client.meta
        service_id = meta.service_model.service_id
        attributes: dict[str, Any] = {
            SPANDATA.RPC_METHOD: operation_name,
            SPANDATA.RPC_SYSTEM_NAME: AWS_RPC_SYSTEM_NAME,
            SPANDATA.SENTRY_KIND: "client",
            SPANDATA.RPC_SERVICE: str(service_id),
        }
        if meta.region_name:
            attributes[SPANDATA.CLOUD_REGION] = meta.region_name
        attributes.update(_server_data(meta.endpoint_url))
        name = f"aws.{service_id.hyphenize()}.{operation_name}"
        if call is None:
            attributes["sentry.op"] = OP.HTTP_CLIENT
            attributes["sentry.origin"] = ORIGIN
            return start_child(name, attributes, active=False)
        attributes.update(call.request_data(params, get_client().options))
        attributes["sentry.op"] = call.op()
        attributes["sentry.origin"] = call.origin(ORIGIN)
        return start_span(name=name, attributes=attributes, active=False)
    except Exception:
        return None


def _server_data(endpoint_url: Optional[str]) -> dict[str, Any]:
    if not endpoint_url:
        return {}
    try:
        parts = urlsplit(endpoint_url)
        default_port = _DEFAULT_PORTS.get(parts.scheme)
        if default_port is None or not parts.hostname:
            return {}
        return {
            SPANDATA.SERVER_ADDRESS: parts.hostname,
            SPANDATA.SERVER_PORT: parts.port or default_port,
        }
    except (TypeError, UnicodeError, ValueError):
        return {}


def _response_data(response: Any) -> dict[str, Any]:
    metadata = response.get("ResponseMetadata") or {}
    data: dict[str, Any] = {}
    status = metadata.get("HTTPStatusCode")
    if status is not None:
        data[SPANDATA.HTTP_STATUS_CODE] = status
    retries = metadata.get("RetryAttempts", 0)
    if retries > 0:
        data[SPANDATA.HTTP_REQUEST_RESEND_COUNT] = retries
    headers = metadata.get("HTTPHeaders") or {}
    request_id = (
        metadata.get("RequestId")
        or headers.get("x-amzn-requestid")
        or headers.get("x-amzn-request-id")
        or headers.get("x-amz-request-id")
    )
    if request_id:
        data[SPANDATA.AWS_REQUEST_ID] = request_id
    extended = metadata.get("HostId") or headers.get("x-amz-id-2")
    if extended:
        data[SPANDATA.AWS_EXTENDED_REQUEST_ID] = extended
    return data


def _error_data(error: BaseException) -> dict[str, Any]:
    data: dict[str, Any] = {}
    try:
        code = None
        if _ClientError is not None and isinstance(error, _ClientError):
            data.update(_response_data(error.response))
            code = (error.response.get("Error") or {}).get("Code")
        if not code:
            kind = type(error)
            module = kind.__module__
            code = kind.__qualname__
            if module not in ("builtins", "__builtins__"):
                code = f"{module}.{code}"
        data[SPANDATA.ERROR_TYPE] = code
    except Exception:
        pass
    return data


def _instrument_body(span: Any, parsed: Any) -> bool:
    """Keep `span` open until the response's streaming body is read or closed."""
    body = parsed.get("Body")
    if _StreamingBody is None or not isinstance(body, _StreamingBody):
        return False
    _BodyWatch(span, body)
    return True


class _BodyWatch:
    """Ends the stream span, then the call's span, once the body is consumed or closed."""

    __slots__ = (
        "body",
        "done",
        "orig_close",
        "orig_raw_close",
        "orig_read",
        "reading",
        "span",
        "stream",
    )

    def __init__(self, span: Any, body: Any) -> None:
        self.span = span
        self.body = body
        self.done = False
        self.reading = False
        if is_streamed(span):
            # Not current: the body may be read after other spans began.
            self.stream = start_span(
                name=span.name,
                attributes={"sentry.op": OP.HTTP_CLIENT_STREAM, "sentry.origin": ORIGIN},
                parent_span=span,
                active=False,
            )
        else:
            self.stream = span.start_child(
                op=OP.HTTP_CLIENT_STREAM, name=span.description, origin=ORIGIN
            )
        try:
            self.orig_read = body.read
            self.orig_close = body.close
            raw = body._raw_stream
            self.orig_raw_close = raw.close
            raw.close = self.raw_close
            body.read = self.read
            body.close = self.close
        except Exception:
            self.end(None)
            raise

    def end(self, error: Optional[BaseException]) -> None:
        if self.done:
            return
        self.done = True
        if error is not None:
            data = _error_data(error)
            _set_data(self.stream, data)
            _set_data(self.span, data)
        _finish(self.stream, error)
        _finish(self.span, error)

    def _at_end(self, amount: Any, chunk: bytes) -> bool:
        if amount is None or amount < 0 or (amount > 0 and not chunk):
            return True
        length = self.body._content_length
        return length is not None and self.body._amount_read >= int(length)

    def read(self, *args: Any, **kwargs: Any) -> bytes:
        self.reading = True
        try:
            chunk: bytes = self.orig_read(*args, **kwargs)
            try:
                if self._at_end(args[0] if args else kwargs.get("amt"), chunk):
                    self.end(None)
            except Exception:
                pass
            return chunk
        except BaseException as error:
            self.end(error)
            raise
        finally:
            self.reading = False

    def close(self, *args: Any, **kwargs: Any) -> None:
        try:
            self.orig_close(*args, **kwargs)
        except BaseException as error:
            self.end(error)
            raise
        self.end(None)

    def raw_close(self, *args: Any, **kwargs: Any) -> None:
        try:
            self.orig_raw_close(*args, **kwargs)
        except BaseException as error:
            self.end(error)
            raise
        if not self.reading:
            self.end(None)


def _request_created(request: Any, operation_name: str, **kwargs: Any) -> None:
    """One attempt: its breadcrumb, and its URL and method on the active span."""
    client = get_client()
    if client.get_integration(Boto3Integration) is None:
        return
    if streaming(client):
        _streamed_request_created(client, request)
        return
    try:
        parsed = parse_url(request.url, sanitize=False)
        method = request.method
        data = {
            "aws.request.url": parsed.url,
            SPANDATA.HTTP_QUERY: parsed.query,
            SPANDATA.HTTP_FRAGMENT: parsed.fragment,
            SPANDATA.HTTP_METHOD: method,
        }
        add_http_breadcrumb(None, data)
        span = get_current_scope()._d.span
        if span is None:
            return
        # The address actually requested wins over the endpoint's.
        _set_data(span, _server_data(request.url))
        _set_data(span, data)
        request.context[_CONTEXT_KEY] = span
    except Exception:
        pass


def _streamed_request_created(client: Any, request: Any) -> None:
    """`_request_created` under span streaming (sentry_sdk 2.75's attribute names)."""
    try:
        attributes = url_attributes(client, request.url)
        add_http_breadcrumb(None, {**attributes, SPANDATA.HTTP_REQUEST_METHOD: request.method})
        span = get_current_span()
        # The call's span is current without being active; an active one is someone
        # else's (the call's own span was not made, e.g. ignored).
        if span is None or span.active:
            return
        span.set_attributes(_server_data(request.url))
        span.set_attributes(attributes)
        span.set_attribute(SPANDATA.HTTP_REQUEST_METHOD, request.method)
        request.context[_CONTEXT_KEY] = span
    except Exception:
        pass


def _before_sign(request: Any, signature_version: Any, **kwargs: Any) -> None:
    """The trace headers, added before botocore signs the request."""
    client = get_client()
    if client.get_integration(Boto3Integration) is None:
        return
    try:
        # A presigned request is sent later by someone else: its signature cannot
        # cover headers they would have to reproduce.
        if isinstance(signature_version, str) and signature_version.endswith(
            ("-query", "-presign-post")
        ):
            return
        url = request.url
        if url is None:
            return
        # botocore signs inside its own ``request-created`` handler, before ours ran:
        # then the call's span is the active one.
        span = request.context.get(_CONTEXT_KEY) or get_current_scope()._d.span
        headers = request.headers
        for name, value in outgoing_trace_headers(client, url, span):
            if name == BAGGAGE_HEADER_NAME:
                value = _merged_baggage(headers.get_all(name, []), value)
            # HTTPHeaders (an email Message) appends on assignment: replace instead.
            if name in headers:
                del headers[name]
            headers[name] = value
    except Exception:
        pass


def _merged_baggage(existing: list[Any], sentry_baggage: str) -> str:
    merged = {BAGGAGE_HEADER_NAME: ",".join(str(value) for value in existing)}
    add_sentry_baggage_to_headers(merged, sentry_baggage)
    return merged[BAGGAGE_HEADER_NAME]


__all__ = ["Boto3Integration"]
