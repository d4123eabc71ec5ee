"""Cohere integration: an ``ai.*`` span for each chat and embedding of the `cohere` client.

As sentry_sdk 2.75's ``cohere`` integration (`CohereIntegration(include_prompts=True)`),
for the v1 API of the sync client (`Client.chat`, `Client.chat_stream` with a string
``message``, and `Client.embed`):

- a span ``ai.chat_completions.create.cohere`` "cohere.client.Chat" or
  ``ai.embeddings.create.cohere`` "Cohere Embedding Creation" (origin
  ``auto.ai.cohere``), the current span while the call runs: a child of the current
  span when it belongs to a transaction, else a transaction of its own;
- chat data, set once the answer came: ``ai.model_id`` and the sampling parameters
  (``ai.top_k``, ``ai.top_p``, ``ai.seed``, penalties, ``ai.raw_prompting``),
  ``ai.streaming`` (false, as sentry_sdk sets it for streams too), the answer's
  ``ai.generation_id``, ``ai.is_search_required``, ``ai.finish_reason`` and
  ``ai.warnings``, and the token usage (billed units, else counted tokens);
- the history and message (``ai.input_messages``), ``ai.preamble``, ``ai.tools``, the
  answer (``ai.responses``) and its citations, documents, search queries / results and
  tool calls only when `data_collection`'s ``gen_ai`` inputs / outputs allow it, or,
  without `data_collection`, with ``send_default_pii`` and ``include_prompts``;
- embeddings: ``ai.model_id``, the texts (when allowed) and the billed input tokens;
- a streamed chat's span ends after the last event (events passed on as they come),
  its answer read from the stream-end event;
- an exception from the library is an event (mechanism ``cohere``, unhandled), the
  span ends ``internal_error``, and the exception reaches the caller unchanged.

Not instrumented, as in sentry_sdk 2.75: the async client and the v2 API
(`ClientV2.chat`, whose ``messages`` replace ``message``, and `ClientV2.embed`).

The classes are patched when the application imports `cohere`; the patches fall
through when the active client lacks this integration.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Callable, Optional

from tripwire.ai.streams import StreamWatcher, watch
from tripwire.ai.usage import record_usage
from tripwire.ai.utils import sdk_start_span_function, set_data_normalized
from tripwire.consts import OP, SPANDATA
from tripwire.integrations._common.llm import LLMCall, LLMIntegration, call_wrapper, enable
from tripwire.integrations._patch import patch_once
from tripwire.scope._current import get_client

ORIGIN = "auto.ai.cohere"
_MARK = "__tripwire_cohere__"


class CohereIntegration(LLMIntegration):
    """``ai.*`` spans (and error events) for the Cohere client's chats and embeddings."""

    identifier = "cohere"
    origin = ORIGIN

    @staticmethod
    def setup_once() -> None:
        """Patch the client once `cohere` is imported.

        Raises:
            DidNotEnable: cohere is not installed, or older than 5.4.
        """
        enable(
            CohereIntegration,
            "cohere",
            _patch_cohere,
            package="cohere",
            missing="Cohere not installed",
        )


class _Lib:
    """The cohere answer class the wrapper tests against, bound at the patch."""

    chat_response: Any = type(None)


def _patch_cohere(module: ModuleType) -> None:
    from cohere.base_client import BaseCohere
    from cohere.client import Client

    _Lib.chat_response = module.NonStreamedChatResponse
    patch_once(BaseCohere, "chat", _chat_wrapper(streaming=False), _MARK)
    patch_once(BaseCohere, "chat_stream", _chat_wrapper(streaming=True), _MARK)
    patch_once(Client, "embed", call_wrapper(_embed_call, _embedded), _MARK)


class _Call(LLMCall):
    """One chat or embedding call; a chat keeps its arguments for the answer's data."""

    __slots__ = ("kwargs",)
    kwargs: dict[str, Any]


# -- chat ------------------------------------------------------------------------------

_CHAT_PARAMS = (
    ("model", SPANDATA.AI_MODEL_ID),
    ("k", SPANDATA.AI_TOP_K),
    ("p", SPANDATA.AI_TOP_P),
    ("seed", SPANDATA.AI_SEED),
    ("frequency_penalty", SPANDATA.AI_FREQUENCY_PENALTY),
    ("presence_penalty", SPANDATA.AI_PRESENCE_PENALTY),
    ("raw_prompting", SPANDATA.AI_RAW_PROMPTING),
)
_PRIVATE_CHAT_PARAMS = (("tools", SPANDATA.AI_TOOLS), ("preamble", SPANDATA.AI_PREAMBLE))
_ANSWER_FIELDS = ("generation_id", "is_search_required", "finish_reason")
_PRIVATE_ANSWER_FIELDS = (
    "citations",
    "documents",
    "search_queries",
    "search_results",
    "tool_calls",
)


def _history_entry(entry: Any) -> dict[str, Any]:
    if isinstance(entry, dict):
        role, text = entry.get("role"), entry.get("message")
    else:
        role, text = getattr(entry, "role", ""), getattr(entry, "message", "")
    return {"role": str(role or "").lower(), "content": text or ""}


