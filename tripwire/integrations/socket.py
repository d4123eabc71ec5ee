"""Sockets: spans for `socket.create_connection` and `socket.getaddrinfo`.

As sentry_sdk 2.75's ``socket`` integration (not a default one), inside a
transaction:

- `socket.create_connection(address, timeout, source_address)`: a span
  ``op="socket.connection"`` named ``host:port``, data ``address``, ``timeout``,
  ``source_address``;
- `socket.getaddrinfo(host, port, ...)`: a span ``op="socket.dns"`` named
  ``host:port``, data ``host``, ``port`` (the lookup `create_connection` makes is
  its child).

Both have origin ``auto.socket.socket``; a call that raises ends its span with
status ``internal_error``. Under span streaming (as sentry_sdk 2.75 there) the spans
are made only inside a streamed span, and carry ``server.address`` / ``server.port``
instead of the call's arguments. Code that imported the functions by name before the SDK
was set up keeps the originals.
"""

from __future__ import annotations

import functools
from typing import Any, Callable

from tripwire.consts import OP, SPANDATA
from tripwire.integrations import Integration
from tripwire.scope._current import get_client

ORIGIN = "auto.socket.socket"
_MARK = "__tripwire_socket__"


class SocketIntegration(Integration):
    """Spans for socket connections and DNS lookups."""

    identifier = "socket"
    origin = ORIGIN

    @staticmethod
    def setup_once() -> None:
        """Wrap `socket.create_connection` and `socket.getaddrinfo` (undone by `testing.reset`)."""
        import socket

        from tripwire.integrations._patch import patch

        for name, make in (("create_connection", _wrap_connect), ("getaddrinfo", _wrap_dns)):
            original = getattr(socket, name)
            if getattr(original, _MARK, False):
                continue
            replacement = make(original)
            setattr(replacement, _MARK, True)
            patch(socket, name, replacement)


def _text(value: Any) -> Any:
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            pass
    return value


def _description(host: Any, port: Any) -> str:
    try:
        return f"{_text(host)}:{_text(port)}"
    except Exception:
        return "socket"


def _streamed(op: str, host: Any, port: Any) -> Any:
    """The span of a call under span streaming (None outside a span), with sentry_sdk
    2.75's ``server.address`` / ``server.port``."""
    from tripwire.integrations._common.streaming import start_child

    try:
        span = start_child(_description(host, port), {"sentry.op": op, "sentry.origin": ORIGIN})
    except Exception:  # instrumentation must not break the call
        return None
    if span is None:
        return None
    if isinstance(host, str):
        span.set_attribute(SPANDATA.SERVER_ADDRESS, host)
    elif isinstance(host, bytes):
        span.set_attribute(SPANDATA.SERVER_ADDRESS, host.decode(errors="replace"))
    if isinstance(port, int):
        span.set_attribute(SPANDATA.SERVER_PORT, port)
    elif port is not None:
        try:
            span.set_attribute(SPANDATA.SERVER_PORT, int(port))
        except (TypeError, ValueError):
            pass
    return span


def _streaming() -> bool:
    from tripwire.integrations._common.streaming import streaming

    return streaming(get_client())


def _wrap_connect(original: Callable[..., Any]) -> Callable[..., Any]:
    import socket

    default_timeout = getattr(socket, "_GLOBAL_DEFAULT_TIMEOUT", None)

    @functools.wraps(original)
    def create_connection(
        address: Any,
        timeout: Any = default_timeout,
        source_address: Any = None,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        if get_client().get_integration(SocketIntegration) is None:
            return original(address, timeout, source_address, *args, **kwargs)
        from tripwire.tracing._api import sdk_start_span

        try:
            host, port = address[0], address[1]
        except Exception:
            host, port = address, None
        if _streaming():
            streamed = _streamed(OP.SOCKET_CONNECTION, host, port)
            if streamed is None:
                return original(address, timeout, source_address, *args, **kwargs)
            with streamed:
                return original(address, timeout, source_address, *args, **kwargs)
        with sdk_start_span(
            op=OP.SOCKET_CONNECTION, name=_description(host, port), origin=ORIGIN
        ) as span:
            span.set_data("address", address)
            span.set_data("timeout", timeout)
            span.set_data("source_address", source_address)
            return original(address, timeout, source_address, *args, **kwargs)

    return create_connection


def _wrap_dns(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def getaddrinfo(host: Any, port: Any, *args: Any, **kwargs: Any) -> Any:
        if get_client().get_integration(SocketIntegration) is None:
            return original(host, port, *args, **kwargs)
        from tripwire.tracing._api import sdk_start_span

        if _streaming():
            streamed = _streamed(OP.SOCKET_DNS, host, port)
            if streamed is None:
                return original(host, port, *args, **kwargs)
            with streamed:
                return original(host, port, *args, **kwargs)

        with sdk_start_span(op=OP.SOCKET_DNS, name=_description(host, port), origin=ORIGIN) as span:
            span.set_data("host", host)
            span.set_data("port", port)
            return original(host, port, *args, **kwargs)

    return getaddrinfo


__all__ = ["SocketIntegration"]
