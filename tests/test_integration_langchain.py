"""The LangChain integration: langchain-openai's real models against a loopback fake.

`ChatOpenAI` and `OpenAIEmbeddings` talk to `fakes.langchain_llm_server` (the OpenAI
fake of `llm_server`, which stops calling tools once a tool has answered) on
127.0.0.1; LangChain and tripwire are real, only the model is not. The differential
test runs one script on sentry_sdk 2.75 and on tripwire, each in its own interpreter.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _receiver import Receiver
from _side_by_side import of_type, run_script
from fakes.langchain_llm_server import LangchainLlmServer, serving
from fakes.llm_server import TEXT

import tripwire
from tripwire.integrations.langchain import LangchainIntegration
from tripwire.testing import MemoryTransport

if TYPE_CHECKING:
    import httpx
    from langchain_core.language_models.fake import FakeListLLM
    from langchain_core.messages import HumanMessage, SystemMessage
    from langchain_core.tools import BaseTool
    from langchain_openai import ChatOpenAI, OpenAIEmbeddings
    from pydantic import SecretStr

    KEY: SecretStr
    get_weather: BaseTool
    broken: BaseTool
    measured: BaseTool

USAGE = {
    "gen_ai.usage.input_tokens": 12,
    "gen_ai.usage.output_tokens": 5,
    "gen_ai.usage.total_tokens": 17,
    "gen_ai.usage.cache_read.input_tokens": 4,
    "gen_ai.usage.reasoning.output_tokens": 2,
}


@pytest.fixture(autouse=True, scope="module")
def _langchain() -> None:
    """LangChain is imported when the module's tests start, not at collection (every xdist
    worker collects every module; tests/_lazy.py); its tools are made here with it."""
    global httpx, FakeListLLM, HumanMessage, SystemMessage, ChatOpenAI, OpenAIEmbeddings
    global KEY, get_weather, broken, measured
    import httpx
    from langchain_core.language_models.fake import FakeListLLM
    from langchain_core.messages import HumanMessage, SystemMessage
    from langchain_core.tools import tool
    from langchain_openai import ChatOpenAI, OpenAIEmbeddings
    from pydantic import SecretStr

    KEY = SecretStr("k")

    @tool
    def get_weather(city: str) -> str:
        """Weather of a city."""
        return f"sunny in {city}"

    @tool
    def broken(city: str) -> str:
        """Always fails."""
        raise ValueError(f"no weather for {city}")

    @tool
    def measured(city: str) -> str:
        """Weather of a city, measured in a span of its own."""
        with tripwire.start_span(op="weather.lookup", name=city):
            return "sunny"


@pytest.fixture(scope="module")
def llm() -> Iterator[LangchainLlmServer]:
    with serving() as server:
        yield server


def chat(llm: LangchainLlmServer, model: str = "gpt-4o", **kwargs: Any) -> ChatOpenAI:
    return ChatOpenAI(model=model, api_key=KEY, base_url=llm.url + "/v1", max_retries=0, **kwargs)


def embeddings(llm: LangchainLlmServer, **kwargs: Any) -> OpenAIEmbeddings:
    return OpenAIEmbeddings(
        model="text-embedding-3-small",
        api_key=KEY,
        base_url=llm.url + "/v1",
        check_embedding_ctx_length=False,
        **kwargs,
    )


def init(**options: Any) -> MemoryTransport:
    memory = MemoryTransport()
    options.setdefault("integrations", [LangchainIntegration()])
    # gen_ai spans stay in their transaction, where these tests read them (the default
    # moves them to a span item: tests/test_trace_templates.py and the differential).
    options.setdefault("stream_gen_ai_spans", False)
    tripwire.init(transport=memory, traces_sample_rate=1.0, default_integrations=False, **options)
    return memory


def spans(memory: MemoryTransport) -> list[dict[str, Any]]:
    tripwire.flush()
    return [span for tx in memory.transactions for span in tx["spans"]]


def usage(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k.startswith("gen_ai.usage.")}


def test_chat_model_span(llm: LangchainLlmServer) -> None:
    memory = init(send_default_pii=True)
    with tripwire.start_transaction(name="tx") as tx:
        answer = chat(llm, temperature=0.3, max_tokens=40).invoke(
            [SystemMessage("be nice"), HumanMessage("hi")]
        )
    assert answer.content == TEXT
    (span,) = spans(memory)
    assert (span["op"], span["description"], span["origin"]) == (
        "gen_ai.chat",
        "chat gpt-4o",
        "auto.ai.langchain",
    )
    assert span["parent_span_id"] == tx.span_id
    data = span["data"]
    assert data["gen_ai.operation.name"] == "chat"
    assert data["gen_ai.system"] == "openai-chat"
    assert data["gen_ai.request.model"] == "gpt-4o"
    assert (data["gen_ai.request.temperature"], data["gen_ai.request.max_tokens"]) == (0.3, 40)
    assert data["gen_ai.response.model"] == "gpt-4o-2024"
    assert data["gen_ai.response.finish_reasons"] == ["stop"]
    assert usage(data) == USAGE
    assert json.loads(data["gen_ai.system_instructions"]) == [
        {"type": "text", "content": "be nice"}
    ]
    assert json.loads(data["gen_ai.request.messages"]) == [{"role": "user", "content": "hi"}]
    assert data["gen_ai.response.text"] == TEXT
    assert "status" not in span or span["status"] != "internal_error"


def test_prompts_need_permission(llm: LangchainLlmServer) -> None:
    memory = init()  # no send_default_pii
    with tripwire.start_transaction(name="tx"):
        chat(llm).bind_tools([get_weather]).invoke("weather?")
    (span,) = spans(memory)
    data = span["data"]
    for key in (
        "gen_ai.request.messages",
        "gen_ai.response.text",
        "gen_ai.response.tool_calls",
        "gen_ai.system_instructions",
    ):
        assert key not in data
    # As sentry_sdk before data_collection: the offered tools are always sent.
    assert json.loads(data["gen_ai.request.available_tools"]) == [
        {"name": "get_weather", "description": "Weather of a city."}
    ]
    assert data["gen_ai.response.finish_reasons"] == ["tool_calls"]
    assert usage(data) == USAGE


def test_include_prompts_false(llm: LangchainLlmServer) -> None:
    memory = init(send_default_pii=True, integrations=[LangchainIntegration(include_prompts=False)])
    with tripwire.start_transaction(name="tx"):
        chat(llm).invoke("hi")
    (span,) = spans(memory)
    assert "gen_ai.request.messages" not in span["data"]
    assert "gen_ai.response.text" not in span["data"]


def test_data_collection_outputs_only(llm: LangchainLlmServer) -> None:
    memory = init(data_collection={"gen_ai": {"inputs": False, "outputs": True}})
    with tripwire.start_transaction(name="tx"):
        chat(llm).bind_tools([get_weather]).invoke("weather?")
    (span,) = spans(memory)
    data = span["data"]
    assert "gen_ai.request.messages" not in data
    assert "gen_ai.request.available_tools" not in data
    assert "gen_ai.tool.definitions" not in data
    (call,) = json.loads(data["gen_ai.response.tool_calls"])
    assert (call["name"], call["args"]) == ("get_weather", {"city": "Paris"})


def test_data_collection_names_tools_as_definitions(llm: LangchainLlmServer) -> None:
    memory = init(data_collection={"gen_ai": {"inputs": True, "outputs": False}})
    with tripwire.start_transaction(name="tx"):
        chat(llm).bind_tools([get_weather]).invoke("weather?")
    (span,) = spans(memory)
    data = span["data"]
    assert json.loads(data["gen_ai.tool.definitions"])[0]["name"] == "get_weather"
    assert json.loads(data["gen_ai.request.messages"]) == [{"role": "user", "content": "weather?"}]
    assert "gen_ai.response.text" not in data


def test_stream_span_ends_after_the_last_chunk(llm: LangchainLlmServer) -> None:
    memory = init(send_default_pii=True)
    with tripwire.start_transaction(name="tx"):
        pieces = []
        last_seen = 0.0
        for chunk in chat(llm).stream("hi"):
            pieces.append(chunk.content)
            last_seen = time.time()
    assert "".join(str(p) for p in pieces) == TEXT
    (span,) = spans(memory)
    assert span["op"] == "gen_ai.chat"
    assert span["data"]["gen_ai.response.text"] == TEXT
    assert span["data"]["gen_ai.response.finish_reasons"] == ["stop"]
    end = datetime.fromisoformat(span["timestamp"].replace("Z", "+00:00")).timestamp()
    assert end >= last_seen - 1e-3  # ended after the caller had the last chunk


def test_stream_with_usage(llm: LangchainLlmServer) -> None:
    memory = init()
    with tripwire.start_transaction(name="tx"):
        for _ in chat(llm, stream_usage=True).stream("hi"):
            pass
    (span,) = spans(memory)
    assert usage(span["data"]) == USAGE


def test_async_invoke_and_stream(llm: LangchainLlmServer) -> None:
    memory = init(send_default_pii=True)

    async def main() -> str:
        async with httpx.AsyncClient() as http:  # closed in its loop: no socket left
            model = chat(llm, http_async_client=http)
            with tripwire.start_transaction(name="tx"):
                await model.ainvoke("hi")
                return "".join([str(c.content) async for c in model.astream("again")])

    assert asyncio.run(main()) == TEXT
    plain, streamed = spans(memory)
    assert plain["data"]["gen_ai.usage.total_tokens"] == 17
    assert json.loads(streamed["data"]["gen_ai.request.messages"]) == [
        {"role": "user", "content": "again"}
    ]
    assert streamed["data"]["gen_ai.response.text"] == TEXT


def test_tool_span(llm: LangchainLlmServer) -> None:
    memory = init(send_default_pii=True)
    with tripwire.start_transaction(name="tx"):
        assert get_weather.invoke({"city": "Paris"}) == "sunny in Paris"
    (span,) = spans(memory)
    assert (span["op"], span["description"]) == ("gen_ai.execute_tool", "execute_tool get_weather")
    data = span["data"]
    assert data["gen_ai.tool.name"] == "get_weather"
    assert data["gen_ai.tool.description"] == "Weather of a city."
    assert json.loads(data["gen_ai.tool.input"]) == {"city": "Paris"}
    assert data["gen_ai.tool.output"] == "sunny in Paris"


def test_tool_error_is_an_event(llm: LangchainLlmServer) -> None:
    memory = init()
    with tripwire.start_transaction(name="tx"), pytest.raises(ValueError, match="Paris"):
        broken.invoke({"city": "Paris"})
    (span,) = spans(memory)
    assert span["status"] == "internal_error"
    (event,) = memory.events
    (exc,) = event["exception"]["values"]
    assert (exc["type"], exc["mechanism"]) == (
        "ValueError",
        {"type": "langchain", "handled": False},
    )
    assert event["contexts"]["trace"]["span_id"] == span["span_id"]


def test_model_error_is_an_event(llm: LangchainLlmServer) -> None:
    import openai

    memory = init()
    with tripwire.start_transaction(name="tx"), pytest.raises(openai.BadRequestError):
        chat(llm, model="error-model").invoke("hi")
    (span,) = spans(memory)
    assert (span["description"], span["status"]) == ("chat error-model", "internal_error")
    (event,) = memory.events
    assert event["exception"]["values"][-1]["mechanism"] == {"type": "langchain", "handled": False}
    assert event["contexts"]["trace"]["span_id"] == span["span_id"]


def test_embeddings(llm: LangchainLlmServer) -> None:
    memory = init(send_default_pii=True)
    model = embeddings(llm)

    async def documents() -> list[list[float]]:
        async with httpx.AsyncClient() as http:  # closed in its loop: no socket left
            return await embeddings(llm, http_async_client=http).aembed_documents(["c"])

    with tripwire.start_transaction(name="tx") as tx:
        assert model.embed_documents(["a", "b"])[1] == [0.25, 0.5, 0.75]
        model.embed_query("one")
        asyncio.run(documents())
    docs, query, inner, async_docs = spans(memory)
    for span in (docs, query, inner, async_docs):
        assert (span["op"], span["description"], span["origin"]) == (
            "gen_ai.embeddings",
            "embeddings text-embedding-3-small",
            "auto.ai.langchain",
        )
        assert span["data"]["gen_ai.request.model"] == "text-embedding-3-small"
    assert docs["data"]["gen_ai.embeddings.input"] == '["a", "b"]'
    assert query["data"]["gen_ai.embeddings.input"] == '["one"]'
    # As sentry_sdk: embed_query runs embed_documents, whose span nests in the query's.
    assert (query["parent_span_id"], inner["parent_span_id"]) == (tx.span_id, query["span_id"])
    assert async_docs["data"]["gen_ai.embeddings.input"] == '["c"]'


def test_completion_model(llm: LangchainLlmServer) -> None:
    memory = init(send_default_pii=True)
    with tripwire.start_transaction(name="tx"):
        FakeListLLM(responses=["an answer"]).invoke("a prompt")
    (span,) = spans(memory)
    assert (span["op"], span["description"]) == ("gen_ai.text_completion", "text_completion")
    data = span["data"]
    assert data["gen_ai.system"] == "fake-list"
    assert json.loads(data["gen_ai.request.messages"]) == [
        {"role": "user", "content": {"type": "text", "text": "a prompt"}}
    ]
    assert data["gen_ai.response.text"] == "an answer"


def test_spans_started_inside_a_run_nest_under_it(llm: LangchainLlmServer) -> None:
    from langchain_core.prompts import ChatPromptTemplate

    memory = init()
    chain = ChatPromptTemplate.from_messages([("user", "{q}")]) | chat(llm)
    with tripwire.start_transaction(name="tx") as tx:
        chain.invoke({"q": "hello"})
        measured.invoke({"city": "Paris"})
    model, tool_span, lookup = spans(memory)
    # Chains have no span of their own (as sentry_sdk): the model's is the transaction's.
    assert (model["op"], model["parent_span_id"]) == ("gen_ai.chat", tx.span_id)
    assert tool_span["op"] == "gen_ai.execute_tool"
    assert (lookup["op"], lookup["parent_span_id"]) == ("weather.lookup", tool_span["span_id"])


def test_without_a_transaction_nothing_is_sent(llm: LangchainLlmServer) -> None:
    memory = init()
    chat(llm).invoke("hi")
    tripwire.flush()
    assert memory.transactions == []  # as sentry_sdk: model spans do not start transactions


def test_falls_through_without_the_integration(llm: LangchainLlmServer) -> None:
    memory = init(integrations=[])
    with tripwire.start_transaction(name="tx"):
        assert chat(llm).invoke("hi").content == TEXT
    assert spans(memory) == []


def test_max_spans_is_deprecated() -> None:
    with pytest.warns(DeprecationWarning, match="max_spans"):
        integration = LangchainIntegration(max_spans=5)
    assert integration.max_spans == 5


def test_sent_to_a_receiver(rx: Receiver, llm: LangchainLlmServer) -> None:
    tripwire.init(
        dsn=rx.dsn(),
        traces_sample_rate=1.0,
        default_integrations=False,
        integrations=[LangchainIntegration()],
    )
    model = chat(llm)
    with tripwire.start_transaction(name="tx"):
        model.invoke("hi")
    model.root_client.close()  # its keep-alive connection holds a thread of the fake
    tripwire.flush()
    rx.wait_for(1)
    (tx,) = (item.payload.json for item in rx.items("transaction"))
    assert tx["spans"] == []  # by default gen_ai spans travel beside it, as a span item
    (container,) = (json.loads(item.get_bytes()) for item in rx.items("span"))
    (span,) = container["items"]
    attributes = span["attributes"]
    assert attributes["sentry.op"]["value"] == "gen_ai.chat"
    assert attributes["gen_ai.usage.total_tokens"]["value"] == 17


def _run(code: str, llm: LangchainLlmServer) -> str:
    result = subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning:tripwire", "-c", code, llm.url],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_openai_integration_deactivated(llm: LangchainLlmServer) -> None:
    # The default set: langchain is auto-enabled and turns the OpenAI integration
    # off, so one model call is one span, not a LangChain span over an OpenAI one.
    code = (
        "import sys, tripwire\n"
        "from tripwire.testing import MemoryTransport\n"
        "memory = MemoryTransport()\n"
        "tripwire.init(transport=memory, traces_sample_rate=1.0, stream_gen_ai_spans=False)\n"
        "names = tripwire.get_client().integrations\n"
        "assert 'langchain' in names and 'openai' not in names, sorted(names)\n"
        "from langchain_openai import ChatOpenAI\n"
        "m = ChatOpenAI(model='gpt-4o', api_key='k', base_url=sys.argv[1] + '/v1')\n"
        "with tripwire.start_transaction(name='tx'):\n"
        "    m.invoke('hi')\n"
        "tripwire.flush()\n"
        "(tx,) = memory.transactions\n"
        "print([s['origin'] for s in tx['spans'] if s['op'].startswith('gen_ai.')])\n"
    )
    assert _run(code, llm).strip() == "['auto.ai.langchain']"


def test_import_tripwire_does_not_import_langchain(llm: LangchainLlmServer) -> None:
    code = (
        "import sys, tripwire\n"
        "from tripwire.integrations.langchain import LangchainIntegration\n"
        "tripwire.init(dsn='http://k@127.0.0.1:9/1', default_integrations=False,\n"
        "              integrations=[LangchainIntegration()])\n"
        "assert not [m for m in sys.modules if m.startswith('langchain')]\n"
        "import langchain_core.callbacks.manager as m\n"
        "assert getattr(m._configure, '__tripwire_langchain__', False)\n"
        "import langchain_openai\n"
        "assert getattr(langchain_openai.OpenAIEmbeddings.embed_query,\n"
        "               '__tripwire_langchain__', False)\n"
    )
    _run(code, llm)


# -- against sentry_sdk 2.75 -------------------------------------------------------------

SCRIPT = """
import asyncio, warnings
# Setting up langchain imports every integration module (both SDKs): some warn.
warnings.simplefilter("ignore")
from langchain_core.language_models.fake import FakeListLLM
from langchain_core.messages import HumanMessage, SystemMessage
from langchain_core.tools import tool
from langchain_openai import ChatOpenAI, OpenAIEmbeddings
from sentry_sdk.integrations.langchain import LangchainIntegration

