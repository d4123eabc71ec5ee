"""The LangGraph integration: real graphs and agents over langchain-openai and a fake model.

The graphs call `ChatOpenAI` against `fakes.langchain_llm_server` on 127.0.0.1 (it
calls the offered tool once, then answers text), so the agent loop runs as against
OpenAI: model, tool, model. The differential test runs one script on sentry_sdk 2.75
and on tripwire, each in its own interpreter.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _side_by_side import of_type, run_gen_ai_settings
from fakes.langchain_llm_server import LangchainLlmServer, serving
from fakes.llm_server import TEXT

import tripwire
from tripwire.integrations.langchain import LangchainIntegration
from tripwire.integrations.langgraph import LanggraphIntegration
from tripwire.testing import MemoryTransport

if TYPE_CHECKING:
    import httpx
    from langchain.agents import create_agent
    from langchain_core.messages import HumanMessage
    from langchain_core.tools import BaseTool, tool
    from langchain_openai import ChatOpenAI
    from langgraph.graph import END, START, MessagesState, StateGraph
    from pydantic import SecretStr

    KEY: SecretStr
    get_weather: BaseTool


@pytest.fixture(autouse=True, scope="module")
def _langgraph() -> None:
    """LangGraph and LangChain are imported when the module's tests start, not at collection
    (every xdist worker collects every module; tests/_lazy.py); the tool is made here."""
    global httpx, create_agent, HumanMessage, tool, ChatOpenAI, END, START, MessagesState
    global StateGraph, KEY, get_weather
    import httpx
    from langchain.agents import create_agent
    from langchain_core.messages import HumanMessage
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI
    from langgraph.graph import END, START, MessagesState, StateGraph
    from pydantic import SecretStr

    KEY = SecretStr("k")

    @tool
    def get_weather(city: str) -> str:
        """Weather of a city."""
        return f"sunny in {city}"


@pytest.fixture(scope="module")
def llm() -> Iterator[LangchainLlmServer]:
    with serving() as server:
        yield server


def chat(llm: LangchainLlmServer, **kwargs: Any) -> ChatOpenAI:
    return ChatOpenAI(
        model="gpt-4o", api_key=KEY, base_url=llm.url + "/v1", max_retries=0, **kwargs
    )


def init(**options: Any) -> MemoryTransport:
    memory = MemoryTransport()
    options.setdefault("integrations", [LangchainIntegration(), LanggraphIntegration()])
    # gen_ai spans stay in their transaction, where these tests read them (the default
    # moves them to a span item: tests/test_trace_templates.py and the differential).
    options.setdefault("stream_gen_ai_spans", False)
    tripwire.init(transport=memory, traces_sample_rate=1.0, default_integrations=False, **options)
    return memory


def spans(memory: MemoryTransport) -> list[dict[str, Any]]:
    tripwire.flush()
    return [span for tx in memory.transactions for span in tx["spans"]]


def one_node_graph(model: ChatOpenAI, name: str = "mygraph") -> Any:
    def call_model(state: MessagesState) -> dict[str, Any]:
        return {"messages": [model.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("model", call_model)
    graph.add_edge(START, "model")
    graph.add_edge("model", END)
    return graph.compile(name=name)


def test_state_graph(llm: LangchainLlmServer) -> None:
    memory = init(send_default_pii=True)
    with tripwire.start_transaction(name="tx") as tx:
        app = one_node_graph(chat(llm))
        result = app.invoke({"messages": [HumanMessage("hi")]})
    assert result["messages"][-1].content == TEXT
    create, invoke, model = spans(memory)
    assert (create["op"], create["description"], create["origin"]) == (
        "gen_ai.create_agent",
        "create_agent mygraph",
        "auto.ai.langgraph",
    )
    assert create["data"] == {
        **{k: v for k, v in create["data"].items() if k.startswith("thread.")},
        "gen_ai.operation.name": "create_agent",
        "gen_ai.agent.name": "mygraph",
    }
    assert (invoke["op"], invoke["description"]) == ("gen_ai.invoke_agent", "invoke_agent mygraph")
    assert invoke["parent_span_id"] == tx.span_id
    data = invoke["data"]
    assert (data["gen_ai.agent.name"], data["gen_ai.pipeline.name"]) == ("mygraph", "mygraph")
    assert json.loads(data["gen_ai.request.messages"]) == [
        {"role": "user", "content": "hi", "response_metadata": {}}
    ]
    assert data["gen_ai.response.text"] == TEXT
    assert data["gen_ai.response.model"] == "gpt-4o-2024"
    assert (data["gen_ai.usage.input_tokens"], data["gen_ai.usage.total_tokens"]) == (12, 17)
    # The model's span (LangChain integration) nests under the graph's.
    assert (model["op"], model["parent_span_id"]) == ("gen_ai.chat", invoke["span_id"])


def test_tool_calling_agent(llm: LangchainLlmServer) -> None:
    memory = init(send_default_pii=True, stream_gen_ai_spans=False)
    with tripwire.start_transaction(name="tx"):
        agent = create_agent(
            chat(llm), tools=[get_weather], system_prompt="be brief", name="weather_agent"
        )
        result = agent.invoke({"messages": [HumanMessage("weather in Paris?")]})
    assert result["messages"][-1].content == TEXT
    create, invoke, first, tool_span, second = spans(memory)
    assert create["data"]["gen_ai.request.available_tools"] == ["get_weather"]
    assert invoke["description"] == "invoke_agent weather_agent"
    for child in (first, tool_span, second):
        assert child["parent_span_id"] == invoke["span_id"]
        assert child["data"]["gen_ai.agent.name"] == "weather_agent"
    assert [first["op"], tool_span["op"], second["op"]] == [
        "gen_ai.chat",
        "gen_ai.execute_tool",
        "gen_ai.chat",
    ]
    assert first["data"]["gen_ai.response.finish_reasons"] == ["tool_calls"]
    assert tool_span["data"]["gen_ai.tool.name"] == "get_weather"
    assert json.loads(tool_span["data"]["gen_ai.tool.output"])["content"] == "sunny in Paris"
    # Inside the transaction (stream_gen_ai_spans=False) inputs are cut to the last one.
    assert json.loads(second["data"]["gen_ai.request.messages"]) == [
        {"role": "tool", "content": "sunny in Paris"}
    ]
    data = invoke["data"]
    # Two model calls: their usage summed on the agent's span.
    assert (data["gen_ai.usage.input_tokens"], data["gen_ai.usage.output_tokens"]) == (24, 10)
    assert data["gen_ai.response.text"] == TEXT
    (call,) = json.loads(data["gen_ai.response.tool_calls"])
    assert (call["name"], call["args"]) == ("get_weather", {"city": "Paris"})


def test_async_agent(llm: LangchainLlmServer) -> None:
    memory = init()

    async def main() -> Any:
        async with httpx.AsyncClient() as http:  # closed in its loop: no socket left
            agent = create_agent(chat(llm, http_async_client=http), tools=[get_weather])
            with tripwire.start_transaction(name="tx"):
                return await agent.ainvoke({"messages": [HumanMessage("weather?")]})

    result = asyncio.run(main())
    assert result["messages"][-1].content == TEXT
    invoke, first, tool_span, second = spans(memory)
    assert invoke["description"] == "invoke_agent LangGraph"
    assert {first["parent_span_id"], tool_span["parent_span_id"], second["parent_span_id"]} == {
        invoke["span_id"]
    }
    # Without send_default_pii: no messages, answers or tool calls.
    for key in ("gen_ai.request.messages", "gen_ai.response.text", "gen_ai.response.tool_calls"):
        assert key not in invoke["data"]
    assert invoke["data"]["gen_ai.usage.total_tokens"] == 34


def test_invoke_without_a_transaction_is_one(llm: LangchainLlmServer) -> None:
    memory = init()
    app = one_node_graph(chat(llm))  # compiled outside a transaction: no span
    app.invoke({"messages": [HumanMessage("hi")]})
    tripwire.flush()
    (tx,) = memory.transactions
    assert tx["transaction"] == "invoke_agent mygraph"
    trace = tx["contexts"]["trace"]
    assert (trace["op"], trace["origin"]) == ("gen_ai.invoke_agent", "auto.ai.langgraph")
    (model,) = tx["spans"]
    assert model["parent_span_id"] == trace["span_id"]


def test_failing_node(llm: LangchainLlmServer) -> None:
    memory = init()

    def call_model(state: MessagesState) -> dict[str, Any]:
        bad = ChatOpenAI(model="error-model", api_key=KEY, base_url=llm.url + "/v1", max_retries=0)
        return {"messages": [bad.invoke(state["messages"])]}

    graph = StateGraph(MessagesState)
    graph.add_node("model", call_model)
    graph.add_edge(START, "model")
    with tripwire.start_transaction(name="tx"), pytest.raises(Exception, match="bad model"):
        graph.compile().invoke({"messages": [HumanMessage("hi")]})
    _, invoke, model = spans(memory)
    assert invoke["status"] == model["status"] == "internal_error"
    (event,) = memory.events  # from the model's run, not again from the graph's
    assert event["exception"]["values"][-1]["mechanism"] == {"type": "langchain", "handled": False}


def test_interrupt_is_not_an_error(llm: LangchainLlmServer) -> None:
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.types import interrupt

    @tool
    def confirm(city: str) -> str:
        """Ask a human first."""
        return str(interrupt(f"go to {city}?"))

    def ask(state: MessagesState) -> dict[str, Any]:
        confirm.invoke({"city": "Paris"})
        return {}

    memory = init()
    graph = StateGraph(MessagesState)
    graph.add_node("ask", ask)
    graph.add_edge(START, "ask")
    app = graph.compile(checkpointer=InMemorySaver())
    with tripwire.start_transaction(name="tx"):
        result = app.invoke(
            {"messages": [HumanMessage("hi")]}, {"configurable": {"thread_id": "1"}}
        )
    assert result["__interrupt__"][0].value == "go to Paris?"
    tool_span = next(s for s in spans(memory) if s["op"] == "gen_ai.execute_tool")
    assert tool_span.get("status") != "internal_error"
    assert memory.events == []


def test_outputs_withheld_by_data_collection(llm: LangchainLlmServer) -> None:
    memory = init(data_collection={"gen_ai": {"inputs": True, "outputs": False}})
    with tripwire.start_transaction(name="tx"):
        one_node_graph(chat(llm)).invoke({"messages": [HumanMessage("hi")]})
    _, invoke, _ = spans(memory)
    assert "gen_ai.response.text" not in invoke["data"]
    assert json.loads(invoke["data"]["gen_ai.request.messages"])[0]["content"] == "hi"


def test_falls_through_without_the_integration(llm: LangchainLlmServer) -> None:
    memory = init(integrations=[])
    with tripwire.start_transaction(name="tx"):
        one_node_graph(chat(llm)).invoke({"messages": [HumanMessage("hi")]})
    assert spans(memory) == []


# -- against sentry_sdk 2.75 -------------------------------------------------------------

SCRIPT = """
import asyncio, warnings
# Setting up langchain imports every integration module (both SDKs): some warn.
warnings.simplefilter("ignore")
import httpx
from langchain.agents import create_agent
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI
from langgraph.graph import END, START, MessagesState, StateGraph
from sentry_sdk.integrations.langchain import LangchainIntegration
from sentry_sdk.integrations.langgraph import LanggraphIntegration

