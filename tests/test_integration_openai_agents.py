"""The OpenAI Agents integration: real `agents` runs against a loopback fake of the OpenAI API.

`fakes.openai_agents_server` answers the Responses and chat completions APIs on
127.0.0.1 (the first tool is called, a tool's result is answered with text), so an
agent calls a tool once and finishes, and an agent with a handoff hands off. The
library and tripwire are real; only the model is not. The differential tests run one
script on sentry_sdk 2.75 and on tripwire, each in its own interpreter.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _receiver import Receiver
from _side_by_side import of_type, run_gen_ai_settings
from fakes.llm_server import TEXT
from fakes.openai_agents_server import AgentLlmServer, serving

import tripwire
from tripwire.integrations.openai import OpenAIIntegration
from tripwire.integrations.openai_agents import OpenAIAgentsIntegration
from tripwire.testing import MemoryTransport

if TYPE_CHECKING:
    import openai
    from agents import (
        Agent,
        FunctionTool,
        ModelSettings,
        OpenAIChatCompletionsModel,
        OpenAIResponsesModel,
        RunHooks,
        Runner,
    )

    get_weather: FunctionTool
    broken: FunctionTool
    CountingHooks: type[RunHooks[Any]]


@pytest.fixture(autouse=True, scope="module")
def _agents() -> None:
    """OpenAI Agents is imported when the module's tests start, not at collection (every
    xdist worker collects every module; tests/_lazy.py); its tools are made here with it."""
    global agents, openai, Agent, ModelSettings, OpenAIChatCompletionsModel
    global OpenAIResponsesModel, Runner, get_weather, broken, CountingHooks
    import agents
    import openai
    from agents import (
        Agent,
        ModelSettings,
        OpenAIChatCompletionsModel,
        OpenAIResponsesModel,
        RunHooks,
        Runner,
        function_tool,
    )

    # No export of the library's own traces (to OpenAI) from the tests.
    agents.set_tracing_disabled(True)

    @function_tool
    def get_weather(city: str) -> str:
        """Weather of a city."""
        return f"sunny in {city}"

    @function_tool
    def broken(city: str) -> str:
        """Always fails."""
        raise RuntimeError("no weather today")

    class CountingHooks(RunHooks[Any]):
        def __init__(self) -> None:
            self.seen: list[str] = []

        async def on_agent_start(self, context: Any, agent: Any) -> None:
            self.seen.append("agent_start")

        async def on_tool_start(self, context: Any, agent: Any, tool: Any) -> None:
            self.seen.append("tool_start")

        async def on_tool_end(self, context: Any, agent: Any, tool: Any, result: Any) -> None:
            self.seen.append("tool_end")


@pytest.fixture(scope="module")
def llm() -> Iterator[AgentLlmServer]:
    with serving() as server:
        yield server


_clients: list[openai.AsyncOpenAI] = []


@pytest.fixture
def loop(llm: AgentLlmServer) -> Iterator[asyncio.AbstractEventLoop]:
    """The thread's event loop for the test (`run_sync` runs on it), closed after it.

    The async tests run on it too, so every client is used, then closed, on one loop
    (a test that also checks for leaks asks for it last: it is torn down first).
    """
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield loop
    for client in _clients:
        loop.run_until_complete(client.close())
    _clients.clear()
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.run_until_complete(loop.shutdown_default_executor())
    loop.close()
    asyncio.set_event_loop(None)


def model(llm: AgentLlmServer, name: str = "gpt-4o", chat: bool = False) -> Any:
    client = openai.AsyncOpenAI(api_key="k", base_url=llm.url + "/v1", max_retries=0)
    _clients.append(client)
    if chat:
        return OpenAIChatCompletionsModel(model=name, openai_client=client)
    return OpenAIResponsesModel(model=name, openai_client=client)


def init(**options: Any) -> MemoryTransport:
    memory = MemoryTransport()
    options.setdefault("integrations", [OpenAIAgentsIntegration()])
    options.setdefault("default_integrations", False)
    # The gen_ai spans in their transaction (inputs are then cut to their last message).
    options.setdefault("stream_gen_ai_spans", False)
    tripwire.init(transport=memory, traces_sample_rate=1.0, **options)
    return memory


def pii() -> dict[str, Any]:
    return {"data_collection": {"gen_ai": {"inputs": True, "outputs": True}}}


def spans_by_parent(tx: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(op, description, parent description) of each span, in start order."""
    names = {tx["contexts"]["trace"]["span_id"]: "<root>"}
    spans = sorted(tx["spans"], key=lambda s: s["start_timestamp"])
    names.update({s["span_id"]: s["description"] for s in spans})
    return [(s.get("op"), s["description"], names[s["parent_span_id"]]) for s in spans]


