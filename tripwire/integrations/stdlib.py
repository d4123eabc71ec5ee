"""Standard-library integration: runtime/os contexts, `http.client` and `subprocess`.

As sentry_sdk 2.75's ``stdlib`` integration:

- every event gets the `runtime` context (and tripwire adds `os`);
- `http.client` (so `urllib.request`, urllib3, requests, botocore...): an ``httplib``
  breadcrumb per request (through a proxy's CONNECT tunnel: the tunnel's URL, and the
  proxy as ``network.peer.address`` / ``network.peer.port``), an ``http.client`` span
  inside a transaction (status from the response, code location when slow; it ends when
  the answer's body has all been `read()` or the response is closed, at `getresponse()`
  for an answer without a body; a response never read nor closed leaves it unfinished,
  as sentry_sdk's, so its transaction drops it) and the trace headers, as
  `_common.http.outgoing_trace_headers` decides. Requests to the SDK's own DSN host
  are left alone. The trace headers are written at `endheaders`, after the
  caller's, and leave out what `_common.http.headers_left_to_add` rules out (an existing
  ``sentry-trace``; a ``baggage`` with ``sentry-*`` members; what an AWS SigV4
  ``Authorization`` or presigned URL signed). sentry_sdk 2.75 applies those rules to
  botocore's connections only and may send two ``sentry-trace`` elsewhere; tripwire
  applies them to every connection, reading the header lines http.client buffered
  instead of wrapping each `putheader`;
- `subprocess.Popen`: a ``subprocess`` breadcrumb (with ``subprocess.cwd`` as given,
  also on the span), ``subprocess`` /
  ``subprocess.communicate`` / ``subprocess.wait`` spans, and the trace handed to the
  child as ``SUBPROCESS_SENTRY_TRACE`` / ``SUBPROCESS_BAGGAGE`` (sentry_sdk's names;
  `tripwire.init` in the child reads them, see `tracing._api.continue_trace_from_environment`).

Under span streaming (``trace_lifecycle="stream"``), as sentry_sdk 2.75 there: spans
only inside a streamed span; the http.client span and its breadcrumb carry
``http.request.method`` and, with the user's consent, ``url.full`` / ``url.query`` /
``url.fragment`` (no ``reason``), the span is current until it ends (inside a boto3
call: never, as sentry_sdk's); subprocess spans carry ``process.pid`` (the wait /
communicate spans are named after their op) and the child gets the trace only from
inside a span.

The modules are patched when the application imports them (at once if it has), and
every patch falls through to the original when no client has this integration.
"""

from __future__ import annotations

import functools
import os
import platform
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable

from tripwire.api import add_breadcrumb
from tripwire.consts import OP, SPANDATA
from tripwire.integrations import Integration
from tripwire.integrations._common._hooks import when_imported
from tripwire.integrations._common.http import (
    headers_left_to_add,
    outgoing_trace_headers,
    request_url,
    span_data,
)
from tripwire.integrations._common.streaming import (
    start_child,
    streaming,
    url_attributes,
)
from tripwire.integrations._patch import patch_once
from tripwire.integrations._processors import add_internal_processor
from tripwire.scope._current import (
    capturing_client,
    get_client,
    get_current_scope,
    get_isolation_scope,
)
from tripwire.tracing._api import sdk_start_span
from tripwire.tracing._streamed import StreamedSpan, get_current_span
from tripwire.tracing_utils import add_http_breadcrumb, add_http_request_source
from tripwire.utils import is_sentry_url, safe_repr

if TYPE_CHECKING:
    from tripwire.types import EventDict, Hint

_runtime: dict[str, Any] | None = None
_os: dict[str, Any] | None = None


def os_context() -> dict[str, Any]:
    """{"name", "version", "build"?} of the operating system (computed once).

    sentry_sdk leaves this to the server; the issue asks for it and the local backend
    shows it, so tripwire sends it.
    """
    global _os
    if _os is None:
        system = platform.system() or "unknown"
        found: dict[str, Any] = {"name": "macOS" if system == "Darwin" else system}
        if system == "Darwin":
            found["version"] = platform.mac_ver()[0]
            found["kernel_version"] = platform.release()
        elif system == "Windows":
            found["version"] = platform.version()
        else:
            found["version"] = platform.release()
            found["build"] = platform.version()
        _os = found
    return _os


def runtime_context() -> dict[str, Any]:
    """{"name", "version", "build"} of this interpreter (computed once)."""
    global _runtime
    if _runtime is None:
        _runtime = {
            "name": platform.python_implementation(),
            "version": "%d.%d.%d" % sys.version_info[:3],
            "build": sys.version,
        }
    return _runtime


