"""Scope methods for tracing and sessions: delegations to `tripwire.tracing` / `sessions`."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:
    from tripwire.client import BaseClient
    from tripwire.scope._data import ScopeData
    from tripwire.scope._scope import Scope
    from tripwire.tracing._propagation import PropagationContext


class TracingMethods:
    """Mixed into `Scope`."""

    __slots__ = ()

    if TYPE_CHECKING:
        _d: ScopeData

        def _w(self) -> ScopeData: ...

        def get_client(self) -> BaseClient: ...

    def get_active_propagation_context(self) -> PropagationContext:
        """This scope's propagation context, else the isolation scope's, else the global's."""
        from tripwire.scope._current import active_propagation_context

        return active_propagation_context(cast("Scope", self))

    def set_new_propagation_context(self) -> None:
        """Start a new trace for this scope."""
        from tripwire.tracing._propagation import PropagationContext

        self._w().propagation_context = PropagationContext()

    def generate_propagation_context(self, incoming_data: dict[str, str] | None = None) -> None:
        """Continue `incoming_data` (headers) or make sure a propagation context exists."""
        if incoming_data:
            from tripwire.tracing import propagation_context_from_headers

            context = propagation_context_from_headers(incoming_data)
            if context is not None:
                self._w().propagation_context = context
                return
        if self._d.propagation_context is None:
            self.set_new_propagation_context()

    def get_trace_context(self) -> dict[str, Any]:
        """The `contexts.trace` an event captured in this scope gets."""
        span = self._d.span
        if span is not None and hasattr(span, "get_trace_context"):
            return dict(span.get_trace_context())
        context = self.get_active_propagation_context()
        out = context.to_trace_context()
        dsc = self.get_dynamic_sampling_context()
        if dsc is not None:
            out["dynamic_sampling_context"] = dsc
        return out

    def get_dynamic_sampling_context(self) -> dict[str, str] | None:
        """The dynamic sampling context of the active trace."""
        from tripwire.tracing import dynamic_sampling_context_for_scope

        return dynamic_sampling_context_for_scope(cast("Scope", self))

    def get_traceparent(self, *args: Any, **kwargs: Any) -> str | None:
        """The `sentry-trace` header value for the active span or trace."""
        from tripwire.tracing import traceparent_for_scope

        return traceparent_for_scope(cast("Scope", self))

    def get_baggage(self, *args: Any, **kwargs: Any) -> Any:
        """The `baggage` for the active span or trace."""
        from tripwire.tracing import baggage_for_scope

        return baggage_for_scope(cast("Scope", self))

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
        span = kwargs.get("span") or (args[0] if args else None) or self._d.span
        client = self.get_client()
        if not client.options.get("propagate_traces", True):
            return
        if span is not None and hasattr(span, "iter_headers"):
            yield from span.iter_headers()
        else:
            yield from self.iter_headers()

    def trace_propagation_meta(self, *args: Any, **kwargs: Any) -> str:
        """HTML meta tags carrying the trace headers, for templates."""
        return "".join(
            f'<meta name="{name}" content="{value}">'
            for name, value in self.iter_trace_propagation_headers(*args, **kwargs)
        )

    def start_session(self, *args: Any, **kwargs: Any) -> None:
        """Start a release-health session (see tripwire.sessions)."""
        from tripwire.sessions import start_session

        start_session(cast("Scope", self), *args, **kwargs)

    def end_session(self, *args: Any, **kwargs: Any) -> None:
        """End the current session, if any."""
        from tripwire.sessions import end_session

        end_session(cast("Scope", self))

    def stop_auto_session_tracking(self, *args: Any, **kwargs: Any) -> None:
        """Stop automatic session tracking for this scope."""
        self.end_session()
        self._w().force_auto_session_tracking = False

    def resume_auto_session_tracking(self) -> None:
        """Resume automatic session tracking if it is enabled globally."""
        self._w().force_auto_session_tracking = None

    def start_transaction(
        self,
        transaction: Any = None,
        instrumenter: str = "sentry",
        custom_sampling_context: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Start a transaction (see tripwire.tracing)."""
        from tripwire.tracing import start_transaction

        return start_transaction(
            cast("Scope", self), transaction, custom_sampling_context, **kwargs
        )

    def start_span(self, instrumenter: str = "sentry", **kwargs: Any) -> Any:
        """Start a span under the active span (see tripwire.tracing)."""
        from tripwire.tracing import start_span

        return start_span(cast("Scope", self), **kwargs)

    def continue_trace(
        self,
        environ_or_headers: dict[str, Any],
        op: str | None = None,
        name: str | None = None,
        source: str | None = None,
        origin: str = "manual",
    ) -> Any:
        """Continue the trace in `environ_or_headers`; returns an unstarted transaction."""
        from tripwire.tracing import continue_trace

        return continue_trace(cast("Scope", self), environ_or_headers, op, name, source, origin)