def _record_request(span: Any, kwargs: dict[str, Any], inputs: bool) -> None:
    if inputs:
        history = [_history_entry(entry) for entry in kwargs.get("chat_history") or ()]
        history.append({"role": "user", "content": kwargs["message"]})
        set_data_normalized(span, SPANDATA.AI_INPUT_MESSAGES, history)
        for arg, key in _PRIVATE_CHAT_PARAMS:
            if arg in kwargs:
                set_data_normalized(span, key, kwargs[arg])
    for arg, key in _CHAT_PARAMS:
        if arg in kwargs:
            set_data_normalized(span, key, kwargs[arg])
    set_data_normalized(span, SPANDATA.AI_STREAMING, False)


def _usage(span: Any, counts: Any) -> None:
    record_usage(span, counts, "input_tokens", "output_tokens", None)


def _record_answer(span: Any, answer: Any, outputs: bool) -> None:
    if outputs:
        if hasattr(answer, "text"):
            set_data_normalized(span, SPANDATA.AI_RESPONSES, [answer.text])
        for field in _PRIVATE_ANSWER_FIELDS:
            if hasattr(answer, field):
                set_data_normalized(span, "ai." + field, getattr(answer, field))
    for field in _ANSWER_FIELDS:
        if hasattr(answer, field):
            set_data_normalized(span, "ai." + field, getattr(answer, field))
    meta = getattr(answer, "meta", None)
    if meta is None:
        return
    if getattr(meta, "billed_units", None) is not None:
        _usage(span, meta.billed_units)
    elif getattr(meta, "tokens", None) is not None:
        _usage(span, meta.tokens)
    if hasattr(meta, "warnings"):
        set_data_normalized(span, SPANDATA.AI_WARNINGS, meta.warnings)


class _Stream(StreamWatcher):
    """A streamed chat: its answer comes with the stream-end event."""

    __slots__ = ("call",)

    def __init__(self, call: _Call) -> None:
        self.call = call

    def item(self, event: Any) -> None:
        if getattr(event, "event_type", None) == "stream-end":
            _record_answer(self.call.span, event.response, self.call.rules.outputs)

    def finish(self, exc_info: Any = None) -> None:
        self.call.end(exc_info)


def _begin(op: str, name: str, kwargs: dict[str, Any]) -> Optional[_Call]:
    """The call's span, entered; None when not instrumented."""
    client = get_client()
    integration = client.get_integration(CohereIntegration)
    if integration is None:
        return None
    call = _Call(client, integration)
    call.kwargs = kwargs
    call.span = sdk_start_span_function()(op=op, name=name, origin=ORIGIN)
    call.span.__enter__()
    return call


def _chat_wrapper(streaming: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def start(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Optional[_Call]:
        if not isinstance(kwargs.get("message"), str):
            return None
        try:
            return _begin(OP.COHERE_CHAT_COMPLETIONS_CREATE, "cohere.client.Chat", kwargs)
        except Exception:  # instrumentation must not break the call
            return None

    def done(call: _Call, answer: Any) -> Any:
        try:
            _record_request(call.span, call.kwargs, call.rules.inputs)
            if streaming:
                return watch(answer, _Stream(call))
            if isinstance(answer, _Lib.chat_response):
                _record_answer(call.span, answer, call.rules.outputs)
            else:
                call.span.set_data("unknown_response", True)
        except Exception:  # instrumentation must not break the call
            pass
        call.end()
        return answer

    return call_wrapper(start, done)


# -- embeddings ------------------------------------------------------------------------


def _record_texts(span: Any, texts: Any) -> None:
    if isinstance(texts, str):
        set_data_normalized(span, SPANDATA.AI_TEXTS, [texts])
    elif isinstance(texts, list) and texts and isinstance(texts[0], str):
        set_data_normalized(span, SPANDATA.AI_INPUT_MESSAGES, texts)


def _embed_call(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Optional[_Call]:
    call: Optional[_Call] = None
    try:
        call = _begin(OP.COHERE_EMBEDDINGS_CREATE, "Cohere Embedding Creation", kwargs)
        if call is None:
            return None
        if "texts" in kwargs and call.rules.inputs:
            _record_texts(call.span, kwargs["texts"])
        if "model" in kwargs:
            set_data_normalized(call.span, SPANDATA.AI_MODEL_ID, kwargs["model"])
    except Exception:  # instrumentation must not break the call
        pass
    return call


def _embedded(call: _Call, answer: Any) -> Any:
    try:
        billed = getattr(getattr(answer, "meta", None), "billed_units", None)
        tokens = getattr(billed, "input_tokens", None)
        if tokens is not None:
            call.span.set_data(SPANDATA.GEN_AI_USAGE_INPUT_TOKENS, tokens)
            call.span.set_data(SPANDATA.GEN_AI_USAGE_TOTAL_TOKENS, tokens)
    except Exception:  # instrumentation must not break the call
        pass
    call.end()
    return answer


__all__ = ["CohereIntegration"]
