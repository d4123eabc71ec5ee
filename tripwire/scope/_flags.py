"""A scope's feature flag evaluations, and the `flags` context of error events.

The API is `tripwire.feature_flags.add_feature_flag`; this is the scope data it writes.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tripwire.scope._scope import Scope
    from tripwire.types import EventDict

DEFAULT_FLAG_CAPACITY = 100


class FlagBuffer:
    """The most recent `capacity` flag evaluations, oldest first (thread-safe)."""

    __slots__ = ("_flags", "capacity", "lock")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        # Re-entrant: a signal handler or a finalizer (`__del__`) runs on the thread it
        # interrupts, also inside these blocks (`copy` allocates), and it may evaluate a
        # flag or capture an error (which copies this buffer). A nested `set` is
        # harmless: the next `set` trims the buffer back to `capacity`.
        self.lock = threading.RLock()
        # Insertion-ordered: the first key is the least recently evaluated flag.
        self._flags: dict[str, bool] = {}

    def clear(self) -> None:
        """Forget every evaluation."""
        with self.lock:
            self._flags = {}

    def copy(self) -> FlagBuffer:
        """An independent buffer with the same capacity and evaluations."""
        new = FlagBuffer(self.capacity)
        with self.lock:
            new._flags = dict(self._flags)
        return new

    __copy__ = copy

    def __deepcopy__(self, memo: dict[int, Any]) -> FlagBuffer:
        return self.copy()

    def get(self) -> list[dict[str, Any]]:
        """The evaluations as `[{"flag": name, "result": value}, ...]`, oldest first."""
        with self.lock:
            return [{"flag": flag, "result": result} for flag, result in self._flags.items()]

    def set(self, flag: str, result: bool) -> None:
        """Record an evaluation (it becomes the most recent one).

        Raises:
            ValueError: `result` is a FlagBuffer (a buffer is not a flag's result).
        """
        if isinstance(result, FlagBuffer):  # type: ignore[unreachable]
            raise ValueError("a FlagBuffer cannot be stored as a flag result")
        with self.lock:
            flags = self._flags
            if flags.pop(flag, _MISSING) is _MISSING:
                while len(flags) >= self.capacity:
                    flags.pop(next(iter(flags)), None)  # a nested `set` may have taken it
            flags[flag] = result

    def _update(self, other: FlagBuffer) -> None:
        # Evaluations of a later scope layer, in their order, on top of these.
        for flag, result in list(other._flags.items()):
            self.set(flag, result)

    def __repr__(self) -> str:
        return f"<FlagBuffer capacity={self.capacity} flags={len(self._flags)}>"


_MISSING: Any = object()


def merged_flags(layers: Iterable[Scope]) -> list[dict[str, Any]]:
    """The flags of scope layers merged in order (the first buffer sets the capacity)."""
    merged: FlagBuffer | None = None
    for scope in layers:
        buffer = scope._d.flags
        if buffer is None:
            continue
        if merged is None:
            merged = buffer.copy()
        else:
            merged._update(buffer)
    return merged.get() if merged is not None else []


def apply_flags(event: EventDict, layers: Iterable[Scope]) -> None:
    """Add `contexts.flags` to an error or message event (not transactions or check-ins)."""
    if event.get("type") in ("transaction", "check_in"):
        return
    values = merged_flags(layers)
    if values:
        contexts = event.get("contexts")
        if contexts is None:
            contexts = event["contexts"] = {}
        flags: dict[str, Any] | None = contexts.get("flags")
        if flags is None:
            flags = contexts["flags"] = {}
        flags["values"] = values
