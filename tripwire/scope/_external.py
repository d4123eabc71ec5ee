"""An external tracer's trace (OpenTelemetry): events join it instead of the SDK's.

While a function is registered, events captured with no active span of the SDK take
their `contexts.trace` (trace_id, span_id) from it, and the SDK adds no trace headers
to outgoing requests (the external propagator does). As sentry_sdk.scope's
`register_external_propagation_context` and friends.
"""

from __future__ import annotations

from typing import Callable, Optional

ExternalContextFn = Callable[[], Optional[tuple[str, str]]]


class _Registry:
    __slots__ = ("fn",)

    def __init__(self) -> None:
        self.fn: ExternalContextFn | None = None


registry = _Registry()


def register_external_propagation_context(fn: ExternalContextFn) -> None:
    """Register `fn`: it returns the external (trace_id, span_id), or None."""
    registry.fn = fn


def remove_external_propagation_context() -> None:
    """Forget the registered function."""
    registry.fn = None


def get_external_propagation_context() -> tuple[str, str] | None:
    """The external (trace_id, span_id) now, if a function is registered and has one."""
    fn = registry.fn
    return fn() if fn is not None else None


def has_external_propagation_context() -> bool:
    """Whether a function is registered."""
    return registry.fn is not None
