"""Event processors every event goes through (sentry_sdk.scope.add_global_event_processor).

Scope data like the rest: the capture merge (`capture/merge.py`) runs them before the
scopes' own processors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from tripwire.types import EventProcessor

# Module-level processors added by integrations (sentry_sdk.scope.add_global_event_processor).
global_event_processors: list[EventProcessor] = []


def add_global_event_processor(processor: EventProcessor) -> EventProcessor:
    """Register a processor run on every event before the scopes' own processors."""
    global_event_processors.append(processor)
    return processor
