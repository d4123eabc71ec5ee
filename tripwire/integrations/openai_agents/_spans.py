"""The spans of an openai-agents run and what goes on them (sentry_sdk 2.75's data keys)."""

from __future__ import annotations

import json
from typing import Any, Optional

from tripwire.ai.utils import (
    normalize_message_role,
    normalize_message_roles,
    sdk_start_span_function,
    set_data_normalized,
    truncate_and_annotate_messages,
)
from tripwire.consts import OP, SPANDATA
from tripwire.integrations._common.llm import start_run_span
from tripwire.integrations._common.start_attributes import segment_start
from tripwire.scope._current import get_client, get_current_scope
from tripwire.tracing_utils import should_truncate_gen_ai_input
from tripwire.utils import has_data_collection_enabled, safe_serialize

ORIGIN = "auto.ai.openai_agents"

# The prefix of the text the library answers the model with when a tool raised.
TOOL_ERROR_PREFIX = "An error occurred while running the tool"


class Rules:
    """What the active client's options let a run send: inputs, outputs, tool definitions."""

    __slots__ = ("inputs", "outputs", "tools", "truncate")

    def __init__(self, options: dict[str, Any]) -> None:
        if has_data_collection_enabled(options):
            gen_ai = options["data_collection"]["gen_ai"]
            self.inputs = bool(gen_ai["inputs"])
            self.outputs = bool(gen_ai["outputs"])
            self.tools = self.inputs
        else:
            self.inputs = self.outputs = bool(options.get("send_default_pii"))
            self.tools = True  # as sentry_sdk before data_collection: always
        self.truncate = should_truncate_gen_ai_input(options)

    @classmethod
    def now(cls) -> Rules:
        return cls(get_client().options)


class Run:
    """One run of a runner: its workflow span, the agent whose turn it is, its span."""

    __slots__ = (
        "agent",
        "agent_span",
        "conversation_id",
        "models",
        "starting_agent",
        "streamed",
        "workflow",
    )

    def __init__(
        self, workflow: Any, starting_agent: Any, conversation_id: Any, streamed: bool
    ) -> None:
        self.workflow: Any = workflow
        self.starting_agent = starting_agent
        self.conversation_id = conversation_id or None
        self.streamed = streamed
        self.agent: Any = None  # the agent of the open invoke_agent span
        self.agent_span: Any = None
        # The model name the provider resolved, per agent (an agent may name none).
        self.models: dict[int, str] = {}

    def set_conversation(self, span: Any, agent: Any) -> None:
        # As sentry_sdk 2.75: the spans of the starting agent carry the run's
        # conversation id, not those of the agents it hands off to.
        if self.conversation_id and agent is self.starting_agent:
            span.set_data(SPANDATA.GEN_AI_CONVERSATION_ID, self.conversation_id)

    def close_workflow(self, exc_info: Any = (None, None, None)) -> None:
        """End a streamed run's workflow span (a plain run's ends with its `with`)."""
        workflow, self.workflow = self.workflow, None
        if workflow is not None:
            workflow.__exit__(*exc_info)

    def end_agent(
        self, context: Any, output: Any = None, exc_info: Any = None, agent: Any = None
    ) -> None:
        """End the open invoke_agent span: the run's usage, the output.

        `agent`: the agent the library names at this point (default: the span's).
        """
        span, self.agent_span = self.agent_span, None
        if span is None:
            return
        usage = getattr(context, "usage", None)
        if usage is not None:
            set_usage(span, usage)
        if Rules.now().outputs:
            set_data_normalized(span, SPANDATA.GEN_AI_RESPONSE_TEXT, output, unpack=False)
        self.set_conversation(span, agent if agent is not None else self.agent)
        span.__exit__(*(exc_info or (None, None, None)))


def workflow_span(agent: Any) -> Any:
    span = sdk_start_span_function()(name=f"{agent.name} workflow", origin=ORIGIN)
    span.__enter__()
    return span


# -- the agent -------------------------------------------------------------------------


def _model_name(run: Run, agent: Any) -> Optional[str]:
    model = agent.model
    if isinstance(model, str):
        return model
    if model is not None and hasattr(model, "model"):
        name: Any = model.model
        return str(name) if name is not None else None
    return run.models.get(id(agent))


def set_agent_data(span: Any, run: Run, agent: Any) -> None:
    span.set_data(SPANDATA.GEN_AI_SYSTEM, "openai")
    span.set_data(SPANDATA.GEN_AI_AGENT_NAME, agent.name)
    settings = agent.model_settings
    if settings.max_tokens:
        span.set_data(SPANDATA.GEN_AI_REQUEST_MAX_TOKENS, settings.max_tokens)
    model = _model_name(run, agent)
    if model:
        span.set_data(SPANDATA.GEN_AI_REQUEST_MODEL, model)
    for value, key in (
        (settings.presence_penalty, SPANDATA.GEN_AI_REQUEST_PRESENCE_PENALTY),
        (settings.temperature, SPANDATA.GEN_AI_REQUEST_TEMPERATURE),
        (settings.top_p, SPANDATA.GEN_AI_REQUEST_TOP_P),
        (settings.frequency_penalty, SPANDATA.GEN_AI_REQUEST_FREQUENCY_PENALTY),
    ):
        if value:
            span.set_data(key, value)


