"""LangChain integration: ``gen_ai.*`` spans for the model, tool and embedding runs.

As sentry_sdk 2.75's ``langchain`` integration
(`LangchainIntegration(include_prompts=True, max_spans=None)`):

- every LangChain run gets a callback handler (`_handler`), added to the run's
  callbacks when LangChain configures them; it opens a span when a chat model
  (``gen_ai.chat`` "chat MODEL"), a completion model (``gen_ai.text_completion``) or a
  tool (``gen_ai.execute_tool`` "execute_tool NAME") starts, and ends it when the run
  ends: streamed answers too, after their last chunk, since LangChain reports the
  end of a stream when it has passed it on. Origin ``auto.ai.langchain``;
- a model span carries the model, the provider (LangChain's ``_type``), the request
  parameters, the offered tools, the finish reason, the response model and the
  token usage (input, output, total, cache read / creation, reasoning); a tool span
  the tool's name and description; both the agent name (``lc_agent_name``) and the
  run name;
- prompts, system instructions, answers, tool calls, tool inputs and outputs only
  when `data_collection`'s ``gen_ai`` inputs / outputs allow it, or, without it, with
  ``send_default_pii`` and ``include_prompts``; cut as `tripwire.ai.utils` cuts them
  when gen_ai spans go out inside their transaction;
- ``embed_documents`` / ``embed_query`` (and their async forms) of the embeddings
  classes of langchain-openai, -google-vertexai, -aws, -cohere, -mistralai,
  -huggingface and -ollama: a ``gen_ai.embeddings`` span with the model and, when
  inputs may be sent, the texts;
- a model, tool or embeddings span with no active span is, under span streaming, a
  segment of its own (`traces_sampler` sees the op and origin it starts with, and the
  operation for embeddings); in transaction mode it starts no transaction (never sent);
- a model or tool run that fails is an event (mechanism ``langchain``, unhandled) and
  its span ends ``internal_error``; the exceptions in `_ignored_exceptions` (LangGraph's
  interrupts, added by that integration) only end the span.

LangChain's legacy ``AgentExecutor`` (``langchain_classic``) is not instrumented;
LangChain 1.x agents are LangGraph graphs (see `tripwire.integrations.langgraph`).
While this integration is on, the auto-enabled OpenAI, Anthropic and Google GenAI
integrations are not (the registry's `_INTEGRATION_DEACTIVATES`), so a model call is
one span.
"""

from __future__ import annotations

import functools
import importlib.util
from types import ModuleType
from typing import Any, Callable, ClassVar, Optional

from tripwire._deprecation import deprecated
from tripwire.ai.utils import annotate_truncated_messages, set_data_normalized
from tripwire.consts import OP, SPANDATA
from tripwire.integrations import DidNotEnable, Integration
from tripwire.integrations._common._hooks import when_imported
from tripwire.integrations._common.llm import start_run_span
from tripwire.integrations._patch import patch_once
from tripwire.integrations._processors import add_internal_processor
from tripwire.integrations.langchain._data import Rules
from tripwire.scope._current import get_client
from tripwire.scope._global_processors import global_event_processors

ORIGIN = "auto.ai.langchain"
_MARK = "__tripwire_langchain__"

# The embeddings classes instrumented, by the module that exports them.
_EMBEDDINGS = {
    "langchain_openai": ("OpenAIEmbeddings", "AzureOpenAIEmbeddings"),
    "langchain_google_vertexai": ("VertexAIEmbeddings",),
    "langchain_aws": ("BedrockEmbeddings",),
    "langchain_cohere": ("CohereEmbeddings",),
    "langchain_mistralai": ("MistralAIEmbeddings",),
    "langchain_huggingface": ("HuggingFaceEmbeddings",),
    "langchain_ollama": ("OllamaEmbeddings",),
}