def the_transaction(memory: MemoryTransport) -> dict[str, Any]:
    tripwire.flush()
    (tx,) = memory.transactions
    return tx


def span(tx: dict[str, Any], description: str, index: int = 0) -> dict[str, Any]:
    found: list[dict[str, Any]] = [s for s in tx["spans"] if s["description"] == description]
    found.sort(key=lambda s: s["start_timestamp"])
    return found[index]


def test_run_sync_makes_workflow_agent_chat_and_tool_spans(
    llm: AgentLlmServer, loop: asyncio.AbstractEventLoop
) -> None:
    memory = init(**pii())
    agent = Agent(name="A", instructions="you are a", model=model(llm), tools=[get_weather])
    result = Runner.run_sync(agent, "hello")
    assert result.final_output == TEXT
    tx = the_transaction(memory)
    assert tx["transaction"] == "A workflow"
    trace = tx["contexts"]["trace"]
    assert trace["origin"] == "auto.ai.openai_agents"
    assert "op" not in trace or trace["op"] is None
    assert spans_by_parent(tx) == [
        ("gen_ai.invoke_agent", "invoke_agent A", "<root>"),
        ("gen_ai.chat", "chat gpt-4o", "invoke_agent A"),
        ("gen_ai.execute_tool", "execute_tool get_weather", "invoke_agent A"),
        ("gen_ai.chat", "chat gpt-4o", "invoke_agent A"),
    ]
    assert {s["origin"] for s in tx["spans"]} == {"auto.ai.openai_agents"}

    invoke = span(tx, "invoke_agent A")["data"]
    assert invoke["gen_ai.agent.name"] == "A"
    assert invoke["gen_ai.request.model"] == "gpt-4o"
    assert invoke["gen_ai.system"] == "openai"
    # The run's usage: two model calls of 12 + 5 tokens.
    assert (invoke["gen_ai.usage.input_tokens"], invoke["gen_ai.usage.total_tokens"]) == (24, 34)
    assert invoke["gen_ai.response.text"] == TEXT
    # Instructions and input, cut to the last (the original count in _meta).
    assert json.loads(invoke["gen_ai.request.messages"]) == [
        {"content": [{"text": "hello", "type": "text"}], "role": "user"},
    ]
    index = str(tx["spans"].index(span(tx, "invoke_agent A")))
    assert tx["_meta"]["spans"][index]["data"]["gen_ai.request.messages"] == {"": {"len": 2}}

    first = span(tx, "chat gpt-4o")["data"]
    assert first["gen_ai.operation.name"] == "chat"
    assert first["gen_ai.response.model"] == "gpt-4o-2024"
    assert first["gen_ai.usage.input_tokens.cached"] == 4
    assert first["gen_ai.usage.output_tokens.reasoning"] == 2
    assert json.loads(first["gen_ai.system_instructions"]) == [
        {"type": "text", "content": "you are a"}
    ]
    (definition,) = json.loads(first["gen_ai.tool.definitions"])
    assert (definition["type"], definition["name"]) == ("function", "get_weather")
    (call,) = json.loads(first["gen_ai.response.tool_calls"])
    assert call["name"] == "get_weather"

    tool = span(tx, "execute_tool get_weather")["data"]
    assert json.loads(tool["gen_ai.tool.input"]) == {"city": "Paris"}
    assert tool["gen_ai.tool.output"] == "sunny in Paris"
    assert tool["gen_ai.tool.description"] == "Weather of a city."

    second = span(tx, "chat gpt-4o", 1)["data"]
    assert second["gen_ai.response.text"] == TEXT
    assert json.loads(second["gen_ai.request.messages"])[-1]["role"] == "tool"


def test_async_run_inside_a_transaction_with_chat_completions(
    llm: AgentLlmServer, loop: asyncio.AbstractEventLoop
) -> None:
    memory = init(**pii())
    settings = ModelSettings(temperature=0.5, max_tokens=40)
    agent = Agent(
        name="C", model=model(llm, chat=True), tools=[get_weather], model_settings=settings
    )

    async def main() -> Any:
        with tripwire.start_transaction(name="outer"):
            return await Runner.run(agent, "hello", conversation_id="conv-1")

    assert loop.run_until_complete(main()).final_output == TEXT
    tx = the_transaction(memory)
    assert tx["transaction"] == "outer"
    assert [row[1:] for row in spans_by_parent(tx)] == [
        ("C workflow", "<root>"),
        ("invoke_agent C", "C workflow"),
        ("chat gpt-4o", "invoke_agent C"),
        ("execute_tool get_weather", "invoke_agent C"),
        ("chat gpt-4o", "invoke_agent C"),
    ]
    chat = span(tx, "chat gpt-4o")["data"]
    assert (chat["gen_ai.request.temperature"], chat["gen_ai.request.max_tokens"]) == (0.5, 40)
    # The run's conversation id is on every span of it.
    for s in tx["spans"]:
        assert s["data"]["gen_ai.conversation.id"] == "conv-1", s["description"]


