"""The AI span templates of `@trace(template=...)` (sentry_sdk 2.75's `SPANTEMPLATE`).

A template names the span after the kind of AI work the function does and fills its
``gen_ai.*`` data from what can be read off the call: request parameters from the
keyword arguments, usage and response model from the result, a tool's arguments and
result when gen_ai inputs/outputs may be collected. Anything unreadable is skipped.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Callable

from tripwire import _data_collection
from tripwire._enums import SPANTEMPLATE
from tripwire.event._repr import safe_repr
from tripwire.tracing._consts import OP

_CHAT = SPANTEMPLATE.AI_CHAT.value
_AGENT = SPANTEMPLATE.AI_AGENT.value
_TOOL = SPANTEMPLATE.AI_TOOL.value

_OPS = {_CHAT: OP.GEN_AI_CHAT, _AGENT: OP.GEN_AI_INVOKE_AGENT, _TOOL: OP.GEN_AI_EXECUTE_TOOL}

# Keyword argument -> (span data key, the type its value must have to be kept).
_REQUEST_KEYS: dict[str, tuple[str, type]] = {
    "model": ("gen_ai.request.model", str),
    "model_name": ("gen_ai.request.model", str),
    "agent": ("gen_ai.agent.name", str),
    "agent_name": ("gen_ai.agent.name", str),
    "max_tokens": ("gen_ai.request.max_tokens", int),
    "frequency_penalty": ("gen_ai.request.frequency_penalty", float),
    "presence_penalty": ("gen_ai.request.presence_penalty", float),
    "temperature": ("gen_ai.request.temperature", float),
    "top_p": ("gen_ai.request.top_p", float),
    "top_k": ("gen_ai.request.top_k", int),
}
# Keyword arguments recorded as messages, with the role each stands for.
_PROMPT_ROLES = {"prompt": "user", "system_prompt": "system"}
_USAGE_KEYS = (
    ("gen_ai.usage.input_tokens", ("prompt_tokens", "input_tokens")),
    ("gen_ai.usage.output_tokens", ("completion_tokens", "output_tokens")),
    ("gen_ai.usage.total_tokens", ("total_tokens",)),
)


def template_value(template: Any) -> str:
    """The template as its plain string (`SPANTEMPLATE` members and strings alike)."""
    value = getattr(template, "value", template)
    return value if isinstance(value, str) else SPANTEMPLATE.DEFAULT.value


def is_ai(template: str) -> bool:
    return template in _OPS


def span_op(template: str) -> str:
    return _OPS.get(template, OP.FUNCTION)


def span_name(template: str, function_name: str, kwargs: Mapping[str, Any]) -> str:
    if template == _CHAT:
        for key in ("model", "model_name"):
            model = kwargs.get(key)
            if model and isinstance(model, str):
                return f"chat {model}"
        return "chat"
    if template == _AGENT:
        return f"invoke_agent {function_name}"
    if template == _TOOL:
        return f"execute_tool {function_name}"
    return function_name


def may_collect(options: Mapping[str, Any], kind: str) -> bool:
    """Whether gen_ai `kind` ("inputs" or "outputs") may be sent."""
    if _data_collection.enabled(options):
        return bool(options["data_collection"]["gen_ai"][kind])
    return bool(options.get("send_default_pii"))


def input_data(
    template: str,
    function_name: str,
    func: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: Mapping[str, Any],
    options: Mapping[str, Any],
) -> dict[str, Any]:
    """The span data known before the call."""
    collect = may_collect(options, "inputs")
    data: dict[str, Any] = {}
    if template == _AGENT:
        data = {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": function_name}
    elif template == _CHAT:
        data = {"gen_ai.operation.name": "chat"}
    elif template == _TOOL:
        data = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.name": function_name}
        doc = getattr(func, "__doc__", None)
        if doc is not None:
            data["gen_ai.tool.description"] = doc
    # Prompts passed by name were always recorded by sentry_sdk's templates; only an
    # explicit data_collection setting turns them off.
    messages = collect if _data_collection.enabled(options) else True
    prompts = []
    for key, value in kwargs.items():
        role = _PROMPT_ROLES.get(key)
        if role is not None:
            if messages and isinstance(value, str):
                prompts.append({"role": role, "content": value})
            continue
        known = _REQUEST_KEYS.get(key)
        if known is not None and value is not None and isinstance(value, known[1]):
            data[known[0]] = value
    if prompts:
        data["gen_ai.request.messages"] = safe_repr(prompts)
    if template == _TOOL and collect:
        data["gen_ai.tool.input"] = safe_repr({"args": args, "kwargs": dict(kwargs)})
    return data


def output_data(template: str, result: Any, options: Mapping[str, Any]) -> dict[str, Any]:
    """The span data read off the function's result."""
    data: dict[str, Any] = {}
    try:
        usage = _field(result, "usage")
        for source in (result, usage, _field(_field(result, "metadata"), "usage")):
            if source is not None:
                _read_usage(source, data)
        for key in ("model", "model_name"):
            model = _field(result, key)
            if isinstance(model, str):
                data["gen_ai.response.model"] = model
    except Exception:
        pass  # an odd result only costs the data it would have given
    if template == _TOOL and may_collect(options, "outputs"):
        data["gen_ai.tool.output"] = safe_repr(result)
    return data


def _read_usage(source: Any, data: dict[str, Any]) -> None:
    for target, keys in _USAGE_KEYS:
        for key in keys:
            value = _field(source, key)
            if isinstance(value, int) and not isinstance(value, bool):
                data[target] = value


def _field(source: Any, key: str) -> Any:
    if source is None:
        return None
    if isinstance(source, dict):
        return source.get(key)
    try:
        return getattr(source, key, None)
    except Exception:
        return None
