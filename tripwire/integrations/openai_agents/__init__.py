"""OpenAI Agents integration: ``gen_ai`` spans for runs of `agents.Runner` (openai-agents).

As sentry_sdk 2.75's ``openai_agents`` integration (`OpenAIAgentsIntegration()`, no
options), for `Runner.run`, `run_sync` and `run_streamed` (origin
``auto.ai.openai_agents``):

- the run: "AGENT workflow" (no op), a transaction of its own unless a transaction is
  active (then a span in it; a segment or a child under span streaming); each run in
  a fork of the isolation scope (not streamed runs: they continue in a task of their
  own);
- each agent taking its turn: ``gen_ai.invoke_agent`` "invoke_agent AGENT" under the
  workflow, with the agent's model and settings, the run's token usage so far when
  it ends, its final output, and (with permission) its instructions and the run's input;
  ``gen_ai.response.streaming`` for streamed runs;
- each model call: ``gen_ai.chat`` "chat MODEL" under the agent's span, with the tool
  definitions, token usage (input, cached, output, reasoning, total), the response
  model, and (with permission) the system instructions, input messages, answer text
  and tool calls; streamed calls also the time to the first token;
- each function tool run: ``gen_ai.execute_tool`` "execute_tool NAME" (with permission,
  its arguments and result; ``internal_error`` when the library turned the tool's
  exception into its error message);
- each handoff: ``gen_ai.handoff`` "handoff from A to B", under the handing agent;
- `Runner.run(conversation_id=...)` on the workflow and every span of the run;
- an exception leaving a run is an event (mechanism ``openai_agents``, unhandled); the
  spans it crosses end ``internal_error``.

Prompts and outputs are sent under `data_collection`'s ``gen_ai`` inputs / outputs, or,
without it, with ``send_default_pii``; tool definitions always (as sentry_sdk before
`data_collection`), inputs cut to their last message when gen_ai spans go out in their
transaction. Hosted MCP tools get the trace headers for their server's URL when
`trace_propagation_targets` allow it. The `openai` integration is switched off
while this one is on (its model calls would be counted twice).

The library is patched when the application imports `agents`; every patch falls
through when the active client lacks this integration.
"""

from __future__ import annotations

from types import ModuleType

from tripwire.ai.utils import annotate_truncated_messages
from tripwire.integrations import DidNotEnable, Integration, _check_minimum_version
from tripwire.integrations._common._hooks import when_imported
from tripwire.integrations._processors import add_internal_processor
from tripwire.integrations.openai_agents._spans import ORIGIN
from tripwire.scope._global_processors import global_event_processors


class OpenAIAgentsIntegration(Integration):
    """``gen_ai`` spans (and error events) for openai-agents runs."""

    identifier = "openai_agents"
    origin = ORIGIN

    @staticmethod
    def setup_once() -> None:
        """Patch the runner once `agents` is imported.

        Raises:
            DidNotEnable: openai-agents is not installed (the import name `agents` is
                too common to go by), or too old.
        """
        from tripwire.utils import package_version

        version = package_version("openai-agents")
        if version is None:
            raise DidNotEnable("OpenAI Agents not installed")
        _check_minimum_version(OpenAIAgentsIntegration, version, "openai-agents")
        when_imported("agents", _patch)
        if annotate_truncated_messages not in global_event_processors:
            add_internal_processor(annotate_truncated_messages)


def _patch(module: ModuleType) -> None:
    from tripwire.integrations.openai_agents import _patches

    if not hasattr(module, "Runner") or not hasattr(module, "RunHooks"):
        return  # an application's own module named `agents`, not openai-agents

    try:
        _patches.install()
    except Exception as exc:  # a library version we cannot patch must not break init()
        from tripwire._log import logger

        logger.warning("openai-agents not instrumented: %s", exc)


__all__ = ["OpenAIAgentsIntegration"]
