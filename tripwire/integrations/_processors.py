"""Helpers for integrations that add a global event processor."""

from __future__ import annotations

from typing import TYPE_CHECKING, Callable

from tripwire.integrations._patch import on_undo
from tripwire.scope._global_processors import global_event_processors

if TYPE_CHECKING:
    from tripwire.types import EventDict, EventProcessor, Hint


def add_internal_processor(
    processor: Callable[[EventDict, Hint], EventDict | None],
) -> EventProcessor:
    """Register an SDK-owned global processor (marked trusted: its output is JSON-safe)."""
    processor._tripwire_internal = True  # type: ignore[attr-defined]
    global_event_processors.append(processor)

    def remove() -> None:
        if processor in global_event_processors:
            global_event_processors.remove(processor)

    on_undo(remove)
    return processor
