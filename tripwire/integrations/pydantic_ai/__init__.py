"""Pydantic AI integration: ``gen_ai`` spans for the runs, model requests and tools of agents.

As sentry_sdk 2.75's ``pydantic_ai`` integration (`PydanticAIIntegration(
include_prompts=True, handled_tool_call_exceptions=True)`), origin ``auto.ai.pydantic_ai``:

- `Agent.run` (and `run_sync`, `run_stream_events`, which go through it) and
  `Agent.run_stream`: ``gen_ai.invoke_agent`` "invoke_agent NAME", a transaction of its
  own unless a transaction is active, in a fork of the isolation scope; the agent's
  name, the model and settings given to the run, its function tools, the final output
  and response model, and (with permission) its system prompts and the user prompt;
- each model request (through a `pydantic_ai.capabilities.Hooks` capability added to
  every run, pydantic-ai >= 1.73): ``gen_ai.chat`` "chat MODEL" under the agent's
  span, with the provider, request model and settings, whether the run streams, the
  tools, token usage (input, cache read / write, output, total), the response model,
  and (with permission) the system instructions, the conversation so far and the
  answer's parts (``gen_ai.output.messages``); with no active span (`Agent.iter`,
  which is not a run to sentry_sdk) a segment of its own under span streaming, never
  sent in transaction mode (as are tool calls);
- each tool call: ``gen_ai.execute_tool`` "execute_tool NAME" with its description,
  and (with permission) its arguments and result; a tool asking the model to retry
  is captured as a handled event when ``handled_tool_call_exceptions`` is on;
- an exception leaving `run` is an event (mechanism ``pydantic_ai``, unhandled).

Prompts and outputs go out under `data_collection`'s ``gen_ai`` inputs / outputs, or,
without it, with ``send_default_pii`` and ``include_prompts``; inputs are cut to
their last message when gen_ai spans go out in their transaction. The `openai` and
`anthropic` integrations are switched off while this one is on.

The library is patched when the application imports `pydantic_ai`; the patches fall
through when the active client lacks this integration.
"""

from __future__ import annotations

from types import ModuleType

from tripwire.ai.utils import annotate_truncated_messages
from tripwire.integrations import DidNotEnable, Integration, _check_minimum_version
from tripwire.integrations._common._hooks import when_imported
from tripwire.integrations._processors import add_internal_processor
from tripwire.integrations.pydantic_ai._spans import ORIGIN
from tripwire.scope._global_processors import global_event_processors


class PydanticAIIntegration(Integration):
    """``gen_ai`` spans (and error events) for pydantic-ai agents."""

    identifier = "pydantic_ai"
    origin = ORIGIN

    def __init__(
        self, include_prompts: bool = True, handled_tool_call_exceptions: bool = True
    ) -> None:
        """Args:
        include_prompts: Send prompts and answers (with ``send_default_pii``).
        handled_tool_call_exceptions: Capture the retries tools ask for (pydantic-ai
            handles them: they never reach the application) as handled events.
        """
        self.include_prompts = include_prompts
        self.handled_tool_call_exceptions = handled_tool_call_exceptions

    @staticmethod
    def setup_once() -> None:
        """Patch pydantic-ai once `pydantic_ai` is imported.

        Raises:
            DidNotEnable: pydantic-ai is not installed, or too old.
        """
        from tripwire.utils import package_version

        version = package_version("pydantic-ai-slim") or package_version("pydantic-ai")
        if version is None:
            raise DidNotEnable("pydantic-ai not installed")
        _check_minimum_version(PydanticAIIntegration, version, "pydantic-ai")
        when_imported("pydantic_ai", _patch)
        if annotate_truncated_messages not in global_event_processors:
            add_internal_processor(annotate_truncated_messages)


def _patch(module: ModuleType) -> None:
    from tripwire.integrations.pydantic_ai import _patches

    try:
        _patches.install()
    except Exception as exc:  # a library version we cannot patch must not break init()
        from tripwire._log import logger

        logger.warning("pydantic-ai not instrumented: %s", exc)


__all__ = ["PydanticAIIntegration"]
