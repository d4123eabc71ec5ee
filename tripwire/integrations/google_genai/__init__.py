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

import functools
import json
import sys
from types import ModuleType
from typing import Any, Callable, Optional

from tripwire.ai.utils import (
    annotate_truncated_messages,
    get_start_span_function,
    normalize_message_roles,
    set_data_normalized,
    truncate_and_annotate_messages,
)
from tripwire.consts import OP, SPANDATA
from tripwire.integrations import DidNotEnable, Integration, _check_minimum_version
from tripwire.integrations._common._hooks import when_imported
from tripwire.integrations._common.unhandled import capture_unhandled
from tripwire.integrations._patch import patch_once
from tripwire.integrations._processors import add_internal_processor
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
from tripwire.scope._global_processors import global_event_processors
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


class GoogleGenAIIntegration(Integration):
    """``gen_ai`` spans (and error events) for the Gemini client's model calls."""

    identifier = "google_genai"
    origin = ORIGIN

    def __init__(self, include_prompts: bool = True) -> None:
        """Args:
        include_prompts: Send prompts and answers (with ``send_default_pii``).
        """
        self.include_prompts = include_prompts

    @staticmethod
    def setup_once() -> None:
        """Patch `Models` and `AsyncModels` once `google.genai.models` is imported.

        Raises:
            DidNotEnable: google-genai is not installed, or older than 1.29.
        """
        import importlib.util

        from tripwire.utils import package_version

        try:
            found = importlib.util.find_spec("google.genai") is not None
        except (ImportError, ValueError):  # no `google` namespace at all
            found = False
        if not found:
            raise DidNotEnable("google-genai not installed")
        _check_minimum_version(
            GoogleGenAIIntegration, package_version("google-genai"), "google-genai"
        )
        when_imported("google.genai.models", _patch_models)
        if annotate_truncated_messages not in global_event_processors:
            add_internal_processor(annotate_truncated_messages)


def _patch_models(module: ModuleType) -> None:
    for owner, is_async in ((module.Models, False), (module.AsyncModels, True)):
        patch_once(owner, "generate_content", _wrap_generate(is_async), _MARK)
        patch_once(owner, "generate_content_stream", _wrap_stream(is_async), _MARK)
        patch_once(owner, "embed_content", _wrap_embed(is_async), _MARK)


# -- what may be sent ------------------------------------------------------------------


def _collection(options: dict[str, Any]) -> Optional[dict[str, Any]]:
    collection = options.get("data_collection")
    if isinstance(collection, dict) and collection.get("provided_by_user"):
        gen_ai: dict[str, Any] = collection["gen_ai"]
        return gen_ai
    return None


class _Call:
    """One model call: the client, the integration, the span and what may be sent."""

    __slots__ = ("client", "inputs", "integration", "outputs", "span", "tool_calls", "tools")

    def __init__(
        self, client: Any, integration: GoogleGenAIIntegration, op: str, name: str, model: str
    ) -> None:
        self.client = client
        self.integration = integration
        rules = _collection(client.options)
        if rules is None:
            prompts = bool(client.options.get("send_default_pii") and integration.include_prompts)
            self.inputs = self.outputs = prompts
            # sentry_sdk sent these two before data_collection existed, and still does
            self.tools = self.tool_calls = True
        else:
            self.inputs, self.outputs = bool(rules["inputs"]), bool(rules["outputs"])
            self.tools, self.tool_calls = self.inputs, self.outputs
        span = get_start_span_function()(op=op, name=f"{name} {model}", origin=ORIGIN)
        span.__enter__()
        self.span = span
        span.set_data(SPANDATA.GEN_AI_OPERATION_NAME, name)
        span.set_data(SPANDATA.GEN_AI_SYSTEM, GEN_AI_SYSTEM)
        span.set_data(SPANDATA.GEN_AI_REQUEST_MODEL, model)

    def failed(self, exc_info: Any) -> None:
        capture_unhandled(self.client, exc_info, "google_genai")
        self.span.set_status("internal_error")
        self.span.__exit__(*exc_info)

    def end(self) -> None:
        self.span.__exit__(None, None, None)


def _start(
    op: str, name: str, model: Any, with_integration: Callable[[_Call], None]
) -> Optional[_Call]:
    """The call's span, entered, with the request data; None when not instrumented."""
    client = get_client()
    integration = client.get_integration(GoogleGenAIIntegration)
    if integration is None:
        return None
    call = _Call(client, integration, op, name, _model_name(model))
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
    if tools and call.tools:
        listed = tools_data(tools)
        if listed:
            set_data_normalized(span, SPANDATA.GEN_AI_REQUEST_AVAILABLE_TOOLS, listed, unpack=False)
    if call.inputs:
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
    model = args[0] if args else kwargs.get("model", "unknown")
    contents = args[1] if len(args) > 1 else kwargs.get("contents")

    def request(call: _Call) -> None:
        config = kwargs.get("config")
        wrapped = config_with_wrapped_tools(config)
        if wrapped is not config:
            kwargs["config"] = wrapped
        if stream:
            call.span.set_data(SPANDATA.GEN_AI_RESPONSE_STREAMING, True)
        _chat_request(call, contents, kwargs)

    return _start(OP.GEN_AI_CHAT, "chat", model, request)


