"""Anthropic integration: a ``gen_ai.chat`` span for each `messages` call of `anthropic`.

As sentry_sdk 2.75's ``anthropic`` integration (`AnthropicIntegration(include_prompts=True)`),
for `messages.create` (plain and ``stream=True``) and `messages.stream(...)` of the
sync and async clients:

- a span ``gen_ai.chat`` "chat MODEL" (origin ``auto.ai.anthropic``): a child of the
  current span when it belongs to a transaction, else a transaction of its own;
- its data: ``gen_ai.system`` "anthropic", operation ``chat``, whether streamed, the
  request model, max tokens, temperature, top_k, top_p, the available tools, the
  response model and id, the finish reason (``gen_ai.response.finish_reasons``, a
  list) and the token usage (input including cache reads and writes, cached, cache
  write, output, total);
- system instructions, messages (images and documents in the common content shape,
  tool results left out of user messages), the answer (``gen_ai.output.messages``)
  and tool calls only when `data_collection`'s ``gen_ai`` inputs / outputs allow it,
  or, without `data_collection`, with ``send_default_pii`` and ``include_prompts``;
  messages cut to the last one when gen_ai spans go out inside their transaction;
- streamed answers: the span ends after the last event, or when the stream is closed
  (a ``with`` block left early), with what the events told until then; events are
  passed on as they come;
- an exception from the library is an event (mechanism ``anthropic``, unhandled), the
  span ends ``internal_error``, and the exception reaches the caller unchanged;
- the scope's conversation id on every span (the span does that when it ends).

The classes are patched when the application imports `anthropic`; the patches fall
through when the active client lacks this integration.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterable
from types import ModuleType
from typing import Any, Callable, Optional

from tripwire.ai.streams import EndsOnce, awatch, watch
from tripwire.ai.utils import (
    normalize_message_roles,
    set_data_normalized,
    transform_anthropic_content_part,
    truncate_and_annotate_messages,
)
from tripwire.consts import OP, SPANDATA
from tripwire.integrations._common.llm import (
    LLMCall,
    LLMIntegration,
    call_wrapper,
    enable,
    start_llm_span,
)
from tripwire.integrations._patch import patch_once
from tripwire.scope._current import get_client, get_current_scope
from tripwire.tracing_utils import should_truncate_gen_ai_input
from tripwire.utils import safe_serialize

ORIGIN = "auto.ai.anthropic"
_MARK = "__tripwire_anthropic__"
_STATE = (
    "_tripwire_state"  # a stream's _Stream, in its __dict__ (the stream is not referenced back)
)
_KWARGS = "_tripwire_kwargs"  # what `messages.stream(...)` was called with, on its manager


class AnthropicIntegration(LLMIntegration):
    """``gen_ai.chat`` spans (and error events) for the Anthropic client's messages calls."""

    identifier = "anthropic"
    origin = ORIGIN

    @staticmethod
    def setup_once() -> None:
        """Patch the client's messages resources and streams once `anthropic` is imported.

        Raises:
            DidNotEnable: anthropic is not installed, or older than 0.16.
        """
        enable(
            AnthropicIntegration,
            "anthropic",
            _patch_anthropic,
            package="anthropic",
            missing="Anthropic not installed",
            truncation=True,
        )


class _Lib:
    not_given: tuple[type, ...] = ()


def _patch_anthropic(module: ModuleType) -> None:
    from anthropic.resources import AsyncMessages, Messages

    _Lib.not_given = tuple(
        t for t in (getattr(module, "NotGiven", None), getattr(module, "Omit", None)) if t
    )
    patch_once(
        Messages, "create", call_wrapper(_create_call, _created(module.Stream, watch)), _MARK
    )
    patch_once(
        AsyncMessages,
        "create",
        call_wrapper(_create_call, _created(module.AsyncStream, awatch), is_async=True),
        _MARK,
    )
    patch_once(module.Stream, "close", _CLOSE, _MARK)
    patch_once(module.AsyncStream, "close", _ASYNC_CLOSE, _MARK)
    try:  # the `messages.stream()` helpers (not in the oldest releases)
        from anthropic.lib.streaming import (
            AsyncMessageStream,
            AsyncMessageStreamManager,
            MessageStream,
            MessageStreamManager,
        )
    except ImportError:
        return
    patch_once(Messages, "stream", _wrap_stream, _MARK)
    patch_once(AsyncMessages, "stream", _wrap_stream, _MARK)
    patch_once(
        MessageStreamManager, "__enter__", call_wrapper(_stream_call, _entered(watch)), _MARK
    )
    patch_once(
        AsyncMessageStreamManager,
        "__aenter__",
        call_wrapper(_stream_call, _entered(awatch), is_async=True),
        _MARK,
    )
    if not issubclass(MessageStream, module.Stream):
        patch_once(MessageStream, "close", _CLOSE, _MARK)
    if not issubclass(AsyncMessageStream, module.AsyncStream):
        patch_once(AsyncMessageStream, "close", _ASYNC_CLOSE, _MARK)