sentry_sdk.init(
    dsn="https://k@o1.ingest.sentry.io/1", transport=KEEP, traces_sample_rate=1.0,
    default_integrations=False, integrations=[LangchainIntegration()], release="r",
    send_default_pii=True, stream_gen_ai_spans={stream_gen_ai_spans},
)
url = {url!r}

@tool
def get_weather(city: str) -> str:
    \"\"\"Weather of a city.\"\"\"
    return "sunny in " + city

@tool
def broken(city: str) -> str:
    \"\"\"Always fails.\"\"\"
    raise ValueError("no weather")

m = ChatOpenAI(model="gpt-4o", api_key="k", base_url=url + "/v1", max_retries=0,
               temperature=0.2, max_tokens=9)
e = OpenAIEmbeddings(model="emb", api_key="k", base_url=url + "/v1",
                     check_embedding_ctx_length=False)
with sentry_sdk.start_transaction(name="tx"):
    sentry_sdk.get_current_scope().set_conversation_id("conv-1")
    m.invoke([SystemMessage("s"), HumanMessage("hi"), HumanMessage("again")])
    m.bind_tools([get_weather]).invoke("weather?")
    for _ in m.stream("hi"):
        pass
    for _ in ChatOpenAI(model="u", api_key="k", base_url=url + "/v1",
                        stream_usage=True).stream("hi"):
        pass
    get_weather.invoke({{"city": "Paris"}})
    try:
        broken.invoke({{"city": "Paris"}})
    except ValueError:
        pass
    try:
        ChatOpenAI(model="error", api_key="k", base_url=url + "/v1", max_retries=0).invoke("x")
    except Exception:
        pass
    e.embed_query("one")
    FakeListLLM(responses=["a"]).invoke("p")

    async def main():
        await m.ainvoke("hi")
        async for _ in m.astream("hi"):
            pass
        await e.aembed_documents(["a", "b"])

    asyncio.run(main())
