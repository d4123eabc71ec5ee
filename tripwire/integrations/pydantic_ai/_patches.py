"""Where pydantic-ai is patched: `Agent.run` / `run_stream`, `Agent.iter` and the tool manager.

Model requests are wrapped by a `Hooks` capability (pydantic-ai's own extension point)
that the patched `Agent.iter`, which every run goes through, adds to the run's
capabilities; so agents made before `init()` are instrumented too.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from typing import Any, Callable, Optional

from tripwire.integrations._common.unhandled import capture_unhandled
from tripwire.integrations._patch import patch_once
from tripwire.integrations.pydantic_ai import _spans
from tripwire.scope._current import get_client, get_current_scope, isolation_scope

_MARK = "__tripwire_pydantic_ai__"


class _State:
    hooks: Any = None  # the Hooks capability added to every run
    tool_retry: type[BaseException] = type("NeverRaised", (Exception,), {})


def _integration() -> Any:
    from tripwire.integrations.pydantic_ai import PydanticAIIntegration

    return get_client().get_integration(PydanticAIIntegration)


def install() -> None:
    """Patch pydantic-ai (called once `pydantic_ai` is imported)."""
    from pydantic_ai import messages
    from pydantic_ai.agent import Agent
    from pydantic_ai.exceptions import ToolRetryError

    try:
        from pydantic_ai.tool_manager import ToolManager
    except ImportError:  # older releases
        from pydantic_ai._tool_manager import ToolManager  # type: ignore[no-redef,import-not-found,unused-ignore]

    lib = _spans.Lib
    lib.system_prompt = getattr(messages, "SystemPromptPart", None)
    lib.text = getattr(messages, "TextPart", None)
    lib.thinking = getattr(messages, "ThinkingPart", None)
    lib.tool_call = getattr(messages, "BaseToolCallPart", None)
    lib.tool_return = getattr(messages, "BaseToolReturnPart", None)
    lib.image_url = getattr(messages, "ImageUrl", None)
    lib.binary = getattr(messages, "BinaryContent", None)
    _State.tool_retry = ToolRetryError

    patch_once(Agent, "run", _run_wrapper, _MARK)
    patch_once(Agent, "run_stream", _run_stream_wrapper, _MARK)
    if hasattr(ToolManager, "execute_tool_call"):
        patch_once(ToolManager, "execute_tool_call", _tool_wrapper, _MARK)
    try:  # model request hooks came with pydantic-ai 1.73
        from pydantic_ai.capabilities import Hooks
    except ImportError:
        return
    hooks = Hooks()
    hooks.on.model_request(_model_request)
    _State.hooks = hooks
    patch_once(Agent, "iter", _iter_wrapper, _MARK)


# -- a run -----------------------------------------------------------------------------


def _prompt(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    return kwargs.get("user_prompt") or (args[0] if args else None)


def _run_wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def run(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _integration() is None:
            return await original(self, *args, **kwargs)
        client = get_client()
        # Each run in its own scopes: runs in concurrent tasks must not share them.
        with isolation_scope():
            try:
                span = _spans.agent_span(
                    self,
                    _prompt(args, kwargs),
                    kwargs.get("model"),
                    kwargs.get("model_settings"),
                    False,
                )
            except Exception:  # instrumentation must not break the run
                return await original(self, *args, **kwargs)
            with span:
                token = _spans.push_agent(self, False)
                try:
                    result = await original(self, *args, **kwargs)
                except Exception:
                    capture_unhandled(client, sys.exc_info(), "pydantic_ai")
                    raise
                finally:
                    _spans.pop_agent(token)
                try:
                    _spans.agent_result(span, result)
                except Exception:
                    pass
                return result

    return run


class _StreamedRun:
    """`run_stream`'s context manager, inside the run's scopes and span."""

    def __init__(
        self, agent: Any, inner: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        self.agent = agent
        self.inner = inner
        self.prompt = _prompt(args, kwargs)
        self.model = kwargs.get("model")
        self.settings = kwargs.get("model_settings")
        self.scopes: Any = None
        self.span: Any = None
        self.token: Any = None
        self.result: Any = None

    async def __aenter__(self) -> Any:
        try:
            self.scopes = isolation_scope()
            self.scopes.__enter__()
            self.span = _spans.agent_span(self.agent, self.prompt, self.model, self.settings, True)
            self.span.__enter__()
            self.token = _spans.push_agent(self.agent, True)
        except Exception:  # instrumentation must not break the run
            self._leave(None, None, None)
        try:
            self.result = await self.inner.__aenter__()
        except BaseException:
            self._leave(*sys.exc_info())
            raise
        return self.result

    async def __aexit__(self, ty: Any, value: Any, tb: Any) -> Optional[bool]:
        try:
            suppressed: Optional[bool] = await self.inner.__aexit__(ty, value, tb)
            if ty is None and self.span is not None:
                try:
                    _spans.agent_result(self.span, self.result)
                except Exception:
                    pass
        finally:
            self._leave(ty, value, tb)
        return suppressed

    def _leave(self, ty: Any, value: Any, tb: Any) -> None:
        token, self.token = self.token, None
        if token is not None:
            _spans.pop_agent(token)
        span, self.span = self.span, None
        if span is not None:
            span.__exit__(ty, value, tb)
        scopes, self.scopes = self.scopes, None
        if scopes is not None:
            scopes.__exit__(ty, value, tb)


def _run_stream_wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def run_stream(self: Any, *args: Any, **kwargs: Any) -> Any:
        inner = original(self, *args, **kwargs)
        if _integration() is None:
            return inner
        return _StreamedRun(self, inner, args, kwargs)

    return run_stream


def _iter_wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def iter(self: Any, *args: Any, **kwargs: Any) -> Any:
        if _integration() is not None:
            kwargs["capabilities"] = [*(kwargs.get("capabilities") or ()), _State.hooks]
        return original(self, *args, **kwargs)

    return iter


# -- model requests --------------------------------------------------------------------


async def _model_request(ctx: Any, *, request_context: Any, handler: Any) -> Any:
    span = None
    if _integration() is not None:
        try:
            span = _spans.chat_span(
                request_context.messages, request_context.model, request_context.model_settings
            )
        except Exception:  # instrumentation must not break the request
            span = None
    if span is None:
        return await handler(request_context)
    with span:
        response = await handler(request_context)
        try:
            _spans.chat_answer(span, response)
        except Exception:
            pass
        return response


# -- tools -----------------------------------------------------------------------------


def _tool_wrapper(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def execute_tool_call(self: Any, validated: Any, *args: Any, **kwargs: Any) -> Any:
        call = getattr(validated, "call", None) if validated else None
        agent = _spans.current_agent()
        integration = _integration()
        if call is None or agent is None or integration is None:
            return await original(self, validated, *args, **kwargs)
        name = call.tool_name
        tool = self.tools.get(name) if self.tools else None
        if tool is None:
            return await original(self, validated, *args, **kwargs)
        try:
            arguments = call.args_as_dict()
        except Exception:
            arguments = call.args if isinstance(call.args, dict) else {}
        with isolation_scope():
            span: Any = None
            if getattr(validated, "args_valid", True):
                try:
                    span = _spans.tool_span(name, arguments, agent, getattr(tool, "tool_def", None))
                except Exception:
                    span = None
            with span if span is not None else contextlib.nullcontext():
                try:
                    result = await original(self, validated, *args, **kwargs)
                except _State.tool_retry:
                    # pydantic-ai sends the retry to the model: the application never sees it.
                    if integration.handled_tool_call_exceptions:
                        _capture_handled(sys.exc_info())
                    raise
                if span is not None:
                    try:
                        _spans.tool_result(span, result)
                    except Exception:
                        pass
                return result

    return execute_tool_call


def _capture_handled(exc_info: Any) -> None:
    from tripwire.capture import capture_event

    try:
        client = get_client()
        event, hint = client._event_from_exception(
            exc_info, mechanism={"type": "pydantic_ai", "handled": True}
        )
        capture_event(get_current_scope(), event, hint, None, {}, built_by_sdk=True)
    except Exception:  # reporting must never replace the library's own flow
        pass
