"""Where openai-agents is patched: the runner, one turn, the model, handoffs, final output.

A run's state (`_spans.Run`) lives in a context variable set by the patched
`AgentRunner.run` / `run_streamed`; the functions of the run loop (module attributes
of `agents.run_internal`, openai-agents >= 0.8) find it there, also in the task a
streamed run continues in (it copies the context when it is created). Outside a run,
or with the integration off, every patch calls through.
"""

from __future__ import annotations

import contextvars
import copy
import functools
import sys
import time
import typing
from typing import Any, Callable, Optional

from tripwire._log import logger
from tripwire.consts import SPANDATA, SPANSTATUS
from tripwire.integrations._common.unhandled import capture_unhandled
from tripwire.integrations._common.web import streamed
from tripwire.integrations._patch import patch_once
from tripwire.integrations.openai_agents import _spans
from tripwire.scope._current import get_client, get_current_scope, isolation_scope
from tripwire.tracing_utils import add_sentry_baggage_to_headers, should_propagate_trace

_MARK = "__tripwire_openai_agents__"
_RUN: contextvars.ContextVar[Optional[_spans.Run]] = contextvars.ContextVar(
    "tripwire_openai_agents_run", default=None
)


class _Lib:
    """The `agents` module and the classes the patches test against, bound at install."""

    agents: Any = None
    function_tool: Any = type(None)
    hosted_mcp_tool: Any = type(None)
    hooks_class: Any = None


def install() -> None:
    """Patch openai-agents (called once `agents` is imported)."""
    import agents
    import agents.run

    try:  # the run loop's functions moved to agents.run_internal in 0.8
        from agents.run_internal import run_loop, turn_resolution
    except ImportError:
        logger.warning("openai-agents before 0.8 is not instrumented")
        return
    _Lib.agents = agents
    _Lib.function_tool = agents.FunctionTool
    _Lib.hosted_mcp_tool = agents.HostedMCPTool
    _Lib.hooks_class = _hooks_class(agents.RunHooks)

    runner = agents.run.AgentRunner
    patch_once(runner, "run", _run_wrapper, _MARK)
    patch_once(runner, "run_streamed", _run_streamed_wrapper, _MARK)
    patch_once(agents.run, "run_single_turn", _turn_wrapper, _MARK)
    patch_once(run_loop, "run_single_turn_streamed", _streamed_turn_wrapper, _MARK)
    patch_once(run_loop, "get_model", _get_model_wrapper, _MARK)
    patch_once(turn_resolution, "execute_handoffs", _handoffs_wrapper, _MARK)
    patch_once(turn_resolution, "execute_final_output", _final_output_wrapper, _MARK)
    try:
        from agents.util import _error_tracing
    except ImportError:
        return
    if hasattr(_error_tracing, "attach_error_to_current_span"):
        patch_once(_error_tracing, "attach_error_to_current_span", _error_wrapper, _MARK)


def _active() -> Any:
    from tripwire.integrations.openai_agents import OpenAIAgentsIntegration

    client = get_client()
    return client if client.get_integration(OpenAIAgentsIntegration) is not None else None


# -- tool spans through the run's hooks ------------------------------------------------


def _hooks_class(base: type) -> type:
    """A `RunHooks` that runs the tool spans, then the user's own hooks (if any)."""

    def forward(name: str) -> Callable[..., Any]:
        async def method(self: Any, *args: Any, **kwargs: Any) -> Any:
            inner = self._tripwire_inner
            if inner is None:
                return None
            return await getattr(inner, name)(*args, **kwargs)

        method.__name__ = name
        return method

    namespace: dict[str, Any] = {
        name: forward(name) for name in dir(base) if name.startswith("on_")
    }

    def __init__(self: Any, inner: Any = None) -> None:
        self._tripwire_inner = inner

    async def on_tool_start(self: Any, context: Any, agent: Any, tool: Any) -> None:
        try:
            _tool_started(context, tool)
        except Exception:  # instrumentation must not break the run
            pass
        if self._tripwire_inner is not None:
            await self._tripwire_inner.on_tool_start(context, agent, tool)

    async def on_tool_end(self: Any, context: Any, agent: Any, tool: Any, result: Any) -> None:
        try:
            _tool_ended(context, agent, result)
        except Exception:
            pass
        if self._tripwire_inner is not None:
            await self._tripwire_inner.on_tool_end(context, agent, tool, result)

    namespace.update(__init__=__init__, on_tool_start=on_tool_start, on_tool_end=on_tool_end)
    # `RunHooks` is a parametrised alias of `RunHooksBase`: subclass the class itself.
    return type("TripwireRunHooks", (typing.get_origin(base) or base,), namespace)