class StdlibIntegration(Integration):
    """Adds the runtime and os contexts (interpreter and operating system)."""

    identifier = "stdlib"

    @staticmethod
    def setup_once() -> None:
        """Register the processor."""

        def add_runtime(event: EventDict, hint: Hint) -> EventDict | None:
            if capturing_client().get_integration(StdlibIntegration) is not None:
                contexts = event.get("contexts")
                if not isinstance(contexts, dict):
                    contexts = event["contexts"] = {}
                if "runtime" not in contexts:
                    contexts["runtime"] = dict(runtime_context())
                if "os" not in contexts and event.get("type") != "transaction":
                    contexts["os"] = dict(os_context())
            return event

        add_internal_processor(add_runtime)
        when_imported("http.client", _patch_http_client)
        when_imported("subprocess", _patch_subprocess)


_MARK = "__tripwire_stdlib__"
HTTPLIB_ORIGIN = "auto.http.stdlib.httplib"
SUBPROCESS_ORIGIN = "auto.subprocess.stdlib.subprocess"


def _patch_method(owner: Any, name: str, make: Callable[[Any], Any]) -> None:
    """Replace `owner.name` by `make(original)`, once (a second set-up keeps the first)."""
    patch_once(owner, name, make, _MARK)


def _enabled() -> Any:
    """The active client if it has this integration, else None."""
    client = get_client()
    if client.get_integration(StdlibIntegration) is None:
        return None
    return client


def _parent_span() -> Any:
    return get_current_scope()._d.span or get_isolation_scope()._d.span


# -- http.client ---------------------------------------------------------------------------


class _Request:
    """What `putrequest` learned, for `endheaders` and `getresponse` to finish.

    `headers` are the trace headers still to add (None once `endheaders` has run);
    `streamed`: the span and breadcrumb are span streaming's (`_streamed_request`).
    """

    __slots__ = ("data", "headers", "span", "streamed", "url")

    def __init__(
        self,
        data: dict[str, Any],
        span: Any,
        url: str,
        headers: list[tuple[str, str]] | None,
        streamed: bool = False,
    ) -> None:
        self.data = data
        self.span = span
        self.url = url
        self.headers = headers
        self.streamed = streamed


def _streamed_request(client: Any, method: str, full: str, peer: dict[str, Any] | None) -> _Request:
    """A request under span streaming, as sentry_sdk 2.75 records it there.

    The span and the breadcrumb carry ``http.request.method`` and the ``url.*``
    attributes (only with the user's consent); no ``reason``. The span is the current
    one until it ends (spans started before the body is read nest under it). Unlike sentry_sdk's
    it also ends when sending fails (`endheaders` raises, e.g. connection refused):
    sentry_sdk's never ends and stays current for whatever the program does next.
    """
    shown, _ = span_data(method, full)
    attributes = url_attributes(client, full)
    span = start_child(
        f"{method} {shown}",
        {
            "sentry.origin": HTTPLIB_ORIGIN,
            "sentry.op": OP.HTTP_CLIENT,
            SPANDATA.HTTP_REQUEST_METHOD: method,
        },
        active=not _in_boto3_call(client),
    )
    if span is not None:
        span.set_attributes(attributes)
        if peer:
            span.set_attributes(peer)
    data = {SPANDATA.HTTP_REQUEST_METHOD: method, **attributes, **(peer or {})}
    return _Request(data, span, full, outgoing_trace_headers(client, full, span), True)


def _in_boto3_call(client: Any) -> bool:
    """Whether the current span is a boto3 call's, current but not active.

    The request's span must then not be active either, as sentry_sdk's: it may end
    after the call (a body read later) and would make the call's span current again.
    """
    parent = get_current_span()
    if parent is None or parent.active:
        return False
    boto3 = client.get_integration("boto3")
    return boto3 is not None and parent.get_attributes().get("sentry.origin") == getattr(
        boto3, "origin", None
    )


def _patch_http_client(module: ModuleType) -> None:
    connection = module.HTTPConnection
    _patch_method(connection, "putrequest", _wrap_putrequest)
    _patch_method(connection, "endheaders", _wrap_endheaders)
    _patch_method(connection, "getresponse", _wrap_getresponse)
    _patch_method(module.HTTPResponse, "read", _wrap_read)
    _patch_method(module.HTTPResponse, "close", _wrap_close)


