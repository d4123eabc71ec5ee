"""LiteLLM integration: a ``gen_ai.*`` span for each model call made through `litellm`.

As sentry_sdk 2.75's ``litellm`` integration (`LiteLLMIntegration(include_prompts=True)`),
through litellm's own callbacks (`litellm.input_callback`, `success_callback`,
`failure_callback`), so `completion`, `acompletion`, `embedding`, `aembedding` and
streams of every provider are covered:

- a span ``gen_ai.chat`` "chat MODEL" or ``gen_ai.embeddings`` "embeddings MODEL"
  (origin ``auto.ai.litellm``; MODEL without its provider prefix): a child of the
  current span when it belongs to a transaction, else a transaction of its own;
- its data: ``gen_ai.system`` (the provider litellm resolves for the model, else
  "unknown"), the operation, the request model and parameters (``stream`` as
  ``gen_ai.response.streaming``, max tokens, penalties, temperature, top_p), the
  response model and the token usage (input, output, total);
- the messages (chat, cut to the last one when gen_ai spans go out inside their
  transaction) or embedding inputs, and the answer's messages, only when
  `data_collection`'s ``gen_ai`` inputs / outputs allow it, or, without
  `data_collection`, with ``send_default_pii`` and ``include_prompts``;
- a stream's span ends when litellm reports the whole streamed answer (a stream the
  caller abandons is never reported, and its span never sent, as with sentry_sdk).

Differences, on purpose:

- the span is not made the scope's current span. litellm reports sync calls from a
  thread pool, so sentry_sdk ends its spans on another thread while the caller's
  scope still points at them (later calls then nest under finished spans, depending
  on timing); here every call's span is a child of what was current when it started;
- failures: litellm 1.110 hands a failure callback ``None`` where sentry_sdk expects
  the exception, so sentry_sdk 2.75 reports no error and ends the span without a
  status. Here the exception (from the callback's argument, else litellm's call
  details) is an event (mechanism ``litellm``, unhandled) and the span ends
  ``internal_error``, as its documentation describes.

The callbacks are added when the application imports `litellm` (and removed by
`tripwire.testing.reset()`); they do nothing when the active client lacks this
integration.
"""

from __future__ import annotations

import copy
from types import ModuleType
from typing import Any, Optional

from tripwire.ai.data_rules import DataRules
from tripwire.ai.usage import record_usage
from tripwire.ai.utils import (
    sdk_start_span_function,
    set_data_normalized,
    transform_openai_content_part,
    truncate_and_annotate_embedding_inputs,
    truncate_and_annotate_messages,
)
from tripwire.consts import OP, SPANDATA
from tripwire.integrations._common.llm import LLMIntegration, enable
from tripwire.integrations._common.unhandled import capture_unhandled
from tripwire.integrations._patch import on_undo
from tripwire.scope._current import get_client, get_current_scope, use_scope
from tripwire.tracing_utils import should_truncate_gen_ai_input

ORIGIN = "auto.ai.litellm"
# The call's span and scope ride on litellm's per-call details dict, which every
# callback of the call receives: they live and die with the call.
_KEY = "_tripwire_span"


class LiteLLMIntegration(LLMIntegration):
    """``gen_ai`` spans (and error events) for the model calls made through LiteLLM."""

    identifier = "litellm"
    origin = ORIGIN

    @staticmethod
    def setup_once() -> None:
        """Add the callbacks once `litellm` is imported.

        Raises:
            DidNotEnable: litellm is not installed, or too old.
        """
        enable(
            LiteLLMIntegration,
            "litellm",
            _install,
            package="litellm",
            missing="LiteLLM not installed",
            truncation=True,
        )


class _Lib:
    module: Any = None


def _install(module: ModuleType) -> None:
    _Lib.module = module
    lists = (
        ("input_callback", (_input_callback,)),
        ("success_callback", (_success_callback, _async_success_callback)),
        ("failure_callback", (_failure_callback, _async_failure_callback)),
    )
    for name, callbacks in lists:
        current = getattr(module, name, None)
        if not isinstance(current, list):
            current = []
            setattr(module, name, current)
        for callback in callbacks:
            if callback not in current:
                current.append(callback)

    def remove() -> None:
        # litellm moves async callbacks to its private lists: look in those too.
        for name in ("input_callback", "success_callback", "failure_callback"):
            for prefix in ("", "_async_"):
                found = getattr(module, prefix + name, None)
                if isinstance(found, list):
                    found[:] = [c for c in found if c not in _ALL]

    on_undo(remove)


def _messages_for_span(messages: list[Any]) -> list[Any]:
    # A copy: the caller's messages are litellm's request.
    messages = copy.deepcopy(messages)
    for message in messages:
        content = message.get("content") if isinstance(message, dict) else None
        if isinstance(content, (list, tuple)):
            parts = []
            for part in content:
                converted = transform_openai_content_part(part) if isinstance(part, dict) else None
                parts.append(part if converted is None else converted)
            message["content"] = parts
    return messages


_PARAMS = (
    ("model", SPANDATA.GEN_AI_REQUEST_MODEL),
    ("stream", SPANDATA.GEN_AI_RESPONSE_STREAMING),
    ("max_tokens", SPANDATA.GEN_AI_REQUEST_MAX_TOKENS),
    ("presence_penalty", SPANDATA.GEN_AI_REQUEST_PRESENCE_PENALTY),
    ("frequency_penalty", SPANDATA.GEN_AI_REQUEST_FREQUENCY_PENALTY),
    ("temperature", SPANDATA.GEN_AI_REQUEST_TEMPERATURE),
    ("top_p", SPANDATA.GEN_AI_REQUEST_TOP_P),
)