def _given(value: Any) -> bool:
    return value is not None and not isinstance(value, _Lib.not_given)


# -- the request -----------------------------------------------------------------------


def _content_block(block: Any) -> Any:
    if not isinstance(block, dict):
        return block
    source = block.get("source")
    if (
        block.get("type") == "document"
        and isinstance(source, dict)
        and source.get("type") == "text"
    ):
        return {"type": "text", "text": source.get("data", "")}
    transformed = transform_anthropic_content_part(block)
    return block if transformed is None else transformed


def _messages_data(messages: Iterable[Any]) -> list[Any]:
    out: list[Any] = []
    for message in messages:
        content = message.get("content")
        if message.get("role") == "user" and isinstance(content, (list, tuple)):
            kept = [
                _content_block(item)
                for item in content
                if not (isinstance(item, dict) and item.get("type") == "tool_result")
            ]
            if kept:
                out.append({"role": message.get("role"), "content": kept})
            continue
        copied = dict(message)
        if isinstance(content, (list, tuple)):
            copied["content"] = [_content_block(item) for item in content]
        out.append(copied)
    return out


def _system_parts(system: Any) -> list[dict[str, Any]]:
    if isinstance(system, str):
        return [{"type": "text", "content": system}]
    return [
        {"type": "text", "content": part["text"]}
        for part in system
        if isinstance(part, dict) and "text" in part
    ]


_PARAMS = (
    ("max_tokens", SPANDATA.GEN_AI_REQUEST_MAX_TOKENS),
    ("model", SPANDATA.GEN_AI_REQUEST_MODEL),
    ("temperature", SPANDATA.GEN_AI_REQUEST_TEMPERATURE),
    ("top_k", SPANDATA.GEN_AI_REQUEST_TOP_K),
    ("top_p", SPANDATA.GEN_AI_REQUEST_TOP_P),
)


def _record_input(call: _Call, kwargs: dict[str, Any]) -> None:
    span, rules = call.span, call.rules
    span.set_data(SPANDATA.GEN_AI_SYSTEM, "anthropic")
    span.set_data(SPANDATA.GEN_AI_OPERATION_NAME, "chat")
    for arg, key in _PARAMS:
        value = kwargs.get(arg)
        if _given(value):
            span.set_data(key, value)
    tools = kwargs.get("tools")
    if rules.tools and _given(tools) and len(tools) > 0:  # type: ignore[arg-type]
        span.set_data(SPANDATA.GEN_AI_REQUEST_AVAILABLE_TOOLS, safe_serialize(tools))
    messages = kwargs.get("messages")
    if messages is None or len(messages) == 0 or not rules.inputs:
        return
    system = kwargs.get("system")
    if isinstance(system, Iterable):
        span.set_data(SPANDATA.GEN_AI_SYSTEM_INSTRUCTIONS, json.dumps(_system_parts(system)))
    data: Optional[list[Any]] = normalize_message_roles(_messages_data(messages))
    if should_truncate_gen_ai_input(call.client.options):
        data = truncate_and_annotate_messages(data, span, get_current_scope())
    if data is not None:
        set_data_normalized(span, SPANDATA.GEN_AI_REQUEST_MESSAGES, data, unpack=False)


# -- the answer ------------------------------------------------------------------------


class _Usage:
    __slots__ = ("cache_read", "cache_write", "input", "output")

    def __init__(self) -> None:
        self.input = 0
        self.output = 0
        self.cache_read: Optional[int] = 0
        self.cache_write: Optional[int] = 0


