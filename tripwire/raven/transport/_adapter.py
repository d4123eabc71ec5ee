"""Mapping ``Client(transport=...)`` onto a tripwire transport (see the package docstring)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Optional

from tripwire._log import logger
from tripwire.consts import USER_AGENT
from tripwire.transport import Transport as TripwireTransport
from tripwire.transport import _FunctionTransport

if TYPE_CHECKING:
    from tripwire.dsn import Dsn
    from tripwire.envelope import Envelope


def _is_builtin_http(cls: type) -> bool:
    """A raven HTTP transport class whose sending tripwire does itself."""
    from tripwire.raven.transport.http import HTTPTransport
    from tripwire.raven.transport.threaded import ThreadedHTTPTransport

    if not issubclass(cls, HTTPTransport):
        return False
    # A subclass that overrides how to send keeps its own code.
    if cls.send is not HTTPTransport.send:
        return False
    async_send = getattr(cls, "async_send", None)
    return async_send is None or async_send is ThreadedHTTPTransport.async_send


class RavenTransportAdapter(TripwireTransport):
    """Hands each envelope to a raven-style transport object.

    A synchronous transport runs on the capturing thread, as it did under raven; its
    last error is kept per thread so that ``raise_send_errors=True`` can re-raise it.
    """

    def __init__(self, raven_transport: Any, dsn: Dsn) -> None:
        super().__init__(None)
        self.parsed_dsn = dsn
        self.raven_transport = raven_transport
        self._url = dsn.envelope_url
        self._headers = {
            "Content-Type": "application/x-sentry-envelope",
            "User-Agent": USER_AGENT,
            "X-Sentry-Auth": dsn.auth_header(),
        }
        self._errors = threading.local()

    def capture_envelope(self, envelope: Envelope) -> None:
        """Serialize `envelope` and hand it to the raven transport."""
        self._errors.last = None
        body = envelope.serialize()
        target = self.raven_transport
        try:
            if getattr(target, "is_async", False) and hasattr(target, "async_send"):
                target.async_send(self._url, body, dict(self._headers), _ignore, self._async_failed)
            else:
                target.send(self._url, body, dict(self._headers))
        except Exception as exc:
            self._errors.last = exc
            self._failed(exc)

    def _async_failed(self, exc: BaseException) -> None:
        self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        logger.warning("raven transport %r failed to send an event: %s", self.raven_transport, exc)
        self.record_lost_event("network_error", "error")

    def take_error(self) -> Optional[BaseException]:
        """The error of the last send on this thread (then forgotten)."""
        error: Optional[BaseException] = getattr(self._errors, "last", None)
        self._errors.last = None
        return error


def _ignore() -> None:
    pass


def resolve_transport(
    transport: Any, dsn: Optional[Dsn], dsn_options: dict[str, str]
) -> tuple[Any, bool]:
    """The tripwire ``transport`` option for raven's `transport`, and whether it can send.

    Raises:
        TypeError: `transport` is none of the accepted kinds.
    """
    if transport is None:
        return None, dsn is not None
    if isinstance(transport, type):
        if issubclass(transport, TripwireTransport):
            return transport, True
        if _is_builtin_http(transport):
            return None, dsn is not None
        if callable(getattr(transport, "send", None)) or callable(
            getattr(transport, "async_send", None)
        ):
            if dsn is None:
                logger.warning("raven transport %r needs a DSN; events are dropped", transport)
                return None, False
            try:
                instance = transport(**dsn_options)
            except TypeError:
                instance = transport()
            return RavenTransportAdapter(instance, dsn), True
    elif callable(getattr(transport, "capture_envelope", None)):
        return transport, True
    elif callable(getattr(transport, "send", None)) and not callable(transport):
        # An instance of a raven-style transport: use it as it is.
        if dsn is None:
            logger.warning("raven transport %r needs a DSN; events are dropped", transport)
            return None, False
        return RavenTransportAdapter(transport, dsn), True
    if callable(transport):
        # A function is ordinary raven API: no sentry_sdk deprecation warning for it.
        return _FunctionTransport(transport), True
    raise TypeError(
        "transport must be a raven Transport class, a tripwire Transport (class or "
        f"instance) or a callable, got {type(transport).__name__}"
    )