sentry_sdk.init(
    dsn="https://k@o1.ingest.sentry.io/1", transport=KEEP, traces_sample_rate=1.0,
    default_integrations=False, release="r", send_default_pii=True,
    integrations=[LangchainIntegration(), LanggraphIntegration()],
    stream_gen_ai_spans={stream_gen_ai_spans},
)
url = {url!r}

@tool
def get_weather(city: str) -> str:
    \"\"\"Weather of a city.\"\"\"
    return "sunny in " + city

m = ChatOpenAI(model="gpt-4o", api_key="k", base_url=url + "/v1", max_retries=0)

def call_model(state):
    return {{"messages": [m.invoke(state["messages"])]}}

with sentry_sdk.start_transaction(name="tx"):
    g = StateGraph(MessagesState)
    g.add_node("model", call_model)
    g.add_edge(START, "model")
    g.add_edge("model", END)
    g.compile(name="g").invoke({{"messages": [HumanMessage("hi")]}})
    agent = create_agent(m, tools=[get_weather], system_prompt="brief", name="weather")
    agent.invoke({{"messages": [HumanMessage("weather?")]}})

    async def main():
        async with httpx.AsyncClient() as http:
            a = ChatOpenAI(model="gpt-4o", api_key="k", base_url=url + "/v1",
                           http_async_client=http)
            await create_agent(a, tools=[get_weather]).ainvoke(
                {{"messages": [HumanMessage("again")]}})

    asyncio.run(main())
