"""Span streaming, at sentry_sdk's import path (`sentry_sdk.traces`).

Only for ``trace_lifecycle="stream"``::

    tripwire.init(traces_sample_rate=1.0, trace_lifecycle="stream")

    with tripwire.traces.start_span(name="checkout", attributes={"cart.items": 3}):
        ...

Each span is sent as soon as it ends (a ``span`` envelope item, batched), not inside
a transaction. Outside streaming mode `start_span` warns and returns a
`NoOpStreamedSpan`. See `tripwire.tracing._streamed` for the model.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Optional, TypeVar, Union, overload

from tripwire.tracing._consts import BAGGAGE_HEADER_NAME, SENTRY_TRACE_HEADER_NAME
from tripwire.tracing._decorator import streamed_trace
from tripwire.tracing._streamed import (
    LOW_QUALITY_SEGMENT_SOURCES,
    SOURCE_FOR_STYLE,
    NoOpStreamedSpan,
    SegmentNameSource,
    SpanStatus,
    StreamedSpan,
    continue_trace,
    get_current_span,
    new_trace,
    start_span,
)
from tripwire.utils import qualname_from_function

if TYPE_CHECKING:
    from typing_extensions import ParamSpec

    P = ParamSpec("P")
    R = TypeVar("R")


@overload
def trace(func: Callable[P, R]) -> Callable[P, R]: ...


@overload
def trace(
    func: None = None,
    *,
    name: Optional[str] = None,
    attributes: Optional[dict[str, Any]] = None,
    active: bool = True,
) -> Callable[[Callable[P, R]], Callable[P, R]]: ...


def trace(
    func: Optional[Callable[P, R]] = None,
    *,
    name: Optional[str] = None,
    attributes: Optional[dict[str, Any]] = None,
    active: bool = True,
) -> Union[Callable[P, R], Callable[[Callable[P, R]], Callable[P, R]]]:
    """Run each call of the decorated function inside a streamed span.

    Args:
        func: The function (when used as ``@trace`` without arguments).
        name: The span's name (default: the function's qualified name).
        attributes: Attributes set on each span.
        active: Whether spans started inside become its children.
    """
    decorator = create_streaming_span_decorator(name=name, attributes=attributes, active=active)
    if func is not None:
        return decorator(func)
    return decorator


def create_streaming_span_decorator(
    name: Optional[str] = None,
    attributes: Optional[dict[str, Any]] = None,
    active: bool = True,
) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """A decorator wrapping each call in `start_span` (sentry_sdk's tracing_utils helper)."""

    def decorate(func: Callable[P, R]) -> Callable[P, R]:
        return streamed_trace(func, name, attributes, active, name_of=qualname_from_function)

    return decorate


__all__ = [
    "BAGGAGE_HEADER_NAME",
    "LOW_QUALITY_SEGMENT_SOURCES",
    "SENTRY_TRACE_HEADER_NAME",
    "SOURCE_FOR_STYLE",
    "NoOpStreamedSpan",
    "SegmentNameSource",
    "SpanStatus",
    "StreamedSpan",
    "continue_trace",
    "get_current_span",
    "new_trace",
    "start_span",
    "trace",
]