def set_usage(span: Any, usage: Any) -> None:
    """The five token counts of an agents `Usage` or an OpenAI `ResponseUsage`."""
    span.set_data(SPANDATA.GEN_AI_USAGE_INPUT_TOKENS, usage.input_tokens)
    span.set_data(
        SPANDATA.GEN_AI_USAGE_INPUT_TOKENS_CACHED, usage.input_tokens_details.cached_tokens
    )
    span.set_data(SPANDATA.GEN_AI_USAGE_OUTPUT_TOKENS, usage.output_tokens)
    span.set_data(
        SPANDATA.GEN_AI_USAGE_OUTPUT_TOKENS_REASONING,
        usage.output_tokens_details.reasoning_tokens,
    )
    span.set_data(SPANDATA.GEN_AI_USAGE_TOTAL_TOKENS, usage.total_tokens)


def _set_messages(span: Any, messages: list[Any], rules: Rules) -> None:
    normalized = normalize_message_roles(messages)
    data: Any = normalized
    if rules.truncate:
        data = truncate_and_annotate_messages(normalized, span, get_current_scope())
    if data is not None:
        set_data_normalized(span, SPANDATA.GEN_AI_REQUEST_MESSAGES, data, unpack=False)


def _text_message(role: str, value: Any) -> dict[str, Any]:
    text = value if isinstance(value, str) else safe_serialize(value)
    return {"content": [{"text": text, "type": "text"}], "role": role}


def agent_span(run: Run, agent: Any, original_input: Any) -> Any:
    """Start and enter the invoke_agent span of `agent`'s turn."""
    span = sdk_start_span_function()(
        op=OP.GEN_AI_INVOKE_AGENT,
        name=f"invoke_agent {agent.name}",
        origin=ORIGIN,
        **segment_start({SPANDATA.GEN_AI_OPERATION_NAME: "invoke_agent"}),
    )
    span.__enter__()
    span.set_data(SPANDATA.GEN_AI_OPERATION_NAME, "invoke_agent")
    rules = Rules.now()
    if rules.inputs:
        messages = []
        if agent.instructions:
            messages.append(_text_message("system", agent.instructions))
        if original_input is not None:
            messages.append(_text_message("user", original_input))
        if messages:
            _set_messages(span, messages, rules)
    set_agent_data(span, run, agent)
    if run.streamed:
        span.set_data(SPANDATA.GEN_AI_RESPONSE_STREAMING, True)
    return span


# -- model calls -----------------------------------------------------------------------

# Hosted tools by the class name the library gives them, and their definition's type.
_HOSTED_TOOLS = (
    ("WebSearchTool", "web_search"),
    ("FileSearchTool", "file_search"),
    ("ComputerTool", "computer"),
    ("CustomTool", "custom"),
    ("HostedMCPTool", "mcp"),
    ("ApplyPatchTool", "apply_patch"),
    ("ShellTool", "shell"),
    ("ImageGenerationTool", "image_generation"),
    ("CodeInterpreterTool", "code_interpreter"),
    ("LocalShellTool", "local_shell"),
    ("ToolSearchTool", "tool_search"),
    ("ProgrammaticToolCallingTool", "programmatic_tool_calling"),
)


def tool_definitions(tools: Any, lib: Any) -> list[dict[str, Any]]:
    """The agent's tools as sentry_sdk's ``gen_ai.tool.definitions`` entries."""
    out: list[dict[str, Any]] = []
    if not isinstance(tools, list):
        return out
    for tool in tools:
        if isinstance(tool, lib.FunctionTool):
            out.append(
                {
                    "type": "function",
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": tool.params_json_schema,
                }
            )
            continue
        for class_name, kind in _HOSTED_TOOLS:
            cls = getattr(lib, class_name, None)
            if cls is not None and isinstance(tool, cls):
                definition = {"type": kind, "name": tool.name}
                if kind == "custom":
                    definition["description"] = tool.description
                out.append(definition)
                break
    return out


def _is_system(message: Any) -> bool:
    return (
        isinstance(message, dict)
        and message.get("role") == "system"
        and message.get("type", "message") == "message"
    )


