"""Google GenAI integration: ``gen_ai.*`` spans for the model calls of `google-genai`.

As sentry_sdk 2.75's ``google_genai`` integration (`GoogleGenAIIntegration(
include_prompts=True)`), for `models.generate_content`, `generate_content_stream` and
`embed_content` of the sync client and of `client.aio`:

- a span ``gen_ai.chat`` "chat MODEL" or ``gen_ai.embeddings`` "embeddings MODEL"
  (origin ``auto.ai.google_genai``): a child of the current span when it belongs to a
  transaction, else a transaction of its own;
- its data: ``gen_ai.system`` "gcp.gemini", the operation, the request model, the
  config's parameters (temperature, top_p, top_k, max output tokens, penalties, seed),
  whether streamed, the tools (name and description), the finish reasons, the
  response id and model version and the token usage (input with tool-use prompt
  tokens, cached, output with the thoughts, reasoning, total);
- system instructions, messages, embedding inputs and the answer's text only when
  `data_collection`'s ``gen_ai`` inputs / outputs allow it, or, without it, with
  ``send_default_pii`` and ``include_prompts``; messages cut to the last one when
  gen_ai spans go out inside their transaction; the model's function calls
  (``gen_ai.response.tool_calls``) unless `data_collection` forbids outputs, as
  sentry_sdk does;
- Python functions in the config's tools run in ``gen_ai.execute_tool`` spans
  (`_tools`), nested in the chat span when the library calls them;
- streams: chunks are passed on as they come and folded as they pass; the span
  ends after the last chunk or when the stream is closed;
- an exception from the library is an event (mechanism ``google_genai``, unhandled),
  the span ends ``internal_error``, and the exception reaches the caller unchanged.

Difference, on purpose: a streamed call that fails before its first chunk ends its
span ``internal_error`` (sentry_sdk leaves its status unset).

`google.genai.models` is patched when the application imports it; the patches fall
through when the active client lacks this integration.
"""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any, Callable, Optional

