"""The AI integrations under span streaming, against sentry_sdk 2.75 (differential).

With ``trace_lifecycle="stream"`` sentry_sdk 2.75 gives the LLM and agent integrations
a second code path (`traces.start_span` with the ``gen_ai.*`` attributes); tripwire's
integrations have one, whose transaction-model spans stream as `CompatSpan`s. Two
scripts, each run on both SDKs against the loopback fakes of the providers, must send
the same spans: names, statuses, segments, parents, attributes, and the same error
events tied to the same spans. Neither SDK sends a transaction, and no gen_ai span
goes out twice (in transaction mode they leave their transaction as a ``span`` item,
`tripwire.capture.gen_ai_spans`; under streaming they are streamed spans already).

The first script drives the provider clients (OpenAI, Anthropic, Cohere, Mistral,
Hugging Face, Google GenAI, TypeSafe), the deprecated `ai_track` pipeline helper, the
Rust `tracing` layer and a hand-wired OpenTelemetry span processor (sentry_sdk bridges
no OTel span under streaming, nor does tripwire); the second the frameworks (LangChain,
LangGraph, OpenAI Agents, Pydantic AI, MCP), under a parent span and without. (LiteLLM
is left out: importing it costs both runs ~10 s.)
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest
from _side_by_side import dumps, of_type, run_both
from _stream_shapes import by_op, sent
from fakes import (
    cohere_server,
    gemini_server,
    langchain_llm_server,
    llm_server,
    mistral_server,
    openai_agents_server,
    tgi_server,
    typesafe_server,
)

TESTS = str(Path(__file__).parent)

# Attributes that differ by SDK, process, thread or clock, not by what was traced.
_VOLATILE = {
    "sentry.sdk.name",
    "sentry.sdk.version",
    "process.pid",
    "process.command_args",
    "process.runtime.name",
    "process.runtime.version",
    "thread.id",
    "thread.name",
    "gen_ai.response.time_to_first_token",
}


@pytest.fixture(scope="module")
def urls() -> Iterator[dict[str, str]]:
    """Every fake provider, started for the module and stopped after it."""
    with ExitStack() as stack:
        yield {
            name: stack.enter_context(module.serving()).url
            for name, module in (
                ("llm", llm_server),
                ("cohere", cohere_server),
                ("mistral", mistral_server),
                ("tgi", tgi_server),
                ("gemini", gemini_server),
                ("typesafe", typesafe_server),
                ("langchain", langchain_llm_server),
                ("agents", openai_agents_server),
            )
        }


def shape(found: dict[str, Any]) -> dict[str, Any]:
    """The spans and error events sent, without ids, times or SDK facts; order-free."""
    spans = sent(found)
    names = {span["span_id"]: span["name"] for span in spans}
    out = []
    for span in spans:
        attributes = {}
        for key, typed in span.get("attributes", {}).items():
            value = typed["value"]
            if key in _VOLATILE:
                value = "?"
            elif key == "sentry.segment.id":
                value = names.get(value, "<elsewhere>")
            attributes[key] = (value, typed["type"])
        out.append(
            {
                "name": re.sub(r":\d+", ":PORT", span["name"]),
                "status": span["status"],
                "is_segment": span["is_segment"],
                "parent": names.get(span.get("parent_span_id"), span.get("parent_span_id")),
                "attributes": attributes,
            }
        )
    events = []
    for event in of_type(found, "event"):
        trace = event.get("contexts", {}).get("trace", {})
        events.append(
            (
                event["exception"]["values"][-1]["mechanism"],
                event.get("transaction"),
                names.get(trace.get("span_id"), "<no span sent>"),
            )
        )
    return {
        "spans": sorted(out, key=lambda s: json.dumps(s, sort_keys=True)),
        "events": sorted(events, key=json.dumps),
        "other items": sorted(
            {item["type"] for item in found["items"]} - {"span", "event"},
        ),
    }


def check(sentry: dict[str, Any], ours: dict[str, Any]) -> dict[str, Any]:
    """Both SDKs sent the same; what they sent."""
    expected, found = shape(sentry), shape(ours)
    assert found == expected, dumps({"sentry": expected, "tripwire": found})
    assert found["other items"] == []  # no transaction: everything streamed
    ids = [span["span_id"] for span in sent(ours)]
    assert len(ids) == len(set(ids))  # no span sent twice
    return found


def run_and_check(script: str, urls: dict[str, str], tmp_path: Path) -> dict[str, Any]:
    """`script` run by both SDKs against the fake providers; `check`ed."""
    header = f"TESTS = {TESTS!r}\nURLS = {urls!r}\n"
    sentry, ours = run_both(header + script, tmp_path, preload=True)
    return check(sentry, ours)


def _by_op(found: dict[str, Any]) -> dict[str, int]:
    return by_op(found["spans"], lambda typed: typed[0])  # attributes are (value, type)


CLIENTS_SCRIPT = """
import asyncio, json, sys, warnings
warnings.simplefilter("ignore")
sys.path.insert(0, TESTS)
import anthropic, cohere, openai
from google import genai
from huggingface_hub import InferenceClient
from mistralai.client import Mistral
from typesafe_sdk import Noul, TypeSafeBadRequestError, TypeSafeClient
from sentry_sdk.ai.monitoring import ai_track, record_token_usage
from sentry_sdk.integrations.anthropic import AnthropicIntegration
from sentry_sdk.integrations.cohere import CohereIntegration
from sentry_sdk.integrations.google_genai import GoogleGenAIIntegration
from sentry_sdk.integrations.huggingface_hub import HuggingfaceHubIntegration
from sentry_sdk.integrations.mistral import MistralIntegration
from sentry_sdk.integrations.openai import OpenAIIntegration
from sentry_sdk.integrations.rust_tracing import RustTracingIntegration
from sentry_sdk.integrations.typesafe import TypeSafeIntegration


