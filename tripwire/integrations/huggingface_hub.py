"""Hugging Face Hub integration: ``gen_ai.*`` spans for `InferenceClient`'s text tasks.

As sentry_sdk 2.75's ``huggingface_hub`` integration (`HuggingfaceHubIntegration(
include_prompts=True)`), for `InferenceClient.chat_completion` and `text_generation`
(the sync client, as sentry_sdk):

- a span ``gen_ai.chat`` "chat MODEL" or ``gen_ai.text_completion`` "text_completion
  MODEL" (origin ``auto.ai.huggingface_hub``; MODEL is the client's model or base URL,
  else the call's ``model``): a child of the current span when it belongs to a
  transaction, else a transaction of its own;
- its data: the operation, the request model, the parameters (max tokens,
  temperature, top_p, top_k, penalties), whether streamed, the tools, the response
  model, the finish reasons and the token usage (prompt, completion and total; for
  text generation the generated tokens, as total);
- the prompt or messages (``gen_ai.request.messages``), the answer's text and its
  tool calls only when `data_collection`'s ``gen_ai`` inputs / outputs allow it, or,
  without it, with ``send_default_pii`` and ``include_prompts``;
- streams: chunks are passed on as they come; the span ends after the last one;
- an exception from the library is an event (mechanism ``huggingface_hub``,
  unhandled), the span ends ``internal_error``, and the exception reaches the caller.

Difference, on purpose: a stream closed before its end ends its span with what came
so far (sentry_sdk leaves it open, so it is never sent).

`InferenceClient` is patched when the application imports it; the patches fall
through when the active client lacks this integration.
"""

from __future__ import annotations

import inspect
from types import ModuleType
from typing import Any, Callable, Optional

from tripwire.ai.streams import StreamWatcher, watch
from tripwire.ai.usage import record_usage
from tripwire.ai.utils import sdk_start_span_function, set_data_normalized
from tripwire.consts import OP, SPANDATA
from tripwire.integrations._common.llm import LLMCall, LLMIntegration, call_wrapper, enable
from tripwire.integrations._patch import patch_once
from tripwire.scope._current import get_client

ORIGIN = "auto.ai.huggingface_hub"
_MARK = "__tripwire_huggingface_hub__"

# Call arguments recorded as they are, by span data key.
_PARAMS = (
    ("frequency_penalty", SPANDATA.GEN_AI_REQUEST_FREQUENCY_PENALTY),
    ("max_tokens", SPANDATA.GEN_AI_REQUEST_MAX_TOKENS),
    ("presence_penalty", SPANDATA.GEN_AI_REQUEST_PRESENCE_PENALTY),
    ("temperature", SPANDATA.GEN_AI_REQUEST_TEMPERATURE),
    ("top_p", SPANDATA.GEN_AI_REQUEST_TOP_P),
    ("top_k", SPANDATA.GEN_AI_REQUEST_TOP_K),
    ("stream", SPANDATA.GEN_AI_RESPONSE_STREAMING),
)
_SCALARS = (int, float, bool, str)


class HuggingfaceHubIntegration(LLMIntegration):
    """``gen_ai`` spans (and error events) for the Inference client's text tasks."""

    identifier = "huggingface_hub"
    origin = ORIGIN

    @staticmethod
    def setup_once() -> None:
        """Patch `InferenceClient` once `huggingface_hub.inference._client` is imported.

        Raises:
            DidNotEnable: huggingface_hub is not installed, or older than 0.24.7.
        """
        enable(
            HuggingfaceHubIntegration,
            "huggingface_hub.inference._client",
            _patch_client,
            package="huggingface_hub",
            missing="Huggingface not installed",
        )


def _patch_client(module: ModuleType) -> None:
    client = module.InferenceClient
    text_generation = call_wrapper(_task_call(OP.GEN_AI_TEXT_COMPLETION), _done)
    patch_once(client, "text_generation", text_generation, _MARK)
    patch_once(client, "chat_completion", call_wrapper(_task_call(OP.GEN_AI_CHAT), _done), _MARK)


def _set(span: Any, key: str, value: Any) -> None:
    if isinstance(value, _SCALARS):
        span.set_data(key, value)
    else:
        set_data_normalized(span, key, value, unpack=False)


class _Call(LLMCall):
    """One task call: the client, the span, what may be sent, whether chunks have details."""

    __slots__ = ("details",)
    details: bool

    def begin(self, op: str, model: str, prompt: Any, kwargs: dict[str, Any]) -> None:
        operation = op.rsplit(".", 1)[-1]
        span = sdk_start_span_function()(op=op, name=f"{operation} {model}", origin=ORIGIN)
        span.__enter__()
        self.span = span
        try:
            span.set_data(SPANDATA.GEN_AI_OPERATION_NAME, operation)
            if model:
                span.set_data(SPANDATA.GEN_AI_REQUEST_MODEL, model)
            if self.rules.inputs:
                set_data_normalized(span, SPANDATA.GEN_AI_REQUEST_MESSAGES, prompt, unpack=False)
            for argument, key in _PARAMS:
                value = kwargs.get(argument)
                if value is not None:
                    _set(span, key, value)
            tools = kwargs.get("tools")
            if tools is not None and self.rules.tools:
                _set(span, SPANDATA.GEN_AI_REQUEST_AVAILABLE_TOOLS, tools)
        except Exception:  # instrumentation must not break the call
            pass

    def answered(
        self,
        model: Any,
        finish_reason: Any,
        text: list[str],
        tool_calls: Any,
        usage: Any,
        generated_tokens: int,
    ) -> None:
        """The answer's data on the span (the span stays open)."""
        span = self.span
        if model is not None:
            span.set_data(SPANDATA.GEN_AI_RESPONSE_MODEL, model)
        if finish_reason is not None:
            set_data_normalized(span, SPANDATA.GEN_AI_RESPONSE_FINISH_REASONS, finish_reason)
        if self.rules.outputs and tool_calls:
            set_data_normalized(span, SPANDATA.GEN_AI_RESPONSE_TOOL_CALLS, tool_calls, unpack=False)
        joined = "".join(text)
        if self.rules.outputs and joined:
            set_data_normalized(span, SPANDATA.GEN_AI_RESPONSE_TEXT, joined)
        if usage is not None:
            record_usage(span, usage)
        elif generated_tokens > 0:
            span.set_data(SPANDATA.GEN_AI_USAGE_TOTAL_TOKENS, generated_tokens)


