"""grpc integration: client spans, trace propagation and server transactions.

As sentry_sdk 2.75's ``grpc`` integration (`GRPCIntegration`), for sync `grpc` and
`grpc.aio` alike:

- channels made by ``insecure_channel`` / ``secure_channel`` get a client interceptor:
  each unary-unary and unary-stream call is a ``grpc.client`` span "unary unary call
  to /pkg.Service/Method" (data ``type``, ``method`` and, for unary-unary, the
  ``code`` name) with origin ``auto.grpc.grpc``, and sends ``sentry-trace`` /
  ``baggage`` in its metadata. Streaming-request calls get neither (as in sentry_sdk).
  ``intercept_channel`` does not add the interceptor a second time;
- servers made by ``server`` get a server interceptor: each unary-unary call runs in
  its own isolation scope, in a ``grpc.server`` transaction named after the method
  (source ``custom``) that continues the trace of the incoming metadata; an error in
  the handler sets ``internal_error``. Under ``grpc.aio`` the error is captured too
  (mechanism ``grpc``, unhandled; an ``abort`` is not an error); a sync server's error
  reaches Sentry through grpc's own log record (the logging integration).

`ClientInterceptor` and `ServerInterceptor` (and the `aio` ones) can be added by hand;
they then work whichever integrations the client has, and the patches add none of the
same kind (sentry_sdk replaces a sync server's, losing its `find_name`). The functions
of `grpc` and `grpc.aio` are patched when grpc is imported (at once if it is); a
channel or server made while the active client lacks this integration is left as grpc
makes it.
Unlike sentry_sdk, protobuf is not needed.
"""

from __future__ import annotations

from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable, Optional

from tripwire.integrations import DidNotEnable, Integration
from tripwire.integrations._common._hooks import when_imported

if TYPE_CHECKING:
    from tripwire.integrations.grpc.client import ClientInterceptor
    from tripwire.integrations.grpc.server import ServerInterceptor

_MARK = "__tripwire_grpc__"


class GRPCIntegration(Integration):
    """Client spans, trace propagation and server transactions for grpc (sync and aio)."""

    identifier = "grpc"

    @staticmethod
    def setup_once() -> None:
        """Patch grpc's channel and server constructors once grpc is imported.

        Raises:
            DidNotEnable: grpcio is not installed, or older than 1.32.
        """
        import importlib.util

        from tripwire.integrations import _check_minimum_version
        from tripwire.utils import package_version

        if importlib.util.find_spec("grpc") is None:
            raise DidNotEnable("grpcio is not installed.")
        _check_minimum_version(GRPCIntegration, package_version("grpcio"), "grpcio")
        when_imported("grpc", _patch_grpc)


def _patch_grpc(module: ModuleType) -> None:
    from tripwire.integrations._patch import patch_once
    from tripwire.integrations.grpc import _wrappers

    patch_once(module, "insecure_channel", _wrappers.wrap_channel, _MARK)
    patch_once(module, "secure_channel", _wrappers.wrap_channel, _MARK)
    patch_once(module, "intercept_channel", _wrappers.wrap_intercept_channel, _MARK)
    patch_once(module, "server", _wrappers.wrap_server, _MARK)
    aio = getattr(module, "aio", None)
    if aio is not None:
        patch_once(aio, "insecure_channel", _wrappers.wrap_aio_channel(3), _MARK)
        patch_once(aio, "secure_channel", _wrappers.wrap_aio_channel(4), _MARK)
        patch_once(aio, "server", _wrappers.wrap_aio_server, _MARK)


# sentry_sdk's package binds these at import, which imports grpc; here they load on use.
_LAZY: dict[str, Callable[[], Any]] = {}


def _client_interceptor() -> Any:
    from tripwire.integrations.grpc.client import ClientInterceptor

    return ClientInterceptor


def _server_interceptor() -> Any:
    from tripwire.integrations.grpc.server import ServerInterceptor

    return ServerInterceptor


def _grpc_version() -> Optional[tuple[int, ...]]:
    import grpc

    from tripwire.utils import parse_version

    return parse_version(grpc.__version__)


_LAZY.update(
    ClientInterceptor=_client_interceptor,
    ServerInterceptor=_server_interceptor,
    GRPC_VERSION=_grpc_version,
)


def __getattr__(name: str) -> Any:
    make = _LAZY.get(name)
    if make is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = make()
    globals()[name] = value
    return value


__all__ = ["ClientInterceptor", "GRPCIntegration", "ServerInterceptor"]