def _wrap_putrequest(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def putrequest(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        client = _enabled()
        if client is None:
            return original(self, method, url, *args, **kwargs)
        try:
            scheme = "https" if self.default_port == 443 else "http"
            # Through a proxy's CONNECT tunnel: the URL is the tunnel's end, the peer the proxy.
            tunnel = getattr(self, "_tunnel_host", None)
            peer = None
            if tunnel:
                port = getattr(self, "_tunnel_port", None) or self.default_port
                full = request_url(scheme, tunnel, port, self.default_port, url)
                peer = {
                    SPANDATA.NETWORK_PEER_ADDRESS: self.host,
                    SPANDATA.NETWORK_PEER_PORT: self.port,
                }
            else:
                full = request_url(scheme, self.host, self.port, self.default_port, url)
            if is_sentry_url(client, full):
                return original(self, method, url, *args, **kwargs)
            if streaming(client):
                request = _streamed_request(client, method, full, peer)
            else:
                shown, data = span_data(method, full)
                if peer:
                    data.update(peer)
                span = None
                parent = _parent_span()
                if parent is not None:
                    span = parent.start_child(
                        op=OP.HTTP_CLIENT, name=f"{method} {shown}", origin=HTTPLIB_ORIGIN
                    )
                    for key, value in data.items():
                        span.set_data(key, value)
                request = _Request(data, span, full, outgoing_trace_headers(client, full, span))
        except Exception:  # instrumentation must not break the request
            return original(self, method, url, *args, **kwargs)
        try:
            result = original(self, method, url, *args, **kwargs)
        except BaseException as exc:
            if request.streamed and request.span is not None:
                request.span.__exit__(type(exc), exc, exc.__traceback__)  # not current now
            raise
        self._tripwire_request = request
        return result

    return putrequest


_WATCHED_HEADERS = frozenset((b"sentry-trace", b"baggage", b"authorization"))


def _written_headers(buffer: Any) -> list[tuple[str, str]]:
    """The headers `putheader` wrote so far that decide which trace headers may go.

    `buffer` is http.client's `_buffer` of header lines (botocore may put str in it).
    """
    found = []
    for line in buffer:
        if not isinstance(line, bytes):
            line = str(line).encode("utf-8", "replace")
        name, colon, value = line.partition(b":")
        if colon:
            name = name.strip().lower()
            if name in _WATCHED_HEADERS:
                found.append((name.decode("ascii"), value.strip().decode("latin-1")))
    return found


def _wrap_endheaders(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def endheaders(self: Any, *args: Any, **kwargs: Any) -> Any:
        # The trace headers go last, once the caller's own are written: botocore
        # signs before sending, and a caller may have set `sentry-trace` itself.
        request: _Request | None = self.__dict__.get("_tripwire_request")
        if request is not None and request.headers:
            pending, request.headers = request.headers, None
            try:
                buffer = getattr(self, "_buffer", None)
                if isinstance(buffer, list):
                    pending = headers_left_to_add(pending, _written_headers(buffer), request.url)
                for key, value in pending:
                    self.putheader(key, value)
            except Exception:  # e.g. endheaders out of turn: the original raises for it
                pass
        if request is None or not request.streamed:
            return original(self, *args, **kwargs)
        try:
            return original(self, *args, **kwargs)
        except BaseException as exc:
            # Not sent (refused, reset): no answer will end the streamed span.
            if self.__dict__.pop("_tripwire_request", None) is request and request.span:
                request.span.__exit__(type(exc), exc, exc.__traceback__)
            raise

    return endheaders


def _wrap_getresponse(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def getresponse(self: Any, *args: Any, **kwargs: Any) -> Any:
        request: _Request | None = self.__dict__.pop("_tripwire_request", None)
        if request is None:
            return original(self, *args, **kwargs)
        span = request.span
        data = request.data
        status = None
        response = None
        try:
            response = original(self, *args, **kwargs)
            status = response.status
            data[SPANDATA.HTTP_STATUS_CODE] = status
            if span is None:
                if not request.streamed:  # the breadcrumb's, as with a span
                    data["reason"] = response.reason
            else:
                if request.streamed:
                    span.status = "error" if status >= 400 else "ok"
                    span.set_attribute(SPANDATA.HTTP_STATUS_CODE, status)
                else:
                    data["reason"] = response.reason
                    span.set_http_status(status)
                    span.set_data("reason", response.reason)
            return response
        finally:
            try:
                if span is not None:
                    if response is not None and _has_body(response):
                        # As sentry_sdk's: the span lasts until the body is read or
                        # the response closed (`_wrap_read`, `_wrap_close`).
                        response._tripwire_span = span
                    else:
                        _end(span)
                add_http_breadcrumb(status, data)
            except Exception:
                pass

    return getresponse


def _has_body(response: Any) -> bool:
    """Whether the answer's headers announce a body still to read."""
    length = response.length
    return bool(response.chunked or (length is not None and length > 0))


def _end(span: Any) -> None:
    """End an http.client span, with the code location of a slow request."""
    if isinstance(span, StreamedSpan):
        add_http_request_source(span)
        span.end()
    else:
        span.finish()
        add_http_request_source(span)


def _end_pending(response: Any) -> None:
    span = response.__dict__.pop("_tripwire_span", None)
    if span is not None:
        try:
            _end(span)
        except Exception:
            pass


def _wrap_read(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def read(self: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return original(self, *args, **kwargs)
        finally:
            # read() may come back for more: the span ends once the body is all read.
            if "_tripwire_span" in self.__dict__ and (self.fp is None or self.closed):
                _end_pending(self)

    return read


def _wrap_close(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def close(self: Any) -> None:
        try:
            original(self)
        finally:
            if "_tripwire_span" in self.__dict__:
                _end_pending(self)

    return close


# -- subprocess ----------------------------------------------------------------------------

_CWD_INDEX = 9  # `cwd` in Popen's positional parameters
_ENV_INDEX = 10  # `env`


def _patch_subprocess(module: ModuleType) -> None:
    popen = module.Popen
    _patch_method(popen, "__init__", _wrap_popen_init)
    _patch_method(popen, "wait", lambda original: _wrap_popen_call(original, OP.SUBPROCESS_WAIT))
    _patch_method(
        popen,
        "communicate",
        lambda original: _wrap_popen_call(original, OP.SUBPROCESS_COMMUNICATE),
    )


def _command_description(args: Any) -> str:
    # As sentry_sdk: a command line of fewer than 100 arguments is joined, else repr'd.
    if isinstance(args, (list, tuple)) and len(args) < 100:
        return " ".join(str(arg) for arg in args)
    return safe_repr(args)


def _wrap_popen_init(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        client = _enabled()
        if client is None:
            original(self, *args, **kwargs)
            return
        try:
            command = args[0] if args else kwargs.get("args")
            description = _command_description(command)
            # `cwd` as given (a str, bytes or os.PathLike such as a Path): the serializer
            # sends sentry_sdk's values ("/tmp", or "PosixPath('/tmp')" for a Path).
            cwd = args[_CWD_INDEX] if len(args) > _CWD_INDEX else kwargs.get("cwd")
            add_breadcrumb(
                type="subprocess",
                category="subprocess",
                message=description,
                data={"subprocess.cwd": cwd} if cwd else {},
            )
            span: Any = None
            if streaming(client):
                # sentry_sdk 2.75 under streaming: a span (named after the command, no
                # ``subprocess.cwd``) and the trace for the child only inside a span.
                span = start_child(
                    description, {"sentry.op": OP.SUBPROCESS, "sentry.origin": SUBPROCESS_ORIGIN}
                )
                if span is None:
                    original(self, *args, **kwargs)
                    return
            else:
                parent = _parent_span()
                if parent is not None:
                    span = parent.start_child(
                        op=OP.SUBPROCESS, name=description, origin=SUBPROCESS_ORIGIN
                    )
            headers = outgoing_trace_headers(client, None, span)
            if headers:
                positional = len(args) > _ENV_INDEX
                env = args[_ENV_INDEX] if positional else kwargs.get("env")
                env = dict(os.environ if env is None else env)
                for key, value in headers:
                    env["SUBPROCESS_" + key.upper().replace("-", "_")] = value
                if positional:
                    args = (*args[:_ENV_INDEX], env, *args[_ENV_INDEX + 1 :])
                else:
                    kwargs["env"] = env
            if span is not None and cwd and not streaming(client):
                span.set_data("subprocess.cwd", cwd)
        except Exception:  # instrumentation must not stop the child from starting
            if isinstance(span, StreamedSpan):
                span.end()  # started (and current) under streaming
            original(self, *args, **kwargs)
            return
        if span is None:
            original(self, *args, **kwargs)
            return
        with span:
            original(self, *args, **kwargs)
            if isinstance(span, StreamedSpan):
                span.set_attribute(SPANDATA.PROCESS_PID, self.pid)
            else:
                span.set_tag("subprocess.pid", self.pid)

    return __init__


def _wrap_popen_call(original: Callable[..., Any], op: str) -> Callable[..., Any]:
    @functools.wraps(original)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = _enabled()
        if client is None:
            return original(self, *args, **kwargs)
        if streaming(client):
            # Under streaming sentry_sdk 2.75 names the span after its op.
            attributes = {"sentry.op": op, "sentry.origin": SUBPROCESS_ORIGIN}
            streamed = start_child(op, attributes)
            if streamed is None:
                return original(self, *args, **kwargs)
            with streamed:
                streamed.set_attribute(SPANDATA.PROCESS_PID, self.pid)
                return original(self, *args, **kwargs)
        parent = _parent_span()
        if parent is None:
            return original(self, *args, **kwargs)
        with sdk_start_span(op=op, origin=SUBPROCESS_ORIGIN) as span:
            span.set_tag("subprocess.pid", self.pid)
            return original(self, *args, **kwargs)

    return call
