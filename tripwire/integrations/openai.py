"""OpenAI integration: a ``gen_ai.*`` span for each model call of the `openai` client.

As sentry_sdk 2.75's ``openai`` integration (`OpenAIIntegration(include_prompts=True,
tiktoken_encoding_name=None)`), for `chat.completions.create`, `embeddings.create`
and `responses.create` of the sync and async clients:

- a span ``gen_ai.chat`` "chat MODEL", ``gen_ai.embeddings`` "embeddings MODEL" or
  ``gen_ai.responses`` "responses MODEL" (origin ``auto.ai.openai``): a child of the
  current span when it belongs to a transaction, else a transaction of its own;
- its data: ``gen_ai.system`` "openai", the operation, the request model and
  parameters (max tokens, temperature, top_p, penalties, reasoning effort), whether
  the answer is streamed, the tool definitions, the response model and the token
  usage (input, cached input, output, reasoning, total; counted with tiktoken when
  the API gives none and ``tiktoken_encoding_name`` is set);
- prompts, system instructions, answers and tool calls only when `data_collection`'s
  ``gen_ai`` inputs / outputs allow it, or, without `data_collection`, with
  ``send_default_pii`` and ``include_prompts``; inputs cut to their last message
  (embeddings: to 20 KB) when gen_ai spans go out inside their transaction
  (``stream_gen_ai_spans=False``), as `tracing_utils.should_truncate_gen_ai_input`;
- streamed answers (``stream=True``): the span stays open while the caller iterates
  and ends after the last chunk, with the time to the first token; chunks are passed
  on as they come, nothing is buffered but the text when it may be sent;
- an exception from the library is an event (mechanism ``openai``, unhandled), the
  span ends ``internal_error``, and the exception reaches the caller unchanged;
- the scope's conversation id (`scope.set_conversation_id`) on every span (the span
  does that itself when it ends).

Differences, on purpose: a stream whose iteration fails ends its span
(``internal_error``), and one whose iterator is closed before its end ends it with
what came so far (sentry_sdk leaves both open, so they are never sent); the
`_meta` length of cut messages is added by an SDK event processor, not the client.

`openai`'s resource classes are patched when the application imports `openai`; the
patches fall through when the active client lacks this integration.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Iterable, Iterator
from types import ModuleType
from typing import Any, Callable, Optional

from tripwire.ai.streams import EndsOnce, awatch, watch
from tripwire.ai.utils import (
    normalize_message_roles,
    sdk_start_span_function,
    set_data_normalized,
    truncate_and_annotate_embedding_inputs,
    truncate_and_annotate_messages,
)
from tripwire.consts import OP, SPANDATA
from tripwire.integrations._common.llm import LLMCall, LLMIntegration, call_wrapper, enable, started
from tripwire.integrations._patch import patch_once
from tripwire.scope._current import get_client, get_current_scope
from tripwire.tracing._sampling import has_span_streaming_enabled
from tripwire.tracing_utils import should_truncate_gen_ai_input

ORIGIN = "auto.ai.openai"
_MARK = "__tripwire_openai__"


class OpenAIIntegration(LLMIntegration):
    """``gen_ai`` spans (and error events) for the OpenAI client's model calls."""

    identifier = "openai"
    origin = ORIGIN

    def __init__(
        self, include_prompts: bool = True, tiktoken_encoding_name: Optional[str] = None
    ) -> None:
        """Args:
        include_prompts: Send prompts and answers (with ``send_default_pii``).
        tiktoken_encoding_name: Count tokens with this tiktoken encoding when the API
            reports none (tiktoken must be installed).
        """
        super().__init__(include_prompts)
        self.tiktoken_encoding: Any = None
        if tiktoken_encoding_name is not None:
            import tiktoken  # type: ignore[import-not-found,unused-ignore]  # optional, only when asked for

            self.tiktoken_encoding = tiktoken.get_encoding(tiktoken_encoding_name)

    @staticmethod
    def setup_once() -> None:
        """Patch the client's resources once `openai` is imported.

        Raises:
            DidNotEnable: openai is not installed, or older than 1.0.
        """
        enable(
            OpenAIIntegration,
            "openai",
            _patch_openai,
            package="openai",
            missing="OpenAI not installed",
            truncation=True,
        )

    def count_tokens(self, s: str) -> int:
        """Tokens in `s` with the configured tiktoken encoding (0 without one)."""
        if self.tiktoken_encoding is None:
            return 0
        try:
            return len(self.tiktoken_encoding.encode_ordinary(s))
        except Exception:
            return 0


