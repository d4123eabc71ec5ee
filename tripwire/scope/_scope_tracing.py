"""Scope methods for tracing and sessions: delegations to `tripwire.tracing` / `sessions`.

Both are above the scopes and loaded on first use (`tripwire._late`): a scope keeps a
module-level reference once loaded, as `from tripwire.tracing import x` inside a
method would cost ~0.2 us per call, a lot on the span hot path.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

from tripwire import _late
from tripwire.scope import _current
from tripwire.scope._external import registry

if TYPE_CHECKING:
    from tripwire._client_base import BaseClient
    from tripwire.scope._data import ScopeData
    from tripwire.scope._scope import Scope
    from tripwire.tracing import NoOpSpan, Span, Transaction
    from tripwire.tracing._propagation import PropagationContext


_tracing: Any = None  # tripwire.tracing, bound on first use (import tripwire stays cheap)


def _load_tracing() -> Any:
    global _tracing
    _tracing = _late.tracing()
    return _tracing


class TracingMethods:
    """Mixed into `Scope`."""

    __slots__ = ()

    if TYPE_CHECKING:
        _d: ScopeData

        def _w(self) -> ScopeData: ...

        def get_client(self) -> BaseClient: ...

    def get_active_propagation_context(self) -> PropagationContext:
        """This scope's propagation context, else the isolation scope's, else the global's."""
        return _current.active_propagation_context(cast("Scope", self))

    @classmethod
    def set_custom_sampling_context(cls, custom_sampling_context: dict[str, Any]) -> None:
        """Attach data to the active trace for `traces_sampler` (span streaming mode).

        Stored on the propagation context in force for the current scope.
        """
        context = _current.get_current_scope().get_active_propagation_context()
        context.custom_sampling_context = custom_sampling_context

    def set_new_propagation_context(self) -> None:
        """Start a new trace for this scope."""
        self._w().propagation_context = (_tracing or _load_tracing()).PropagationContext()

    def generate_propagation_context(self, incoming_data: dict[str, str] | None = None) -> None:
        """Continue `incoming_data` (headers) or make sure a propagation context exists."""
        if incoming_data:
            tracing = _tracing or _load_tracing()
            context = tracing.propagation_context_from_headers(incoming_data)
            if context is not None:
                self._w().propagation_context = context
                return
        if self._d.propagation_context is None:
            self.set_new_propagation_context()

    def get_trace_context(self) -> dict[str, Any]:
        """The `contexts.trace` an event captured in this scope gets.

        Without an active span of ours, an external tracer's trace (see
        `register_external_propagation_context`) takes precedence.
        """
        if registry.fn is not None and not self._speaks_for_trace(self._d.span):
            external = registry.fn()
            if external:
                trace_id, span_id = external
                return {"trace_id": trace_id, "span_id": span_id}
        return (_tracing or _load_tracing()).trace_context_for_scope(self)  # type: ignore[no-any-return]

    def _speaks_for_trace(self, span: Any) -> bool:
        # A span of ours that defines the trace: tracing is on and it is not a no-op.
        if span is None:
            return False
        tracing = _tracing or _load_tracing()
        if not tracing.has_tracing_enabled(self.get_client().options):
            return False
        return not isinstance(span, tracing.NoOpSpan)

    def _fix_dynamic_sampling_context(self, client: Any = None) -> None:
        """Freeze the trace's DSC, as a log or trace metric does in sentry_sdk 2.75.

        It reads the scope's trace context for them, which freezes the baggage of the
        span's segment or transaction (a later rename no longer reaches the trace
        headers), or, outside a span, the DSC made from the options for the trace.
        `client`: the scope's client, when the caller has it.
        """
        span = self._d.span
        if client is None:
            client = self.get_client()
        if span is not None:
            tracing = _tracing or _load_tracing()
            if not isinstance(span, tracing.NoOpSpan) and tracing.has_tracing_enabled(
                client.options
            ):
                span.to_baggage()
                return
        if registry.fn is None or not registry.fn():
            self.get_active_propagation_context().sentry_baggage(client)

    def get_dynamic_sampling_context(self) -> dict[str, str] | None:
        """The dynamic sampling context of the active trace."""
        tracing = _tracing or _load_tracing()
        return tracing.dynamic_sampling_context_for_scope(cast("Scope", self))  # type: ignore[no-any-return]

    def get_traceparent(self, *args: Any, **kwargs: Any) -> str | None:
        """The `sentry-trace` header value for the active span or trace."""
        tracing = _tracing or _load_tracing()
        return tracing.traceparent_for_scope(cast("Scope", self))  # type: ignore[no-any-return]

    def get_baggage(self, *args: Any, **kwargs: Any) -> Any:
        """The `baggage` for the active span or trace."""
        return (_tracing or _load_tracing()).baggage_for_scope(cast("Scope", self))

    def iter_headers(self) -> Iterator[tuple[str, str]]:
        """sentry-trace and baggage headers from the propagation context."""
        traceparent = self.get_traceparent()
        if traceparent is not None:
            yield "sentry-trace", traceparent
        baggage = self.get_baggage()
        if baggage is not None:
            yield "baggage", baggage.serialize() if hasattr(baggage, "serialize") else baggage

    def iter_trace_propagation_headers(
        self, *args: Any, **kwargs: Any
    ) -> Iterator[tuple[str, str]]:
        """Headers for outgoing requests (the span given as `span=`, else the active one)."""
        span = kwargs.get("span") or (args[0] if args else None)
        if registry.fn is not None and not self._speaks_for_trace(span or self._d.span):
            return iter(())  # the external tracer's propagator sets the headers
        return (_tracing or _load_tracing()).iter_propagation_headers(self, span)  # type: ignore[no-any-return]

    def trace_propagation_meta(self, *args: Any, **kwargs: Any) -> str:
        """HTML meta tags carrying the trace headers, for templates."""
        return "".join(
            f'<meta name="{name}" content="{value}">'
            for name, value in self.iter_trace_propagation_headers(*args, **kwargs)
        )

    def start_session(self, *args: Any, **kwargs: Any) -> None:
        """Start a release-health session (see tripwire.sessions)."""
        _late.sessions().start_session(cast("Scope", self), *args, **kwargs)

    def end_session(self, *args: Any, **kwargs: Any) -> None:
        """End the current session, if any."""
        _late.sessions().end_session(cast("Scope", self))

    def stop_auto_session_tracking(self, *args: Any, **kwargs: Any) -> None:
        """Stop automatic session tracking for this scope."""
        self.end_session()
        self._w().force_auto_session_tracking = False

    def resume_auto_session_tracking(self) -> None:
        """Resume automatic session tracking if it is enabled globally."""
        self._w().force_auto_session_tracking = None

    def start_transaction(
        self,
        transaction: Transaction | None = None,
        instrumenter: str = "sentry",
        custom_sampling_context: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Transaction | NoOpSpan:
        """Start a transaction (see tripwire.tracing)."""
        started: Transaction | NoOpSpan = (_tracing or _load_tracing()).start_transaction(
            self, transaction, custom_sampling_context, instrumenter, **kwargs
        )
        return started

    def start_span(self, instrumenter: str = "sentry", **kwargs: Any) -> Span:
        """Start a span under the active span (see tripwire.tracing)."""
        span: Span = (_tracing or _load_tracing()).start_span(self, instrumenter, **kwargs)
        return span

    def continue_trace(
        self,
        environ_or_headers: dict[str, Any],
        op: str | None = None,
        name: str | None = None,
        source: str | None = None,
        origin: str = "manual",
    ) -> Transaction:
        """Continue the trace in `environ_or_headers`; returns an unstarted transaction."""
        transaction: Transaction = (_tracing or _load_tracing()).continue_trace(
            self, environ_or_headers, op, name, source, origin
        )
        return transaction
