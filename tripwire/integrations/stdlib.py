"""Standard-library integration: runtime/os contexts, `http.client` and `subprocess`.

As sentry_sdk 2.75's ``stdlib`` integration:

- every event gets the `runtime` context (and tripwire adds `os`);
- `http.client` (so `urllib.request`, urllib3, requests, botocore...): an ``httplib``
  breadcrumb per request, an ``http.client`` span inside a transaction (status from
  the response, code location when slow) and the trace headers, as
  `_common.http.outgoing_trace_headers` decides. Requests to the SDK's own DSN host
  are left alone. The trace headers are written at `endheaders`, after the caller's,
  and leave out what `_common.http.headers_left_to_add` rules out (an existing
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

from tripwire.api import add_breadcrumb, start_span
from tripwire.consts import OP, SPANDATA
from tripwire.integrations import Integration
from tripwire.integrations._common._hooks import when_imported
from tripwire.integrations._common.http import (
    headers_left_to_add,
    outgoing_trace_headers,
    request_url,
    span_data,
)
from tripwire.integrations._patch import patch_once
from tripwire.integrations._processors import add_internal_processor
from tripwire.scope._current import (
    capturing_client,
    get_client,
    get_current_scope,
    get_isolation_scope,
)
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
    return get_current_scope().span or get_isolation_scope().span


# -- http.client ---------------------------------------------------------------------------


class _Request:
    """What `putrequest` learned, for `endheaders` and `getresponse` to finish.

    `headers` are the trace headers still to add (None once `endheaders` has run).
    """

    __slots__ = ("data", "headers", "span", "url")

    def __init__(
        self, data: dict[str, Any], span: Any, url: str, headers: list[tuple[str, str]] | None
    ) -> None:
        self.data = data
        self.span = span
        self.url = url
        self.headers = headers


def _patch_http_client(module: ModuleType) -> None:
    connection = module.HTTPConnection
    _patch_method(connection, "putrequest", _wrap_putrequest)
    _patch_method(connection, "endheaders", _wrap_endheaders)
    _patch_method(connection, "getresponse", _wrap_getresponse)


def _wrap_putrequest(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def putrequest(self: Any, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        client = _enabled()
        if client is None:
            return original(self, method, url, *args, **kwargs)
        try:
            scheme = "https" if self.default_port == 443 else "http"
            full = request_url(scheme, self.host, self.port, self.default_port, url)
            if is_sentry_url(client, full):
                return original(self, method, url, *args, **kwargs)
            shown, data = span_data(method, full)
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
        result = original(self, method, url, *args, **kwargs)
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
        return original(self, *args, **kwargs)

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
        try:
            response = original(self, *args, **kwargs)
            status = response.status
            data[SPANDATA.HTTP_STATUS_CODE] = status
            data["reason"] = response.reason
            if span is not None:
                span.set_http_status(status)
                span.set_data("reason", response.reason)
            return response
        finally:
            try:
                if span is not None:
                    span.finish()
                    add_http_request_source(span)
                add_http_breadcrumb(status, data)
            except Exception:
                pass

    return getresponse


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
            parent = _parent_span()
            span = None
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
            if span is not None and cwd:
                span.set_data("subprocess.cwd", cwd)
        except Exception:  # instrumentation must not stop the child from starting
            original(self, *args, **kwargs)
            return
        if span is None:
            original(self, *args, **kwargs)
            return
        with span:
            original(self, *args, **kwargs)
            span.set_tag("subprocess.pid", self.pid)

    return __init__


def _wrap_popen_call(original: Callable[..., Any], op: str) -> Callable[..., Any]:
    @functools.wraps(original)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _enabled() is None:
            return original(self, *args, **kwargs)
        parent = _parent_span()
        if parent is None:
            return original(self, *args, **kwargs)
        with start_span(op=op, origin=SUBPROCESS_ORIGIN) as span:
            span.set_tag("subprocess.pid", self.pid)
            return original(self, *args, **kwargs)

    return call
