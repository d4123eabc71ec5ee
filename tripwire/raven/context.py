"""`Context`: the thread-local data a raven client adds to its events (`raven.context`).

Each thread sees its own data (``tags``, ``extra``, ``user``, ``request``, ...) and its
own breadcrumb buffer. A context is *active* on a thread between `activate()` and
`deactivate()`; `tripwire.raven.breadcrumbs.record` and the logging hook record into
every context active on the calling thread. A client activates its context on the
thread that created it (stickily), and on any other thread the first time one of its
``*_context`` methods is called there.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any, Optional

from tripwire.raven.breadcrumbs import BreadcrumbBuffer, _active, make_buffer

if TYPE_CHECKING:
    from tripwire.raven.base import Client

# Keys whose values are merged into (dict update) rather than replaced by `merge`.
_MERGED_KEYS = ("tags", "extra")


def get_active_contexts() -> list[Context]:
    """The contexts active on the calling thread."""
    return list(getattr(_active, "contexts", ()))


def _active_set() -> weakref.WeakSet[Context]:
    # Weak: a context whose client is gone must not keep collecting breadcrumbs.
    contexts: Optional[weakref.WeakSet[Context]] = getattr(_active, "contexts", None)
    if contexts is None:
        contexts = _active.contexts = weakref.WeakSet()
    return contexts


class _ThreadState:
    """One thread's view of a context."""

    __slots__ = ("breadcrumbs", "data", "sticky")

    def __init__(self, breadcrumbs: BreadcrumbBuffer) -> None:
        self.data: dict[str, Any] = {}
        self.breadcrumbs = breadcrumbs
        self.sticky = False


class Context(Mapping[str, Any]):
    """Thread-local event data and breadcrumbs, as raven's ``Context``.

    Args:
        client: The client whose events this context feeds (kept as a weak reference).
    """

    def __init__(self, client: Optional[Client] = None) -> None:
        self._client_ref: Optional[weakref.ref[Client]] = (
            weakref.ref(client) if client is not None else None
        )
        self._local = threading.local()

    @property
    def client(self) -> Optional[Client]:
        """The client this context belongs to, if any (and still alive)."""
        return self._client_ref() if self._client_ref is not None else None

    def _state(self) -> _ThreadState:
        state: Optional[_ThreadState] = getattr(self._local, "state", None)
        if state is None:
            client = self.client
            enabled = client.enable_breadcrumbs if client is not None else True
            state = self._local.state = _ThreadState(make_buffer(enabled))
        return state

    @property
    def breadcrumbs(self) -> BreadcrumbBuffer:
        """This thread's breadcrumb buffer."""
        return self._state().breadcrumbs

    # -- activation -----------------------------------------------------------------------

    def activate(self, sticky: bool = False) -> None:
        """Make this context receive breadcrumbs recorded on this thread.

        Args:
            sticky: `clear()` leaves a sticky context active.
        """
        if sticky:
            self._state().sticky = True
        _active_set().add(self)

    def deactivate(self) -> None:
        """Stop receiving this thread's breadcrumbs (the data stays)."""
        state: Optional[_ThreadState] = getattr(self._local, "state", None)
        if state is not None:
            state.sticky = False
        _active_set().discard(self)

    # -- data -----------------------------------------------------------------------------

    def merge(self, data: Mapping[str, Any], activate: bool = True) -> None:
        """Merge `data` in: ``tags`` and ``extra`` are updated, other keys replaced.

        Args:
            data: Event data, e.g. ``{"user": {...}, "tags": {...}}``.
            activate: Also activate this context on this thread.
        """
        if activate:
            self.activate()
        current = self._state().data
        for key, value in data.items():
            if key in _MERGED_KEYS and isinstance(value, Mapping):
                merged = dict(current.get(key) or {})
                merged.update(value)
                current[key] = merged
            else:
                current[key] = value

    def set(self, data: Mapping[str, Any]) -> None:
        """Replace this thread's data with `data`."""
        self._state().data = dict(data)

    def get(self) -> dict[str, Any]:  # type: ignore[override]
        """This thread's data (the live dict, as raven returns it)."""
        return self._state().data

    def clear(self, deactivate: Optional[bool] = None) -> None:
        """Forget this thread's data and breadcrumbs.

        Args:
            deactivate: Also deactivate; by default only a non-sticky context is.
        """
        state = self._state()
        state.data = {}
        state.breadcrumbs.clear()
        if deactivate is None:
            deactivate = not state.sticky
        if deactivate:
            self.deactivate()

    # -- protocols ------------------------------------------------------------------------

    def __enter__(self) -> Context:
        self.activate()
        return self

    def __exit__(self, *exc: object) -> None:
        self.deactivate()

    def __getitem__(self, key: str) -> Any:
        return self._state().data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._state().data))

    def __len__(self) -> int:
        return len(self._state().data)

    # A context is an identity, not a value: two empty contexts are not the same one.
    __hash__ = object.__hash__

    def __eq__(self, other: object) -> bool:
        return self is other

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {self._state().data!r}>"


__all__ = ["Context", "get_active_contexts"]
