"""Transports: the one-method seam `capture_envelope(envelope)`.

`Transport` is the base class users subclass (as in sentry_sdk.transport);
`HttpTransport` is the default one, built when a DSN is set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from tripwire._log import logger
from tripwire.outcomes import DataCategory, Outcomes

if TYPE_CHECKING:
    from tripwire.dsn import Dsn
    from tripwire.envelope import Envelope, Item
    from tripwire.types import Event


class Transport:
    """Base class for all transports: receives envelopes ready to send."""

    parsed_dsn: Dsn | None = None

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        self.options = options
        self._outcomes = Outcomes()
        dsn = options.get("dsn") if options else None
        if dsn:
            from tripwire.dsn import Dsn

            self.parsed_dsn = Dsn.parse(dsn)

    def capture_envelope(self, envelope: Envelope) -> None:
        """Send an envelope. Subclasses implement this; it must not block on I/O."""
        raise NotImplementedError

    def capture_event(self, event: Event) -> None:
        """Deprecated form kept for compatibility: wraps `event` in an envelope."""
        from tripwire.envelope import Envelope

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
        """Count a lost event (by reason and data category) for client reports."""
        if data_category is None:
            data_category = item.data_category if item is not None else DataCategory.DEFAULT
        try:
            self._outcomes.record(reason, data_category, quantity)
        except ValueError:
            logger.debug("unknown lost-event reason/category %r/%r", reason, data_category)

    def __del__(self) -> None:
        # Transports own threads and sockets; dropping the last reference must not hang.
        pass


class _FunctionTransport(Transport):
    """`transport=callable`: the callable receives each event dict."""

    def __init__(self, func: Callable[[Event], None]) -> None:
        super().__init__()
        self._func = func

    def capture_envelope(self, envelope: Envelope) -> None:
        event = envelope.get_event()
        if event is not None:
            self._func(event)


def make_transport(options: dict[str, Any]) -> Transport | None:
    """The transport for these options: the `transport` option, else HTTP when a DSN is set."""
    ref = options.get("transport")
    if ref is None:
        if not options.get("dsn"):
            return None
        from tripwire.transport.http import HttpTransport

        return HttpTransport(options)
    if isinstance(ref, Transport):
        return ref
    if isinstance(ref, type) and issubclass(ref, Transport):
        return ref(options)
    if callable(ref):
        return _FunctionTransport(ref)
    # Duck-typed transports (objects with capture_envelope) are accepted as sentry_sdk does.
    if hasattr(ref, "capture_envelope"):
        return ref  # type: ignore[no-any-return]
    raise TypeError(f"transport must be a Transport, a Transport subclass or a callable: {ref!r}")


def __getattr__(name: str) -> Any:
    # HttpTransport is imported on first use: urllib3 and ssl stay out of `import tripwire`.
    if name == "HttpTransport":
        from tripwire.transport.http import HttpTransport

        return HttpTransport
    raise AttributeError(name)


__all__ = ["HttpTransport", "Transport", "make_transport"]