def test_streamed_run(llm: AgentLlmServer, loop: asyncio.AbstractEventLoop) -> None:
    memory = init(**pii())
    agent = Agent(name="A", instructions="you are a", model=model(llm), tools=[get_weather])

    async def main() -> list[str]:
        result = Runner.run_streamed(agent, "hello")
        kinds: list[str] = [event.type async for event in result.stream_events()]
        assert result.final_output == TEXT
        return kinds

    assert "raw_response_event" in loop.run_until_complete(main())
    tx = the_transaction(memory)
    assert tx["transaction"] == "A workflow"
    assert [row[1] for row in spans_by_parent(tx)] == [
        "invoke_agent A",
        "chat gpt-4o",
        "execute_tool get_weather",
        "chat gpt-4o",
    ]
    assert span(tx, "invoke_agent A")["data"]["gen_ai.response.streaming"] is True
    chat = span(tx, "chat gpt-4o", 1)["data"]
    assert chat["gen_ai.response.streaming"] is True
    assert chat["gen_ai.response.time_to_first_token"] > 0
    assert chat["gen_ai.response.text"] == TEXT
    assert chat["gen_ai.usage.total_tokens"] == 17


def test_handoff(llm: AgentLlmServer, loop: asyncio.AbstractEventLoop) -> None:
    memory = init(**pii())
    helper = Agent(name="B", instructions="you are b", model=model(llm))
    router = Agent(name="H", instructions="route", model=model(llm), handoffs=[helper])
    result = Runner.run_sync(router, "hello")
    assert (result.final_output, result.last_agent.name) == (TEXT, "B")
    tx = the_transaction(memory)
    assert spans_by_parent(tx) == [
        ("gen_ai.invoke_agent", "invoke_agent H", "<root>"),
        ("gen_ai.chat", "chat gpt-4o", "invoke_agent H"),
        ("gen_ai.handoff", "handoff from H to B", "invoke_agent H"),
        ("gen_ai.invoke_agent", "invoke_agent B", "<root>"),
        ("gen_ai.chat", "chat gpt-4o", "invoke_agent B"),
    ]
    assert span(tx, "handoff from H to B")["data"]["gen_ai.operation.name"] == "handoff"
    assert span(tx, "invoke_agent B")["data"]["gen_ai.response.text"] == TEXT


def test_model_error_is_captured_and_reraised(
    llm: AgentLlmServer, loop: asyncio.AbstractEventLoop
) -> None:
    memory = init(**pii())
    agent = Agent(name="E", model=model(llm, "error"))
    with pytest.raises(openai.BadRequestError):
        Runner.run_sync(agent, "hello")
    tripwire.flush()
    (event,) = memory.events
    (exc,) = event["exception"]["values"]
    assert exc["type"] == "BadRequestError"
    assert exc["mechanism"] == {"type": "openai_agents", "handled": False}
    tx = the_transaction(memory)
    assert tx["contexts"]["trace"]["status"] == "internal_error"
    assert {s["description"]: s["status"] for s in tx["spans"]} == {
        "invoke_agent E": "internal_error",
        "chat error": "internal_error",
    }


def test_tool_error_marks_the_tool_span(
    llm: AgentLlmServer, loop: asyncio.AbstractEventLoop
) -> None:
    memory = init(**pii())
    agent = Agent(name="A", model=model(llm), tools=[broken])
    assert Runner.run_sync(agent, "hello").final_output == TEXT
    tx = the_transaction(memory)
    tool = span(tx, "execute_tool broken")
    assert tool["status"] == "internal_error"
    assert tool["data"]["gen_ai.tool.output"].startswith("An error occurred")
    assert memory.events == []  # the library handled it: the model was told


def test_prompts_need_permission(llm: AgentLlmServer, loop: asyncio.AbstractEventLoop) -> None:
    memory = init()
    agent = Agent(name="A", instructions="secret", model=model(llm), tools=[get_weather])
    Runner.run_sync(agent, "private")
    tx = the_transaction(memory)
    sent = json.dumps(tx)
    assert "secret" not in sent and "private" not in sent and "sunny" not in sent
    # As sentry_sdk without data_collection: tool definitions are always sent.
    assert "gen_ai.tool.definitions" in span(tx, "chat gpt-4o")["data"]
    assert span(tx, "invoke_agent A")["data"]["gen_ai.usage.total_tokens"] == 34