finish()
"""


def run_both(script: str, tmp_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """`script` on sentry_sdk, then on tripwire (as `_side_by_side.run_both`).

    With more time: with langchain on, both SDKs import every integration module
    they know while setting up (to turn the ones langchain replaces off).
    """
    found = []
    for sdk in ("sentry", "tripwire"):
        # In a child of a zygote that imported langchain once (tests/_zygote.py).
        result = run_script(script, sdk, tmp_path, 600, preload=True)
        assert result.returncode == 0, result.stderr
        found.append(json.loads(result.stdout.strip().splitlines()[-1]))
    return found[0], found[1]


# Attributes of sentry_sdk's streamed (v2) spans that say where, not what.
_ENVELOPE_ATTRS = ("sentry.", "thread.", "server.", "process.")


def _span_view(span: dict[str, Any]) -> dict[str, Any]:
    return {
        "op": span.get("op"),
        "description": span.get("description"),
        "origin": span.get("origin"),
        "status": span.get("status"),
        "data": {k: v for k, v in span.get("data", {}).items() if not k.startswith("thread.")},
    }


def _v2_view(span: dict[str, Any]) -> dict[str, Any]:
    attrs = {k: v["value"] for k, v in span["attributes"].items()}
    return {
        "op": attrs["sentry.op"],
        "description": span["name"],
        "origin": attrs["sentry.origin"],
        "status": None if span["status"] == "ok" else "internal_error",
        "data": {k: v for k, v in attrs.items() if not k.startswith(_ENVELOPE_ATTRS)},
    }


def _key(span: dict[str, Any]) -> tuple[str, str, str]:
    return (span["op"], span["description"], json.dumps(span["data"], sort_keys=True))


def shape(found: dict[str, Any], sort: bool) -> dict[str, Any]:
    txs = of_type(found, "transaction")
    spans = [_span_view(s) for tx in txs for s in tx["spans"]]
    spans += [_v2_view(s) for item in of_type(found, "span") for s in item["items"]]
    if sort:
        spans.sort(key=_key)
    events = [
        (e["exception"]["values"][-1]["type"], e["exception"]["values"][-1]["mechanism"])
        for e in of_type(found, "event")
    ]
    # Inputs cut to their last message carry the original count in the `_meta`.
    metas = [] if sort else [tx.get("_meta") for tx in txs]
    return {"spans": spans, "events": events, "metas": metas}


@pytest.mark.parametrize("stream_gen_ai_spans", [False, True])
def test_same_as_sentry_sdk(
    llm: LangchainLlmServer, tmp_path: Path, stream_gen_ai_spans: bool
) -> None:
    script = SCRIPT.format(url=llm.url, stream_gen_ai_spans=stream_gen_ai_spans)
    sentry, ours = run_both(script, tmp_path)
    # sentry_sdk 2.75 sends gen_ai spans as span (v2) items when streaming them;
    # tripwire keeps them in the transaction: their contents must still agree.
    expected, found = shape(sentry, stream_gen_ai_spans), shape(ours, stream_gen_ai_spans)
    assert found == expected
    assert len(found["spans"]) == 13
    if not stream_gen_ai_spans:
        assert found["metas"][0]["spans"]["0"]["data"]["gen_ai.request.messages"] == {
            "": {"len": 2}
        }
    assert found["events"] == [
        ("ValueError", {"type": "langchain", "handled": False}),
        ("OpenAIInvalidRequestError", {"type": "langchain", "handled": False}),
    ]
