"""LangGraph integration: agent spans for compiling and invoking graphs.

As sentry_sdk 2.75's ``langgraph`` integration (`LanggraphIntegration(include_prompts=True)`):

- `StateGraph.compile` (LangChain 1.x's `create_agent` compiles one): a span
  ``gen_ai.create_agent`` "create_agent NAME" with the graph's name and the tools of
  its ``tools`` node (not when spans are streamed);
- `Pregel.invoke` / `ainvoke`, which every compiled graph runs on: a span
  ``gen_ai.invoke_agent`` "invoke_agent NAME" (a transaction when no transaction is
  running), with the graph's name as agent and pipeline name; the model and tool
  spans of the LangChain integration nest under it. From the messages the run added
  to the state: the token usage, the response model and, when outputs may be sent,
  the last answer and the tool calls; the input messages when inputs may be sent.
  Origin ``auto.ai.langgraph``. The streaming methods are left alone: LangGraph's
  invoke runs through them, and a span for each would count the run twice;
- LangGraph's interrupts (`GraphBubbleUp`) end a LangChain run span without an event.

A run that fails ends its span ``internal_error``; the event comes from the
LangChain run that failed.
"""

from __future__ import annotations

import functools
import importlib.util
from types import ModuleType
from typing import Any, Callable, Optional

from tripwire.ai.utils import normalize_message_roles, sdk_start_span_function, set_data_normalized
from tripwire.consts import OP, SPANDATA
from tripwire.integrations import DidNotEnable, Integration
from tripwire.integrations._common._hooks import when_imported
from tripwire.integrations._common.start_attributes import segment_start
from tripwire.integrations._patch import patch_once
from tripwire.integrations.langchain import LangchainIntegration
from tripwire.integrations.langchain._data import Rules, record_messages
from tripwire.scope._current import get_client
from tripwire.tracing._api import sdk_start_span
from tripwire.tracing._sampling import has_span_streaming_enabled
from tripwire.utils import safe_serialize

ORIGIN = "auto.ai.langgraph"
_MARK = "__tripwire_langgraph__"


class LanggraphIntegration(Integration):
    """``gen_ai`` agent spans for LangGraph graphs."""

    identifier = "langgraph"
    origin = ORIGIN

    def __init__(self, include_prompts: bool = True) -> None:
        """Args:
        include_prompts: Send input messages and answers (with ``send_default_pii``).
        """
        self.include_prompts = include_prompts

    @staticmethod
    def setup_once() -> None:
        """Patch the graph classes once `langgraph` is imported.

        Raises:
            DidNotEnable: langgraph is not installed.
        """
        if importlib.util.find_spec("langgraph") is None:
            raise DidNotEnable("langgraph not installed")
        when_imported("langgraph.errors", _ignore_interrupts)
        when_imported("langgraph.graph", _patch_graph)
        when_imported("langgraph.pregel", _patch_pregel)


def _ignore_interrupts(module: ModuleType) -> None:
    bubble_up = getattr(module, "GraphBubbleUp", None)
    if bubble_up is not None:
        LangchainIntegration._ignored_exceptions.add(bubble_up)


def _patch_graph(module: ModuleType) -> None:
    state_graph = getattr(module, "StateGraph", None)
    if state_graph is not None:
        patch_once(state_graph, "compile", _wrap_compile, _MARK)


def _patch_pregel(module: ModuleType) -> None:
    pregel = getattr(module, "Pregel", None)
    if pregel is None:
        return
    if hasattr(pregel, "invoke"):
        patch_once(pregel, "invoke", _wrap_invoke, _MARK)
    if hasattr(pregel, "ainvoke"):
        patch_once(pregel, "ainvoke", _wrap_ainvoke, _MARK)


# -- compile -----------------------------------------------------------------------------


def _tool_names(compiled: Any) -> Optional[list[str]]:
    get_graph = getattr(compiled, "get_graph", None)
    if not callable(get_graph):
        return None
    nodes = getattr(get_graph(), "nodes", None)
    if not nodes or not isinstance(nodes, dict):
        return None
    node = nodes.get("tools")
    data = getattr(node, "data", None) if node else None
    if data and hasattr(data, "tools_by_name"):
        return list(data.tools_by_name.keys())
    return None


