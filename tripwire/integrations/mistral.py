"""Mistral integration: a ``gen_ai.*`` span for each model call of the `mistralai` client.

As sentry_sdk 2.75's ``mistral`` integration (`MistralIntegration()`, no options), for
`client.chat.complete` and `complete_async`:

- a span ``gen_ai.chat`` "chat MODEL" (origin ``auto.ai.mistral``), the current span
  while the call runs: a child of the current span when it belongs to a transaction,
  else a transaction of its own;
- its data: ``gen_ai.provider.name`` "mistral", ``gen_ai.operation.name`` "chat", the
  request model and parameters (max tokens, penalties, temperature, top_p, reasoning
  effort), ``gen_ai.response.streaming`` false and the token usage (input, output,
  total);
- system instructions, input messages and output messages (their text parts, as JSON
  in the ``parts`` shape) only when `data_collection`'s ``gen_ai`` inputs / outputs
  allow it, or, without `data_collection`, with ``send_default_pii``;
- the span ends ``internal_error`` when the call fails, and the exception reaches the
  caller unchanged.

More than sentry_sdk 2.75, which leaves these calls alone:

- `chat.stream` / `stream_async` get the same span with ``gen_ai.response.streaming``
  true, ended after the last chunk or when the stream is closed (chunks passed on as
  they come; only their text kept, and only when it may be sent);
- `embeddings.create` / `create_async` get a ``gen_ai.embeddings`` span
  "embeddings MODEL" with the input (when allowed) and the token usage;
- an exception from the library is also an event (mechanism ``mistral``, unhandled),
  as the other AI integrations report theirs.

The classes are patched when the application imports `mistralai`'s modules; the patches
fall through when the active client lacks this integration.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from types import ModuleType
from typing import Any, Callable, Optional

from tripwire.ai.streams import EndsOnce, awatch, watch
from tripwire.ai.utils import set_data_normalized
from tripwire.consts import OP, SPANDATA
from tripwire.integrations import Integration
from tripwire.integrations._common._hooks import when_imported
from tripwire.integrations._common.llm import LLMCall, call_wrapper, enable, start_llm_span, started
from tripwire.integrations._patch import patch_once
from tripwire.scope._current import get_client

ORIGIN = "auto.ai.mistral"
_MARK = "__tripwire_mistral__"


class MistralIntegration(Integration):
    """``gen_ai`` spans for the Mistral client's chat completions (and embeddings)."""

    identifier = "mistral"
    origin = ORIGIN
    include_prompts = True  # no such option: prompts go with `send_default_pii` alone

    @staticmethod
    def setup_once() -> None:
        """Patch `Chat` and `Embeddings` once `mistralai` imports them.

        Raises:
            DidNotEnable: mistralai is not installed, or too old.
        """
        enable(
            MistralIntegration,
            "mistralai.client.chat",
            _patch_chat,
            package="mistralai",
            missing="mistralai not installed",
        )
        when_imported("mistralai.client.embeddings", _patch_embeddings)


class _Lib:
    """The mistralai model classes the wrappers test against, bound at the patch."""

    user: Any = type(None)
    assistant: Any = type(None)
    system: Any = type(None)
    text: Any = type(None)
    response: Any = type(None)


def _patch_chat(module: ModuleType) -> None:
    from mistralai.client import models

    _Lib.user, _Lib.assistant = models.UserMessage, models.AssistantMessage
    _Lib.system, _Lib.text = models.SystemMessage, models.TextChunk
    _Lib.response = models.ChatCompletionResponse
    chat = module.Chat
    patch_once(chat, "complete", _wrapper(_CHAT, False), _MARK)
    patch_once(chat, "complete_async", _wrapper(_CHAT, True), _MARK)
    patch_once(chat, "stream", _wrapper(_STREAM, False), _MARK)
    patch_once(chat, "stream_async", _wrapper(_STREAM, True), _MARK)


def _patch_embeddings(module: ModuleType) -> None:
    embeddings = module.Embeddings
    patch_once(embeddings, "create", _wrapper(_EMBED, False), _MARK)
    patch_once(embeddings, "create_async", _wrapper(_EMBED, True), _MARK)


# -- messages --------------------------------------------------------------------------


