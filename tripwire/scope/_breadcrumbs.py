"""Breadcrumbs on a scope: the capped ring and recording one (`add_breadcrumb`).

Their wire form, prepared once per breadcrumb, is `capture/breadcrumbs.py`.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Any

from tripwire._clock import clock
from tripwire._log import logger

if TYPE_CHECKING:
    from tripwire.scope._scope import Scope
    from tripwire.types import Breadcrumb, BreadcrumbHint


class Ring(deque):  # type: ignore[type-arg]
    """A scope's breadcrumbs, capped at max_breadcrumbs, counting those that fell off.

    `truncated` feeds the `_meta` length annotation sentry_sdk gives an event's
    breadcrumbs (see `capture.breadcrumbs.merge_breadcrumbs`); `append` stays deque's own C method:
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
    scope.append_breadcrumb(new, client._max_breadcrumbs)


# Imported last: `_current` leads back here through `_scope`, which needs
# `record_breadcrumb` defined first.
from tripwire.scope import _current  # noqa: E402
