"""The spans of pydantic-ai agents and what goes on them (sentry_sdk 2.75's data keys)."""

from __future__ import annotations

import contextvars
import json
from typing import Any, Optional

from tripwire._types import BLOB_DATA_SUBSTITUTE
from tripwire.ai.consts import DATA_URL_BASE64_REGEX
from tripwire.ai.utils import (
    get_modality_from_mime_type,
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

ORIGIN = "auto.ai.pydantic_ai"

# The agents whose runs are in progress in this context, innermost last, each with
# whether its run streams (a run inside a tool nests).
_agents: contextvars.ContextVar[tuple[tuple[Any, bool], ...]] = contextvars.ContextVar(
    "tripwire_pydantic_ai_agents", default=()
)


def push_agent(agent: Any, streaming: bool) -> contextvars.Token[Any]:
    return _agents.set((*_agents.get(), (agent, streaming)))


def pop_agent(token: contextvars.Token[Any]) -> None:
    _agents.reset(token)


def current_agent() -> Any:
    stack = _agents.get()
    return stack[-1][0] if stack else None


def streaming() -> bool:
    stack = _agents.get()
    return stack[-1][1] if stack else False


class Rules:
    """What the active client lets the integration send: prompts in, answers out."""

    __slots__ = ("inputs", "outputs", "tools")

    def __init__(self) -> None:
        from tripwire.integrations.pydantic_ai import PydanticAIIntegration

        client = get_client()
        options = client.options
        if has_data_collection_enabled(options):
            gen_ai = options["data_collection"]["gen_ai"]
            self.inputs = bool(gen_ai["inputs"])
            self.outputs = bool(gen_ai["outputs"])
            self.tools = self.inputs
        else:
            integration = client.get_integration(PydanticAIIntegration)
            self.inputs = self.outputs = bool(
                options.get("send_default_pii")
                and integration is not None
                and integration.include_prompts
            )
            self.tools = True  # as sentry_sdk before data_collection: always


# -- common data -----------------------------------------------------------------------


def _set_agent_name(span: Any, agent: Any) -> None:
    agent = agent or current_agent()
    name = getattr(agent, "name", None) if agent else None
    if name:
        span.set_data(SPANDATA.GEN_AI_AGENT_NAME, name)


def model_name(model: Any) -> Optional[str]:
    if not model:
        return None
    if hasattr(model, "model_name"):
        return str(model.model_name)
    if hasattr(model, "name"):
        try:
            return str(model.name())
        except Exception:
            return str(model)
    return str(model)


_SETTINGS = (
    ("max_tokens", SPANDATA.GEN_AI_REQUEST_MAX_TOKENS),
    ("temperature", SPANDATA.GEN_AI_REQUEST_TEMPERATURE),
    ("top_p", SPANDATA.GEN_AI_REQUEST_TOP_P),
    ("frequency_penalty", SPANDATA.GEN_AI_REQUEST_FREQUENCY_PENALTY),
    ("presence_penalty", SPANDATA.GEN_AI_REQUEST_PRESENCE_PENALTY),
)


def _set_model_data(span: Any, model: Any, settings: Any) -> None:
    agent = current_agent()
    if not model and agent is not None:
        model = getattr(agent, "model", None)
    if model:
        if hasattr(model, "system"):
            span.set_data(SPANDATA.GEN_AI_SYSTEM, model.system)
        name = model_name(model)
        if name:
            span.set_data(SPANDATA.GEN_AI_REQUEST_MODEL, name)
    if not settings and agent is not None:
        settings = getattr(agent, "model_settings", None)
    if not settings:
        return
    for field, key in _SETTINGS:
        # Model settings are a TypedDict (a dict when running).
        value = (
            settings.get(field) if isinstance(settings, dict) else getattr(settings, field, None)
        )
        if value is not None:
            span.set_data(key, value)


def _set_tools(span: Any, agent: Any, rules: Rules) -> None:
    toolset = getattr(agent, "_function_toolset", None) if agent else None
    if toolset is None or not rules.tools:
        return
    tools = []
    for name, tool in getattr(toolset, "tools", {}).items():
        info: dict[str, Any] = {"name": name}
        schema = getattr(tool, "function_schema", None)
        if schema is not None:
            if getattr(schema, "description", None):
                info["description"] = schema.description
            if getattr(schema, "json_schema", None):
                info["parameters"] = schema.json_schema
        tools.append(info)
    if tools:
        span.set_data(SPANDATA.GEN_AI_REQUEST_AVAILABLE_TOOLS, safe_serialize(tools))


def _set_messages(span: Any, messages: list[dict[str, Any]]) -> None:
    normalized = normalize_message_roles(messages)
    data: Any = normalized
    if should_truncate_gen_ai_input(get_client().options):
        data = truncate_and_annotate_messages(normalized, span, get_current_scope())
    set_data_normalized(span, SPANDATA.GEN_AI_REQUEST_MESSAGES, data, unpack=False)


class Lib:
    """pydantic-ai's message part classes, bound at install (None when missing)."""

    system_prompt: Any = None
    text: Any = None
    thinking: Any = None
    tool_call: Any = None
    tool_return: Any = None
    image_url: Any = None
    binary: Any = None


def _is(part: Any, cls: Any) -> bool:
    return cls is not None and isinstance(part, cls)


def _content_item(item: Any) -> Any:
    if isinstance(item, str):
        return {"type": "text", "text": item}
    if _is(item, Lib.image_url):
        url = str(item.url)
        content = BLOB_DATA_SUBSTITUTE if DATA_URL_BASE64_REGEX.match(url) else url
        return {"type": "image", "content": content}
    if _is(item, Lib.binary):
        return {
            "type": "blob",
            "modality": get_modality_from_mime_type(item.media_type),
            "mime_type": item.media_type,
            "content": BLOB_DATA_SUBSTITUTE,
        }
    return None


# -- invoke_agent ----------------------------------------------------------------------


def agent_span(agent: Any, prompt: Any, model: Any, settings: Any, streamed: bool) -> Any:
    """Start (not enter) the span of one agent run."""
    name = getattr(agent, "name", None) or "agent"
    span = sdk_start_span_function()(
        op=OP.GEN_AI_INVOKE_AGENT,
        name=f"invoke_agent {name}",
        origin=ORIGIN,
        **segment_start({SPANDATA.GEN_AI_OPERATION_NAME: "invoke_agent"}),
    )
    span.set_data(SPANDATA.GEN_AI_OPERATION_NAME, "invoke_agent")
    _set_agent_name(span, agent)
    _set_model_data(span, model, settings)
    rules = Rules()
    _set_tools(span, agent, rules)
    if not rules.inputs:
        return span
    texts = [p for p in getattr(agent, "_system_prompts", None) or () if isinstance(p, str)]
    instructions = getattr(agent, "_instructions", None)
    if isinstance(instructions, str):
        texts.append(instructions)
    elif isinstance(instructions, (list, tuple)):
        texts += [i for i in instructions if isinstance(i, str)]  # not the dynamic ones
    messages: list[dict[str, Any]] = [
        {"content": [{"text": text, "type": "text"}], "role": "system"} for text in texts
    ]
    if prompt:
        if isinstance(prompt, str):
            messages.append({"content": [{"text": prompt, "type": "text"}], "role": "user"})
        elif isinstance(prompt, list):
            content = [c for c in map(_user_item, prompt) if c is not None]
            if content:
                messages.append({"content": content, "role": "user"})
    if messages:
        _set_messages(span, messages)
    return span


def _user_item(item: Any) -> Any:
    if isinstance(item, str):
        return {"text": item, "type": "text"}
    return _content_item(item)


def agent_result(span: Any, result: Any) -> None:
    if not result:
        return
    output = getattr(result, "output", None)
    if output and Rules().outputs:
        set_data_normalized(span, SPANDATA.GEN_AI_RESPONSE_TEXT, str(output), unpack=False)
    try:
        response = result.response
        if getattr(response, "model_name", None):
            span.set_data(SPANDATA.GEN_AI_RESPONSE_MODEL, response.model_name)
    except Exception:  # a result without a response yet
        pass


# -- chat ------------------------------------------------------------------------------


def chat_span(messages: Any, model: Any, settings: Any) -> Any:
    """Start (not enter) the span of one model request."""
    given = {
        SPANDATA.GEN_AI_OPERATION_NAME: "chat",
        SPANDATA.GEN_AI_RESPONSE_STREAMING: streaming(),
    }
    span = start_run_span(OP.GEN_AI_CHAT, f"chat {model_name(model) or 'unknown'}", ORIGIN, given)
    for key, value in given.items():
        span.set_data(key, value)
    _set_agent_name(span, None)
    _set_model_data(span, model, settings)
    rules = Rules()
    _set_tools(span, current_agent(), rules)
    if messages and rules.inputs:
        _set_input(span, messages)
    return span


def _set_input(span: Any, messages: list[Any]) -> None:
    parts: list[dict[str, Any]] = []
    current: list[dict[str, Any]] = []
    for message in messages:
        parts.extend(
            {"type": "text", "content": part.content}
            for part in getattr(message, "parts", ())
            if _is(part, Lib.system_prompt)
        )
        if getattr(message, "instructions", None) is not None:
            current.append({"type": "text", "content": message.instructions})
    if parts or current:
        span.set_data(SPANDATA.GEN_AI_SYSTEM_INSTRUCTIONS, json.dumps(parts + current))
    try:
        formatted = [m for message in messages for m in _formatted(message)]
    except Exception:  # an unknown part must not lose the span
        return
    if formatted:
        _set_messages(span, formatted)


def _formatted(message: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for part in getattr(message, "parts", ()):
        if _is(part, Lib.system_prompt):
            continue
        role = "user"
        if _is(part, Lib.text) or _is(part, Lib.thinking) or _is(part, Lib.tool_call):
            role = "assistant"
        elif _is(part, Lib.tool_return):
            role = "tool"
        content: list[Any] = []
        calls = None
        call_id = None
        if _is(part, Lib.tool_call):
            call: dict[str, Any] = {}
            if hasattr(part, "tool_name"):
                call["name"] = part.tool_name
            if hasattr(part, "args"):
                call["arguments"] = safe_serialize(part.args)
            calls = [call] if call else None
        elif _is(part, Lib.tool_return):
            call_id = getattr(part, "tool_name", None)
            if hasattr(part, "content"):
                content.append({"type": "text", "text": str(part.content)})
        elif hasattr(part, "content"):
            value = part.content
            if isinstance(value, str):
                content.append({"type": "text", "text": value})
            elif isinstance(value, list):
                for item in value:
                    converted = _content_item(item)
                    content.append(converted if converted is not None else safe_serialize(item))
            else:
                content.append({"type": "text", "text": str(value)})
        if content or calls:
            entry: dict[str, Any] = {"role": role}
            if content:
                entry["content"] = content
            if calls:
                entry["tool_calls"] = calls
            if call_id:
                entry["tool_call_id"] = call_id
            out.append(entry)
    return out


_USAGE = (
    ("input_tokens", SPANDATA.GEN_AI_USAGE_INPUT_TOKENS),
    ("cache_read_tokens", SPANDATA.GEN_AI_USAGE_INPUT_TOKENS_CACHED),
    ("cache_write_tokens", SPANDATA.GEN_AI_USAGE_INPUT_TOKENS_CACHE_WRITE),
    ("output_tokens", SPANDATA.GEN_AI_USAGE_OUTPUT_TOKENS),
    ("total_tokens", SPANDATA.GEN_AI_USAGE_TOTAL_TOKENS),
)


def chat_answer(span: Any, response: Any) -> None:
    if not response:
        return
    usage = getattr(response, "usage", None)
    if usage is not None:
        for field, key in _USAGE:
            value = getattr(usage, field, None)
            if value is not None:
                span.set_data(key, value)
    span.set_data(SPANDATA.GEN_AI_RESPONSE_MODEL, response.model_name)
    if not Rules().outputs:
        return
    parts: list[dict[str, Any]] = []
    for part in getattr(response, "parts", ()):
        if _is(part, Lib.text):
            parts.append({"type": "text", "content": part.content})
        elif _is(part, Lib.thinking):
            parts.append({"type": "reasoning", "content": part.content})
        elif _is(part, Lib.tool_call):
            call: dict[str, Any] = {"type": "tool_call"}
            if hasattr(part, "tool_name"):
                call["name"] = part.tool_name
            if hasattr(part, "args"):
                call["arguments"] = safe_serialize(part.args)
            parts.append(call)
    if parts:
        span.set_data(
            SPANDATA.GEN_AI_OUTPUT_MESSAGES, json.dumps([{"role": "assistant", "parts": parts}])
        )


# -- tools -----------------------------------------------------------------------------


def tool_span(name: str, arguments: Any, agent: Any, definition: Any) -> Any:
    """Start (not enter) the span of one tool call."""
    span = start_run_span(
        OP.GEN_AI_EXECUTE_TOOL,
        f"execute_tool {name}",
        ORIGIN,
        {SPANDATA.GEN_AI_OPERATION_NAME: "execute_tool", SPANDATA.GEN_AI_TOOL_NAME: name},
    )
    span.set_data(SPANDATA.GEN_AI_OPERATION_NAME, "execute_tool")
    span.set_data(SPANDATA.GEN_AI_TOOL_NAME, name)
    if definition is not None and hasattr(definition, "description"):
        span.set_data(SPANDATA.GEN_AI_TOOL_DESCRIPTION, definition.description)
    _set_agent_name(span, agent)
    if arguments is not None and Rules().inputs:
        span.set_data(SPANDATA.GEN_AI_TOOL_INPUT, safe_serialize(arguments))
    return span


def tool_result(span: Any, result: Any) -> None:
    if result is not None and Rules().outputs:
        span.set_data(SPANDATA.GEN_AI_TOOL_OUTPUT, safe_serialize(result))