class Ext:
    # A Rust extension's `tracing` output, as the pyo3 bridge hands it to the layer.
    layer = None
    n = 0

    def init(self, layer):
        self.layer = layer

    def span(self, level, name, **fields):
        self.n += 1
        meta = {"level": level, "name": name, "target": "ext::o", "module_path": "ext::o",
                "file": "src/o.rs", "line": 4, "fields": list(fields)}
        attrs = json.dumps({"metadata": meta, **fields})
        return str(self.n), self.layer.on_new_span(attrs, str(self.n))


ext = Ext()
sentry_sdk.init(
    dsn="https://k@o1.ingest.sentry.io/1", transport=KEEP, traces_sample_rate=1.0,
    default_integrations=False, release="r", send_default_pii=True,
    trace_lifecycle="stream",
    integrations=[
        OpenAIIntegration(), AnthropicIntegration(), CohereIntegration(),
        MistralIntegration(), HuggingfaceHubIntegration(), GoogleGenAIIntegration(),
        TypeSafeIntegration(), RustTracingIntegration("ext", ext.init),
    ],
)
hi = [{"role": "user", "content": "hi"}]
oa = openai.OpenAI(api_key="k", base_url=URLS["llm"] + "/v1", max_retries=0)
an = anthropic.Anthropic(api_key="k", base_url=URLS["llm"], max_retries=0)
co = cohere.Client(api_key="k", base_url=URLS["cohere"])
mi = Mistral(api_key="k", server_url=URLS["mistral"])
hf = InferenceClient(base_url=URLS["tgi"])
ge = genai.Client(api_key="k", http_options={"base_url": URLS["gemini"]})


@ai_track("answer", origin="auto.custom")
def answer(question):
    record_token_usage(sentry_sdk.traces.get_current_span(), input_tokens=3, output_tokens=4)
    return question


@ai_track("pipeline")
def pipeline():
    return answer("q", sentry_tags={"k": 1}, sentry_data={"d": [1, 2], "m": {"a": 1}})


@ai_track("broken pipeline", op="custom.op")
def broken():
    raise ValueError("boom")


def calls():
    oa.chat.completions.create(model="gpt-4o", messages=hi, temperature=0.2, max_tokens=9)
    for _ in oa.chat.completions.create(model="gpt-4o", messages=hi, stream=True,
                                        stream_options={"include_usage": True}):
        pass
    oa.embeddings.create(model="emb", input="one")
    oa.responses.create(model="gpt-4o", input="hi", instructions="brief")
    try:
        oa.chat.completions.create(model="error", messages=hi)
    except openai.BadRequestError:
        pass
    an.messages.create(model="claude-x", max_tokens=10, system="s", messages=hi)
    with an.messages.stream(model="claude-x", max_tokens=10, messages=hi) as stream:
        stream.until_done()
    try:
        an.messages.create(model="error", max_tokens=10, messages=hi)
    except anthropic.BadRequestError:
        pass
    co.chat(model="command-r", message="hi", preamble="p")
    co.embed(model="embed-v3", texts=["a", "b"], input_type="search_document")
    mi.chat.complete(model="small", messages=hi, temperature=0.2)
    hf.chat_completion(hi, max_tokens=5)
    ge.models.generate_content(model="gemini-x", contents="hi")
    for _ in ge.models.generate_content_stream(model="gemini-s", contents="hi"):
        pass
    with TypeSafeClient(api_key="k", base_url=URLS["typesafe"], compression=False,
                        model="jev-1") as client:
        client.system_one("I was charged twice", {"billing": Noul(instructions="billing?")})
        try:
            client.system_one("fail", {"billing": Noul(instructions="billing?")})
        except TypeSafeBadRequestError:
            pass
    pipeline()

    async def more():
        a = openai.AsyncOpenAI(api_key="k", base_url=URLS["llm"] + "/v1", max_retries=0)
        async for _ in await a.chat.completions.create(model="m", messages=hi, stream=True):
            pass
        await a.close()
        await ge.aio.models.generate_content(model="gemini-a", contents="hi")

    asyncio.run(more())