def _system_parts(messages: list[Any]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for message in messages:
        if not _is_system(message) or message.get("content") is None:
            continue
        content = message["content"]
        if isinstance(content, str):
            parts.append({"type": "text", "content": content})
        elif isinstance(content, list):
            parts.extend(
                {"type": "text", "content": part["text"]}
                for part in content
                if isinstance(part, dict)
                and part.get("type") == "input_text"
                and part.get("text") is not None
            )
    return parts


def _request_messages(messages: list[Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for message in messages:
        if not isinstance(message, dict) or _is_system(message):
            continue
        if "role" in message:
            content = message.get("content")
            out.append(
                {
                    "role": normalize_message_role(message["role"]),
                    "content": [{"type": "text", "text": content}]
                    if isinstance(content, str)
                    else content,
                }
            )
        elif message.get("type") == "function_call":
            out.append({"role": "assistant", "content": [message]})
        elif message.get("type") == "function_call_output":
            out.append({"role": "tool", "content": [message]})
    return out


def chat_span(run: Run, agent: Any, request: dict[str, Any], lib: Any) -> Any:
    """Start (not enter) the span of one model call; `request` has the call's arguments."""
    model = agent.model
    name: Any = run.models.get(id(agent))
    if model:
        name = model.model if hasattr(model, "model") else model
    span = start_run_span(
        OP.GEN_AI_CHAT, f"chat {name}", ORIGIN, {SPANDATA.GEN_AI_OPERATION_NAME: "chat"}
    )
    span.set_data(SPANDATA.GEN_AI_OPERATION_NAME, "chat")
    set_agent_data(span, run, agent)
    rules = Rules.now()
    if rules.tools:
        span.set_data(
            SPANDATA.GEN_AI_TOOL_DEFINITIONS, json.dumps(tool_definitions(agent.tools, lib))
        )
    if not rules.inputs:
        return span
    messages = request.get("input", [])
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    if not isinstance(messages, list):
        messages = []
    parts: list[dict[str, Any]] = []
    instructions = request.get("system_instructions")
    if instructions is not None:
        parts.append({"type": "text", "content": instructions})
    parts += _system_parts(messages)
    if parts:
        span.set_data(SPANDATA.GEN_AI_SYSTEM_INSTRUCTIONS, json.dumps(parts))
    _set_messages(span, _request_messages(messages), rules)
    return span


def _dump(item: Any) -> Any:
    return item.model_dump() if hasattr(item, "model_dump") else item


def chat_answer(
    span: Any, run: Run, agent: Any, response: Any, response_model: Optional[str]
) -> None:
    """Record a model call's answer (an agents `ModelResponse` or an OpenAI `Response`)."""
    usage = getattr(response, "usage", None)
    if usage:
        set_usage(span, usage)
    output = getattr(response, "output", None)
    if output and Rules.now().outputs:
        tools: list[Any] = []
        texts: list[Any] = []
        for item in output:
            kind = getattr(item, "type", None)
            if kind == "function_call":
                tools.append(_dump(item))
            elif kind == "message":
                for part in item.content:
                    text = getattr(part, "text", _MISSING)
                    texts.append(_dump(part) if text is _MISSING else text)
        if tools:
            span.set_data(SPANDATA.GEN_AI_RESPONSE_TOOL_CALLS, safe_serialize(tools))
        if texts:
            set_data_normalized(span, SPANDATA.GEN_AI_RESPONSE_TEXT, texts)
    if response_model is None and getattr(response, "model", None):
        response_model = str(response.model)
    if response_model is not None:
        span.set_data(SPANDATA.GEN_AI_RESPONSE_MODEL, response_model)
    run.set_conversation(span, agent)


_MISSING: Any = object()


# -- tools and handoffs ----------------------------------------------------------------


def tool_span(tool: Any, arguments: Any) -> Any:
    """Start and enter the span of one function tool run."""
    given = {
        SPANDATA.GEN_AI_OPERATION_NAME: "execute_tool",
        SPANDATA.GEN_AI_TOOL_NAME: tool.name,
        SPANDATA.GEN_AI_TOOL_DESCRIPTION: tool.description,
    }
    span = start_run_span(OP.GEN_AI_EXECUTE_TOOL, f"execute_tool {tool.name}", ORIGIN, given)
    span.__enter__()
    span.set_data(SPANDATA.GEN_AI_OPERATION_NAME, "execute_tool")
    span.set_data(SPANDATA.GEN_AI_TOOL_NAME, tool.name)
    span.set_data(SPANDATA.GEN_AI_TOOL_DESCRIPTION, tool.description)
    if Rules.now().inputs:
        span.set_data(SPANDATA.GEN_AI_TOOL_INPUT, arguments)
    return span


def end_tool_span(span: Any, run: Run, agent: Any, result: Any) -> None:
    set_agent_data(span, run, agent)
    if isinstance(result, str) and result.startswith(TOOL_ERROR_PREFIX):
        span.set_status("internal_error")
    if Rules.now().outputs:
        span.set_data(SPANDATA.GEN_AI_TOOL_OUTPUT, result)
    run.set_conversation(span, agent)
    span.__exit__(None, None, None)


def handoff_span(run: Run, from_agent: Any, to_name: str) -> None:
    """The (instant) span of a handoff, under the handing agent's span."""
    with start_run_span(
        OP.GEN_AI_HANDOFF,
        f"handoff from {from_agent.name} to {to_name}",
        ORIGIN,
        {SPANDATA.GEN_AI_OPERATION_NAME: "handoff"},
    ) as span:
        span.set_data(SPANDATA.GEN_AI_OPERATION_NAME, "handoff")
        run.set_conversation(span, from_agent)
