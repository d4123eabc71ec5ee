"""``gen_ai.execute_tool`` spans for Python functions given to Gemini as tools.

`google-genai` calls such functions itself (automatic function calling); the config
handed to the library is a copy whose functions are wrapped, so each call is a span
"execute_tool NAME" with its input and output (as sentry_sdk 2.75 records them: with
no data-collection rule) and an exception from the tool an event.
"""

from __future__ import annotations

import copy
import functools
import inspect
import sys
from typing import Any, Callable, Optional

from tripwire.consts import OP, SPANDATA
from tripwire.integrations._common.start_attributes import child_start
from tripwire.integrations._common.unhandled import capture_unhandled
from tripwire.scope._current import get_client
from tripwire.tracing._api import sdk_start_span
from tripwire.utils import safe_serialize

ORIGIN = "auto.ai.google_genai"


def _tool_input(tool: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    found = dict(kwargs)
    if args:
        try:
            names = list(inspect.signature(tool).parameters)
        except Exception:  # no signature to name them by
            found["args"] = args
        else:
            found.update(zip(names, args))
    return found


class _ToolCall:
    __slots__ = ("span",)

    def __init__(self, name: str, doc: Optional[str], tool: Callable[..., Any], args: Any) -> None:
        # The tool's name at start, as sentry_sdk's: `ignore_spans` sees it.
        attributes = child_start({SPANDATA.GEN_AI_TOOL_NAME: name})
        span = sdk_start_span(
            op=OP.GEN_AI_EXECUTE_TOOL, name=f"execute_tool {name}", origin=ORIGIN, **attributes
        )
        span.__enter__()
        self.span = span
        try:
            span.set_data(SPANDATA.GEN_AI_TOOL_NAME, name)
            if doc:
                span.set_data(SPANDATA.GEN_AI_TOOL_DESCRIPTION, doc)
            span.set_data(SPANDATA.GEN_AI_TOOL_INPUT, safe_serialize(_tool_input(tool, *args)))
        except Exception:  # instrumentation must not break the tool
            pass

    def returned(self, result: Any) -> None:
        try:
            self.span.set_data(SPANDATA.GEN_AI_TOOL_OUTPUT, safe_serialize(result))
        except Exception:  # instrumentation must not break the tool
            pass
        self.span.__exit__(None, None, None)

    def raised(self) -> None:
        exc_info = sys.exc_info()
        if isinstance(exc_info[1], Exception):
            capture_unhandled(get_client(), exc_info, "google_genai")
        self.span.__exit__(*exc_info)


def wrap_tool(tool: Any) -> Any:
    """`tool` wrapped in an execute_tool span if it is a function; else `tool` itself."""
    if not callable(tool):
        return tool
    name = getattr(tool, "__name__", "unknown")
    doc = tool.__doc__
    if inspect.iscoroutinefunction(tool):

        @functools.wraps(tool)
        async def run_async(*args: Any, **kwargs: Any) -> Any:
            call = _ToolCall(name, doc, tool, (args, kwargs))
            try:
                result = await tool(*args, **kwargs)
            except BaseException:
                call.raised()
                raise
            call.returned(result)
            return result

        return run_async

    @functools.wraps(tool)
    def run(*args: Any, **kwargs: Any) -> Any:
        call = _ToolCall(name, doc, tool, (args, kwargs))
        try:
            result = tool(*args, **kwargs)
        except BaseException:
            call.raised()
            raise
        call.returned(result)
        return result

    return run


def config_with_wrapped_tools(config: Any) -> Any:
    """A copy of `config` whose function tools are wrapped, or `config` if it has none."""
    tools = getattr(config, "tools", None) if config else None
    if tools is None:
        return config
    copied = copy.copy(config)
    copied.tools = [wrap_tool(tool) for tool in tools]
    return copied