with sentry_sdk.traces.start_span(name="request"):
    sentry_sdk.get_current_scope().set_conversation_id("conv-1")
    calls()
    span = ext.span("INFO", "handle", order=7)
    ext.layer.on_record(span[0], json.dumps({"order": 8}), span[1])
    inner = ext.span("TRACE", "filtered")
    ext.layer.on_close(*inner)
    ext.layer.on_close(*span)
# Without a parent each call is a segment; a Rust span outside any span is dropped.
oa.chat.completions.create(model="alone", messages=hi)
an.messages.create(model="alone", max_tokens=10, messages=hi)
lonely = ext.span("INFO", "lonely")
ext.layer.on_close(*lonely)
try:
    broken()
except ValueError:
    pass
sentry_sdk.flush()

# A hand-wired OTel processor (the integration refuses span streaming): both SDKs
# bridge nothing, the error is still reported.
from opentelemetry.sdk.trace import TracerProvider
from sentry_sdk.integrations.opentelemetry import SentrySpanProcessor

sentry_sdk.init(
    dsn="https://k@o1.ingest.sentry.io/1", transport=KEEP, traces_sample_rate=1.0,
    default_integrations=False, trace_lifecycle="stream", instrumenter="otel",
)
provider = TracerProvider()
provider.add_span_processor(SentrySpanProcessor())
with provider.get_tracer("t").start_as_current_span("otel root"):
    try:
        with provider.get_tracer("t").start_as_current_span("otel child"):
            raise KeyError("otel")
    except KeyError:
        sentry_sdk.capture_exception()
finish()
"""


def test_the_provider_clients_stream_as_sentry_sdk(urls: dict[str, str], tmp_path: Path) -> None:
    found = run_and_check(CLIENTS_SCRIPT, urls, tmp_path)
    assert _by_op(found) == {
        "gen_ai.chat": 14,
        "gen_ai.embeddings": 1,
        "gen_ai.responses": 1,
        "gen_ai.evaluate": 2,  # TypeSafe
        # sentry_sdk's Cohere integration keeps its old ops
        "ai.chat_completions.create.cohere": 1,
        "ai.embeddings.create.cohere": 1,
        "ai.pipeline": 1,
        "ai.run": 1,
        "custom.op": 1,
        "function": 1,  # Rust
        "-": 1,  # the parent span
    }, dumps(_by_op(found))
    segments = sorted(s["name"] for s in found["spans"] if s["is_segment"])
    assert segments == ["broken pipeline", "chat alone", "chat alone", "request"]
    assert [(e[0]["type"], e[2]) for e in found["events"]] == [
        ("ai_monitoring", "broken pipeline"),
        ("anthropic", "chat error"),
        ("generic", "<no span sent>"),  # the OTel error: reported, no span bridged
        ("openai", "chat error"),
    ]


FRAMEWORKS_SCRIPT = """
import asyncio, logging, sys, warnings
warnings.simplefilter("ignore")
logging.disable(logging.CRITICAL)
sys.path.insert(0, TESTS)
import openai
from agents import Agent, OpenAIResponsesModel, Runner, function_tool, set_tracing_disabled
from langchain.agents import create_agent
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI, OpenAIEmbeddings
from langgraph.graph import END, START, MessagesState, StateGraph
from mcp import Client
from mcp.server.mcpserver import MCPServer
from pydantic_ai import Agent as PydanticAgent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider
from sentry_sdk.integrations.langchain import LangchainIntegration
from sentry_sdk.integrations.langgraph import LanggraphIntegration
from sentry_sdk.integrations.mcp import MCPIntegration
from sentry_sdk.integrations.openai_agents import OpenAIAgentsIntegration
from sentry_sdk.integrations.pydantic_ai import PydanticAIIntegration