def test_outputs_only(llm: AgentLlmServer, loop: asyncio.AbstractEventLoop) -> None:
    memory = init(data_collection={"gen_ai": {"inputs": False, "outputs": True}})
    agent = Agent(name="A", instructions="secret", model=model(llm), tools=[get_weather])
    Runner.run_sync(agent, "private")
    tx = the_transaction(memory)
    assert "secret" not in json.dumps(tx) and "private" not in json.dumps(tx)
    chat = span(tx, "chat gpt-4o")["data"]
    assert "gen_ai.tool.definitions" not in chat  # an input, under data_collection
    assert span(tx, "execute_tool get_weather")["data"]["gen_ai.tool.output"] == "sunny in Paris"


def test_the_users_hooks_still_run(llm: AgentLlmServer, loop: asyncio.AbstractEventLoop) -> None:
    memory = init()
    hooks = CountingHooks()
    agent = Agent(name="A", model=model(llm), tools=[get_weather])
    Runner.run_sync(agent, "hello", hooks=hooks)
    assert hooks.seen == ["agent_start", "tool_start", "tool_end"]
    assert "execute_tool get_weather" in [
        s["description"] for s in the_transaction(memory)["spans"]
    ]


def test_the_openai_integration_is_switched_off(
    llm: AgentLlmServer, loop: asyncio.AbstractEventLoop
) -> None:
    # Both would be auto-enabled; the model calls must be counted once, by this one.
    memory = init(default_integrations=True, integrations=[])
    assert tripwire.get_client().get_integration(OpenAIAgentsIntegration) is not None
    assert tripwire.get_client().get_integration(OpenAIIntegration) is None
    agent = Agent(name="A", model=model(llm))
    Runner.run_sync(agent, "hello")
    tx = the_transaction(memory)
    ops = [s.get("op") for s in tx["spans"] if str(s.get("op")).startswith("gen_ai")]
    assert ops == ["gen_ai.invoke_agent", "gen_ai.chat"]


def test_falls_through_without_the_integration(
    llm: AgentLlmServer, loop: asyncio.AbstractEventLoop
) -> None:
    memory = init(integrations=[])
    agent = Agent(name="A", model=model(llm), tools=[get_weather])
    assert Runner.run_sync(agent, "hello").final_output == TEXT
    tripwire.flush()
    assert memory.transactions == []


def test_reaches_a_real_receiver(
    llm: AgentLlmServer, rx: Receiver, loop: asyncio.AbstractEventLoop
) -> None:
    tripwire.init(
        dsn=rx.dsn(),
        traces_sample_rate=1.0,
        default_integrations=False,
        integrations=[OpenAIAgentsIntegration()],
        stream_gen_ai_spans=False,
    )
    Runner.run_sync(Agent(name="A", model=model(llm)), "hello")
    tripwire.flush()
    (request,) = rx.wait_for(1)
    tx = request.envelope.get_transaction_event()
    assert tx is not None and tx["transaction"] == "A workflow"
    assert [s["op"] for s in tx["spans"]] == ["gen_ai.invoke_agent", "gen_ai.chat"]


