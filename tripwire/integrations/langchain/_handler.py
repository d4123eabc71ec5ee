"""The LangChain callback handler that turns runs into ``gen_ai`` spans.

Imported only once `langchain_core` is (the handler subclasses its base class).
LangChain builds a callback manager for every run; the patched `_configure` adds one
handler to the run's local callbacks unless one is already there or inherited. A
handler opens a span when a model or tool run starts and ends it when the run ends
or fails; the span is the scope's current span meanwhile, so whatever the run does
(an HTTP request, a nested run) lands under it.
"""

from __future__ import annotations

import functools
import itertools
from collections import OrderedDict
from typing import Any, Callable, Optional

from langchain_core.callbacks import BaseCallbackHandler, BaseCallbackManager

from tripwire.ai.utils import set_data_normalized
from tripwire.capture import capture_event
from tripwire.consts import OP, SPANDATA
from tripwire.integrations._common.llm import start_run_span
from tripwire.integrations.langchain import ORIGIN, LangchainIntegration
from tripwire.integrations.langchain._data import (
    Rules,
    chat_messages,
    prompt_messages,
    record_messages,
    record_params,
    record_tools,
    record_usage,
    system_instructions,
    system_texts,
)
from tripwire.scope._current import get_client, get_current_scope


def _model_of(params: dict[str, Any]) -> Any:
    return params.get("model") or params.get("model_name") or params.get("model_id") or ""


def _params(serialized: Any, kwargs: dict[str, Any]) -> dict[str, Any]:
    """The run's invocation parameters with the model's constructor arguments over them."""
    params = dict(kwargs.get("invocation_params") or {})
    if isinstance(serialized, dict):
        params.update(serialized.get("kwargs") or {})
    return params