def _describe_compiled(span: Any, compiled: Any, kwargs: dict[str, Any], rules: Rules) -> None:
    name = getattr(compiled, "name", None)
    span.set_data(SPANDATA.GEN_AI_OPERATION_NAME, "create_agent")
    span.set_data(SPANDATA.GEN_AI_AGENT_NAME, name)
    span.description = f"create_agent {name}" if name else "create_agent"
    if kwargs.get("model") is not None:
        span.set_data(SPANDATA.GEN_AI_REQUEST_MODEL, kwargs["model"])
    tools = _tool_names(compiled)
    # The tool names are sent unless data_collection withholds inputs.
    if tools is not None and (rules.inputs or not rules.collection):
        span.set_data(SPANDATA.GEN_AI_REQUEST_AVAILABLE_TOOLS, tools)


def _wrap_compile(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def compile(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = get_client()
        integration = client.get_integration(LanggraphIntegration)
        if integration is None or has_span_streaming_enabled(client.options):
            return original(self, *args, **kwargs)
        try:
            span = sdk_start_span(op=OP.GEN_AI_CREATE_AGENT, origin=ORIGIN)
        except Exception:  # instrumentation must never break the call
            return original(self, *args, **kwargs)
        with span:
            compiled = original(self, *args, **kwargs)
            try:
                rules = Rules(client.options, integration.include_prompts)
                _describe_compiled(span, compiled, kwargs, rules)
            except Exception:  # the graph is returned regardless
                pass
            return compiled

    return compile


# -- invoke ------------------------------------------------------------------------------


def _graph_name(graph: Any) -> Optional[str]:
    for attr in ("name", "graph_name", "__name__", "_name"):
        name = getattr(graph, attr, None)
        if name and isinstance(name, str):
            return name
    return None


def _message(message: Any) -> Optional[dict[str, Any]]:
    if not hasattr(message, "content"):
        return None
    parsed = {"role": getattr(message, "type", None), "content": message.content}
    for attr in ("name", "tool_calls", "function_call", "tool_call_id", "response_metadata"):
        value = getattr(message, attr, None)
        if value is not None:
            parsed[attr] = value
    return parsed


def _messages(state: Any) -> Optional[list[dict[str, Any]]]:
    """The state's messages as dicts (role = LangChain's type), None without any."""
    if not state:
        return None
    messages: Any = None
    if isinstance(state, dict):
        messages = state.get("messages")
    elif hasattr(state, "messages"):
        messages = state.messages
    elif callable(getattr(state, "get", None)):
        try:
            messages = state.get("messages")
        except Exception:
            pass
    if not messages or not isinstance(messages, (list, tuple)):
        return None
    out = []
    for message in messages:
        try:
            parsed = _message(message)
        except Exception:  # one odd message must not hide the others
            parsed = None
        if parsed:
            out.append(parsed)
    return out or None


class _Run:
    """One graph invocation: its span, and what its input was."""

    __slots__ = ("inputs", "name", "rules", "span")

    def __init__(self, graph: Any, integration: LanggraphIntegration) -> None:
        self.name = name = _graph_name(graph)
        self.rules = Rules(get_client().options, integration.include_prompts)
        self.span = sdk_start_span_function()(
            op=OP.GEN_AI_INVOKE_AGENT,
            name=f"invoke_agent {name}" if name else "invoke_agent",
            origin=ORIGIN,
            # A streamed span starts with it, as sentry_sdk's (`traces_sampler` and
            # `ignore_spans` see it).
            **segment_start({SPANDATA.GEN_AI_OPERATION_NAME: "invoke_agent"}),
        )
        self.inputs: Optional[list[dict[str, Any]]] = None

    def begin(self, args: tuple[Any, ...]) -> None:
        span = self.span
        name = self.name
        if name:
            span.set_data(SPANDATA.GEN_AI_PIPELINE_NAME, name)
            span.set_data(SPANDATA.GEN_AI_AGENT_NAME, name)
        span.set_data(SPANDATA.GEN_AI_OPERATION_NAME, "invoke_agent")
        if args:
            self.inputs = _messages(args[0])
            if self.inputs and self.rules.inputs:
                messages = normalize_message_roles(self.inputs)
                record_messages(span, SPANDATA.GEN_AI_REQUEST_MESSAGES, messages, self.rules)

    def finished(self, result: Any) -> None:
        """Record what the run added to the state's messages."""
        outputs = _messages(result)
        if not outputs:
            return
        added = outputs[len(self.inputs) :] if self.inputs else outputs
        if not added:
            return
        span = self.span
        _record_usage(span, added)
        model = (added[-1].get("response_metadata") or {}).get("model_name")
        if model is not None:
            set_data_normalized(span, SPANDATA.GEN_AI_RESPONSE_MODEL, model)
        if not self.rules.outputs:
            return
        answer = _last_answer(added)
        set_data_normalized(span, SPANDATA.GEN_AI_RESPONSE_TEXT, answer if answer else added)
        tool_calls = [
            call
            for message in added
            if isinstance(message.get("tool_calls"), list)
            for call in message["tool_calls"]
        ]
        if tool_calls:
            set_data_normalized(
                span, SPANDATA.GEN_AI_RESPONSE_TOOL_CALLS, safe_serialize(tool_calls), unpack=False
            )


def _last_answer(messages: list[dict[str, Any]]) -> Optional[str]:
    for message in reversed(messages):
        if message.get("role") in ("assistant", "ai"):
            content = message.get("content")
            if content and isinstance(content, str):
                return content
    return None


def _record_usage(span: Any, messages: list[dict[str, Any]]) -> None:
    inputs = outputs = total = 0
    for message in messages:
        usage = (message.get("response_metadata") or {}).get("token_usage")
        if not usage:
            continue
        inputs += int(usage.get("prompt_tokens", 0))
        outputs += int(usage.get("completion_tokens", 0))
        total += int(usage.get("total_tokens", 0))
    if inputs > 0:
        span.set_data(SPANDATA.GEN_AI_USAGE_INPUT_TOKENS, inputs)
    if outputs > 0:
        span.set_data(SPANDATA.GEN_AI_USAGE_OUTPUT_TOKENS, outputs)
    if total > 0:
        span.set_data(SPANDATA.GEN_AI_USAGE_TOTAL_TOKENS, total)


def _begin(graph: Any, args: tuple[Any, ...]) -> Optional[_Run]:
    integration = get_client().get_integration(LanggraphIntegration)
    if integration is None:
        return None
    try:
        run = _Run(graph, integration)
    except Exception:  # instrumentation must never break the call
        return None
    run.span.__enter__()
    try:
        run.begin(args)
    except Exception:
        pass
    return run


def _finish(run: _Run, result: Any) -> None:
    try:
        run.finished(result)
    except Exception:  # the span ends regardless
        pass


def _wrap_invoke(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def invoke(self: Any, *args: Any, **kwargs: Any) -> Any:
        run = _begin(self, args)
        if run is None:
            return original(self, *args, **kwargs)
        try:
            result = original(self, *args, **kwargs)
            _finish(run, result)
        except BaseException as exc:
            run.span.__exit__(type(exc), exc, exc.__traceback__)
            raise
        run.span.__exit__(None, None, None)
        return result

    return invoke


def _wrap_ainvoke(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def ainvoke(self: Any, *args: Any, **kwargs: Any) -> Any:
        run = _begin(self, args)
        if run is None:
            return await original(self, *args, **kwargs)
        try:
            result = await original(self, *args, **kwargs)
            _finish(run, result)
        except BaseException as exc:
            run.span.__exit__(type(exc), exc, exc.__traceback__)
            raise
        run.span.__exit__(None, None, None)
        return result

    return ainvoke


__all__ = ["LanggraphIntegration"]