def test_import_tripwire_does_not_import_agents() -> None:
    code = (
        "import sys, tripwire\n"
        "from tripwire.integrations.openai_agents import OpenAIAgentsIntegration\n"
        "tripwire.init(dsn='http://k@example.com/1', integrations=[OpenAIAgentsIntegration()])\n"
        "assert 'agents' not in sys.modules\n"
        "import agents.run\n"
        "assert getattr(agents.run.AgentRunner.run, '__tripwire_openai_agents__', False)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr


# -- against sentry_sdk 2.75 -----------------------------------------------------------

SCRIPT = """
import asyncio, sys, warnings
warnings.simplefilter("ignore", DeprecationWarning)
sys.path.insert(0, {tests!r})
import agents, openai
from agents import Agent, ModelSettings, Runner, function_tool
from agents import OpenAIChatCompletionsModel, OpenAIResponsesModel
from sentry_sdk.integrations.openai_agents import OpenAIAgentsIntegration
from fakes.openai_agents_server import serving

agents.set_tracing_disabled(True)
sentry_sdk.init(
    dsn="https://k@o1.ingest.sentry.io/1", transport=KEEP, traces_sample_rate=1.0,
    default_integrations=False, auto_enabling_integrations=False, release="r",
    integrations=[OpenAIAgentsIntegration()],
    send_default_pii=True, stream_gen_ai_spans={stream_gen_ai_spans},
)

@function_tool
def get_weather(city: str) -> str:
    '''Weather of a city.'''
    return "sunny in " + city

@function_tool
def broken(city: str) -> str:
    '''Always fails.'''
    raise RuntimeError("no")

async def main(url):
    c = openai.AsyncOpenAI(api_key="k", base_url=url + "/v1", max_retries=0)
    m = OpenAIResponsesModel(model="gpt-4o", openai_client=c)
    a = Agent(name="A", instructions="you are a", model=m, tools=[get_weather],
              model_settings=ModelSettings(temperature=0.5, top_p=0.9))
    b = Agent(name="B", instructions="you are b", model=m)
    h = Agent(name="H", instructions="route", model=m, handoffs=[b])
    await Runner.run(a, "hello")
    await Runner.run(h, [{{"role": "user", "content": "hi"}}], conversation_id="conv-1")
    await Runner.run(Agent(name="X", model=m, tools=[broken]), "hello")
    chat = OpenAIChatCompletionsModel(model="gpt-4o", openai_client=c)
    c_agent = Agent(name="C", instructions="you are c", model=chat, tools=[get_weather])
    await Runner.run(c_agent, "hi")
    result = Runner.run_streamed(a, "hello")
    async for _ in result.stream_events():
        pass
    e = Agent(name="E", model=OpenAIResponsesModel(model="error", openai_client=c))
    try:
        await Runner.run(e, "hello")
    except openai.BadRequestError:
        pass
    await c.close()

with serving() as server:
    asyncio.run(main(server.url))
finish()
"""

_ENVELOPE_ATTRS = ("sentry.", "thread.", "server.", "process.")


def _data(data: dict[str, Any]) -> dict[str, Any]:
    return {
        k: ("<time>" if k.endswith("time_to_first_token") else v)
        for k, v in data.items()
        if not k.startswith(_ENVELOPE_ATTRS)
    }


def _tool_calls(data: dict[str, Any]) -> dict[str, Any]:
    # The chat completions model makes up a call id per run ("__fake_id__" or random).
    calls = data.get("gen_ai.response.tool_calls")
    if calls:
        data["gen_ai.response.tool_calls"] = [c["name"] for c in json.loads(calls)]
    return data


def shape(found: dict[str, Any]) -> dict[str, Any]:
    txs = of_type(found, "transaction")
    spans = [
        {
            "op": s.get("op"),
            "description": s.get("description"),
            "origin": s.get("origin"),
            "status": s.get("status"),
            "data": _tool_calls(_data(s.get("data", {}))),
        }
        for tx in txs
        for s in tx["spans"]
    ]
    for item in of_type(found, "span"):
        for s in item["items"]:
            attrs = {k: v["value"] for k, v in s["attributes"].items()}
            spans.append(
                {
                    "op": attrs["sentry.op"],
                    "description": s["name"],
                    "origin": attrs["sentry.origin"],
                    "status": None if s["status"] == "ok" else "internal_error",
                    "data": _tool_calls(_data(attrs)),
                }
            )
    roots = [
        (
            tx["transaction"],
            tx["contexts"]["trace"].get("op"),
            tx["contexts"]["trace"].get("origin"),
            tx["contexts"]["trace"].get("status"),
        )
        for tx in txs
    ]
    events = [
        ([v["type"] for v in e["exception"]["values"]], e["exception"]["values"][-1]["mechanism"])
        for e in of_type(found, "event")
    ]
    return {
        "spans": spans,
        "roots": roots,
        "events": events,
        "metas": [t.get("_meta") for t in txs],
    }


def test_same_as_sentry_sdk(tmp_path: Path) -> None:
    # Both settings of stream_gen_ai_spans, one after the other in one interpreter per
    # SDK (importing the agents SDK is most of a run's cost).
    runs = run_gen_ai_settings(SCRIPT, tmp_path, tests=str(Path(__file__).parent))
    for stream_gen_ai_spans, sentry, ours in runs:
        expected, found = shape(sentry), shape(ours)
        if stream_gen_ai_spans:
            # sentry_sdk 2.75 sends gen_ai spans as span items (v2) then; tripwire keeps
            # them in their transaction: their contents must agree all the same.
            key = lambda s: json.dumps(s, sort_keys=True)  # noqa: E731
            expected["spans"].sort(key=key)
            found["spans"].sort(key=key)
            expected.pop("metas"), found.pop("metas")
        assert found == expected, stream_gen_ai_spans
        assert len(found["roots"]) == 6
        assert found["events"] == [
            (["BadRequestError"], {"type": "openai_agents", "handled": False})
        ]
