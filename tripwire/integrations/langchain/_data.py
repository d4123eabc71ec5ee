"""What the LangChain and LangGraph spans carry: data rules, tools, messages, token usage.

Plain functions over the objects LangChain hands its callbacks (read by attribute or
key, never by type), so this module imports nothing of LangChain.
"""

from __future__ import annotations

import json
from typing import Any, Optional

from tripwire.ai.utils import (
    GEN_AI_ALLOWED_MESSAGE_ROLES,
    normalize_message_roles,
    set_data_normalized,
    transform_content_part,
    truncate_and_annotate_messages,
)
from tripwire.consts import SPANDATA
from tripwire.scope._current import get_current_scope
from tripwire.tracing_utils import should_truncate_gen_ai_input
from tripwire.utils import has_data_collection_enabled


class Rules:
    """What one client's options let a gen_ai span carry."""

    __slots__ = ("collection", "inputs", "outputs", "truncate")

    def __init__(self, options: dict[str, Any], include_prompts: bool) -> None:
        # With `data_collection` configured it alone decides; before it, prompts and
        # answers needed `send_default_pii` and the integration's `include_prompts`.
        self.collection = has_data_collection_enabled(options)
        if self.collection:
            gen_ai = options["data_collection"]["gen_ai"]
            self.inputs = bool(gen_ai["inputs"])
            self.outputs = bool(gen_ai["outputs"])
        else:
            self.inputs = self.outputs = bool(options.get("send_default_pii") and include_prompts)
        self.truncate = should_truncate_gen_ai_input(options)


# (class, name) -> whether instances may have the attribute. A pydantic model
# (LangChain's results and messages) raises slowly (~7 µs) for a name it lacks.
_KNOWN: dict[tuple[type, str], bool] = {}


def _may_have(cls: type, key: str) -> bool:
    fields = getattr(cls, "__pydantic_fields__", None)
    if not isinstance(fields, dict) or key in fields:
        return True
    return any(key in klass.__dict__ for klass in cls.__mro__)


def value_of(source: Any, key: str) -> Any:
    """`source[key]` for a dict, else its attribute `key`; None when absent."""
    if isinstance(source, dict):
        return source.get(key)
    known = _KNOWN.get((type(source), key))
    if known is None:
        known = _KNOWN[(type(source), key)] = _may_have(type(source), key)
    if not known:
        return None
    try:
        return getattr(source, key, None)
    except Exception:
        return None


def record_messages(span: Any, key: str, messages: list[Any], rules: Rules) -> None:
    """Set `messages` as span data `key`, cut to the last one when inside a transaction."""
    data: Optional[list[Any]] = messages
    if rules.truncate:
        data = truncate_and_annotate_messages(messages, span, get_current_scope())
    if data is not None:
        set_data_normalized(span, key, data, unpack=False)


# -- request parameters and tools --------------------------------------------------------

# Invocation parameters recorded as they are. `function_call` / `tool_calls` (OpenAI's
# legacy names) go out under the response's tool calls, as sentry_sdk 2.75 sends them.
PARAMS = (
    ("frequency_penalty", SPANDATA.GEN_AI_REQUEST_FREQUENCY_PENALTY),
    ("function_call", SPANDATA.GEN_AI_RESPONSE_TOOL_CALLS),
    ("max_tokens", SPANDATA.GEN_AI_REQUEST_MAX_TOKENS),
    ("presence_penalty", SPANDATA.GEN_AI_REQUEST_PRESENCE_PENALTY),
    ("temperature", SPANDATA.GEN_AI_REQUEST_TEMPERATURE),
    ("tool_calls", SPANDATA.GEN_AI_RESPONSE_TOOL_CALLS),
    ("top_k", SPANDATA.GEN_AI_REQUEST_TOP_K),
    ("top_p", SPANDATA.GEN_AI_REQUEST_TOP_P),
)


def record_params(span: Any, params: dict[str, Any], rules: Rules) -> None:
    for name, key in PARAMS:
        value = params.get(name)
        if value is None:
            continue
        if key == SPANDATA.GEN_AI_RESPONSE_TOOL_CALLS and rules.collection and not rules.inputs:
            continue  # these come with the request: an input under data_collection
        set_data_normalized(span, key, value, unpack=False)


def _tool_entry(tool: Any) -> Optional[dict[str, Any]]:
    if isinstance(tool, dict):
        function = tool.get("function")
        if isinstance(function, dict):
            name = function.get("name")
            return {"name": name, "description": function.get("description")} if name else None
        if "name" in tool:
            return {"name": tool.get("name"), "description": tool.get("description")}
        name = tool.get("tool_name") or tool.get("function_name")
        if not name:
            return None
        return {"name": name, "description": tool.get("description") or tool.get("desc")}
    if hasattr(tool, "name"):
        name = getattr(tool, "name", None)
        description = getattr(tool, "description", None) or getattr(tool, "desc", None)
        return {"name": name, "description": description} if name else None
    if hasattr(tool, "__name__"):
        return {"name": tool.__name__, "description": getattr(tool, "__doc__", None)}
    text = str(tool)
    return {"name": text, "description": None} if text else None


def simplify_tools(tools: Any) -> Optional[list[dict[str, Any]]]:
    """Each tool as ``{"name", "description"}``, whatever form it was given in."""
    if not tools or not isinstance(tools, (list, tuple)):
        return None
    out = []
    for tool in tools:
        try:
            entry = _tool_entry(tool)
        except Exception:  # one odd tool must not hide the others
            entry = None
        if entry is not None:
            out.append(entry)
    return out or None


