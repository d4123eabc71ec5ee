"""Reversible monkeypatches: every patch records its original so `undo_all` restores it."""

from __future__ import annotations

import threading
from typing import Any, Callable

_lock = threading.Lock()
_undo: list[Callable[[], None]] = []


def patch(owner: Any, name: str, replacement: Any) -> Any:
    """Set `owner.name = replacement`, remembering the original; returns the original."""
    original = getattr(owner, name)
    setattr(owner, name, replacement)

    def undo() -> None:
        if getattr(owner, name, None) is replacement:
            setattr(owner, name, original)

    with _lock:
        _undo.append(undo)
    return original


def patch_once(owner: Any, name: str, make: Callable[[Any], Any], mark: str) -> None:
    """Patch `owner.name` with `make(original)` unless an earlier set-up did (`mark` set)."""
    original = getattr(owner, name)
    if getattr(original, mark, False):
        return
    replacement = make(original)
    setattr(replacement, mark, True)
    patch(owner, name, replacement)


def on_undo(func: Callable[[], None]) -> None:
    """Run `func` when patches are undone (for installs that are not attribute patches)."""
    with _lock:
        _undo.append(func)


def undo_all() -> None:
    """Undo every patch, newest first (used by `tripwire.testing.reset`)."""
    with _lock:
        todo, _undo[:] = list(reversed(_undo)), []
    for undo in todo:
        undo()
