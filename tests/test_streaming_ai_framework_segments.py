"""LangChain, LangGraph, OpenAI Agents and Pydantic AI spans started with no parent,
side by side with sentry-sdk 2.75.

Under ``trace_lifecycle="stream"`` each of sentry_sdk's spans of these frameworks starts
with `traces.start_span`: with no active span that is a segment (a root span), which
`traces_sampler` and `ignore_spans` see with the attributes it starts with. In
transaction mode it depends on the span: a LangChain model, tool or embeddings run, or
a model request of Pydantic AI's `Agent.iter`, with no parent is a span that is never
sent, while a graph invocation, an agents workflow or a Pydantic AI agent run starts a
transaction (`get_start_span_function`).

One script, run once per SDK (forked from a zygote that imported the libraries), two
scenarios: streaming, then transactions. Each makes every framework's spans with no
parent (LangChain's sync and async, and a model run inside a tool run), then LangChain
runs under a parent the sampler keeps and under one it drops. LangChain's models are
its fakes (no network); the rest talk to the loopback OpenAI fake.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _side_by_side import of_type, run_each
from _stream_shapes import VOLATILE, assert_same, masked, sent, values
from fakes import openai_agents_server

TESTS = str(Path(__file__).parent)
# Attributes whose values differ between runs (the fake's ids, the timing).
_VARYING = frozenset({"gen_ai.response.id", "gen_ai.response.time_to_first_token"})

SCRIPT = """
import asyncio, logging, sys, warnings
warnings.simplefilter("ignore")
logging.disable(logging.CRITICAL)
sys.path.insert(0, TESTS)
import agents, openai
from agents import Agent as OpenAIAgent, OpenAIChatCompletionsModel, Runner, function_tool
from langchain_core.language_models.fake import FakeListLLM
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import HumanMessage
from langchain_core.tools import tool
from langchain_openai import OpenAIEmbeddings
from langgraph.graph import END, START, MessagesState, StateGraph
from pydantic_ai import Agent as PydanticAgent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider
import sentry_sdk.traces
from sentry_sdk.integrations.langchain import LangchainIntegration
from sentry_sdk.integrations.langgraph import LanggraphIntegration
from sentry_sdk.integrations.openai_agents import OpenAIAgentsIntegration
from sentry_sdk.integrations.pydantic_ai import PydanticAIIntegration

agents.set_tracing_disabled(True)


def integrations():
    return [
        LangchainIntegration(), LanggraphIntegration(), OpenAIAgentsIntegration(),
        PydanticAIIntegration(),
    ]


def sampler(context):
    span = context["transaction_context"]
    data = span.get("data") or {}
    NOTES.append([
        span.get("name"), span.get("op"), span.get("origin"),
        sorted((k, v) for k, v in data.items() if not k.startswith(("thread.", "process.")))
    ])
    return 0.0 if (span.get("name") or "").endswith("dropped") else 1.0


@tool
def lc_weather(city: str) -> str:
    '''Weather of a city.'''
    return "sunny in " + city


@tool
def lc_asking(question: str) -> str:
    '''Asks a model.'''
    return FakeListChatModel(responses=["asked"]).invoke([HumanMessage(question)]).content


@function_tool
def agents_weather(city: str) -> str:
    '''Weather of a city.'''
    return "sunny in " + city


def langchain_calls():
    FakeListChatModel(responses=["hello"]).invoke([HumanMessage("hi")])
    FakeListLLM(responses=["done"]).invoke("complete")
    lc_weather.invoke({"city": "Paris"})
    lc_asking.invoke({"question": "why"})  # a model run under a tool run
    embed = OpenAIEmbeddings(model="text-embedding-3-small", api_key="k",
                             base_url=URL + "/v1", max_retries=0, check_embedding_ctx_length=False)
    embed.embed_query("one")


def langgraph_calls():
    model = FakeListChatModel(responses=["from graph"])

    def call_model(state):
        return {"messages": [model.invoke(state["messages"])]}

    g = StateGraph(MessagesState)
    g.add_node("model", call_model)
    g.add_edge(START, "model")
    g.add_edge("model", END)
    g.compile(name="g").invoke({"messages": [HumanMessage("hi")]})


async def agent_calls():
    c = openai.AsyncOpenAI(api_key="k", base_url=URL + "/v1", max_retries=0)
    chat = OpenAIChatCompletionsModel(model="gpt-4o", openai_client=c)
    await Runner.run(OpenAIAgent(name="A", model=chat, tools=[agents_weather]), "hi")
    p = OpenAIProvider(openai_client=c)
    agent = PydanticAgent(OpenAIChatModel("gpt-4o", provider=p), name="weather")

    @agent.tool_plain
    def get_weather(city: str) -> str:
        '''Weather of a city.'''
        return "sunny in " + city

    await agent.run("hello")
    # `iter` is not an agent run to sentry_sdk: its model requests and tools have no parent.
    async with agent.iter("again") as run:
        async for _ in run:
            pass
    await FakeListChatModel(responses=["async"]).ainvoke([HumanMessage("hi")])
    await c.close()


def parent(name):
    if STREAM:
        return sentry_sdk.traces.start_span(name=name)
    return sentry_sdk.start_transaction(name=name, op="parent")


def with_parent():
    for name in ("parent kept", "parent dropped"):
        with parent(name):
            FakeListChatModel(responses=["under"]).invoke([HumanMessage("hi")])
            lc_weather.invoke({"city": "Rome"})


def everything():
    langchain_calls()
    langgraph_calls()
    asyncio.run(agent_calls())
    with_parent()


