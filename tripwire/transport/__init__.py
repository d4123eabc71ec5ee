"""Transports: the one-method seam `capture_envelope(envelope)`.

`Transport` is the base class users subclass (as in sentry_sdk.transport);
`HttpTransport` is the default one, built when a DSN is set.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any, Callable

from tripwire._deprecation import deprecated
from tripwire._log import logger
from tripwire.dsn import Dsn
from tripwire.outcomes import DataCategory, Forward, Outcomes

if TYPE_CHECKING:
    from tripwire.dsn import Dsn
    from tripwire.envelope import Envelope, Item
    from tripwire.types import EventDict


class Transport:
    """Base class for all transports: receives envelopes ready to send."""

    parsed_dsn: Dsn | None = None
    # True for a transport that sends from an event loop (AsyncHttpTransport): the
    # client's sync flush() and close() must not block that loop.
    is_async = False

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        self.options = options
        self._outcomes = Outcomes()
        dsn = options.get("dsn") if options else None
        if dsn:
            self.parsed_dsn = Dsn.parse(dsn)

    def capture_envelope(self, envelope: Envelope) -> None:
        """Send an envelope. Subclasses implement this; it must not block on I/O."""
        raise NotImplementedError

    def capture_event(self, event: EventDict) -> None:
        """Deprecated form kept for compatibility: wraps `event` in an envelope."""
        from tripwire.envelope import Envelope  # lazy: envelope loads json; deprecated path

        envelope = Envelope(headers={"event_id": event.get("event_id")})
        envelope.add_event(event)
        self.capture_envelope(envelope)

    def flush(self, timeout: float, callback: Callable[[int, float], None] | None = None) -> None:
        """Wait up to `timeout` seconds for pending envelopes to be sent."""

    def kill(self) -> None:
        """Stop at once; pending envelopes may be lost (and are counted)."""

    def is_healthy(self) -> bool:
        """False while the transport is rate-limited or its queue is full."""
        return True

    def record_lost_event(
        self,
        reason: str,
        data_category: DataCategory | str | None = None,
        item: Item | None = None,
        *,
        quantity: int = 1,
    ) -> None:
        """Count a lost event (by reason and data category) for client reports.

        Subclasses may override it to see every loss, the client's own drops included
        (sample_rate, before_send, event_processor...), as with sentry_sdk 2.x.
        Reasons and categories the SDK does not know are counted as given.
        """
        if getattr(_forwarding, "active", False):
            # The client counted this loss already and is showing it to a subclass
            # that called up to here.
            return
        if data_category is None:
            data_category = item.data_category if item is not None else DataCategory.DEFAULT
        self._outcomes.count(reason, data_category, quantity)

    def __del__(self) -> None:
        # Transports own threads and sockets; dropping the last reference must not hang.
        pass


class _FunctionTransport(Transport):
    """`transport=callable`: the callable receives each event dict."""

    def __init__(self, func: Callable[[EventDict], None]) -> None:
        super().__init__()
        self._func = func

    def capture_envelope(self, envelope: Envelope) -> None:
        event = envelope.get_event()
        if event is not None:
            self._func(event)


# Set while the client hands one of its own losses to a transport's record_lost_event.
_forwarding = threading.local()


def lost_event_forwarder(transport: Any) -> Forward | None:
    """How a client shows its losses to `transport`: None if it has no record_lost_event of its own.

    The base implementation only counts into the client's Outcomes, which the client
    does itself; an override (or a duck-typed transport's method) is called as
    sentry_sdk calls it: `(reason, data_category=...)`, plus `quantity=` when not 1.
    """
    method = getattr(transport, "record_lost_event", None)
    if method is None or getattr(type(transport), "record_lost_event", None) is (
        Transport.record_lost_event
    ):
        return None

    def forward(reason: str, category: str, quantity: int) -> None:
        _forwarding.active = True
        try:
            if quantity == 1:
                method(reason, data_category=category)
            else:
                method(reason, data_category=category, quantity=quantity)
        except Exception:
            logger.debug("record_lost_event of %r raised", transport, exc_info=True)
        finally:
            _forwarding.active = False

    return forward


def make_transport(options: dict[str, Any]) -> Transport | None:
    """The transport for these options: the `transport` option, else HTTP when a DSN is set."""
    ref = options.get("transport")
    if ref is None:
        if not options.get("dsn"):
            return None
        return _http_transport_class(options)(options)
    if isinstance(ref, Transport):
        return ref
    if isinstance(ref, type) and issubclass(ref, Transport):
        return ref(options)
    if callable(ref):
        deprecated(
            "a function as `transport` is deprecated (as in sentry_sdk 2.x):"
            " pass a Transport subclass or instance instead"
        )
        return _FunctionTransport(ref)
    # Duck-typed transports (objects with capture_envelope) are accepted as sentry_sdk does.
    if hasattr(ref, "capture_envelope"):
        return ref  # type: ignore[no-any-return]
    raise TypeError(f"transport must be a Transport, a Transport subclass or a callable: {ref!r}")


def _http_transport_class(options: dict[str, Any]) -> type[Transport]:
    """HttpTransport, or the one `_experiments` ask for, as sentry_sdk 2.75 decides.

    ``transport_async`` takes effect inside a running event loop with the asyncio
    integration listed in ``integrations`` (and then ``transport_http2`` is ignored);
    otherwise it falls back to the sync transport with sentry_sdk's warning.
    """
    experiments = options.get("_experiments") or {}
    if experiments.get("transport_async"):
        # Lazy: asyncio and the async transport only when asked for.
        from tripwire.transport._async import AsyncHttpTransport, running_loop

        if running_loop() is None:
            logger.warning("No event loop running, falling back to sync transport.")
        elif not any(
            type(integration).__name__ == "AsyncioIntegration"
            for integration in options.get("integrations") or ()
        ):
            logger.warning(
                "You tried to use AsyncHttpTransport but the AsyncioIntegration is not"
                " enabled. Falling back to sync transport."
            )
        else:
            if experiments.get("transport_http2"):
                logger.warning(
                    "HTTP/2 transport is not supported with async transport."
                    " Ignoring transport_http2 experiment."
                )
            return AsyncHttpTransport
    if experiments.get("transport_http2"):
        from tripwire.transport._http2 import Http2Transport  # lazy: httpcore, h2

        return Http2Transport
    from tripwire.transport._http_transport import HttpTransport  # lazy: sockets, worker

    return HttpTransport


def __getattr__(name: str) -> Any:
    # HttpTransport is imported on first use: urllib3 and ssl stay out of `import tripwire`.
    # sentry_sdk's HTTP transport has two base classes; tripwire's has none between it and
    # Transport, so both names are HttpTransport (isinstance checks and subclasses work).
    if name in ("HttpTransport", "BaseHttpTransport", "HttpTransportCore"):
        from tripwire.transport._http_transport import HttpTransport  # lazy: sockets, worker

        return HttpTransport
    if name == "AsyncHttpTransport":
        from tripwire.transport._async import AsyncHttpTransport  # lazy: asyncio

        return AsyncHttpTransport
    if name == "Http2Transport":
        from tripwire.transport._http2 import Http2Transport  # lazy: httpcore, h2

        return Http2Transport
    if name == "KEEP_ALIVE_SOCKET_OPTIONS":
        from tripwire.transport._http_client import keep_alive_socket_options  # lazy

        return keep_alive_socket_options()
    raise AttributeError(name)


__all__ = ["HttpTransport", "Transport", "make_transport"]