def _record_output(
    call: _Call,
    model: Any,
    usage: tuple[int, int, Optional[int], Optional[int]],
    blocks: list[dict[str, Any]],
    response_id: Any,
    finish_reason: Any,
) -> None:
    span = call.span
    if model is not None:
        span.set_data(SPANDATA.GEN_AI_RESPONSE_MODEL, model)
    if response_id is not None:
        span.set_data(SPANDATA.GEN_AI_RESPONSE_ID, response_id)
    if finish_reason is not None:
        span.set_data(SPANDATA.GEN_AI_RESPONSE_FINISH_REASONS, [finish_reason])
    if call.rules.outputs:
        parts: list[dict[str, Any]] = []
        tool_calls = []
        for block in blocks:
            kind = block["type"]
            if kind == "text":
                parts.append({"type": "text", "content": block["text"]})
            elif kind == "thinking":
                parts.append({"type": "reasoning", "content": block["thinking"]})
            elif kind == "tool_use":
                tool_calls.append(block)
        if tool_calls:
            set_data_normalized(span, SPANDATA.GEN_AI_RESPONSE_TOOL_CALLS, tool_calls, unpack=False)
        if parts:
            set_data_normalized(
                span,
                SPANDATA.GEN_AI_OUTPUT_MESSAGES,
                [{"role": "assistant", "parts": parts}],
                unpack=False,
            )
    inputs, outputs, cache_read, cache_write = usage
    span.set_data(SPANDATA.GEN_AI_USAGE_INPUT_TOKENS, inputs)
    if cache_read is not None:
        span.set_data(SPANDATA.GEN_AI_USAGE_INPUT_TOKENS_CACHED, cache_read)
    if cache_write is not None:
        span.set_data(SPANDATA.GEN_AI_USAGE_INPUT_TOKENS_CACHE_WRITE, cache_write)
    span.set_data(SPANDATA.GEN_AI_USAGE_OUTPUT_TOKENS, outputs)
    span.set_data(SPANDATA.GEN_AI_USAGE_TOTAL_TOKENS, inputs + outputs)


def _int(obj: Any, name: str) -> int:
    value = getattr(obj, name, None)
    return value if isinstance(value, int) else 0


def _message_usage(result: Any) -> tuple[int, int, Optional[int], Optional[int]]:
    usage = getattr(result, "usage", None)
    read = _int(usage, "cache_read_input_tokens")
    write = _int(usage, "cache_creation_input_tokens")
    return _int(usage, "input_tokens") + read + write, _int(usage, "output_tokens"), read, write


def _block_dict(block: Any) -> Optional[dict[str, Any]]:
    if hasattr(block, "to_dict"):
        found: dict[str, Any] = block.to_dict()
        return found
    if hasattr(block, "model_dump"):
        dumped: dict[str, Any] = block.model_dump()
        return dumped
    if hasattr(block, "text"):
        return {"type": "text", "text": block.text}
    return None


class _Call(LLMCall):
    """One messages call: the client, the integration, the span and its rules."""

    __slots__ = ()

    def responded(self, result: Any) -> None:
        if hasattr(result, "content"):
            blocks = [b for b in map(_block_dict, result.content) if b is not None]
            _record_output(
                self,
                getattr(result, "model", None),
                _message_usage(result),
                blocks,
                getattr(result, "id", None),
                getattr(result, "stop_reason", None),
            )
        else:
            self.span.set_data("unknown_response", True)
        self.span.__exit__(None, None, None)


class _Stream(EndsOnce):
    """What a stream's events tell, gathered as they pass; `finish` ends the span once."""

    __slots__ = ("blocks", "finish_reason", "model", "response_id", "usage")
    call: _Call

    def __init__(self, call: _Call) -> None:
        self.call = call
        self.done = False
        self.model: Any = None
        self.usage = _Usage()
        self.blocks: list[dict[str, Any]] = []
        self.response_id: Any = None
        self.finish_reason: Any = None

    def item(self, event: Any) -> None:
        kind = getattr(event, "type", None)
        if kind == "content_block_delta":
            block = self.blocks[event.index]
            delta = event.delta
            if delta.type == "thinking_delta":
                block["thinking"] += delta.thinking
            elif hasattr(delta, "text"):
                block["text"] += delta.text
            elif hasattr(delta, "partial_json"):
                block["text"] += delta.partial_json
        elif kind == "content_block_start":
            block_type = event.content_block.type
            if block_type == "thinking":
                self.blocks.append({"type": "thinking", "thinking": ""})
            elif block_type in ("text", "tool_use"):
                self.blocks.append({"type": "text", "text": ""})
            else:
                self.blocks.append({"type": block_type})
        elif kind == "message_start":
            message = event.message
            self.model = message.model or self.model
            self.response_id = message.id
            usage, incoming = self.usage, message.usage
            usage.output = incoming.output_tokens
            usage.input = incoming.input_tokens
            usage.cache_write = getattr(incoming, "cache_creation_input_tokens", None)
            usage.cache_read = getattr(incoming, "cache_read_input_tokens", None)
        elif kind == "message_delta":
            usage, incoming = self.usage, event.usage
            usage.output = incoming.output_tokens
            for name, attr in (
                ("input", "input_tokens"),
                ("cache_write", "cache_creation_input_tokens"),
                ("cache_read", "cache_read_input_tokens"),
            ):
                value = getattr(incoming, attr, None)
                if value is not None:
                    setattr(usage, name, value)
            if event.delta.stop_reason is not None:
                self.finish_reason = event.delta.stop_reason

    def ended(self, exc_info: Any) -> None:
        call = self.call
        try:
            usage = self.usage
            total = usage.input + (usage.cache_read or 0) + (usage.cache_write or 0)
            _record_output(
                call,
                self.model,
                (total, usage.output, usage.cache_read, usage.cache_write),
                self.blocks,
                self.response_id,
                self.finish_reason,
            )
        except Exception:  # instrumentation must not break the stream
            pass
        call.span.__exit__(*(exc_info or (None, None, None)))