from tripwire.ai.streams import StreamWatcher, awatch, watch
from tripwire.ai.utils import (
    normalize_message_roles,
    set_data_normalized,
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
from tripwire.integrations._common.unhandled import capture_unhandled
from tripwire.integrations._patch import patch_once
from tripwire.integrations.google_genai._contents import (
    messages,
    system_instructions,
    text_of,
    tools_data,
)
from tripwire.integrations.google_genai._response import (
    StreamedAnswer,
    embeddings_tokens,
    record_response,
)
from tripwire.integrations.google_genai._tools import ORIGIN, config_with_wrapped_tools
from tripwire.scope._current import get_client, get_current_scope
from tripwire.tracing_utils import should_truncate_gen_ai_input

GEN_AI_SYSTEM = "gcp.gemini"
_MARK = "__tripwire_google_genai__"

_CONFIG_PARAMS = (
    ("temperature", SPANDATA.GEN_AI_REQUEST_TEMPERATURE),
    ("top_p", SPANDATA.GEN_AI_REQUEST_TOP_P),
    ("top_k", SPANDATA.GEN_AI_REQUEST_TOP_K),
    ("max_output_tokens", SPANDATA.GEN_AI_REQUEST_MAX_TOKENS),
    ("presence_penalty", SPANDATA.GEN_AI_REQUEST_PRESENCE_PENALTY),
    ("frequency_penalty", SPANDATA.GEN_AI_REQUEST_FREQUENCY_PENALTY),
    ("seed", SPANDATA.GEN_AI_REQUEST_SEED),
)


class GoogleGenAIIntegration(LLMIntegration):
    """``gen_ai`` spans (and error events) for the Gemini client's model calls."""

    identifier = "google_genai"
    origin = ORIGIN

    @staticmethod
    def setup_once() -> None:
        """Patch `Models` and `AsyncModels` once `google.genai.models` is imported.

        Raises:
            DidNotEnable: google-genai is not installed, or older than 1.29.
        """
        enable(
            GoogleGenAIIntegration,
            "google.genai.models",
            _patch_models,
            package="google.genai",
            distribution="google-genai",
            missing="google-genai not installed",
            truncation=True,
        )


def _patch_models(module: ModuleType) -> None:
    for owner, is_async in ((module.Models, False), (module.AsyncModels, True)):
        streamed = _streamed(awatch if is_async else watch)
        generate = call_wrapper(_chat_call, _responded, is_async)
        patch_once(owner, "generate_content", generate, _MARK)
        stream = call_wrapper(_stream_call, streamed, is_async)
        patch_once(owner, "generate_content_stream", stream, _MARK)
        patch_once(owner, "embed_content", call_wrapper(_embed_call, _embedded, is_async), _MARK)


class _Call(LLMCall):
    """One model call: the client, the integration, the span and what may be sent."""

    __slots__ = ()

    def begin(self, op: str, name: str, model: str, stream: bool) -> None:
        attributes: dict[str, Any] = {
            SPANDATA.GEN_AI_OPERATION_NAME: name,
            SPANDATA.GEN_AI_SYSTEM: GEN_AI_SYSTEM,
            SPANDATA.GEN_AI_REQUEST_MODEL: model,
        }
        if stream:
            attributes[SPANDATA.GEN_AI_RESPONSE_STREAMING] = True
        # Given at start too, as sentry_sdk's: `traces_sampler` and `ignore_spans` see them.
        span = start_llm_span(op, f"{name} {model}", ORIGIN, attributes)
        span.__enter__()
        self.span = span
        for key, value in attributes.items():
            span.set_data(key, value)

    def failed(self, exc_info: Any) -> None:
        capture_unhandled(self.client, exc_info, "google_genai")
        self.span.set_status("internal_error")
        self.span.__exit__(*exc_info)


def _start(
    op: str,
    name: str,
    model: Any,
    with_integration: Callable[[_Call], None],
    stream: bool = False,
) -> Optional[_Call]:
    """The call's span, entered, with the request data; None when not instrumented."""
    client = get_client()
    integration = client.get_integration(GoogleGenAIIntegration)
    if integration is None:
        return None
    call = _Call(client, integration)
    call.begin(op, name, _model_name(model), stream)
    try:
        with_integration(call)
    except Exception:  # instrumentation must not break the call
        pass
    return call


def _model_name(model: Any) -> str:
    if isinstance(model, str):
        return model
    if hasattr(model, "name"):
        return str(model.name)
    return str(model)


# -- chat ------------------------------------------------------------------------------


def _chat_request(call: _Call, contents: Any, kwargs: dict[str, Any]) -> None:
    span = call.span
    if kwargs.get("stream", False):
        span.set_data(SPANDATA.GEN_AI_RESPONSE_STREAMING, True)
    config = kwargs.get("config")
    tools = getattr(config, "tools", None) if config is not None else None
    if tools and call.rules.tools:
        listed = tools_data(tools)
        if listed:
            set_data_normalized(span, SPANDATA.GEN_AI_REQUEST_AVAILABLE_TOOLS, listed, unpack=False)
    if call.rules.inputs:
        instruction = None
        if config and hasattr(config, "system_instruction"):
            instruction = config.system_instruction
        elif isinstance(config, dict) and "system_instruction" in config:
            instruction = config.get("system_instruction")
        if instruction is not None:
            span.set_data(
                SPANDATA.GEN_AI_SYSTEM_INSTRUCTIONS, json.dumps(system_instructions(instruction))
            )
        found: Optional[list[Any]] = normalize_message_roles(messages(contents))
        if found and should_truncate_gen_ai_input(call.client.options):
            found = truncate_and_annotate_messages(found, span, get_current_scope())
        if found:
            set_data_normalized(span, SPANDATA.GEN_AI_REQUEST_MESSAGES, found, unpack=False)
    for attribute, key in _CONFIG_PARAMS:
        value = getattr(config, attribute, None)
        if value is not None:
            span.set_data(key, value)


def _chat_start(args: tuple[Any, ...], kwargs: dict[str, Any], stream: bool) -> Optional[_Call]:
    # args[0] is the `Models` instance
    model = args[1] if len(args) > 1 else kwargs.get("model", "unknown")
    contents = args[2] if len(args) > 2 else kwargs.get("contents")

    def request(call: _Call) -> None:
        config = kwargs.get("config")
        wrapped = config_with_wrapped_tools(config)
        if wrapped is not config:
            kwargs["config"] = wrapped
        _chat_request(call, contents, kwargs)

    return _start(OP.GEN_AI_CHAT, "chat", model, request, stream)


def _chat_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Optional[_Call]:
    return _chat_start(args, kwargs, False)


def _stream_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Optional[_Call]:
    return _chat_start(args, kwargs, True)


def _responded(call: _Call, response: Any) -> Any:
    try:
        record_response(call.span, response, call.rules.outputs, call.rules.tool_calls)
    except Exception:  # instrumentation must not break the call
        pass
    call.end()
    return response


class _Chunks(StreamedAnswer, StreamWatcher):
    """A streamed answer, folded as its chunks pass; its end ends the span."""

    __slots__ = ("call",)
    item = StreamedAnswer.add

    def __init__(self, call: _Call) -> None:
        super().__init__(call.rules.outputs)
        self.call = call

    def finish(self, exc_info: Any = None) -> None:
        call = self.call
        if exc_info is not None and isinstance(exc_info[1], Exception):
            capture_unhandled(call.client, exc_info, "google_genai")
            call.span.set_status("internal_error")
        try:
            self.record(call.span, call.rules.tool_calls)
        except Exception:  # instrumentation must not break the stream
            pass
        call.end()


def _streamed(chunks: Callable[[Any, StreamWatcher], Any]) -> Callable[[_Call, Any], Any]:
    def done(call: _Call, stream: Any) -> Any:
        return chunks(stream, _Chunks(call))

    return done


# -- embeddings ------------------------------------------------------------------------


def _embed_start(kwargs: dict[str, Any]) -> Optional[_Call]:
    contents = kwargs.get("contents")

    def request(call: _Call) -> None:
        if not (call.rules.inputs and contents):
            return
        if isinstance(contents, str):
            texts = [contents]
        elif isinstance(contents, list):
            texts = [t for t in map(text_of, contents) if t]
        else:
            one = text_of(contents)
            texts = [one] if one else []
        if texts:
            set_data_normalized(call.span, SPANDATA.GEN_AI_EMBEDDINGS_INPUT, texts, unpack=False)

    return _start(OP.GEN_AI_EMBEDDINGS, "embeddings", kwargs.get("model", "unknown"), request)


def _embed_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Optional[_Call]:
    return _embed_start(kwargs)


def _embedded(call: _Call, response: Any) -> Any:
    try:
        tokens = embeddings_tokens(response) if response else 0
        if tokens > 0:
            call.span.set_data(SPANDATA.GEN_AI_USAGE_INPUT_TOKENS, tokens)
    except Exception:  # instrumentation must not break the call
        pass
    call.end()
    return response


__all__ = ["GoogleGenAIIntegration"]
