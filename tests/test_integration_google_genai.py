"""The Google GenAI integration: the real `google-genai` client against a loopback fake.

`fakes.gemini_server` answers ``generateContent``, ``streamGenerateContent`` (SSE),
``batchEmbedContents``, function calls and errors on 127.0.0.1. The differential test
runs one script on sentry_sdk 2.75 and on tripwire, each in its own interpreter,
against the same server.
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
from _side_by_side import of_type, run_both
from fakes.gemini_server import TEXT, GeminiServer, serving
from fakes.llm_server import TEXT_PIECES

import tripwire
from tripwire.integrations.google_genai import GoogleGenAIIntegration
from tripwire.testing import MemoryTransport

if TYPE_CHECKING:
    from google import genai
    from google.genai import errors, types


@pytest.fixture(autouse=True, scope="module")
def _google_genai() -> None:
    """google-genai is imported when the module's tests start, not at collection (every xdist
    worker collects every module; tests/_lazy.py)."""
    global genai, errors, types
    from google import genai
    from google.genai import errors, types


# google-genai's async client subclasses aiohttp's session, which aiohttp frowns upon.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Inheritance class AiohttpClientSession:DeprecationWarning"
)

PII = {"send_default_pii": True}
USAGE = {
    "input_tokens": 12,
    "input_tokens.cached": 4,
    "output_tokens": 7,  # 5 candidate tokens + 2 thoughts, as sentry_sdk counts
    "output_tokens.reasoning": 2,
    "total_tokens": 19,
}


@pytest.fixture(scope="session")
def gemini() -> Iterator[GeminiServer]:
    with serving() as server:
        yield server


@pytest.fixture
def client(gemini: GeminiServer) -> Iterator[genai.Client]:
    c = genai.Client(api_key="k", http_options={"base_url": gemini.url})
    yield c
    c.close()


def init(**options: Any) -> MemoryTransport:
    memory = MemoryTransport()
    options.setdefault("integrations", [GoogleGenAIIntegration()])
    # gen_ai spans stay in their transaction, where these tests read them (the default
    # moves them to a span item: tests/test_trace_templates.py and the differential).
    options.setdefault("stream_gen_ai_spans", False)
    tripwire.init(transport=memory, traces_sample_rate=1.0, default_integrations=False, **options)
    return memory


def spans(memory: MemoryTransport, op: str = "gen_ai.chat") -> list[dict[str, Any]]:
    tripwire.flush()
    return [s for tx in memory.transactions for s in tx["spans"] if s["op"] == op]


def usage(span: dict[str, Any]) -> dict[str, Any]:
    prefix = "gen_ai.usage."
    return {k[len(prefix) :]: v for k, v in span["data"].items() if k.startswith(prefix)}


def get_weather(city: str) -> str:
    """The weather of a city."""
    return f"sunny in {city}"


def test_chat_span(client: genai.Client) -> None:
    memory = init(**PII)
    config = types.GenerateContentConfig(
        system_instruction="be nice", temperature=0.5, max_output_tokens=10, top_k=3, seed=7
    )
    with tripwire.start_transaction(name="tx"):
        answer = client.models.generate_content(model="gemini-x", contents="hi", config=config)
    assert answer.text == TEXT
    (span,) = spans(memory)
    assert (span["description"], span["origin"]) == ("chat gemini-x", "auto.ai.google_genai")
    data = span["data"]
    assert data["gen_ai.system"] == "gcp.gemini"
    assert data["gen_ai.operation.name"] == "chat"
    assert data["gen_ai.request.model"] == "gemini-x"
    assert data["gen_ai.request.temperature"] == 0.5
    assert data["gen_ai.request.max_tokens"] == 10
    assert data["gen_ai.request.top_k"] == 3
    assert data["gen_ai.request.seed"] == 7
    assert data["gen_ai.response.model"] == "gemini-x-001"
    assert data["gen_ai.response.id"] == "resp-1"
    assert data["gen_ai.response.finish_reasons"] == "STOP"
    assert usage(span) == USAGE
    assert json.loads(data["gen_ai.system_instructions"]) == [
        {"type": "text", "content": "be nice"}
    ]
    assert json.loads(data["gen_ai.request.messages"]) == [{"role": "user", "content": "hi"}]
    assert json.loads(data["gen_ai.response.text"]) == [TEXT]


def test_prompts_need_pii_and_include_prompts(client: genai.Client) -> None:
    for options in (
        {},
        {"send_default_pii": True, "integrations": [GoogleGenAIIntegration(False)]},
    ):
        memory = init(**options)
        with tripwire.start_transaction(name="tx"):
            client.models.generate_content(
                model="gemini-x", contents="hi", config={"system_instruction": "s"}
            )
        (span,) = spans(memory)
        for key in (
            "gen_ai.request.messages",
            "gen_ai.system_instructions",
            "gen_ai.response.text",
        ):
            assert key not in span["data"]
        assert usage(span) == USAGE
        tripwire.get_client().close()


def test_data_collection_rules(client: genai.Client) -> None:
    decl = types.Tool(function_declarations=[types.FunctionDeclaration(name="f", description="d")])
    memory = init(data_collection={"gen_ai": {"inputs": True, "outputs": False}})
    with tripwire.start_transaction(name="tx"):
        client.models.generate_content(
            model="gemini-x", contents="hi", config=types.GenerateContentConfig(tools=[decl])
        )
    (span,) = spans(memory)
    data = span["data"]
    assert json.loads(data["gen_ai.request.messages"]) == [{"role": "user", "content": "hi"}]
    assert json.loads(data["gen_ai.request.available_tools"]) == [{"name": "f", "description": "d"}]
    assert "gen_ai.response.tool_calls" not in data  # an output
    tripwire.get_client().close()
    memory = init(data_collection={"gen_ai": {"inputs": False, "outputs": True}})
    with tripwire.start_transaction(name="tx"):
        client.models.generate_content(
            model="gemini-x", contents="hi", config=types.GenerateContentConfig(tools=[decl])
        )
    (span,) = spans(memory)
    data = span["data"]
    assert "gen_ai.request.messages" not in data
    assert "gen_ai.request.available_tools" not in data
    (call,) = json.loads(data["gen_ai.response.tool_calls"])
    assert call == {"name": "f", "type": "function_call", "arguments": '{"city": "Paris"}'}


def test_automatic_function_calling_nests_tool_spans(client: genai.Client) -> None:
    memory = init(**PII)
    config = types.GenerateContentConfig(tools=[get_weather])
    with tripwire.start_transaction(name="tx"):
        answer = client.models.generate_content(model="gemini-x", contents="w?", config=config)
    assert answer.text == TEXT
    (chat,) = spans(memory)
    (tool,) = spans(memory, "gen_ai.execute_tool")
    assert tool["parent_span_id"] == chat["span_id"]
    assert (tool["description"], tool["origin"]) == (
        "execute_tool get_weather",
        "auto.ai.google_genai",
    )
    assert tool["data"]["gen_ai.tool.name"] == "get_weather"
    assert tool["data"]["gen_ai.tool.description"] == "The weather of a city."
    assert json.loads(tool["data"]["gen_ai.tool.input"]) == {"city": "Paris"}
    assert tool["data"]["gen_ai.tool.output"] == "sunny in Paris"
    assert json.loads(chat["data"]["gen_ai.request.available_tools"]) == [
        {"name": "get_weather", "description": "The weather of a city."}
    ]
    (call,) = json.loads(chat["data"]["gen_ai.response.tool_calls"])
    assert call["name"] == "get_weather"
    assert config.tools == [get_weather]  # the caller's config is left as it was


def test_a_failing_tool_is_an_event(client: genai.Client) -> None:
    memory = init()

    def broken(city: str) -> str:
        raise RuntimeError("no weather")

    with tripwire.start_transaction(name="tx"):
        try:
            client.models.generate_content(
                model="gemini-x", contents="w?", config=types.GenerateContentConfig(tools=[broken])
            )
        except RuntimeError:
            pass  # whether the library passes it on is its business
    (tool,) = spans(memory, "gen_ai.execute_tool")
    assert tool["status"] == "internal_error"
    (event,) = memory.events
    value = event["exception"]["values"][-1]
    assert (value["type"], value["mechanism"]) == (
        "RuntimeError",
        {"type": "google_genai", "handled": False},
    )


def test_stream_passes_chunks_and_ends_at_the_last(client: genai.Client) -> None:
    memory = init(**PII)
    with tripwire.start_transaction(name="tx"):
        stream = client.models.generate_content_stream(model="gemini-s", contents="hi")
        texts = [chunk.text for chunk in stream]
    assert texts == list(TEXT_PIECES)
    (span,) = spans(memory)
    data = span["data"]
    assert data["gen_ai.response.streaming"] is True
    assert data["gen_ai.response.finish_reasons"] == "STOP"
    assert json.loads(data["gen_ai.response.text"]) == [TEXT]
    assert usage(span) == USAGE  # the largest counts seen: the last chunk's
    assert "gen_ai.response.model" not in data  # sentry_sdk reports none for streams


def test_stream_closed_early_ends_the_span(client: genai.Client) -> None:
    memory = init(**PII)
    with tripwire.start_transaction(name="tx"):
        stream: Any = client.models.generate_content_stream(model="gemini-s", contents="hi")
        first = next(iter(stream))
        stream.close()
    assert first.text == TEXT_PIECES[0]
    (span,) = spans(memory)
    assert json.loads(span["data"]["gen_ai.response.text"]) == [TEXT_PIECES[0]]
    assert span["data"]["gen_ai.usage.output_tokens"] == 5  # 3 candidate tokens + 2 thoughts
    assert "gen_ai.response.finish_reasons" not in span["data"]


def test_stream_cut_by_the_server_is_an_event(client: genai.Client) -> None:
    memory = init()
    pieces: list[Any] = []
    with tripwire.start_transaction(name="tx"), pytest.raises(Exception) as raised:
        for chunk in client.models.generate_content_stream(model="cut-1", contents="hi"):
            pieces.append(chunk.text)
    assert pieces == list(TEXT_PIECES[:2])
    (span,) = spans(memory)
    assert span["status"] == "internal_error"
    assert span["data"]["gen_ai.usage.output_tokens"] == 6  # what the two chunks told
    (event,) = memory.events
    value = event["exception"]["values"][-1]
    assert value["type"] == type(raised.value).__name__
    assert value["mechanism"] == {"type": "google_genai", "handled": False}


def test_async_client(gemini: GeminiServer) -> None:
    memory = init(**PII)

    async def main() -> list[str]:
        c = genai.Client(api_key="k", http_options={"base_url": gemini.url})
        try:
            with tripwire.start_transaction(name="tx"):
                await c.aio.models.generate_content(model="gemini-a", contents="hi")
                pieces = [
                    chunk.text or ""
                    async for chunk in await c.aio.models.generate_content_stream(
                        model="gemini-b", contents="hi"
                    )
                ]
                await c.aio.models.embed_content(model="emb", contents=["one", "two"])
            return pieces
        finally:
            await c.aio.aclose()
            c.close()

    assert asyncio.run(main()) == list(TEXT_PIECES)
    plain, streamed = spans(memory)
    (embedding,) = spans(memory, "gen_ai.embeddings")
    assert [plain["description"], streamed["description"], embedding["description"]] == [
        "chat gemini-a",
        "chat gemini-b",
        "embeddings emb",
    ]
    assert usage(plain) == usage(streamed) == USAGE
    assert json.loads(streamed["data"]["gen_ai.response.text"]) == [TEXT]
    assert json.loads(embedding["data"]["gen_ai.embeddings.input"]) == ["one", "two"]


def test_embeddings(client: genai.Client) -> None:
    memory = init(**PII)
    with tripwire.start_transaction(name="tx"):
        result = client.models.embed_content(model="emb", contents="one")
    assert result.embeddings is not None and result.embeddings[0].values == [0.25, 0.5, 0.75]
    (span,) = spans(memory, "gen_ai.embeddings")
    assert span["data"]["gen_ai.operation.name"] == "embeddings"
    assert span["data"]["gen_ai.system"] == "gcp.gemini"
    assert json.loads(span["data"]["gen_ai.embeddings.input"]) == ["one"]


def test_error_is_an_event(client: genai.Client) -> None:
    memory = init()
    with tripwire.start_transaction(name="tx"), pytest.raises(errors.ClientError):
        client.models.generate_content(model="error", contents="hi")
    (span,) = spans(memory)
    assert span["status"] == "internal_error"
    (event,) = memory.events
    assert event["exception"]["values"][-1]["mechanism"] == {
        "type": "google_genai",
        "handled": False,
    }


def test_async_stream_failing_at_once(gemini: GeminiServer) -> None:
    memory = init()

    async def main() -> None:
        c = genai.Client(api_key="k", http_options={"base_url": gemini.url})
        try:
            with tripwire.start_transaction(name="tx"), pytest.raises(errors.ClientError):
                stream = await c.aio.models.generate_content_stream(model="error", contents="hi")
                async for _ in stream:
                    pass
        finally:
            await c.aio.aclose()
            c.close()

    asyncio.run(main())
    (span,) = spans(memory)
    assert span["status"] == "internal_error"
    assert len(memory.events) == 1


def test_span_and_error_reach_the_server(rx: Receiver, client: genai.Client) -> None:
    tripwire.init(
        dsn=rx.dsn(),
        traces_sample_rate=1.0,
        default_integrations=False,
        integrations=[GoogleGenAIIntegration()],
    )
    with tripwire.start_transaction(name="tx"):
        client.models.generate_content(model="gemini-x", contents="hi")
        with pytest.raises(errors.ClientError):
            client.models.generate_content(model="error", contents="hi")
    tripwire.flush()
    rx.wait_for(2)
    (event,) = rx.events()
    assert event["exception"]["values"][-1]["type"] == "ClientError"
    (tx,) = [item.payload.json for item in rx.items("transaction")]
    # By default (stream_gen_ai_spans) the gen_ai spans travel beside their
    # transaction, as a v2 span item of the same envelope.
    assert tx["spans"] == []
    (container,) = [json.loads(item.get_bytes()) for item in rx.items("span")]
    spans = container["items"]
    assert [(s["name"], s["status"], s["parent_span_id"]) for s in spans] == [
        ("chat gemini-x", "ok", tx["contexts"]["trace"]["span_id"]),
        ("chat error", "error", tx["contexts"]["trace"]["span_id"]),
    ]
    usage = spans[0]["attributes"]["gen_ai.usage.total_tokens"]
    assert usage == {"value": 19, "type": "integer"}


def test_without_a_transaction_the_call_is_one(client: genai.Client) -> None:
    memory = init()
    client.models.generate_content(model="alone", contents="hi")
    tripwire.flush()
    (tx,) = memory.transactions
    assert tx["transaction"] == "chat alone"
    assert tx["contexts"]["trace"]["op"] == "gen_ai.chat"


def test_falls_through_without_the_integration(client: genai.Client) -> None:
    memory = init(integrations=[])
    with tripwire.start_transaction(name="tx"):
        client.models.generate_content(model="gemini-x", contents="hi")
        list(client.models.generate_content_stream(model="gemini-x", contents="hi"))
        client.models.embed_content(model="emb", contents="x")
    assert spans(memory) == spans(memory, "gen_ai.embeddings") == []


def test_import_tripwire_does_not_import_google_genai() -> None:
    code = (
        "import sys, tripwire\n"
        "from tripwire.integrations.google_genai import GoogleGenAIIntegration\n"
        "tripwire.init(dsn='http://k@example.com/1', integrations=[GoogleGenAIIntegration()])\n"
        "assert 'google.genai' not in sys.modules\n"
        "from google.genai import models\n"
        "assert getattr(models.Models.generate_content, '__tripwire_google_genai__', False)\n"
        "assert getattr(models.AsyncModels.embed_content, '__tripwire_google_genai__', False)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr


SCRIPT = """
import asyncio, warnings
warnings.simplefilter("ignore")
from google import genai
from google.genai import types
from sentry_sdk.integrations.google_genai import GoogleGenAIIntegration

