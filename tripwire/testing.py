"""The public test kit: an in-memory transport, deterministic ids and clock, reset().

    from tripwire.testing import capture_envelopes
    with capture_envelopes() as transport:
        tripwire.capture_message("hi")
    assert transport.events[0]["message"] == "hi"

`MemoryTransport` keeps each envelope as the bytes that would go on the wire and
parses them back, so tests see exactly what a server would receive.
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any, Callable

import tripwire
from tripwire._clock import clock
from tripwire._ids import ids
from tripwire.envelope import Envelope
from tripwire.integrations import reset_integrations
from tripwire.scope._current import get_client, reset_scopes
from tripwire.transport import Transport

if TYPE_CHECKING:
    from tripwire.envelope import Envelope


class MemoryTransport(Transport):
    """Keeps every envelope's wire bytes in memory."""

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        super().__init__(options)
        self.raw: list[bytes] = []

    def capture_envelope(self, envelope: Envelope) -> None:
        """Serialize and keep the envelope."""
        self.raw.append(envelope.serialize())

    @property
    def envelopes(self) -> list[Envelope]:
        """The kept envelopes, parsed back from their bytes."""
        return [Envelope.deserialize(raw) for raw in self.raw]

    @property
    def events(self) -> list[dict[str, Any]]:
        """The error/message events, parsed back from the wire bytes."""
        found = []
        for envelope in self.envelopes:
            event = envelope.get_event()
            if event is not None:
                found.append(event)
        return found

    @property
    def transactions(self) -> list[dict[str, Any]]:
        """The transaction events, parsed back from the wire bytes."""
        found = []
        for envelope in self.envelopes:
            event = envelope.get_transaction_event()
            if event is not None:
                found.append(event)
        return found

    def items(self, item_type: str | None = None) -> list[Any]:
        """All items (of `item_type` if given) across the kept envelopes."""
        return [
            item
            for envelope in self.envelopes
            for item in envelope.items
            if item_type is None or item.type == item_type
        ]

    def clear(self) -> None:
        """Forget what was captured."""
        self.raw.clear()


class capture_envelopes:
    """`with capture_envelopes(**options) as transport:` inits tripwire on a MemoryTransport."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self.transport = MemoryTransport()

    def __enter__(self) -> MemoryTransport:
        tripwire.init(transport=self.transport, **self._options)
        return self.transport

    def __exit__(self, *exc: object) -> None:
        reset()


def deterministic_ids(start: int = 1) -> None:
    """Make event, trace and span ids count up from `start` (hex, zero-padded)."""
    counter = itertools.count(start)
    ids.event_id = lambda: "%032x" % next(counter)
    ids.trace_id = lambda: "%032x" % next(counter)
    ids.span_id = lambda: "%016x" % next(counter)


def frozen_clock(at: float = 1_700_000_000.0, step: float = 0.0) -> Callable[[], float]:
    """Make the SDK clock return `at`, advancing by `step` on every read."""
    state = {"now": at - step}

    def now() -> float:
        state["now"] += step
        return state["now"]

    clock.now = now
    return now


def reset() -> None:
    """Back to the just-imported state: no client, fresh scopes, integration patches undone."""
    client = get_client()
    try:
        client.close(timeout=0)
    except Exception:
        pass
    reset_scopes()
    reset_integrations()
    ids.reset()
    clock.reset()


__all__ = [
    "MemoryTransport",
    "capture_envelopes",
    "deterministic_ids",
    "frozen_clock",
    "reset",
]