def _with_hooks(kwargs: dict[str, Any]) -> None:
    hooks = kwargs.get("hooks")
    if not isinstance(hooks, _Lib.hooks_class):
        kwargs["hooks"] = _Lib.hooks_class(hooks)


_TOOL_SPAN = "_tripwire_tool_span"


def _tool_started(context: Any, tool: Any) -> None:
    if _RUN.get() is None or not isinstance(tool, _Lib.function_tool):
        return
    span = _spans.tool_span(tool, getattr(context, "tool_arguments", None))
    setattr(context, _TOOL_SPAN, span)


def _tool_ended(context: Any, agent: Any, result: Any) -> None:
    span = getattr(context, _TOOL_SPAN, None)
    run = _RUN.get()
    if span is None or run is None:
        return
    delattr(context, _TOOL_SPAN)
    _spans.end_tool_span(span, run, agent, result)


# -- the run ---------------------------------------------------------------------------


def _starting_agent(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return kwargs["starting_agent"] if "starting_agent" in kwargs else args[0]


def _start_run(args: tuple[Any, ...], kwargs: dict[str, Any], streamed: bool) -> _spans.Run:
    agent = _starting_agent(args, kwargs)
    workflow = _spans.workflow_span(agent)
    run = _spans.Run(workflow, agent, kwargs.get("conversation_id"), streamed)
    run.set_conversation(workflow, agent)
    _with_hooks(kwargs)
    return run


def _run_wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = _active()
        if client is None:
            return await original(self, *args, **kwargs)
        # Each run in its own scopes: runs in concurrent tasks must not share them.
        with isolation_scope():
            try:
                state = _start_run(args, kwargs, streamed=False)
            except Exception:  # instrumentation must not break the run
                return await original(self, *args, **kwargs)
            token = _RUN.set(state)
            try:
                result = await original(self, *args, **kwargs)
            except BaseException as exc:
                exc_info = sys.exc_info()
                if isinstance(exc, Exception):
                    capture_unhandled(client, exc_info, "openai_agents")
                run_data = getattr(exc, "run_data", None)
                _ended(state, getattr(run_data, "context_wrapper", None), exc_info)
                raise
            finally:
                _RUN.reset(token)
            _ended(state, getattr(result, "context_wrapper", None), None)
            return result

    return run


def _ended(state: _spans.Run, context: Any, exc_info: Any) -> None:
    try:
        state.end_agent(context, exc_info=exc_info, agent=state.starting_agent)
    finally:
        workflow, state.workflow = state.workflow, None
        workflow.__exit__(*(exc_info or (None, None, None)))


def _run_streamed_wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def run_streamed(self: Any, *args: Any, **kwargs: Any) -> Any:
        client = _active()
        if client is None:
            return original(self, *args, **kwargs)
        # No fork of the scopes: the run goes on in a task, after this call returns.
        try:
            state = _start_run(args, kwargs, streamed=True)
        except Exception:
            return original(self, *args, **kwargs)
        token = _RUN.set(state)  # the run's task copies it
        try:
            result = original(self, *args, **kwargs)
        except Exception:
            exc_info = sys.exc_info()
            state.close_workflow(exc_info)
            capture_unhandled(client, exc_info, "openai_agents")
            raise
        finally:
            _RUN.reset(token)
        try:
            _watch_stream(result, state)
        except Exception:
            pass
        return result

    return run_streamed


def _watch_stream(result: Any, state: _spans.Run) -> None:
    """End the workflow when the caller has read the last event, or cancels."""
    stream_events = result.stream_events

    @functools.wraps(stream_events)
    async def events(*args: Any, **kwargs: Any) -> Any:
        try:
            async for event in stream_events(*args, **kwargs):
                yield event
        finally:
            state.close_workflow(sys.exc_info())

    cancel = result.cancel

    @functools.wraps(cancel)
    def cancelled(*args: Any, **kwargs: Any) -> Any:
        try:
            return cancel(*args, **kwargs)
        finally:
            state.close_workflow()

    result.stream_events = events
    result.cancel = cancelled


# -- one turn of an agent --------------------------------------------------------------


def _begin_turn(state: _spans.Run, agent: Any, context: Any, first: bool, given: Any) -> None:
    """Open the agent's span on its first turn (ending the previous agent's)."""
    if not (first and agent is not None and context is not None):
        return
    if state.agent_span is not None:
        state.end_agent(context, agent=agent)
    state.agent = agent
    state.agent_span = _spans.agent_span(state, agent, given)


def _turn_wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def run_single_turn(*args: Any, **kwargs: Any) -> Any:
        state = _RUN.get()
        if state is None:
            return await original(*args, **kwargs)
        bindings = kwargs.get("bindings")  # openai-agents >= 0.14; before: agent
        agent = getattr(bindings, "public_agent", None) if bindings else kwargs.get("agent")
        context = kwargs.get("context_wrapper")
        try:
            first = bool(kwargs.get("should_run_agent_start_hooks", False))
            _begin_turn(state, agent, context, first, kwargs.get("original_input"))
        except Exception:
            pass
        if state.agent_span is None:
            return await original(*args, **kwargs)
        try:
            return await original(*args, **kwargs)
        except Exception:
            state.end_agent(context, exc_info=sys.exc_info())
            raise

    return run_single_turn


def _streamed_turn_wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def run_single_turn_streamed(*args: Any, **kwargs: Any) -> Any:
        state = _RUN.get()
        if state is None:
            return await original(*args, **kwargs)

        def arg(index: int, *names: str) -> Any:
            if len(args) > index:
                return args[index]
            return next((kwargs[n] for n in names if n in kwargs), None)

        streamed_result = arg(0, "streamed_result")
        bound = arg(1, "bindings", "agent")
        agent = getattr(bound, "public_agent", bound)
        context = arg(3, "context_wrapper")
        try:
            first = bool(arg(5, "should_run_agent_start_hooks"))
            _begin_turn(state, agent, context, first, getattr(streamed_result, "input", None))
        except Exception:
            pass
        if state.agent_span is None:
            return await original(*args, **kwargs)
        try:
            return await original(*args, **kwargs)
        except Exception:
            exc_info = sys.exc_info()
            state.end_agent(context, exc_info=exc_info)
            state.close_workflow(exc_info)
            raise

    return run_single_turn_streamed


def _handoffs_wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def execute_handoffs(*args: Any, **kwargs: Any) -> Any:
        state = _RUN.get()
        if state is None:
            return await original(*args, **kwargs)
        context = kwargs.get("context_wrapper")
        agent = kwargs.get("public_agent", kwargs.get("agent"))  # renamed in 0.14
        handoffs = kwargs.get("run_handoffs")
        if handoffs and agent is not None:
            try:  # the library acts on the first handoff only
                _spans.handoff_span(state, agent, handoffs[0].handoff.agent_name)
            except Exception:
                pass
        try:
            result = await original(*args, **kwargs)
        except Exception:
            exc_info = sys.exc_info()
            state.end_agent(context, exc_info=exc_info, agent=agent)
            if state.streamed:
                state.close_workflow(exc_info)
            raise
        state.end_agent(context, agent=agent)
        return result

    return execute_handoffs


def _final_output_wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def execute_final_output(*args: Any, **kwargs: Any) -> Any:
        state = _RUN.get()
        if state is None:
            return await original(*args, **kwargs)
        context = kwargs.get("context_wrapper")
        output = kwargs.get("final_output")
        agent = kwargs.get("public_agent", kwargs.get("agent"))
        try:
            result = await original(*args, **kwargs)
        except Exception:
            exc_info = sys.exc_info()
            state.end_agent(context, output, exc_info, agent)
            if state.streamed:
                state.close_workflow(exc_info)
            raise
        state.end_agent(context, output, agent=agent)
        return result

    return execute_final_output


def _error_wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def attach_error_to_current_span(*args: Any, **kwargs: Any) -> Any:
        # The library reports some failures (a tool's, a bad tool call) on its own spans
        # and goes on: the current span is marked failed, as with sentry_sdk.
        if _active() is not None:
            span = get_current_scope()._d.span
            if streamed(span) is not None:
                span.status = "error"  # a span of traces.start_span has no set_status
            elif span is not None:
                span.set_status(SPANSTATUS.INTERNAL_ERROR)
        return original(*args, **kwargs)

    return attach_error_to_current_span


# -- the model -------------------------------------------------------------------------

# The parameters of `Model.get_response` / `stream_response`, in order.
_MODEL_PARAMS = ("system_instructions", "input", "model_settings", "tools")


def _request(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any]:
    request = dict(zip(_MODEL_PARAMS, args))
    request.update(kwargs)
    return request


def _get_model_wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def get_model(agent: Any, run_config: Any) -> Any:
        model = original(agent, run_config)
        state = _RUN.get()
        if state is None:
            return model
        try:
            return _instrumented(model, agent, state)
        except Exception:
            return model

    return get_model


def _instrumented(model: Any, agent: Any, state: _spans.Run) -> Any:
    """A shallow copy of the run's model whose calls make spans (the model stays as it was)."""
    model = copy.copy(model)
    state.models[id(agent)] = model.model if hasattr(model, "model") else str(model)
    seen: dict[str, str] = {}  # the response model of the call in progress

    fetch = getattr(model, "_fetch_response", None)
    if fetch is not None:

        @functools.wraps(fetch)
        async def fetch_response(*args: Any, **kwargs: Any) -> Any:
            response = await fetch(*args, **kwargs)
            name = getattr(response, "model", None)
            if name:
                seen["model"] = str(name)
            return response

        model._fetch_response = fetch_response

    get_response = model.get_response

    @functools.wraps(get_response)
    async def wrapped_get_response(*args: Any, **kwargs: Any) -> Any:
        span = _chat_span(state, agent, _request(args, kwargs))
        if span is None:
            return await get_response(*args, **kwargs)
        seen.clear()
        with span:
            result = await get_response(*args, **kwargs)
            try:
                _spans.chat_answer(span, state, agent, result, seen.pop("model", None))
            except Exception:
                pass
        return result

    model.get_response = wrapped_get_response

    stream_response = getattr(model, "stream_response", None)
    if stream_response is not None:

        @functools.wraps(stream_response)
        async def wrapped_stream_response(*args: Any, **kwargs: Any) -> Any:
            span = _chat_span(state, agent, _request(args, kwargs))
            if span is None:
                async for event in stream_response(*args, **kwargs):
                    yield event
                return
            with span:
                span.set_data(SPANDATA.GEN_AI_RESPONSE_STREAMING, True)
                start = time.perf_counter()
                first = True
                final = None
                async for event in stream_response(*args, **kwargs):
                    if first and hasattr(event, "delta"):
                        ttft = time.perf_counter() - start
                        span.set_data(SPANDATA.GEN_AI_RESPONSE_TIME_TO_FIRST_TOKEN, ttft)
                        first = False
                    if hasattr(event, "response"):
                        final = event.response
                    yield event
                if final:
                    try:
                        _spans.chat_answer(span, state, agent, final, None)
                    except Exception:
                        pass

        model.stream_response = wrapped_stream_response
    return model


def _chat_span(state: _spans.Run, agent: Any, request: dict[str, Any]) -> Any:
    try:
        span = _spans.chat_span(state, agent, request, _Lib.agents)
    except Exception:  # instrumentation must not break the call
        return None
    try:
        _propagate_to_mcp(request.get("tools"), span)
    except Exception:
        pass
    return span


def _propagate_to_mcp(tools: Any, span: Any) -> None:
    """Trace headers for hosted MCP servers (OpenAI calls them) that may receive them."""
    client = get_client()
    for tool in tools or ():
        if not isinstance(tool, _Lib.hosted_mcp_tool):
            continue
        config = tool.tool_config
        headers = config.get("headers")
        if headers is None:
            headers = config["headers"] = {}
        url = config.get("server_url")
        if not url or not should_propagate_trace(client, url):
            continue
        for key, value in get_current_scope().iter_trace_propagation_headers(span=span):
            if key == "baggage":
                add_sentry_baggage_to_headers(headers, value)
            else:
                headers[key] = value