sentry_sdk.init(
    dsn="https://k@o1.ingest.sentry.io/1", transport=KEEP, traces_sample_rate=1.0,
    default_integrations=False, integrations=[GoogleGenAIIntegration()], release="r",
    send_default_pii=True, stream_gen_ai_spans=False,
)

def get_weather(city: str) -> str:
    \"\"\"Weather of a city.\"\"\"
    return "sunny"

c = genai.Client(api_key="k", http_options={{"base_url": {url!r}}})
decl = types.Tool(function_declarations=[types.FunctionDeclaration(name="f", description="d")])
turns = [
    types.Content(role="user", parts=[types.Part(text="a")]),
    {{"role": "model", "parts": [{{"text": "b"}}]}},
    {{"role": "user", "parts": [
        {{"function_response": {{"name": "f", "id": "1", "response": {{"output": "x"}}}}}},
        {{"text": "c"}}, {{"inline_data": {{"mime_type": "image/png", "data": b"xx"}}}}]}},
]
with sentry_sdk.start_transaction(name="tx"):
    sentry_sdk.get_current_scope().set_conversation_id("conv-1")
    c.models.generate_content(model="gemini-x", contents="hi", config=types.GenerateContentConfig(
        system_instruction=["be", types.Part(text="nice")], temperature=0.5, max_output_tokens=10,
        top_p=0.9, presence_penalty=0.1, frequency_penalty=0.2))
    c.models.generate_content(model="gemini-x", contents="w?",
                              config=types.GenerateContentConfig(tools=[get_weather]))
    c.models.generate_content(model="gemini-x", contents=turns,
                              config=types.GenerateContentConfig(tools=[decl]))
    c.models.generate_content(model="gemini-x", contents=["p1", types.Part(text="p2")],
                              config={{"system_instruction": "dict config"}})
    for _ in c.models.generate_content_stream(model="gemini-s", contents="hi"):
        pass
    for _ in c.models.generate_content_stream(model="gemini-s", contents="hi",
                                              config=types.GenerateContentConfig(tools=[decl])):
        pass
    c.models.embed_content(model="emb", contents=["a", types.Content(parts=[types.Part(text="b")])])
    try:
        c.models.generate_content(model="error", contents="hi")
    except Exception:
        pass

    async def main():
        await c.aio.models.generate_content(model="gemini-a", contents="hi")
        async for _ in await c.aio.models.generate_content_stream(model="gemini-b", contents="hi"):
            pass
        await c.aio.models.embed_content(model="emb", contents="x")
        await c.aio.aclose()

    asyncio.run(main())
