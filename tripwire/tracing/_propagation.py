"""The propagation context: the trace an isolation scope belongs to when no span is active.

Ids are generated lazily: most scopes never need them (no error, no outgoing request).
"""

from __future__ import annotations

from typing import Any

from tripwire._ids import ids


class PropagationContext:
    """trace_id / span_id / parent data continued from incoming headers or made up fresh."""

    __slots__ = (
        "_span_id",
        "_trace_id",
        "dynamic_sampling_context",
        "parent_sampled",
        "parent_span_id",
        "sample_rand",
    )

    def __init__(
        self,
        trace_id: str | None = None,
        span_id: str | None = None,
        parent_span_id: str | None = None,
        parent_sampled: bool | None = None,
        dynamic_sampling_context: dict[str, str] | None = None,
        sample_rand: float | None = None,
    ) -> None:
        self._trace_id = trace_id
        self._span_id = span_id
        self.parent_span_id = parent_span_id
        self.parent_sampled = parent_sampled
        self.dynamic_sampling_context = dynamic_sampling_context
        self.sample_rand = sample_rand

    @property
    def trace_id(self) -> str:
        """The trace id, generated on first use."""
        if self._trace_id is None:
            self._trace_id = ids.trace_id()
        return self._trace_id

    @trace_id.setter
    def trace_id(self, value: str) -> None:
        self._trace_id = value

    @property
    def span_id(self) -> str:
        """The span id errors outside a span attach to, generated on first use."""
        if self._span_id is None:
            self._span_id = ids.span_id()
        return self._span_id

    @span_id.setter
    def span_id(self, value: str) -> None:
        self._span_id = value

    def to_trace_context(self) -> dict[str, Any]:
        """The event's `contexts.trace` for errors outside any span."""
        return {
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "parent_span_id": self.parent_span_id,
        }

    def __repr__(self) -> str:
        return (
            f"<PropagationContext trace_id={self.trace_id} span_id={self.span_id}"
            f" parent_span_id={self.parent_span_id} parent_sampled={self.parent_sampled}>"
        )
