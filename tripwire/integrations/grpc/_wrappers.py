"""The replacements of grpc's channel and server constructors (installed via `_patch`).

Each adds tripwire's interceptor when the active client has the grpc integration and
leaves grpc's result alone otherwise; none adds a second one of its own kind.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

import grpc

from tripwire.integrations.grpc._shared import enabled
from tripwire.integrations.grpc.aio.client import (
    ClientInterceptor as AioClientInterceptor,
)
from tripwire.integrations.grpc.aio.client import (
    SentryUnaryStreamClientInterceptor,
    SentryUnaryUnaryClientInterceptor,
)
from tripwire.integrations.grpc.aio.server import ServerInterceptor as AioServerInterceptor
from tripwire.integrations.grpc.client import ClientInterceptor
from tripwire.integrations.grpc.server import ServerInterceptor
from tripwire.utils import parse_version

# grpc.aio.server took only a tuple of interceptors before grpc 1.42.
_AIO_TUPLE_ONLY = (parse_version(grpc.__version__) or (0,)) < (1, 42)


def _patched(interceptor: Any) -> Any:
    interceptor._patched = True
    return interceptor


def _sync_server_interceptors() -> list[Any]:
    return [_patched(ServerInterceptor())]


def _aio_server_interceptors() -> list[Any]:
    return [_patched(AioServerInterceptor())]


def _aio_client_interceptors() -> list[Any]:
    return [
        _patched(SentryUnaryUnaryClientInterceptor()),
        _patched(SentryUnaryStreamClientInterceptor()),
    ]


def is_intercepted(channel: Any) -> bool:
    """Whether tripwire's client interceptor is on `channel` (at any depth)."""
    while channel is not None:
        if isinstance(getattr(channel, "_interceptor", None), ClientInterceptor):
            return True
        channel = getattr(channel, "_channel", None)
    return False


def wrap_channel(original: Callable[..., Any]) -> Callable[..., Any]:
    """`grpc.insecure_channel` / `secure_channel`: the channel, intercepted."""

    @functools.wraps(original)
    def channel(*args: Any, **kwargs: Any) -> Any:
        made = original(*args, **kwargs)
        if not enabled() or is_intercepted(made):
            return made
        return grpc.intercept_channel(made, _patched(ClientInterceptor()))

    return channel


def wrap_intercept_channel(original: Callable[..., Any]) -> Callable[..., Any]:
    """`grpc.intercept_channel`: a channel already intercepted gets no second interceptor."""

    @functools.wraps(original)
    def intercept_channel(channel: Any, *interceptors: Any) -> Any:
        if is_intercepted(channel):
            interceptors = tuple(i for i in interceptors if not isinstance(i, ClientInterceptor))
        return original(channel, *interceptors)

    return intercept_channel


def _with_first(
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    index: int,
    make: Callable[[], list[Any]],
    kind: type,
    container: Callable[[list[Any]], Any] = list,
) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """`args`/`kwargs` with `make()` first in the ``interceptors`` argument (keyword, or
    positional at `index`), unless the caller gave an interceptor of `kind` already:
    theirs is kept (with its options, e.g. `find_name`), and no second one is added."""
    positional = len(args) > index
    given = list((args[index] if positional else kwargs.get("interceptors")) or ())
    if any(isinstance(interceptor, kind) for interceptor in given):
        return args, kwargs
    interceptors = container([*make(), *given])
    if positional:
        args = (*args[:index], interceptors, *args[index + 1 :])
    else:
        kwargs["interceptors"] = interceptors
    return args, kwargs


def wrap_server(original: Callable[..., Any]) -> Callable[..., Any]:
    """`grpc.server`: tripwire's server interceptor first."""

    @functools.wraps(original)
    def server(*args: Any, **kwargs: Any) -> Any:
        if enabled():
            args, kwargs = _with_first(
                args, kwargs, 2, _sync_server_interceptors, ServerInterceptor
            )
        return original(*args, **kwargs)

    return server


def wrap_aio_server(original: Callable[..., Any]) -> Callable[..., Any]:
    """`grpc.aio.server`: tripwire's aio server interceptor first."""

    @functools.wraps(original)
    def server(*args: Any, **kwargs: Any) -> Any:
        if enabled():
            container = tuple if _AIO_TUPLE_ONLY else list
            args, kwargs = _with_first(
                args, kwargs, 2, _aio_server_interceptors, AioServerInterceptor, container
            )
        return original(*args, **kwargs)

    return server


def wrap_aio_channel(index: int) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`grpc.aio.insecure_channel` / `secure_channel` (``interceptors`` is positional
    argument `index`): tripwire's two aio client interceptors first."""

    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def channel(*args: Any, **kwargs: Any) -> Any:
            if enabled():
                args, kwargs = _with_first(
                    args, kwargs, index, _aio_client_interceptors, AioClientInterceptor
                )
            return original(*args, **kwargs)

        return channel

    return wrap


__all__ = [
    "is_intercepted",
    "wrap_aio_channel",
    "wrap_aio_server",
    "wrap_channel",
    "wrap_intercept_channel",
    "wrap_server",
]
