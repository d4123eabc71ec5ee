"""Scopes: global, isolation and current (as in sentry_sdk.scope)."""

from __future__ import annotations

import importlib
from typing import Any

from tripwire._client_base import NonRecordingClient
from tripwire.scope._current import (
    get_client,
    get_current_scope,
    get_global_scope,
    get_isolation_scope,
    isolation_scope,
    new_scope,
    should_send_default_pii,
    use_isolation_scope,
    use_scope,
)
from tripwire.scope._external import (
    get_external_propagation_context,
    has_external_propagation_context,
    register_external_propagation_context,
    remove_external_propagation_context,
)
from tripwire.scope._flags import DEFAULT_FLAG_CAPACITY, FlagBuffer
from tripwire.scope._global_processors import add_global_event_processor, global_event_processors
from tripwire.scope._scope import Scope, ScopeType

# Names sentry_sdk.scope re-exports from elsewhere, loaded on first access (importing
# tracing here would make `import tripwire` pay for it).
_LAZY = {
    "Attachment": "tripwire.attachments",
    "Session": "tripwire.session",
    "DEFAULT_MAX_BREADCRUMBS": "tripwire.consts",
    "FALSE_VALUES": "tripwire.consts",
    "INSTRUMENTER": "tripwire.consts",
    "SPANDATA": "tripwire.consts",
    "BAGGAGE_HEADER_NAME": "tripwire.tracing",
    "SENTRY_TRACE_HEADER_NAME": "tripwire.tracing",
    "Baggage": "tripwire.tracing",
    "PropagationContext": "tripwire.tracing",
    "Span": "tripwire.tracing",
    "Transaction": "tripwire.tracing",
    "NoOpSpan": "tripwire.tracing._span",
    "has_tracing_enabled": "tripwire.tracing._sampling",
    "capture_internal_exceptions": "tripwire.utils",
    "event_from_exception": "tripwire.utils",
    "exc_info_from_error": "tripwire.event.exceptions",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'tripwire.scope' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


__all__ = [
    "DEFAULT_FLAG_CAPACITY",
    "FlagBuffer",
    "NonRecordingClient",
    "Scope",
    "ScopeType",
    "add_global_event_processor",
    "get_client",
    "get_current_scope",
    "get_external_propagation_context",
    "get_global_scope",
    "get_isolation_scope",
    "global_event_processors",
    "has_external_propagation_context",
    "isolation_scope",
    "new_scope",
    "register_external_propagation_context",
    "remove_external_propagation_context",
    "should_send_default_pii",
    "use_isolation_scope",
    "use_scope",
]