set_tracing_disabled(True)
sentry_sdk.init(
    dsn="https://k@o1.ingest.sentry.io/1", transport=KEEP, traces_sample_rate=1.0,
    default_integrations=False, auto_enabling_integrations=False, release="r",
    send_default_pii=True, trace_lifecycle="stream",
    integrations=[
        LangchainIntegration(), LanggraphIntegration(), OpenAIAgentsIntegration(),
        PydanticAIIntegration(), MCPIntegration(),
    ],
)
lc_url = URLS["langchain"] + "/v1"


@tool
def get_weather(city: str) -> str:
    '''Weather of a city.'''
    return "sunny in " + city


@tool
def broken(city: str) -> str:
    '''Always fails.'''
    raise ValueError("no weather")


@function_tool
def forecast(city: str) -> str:
    '''Weather of a city.'''
    return "sunny in " + city


@function_tool
def no_forecast(city: str) -> str:
    '''Always fails.'''
    raise RuntimeError("no")


app = MCPServer("demo")


@app.tool()
def add(a: int, b: int) -> int:
    return a + b


@app.tool()
def boom(x: str) -> str:
    raise ValueError("boom")


@app.resource("data://config")
def config() -> str:
    return "cfg"


def langchain_calls():
    m = ChatOpenAI(model="gpt-4o", api_key="k", base_url=lc_url, max_retries=0, max_tokens=9)
    m.invoke([SystemMessage("s"), HumanMessage("hi")])
    for _ in m.stream("hi"):
        pass
    get_weather.invoke({"city": "Paris"})
    try:
        broken.invoke({"city": "Paris"})
    except ValueError:
        pass
    OpenAIEmbeddings(model="emb", api_key="k", base_url=lc_url,
                     check_embedding_ctx_length=False).embed_query("one")
    g = StateGraph(MessagesState)
    g.add_node("model", lambda state: {"messages": [m.invoke(state["messages"])]})
    g.add_edge(START, "model")
    g.add_edge("model", END)
    g.compile(name="g").invoke({"messages": [HumanMessage("hi")]})
    agent = create_agent(m, tools=[get_weather], system_prompt="brief", name="weather")
    agent.invoke({"messages": [HumanMessage("weather?")]})


async def agent_calls():
    c = openai.AsyncOpenAI(api_key="k", base_url=URLS["agents"] + "/v1", max_retries=0)
    model = OpenAIResponsesModel(model="gpt-4o", openai_client=c)
    await Runner.run(Agent(name="A", instructions="you are a", model=model,
                           tools=[forecast]), "hello")
    # The library keeps going after a tool fails: the failure marks the current span.
    await Runner.run(Agent(name="X", model=model, tools=[no_forecast]), "hello")
    try:
        await Runner.run(Agent(name="E", model=OpenAIResponsesModel(
            model="error", openai_client=c)), "hello")
    except openai.BadRequestError:
        pass
    p = OpenAIProvider(openai_client=c)
    await PydanticAgent(OpenAIChatModel("gpt-4o", provider=p), name="weather",
                        instructions="be brief").run("hello")
    await c.close()
    async with Client(app) as mc:
        await mc.call_tool("add", {"a": 1, "b": 2})
        await mc.call_tool("boom", {"x": "y"})
        await mc.read_resource("data://config")


with sentry_sdk.traces.start_span(name="request"):
    sentry_sdk.get_current_scope().set_conversation_id("conv-1")
    langchain_calls()
    asyncio.run(agent_calls())
# Without a parent: each run is a segment of its own.
asyncio.run(agent_calls())
finish()
"""


def test_the_agent_frameworks_stream_as_sentry_sdk(urls: dict[str, str], tmp_path: Path) -> None:
    found = run_and_check(FRAMEWORKS_SCRIPT, urls, tmp_path)
    assert _by_op(found) == {
        "gen_ai.chat": 17,
        "gen_ai.embeddings": 2,
        "gen_ai.execute_tool": 7,
        "gen_ai.invoke_agent": 10,
        "mcp.server": 6,
        "-": 7,  # the parent span and the OpenAI Agents workflows
    }, dumps(_by_op(found))
    segments = sorted(s["name"] for s in found["spans"] if s["is_segment"])
    assert segments == [
        "A workflow",
        "E workflow",
        "X workflow",
        "invoke_agent weather",
        "request",
        "resources/read data://config",
        "tools/call add",
        "tools/call boom",
    ]
    failed_tools = [s["status"] for s in found["spans"] if s["name"] == "execute_tool no_forecast"]
    assert failed_tools == ["error", "error"]
    assert [(e[0]["type"], e[2]) for e in found["events"]] == [
        ("langchain", "execute_tool broken"),
        ("openai_agents", "E workflow"),
        ("openai_agents", "E workflow"),
    ]