finish()
"""


_ENVELOPE_ATTRS = ("sentry.", "thread.", "server.", "process.")


def _view(span: dict[str, Any]) -> tuple[Any, ...]:
    if "attributes" in span:  # sentry_sdk's streamed (v2) span
        attrs = {k: v["value"] for k, v in span["attributes"].items()}
        data = {k: v for k, v in attrs.items() if not k.startswith(_ENVELOPE_ATTRS)}
        status = None if span["status"] == "ok" else "internal_error"
        return attrs["sentry.op"], span["name"], attrs["sentry.origin"], status, data
    data = {k: v for k, v in span.get("data", {}).items() if not k.startswith("thread.")}
    return span["op"], span["description"], span["origin"], span.get("status"), data


def shape(found: dict[str, Any]) -> list[tuple[Any, ...]]:
    txs = of_type(found, "transaction")
    views = [_view(s) for tx in txs for s in tx["spans"]]
    views += [_view(s) for item in of_type(found, "span") for s in item["items"]]
    return sorted(views, key=lambda v: (v[0], v[1], json.dumps(v[4], sort_keys=True)))


def test_same_as_sentry_sdk(llm: LangchainLlmServer, tmp_path: Path) -> None:
    # Both settings of stream_gen_ai_spans, one after the other in one interpreter per
    # SDK (importing LangGraph and LangChain is most of a run's cost).
    # With langchain on, both SDKs import every integration module they know while
    # setting up (to turn the ones langchain replaces off): minutes on a loaded machine.
    runs = run_gen_ai_settings(SCRIPT, tmp_path, timeout=600, url=llm.url)
    for stream_gen_ai_spans, sentry, ours in runs:
        # sentry_sdk 2.75 sends gen_ai spans as span (v2) items when streaming them;
        # tripwire keeps them in the transaction: their contents must still agree.
        expected, found = shape(sentry), shape(ours)
        assert found == expected, stream_gen_ai_spans
        assert [v[0] for v in found].count("gen_ai.invoke_agent") == 3
        assert len(found) == 13
