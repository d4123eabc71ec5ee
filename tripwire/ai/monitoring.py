"""AI pipeline spans and token usage (as `sentry_sdk.ai.monitoring` 2.75, deprecated there).

`ai_track(description)` wraps a function (sync or async) in a span: ``ai.pipeline``
for the outermost tracked call, whose description becomes the pipeline name for the
calls inside it (``ai.run`` spans carrying ``gen_ai.pipeline.name``); an exception
leaving the pipeline is captured (mechanism ``ai_monitoring``, unhandled) and
re-raised. `record_token_usage` sets the ``gen_ai.usage.*`` data of a span. Under span
streaming the span is a `traces.start_span` span, as sentry_sdk's streaming branch makes.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import sys
import warnings
from typing import Any, Callable, Optional, TypeVar

from tripwire.ai.utils import _set_span_data_attribute
from tripwire.capture import capture_event
from tripwire.consts import SPANDATA
from tripwire.scope._current import get_client, get_current_scope
from tripwire.tracing._api import sdk_start_span
from tripwire.tracing._streamed import start_span as start_streamed_span
from tripwire.tracing_utils import has_span_streaming_enabled

F = TypeVar("F", bound=Callable[..., Any])

_ai_pipeline_name: contextvars.ContextVar[Optional[str]] = contextvars.ContextVar(
    "ai_pipeline_name", default=None
)


def set_ai_pipeline_name(name: Optional[str]) -> None:
    """Set the AI pipeline name of the current context."""
    _ai_pipeline_name.set(name)


def get_ai_pipeline_name() -> Optional[str]:
    """The AI pipeline name of the current context, if any."""
    return _ai_pipeline_name.get()


def _capture_pipeline_error(exc: BaseException) -> None:
    try:
        event, hint = get_client()._event_from_exception(
            (type(exc), exc, exc.__traceback__),
            mechanism={"type": "ai_monitoring", "handled": False},
        )
        capture_event(get_current_scope(), event, hint, None, {}, built_by_sdk=True)
    except Exception:  # reporting must never mask the application's error
        pass


class _Tracked:
    """What one tracked call does around the function: span, pipeline name, errors."""

    __slots__ = ("description", "span_kwargs")

    def __init__(self, description: str, span_kwargs: dict[str, Any]) -> None:
        self.description = description
        self.span_kwargs = span_kwargs

    def enter(self, kwargs: dict[str, Any]) -> tuple[Any, Optional[str], Any]:
        current = _ai_pipeline_name.get()
        # As sentry_sdk: the first call's `op` is used up (popped) by it.
        op = self.span_kwargs.pop("op", "ai.run" if current else "ai.pipeline")
        if has_span_streaming_enabled(get_client().options):
            # As sentry_sdk's streaming branch: a streamed span (a segment when nothing
            # is active) with only the op; tags and data become attributes, untouched.
            span: Any = start_streamed_span(name=self.description, attributes={"sentry.op": op})
            set_tag = set_data = span.set_attribute
        else:
            span = sdk_start_span(name=self.description, op=op, **self.span_kwargs)
            set_tag, set_data = span.set_tag, span.set_data
        span.__enter__()
        for key, value in kwargs.pop("sentry_tags", {}).items():
            set_tag(key, value)
        for key, value in kwargs.pop("sentry_data", {}).items():
            set_data(key, value)
        token = None
        if current:
            set_data(SPANDATA.GEN_AI_PIPELINE_NAME, current)
        else:
            token = _ai_pipeline_name.set(self.description)
        return span, current, token

    @staticmethod
    def leave(span: Any, current: Optional[str], token: Any, exc: Optional[BaseException]) -> None:
        if not current:
            if isinstance(exc, Exception):
                _capture_pipeline_error(exc)
            _ai_pipeline_name.set(None)
        if exc is None:
            span.__exit__(None, None, None)
        else:
            span.__exit__(type(exc), exc, exc.__traceback__)


def ai_track(description: str, **span_kwargs: Any) -> Callable[[F], F]:
    """Decorate a function to run in an AI pipeline span (deprecated, as in sentry_sdk)."""
    warnings.warn(
        "sentry_sdk.ai.ai_track is deprecated and will be removed in version 3.0 of "
        "sentry-sdk. Use the manual span API instead, e.g. sentry_sdk.start_span().",
        DeprecationWarning,
        stacklevel=2,
    )
    tracked = _Tracked(description, span_kwargs)

    def decorator(f: F) -> F:
        if inspect.iscoroutinefunction(f):

            @functools.wraps(f)
            async def async_wrapped(*args: Any, **kwargs: Any) -> Any:
                span, current, token = tracked.enter(kwargs)
                try:
                    result = await f(*args, **kwargs)
                except BaseException:
                    tracked.leave(span, current, token, sys.exc_info()[1])
                    raise
                tracked.leave(span, current, token, None)
                return result

            return async_wrapped  # type: ignore[return-value]

        @functools.wraps(f)
        def sync_wrapped(*args: Any, **kwargs: Any) -> Any:
            span, current, token = tracked.enter(kwargs)
            try:
                result = f(*args, **kwargs)
            except BaseException:
                tracked.leave(span, current, token, sys.exc_info()[1])
                raise
            tracked.leave(span, current, token, None)
            return result

        return sync_wrapped  # type: ignore[return-value]

    return decorator


def record_token_usage(
    span: Any,
    input_tokens: Optional[int] = None,
    input_tokens_cached: Optional[int] = None,
    input_tokens_cache_write: Optional[int] = None,
    output_tokens: Optional[int] = None,
    output_tokens_reasoning: Optional[int] = None,
    total_tokens: Optional[int] = None,
) -> None:
    """Set the token usage of `span` (the total is input + output unless given); deprecated."""
    warnings.warn(
        "record_token_usage() is deprecated and will be removed in version 3.0 of "
        "sentry-sdk. Use the manual span API instead, e.g. span.set_attribute() "
        "(in streaming mode) or span.set_data().",
        DeprecationWarning,
        stacklevel=2,
    )
    pipeline = _ai_pipeline_name.get()
    if pipeline:
        _set_span_data_attribute(span, SPANDATA.GEN_AI_PIPELINE_NAME, pipeline)
    if total_tokens is None and input_tokens is not None and output_tokens is not None:
        total_tokens = input_tokens + output_tokens
    for key, value in (
        (SPANDATA.GEN_AI_USAGE_INPUT_TOKENS, input_tokens),
        (SPANDATA.GEN_AI_USAGE_INPUT_TOKENS_CACHED, input_tokens_cached),
        (SPANDATA.GEN_AI_USAGE_INPUT_TOKENS_CACHE_WRITE, input_tokens_cache_write),
        (SPANDATA.GEN_AI_USAGE_OUTPUT_TOKENS, output_tokens),
        (SPANDATA.GEN_AI_USAGE_OUTPUT_TOKENS_REASONING, output_tokens_reasoning),
        (SPANDATA.GEN_AI_USAGE_TOTAL_TOKENS, total_tokens),
    ):
        if value is not None:
            _set_span_data_attribute(span, key, value)


__all__ = [
    "ai_track",
    "get_ai_pipeline_name",
    "record_token_usage",
    "set_ai_pipeline_name",
]