# -- the patches -----------------------------------------------------------------------


def _begin(
    kwargs: dict[str, Any], name: str, streaming: Any, manager: bool = False
) -> Optional[_Call]:
    """The call's span, entered, with the request data; None when not instrumented."""
    client = get_client()
    integration = client.get_integration(AnthropicIntegration)
    if integration is None:
        return None
    call = _Call(client, integration)
    # A `stream()` manager's span says so at start, as sentry_sdk's (`ignore_spans` sees it).
    attributes = {SPANDATA.GEN_AI_RESPONSE_STREAMING: True} if manager else {}
    span = call.span = start_llm_span(OP.GEN_AI_CHAT, name, ORIGIN, attributes)
    span.__enter__()
    try:
        span.set_data(SPANDATA.GEN_AI_RESPONSE_STREAMING, streaming)
        _record_input(call, kwargs)
    except Exception:  # instrumentation must not break the call
        pass
    return call


def _iterable_messages(kwargs: dict[str, Any]) -> bool:
    try:
        iter(kwargs["messages"])
    except (KeyError, TypeError):
        return False
    return True


def _watch(call: _Call, stream: Any, wrap: Callable[[Any, _Stream], Any]) -> None:
    state = _Stream(call)
    stream.__dict__[_STATE] = state
    stream._iterator = wrap(stream._iterator, state)


def _create_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Optional[_Call]:
    if not _iterable_messages(kwargs):
        return None
    return _begin(kwargs, f"chat {kwargs.get('model', '')}".strip(), kwargs.get("stream", False))


def _created(stream_type: type, wrap: Callable[[Any, _Stream], Any]) -> Callable[[_Call, Any], Any]:
    def done(call: _Call, result: Any) -> Any:
        try:
            if isinstance(result, stream_type):
                _watch(call, result, wrap)
            else:
                call.responded(result)
        except Exception:  # instrumentation must not break the call
            pass
        return result

    return done


def _wrap_stream(original: Callable[..., Any]) -> Callable[..., Any]:
    # `messages.stream(...)` only builds a manager: the call happens at `with`.
    @functools.wraps(original)
    def stream(*args: Any, **kwargs: Any) -> Any:
        manager = original(*args, **kwargs)
        try:
            manager.__dict__[_KWARGS] = kwargs
        except Exception:  # a manager without a __dict__: not instrumented
            pass
        return manager

    return stream


def _stream_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Optional[_Call]:
    found = args[0].__dict__.get(_KWARGS)  # the manager's
    if found is None or found.get("messages") is None or not _iterable_messages(found):
        return None
    model = found.get("model")
    name = "chat" if model is None else f"chat {model}".strip()
    return _begin(found, name, True, manager=True)


def _entered(wrap: Callable[[Any, _Stream], Any]) -> Callable[[_Call, Any], Any]:
    def done(call: _Call, stream: Any) -> Any:
        try:
            _watch(call, stream, wrap)
        except Exception:  # instrumentation must not break the call
            pass
        return stream

    return done


def _closing(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Optional[_Stream]:
    state: Optional[_Stream] = args[0].__dict__.get(_STATE)
    return state


def _closed(state: _Stream, result: Any) -> Any:
    state.finish()
    return result


# A stream closed before its end (a `with` block left early) ends its span.
_CLOSE = call_wrapper(_closing, _closed, catch=BaseException)
_ASYNC_CLOSE = call_wrapper(_closing, _closed, is_async=True, catch=BaseException)


__all__ = ["AnthropicIntegration"]
