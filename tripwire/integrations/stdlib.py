"""Standard-library integration: runtime/os contexts, `http.client` and `subprocess`.

As sentry_sdk 2.75's ``stdlib`` integration:

- every event gets the `runtime` context (and tripwire adds `os`);
- `http.client` (so `urllib.request` and whatever is built on it): an ``httplib``
  breadcrumb per request, an ``http.client`` span inside a transaction (status from
  the response, code location when slow) and the trace headers, as
  `_common.http.outgoing_trace_headers` decides. Requests to the SDK's own DSN host
  are left alone;
- `subprocess.Popen`: a ``subprocess`` breadcrumb, ``subprocess`` /
  ``subprocess.communicate`` / ``subprocess.wait`` spans, and the trace handed to the
  child as ``SUBPROCESS_SENTRY_TRACE`` / ``SUBPROCESS_BAGGAGE`` (sentry_sdk's names;
  `tripwire.init` in the child reads them, see `tracing._api.continue_trace_from_environment`).

The modules are patched when the application imports them (at once if it has), and
every patch falls through to the original when no client has this integration.
"""

from __future__ import annotations

import platform
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable

from tripwire.consts import OP, SPANDATA
from tripwire.integrations import Integration
from tripwire.integrations._common._hooks import when_imported
from tripwire.integrations._processors import add_internal_processor
from tripwire.scope._current import capturing_client, get_client

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
    from tripwire.integrations._patch import patch

    original = getattr(owner, name)
    if getattr(original, _MARK, False):
        return
    replacement = make(original)
    setattr(replacement, _MARK, True)
    patch(owner, name, replacement)


def _enabled() -> Any:
    """The active client if it has this integration, else None."""
    client = get_client()
    if client.get_integration(StdlibIntegration) is None:
        return None
    return client


def _parent_span() -> Any:
    from tripwire.scope._current import get_current_scope, get_isolation_scope

    return get_current_scope().span or get_isolation_scope().span


# -- http.client ---------------------------------------------------------------------------


class _Request:
    """What `putrequest` learned, for `getresponse` to finish."""

    __slots__ = ("data", "span")

    def __init__(self, data: dict[str, Any], span: Any) -> None:
        self.data = data
        self.span = span


def _patch_http_client(module: ModuleType) -> None:
    connection = module.HTTPConnection
    _patch_method(connection, "putrequest", _wrap_putrequest)
    _patch_method(connection, "getresponse", _wrap_getresponse)


def _wrap_putrequest(original: Callable[..., Any]) -> Callable[..., Any]:
    import functools

    from tripwire.integrations._common.http import outgoing_trace_headers, request_url, span_data
    from tripwire.utils import is_sentry_url

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
            headers = outgoing_trace_headers(client, full, span)
            self._tripwire_request = _Request(data, span)
        except Exception:  # instrumentation must not break the request
            return original(self, method, url, *args, **kwargs)
        result = original(self, method, url, *args, **kwargs)
        for key, value in headers:
            self.putheader(key, value)
        return result

    return putrequest


def _wrap_getresponse(original: Callable[..., Any]) -> Callable[..., Any]:
    import functools

    from tripwire.tracing_utils import add_http_breadcrumb, add_http_request_source

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

_ENV_INDEX = 10  # `env` in Popen's positional parameters


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
    if isinstance(args, (list, tuple)):
        return " ".join(str(arg) for arg in args)
    from tripwire.utils import safe_repr

    return safe_repr(args)


def _wrap_popen_init(original: Callable[..., Any]) -> Callable[..., Any]:
    import functools
    import os

    import tripwire
    from tripwire.integrations._common.http import outgoing_trace_headers

    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        client = _enabled()
        if client is None:
            original(self, *args, **kwargs)
            return
        try:
            command = args[0] if args else kwargs.get("args")
            description = _command_description(command)
            tripwire.add_breadcrumb(
                type="subprocess", category="subprocess", message=description, data={}
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
    import functools

    @functools.wraps(original)
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _enabled() is None:
            return original(self, *args, **kwargs)
        parent = _parent_span()
        if parent is None:
            return original(self, *args, **kwargs)
        import tripwire

        with tripwire.start_span(op=op, origin=SUBPROCESS_ORIGIN) as span:
            span.set_tag("subprocess.pid", self.pid)
            return original(self, *args, **kwargs)

    return call