def _record_input(span: Any, kwargs: dict[str, Any], embeddings: bool, options: Any) -> None:
    truncate = should_truncate_gen_ai_input(options)
    scope = get_current_scope()
    if embeddings:
        given = kwargs.get("input")
        if given:
            listed = given if isinstance(given, list) else [given]
            data = (
                truncate_and_annotate_embedding_inputs(listed, span, scope) if truncate else listed
            )
            if data is not None:
                set_data_normalized(span, SPANDATA.GEN_AI_EMBEDDINGS_INPUT, data, unpack=False)
        return
    messages = kwargs.get("messages")
    if messages:
        converted = _messages_for_span(list(messages))
        data = truncate_and_annotate_messages(converted, span, scope) if truncate else converted
        if data is not None:
            set_data_normalized(span, SPANDATA.GEN_AI_REQUEST_MESSAGES, data, unpack=False)


def _input_callback(kwargs: dict[str, Any]) -> None:
    try:
        _start(kwargs)
    except Exception:  # instrumentation must not break the call
        pass


def _start(kwargs: dict[str, Any]) -> None:
    client = get_client()
    integration = client.get_integration(LiteLLMIntegration)
    if integration is None or _KEY in kwargs:
        return
    full_model = kwargs.get("model", "")
    try:
        model, provider, _, _ = _Lib.module.get_llm_provider(full_model)
    except Exception:
        model, provider = full_model, "unknown"
    embeddings = kwargs.get("call_type") in ("embedding", "aembedding")
    operation = "embeddings" if embeddings else "chat"
    op = OP.GEN_AI_EMBEDDINGS if embeddings else OP.GEN_AI_CHAT
    scope = get_current_scope()
    span = sdk_start_span_function()(op=op, name=f"{operation} {model}", origin=ORIGIN)
    kwargs[_KEY] = (span, scope)
    set_data_normalized(span, SPANDATA.GEN_AI_SYSTEM, provider)
    set_data_normalized(span, SPANDATA.GEN_AI_OPERATION_NAME, operation)
    if DataRules(client.options, integration.include_prompts).inputs:
        _record_input(span, kwargs, embeddings, client.options)
    for arg, key in _PARAMS:
        value = kwargs.get(arg)
        if value is not None:
            set_data_normalized(span, key, value)


def _dump(message: Any) -> Any:
    if hasattr(message, "model_dump"):
        return message.model_dump()
    out = {}
    for field in ("role", "content", "tool_calls"):
        if hasattr(message, field):
            out[field] = getattr(message, field)
    return out


def _record_answer(span: Any, answer: Any, outputs: bool) -> None:
    if hasattr(answer, "model"):
        set_data_normalized(span, SPANDATA.GEN_AI_RESPONSE_MODEL, answer.model)
    if outputs and hasattr(answer, "choices"):
        messages = [_dump(c.message) for c in answer.choices if hasattr(c, "message")]
        if messages:
            set_data_normalized(span, SPANDATA.GEN_AI_RESPONSE_TEXT, messages)
    usage = getattr(answer, "usage", None)
    if usage is not None:
        record_usage(span, usage)


def _success_callback(kwargs: dict[str, Any], answer: Any, start_time: Any, end_time: Any) -> None:
    held = kwargs.get(_KEY)
    if held is None:
        return
    # A stream reports each chunk; its span ends with the whole answer.
    last = (
        kwargs.get("stream") is not True
        or "complete_streaming_response" in kwargs
        or "async_complete_streaming_response" in kwargs
    )
    try:
        client = get_client()
        integration = client.get_integration(LiteLLMIntegration)
        if integration is not None and last:
            outputs = DataRules(client.options, integration.include_prompts).outputs
            _record_answer(held[0], answer, outputs)
    except Exception:  # instrumentation must not break the call
        pass
    if last:
        _end(kwargs)


async def _async_success_callback(
    kwargs: dict[str, Any], answer: Any, start_time: Any, end_time: Any
) -> None:
    _success_callback(kwargs, answer, start_time, end_time)


def _failure_callback(kwargs: dict[str, Any], error: Any, start_time: Any, end_time: Any) -> None:
    held = kwargs.get(_KEY)
    if held is None:
        return
    if not isinstance(error, BaseException):
        error = kwargs.get("exception")  # litellm passes None and keeps it here
    failed = isinstance(error, BaseException)
    try:
        client = get_client()
        if failed and client.get_integration(LiteLLMIntegration) is not None:
            # In the caller's scope, with the call's span: the event joins its trace.
            scope = held[1].fork()
            if getattr(held[0], "_streamed", False):
                scope.streamed_span = held[0]  # a segment names the event, as if entered
            else:
                scope.span = held[0]
            with use_scope(scope):
                capture_unhandled(client, (type(error), error, error.__traceback__), "litellm")
    except Exception:  # reporting must not break the call
        pass
    _end(kwargs, failed=failed)


async def _async_failure_callback(
    kwargs: dict[str, Any], error: Any, start_time: Any, end_time: Any
) -> None:
    _failure_callback(kwargs, error, start_time, end_time)


def _end(kwargs: dict[str, Any], failed: bool = False) -> None:
    held: Optional[tuple[Any, Any]] = kwargs.pop(_KEY, None)
    if held is None:  # the other (sync / async) callback of the pair ended it
        return
    span, scope = held
    try:
        if failed:
            span.set_status("internal_error")
        span.finish(scope)
    except Exception:  # instrumentation must not break the call
        pass


_ALL = (
    _input_callback,
    _success_callback,
    _async_success_callback,
    _failure_callback,
    _async_failure_callback,
)

__all__ = ["LiteLLMIntegration"]
