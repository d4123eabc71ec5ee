"""Data on and the end of a boto3 call's span, of either model (transaction or streamed)."""

from __future__ import annotations

from typing import Any, Optional

from tripwire.consts import SPANSTATUS
from tripwire.tracing._stream_compat import CompatSpan
from tripwire.tracing._streamed import StreamedSpan


def is_streamed(span: Any) -> bool:
    """Whether `span` is a streamed span of its own (not a transaction span streaming)."""
    return isinstance(span, StreamedSpan) and not isinstance(span, CompatSpan)


def set_data(span: Any, data: dict[str, Any]) -> None:
    """`data` as the span's attributes (streamed) or data (transaction model)."""
    if is_streamed(span):
        span.set_attributes(data)
        return
    for key, value in data.items():
        span.set_data(key, value)


def finish(span: Any, error: Optional[BaseException]) -> None:
    """End `span`; failed (``internal_error`` / ``error``) when `error` is given."""
    try:
        if is_streamed(span):
            if error is None:
                span.end()
            else:
                span.__exit__(type(error), error, error.__traceback__)
            return
        if error is not None:
            span.set_status(SPANSTATUS.INTERNAL_ERROR)
        span.finish()
    except Exception:
        pass


__all__ = ["finish", "is_streamed", "set_data"]
