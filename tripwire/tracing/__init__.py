"""Tracing: spans, transactions, sampling and propagation.

Interim module: the scope hooks below keep tracing disabled (as sentry_sdk with
no traces_sample_rate) until the full implementation lands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tripwire.tracing._propagation import PropagationContext

if TYPE_CHECKING:
    from tripwire.scope._scope import Scope


def propagation_context_from_headers(headers: dict[str, Any]) -> PropagationContext | None:
    """A propagation context continued from sentry-trace/baggage headers, if present."""
    return None


def dynamic_sampling_context_for_scope(scope: Scope) -> dict[str, str] | None:
    """The dynamic sampling context of the scope's trace."""
    context = scope.get_active_propagation_context()
    if context.dynamic_sampling_context is not None:
        return context.dynamic_sampling_context
    client = scope.get_client()
    opts = client.options
    dsc = {"trace_id": context.trace_id}
    for key in ("environment", "release"):
        if opts.get(key):
            dsc[key] = str(opts[key])
    parsed = client.parsed_dsn
    if parsed is not None:
        dsc["public_key"] = parsed.public_key
    return dsc


def traceparent_for_scope(scope: Scope) -> str | None:
    """The sentry-trace header value for the scope."""
    context = scope.get_active_propagation_context()
    return f"{context.trace_id}-{context.span_id}"


def baggage_for_scope(scope: Scope) -> Any:
    """The baggage header value for the scope."""
    dsc = dynamic_sampling_context_for_scope(scope) or {}
    return ",".join(f"sentry-{k}={v}" for k, v in dsc.items()) or None


class NoOpSpan:
    """A span that records nothing."""

    def __enter__(self) -> NoOpSpan:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def start_child(self, **kwargs: Any) -> NoOpSpan:
        """Another NoOpSpan."""
        return NoOpSpan()

    def finish(self, *args: Any, **kwargs: Any) -> None:
        """Nothing to finish."""

    def set_tag(self, key: str, value: Any) -> None:
        """Ignored."""

    def set_data(self, key: str, value: Any) -> None:
        """Ignored."""

    def set_status(self, value: str) -> None:
        """Ignored."""

    def set_measurement(self, name: str, value: float, unit: str = "") -> None:
        """Ignored."""


def start_transaction(
    scope: Scope, transaction: Any, custom_sampling_context: Any, **kwargs: Any
) -> Any:
    """Tracing is not enabled yet: a span that records nothing."""
    return NoOpSpan()


def start_span(scope: Scope, **kwargs: Any) -> Any:
    """Tracing is not enabled yet: a span that records nothing."""
    return NoOpSpan()


def continue_trace(
    scope: Scope, environ_or_headers: Any, op: Any, name: Any, source: Any, origin: Any
) -> Any:
    """Tracing is not enabled yet: a span that records nothing."""
    return NoOpSpan()


def trace(func: Any = None, **kwargs: Any) -> Any:
    """Decorator placeholder: returns the function unchanged."""
    if func is None:
        return lambda f: f
    return func