class LangchainIntegration(Integration):
    """``gen_ai`` spans (and error events) for LangChain's model, tool and embedding runs."""

    identifier = "langchain"
    origin = ORIGIN

    # Exceptions that end a run's span without an error event (LangGraph adds its own).
    _ignored_exceptions: ClassVar[set[type[BaseException]]] = set()

    def __init__(self, include_prompts: bool = True, max_spans: Optional[int] = None) -> None:
        """Args:
        include_prompts: Send prompts and answers (with ``send_default_pii``).
        max_spans: Deprecated: end the oldest open spans of a run beyond this many.
        """
        self.include_prompts = include_prompts
        self.max_spans = max_spans
        if max_spans is not None:
            deprecated(
                "The `max_spans` parameter of `LangchainIntegration` is deprecated and "
                "will be removed in version 3.0 of sentry-sdk."
            )

    @staticmethod
    def setup_once() -> None:
        """Add the callback handler to LangChain's runs once `langchain_core` is imported.

        Raises:
            DidNotEnable: langchain-core is not installed.
        """
        if importlib.util.find_spec("langchain_core") is None:
            raise DidNotEnable("langchain not installed")
        when_imported("langchain_core.callbacks.manager", _patch_manager)
        for module_name in _EMBEDDINGS:
            when_imported(module_name, _patch_embeddings)
        if annotate_truncated_messages not in global_event_processors:
            add_internal_processor(annotate_truncated_messages)


def _patch_manager(module: ModuleType) -> None:
    from tripwire.integrations.langchain._handler import wrap_configure  # needs langchain_core

    patch_once(module, "_configure", wrap_configure, _MARK)


def _patch_embeddings(module: ModuleType) -> None:
    for class_name in _EMBEDDINGS.get(module.__name__, ()):
        cls = getattr(module, class_name, None)
        if cls is None:
            continue
        for method in ("embed_documents", "embed_query"):
            if hasattr(cls, method):
                patch_once(cls, method, _sync_embed, _MARK)
        for method in ("aembed_documents", "aembed_query"):
            if hasattr(cls, method):
                patch_once(cls, method, _async_embed, _MARK)


# -- embeddings --------------------------------------------------------------------------


def _embedding_span(model: Any, args: tuple[Any, ...], integration: LangchainIntegration) -> Any:
    # A segment under streaming with no active span; a streamed span starts with the
    # operation, as sentry_sdk's (`traces_sampler` and `ignore_spans` see it).
    span = start_run_span(
        OP.GEN_AI_EMBEDDINGS,
        f"embeddings {model}" if model else "embeddings",
        ORIGIN,
        {SPANDATA.GEN_AI_OPERATION_NAME: "embeddings"},
    )
    span.set_data(SPANDATA.GEN_AI_OPERATION_NAME, "embeddings")
    if model:
        span.set_data(SPANDATA.GEN_AI_REQUEST_MODEL, model)
    if args and Rules(get_client().options, integration.include_prompts).inputs:
        texts = args[0] if isinstance(args[0], list) else [args[0]]
        set_data_normalized(span, SPANDATA.GEN_AI_EMBEDDINGS_INPUT, texts, unpack=False)
    return span


def _begin_embedding(obj: Any, args: tuple[Any, ...]) -> Any:
    integration = get_client().get_integration(LangchainIntegration)
    if integration is None:
        return None
    try:
        model = getattr(obj, "model", None) or getattr(obj, "model_name", None)
        return _embedding_span(model, args, integration)
    except Exception:  # instrumentation must never break the call
        return None


def _sync_embed(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def embed(self: Any, *args: Any, **kwargs: Any) -> Any:
        span = _begin_embedding(self, args)
        if span is None:
            return original(self, *args, **kwargs)
        with span:
            return original(self, *args, **kwargs)

    return embed


def _async_embed(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def embed(self: Any, *args: Any, **kwargs: Any) -> Any:
        span = _begin_embedding(self, args)
        if span is None:
            return await original(self, *args, **kwargs)
        with span:
            return await original(self, *args, **kwargs)

    return embed


__all__ = ["LangchainIntegration"]