STREAM = True
sentry_sdk.init(
    transport=KEEP, release="r", default_integrations=False, auto_enabling_integrations=False,
    integrations=integrations(), trace_lifecycle="stream", traces_sampler=sampler,
    # Matched by an attribute the segment starts with.
    ignore_spans=[{"attributes": {"gen_ai.operation.name": "embeddings"}}],
)
everything()
next_scenario()

STREAM = False
sentry_sdk.init(
    transport=KEEP, release="r", default_integrations=False, auto_enabling_integrations=False,
    integrations=integrations(), traces_sampler=sampler,
)
everything()
finish()
"""


@pytest.fixture(scope="module")
def url() -> Iterator[str]:
    with openai_agents_server.serving() as server:
        yield server.url


def _streamed(found: dict[str, Any]) -> list[str]:
    """The streamed spans: name, segment and parent by name, status, and the attributes
    (ids by span name, volatile values masked)."""
    spans = sent(found)
    names = {span["span_id"]: span["name"] for span in spans}
    out = []
    for span in spans:
        attrs = masked(values(span), VOLATILE | _VARYING)
        attrs["sentry.segment.id"] = names.get(attrs.get("sentry.segment.id"), "-")
        shape = {
            "name": span["name"],
            "segment": span["is_segment"],
            "parent": names.get(span.get("parent_span_id"), "-"),
            "status": span["status"],
            "attributes": attrs,
        }
        out.append(json.dumps(shape, sort_keys=True))
    return sorted(out)


def _transactions(found: dict[str, Any]) -> list[str]:
    """Each transaction's name, op and origin."""
    heads = []
    for event in of_type(found, "transaction"):
        trace = event["contexts"]["trace"]
        heads.append(json.dumps([event["transaction"], trace.get("op"), trace.get("origin")]))
    return sorted(heads)


def _children(found: dict[str, Any]) -> list[str]:
    """The spans of transaction mode (op, name, origin) wherever they went: sentry_sdk
    sends gen_ai spans as ``span`` items (`stream_gen_ai_spans`), tripwire keeps them in
    their transaction (see tests/test_integration_pydantic_ai.py)."""
    out = [
        f"{s.get('op')} {s.get('description')} {s.get('origin')}"
        for event in of_type(found, "transaction")
        for s in event.get("spans", [])
    ]
    for span in sent(found):
        attrs = values(span)
        out.append(f"{attrs.get('sentry.op')} {span['name']} {attrs.get('sentry.origin')}")
    return sorted(out)


def _notes(found: dict[str, Any]) -> list[str]:
    return sorted(json.dumps(note) for note in found["notes"])


def test_framework_spans_without_parent_as_sentry_sdk(tmp_path: Path, url: str) -> None:
    script = f"TESTS = {TESTS!r}\nURL = {url!r}\n" + SCRIPT
    (stream_sentry, stream_ours), (tx_sentry, tx_ours) = run_each(
        script, tmp_path, timeout=180, preload=True
    )
    assert_same(_notes(stream_ours), _notes(stream_sentry))
    assert_same(_streamed(stream_ours), _streamed(stream_sentry))
    assert_same(_notes(tx_ours), _notes(tx_sentry))
    assert_same(_transactions(tx_ours), _transactions(tx_sentry))
    assert_same(_children(tx_ours), _children(tx_sentry))
    _check_what_was_covered(stream_ours, tx_ours)


def _check_what_was_covered(stream: dict[str, Any], tx: dict[str, Any]) -> None:
    """The runs with no parent are segments under streaming, and the sampler saw their
    start attributes; in transaction mode only the agent runs are transactions."""
    segments = sorted(
        (span["name"], values(span)["sentry.origin"]) for span in sent(stream) if span["is_segment"]
    )
    assert segments == [
        ("A workflow", "auto.ai.openai_agents"),
        ("chat", "auto.ai.langchain"),
        ("chat", "auto.ai.langchain"),  # `ainvoke`'s
        ("chat gpt-4o", "auto.ai.pydantic_ai"),  # `Agent.iter`'s model requests
        ("chat gpt-4o", "auto.ai.pydantic_ai"),
        ("execute_tool lc_asking", "auto.ai.langchain"),
        ("execute_tool lc_weather", "auto.ai.langchain"),
        ("invoke_agent g", "auto.ai.langgraph"),
        ("invoke_agent weather", "auto.ai.pydantic_ai"),
        ("parent kept", "manual"),
        ("text_completion", "auto.ai.langchain"),
    ]
    seen = {note[0]: dict(note[3]) for note in map(json.loads, _notes(stream))}
    assert seen["execute_tool lc_weather"] == {
        "sentry.op": "gen_ai.execute_tool",
        "sentry.origin": "auto.ai.langchain",
    }
    # The embeddings segment (and its child) is ignored by the operation it starts with.
    assert not [span for span in sent(stream) if span["name"].startswith("embeddings")]
    assert "embeddings text-embedding-3-small" not in seen
    assert seen["chat gpt-4o"]["gen_ai.response.streaming"] is False
    # Under a parent the sampler dropped: nothing; under a kept one: children.
    names = {span["span_id"]: span["name"] for span in sent(stream)}
    langchain = sorted(
        f"{names[span['parent_span_id']]} > {span['name']}"
        for span in sent(stream)
        if not span["is_segment"] and values(span)["sentry.origin"] == "auto.ai.langchain"
    )
    assert langchain == [
        "execute_tool lc_asking > chat",
        "invoke_agent g > chat",
        "parent kept > chat",
        "parent kept > execute_tool lc_weather",
    ]
    heads = [json.loads(head)[0] for head in _transactions(tx)]
    assert heads == ["A workflow", "invoke_agent g", "invoke_agent weather", "parent kept"]