def _prompt(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if "prompt" in kwargs:
        return kwargs["prompt"]
    if "messages" in kwargs:
        return kwargs["messages"]
    if len(args) >= 2 and isinstance(args[1], (str, list)):
        return args[1]
    return None


def _result(call: _Call, result: Any) -> None:
    """The data of a whole answer (a string, a text generation or a chat completion)."""
    text: list[str] = []
    if isinstance(result, str):
        text.append(result)
    if getattr(result, "generated_text", None) is not None:
        text.append(result.generated_text)
    details = getattr(result, "details", None)
    finish_reason = getattr(details, "finish_reason", None)
    generated = getattr(details, "generated_tokens", None) or 0
    tool_calls = None
    for choice in getattr(result, "choices", None) or ():
        if hasattr(choice, "finish_reason"):
            finish_reason = choice.finish_reason
        message: Any = getattr(choice, "message", None)
        if hasattr(message, "tool_calls"):
            tool_calls = message.tool_calls
        if getattr(message, "content", None) is not None:
            text.append(message.content)
    call.answered(
        getattr(result, "model", None),
        finish_reason,
        text,
        tool_calls,
        getattr(result, "usage", None),
        generated,
    )


class _Chunks(StreamWatcher):
    """What a chat stream's chunks told so far; its end ends the span."""

    __slots__ = ("call", "finish_reason", "generated", "model", "text", "tool_calls", "usage")

    def __init__(self, call: _Call) -> None:
        self.call = call
        self.model: Any = None
        self.usage: Any = None
        self.finish_reason: Any = None
        self.tool_calls: Any = None
        self.text: list[str] = []
        self.generated = 0

    def item(self, chunk: Any) -> None:
        if getattr(chunk, "model", None) is not None:
            self.model = chunk.model
        if getattr(chunk, "usage", None) is not None:
            self.usage = chunk.usage
        if isinstance(chunk, str):
            self.text.append(chunk)
        for choice in getattr(chunk, "choices", None) or ():
            delta: Any = getattr(choice, "delta", None)
            if getattr(delta, "content", None) is not None:
                self.text.append(delta.content)
            if getattr(choice, "finish_reason", None) is not None:
                self.finish_reason = choice.finish_reason
            if getattr(delta, "tool_calls", None) is not None:
                self.tool_calls = delta.tool_calls

    def closed(self) -> None:
        self.call.end()  # the caller stopped early: the answer is not recorded

    def finish(self, exc_info: Any = None) -> None:
        call = self.call
        if exc_info is not None:
            call.end(exc_info)
            return
        try:
            if call.details:  # text generation: no model, no usage, no tool calls
                call.answered(None, self.finish_reason, self.text, None, None, self.generated)
            else:
                call.answered(
                    self.model, self.finish_reason, self.text, self.tool_calls, self.usage, 0
                )
        except Exception:  # instrumentation must not break the stream
            pass
        call.end()


class _GeneratedChunks(_Chunks):
    """What a text generation stream's chunks (with details) told so far."""

    __slots__ = ()

    def item(self, chunk: Any) -> None:
        token: Any = getattr(chunk, "token", None)
        if getattr(token, "text", None) is not None:
            self.text.append(token.text)
        details: Any = getattr(chunk, "details", None)
        if hasattr(details, "finish_reason"):
            self.finish_reason = details.finish_reason
        if getattr(details, "generated_tokens", None) is not None:
            self.generated = details.generated_tokens


def _task_call(op: str) -> Callable[[tuple[Any, ...], dict[str, Any]], Optional[_Call]]:
    def start(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Optional[_Call]:
        client = get_client()
        integration = client.get_integration(HuggingfaceHubIntegration)
        prompt = _prompt(args, kwargs) if integration is not None else None
        if prompt is None:  # not instrumented, or a call the library will refuse
            return None
        model: Optional[str] = None
        try:
            model = getattr(args[0], "model", None)
        except IndexError:
            pass
        call = _Call(client, integration)
        call.details = bool(kwargs.get("details", False))
        call.begin(op, model or kwargs.get("model") or "", prompt, kwargs)
        return call

    return start


def _done(call: _Call, result: Any) -> Any:
    if inspect.isgenerator(result):
        return watch(result, (_GeneratedChunks if call.details else _Chunks)(call))
    try:
        _result(call, result)
    except Exception:  # instrumentation must not break the call
        pass
    call.end()
    return result


__all__ = ["HuggingfaceHubIntegration"]