class TripwireLangchainCallback(BaseCallbackHandler):
    """Spans for the model and tool runs of one LangChain run tree."""

    # Called on the caller's thread and context, not in an executor: spans nest
    # under what is current where the run happens, and no thread hop per event.
    run_inline = True

    def __init__(self, max_span_map_size: Optional[int], include_prompts: bool) -> None:
        self.span_map: OrderedDict[Any, Any] = OrderedDict()
        self.max_span_map_size = max_span_map_size
        self.include_prompts = include_prompts

    # -- spans ---------------------------------------------------------------------------

    def _rules(self) -> Rules:
        return Rules(get_client().options, self.include_prompts)

    def _start(self, run_id: Any, parent_id: Any, op: str, name: str) -> Any:
        parent = self.span_map.get(parent_id) if parent_id else None
        if parent is not None:
            span = parent.start_child(op=op, name=name, origin=ORIGIN)
        else:  # a segment under streaming with no active span, as sentry_sdk's
            span = start_run_span(op, name, ORIGIN, {})
        span.__enter__()
        self.span_map[run_id] = span
        limit = self.max_span_map_size
        if limit is not None:  # the deprecated `max_spans`: the oldest open spans end
            while len(self.span_map) > limit:
                _, old = self.span_map.popitem(last=False)
                old.__exit__(None, None, None)
        return span

    def _end(self, run_id: Any) -> None:
        span = self.span_map.pop(run_id, None)
        if span is not None:
            span.__exit__(None, None, None)

    def _failed(self, run_id: Any, error: BaseException) -> None:
        span = self.span_map.pop(run_id, None) if run_id else None
        if span is None:
            return
        if isinstance(error, tuple(LangchainIntegration._ignored_exceptions)):
            span.__exit__(None, None, None)  # control flow (a graph interrupt), no error
            return
        exc_info = (type(error), error, error.__traceback__)
        try:
            client = get_client()
            if client.get_integration(LangchainIntegration) is not None:
                event, hint = client._event_from_exception(
                    exc_info, mechanism={"type": "langchain", "handled": False}
                )
                capture_event(get_current_scope(), event, hint, None, {}, built_by_sdk=True)
        except Exception:  # reporting must never break the run; the span still ends
            pass
        span.__exit__(*exc_info)

    # -- models ----------------------------------------------------------------------------

    def _model_span(
        self, op: str, operation: str, serialized: Any, run_id: Any, kwargs: dict[str, Any]
    ) -> tuple[Any, dict[str, Any], Rules]:
        params = _params(serialized, kwargs)
        model = _model_of(params)
        name = f"{operation} {model}".strip()
        span = self._start(run_id, kwargs.get("parent_run_id"), op, name)
        span.set_data(SPANDATA.GEN_AI_OPERATION_NAME, operation)
        if model:
            span.set_data(SPANDATA.GEN_AI_REQUEST_MODEL, model)
        system = params.get("_type")
        if system and isinstance(system, str):
            span.set_data(SPANDATA.GEN_AI_SYSTEM, system)
        rules = self._rules()
        record_params(span, params, rules)
        record_tools(span, params.get("tools"), rules)
        return span, params, rules

    def on_llm_start(
        self, serialized: dict[str, Any], prompts: list[str], *, run_id: Any, **kwargs: Any
    ) -> Any:
        if not run_id:
            return
        try:
            span, _, rules = self._model_span(
                OP.GEN_AI_TEXT_COMPLETION, "text_completion", serialized, run_id, kwargs
            )
            if kwargs.get("name"):
                span.set_data(SPANDATA.GEN_AI_FUNCTION_ID, kwargs["name"])
            if rules.inputs:
                messages = prompt_messages(prompts)
                record_messages(span, SPANDATA.GEN_AI_REQUEST_MESSAGES, messages, rules)
        except Exception:  # instrumentation must never break the run
            pass

    def on_chat_model_start(
        self, serialized: dict[str, Any], messages: list[list[Any]], *, run_id: Any, **kwargs: Any
    ) -> Any:
        if not run_id:
            return
        try:
            span, _, rules = self._model_span(OP.GEN_AI_CHAT, "chat", serialized, run_id, kwargs)
            _agent_and_function(span, kwargs)
            if rules.inputs:
                texts = system_texts(messages)
                if texts:
                    span.set_data(SPANDATA.GEN_AI_SYSTEM_INSTRUCTIONS, system_instructions(texts))
                chat = chat_messages(messages)
                record_messages(span, SPANDATA.GEN_AI_REQUEST_MESSAGES, chat, rules)
        except Exception:  # instrumentation must never break the run
            pass

    def on_llm_end(self, response: Any, *, run_id: Any, **kwargs: Any) -> Any:
        span = self.span_map.get(run_id) if run_id else None
        if span is None:
            return
        try:
            _record_result(span, response, self._rules())
        except Exception:  # what could be read is kept; the span ends regardless
            pass
        self._end(run_id)

    def on_llm_error(self, error: BaseException, *, run_id: Any, **kwargs: Any) -> Any:
        self._failed(run_id, error)

    # -- tools -----------------------------------------------------------------------------

    def on_tool_start(self, serialized: Any, input_str: str, *, run_id: Any, **kwargs: Any) -> Any:
        if not run_id:
            return
        try:
            serialized = serialized if isinstance(serialized, dict) else {}
            tool = serialized.get("name") or kwargs.get("name") or ""
            name = f"execute_tool {tool}".strip()
            span = self._start(run_id, kwargs.get("parent_run_id"), OP.GEN_AI_EXECUTE_TOOL, name)
            span.set_data(SPANDATA.GEN_AI_OPERATION_NAME, "execute_tool")
            span.set_data(SPANDATA.GEN_AI_TOOL_NAME, tool)
            description = serialized.get("description")
            if description is not None:
                span.set_data(SPANDATA.GEN_AI_TOOL_DESCRIPTION, description)
            _agent_and_function(span, kwargs)
            if self._rules().inputs:
                tool_input = kwargs.get("inputs", [input_str])
                set_data_normalized(span, SPANDATA.GEN_AI_TOOL_INPUT, tool_input)
        except Exception:  # instrumentation must never break the run
            pass

    def on_tool_end(self, output: Any, *, run_id: Any, **kwargs: Any) -> Any:
        span = self.span_map.get(run_id) if run_id else None
        if span is None:
            return
        try:
            if self._rules().outputs:
                set_data_normalized(span, SPANDATA.GEN_AI_TOOL_OUTPUT, output)
        except Exception:  # the span ends regardless
            pass
        self._end(run_id)

    def on_tool_error(self, error: BaseException, *, run_id: Any, **kwargs: Any) -> Any:
        self._failed(run_id, error)


