"""The Mistral integration: the real `mistralai` client against a loopback fake of the API.

`fakes.mistral_server` answers chat completions (plain and streamed, tool calls,
errors) and embeddings on 127.0.0.1. The differential test runs one script on
sentry_sdk 2.75 and on tripwire, each in its own interpreter, against the same server.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _side_by_side import of_type, run_both
from fakes.llm_server import TEXT, TEXT_PIECES
from fakes.mistral_server import MistralServer, serving

import tripwire
from tripwire.integrations.mistral import MistralIntegration
from tripwire.testing import MemoryTransport

if TYPE_CHECKING:
    from mistralai.client import Mistral
    from mistralai.client.errors import SDKError
    from mistralai.client.models import AssistantMessage, SystemMessage, TextChunk, UserMessage


@pytest.fixture(autouse=True, scope="module")
def _mistralai() -> None:
    """mistralai is imported when the module's tests start, not at collection (every xdist
    worker collects every module; tests/_lazy.py)."""
    global Mistral, SDKError, AssistantMessage, SystemMessage, TextChunk, UserMessage
    from mistralai.client import Mistral
    from mistralai.client.errors import SDKError
    from mistralai.client.models import AssistantMessage, SystemMessage, TextChunk, UserMessage


MESSAGES: list[Any] = [
    {"role": "system", "content": "be nice"},
    {"role": "user", "content": "hi"},
    {"role": "assistant", "content": "hello"},
    {"role": "user", "content": [{"type": "text", "text": "again"}]},
]
TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
]
PII = {"data_collection": {"gen_ai": {"inputs": True, "outputs": True}}}


@pytest.fixture(scope="module")
def server() -> Iterator[MistralServer]:
    with serving() as s:
        yield s


@pytest.fixture
def client(server: MistralServer) -> Iterator[Mistral]:
    with Mistral(api_key="k", server_url=server.url) as c:
        yield c


def init(**options: Any) -> MemoryTransport:
    memory = MemoryTransport()
    options.setdefault("integrations", [MistralIntegration()])
    # gen_ai spans stay in their transaction, where these tests read them (the default
    # moves them to a span item: tests/test_trace_templates.py and the differential).
    options.setdefault("stream_gen_ai_spans", False)
    tripwire.init(transport=memory, traces_sample_rate=1.0, default_integrations=False, **options)
    return memory


def gen_ai_spans(memory: MemoryTransport) -> list[dict[str, Any]]:
    tripwire.flush()
    return [s for tx in memory.transactions for s in tx["spans"] if s["op"].startswith("gen_ai.")]


def test_complete_span(client: Mistral) -> None:
    memory = init(**PII)
    with tripwire.start_transaction(name="tx"):
        answer = client.chat.complete(
            model="mistral-small",
            messages=MESSAGES,
            temperature=0.5,
            max_tokens=30,
            top_p=0.9,
            presence_penalty=0.1,
            frequency_penalty=0.2,
        )
    assert answer.choices[0].message.content == TEXT
    (span,) = gen_ai_spans(memory)
    assert (span["op"], span["description"], span["origin"]) == (
        "gen_ai.chat",
        "chat mistral-small",
        "auto.ai.mistral",
    )
    data = span["data"]
    assert data["gen_ai.provider.name"] == "mistral"
    assert data["gen_ai.operation.name"] == "chat"
    assert data["gen_ai.request.model"] == "mistral-small"
    assert data["gen_ai.response.streaming"] is False
    assert (data["gen_ai.request.temperature"], data["gen_ai.request.max_tokens"]) == (0.5, 30)
    assert (data["gen_ai.request.presence_penalty"], data["gen_ai.request.top_p"]) == (0.1, 0.9)
    assert data["gen_ai.request.frequency_penalty"] == 0.2
    usage = [data[f"gen_ai.usage.{k}_tokens"] for k in ("input", "output", "total")]
    assert usage == [12, 5, 17]
    assert json.loads(data["gen_ai.system_instructions"]) == [
        {"type": "text", "content": "be nice"}
    ]
    assert json.loads(data["gen_ai.input.messages"]) == [
        {"role": "user", "parts": [{"type": "text", "content": "hi"}]},
        {"role": "assistant", "parts": [{"type": "text", "content": "hello"}]},
        {"role": "user", "parts": [{"type": "text", "content": "again"}]},
    ]
    assert json.loads(data["gen_ai.output.messages"]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": TEXT}]}
    ]


def test_model_messages_and_tool_calls(client: Mistral) -> None:
    memory = init(**PII)
    messages = [
        SystemMessage(content=[TextChunk(text="sys")]),
        UserMessage(content="weather?"),
        AssistantMessage(content=[TextChunk(text="checking")]),
    ]
    with tripwire.start_transaction(name="tx"):
        answer = client.chat.complete(model="mistral-small", messages=messages, tools=TOOLS)
    (call,) = answer.choices[0].message.tool_calls or []
    assert call.function.name == "get_weather"
    (span,) = gen_ai_spans(memory)
    data = span["data"]
    assert json.loads(data["gen_ai.system_instructions"]) == [{"type": "text", "content": "sys"}]
    assert [m["role"] for m in json.loads(data["gen_ai.input.messages"])] == ["user", "assistant"]
    # As sentry_sdk: only text parts are output messages; a tool call has none.
    assert json.loads(data["gen_ai.output.messages"]) == []


def test_prompts_need_permission(client: Mistral) -> None:
    memory = init()
    with tripwire.start_transaction(name="tx"):
        client.chat.complete(model="mistral-small", messages=MESSAGES)
    (span,) = gen_ai_spans(memory)
    for key in ("gen_ai.input.messages", "gen_ai.output.messages", "gen_ai.system_instructions"):
        assert key not in span["data"]
    assert span["data"]["gen_ai.usage.total_tokens"] == 17


def test_streams_end_after_the_last_chunk(client: Mistral, server: MistralServer) -> None:
    memory = init(**PII)

    async def more() -> list[Any]:
        async with Mistral(api_key="k", server_url=server.url) as c:
            await c.chat.complete_async(model="m-async", messages=MESSAGES[1:2])
            stream = await c.chat.stream_async(model="m-async-stream", messages=MESSAGES[1:2])
            return [event async for event in stream]

    with tripwire.start_transaction(name="tx"):
        pieces = [
            e.data.choices[0].delta.content
            for e in client.chat.stream(model="m-stream", messages=MESSAGES[1:2])
        ]
        events = asyncio.run(more())
    assert pieces == ["", *TEXT_PIECES, ""]
    assert len(events) == 5
    streamed, plain, async_streamed = gen_ai_spans(memory)
    assert plain["description"] == "chat m-async"
    assert plain["data"]["gen_ai.response.streaming"] is False
    for span in (streamed, async_streamed):
        data = span["data"]
        assert data["gen_ai.response.streaming"] is True
        assert data["gen_ai.usage.total_tokens"] == 17
        (message,) = json.loads(data["gen_ai.output.messages"])
        assert message["parts"] == [{"type": "text", "content": TEXT}]


def test_stream_closed_early_ends_its_span(client: Mistral) -> None:
    memory = init(**PII)
    with tripwire.start_transaction(name="tx"):
        with client.chat.stream(model="m-stream", messages=MESSAGES[1:2]) as stream:
            first = next(iter(stream))
        client.chat.complete(model="after", messages=MESSAGES[1:2])
    assert first.data.choices[0].delta.content == ""
    streamed, after = gen_ai_spans(memory)
    assert streamed["data"]["gen_ai.response.streaming"] is True
    (message,) = json.loads(streamed["data"]["gen_ai.output.messages"])
    assert message["parts"] == [{"type": "text", "content": ""}]  # what had come
    # The stream's span was no longer current: the next call is its sibling.
    assert after["parent_span_id"] == streamed["parent_span_id"]


def test_embeddings(client: Mistral) -> None:
    memory = init(**PII)
    with tripwire.start_transaction(name="tx"):
        result = client.embeddings.create(model="mistral-embed", inputs=["a", "b"])
    assert result.data[1].embedding == [0.25, 0.5, 0.75]
    (span,) = gen_ai_spans(memory)
    assert (span["op"], span["description"]) == ("gen_ai.embeddings", "embeddings mistral-embed")
    assert span["data"]["gen_ai.embeddings.input"] == '["a", "b"]'
    assert span["data"]["gen_ai.usage.input_tokens"] == 8
    assert "gen_ai.usage.output_tokens" not in span["data"]


def test_error_is_an_event_and_the_span_fails(client: Mistral) -> None:
    memory = init()
    with tripwire.start_transaction(name="tx"), pytest.raises(SDKError):
        client.chat.complete(model="error-model", messages=MESSAGES[1:2])
    (span,) = gen_ai_spans(memory)
    assert span["status"] == "internal_error"
    (event,) = memory.events
    assert event["exception"]["values"][-1]["mechanism"] == {"type": "mistral", "handled": False}
    assert event["contexts"]["trace"]["span_id"] == span["span_id"]


def test_without_a_transaction_the_call_is_one(client: Mistral) -> None:
    memory = init()
    tripwire.get_current_scope().set_conversation_id("conv-3")
    client.chat.complete(model="alone", messages=MESSAGES[1:2])
    tripwire.flush()
    (tx,) = memory.transactions
    assert (tx["transaction"], tx["contexts"]["trace"]["op"]) == ("chat alone", "gen_ai.chat")
    assert tx["contexts"]["trace"]["data"]["gen_ai.conversation.id"] == "conv-3"


def test_falls_through_without_the_integration(client: Mistral) -> None:
    memory = init(integrations=[])
    with tripwire.start_transaction(name="tx"):
        client.chat.complete(model="mistral-small", messages=MESSAGES[1:2])
    assert gen_ai_spans(memory) == []


# -- against sentry_sdk 2.75 -----------------------------------------------------------

# stream_gen_ai_spans=False: sentry_sdk 2.75 otherwise sends gen_ai spans as separate
# (v2) span items, where tripwire keeps them in the transaction.
SCRIPT = """
import asyncio, warnings
warnings.simplefilter("ignore", DeprecationWarning)
from mistralai.client import Mistral
from mistralai.client.models import AssistantMessage, SystemMessage, TextChunk, UserMessage
from sentry_sdk.integrations.mistral import MistralIntegration