def _texts(content: Any) -> Optional[list[str]]:
    """The text parts of a message's content; None when it has no text shape."""
    if isinstance(content, str):
        return [content]
    if not isinstance(content, list):
        return None
    out = []
    for part in content:
        if isinstance(part, _Lib.text):
            out.append(part.text)
        elif isinstance(part, dict) and part.get("type") == "text" and "text" in part:
            out.append(part["text"])
    return out


def _parts(texts: list[str]) -> list[dict[str, Any]]:
    return [{"type": "text", "content": text} for text in texts]


def _role_and_content(message: Any) -> tuple[Optional[str], Any]:
    if isinstance(message, dict):
        return message.get("role"), message.get("content")
    if isinstance(message, _Lib.system):
        return "system", message.content
    if isinstance(message, _Lib.user):
        return "user", message.content
    if isinstance(message, _Lib.assistant):
        return "assistant", message.content
    return None, None


def _input_messages(messages: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """(system instruction parts, user and assistant messages) in the ``parts`` shape."""
    system: list[Any] = []
    others: list[Any] = []
    for message in messages:
        role, content = _role_and_content(message)
        texts = _texts(content)
        if texts is None:
            continue
        if role == "system":
            system.extend(_parts(texts))
        elif role in ("user", "assistant"):
            others.append({"role": role, "parts": _parts(texts)})
    return system, others


def _output_message(message: Any) -> Optional[dict[str, Any]]:
    content = message.get("content") if isinstance(message, dict) else message.content
    texts = _texts(content)
    if texts is None:
        return None
    return {"role": "assistant", "parts": _parts(texts)}


# -- the calls -------------------------------------------------------------------------

_PARAMS = (
    ("max_tokens", SPANDATA.GEN_AI_REQUEST_MAX_TOKENS),
    ("frequency_penalty", SPANDATA.GEN_AI_REQUEST_FREQUENCY_PENALTY),
    ("presence_penalty", SPANDATA.GEN_AI_REQUEST_PRESENCE_PENALTY),
    ("temperature", SPANDATA.GEN_AI_REQUEST_TEMPERATURE),
    ("top_p", SPANDATA.GEN_AI_REQUEST_TOP_P),
    ("reasoning_effort", SPANDATA.GEN_AI_REQUEST_REASONING_LEVEL),
)


class _Kind:
    """One kind of call: chat, streamed chat or embeddings."""

    __slots__ = ("op", "operation", "stream")

    def __init__(self, op: str, operation: str, stream: bool) -> None:
        self.op = op
        self.operation = operation
        self.stream = stream


_CHAT = _Kind(OP.GEN_AI_CHAT, "chat", False)
_STREAM = _Kind(OP.GEN_AI_CHAT, "chat", True)
_EMBED = _Kind(OP.GEN_AI_EMBEDDINGS, "embeddings", False)


class _Call(LLMCall):
    """One model call: its span and what may be recorded, from request to answer."""

    __slots__ = ("kind",)
    kind: _Kind

    def begin(self, kwargs: dict[str, Any]) -> None:
        kind = self.kind
        model = kwargs.get("model")
        name = kind.operation if model is None else f"{kind.operation} {model}"
        attributes: dict[str, Any] = {
            SPANDATA.GEN_AI_PROVIDER_NAME: "mistral",
            SPANDATA.GEN_AI_OPERATION_NAME: kind.operation,
        }
        # Given at start too, as sentry_sdk's: `traces_sampler` and `ignore_spans` see them.
        span = start_llm_span(kind.op, name, ORIGIN, attributes)
        span.__enter__()
        self.span = span
        for key, value in attributes.items():
            span.set_data(key, value)
        if model is not None:
            span.set_data(SPANDATA.GEN_AI_REQUEST_MODEL, model)
        inputs = self.rules.inputs
        if kind is _EMBED:
            texts = kwargs.get("inputs")
            if inputs and texts:
                listed = [texts] if isinstance(texts, str) else list(texts)
                set_data_normalized(span, SPANDATA.GEN_AI_EMBEDDINGS_INPUT, listed, unpack=False)
            return
        span.set_data(SPANDATA.GEN_AI_RESPONSE_STREAMING, kind.stream)
        messages = kwargs.get("messages")
        if inputs and isinstance(messages, Sequence):
            system, others = _input_messages(messages)
            if system:
                span.set_data(SPANDATA.GEN_AI_SYSTEM_INSTRUCTIONS, json.dumps(system))
            span.set_data(SPANDATA.GEN_AI_INPUT_MESSAGES, json.dumps(others))
        for arg, key in _PARAMS:
            value = kwargs.get(arg)
            if value is not None:
                span.set_data(key, value)

    def usage(self, usage: Any) -> None:
        if usage is None:
            return
        for attr, key in (
            ("prompt_tokens", SPANDATA.GEN_AI_USAGE_INPUT_TOKENS),
            ("completion_tokens", SPANDATA.GEN_AI_USAGE_OUTPUT_TOKENS),
            ("total_tokens", SPANDATA.GEN_AI_USAGE_TOTAL_TOKENS),
        ):
            value = getattr(usage, attr, None)
            if value is not None and not (self.kind is _EMBED and attr == "completion_tokens"):
                self.span.set_data(key, value)

    def responded(self, response: Any) -> None:
        """Record a whole answer (chat or embeddings)."""
        if self.kind is _EMBED:
            self.usage(getattr(response, "usage", None))
            return
        if not isinstance(response, _Lib.response):
            return
        self.usage(response.usage)
        if self.rules.outputs:
            out = []
            for choice in response.choices:
                if choice.message is not None:
                    message = _output_message(choice.message)
                    if message is not None:
                        out.append(message)
            self.span.set_data(SPANDATA.GEN_AI_OUTPUT_MESSAGES, json.dumps(out))


class _StreamState(EndsOnce):
    """What a stream's chunks tell, gathered as they pass; `finish` ends the span once."""

    __slots__ = ("texts", "usage")
    call: _Call

    def __init__(self, call: _Call) -> None:
        self.call = call
        self.done = False
        self.texts: list[str] = []
        self.usage: Any = None

    def item(self, event: Any) -> None:
        data = getattr(event, "data", None)
        if data is None:
            return
        if getattr(data, "usage", None) is not None:
            self.usage = data.usage
        if self.call.rules.outputs:
            for choice in data.choices or ():
                if choice.index == 0 and isinstance(choice.delta.content, str):
                    self.texts.append(choice.delta.content)

    def ended(self, exc_info: Any) -> None:
        call = self.call
        try:
            call.usage(self.usage)
            if call.rules.outputs and self.texts:
                message = {"role": "assistant", "parts": _parts(["".join(self.texts)])}
                call.span.set_data(SPANDATA.GEN_AI_OUTPUT_MESSAGES, json.dumps([message]))
        finally:
            call.span.__exit__(*(exc_info or (None, None, None)))


def _end_on_close(stream: Any, state: _StreamState, is_async: bool) -> None:
    """A stream closed before its end (``with`` block left, `close()`) ends its span
    with what came so far: its generator is not closed, so it would never know."""
    close = stream.close

    def finish() -> None:
        try:
            state.finish()
        except Exception:  # instrumentation must not break the close
            pass

    if is_async:

        async def aclose() -> Any:
            finish()
            return await close()

        stream.close = aclose
    else:

        def sclose() -> Any:
            finish()
            return close()

        stream.close = sclose


def _begin(kind: _Kind, kwargs: dict[str, Any]) -> Optional[_Call]:
    client = get_client()
    integration = client.get_integration(MistralIntegration)
    if integration is None:
        return None
    if kind is _CHAT and kwargs.get("stream"):
        return None  # `complete(stream=True)` is left alone, as sentry_sdk does
    call = _Call(client, integration)
    call.kind = kind
    return started(call, kwargs)


def _wrapper(kind: _Kind, is_async: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    chunks = awatch if is_async else watch

    def start(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Optional[_Call]:
        return _begin(kind, kwargs)

    def done(call: _Call, response: Any) -> Any:
        try:
            if kind.stream and hasattr(response, "generator"):
                state = _StreamState(call)
                response.generator = chunks(response.generator, state)
                _end_on_close(response, state, is_async)
                return response
            call.responded(response)
        except Exception:  # instrumentation must not break the call
            pass
        try:
            call.end()
        except Exception:
            pass
        return response

    return call_wrapper(start, done, is_async)


__all__ = ["MistralIntegration"]