c.models.generate_content(model="alone", contents="hi")
finish()
"""


def shape(found: dict[str, Any]) -> dict[str, Any]:
    txs = of_type(found, "transaction")

    def view(span: dict[str, Any]) -> dict[str, Any]:
        return {
            "op": span.get("op"),
            "description": span.get("description"),
            "origin": span.get("origin"),
            "status": span.get("status"),
            "data": {k: v for k, v in span.get("data", {}).items() if not k.startswith("thread.")},
        }

    def parents(tx: dict[str, Any]) -> list[Any]:
        ids = {tx["contexts"]["trace"]["span_id"]: "root"}
        ids.update({s["span_id"]: i for i, s in enumerate(tx["spans"])})
        return [ids.get(s.get("parent_span_id")) for s in tx["spans"]]

    return {
        "spans": [view(s) for tx in txs for s in tx["spans"]],
        "parents": [parents(tx) for tx in txs],
        "roots": [(tx["transaction"], view(tx["contexts"]["trace"])) for tx in txs],
        "metas": [tx.get("_meta") for tx in txs],
        "events": [e["exception"]["values"][-1]["mechanism"] for e in of_type(found, "event")],
    }


def test_same_as_sentry_sdk(gemini: GeminiServer, tmp_path: Path) -> None:
    sentry, ours = run_both(SCRIPT.format(url=gemini.url), tmp_path, preload=True)
    expected, found = shape(sentry), shape(ours)
    assert found == expected
    assert len(found["spans"]) == 12  # with the execute_tool span
    assert found["spans"][0]["data"]["gen_ai.conversation.id"] == "conv-1"
    assert found["events"] == [{"type": "google_genai", "handled": False}]
    assert found["metas"][0] == {
        "spans": {"3": {"data": {"gen_ai.request.messages": {"": {"len": 4}}}}}
    }
