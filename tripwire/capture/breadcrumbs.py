"""Breadcrumbs on the capture path: the wire form, prepared once per breadcrumb.

A breadcrumb does not change once recorded, but sentry_sdk re-serializes and
re-scrubs every breadcrumb (up to 100) on every event. Here each crumb is prepared
the first time an event carries it; `CrumbCache` (one per client) remembers the
result by identity, and `merge_breadcrumbs` puts the scopes' rings into the event.
Recording a breadcrumb (the ring on a scope) is `scope/_breadcrumbs.py`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable

from tripwire._clock import format_timestamp, to_epoch
from tripwire.capture.markers import CrumbsBlock

if TYPE_CHECKING:
    from tripwire._client_base import BaseClient
    from tripwire.types import EventDict

Prepared = tuple[dict[str, Any], "dict[str, Any] | None"]


class SharedRing:
    """A ring's prepared breadcrumbs, shared by every event that carries them unchanged.

    `encoded` is `{"values": [...]}` as JSON, encoded once, on whichever thread first
    encodes an event carrying them (`capture.payload.EventPayload`).
    """

    __slots__ = ("encoded", "metas", "values")

    def __init__(self, values: list[dict[str, Any]], metas: dict[str, Any]) -> None:
        self.values = values
        self.metas = metas
        self.encoded: bytes | None = None


class CrumbCache:
    """{id(crumb): (crumb, wire form, _meta)}; bounded, cleared when it grows too big.

    The crumb itself is kept in the entry so that its id cannot be reused while
    cached. Entries for crumbs that left every ring are dropped at the next clear.
    """

    __slots__ = ("_entries", "_last_ring", "_limit", "_prepare")

    def __init__(self, prepare: Callable[[dict[str, Any]], Prepared], limit: int) -> None:
        self._prepare = prepare
        self._limit = limit
        self._entries: dict[int, tuple[dict[str, Any], dict[str, Any], Any]] = {}
        self._last_ring: tuple[Any, ...] | None = None

    def ring_wire(self, ring: Any) -> SharedRing:
        """Wire forms of a whole ring (values, {index: _meta}), reused while it is unchanged.

        Rings only grow at the end (and drop from the front once full), so the same
        ring object with the same length, first and last crumb holds the same crumbs:
        an error storm with no new breadcrumbs costs one comparison per event.
        The returned list is shared: callers must not mutate it or its dicts.
        """
        crumbs = list(ring)  # one C-level copy: safe against appends from other threads
        last = self._last_ring
        if (
            last is not None
            and crumbs
            and last[0] is ring
            and last[1] == len(crumbs)
            and last[2] is crumbs[0]
            and last[3] is crumbs[-1]
        ):
            return last[4]  # type: ignore[no-any-return]
        values: list[dict[str, Any]] = []
        metas: dict[str, Any] = {}
        for index, crumb in enumerate(crumbs):
            ready, meta = self(crumb if isinstance(crumb, dict) else {"message": crumb})
            values.append(ready)
            if meta:
                metas[str(index)] = meta
        shared = SharedRing(values, metas)
        if crumbs:
            self._last_ring = (ring, len(crumbs), crumbs[0], crumbs[-1], shared)
        return shared

    def __call__(self, crumb: dict[str, Any]) -> Prepared:
        entry = self._entries.get(id(crumb))
        if entry is not None and entry[0] is crumb:
            return entry[1], entry[2]
        ready, meta = self._prepare(crumb)
        if len(self._entries) >= self._limit:
            self._entries.clear()
        self._entries[id(crumb)] = (crumb, ready, meta)
        return ready, meta


def base_wire_form(crumb: dict[str, Any]) -> dict[str, Any]:
    """Copy of `crumb` with the protocol's timestamp string and default type."""
    out = dict(crumb)
    ts = out.get("timestamp")
    if ts is not None and not isinstance(ts, str):
        epoch = to_epoch(ts)
        out["timestamp"] = format_timestamp(epoch) if epoch is not None else str(ts)
    if "type" not in out:
        out["type"] = "default"
    return out


def merge_breadcrumbs(event: EventDict, rings: list[Any], client: BaseClient, share: bool) -> None:
    # As sentry_sdk 2.x: each scope's ring is capped when a crumb is added; the merged
    # list is not capped again. Crumbs that fell off a ring are told by a length
    # annotation, `_meta.breadcrumbs[""] = {"len": kept + fallen off}`.
    own = event.get("breadcrumbs")
    own_values = own.get("values") if isinstance(own, dict) else own
    truncated = 0
    for ring in rings:
        truncated += getattr(ring, "truncated", 0)
    if len(rings) == 1 and not own_values:
        # The common case: one scope's ring, as it was for the previous event.
        shared = client._crumb_wire.ring_wire(rings[0])
        if share:
            event["breadcrumbs"] = CrumbsBlock(shared)
        else:
            event["breadcrumbs"] = {"values": [dict(v) for v in shared.values]}
        if shared.metas or truncated:
            _crumbs_meta(event, dict(shared.metas), len(shared.values), truncated)
        return
    crumbs: list[Any] = list(own_values) if isinstance(own_values, list) else []
    for ring in rings:
        crumbs.extend(ring)
    if len(rings) > 1 or own_values:
        # Crumbs from several scopes interleave in time; order them as sentry_sdk does.
        crumbs.sort(key=_crumb_time)
    wire = client._crumb_wire
    values = []
    metas = {}
    for index, crumb in enumerate(crumbs):
        ready, meta = wire(crumb if isinstance(crumb, dict) else {"message": crumb})
        values.append(ready if share else dict(ready))
        if meta:
            metas[str(index)] = meta
    event["breadcrumbs"] = {"values": values}
    if metas or truncated:
        _crumbs_meta(event, metas, len(values), truncated)


def breadcrumbs_length_meta(kept: int, truncated: int) -> dict[str, Any]:
    """The `_meta` node sentry_sdk gives breadcrumbs when some fell off: {"len": total}."""
    return {"len": kept + truncated}


def _crumbs_meta(event: EventDict, metas: dict[str, Any], kept: int, truncated: int) -> None:
    node = event.setdefault("_meta", {}).setdefault("breadcrumbs", {})
    if truncated:
        node[""] = breadcrumbs_length_meta(kept, truncated)
    if metas:
        node["values"] = metas


def _crumb_time(crumb: Any) -> float:
    # The sort key when several scopes contribute breadcrumbs: runs once per crumb.
    if not isinstance(crumb, dict):
        return 0.0
    ts = crumb.get("timestamp")
    if isinstance(ts, str):
        # Lazy: datetime is kept off `import tripwire`; rare (a user-supplied string).
        from datetime import datetime

        try:
            return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return 0.0
    return to_epoch(ts) or 0.0