def record_tools(span: Any, tools: Any, rules: Rules) -> None:
    """The tools offered to the model (always, unless data_collection says no inputs)."""
    if tools is None:
        return
    key = SPANDATA.GEN_AI_REQUEST_AVAILABLE_TOOLS
    if rules.collection:
        if not rules.inputs:
            return
        key = SPANDATA.GEN_AI_TOOL_DEFINITIONS
    simplified = simplify_tools(tools)
    if simplified:
        set_data_normalized(span, key, simplified, unpack=False)


# -- messages ----------------------------------------------------------------------------


def _content(content: Any) -> Any:
    """Message content with inline images, audio and files in the gen_ai part format."""
    if isinstance(content, (list, tuple)):
        out = []
        for block in content:
            if isinstance(block, dict):
                transformed = transform_content_part(block)
                out.append(block if transformed is None else transformed)
            else:
                out.append(block)
        return out
    return content


def system_texts(batches: Any) -> list[str]:
    """The texts of the system messages of every batch."""
    texts: list[str] = []
    for batch in batches:
        for message in batch:
            if getattr(message, "type", None) != "system":
                continue
            content = message.content
            if isinstance(content, str):
                texts.append(content)
            elif isinstance(content, list):
                for item in content:
                    if isinstance(item, str):
                        texts.append(item)
                    elif isinstance(item, dict) and item.get("type") == "text":
                        text = item.get("text")
                        if isinstance(text, str):
                            texts.append(text)
    return texts


def system_instructions(texts: list[str]) -> str:
    return json.dumps([{"type": "text", "content": text} for text in texts])


def chat_messages(batches: Any) -> list[Any]:
    """The batches' non-system messages as gen_ai messages (role, content, extra fields)."""
    out = []
    for batch in batches:
        for message in batch:
            if message.type == "system":
                continue
            parsed = {"role": message.type, "content": _content(message.content)}
            parsed.update(message.additional_kwargs)
            out.append(parsed)
    return normalize_message_roles(out)


def prompt_messages(prompts: list[str]) -> list[dict[str, Any]]:
    """A completion model's prompts as user messages."""
    return [
        {"role": GEN_AI_ALLOWED_MESSAGE_ROLES.USER, "content": {"type": "text", "text": prompt}}
        for prompt in prompts
    ]


# -- token usage -------------------------------------------------------------------------

_USAGE_NAMES = ("usage", "token_usage", "usage_metadata")


def _usage_of(obj: Any) -> Any:
    """The first usage record found on the object's message, its llm_output, or itself."""
    for holder in (value_of(obj, "message"), value_of(obj, "llm_output")):
        if holder is None:
            continue
        for name in _USAGE_NAMES:
            usage = value_of(holder, name)
            if usage is not None:
                return usage
    for name in _USAGE_NAMES:
        usage = value_of(obj, name)
        if usage is not None:
            return usage
    return None


def _counts(usage: Any) -> tuple[Any, Any, Any]:
    if not usage:
        return None, None, None
    inputs = value_of(usage, "prompt_tokens") or value_of(usage, "input_tokens")
    outputs = value_of(usage, "completion_tokens") or value_of(usage, "output_tokens")
    return inputs, outputs, value_of(usage, "total_tokens")


def _detail(details: Any, name: str, total: Optional[int]) -> Optional[int]:
    value = details.get(name) if isinstance(details, dict) else None
    if isinstance(value, int):
        return (total or 0) + value
    return total


class _Usage:
    """Token counts summed over the first generation of every batch."""

    __slots__ = ("cache_creation", "cache_read", "inputs", "outputs", "reasoning", "total")

    def __init__(self, generations: Any) -> None:
        inputs = outputs = total = 0
        self.cache_read: Optional[int] = None
        self.cache_creation: Optional[int] = None
        self.reasoning: Optional[int] = None
        for batch in generations:
            if not batch:
                continue
            first = batch[0]
            i, o, t = _counts(_usage_of(first))
            inputs += i if isinstance(i, int) else 0
            outputs += o if isinstance(o, int) else 0
            total += t if isinstance(t, int) else 0
            # Provider-neutral details, on chat generations' AI messages.
            message = getattr(first, "message", None)
            metadata = getattr(message, "usage_metadata", None)
            if getattr(message, "type", None) not in ("ai", "AIMessageChunk"):
                continue
            if not isinstance(metadata, dict):
                continue
            details = metadata.get("input_token_details")
            self.cache_read = _detail(details, "cache_read", self.cache_read)
            self.cache_creation = _detail(details, "cache_creation", self.cache_creation)
            self.reasoning = _detail(
                metadata.get("output_token_details"), "reasoning", self.reasoning
            )
        self.inputs = inputs or None
        self.outputs = outputs or None
        self.total = total or None


def record_usage(span: Any, response: Any) -> None:
    """Token usage of an LLMResult: the generations' counts, else the provider's record."""
    inputs, outputs, total = _counts(_usage_of(response))
    cache_read = cache_creation = reasoning = None
    generations = getattr(response, "generations", None)
    if generations is not None:
        usage = _Usage(generations)
        inputs = usage.inputs if usage.inputs is not None else inputs
        outputs = usage.outputs if usage.outputs is not None else outputs
        total = usage.total if usage.total is not None else total
        cache_read, cache_creation = usage.cache_read, usage.cache_creation
        reasoning = usage.reasoning
    for key, value in (
        (SPANDATA.GEN_AI_USAGE_INPUT_TOKENS, inputs),
        (SPANDATA.GEN_AI_USAGE_OUTPUT_TOKENS, outputs),
        (SPANDATA.GEN_AI_USAGE_TOTAL_TOKENS, total),
        (SPANDATA.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS, cache_read),
        (SPANDATA.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS, cache_creation),
        (SPANDATA.GEN_AI_USAGE_REASONING_OUTPUT_TOKENS, reasoning),
    ):
        if value is not None:
            span.set_data(key, value)
