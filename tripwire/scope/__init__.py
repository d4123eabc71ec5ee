"""Scopes: global, isolation and current (as in sentry_sdk.scope)."""

from __future__ import annotations

from tripwire.scope._apply import add_global_event_processor, global_event_processors
from tripwire.scope._current import (
    get_client,
    get_current_scope,
    get_global_scope,
    get_isolation_scope,
    isolation_scope,
    new_scope,
    use_isolation_scope,
    use_scope,
)
from tripwire.scope._scope import Scope, ScopeType

__all__ = [
    "Scope",
    "ScopeType",
    "add_global_event_processor",
    "get_client",
    "get_current_scope",
    "get_global_scope",
    "get_isolation_scope",
    "global_event_processors",
    "isolation_scope",
    "new_scope",
    "use_isolation_scope",
    "use_scope",
]
