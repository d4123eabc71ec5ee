"""Breadcrumbs' wire form, prepared once per breadcrumb and cached by the client.

A breadcrumb does not change once recorded, but sentry_sdk re-serializes and
re-scrubs every breadcrumb (up to 100) on every event. Here each crumb is prepared
the first time an event carries it; `CrumbCache` remembers the result by identity.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any, Callable

from tripwire._clock import clock, format_timestamp, to_epoch
from tripwire._log import logger
from tripwire.scope._data import CRUMBS

if TYPE_CHECKING:
    from tripwire.scope._scope import Scope
    from tripwire.types import Breadcrumb, BreadcrumbHint

Prepared = tuple[dict[str, Any], "dict[str, Any] | None"]


class Ring(deque):  # type: ignore[type-arg]
    """A scope's breadcrumbs, capped at max_breadcrumbs, counting those that fell off.

    `truncated` feeds the `_meta` length annotation sentry_sdk gives an event's
    breadcrumbs (see `_apply._merge_breadcrumbs`); `append` stays deque's own C method:
    callers count with `append_counted`.
    """

    __slots__ = ("truncated",)

    def __init__(self, crumbs: Any = (), maxlen: int | None = None, truncated: int = 0) -> None:
        super().__init__(crumbs, maxlen)
        self.truncated = truncated


def append_counted(ring: Any, crumb: Any) -> None:
    """Append `crumb` to a full-or-not capped ring, counting the crumb that falls off."""
    if len(ring) == ring.maxlen:
        try:
            ring.truncated += 1
        except AttributeError:  # a plain deque (made by older code): nothing to count in
            pass
    ring.append(crumb)


def copy_ring(ring: Any, limit: int) -> Ring:
    """A new ring capped at `limit` holding `ring`'s newest crumbs, with their count.

    Crumbs that do not fit the new cap count as fallen off too.
    """
    over = max(0, len(ring) - limit)
    return Ring(ring, maxlen=limit, truncated=getattr(ring, "truncated", 0) + over)


class SharedRing:
    """A ring's prepared breadcrumbs, shared by every event that carries them unchanged."""

    __slots__ = ("_encoded", "metas", "values")

    def __init__(self, values: list[dict[str, Any]], metas: dict[str, Any]) -> None:
        self.values = values
        self.metas = metas
        self._encoded: bytes | None = None

    def encoded(self) -> bytes:
        """`{"values": [...]}` as JSON, encoded once (on whichever thread first needs it)."""
        data = self._encoded
        if data is None:
            from tripwire._json import dumps

            data = self._encoded = dumps({"values": self.values})
        return data


class CrumbsBlock(dict):  # type: ignore[type-arg]
    """`event["breadcrumbs"]` when it is a `SharedRing`: a plain dict to everyone
    else, but `EventPayload` splices its pre-encoded JSON instead of encoding it."""

    __slots__ = ("shared",)

    def __init__(self, shared: SharedRing) -> None:
        super().__init__(values=shared.values)
        self.shared = shared


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


def record_breadcrumb(
    scope: Scope, crumb: Breadcrumb | None, hint: BreadcrumbHint | None, kwargs: dict[str, Any]
) -> None:
    """`add_breadcrumb` for `scope`; `kwargs` is taken over (the caller's ** dict is fresh)."""
    client = _current.get_client()
    if not client._recording:
        return
    if crumb:
        new = dict(crumb)
        if kwargs:
            new.update(kwargs)
    else:
        new = kwargs
    if not new:
        return
    if new.get("timestamp") is None:
        new["timestamp"] = clock.now()
    before = client._before_breadcrumb
    if before is not None:
        result = client._run_user_hook(before, new, hint or {})
        if result is None:
            logger.debug("before_breadcrumb dropped a breadcrumb")
            return
        new = result
    limit = client._max_breadcrumbs
    data = scope._d
    ring = data.breadcrumbs
    if scope._mine and data.owned & CRUMBS and ring.maxlen == limit:
        append_counted(ring, new)
    else:
        scope.append_breadcrumb(new, limit)


# Imported last: `_current` leads back here through `_scope`, which needs
# `record_breadcrumb` defined first.
from tripwire.scope import _current  # noqa: E402
