"""The payload of an event item: encodes the event, splicing pre-encoded breadcrumbs.

Most of an event's JSON is its breadcrumbs (up to 100), and they are the same from
one event to the next. When `event["breadcrumbs"]` is the client's shared block
(`CrumbsBlock`), the rest of the event is encoded and the block's cached bytes are
appended: what goes on the wire is the same JSON, for a fraction of the encoding.
Encoding still happens lazily, on whichever thread serializes the envelope.
"""

from __future__ import annotations

from typing import Any

from tripwire._json import dumps
from tripwire.capture.markers import CrumbsBlock
from tripwire.envelope import PayloadRef


class EventPayload(PayloadRef):
    """A `PayloadRef(json=event)` that splices shared breadcrumbs into the JSON."""

    __slots__ = ()

    def get_bytes(self) -> bytes:
        """The event's JSON bytes (computed once)."""
        data = self.bytes
        if data is not None:
            return data
        event: Any = self.json
        block = event.get("breadcrumbs") if isinstance(event, dict) else None
        if type(block) is not CrumbsBlock:
            return super().get_bytes()
        rest = dumps({key: value for key, value in event.items() if key != "breadcrumbs"})
        shared = block.shared
        crumbs = shared.encoded
        if crumbs is None:
            # Two threads may both encode it: the same bytes, and the last one is kept.
            crumbs = shared.encoded = dumps({"values": shared.values})
        if rest == b"{}":
            data = b'{"breadcrumbs":' + crumbs + b"}"
        else:
            data = rest[:-1] + b',"breadcrumbs":' + crumbs + b"}"
        self.bytes = data
        return data