sentry_sdk.init(
    dsn="https://k@o1.ingest.sentry.io/1", transport=KEEP, traces_sample_rate=1.0,
    default_integrations=False, integrations=[MistralIntegration()], release="r",
    send_default_pii=True, stream_gen_ai_spans=False,
)
m = Mistral(api_key="k", server_url={url!r})
msgs = [{{"role": "system", "content": [{{"type": "text", "text": "s"}}]}},
        {{"role": "user", "content": "hi"}},
        {{"role": "assistant", "content": [{{"type": "text", "text": "a"}}]}},
        {{"role": "tool", "content": "t", "tool_call_id": "c"}}]
tools = [{{"type": "function", "function": {{"name": "get_weather", "parameters": {{}}}}}}]
with sentry_sdk.start_transaction(name="tx"):
    sentry_sdk.get_current_scope().set_conversation_id("conv-1")
    m.chat.complete(model="small", messages=msgs, temperature=0.2, max_tokens=9, top_p=0.5)
    m.chat.complete(model="small", messages=[SystemMessage(content="s"), UserMessage(content="u"),
                    AssistantMessage(content=[TextChunk(text="x")])], tools=tools,
                    presence_penalty=0.1, frequency_penalty=0.3)
    try:
        m.chat.complete(model="error", messages=msgs[1:2])
    except Exception:
        pass
    asyncio.run(m.chat.complete_async(model="async", messages=msgs[1:2]))
m.chat.complete(model="alone", messages=msgs[1:2])
finish()
"""


def _view(span: dict[str, Any]) -> dict[str, Any]:
    return {
        "op": span.get("op"),
        "description": span.get("description"),
        "origin": span.get("origin"),
        "status": span.get("status"),
        "data": {k: v for k, v in span.get("data", {}).items() if not k.startswith("thread.")},
    }


def shape(found: dict[str, Any]) -> dict[str, Any]:
    txs = of_type(found, "transaction")
    return {
        "spans": [_view(s) for tx in txs for s in tx["spans"]],
        "roots": [(tx["transaction"], _view({**tx["contexts"]["trace"]})) for tx in txs],
    }


def test_same_as_sentry_sdk(server: MistralServer, tmp_path: Path) -> None:
    sentry, ours = run_both(SCRIPT.format(url=server.url), tmp_path, preload=True)
    assert shape(ours) == shape(sentry)
    assert len(shape(ours)["spans"]) == 4
    # sentry_sdk 2.75 reports no error event for a failed call; tripwire does.
    assert of_type(sentry, "event") == []
    (event,) = of_type(ours, "event")
    assert event["exception"]["values"][-1]["mechanism"] == {"type": "mistral", "handled": False}