def _agent_and_function(span: Any, kwargs: dict[str, Any]) -> None:
    metadata = kwargs.get("metadata")
    if isinstance(metadata, dict) and "lc_agent_name" in metadata:
        span.set_data(SPANDATA.GEN_AI_AGENT_NAME, metadata["lc_agent_name"])
    if kwargs.get("name"):
        span.set_data(SPANDATA.GEN_AI_FUNCTION_ID, kwargs["name"])


def _record_result(span: Any, response: Any, rules: Rules) -> None:
    generations = response.generations
    first = generations[0][0] if generations and generations[0] else None
    info = getattr(first, "generation_info", None)
    if isinstance(info, dict) and info.get("finish_reason") is not None:
        span.set_data(SPANDATA.GEN_AI_RESPONSE_FINISH_REASONS, [info["finish_reason"]])
    message = getattr(first, "message", None)
    if message is not None:  # a chat generation
        model = (getattr(message, "response_metadata", None) or {}).get("model_name")
        if model is not None:
            span.set_data(SPANDATA.GEN_AI_RESPONSE_MODEL, model)
        tool_calls = getattr(message, "tool_calls", None)
        if rules.outputs and tool_calls:
            set_data_normalized(span, SPANDATA.GEN_AI_RESPONSE_TOOL_CALLS, tool_calls, unpack=False)
    if rules.outputs:
        texts = [[g.text for g in batch] for batch in generations]
        set_data_normalized(span, SPANDATA.GEN_AI_RESPONSE_TEXT, texts)
    record_usage(span, response)


# -- adding the handler ------------------------------------------------------------------


def _handlers(callbacks: Any) -> Optional[list[Any]]:
    if isinstance(callbacks, BaseCallbackManager):
        return list(callbacks.handlers)
    if isinstance(callbacks, BaseCallbackHandler):
        return [callbacks]
    if isinstance(callbacks, list):
        return callbacks
    return None


def _with_handler(local: Any, inheritable: Any, integration: LangchainIntegration) -> Any:
    """`local` callbacks with a tripwire handler added, unless the run has one."""
    local = local or []
    present = _handlers(local)
    if present is None:  # a form LangChain does not document: left alone
        return local
    inherited: list[Any] = []
    if isinstance(inheritable, BaseCallbackManager):
        inherited = inheritable.handlers
    elif isinstance(inheritable, list):
        inherited = inheritable
    if any(isinstance(h, TripwireLangchainCallback) for h in itertools.chain(present, inherited)):
        return local
    handler = TripwireLangchainCallback(integration.max_spans, integration.include_prompts)
    if isinstance(local, BaseCallbackManager):
        local = local.copy()
        local.handlers = [*local.handlers, handler]
        return local
    return [*present, handler]


def wrap_configure(original: Callable[..., Any]) -> Callable[..., Any]:
    """`langchain_core.callbacks.manager._configure`, adding the handler to every run."""

    @functools.wraps(original)
    def _configure(
        callback_manager_cls: type,
        inheritable_callbacks: Any = None,
        local_callbacks: Any = None,
        *args: Any,
        **kwargs: Any,
    ) -> Any:
        integration = get_client().get_integration(LangchainIntegration)
        if integration is not None:
            try:
                local_callbacks = _with_handler(local_callbacks, inheritable_callbacks, integration)
            except Exception:  # instrumentation must never break the run
                pass
        return original(
            callback_manager_cls, inheritable_callbacks, local_callbacks, *args, **kwargs
        )

    return _configure