class _Lib:
    """The openai classes the wrappers test against, bound when openai is imported."""

    not_given: tuple[type, ...] = ()
    stream: type = type(None)
    async_stream: type = type(None)
    text_delta: Any = type(None)
    completed: Any = type(None)


def _patch_openai(module: ModuleType) -> None:
    from openai.resources import AsyncEmbeddings, Embeddings
    from openai.resources.chat.completions import AsyncCompletions, Completions

    _Lib.not_given = tuple(
        t for t in (getattr(module, "NotGiven", None), getattr(module, "Omit", None)) if t
    )
    _Lib.stream, _Lib.async_stream = module.Stream, module.AsyncStream
    patch_once(Completions, "create", _wrapper(_CHAT, False), _MARK)
    patch_once(AsyncCompletions, "create", _wrapper(_CHAT, True), _MARK)
    patch_once(Embeddings, "create", _wrapper(_EMBEDDINGS, False), _MARK)
    patch_once(AsyncEmbeddings, "create", _wrapper(_EMBEDDINGS, True), _MARK)
    try:  # the Responses API came with openai 1.66
        from openai.resources.responses import AsyncResponses, Responses
        from openai.types.responses import ResponseCompletedEvent, ResponseTextDeltaEvent
    except ImportError:
        return
    _Lib.text_delta, _Lib.completed = ResponseTextDeltaEvent, ResponseCompletedEvent
    patch_once(Responses, "create", _wrapper(_RESPONSES, False), _MARK)
    patch_once(AsyncResponses, "create", _wrapper(_RESPONSES, True), _MARK)


def _given(value: Any) -> bool:
    return value is not None and not isinstance(value, _Lib.not_given)


# -- the three operations --------------------------------------------------------------


class _Op:
    """One kind of call: its span op, name prefix and how its input is recorded."""

    __slots__ = ("input_key", "name", "op", "record_input", "streams")

    def __init__(
        self,
        op: str,
        name: str,
        input_key: str,
        record_input: Callable[[_Call, dict[str, Any]], None],
        streams: bool,
    ) -> None:
        self.op = op
        self.name = name
        self.input_key = input_key
        self.record_input = record_input
        self.streams = streams


def _system_texts(content: Any) -> list[str]:
    if isinstance(content, str):
        return [content]
    if not isinstance(content, Iterable):
        return []
    return [
        part["text"]
        for part in content
        if isinstance(part, dict) and part.get("type") == "text" and part.get("text") is not None
    ]


def _record_messages(call: _Call, key: str, messages: list[Any], embed: bool) -> None:
    span = call.span
    normalized = normalize_message_roles(messages)
    if call.truncate:
        scope = get_current_scope()
        if embed:
            data = truncate_and_annotate_embedding_inputs(normalized, span, scope)
        else:
            data = truncate_and_annotate_messages(normalized, span, scope)
    else:
        data = normalized
    if data is not None:
        set_data_normalized(span, key, data, unpack=False)