def _responded(call: _Call, response: Any) -> None:
    try:
        record_response(call.span, response, call.outputs, call.tool_calls)
    except Exception:  # instrumentation must not break the call
        pass
    call.end()


def _wrap_generate(is_async: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        if is_async:

            @functools.wraps(original)
            async def generate_async(self: Any, *args: Any, **kwargs: Any) -> Any:
                call = _chat_start(args, kwargs, False)
                if call is None:
                    return await original(self, *args, **kwargs)
                try:
                    response = await original(self, *args, **kwargs)
                except Exception:
                    call.failed(sys.exc_info())
                    raise
                _responded(call, response)
                return response

            return generate_async

        @functools.wraps(original)
        def generate(self: Any, *args: Any, **kwargs: Any) -> Any:
            call = _chat_start(args, kwargs, False)
            if call is None:
                return original(self, *args, **kwargs)
            try:
                response = original(self, *args, **kwargs)
            except Exception:
                call.failed(sys.exc_info())
                raise
            _responded(call, response)
            return response

        return generate

    return wrap


def _fold(answer: StreamedAnswer, chunk: Any) -> None:
    try:
        answer.add(chunk)
    except Exception:  # instrumentation must not break the stream
        pass


def _finish_stream(call: _Call, answer: StreamedAnswer) -> None:
    try:
        answer.record(call.span, call.tool_calls)
    except Exception:  # instrumentation must not break the stream
        pass
    call.end()


def _stream_failed(call: _Call) -> None:
    capture_unhandled(call.client, sys.exc_info(), "google_genai")
    call.span.set_status("internal_error")


def _sync_chunks(call: _Call, stream: Any) -> Any:
    answer = StreamedAnswer(call.outputs)
    try:
        for chunk in stream:
            _fold(answer, chunk)
            yield chunk
    except Exception:
        _stream_failed(call)
        raise
    finally:
        _finish_stream(call, answer)


async def _async_chunks(call: _Call, stream: Any) -> Any:
    answer = StreamedAnswer(call.outputs)
    try:
        async for chunk in stream:
            _fold(answer, chunk)
            yield chunk
    except Exception:
        _stream_failed(call)
        raise
    finally:
        _finish_stream(call, answer)


def _wrap_stream(is_async: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        if is_async:

            @functools.wraps(original)
            async def stream_async(self: Any, *args: Any, **kwargs: Any) -> Any:
                call = _chat_start(args, kwargs, True)
                if call is None:
                    return await original(self, *args, **kwargs)
                try:
                    stream = await original(self, *args, **kwargs)
                except Exception:
                    call.failed(sys.exc_info())
                    raise
                return _async_chunks(call, stream)

            return stream_async

        @functools.wraps(original)
        def stream_sync(self: Any, *args: Any, **kwargs: Any) -> Any:
            call = _chat_start(args, kwargs, True)
            if call is None:
                return original(self, *args, **kwargs)
            try:
                stream = original(self, *args, **kwargs)
            except Exception:
                call.failed(sys.exc_info())
                raise
            return _sync_chunks(call, stream)

        return stream_sync

    return wrap


# -- embeddings ------------------------------------------------------------------------


def _embed_start(kwargs: dict[str, Any]) -> Optional[_Call]:
    contents = kwargs.get("contents")

    def request(call: _Call) -> None:
        if not (call.inputs and contents):
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


def _embedded(call: _Call, response: Any) -> None:
    try:
        tokens = embeddings_tokens(response) if response else 0
        if tokens > 0:
            call.span.set_data(SPANDATA.GEN_AI_USAGE_INPUT_TOKENS, tokens)
    except Exception:  # instrumentation must not break the call
        pass
    call.end()


def _wrap_embed(is_async: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def wrap(original: Callable[..., Any]) -> Callable[..., Any]:
        if is_async:

            @functools.wraps(original)
            async def embed_async(self: Any, *args: Any, **kwargs: Any) -> Any:
                call = _embed_start(kwargs)
                if call is None:
                    return await original(self, *args, **kwargs)
                try:
                    response = await original(self, *args, **kwargs)
                except Exception:
                    call.failed(sys.exc_info())
                    raise
                _embedded(call, response)
                return response

            return embed_async

        @functools.wraps(original)
        def embed(self: Any, *args: Any, **kwargs: Any) -> Any:
            call = _embed_start(kwargs)
            if call is None:
                return original(self, *args, **kwargs)
            try:
                response = original(self, *args, **kwargs)
            except Exception:
                call.failed(sys.exc_info())
                raise
            _embedded(call, response)
            return response

        return embed

    return wrap


__all__ = ["GoogleGenAIIntegration"]