def _completions_tools(tools: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if not isinstance(tools, Iterable):
        return out
    for tool in tools:
        if not isinstance(tool, dict) or tool.get("type") not in ("function", "custom"):
            continue
        kind = tool["type"]
        definition: dict[str, Any] = {"type": kind}
        inner = tool.get(kind)
        if isinstance(inner, dict):
            fields = (
                ("name", "description", "parameters")
                if kind == "function"
                else ("name", "description")
            )
            definition.update((f, inner[f]) for f in fields if f in inner)
        out.append(definition)
    return out


def _responses_tools(tools: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    if not isinstance(tools, Iterable):
        return out
    for tool in tools:
        if not isinstance(tool, dict) or "type" not in tool:
            continue
        kind = tool["type"]
        definition: dict[str, Any] = {"type": kind}
        if kind == "function":
            if "name" in tool:
                definition["name"] = tool["name"]
            for field in ("description", "parameters"):
                if tool.get(field) is not None:
                    definition[field] = tool[field]
        elif kind == "custom":
            definition.update((f, tool[f]) for f in ("name", "description") if f in tool)
        out.append(definition)
    return out


def _set_params(span: Any, kwargs: dict[str, Any], params: tuple[tuple[str, str], ...]) -> None:
    for arg, key in params:
        value = kwargs.get(arg)
        if _given(value):
            span.set_data(key, value)


_CHAT_PARAMS = (
    ("max_tokens", SPANDATA.GEN_AI_REQUEST_MAX_TOKENS),
    ("presence_penalty", SPANDATA.GEN_AI_REQUEST_PRESENCE_PENALTY),
    ("frequency_penalty", SPANDATA.GEN_AI_REQUEST_FREQUENCY_PENALTY),
    ("temperature", SPANDATA.GEN_AI_REQUEST_TEMPERATURE),
    ("top_p", SPANDATA.GEN_AI_REQUEST_TOP_P),
    ("reasoning_effort", SPANDATA.GEN_AI_REQUEST_REASONING_LEVEL),
)
_RESPONSES_PARAMS = (
    ("max_output_tokens", SPANDATA.GEN_AI_REQUEST_MAX_TOKENS),
    ("temperature", SPANDATA.GEN_AI_REQUEST_TEMPERATURE),
    ("top_p", SPANDATA.GEN_AI_REQUEST_TOP_P),
)


def _chat_input(call: _Call, kwargs: dict[str, Any]) -> None:
    span, rules = call.span, call.rules
    span.set_data(SPANDATA.GEN_AI_OPERATION_NAME, "chat")
    model = kwargs.get("model")
    if model is not None:
        span.set_data(SPANDATA.GEN_AI_REQUEST_MODEL, model)
    _set_params(span, kwargs, _CHAT_PARAMS)
    tools = kwargs.get("tools")
    if rules.tools and _given(tools):
        span.set_data(SPANDATA.GEN_AI_TOOL_DEFINITIONS, json.dumps(_completions_tools(tools)))
    if not rules.inputs:
        return
    messages = kwargs.get("messages")
    if messages is None:
        return
    if isinstance(messages, str):
        _record_messages(call, SPANDATA.GEN_AI_REQUEST_MESSAGES, [messages], False)
        return
    if not isinstance(messages, Iterable) or isinstance(messages, dict):
        return
    # An iterator would be used up here: the library gets the list instead.
    messages = kwargs["messages"] = list(messages)
    system = [m for m in messages if isinstance(m, dict) and m.get("role") == "system"]
    if system:
        parts = [
            {"type": "text", "content": text}
            for m in system
            if m.get("content") is not None
            for text in _system_texts(m["content"])
        ]
        span.set_data(SPANDATA.GEN_AI_SYSTEM_INSTRUCTIONS, json.dumps(parts))
    others = [m for m in messages if not (isinstance(m, dict) and m.get("role") == "system")]
    if others:
        _record_messages(call, SPANDATA.GEN_AI_REQUEST_MESSAGES, others, False)


def _is_responses_system(message: Any) -> bool:
    return (
        isinstance(message, dict)
        and message.get("role") == "system"
        and message.get("type", "message") == "message"
    )


def _responses_system_parts(messages: Any) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    if not isinstance(messages, list):
        return parts
    for message in messages:
        if not _is_responses_system(message) or message.get("content") is None:
            continue
        content = message["content"]
        if isinstance(content, str):
            parts.append({"type": "text", "content": content})
        elif isinstance(content, Iterable):
            parts.extend(
                {"type": "text", "content": part["text"]}
                for part in content
                if isinstance(part, dict)
                and part.get("type") == "input_text"
                and part.get("text") is not None
            )
    return parts


def _responses_input(call: _Call, kwargs: dict[str, Any]) -> None:
    span, rules = call.span, call.rules
    span.set_data(SPANDATA.GEN_AI_OPERATION_NAME, "responses")
    model = kwargs.get("model")
    if model is not None:
        span.set_data(SPANDATA.GEN_AI_REQUEST_MODEL, model)
    _set_params(span, kwargs, _RESPONSES_PARAMS)
    conversation = kwargs.get("conversation")
    if _given(conversation):
        conversation_id = (
            conversation
            if isinstance(conversation, str)
            else conversation.get("id")
            if isinstance(conversation, dict)
            else None
        )
        if conversation_id is not None:
            span.set_data(SPANDATA.GEN_AI_CONVERSATION_ID, conversation_id)
    reasoning = kwargs.get("reasoning")
    if isinstance(reasoning, dict) and "effort" in reasoning:
        span.set_data(SPANDATA.GEN_AI_REQUEST_REASONING_LEVEL, reasoning["effort"])
    tools = kwargs.get("tools")
    if rules.tools and _given(tools):
        span.set_data(SPANDATA.GEN_AI_TOOL_DEFINITIONS, json.dumps(_responses_tools(tools)))
    if not rules.inputs:
        return
    instructions = kwargs.get("instructions")
    parts: list[dict[str, Any]] = []
    if _given(instructions):
        parts.append({"type": "text", "content": instructions})
    messages = kwargs.get("input")
    if messages is None:
        if parts:
            span.set_data(SPANDATA.GEN_AI_SYSTEM_INSTRUCTIONS, json.dumps(parts))
        return
    parts += _responses_system_parts(messages)
    if parts:
        span.set_data(SPANDATA.GEN_AI_SYSTEM_INSTRUCTIONS, json.dumps(parts))
    if isinstance(messages, str):
        _record_messages(call, SPANDATA.GEN_AI_REQUEST_MESSAGES, [messages], False)
        return
    others = [m for m in messages if not _is_responses_system(m)]
    if others:
        _record_messages(call, SPANDATA.GEN_AI_REQUEST_MESSAGES, others, False)


def _embeddings_input(call: _Call, kwargs: dict[str, Any]) -> None:
    span, rules = call.span, call.rules
    span.set_data(SPANDATA.GEN_AI_OPERATION_NAME, "embeddings")
    model = kwargs.get("model")
    if model is not None:
        span.set_data(SPANDATA.GEN_AI_REQUEST_MODEL, model)
    if not rules.inputs:
        return
    inputs = kwargs.get("input")
    if inputs is None:
        return
    if isinstance(inputs, str):
        _record_messages(call, SPANDATA.GEN_AI_EMBEDDINGS_INPUT, [inputs], True)
        return
    if not isinstance(inputs, Iterable) or isinstance(inputs, dict):
        return
    listed = list(inputs)
    if listed:
        _record_messages(call, SPANDATA.GEN_AI_EMBEDDINGS_INPUT, listed, True)


# -- token usage -----------------------------------------------------------------------


def _int(obj: Any, name: str) -> int:
    value = getattr(obj, name, None)
    return value if isinstance(value, int) else 0


def _counted_input(messages: Any, count: Callable[[str], int]) -> int:
    total = 0
    for message in messages or ():
        if isinstance(message, str):
            total += count(message)
        elif isinstance(message, dict) and message.get("content") is not None:
            total += sum(count(text) for text in _system_texts(message["content"]))
    return total


def _set_usage(span: Any, tokens: tuple[int, int, int, int, int]) -> None:
    inputs, cached, outputs, reasoning, total = tokens
    if inputs:
        span.set_data(SPANDATA.GEN_AI_USAGE_INPUT_TOKENS, inputs)
    if cached:
        span.set_data(SPANDATA.GEN_AI_USAGE_INPUT_TOKENS_CACHED, cached)
    if outputs:
        span.set_data(SPANDATA.GEN_AI_USAGE_OUTPUT_TOKENS, outputs)
    if reasoning:
        span.set_data(SPANDATA.GEN_AI_USAGE_OUTPUT_TOKENS_REASONING, reasoning)
    if not total and inputs and outputs:
        total = inputs + outputs
    if total:
        span.set_data(SPANDATA.GEN_AI_USAGE_TOTAL_TOKENS, total)


class _Counts:
    """How an API reports an answer's tokens: the names in its usage object, and where
    the answer's texts are (to count them when it reports none)."""

    __slots__ = ("answer", "cached", "inputs", "outputs", "reasoning")

    def __init__(
        self, names: tuple[str, str, str, str], answer: Callable[[Any], Iterator[Any]]
    ) -> None:
        self.inputs, self.outputs, self.cached, self.reasoning = names
        self.answer = answer


def _completion_texts(response: Any) -> Iterator[Any]:
    if getattr(response, "choices", None) is None:
        return
    for choice in response.choices:
        content = getattr(getattr(choice, "message", None), "content", _MISSING)
        if content is not _MISSING:
            yield content


def _response_texts(response: Any) -> Iterator[Any]:
    if not isinstance(getattr(response, "output", None), list):
        return
    for item in response.output:
        for part in getattr(item, "content", None) or ():
            if hasattr(part, "text"):
                yield part.text


def _record_usage(
    span: Any,
    counts: _Counts,
    messages: Any,
    response: Any,
    texts: Optional[list[str]],
    usage: Any,
    count: Callable[[str], int],
) -> None:
    """The token counts: `usage`'s (default: the response's), else counted in the
    `messages` and the answer's `texts` (default: the response's)."""
    if usage is None:
        usage = getattr(response, "usage", None)
    inputs = cached = outputs = reasoning = total = 0
    if usage is not None:
        inputs = _int(usage, counts.inputs)
        outputs = _int(usage, counts.outputs)
        total = _int(usage, "total_tokens")
        cached = _int(getattr(usage, counts.cached, None), "cached_tokens")
        reasoning = _int(getattr(usage, counts.reasoning, None), "reasoning_tokens")
    if not inputs:
        inputs = _counted_input(messages, count)
    if not outputs:
        answer = counts.answer(response) if texts is None else texts
        outputs = sum(count(text) for text in answer)
    _set_usage(span, (inputs, cached, outputs, reasoning, total))


_COMPLETIONS = _Counts(
    ("prompt_tokens", "completion_tokens", "prompt_tokens_details", "completion_tokens_details"),
    _completion_texts,
)
_RESPONSES_API = _Counts(
    ("input_tokens", "output_tokens", "input_tokens_details", "output_tokens_details"),
    _response_texts,
)


_MISSING: Any = object()

_CHAT = _Op(OP.GEN_AI_CHAT, "chat", "messages", _chat_input, True)
_EMBEDDINGS = _Op(OP.GEN_AI_EMBEDDINGS, "embeddings", "input", _embeddings_input, False)
_RESPONSES = _Op(OP.GEN_AI_RESPONSES, "responses", "input", _responses_input, True)


# -- one call --------------------------------------------------------------------------


def _dump(model: Any) -> Any:
    return model.model_dump() if hasattr(model, "model_dump") else model


class _Call(LLMCall):
    """One model call: its span, rules and input, from the request to the last chunk."""

    __slots__ = ("kind", "messages", "start", "truncate")
    integration: OpenAIIntegration

    def __init__(self, client: Any, integration: OpenAIIntegration, kind: _Op) -> None:
        super().__init__(client, integration)
        self.kind = kind
        self.truncate = should_truncate_gen_ai_input(client.options)
        self.messages: Any = None  # the input, for counting its tokens at the end
        self.start = 0.0

    def begin(self, kwargs: dict[str, Any]) -> None:
        kind = self.kind
        name = f"{kind.name} {kwargs.get('model')}"
        attributes: dict[str, Any] = {SPANDATA.GEN_AI_SYSTEM: "openai"}
        if kind.streams:
            attributes[SPANDATA.GEN_AI_RESPONSE_STREAMING] = kwargs.get("stream", False) or False
        start = sdk_start_span_function()
        if has_span_streaming_enabled(self.client.options):
            # Given at start, as sentry_sdk's: `traces_sampler` and `ignore_spans` see them.
            span = start(op=kind.op, name=name, origin=ORIGIN, attributes=attributes)
        else:
            span = start(op=kind.op, name=name, origin=ORIGIN)
        span.__enter__()
        self.span = span
        for key, value in attributes.items():
            span.set_data(key, value)
        kind.record_input(self, kwargs)
        self.start = time.perf_counter()

    def inputs(self, kwargs: dict[str, Any]) -> Any:
        value = kwargs.get(self.kind.input_key)
        return [value] if isinstance(value, str) else value

    def responded(self, response: Any) -> None:
        """Record a whole (not streamed) answer and end the span."""
        span = self.span
        if hasattr(response, "model"):
            set_data_normalized(span, SPANDATA.GEN_AI_RESPONSE_MODEL, response.model)
        outputs = self.rules.outputs
        count = self.integration.count_tokens
        if getattr(response, "choices", None) is not None:
            if outputs:
                texts = [_dump(c.message) for c in response.choices if c.message is not None]
                if texts:
                    set_data_normalized(span, SPANDATA.GEN_AI_RESPONSE_TEXT, texts)
            _record_usage(span, _COMPLETIONS, self.messages, response, None, None, count)
        elif hasattr(response, "output"):
            if outputs and isinstance(response.output, list):
                tools, texts = [], []
                for item in response.output:
                    if item.type == "function_call":
                        tools.append(_dump(item))
                    elif item.type == "message":
                        for part in item.content:
                            text = getattr(part, "text", _MISSING)
                            texts.append(_dump(part) if text is _MISSING else text)
                if tools:
                    set_data_normalized(
                        span, SPANDATA.GEN_AI_RESPONSE_TOOL_CALLS, tools, unpack=False
                    )
                if texts:
                    set_data_normalized(span, SPANDATA.GEN_AI_RESPONSE_TEXT, texts)
            _record_usage(span, _RESPONSES_API, self.messages, response, None, None, count)
        else:
            _record_usage(span, _COMPLETIONS, self.messages, response, None, None, count)
        span.__exit__(None, None, None)


class _StreamState(EndsOnce):
    """What a stream's items tell, gathered as they pass; its end ends the span (once)."""

    __slots__ = ("last_usage", "model", "response", "texts", "ttft", "usage_set")
    call: _Call

    def __init__(self, call: _Call, response: Any) -> None:
        self.call = call  # as EndsOnce's (one call less per stream)
        self.done = False
        self.response = response
        self.ttft: Optional[float] = None
        # One list of text pieces per choice; None when the text may not be sent
        # and no tokens are counted (nothing kept then).
        self.texts: list[list[str]] = []
        self.model: Any = _MISSING
        self.last_usage: Any = None  # chat: the last chunk's
        self.usage_set = False  # responses: usage came with the completed event

    def ended(self, exc_info: Any) -> None:
        span = self.call.span
        try:
            self._record(self.call, span)  # what came, also when the stream broke
        finally:
            span.__exit__(*(exc_info or (None, None, None)))

    def _record(self, call: _Call, span: Any) -> None:
        if self.model is not _MISSING:
            span.set_data(SPANDATA.GEN_AI_RESPONSE_MODEL, self.model)
        if self.ttft is not None:
            span.set_data(SPANDATA.GEN_AI_RESPONSE_TIME_TO_FIRST_TOKEN, self.ttft)
        texts = ["".join(pieces) for pieces in self.texts] if self.texts else None
        if texts is not None and call.rules.outputs:
            set_data_normalized(span, SPANDATA.GEN_AI_RESPONSE_TEXT, texts)
        self.usage(call, span, texts)

    def usage(self, call: _Call, span: Any, texts: Optional[list[str]]) -> None:
        """The token counts, at the end."""


class _ChatStream(_StreamState):
    """A streamed chat completion: its chunks."""

    __slots__ = ()

    def item(self, chunk: Any) -> None:
        self.model = chunk.model
        choices = getattr(chunk, "choices", None)
        if choices is not None:
            texts = self.texts
            for index, choice in enumerate(choices):
                delta = getattr(choice, "delta", None)
                if delta is None or not hasattr(delta, "content"):
                    continue
                if self.ttft is None:
                    self.ttft = time.perf_counter() - self.call.start
                if len(texts) <= index:
                    texts.append([])
                texts[index].append(delta.content or "")
        if hasattr(chunk, "usage"):
            self.last_usage = chunk.usage

    def usage(self, call: _Call, span: Any, texts: Optional[list[str]]) -> None:
        count = call.integration.count_tokens
        _record_usage(
            span, _COMPLETIONS, call.messages, self.response, texts, self.last_usage, count
        )


class _ResponsesStream(_StreamState):
    """A streamed Responses API answer: its events."""

    __slots__ = ()

    def item(self, event: Any) -> None:
        if isinstance(event, _Lib.text_delta):
            if self.ttft is None:
                self.ttft = time.perf_counter() - self.call.start
            if not self.texts:
                self.texts.append([])
            self.texts[0].append(event.delta or "")
        elif isinstance(event, _Lib.completed):
            call = self.call
            call.span.set_data(SPANDATA.GEN_AI_RESPONSE_MODEL, event.response.model)
            count = call.integration.count_tokens
            _record_usage(
                call.span, _RESPONSES_API, call.messages, event.response, None, None, count
            )
            self.usage_set = True

    def usage(self, call: _Call, span: Any, texts: Optional[list[str]]) -> None:
        if texts is not None and not self.usage_set:
            count = call.integration.count_tokens
            _record_usage(span, _RESPONSES_API, call.messages, self.response, texts, None, count)


def _begin(kind: _Op, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Optional[_Call]:
    """The wrapper's `start` (`args` unused): the call, its span started; None: left alone."""
    client = get_client()
    integration = client.get_integration(OpenAIIntegration)
    if integration is None:
        return None
    if kind is _CHAT:
        # Calls the library rejects anyway are left to it, as sentry_sdk does.
        if "messages" not in kwargs:
            return None
        try:
            iter(kwargs["messages"])
        except TypeError:
            return None
    call = started(_Call(client, integration, kind), kwargs)
    if call is not None:
        # After `begin`, which may have listed the messages for the library.
        call.messages = call.inputs(kwargs)
    return call


def _wrapper(kind: _Op, is_async: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return call_wrapper(functools.partial(_begin, kind), _DONE[is_async], is_async)


def _answered(is_async: bool) -> Callable[[_Call, Any], Any]:
    """What the caller gets: the answer, recorded, or its stream, watched."""
    watcher = awatch if is_async else watch

    def done(call: _Call, response: Any) -> Any:
        try:
            stream_type = _Lib.async_stream if is_async else _Lib.stream
            if isinstance(response, stream_type) and hasattr(response, "_iterator"):
                state = (_ChatStream if call.kind is _CHAT else _ResponsesStream)(call, response)
                response._iterator = watcher(response._iterator, state)
            else:
                call.responded(response)
        except Exception:  # instrumentation must not break the call
            pass
        return response

    return done


_DONE = {False: _answered(False), True: _answered(True)}


__all__ = ["OpenAIIntegration"]
