"""The Anthropic integration: the real `anthropic` client against a loopback fake of the API.

`fakes.llm_server` answers ``/v1/messages`` (plain and streamed events, tool use,
errors) on 127.0.0.1. The differential test runs one script on sentry_sdk 2.75 and on
tripwire, each in its own interpreter, against the same server.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _lazy import imported, lazy
from _side_by_side import of_type, run_both
from fakes.llm_server import TEXT, TEXT_PIECES, LlmServer, serving

import tripwire
from tripwire.integrations.anthropic import AnthropicIntegration
from tripwire.testing import MemoryTransport

anthropic = lazy("anthropic")

HI = [{"role": "user", "content": "hi"}]
TOOLS = [{"name": "get_weather", "description": "weather", "input_schema": {"type": "object"}}]
USAGE = {
    "input_tokens": 17,  # 12 + 3 cache reads + 2 cache writes, as sentry_sdk counts
    "input_tokens.cached": 3,
    "input_tokens.cache_write": 2,
    "output_tokens": 5,
    "total_tokens": 22,
}


@pytest.fixture(scope="module", autouse=True)
def _anthropic_imported() -> None:
    imported(anthropic)  # before the first test, not at collection (tests/_lazy.py)


@pytest.fixture(scope="session")
def llm() -> Iterator[LlmServer]:
    with serving() as server:
        yield server


@pytest.fixture
def client(llm: LlmServer) -> Iterator[anthropic.Anthropic]:
    with anthropic.Anthropic(api_key="k", base_url=llm.url, max_retries=0) as c:
        yield c


def init(**options: Any) -> MemoryTransport:
    memory = MemoryTransport()
    options.setdefault("integrations", [AnthropicIntegration()])
    # gen_ai spans stay in their transaction, where these tests read them (the default
    # moves them to a span item: tests/test_trace_templates.py and the differential).
    options.setdefault("stream_gen_ai_spans", False)
    tripwire.init(transport=memory, traces_sample_rate=1.0, default_integrations=False, **options)
    return memory


PII = {"data_collection": {"gen_ai": {"inputs": True, "outputs": True}}}


def spans(memory: MemoryTransport) -> list[dict[str, Any]]:
    tripwire.flush()
    return [s for tx in memory.transactions for s in tx["spans"] if s["op"] == "gen_ai.chat"]


def usage(span: dict[str, Any]) -> dict[str, Any]:
    prefix = "gen_ai.usage."
    return {k[len(prefix) :]: v for k, v in span["data"].items() if k.startswith(prefix)}


def test_message_span(client: anthropic.Anthropic) -> None:
    memory = init(**PII)
    messages = [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "hello"},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "again"},
                {"type": "tool_result", "tool_use_id": "t1", "content": "sunny"},
            ],
        },
    ]
    with tripwire.start_transaction(name="tx"):
        answer = client.messages.create(
            model="claude-x", max_tokens=64, system="be nice", messages=messages
        )
    assert answer.content[0].text == TEXT  # type: ignore[union-attr]
    (span,) = spans(memory)
    assert (span["description"], span["origin"]) == ("chat claude-x", "auto.ai.anthropic")
    data = span["data"]
    assert data["gen_ai.system"] == "anthropic"
    assert data["gen_ai.request.max_tokens"] == 64
    assert data["gen_ai.response.model"] == "claude-x-2024"
    assert data["gen_ai.response.id"] == "msg_1"
    assert data["gen_ai.response.finish_reasons"] == ["end_turn"]
    assert usage(span) == USAGE
    assert json.loads(data["gen_ai.system_instructions"]) == [
        {"type": "text", "content": "be nice"}
    ]
    # Tool results are left out of user messages, as sentry_sdk does.
    assert json.loads(data["gen_ai.request.messages"])[-1] == {
        "role": "user",
        "content": [{"type": "text", "text": "again"}],
    }
    assert json.loads(data["gen_ai.output.messages"]) == [
        {"role": "assistant", "parts": [{"type": "text", "content": TEXT}]}
    ]


def test_tool_use_and_permissions(client: anthropic.Anthropic) -> None:
    memory = init()
    with tripwire.start_transaction(name="tx"):
        client.messages.create(model="claude-x", max_tokens=8, messages=HI, tools=TOOLS)
    (span,) = spans(memory)
    data = span["data"]
    assert json.loads(data["gen_ai.request.available_tools"]) == TOOLS
    assert data["gen_ai.response.finish_reasons"] == ["tool_use"]
    for key in ("gen_ai.request.messages", "gen_ai.response.tool_calls", "gen_ai.output.messages"):
        assert key not in data
    tripwire.get_client().close()
    memory = init(**PII)
    with tripwire.start_transaction(name="tx"):
        client.messages.create(model="claude-x", max_tokens=8, messages=HI, tools=TOOLS)
    (span,) = spans(memory)
    (call,) = json.loads(span["data"]["gen_ai.response.tool_calls"])
    assert (call["name"], call["input"]) == ("get_weather", {"city": "Paris"})


def test_streamed_create_passes_events_and_ends_at_the_last(client: anthropic.Anthropic) -> None:
    memory = init(**PII)
    with tripwire.start_transaction(name="tx"):
        stream = client.messages.create(model="claude-x", max_tokens=8, messages=HI, stream=True)
        texts = [e.delta.text for e in stream if e.type == "content_block_delta"]  # type: ignore[union-attr]
    assert texts == list(TEXT_PIECES)
    (span,) = spans(memory)
    assert span["data"]["gen_ai.response.streaming"] is True
    assert usage(span) == USAGE
    assert span["data"]["gen_ai.response.finish_reasons"] == ["end_turn"]
    assert json.loads(span["data"]["gen_ai.output.messages"])[0]["parts"][0]["content"] == TEXT


def test_stream_closed_early_ends_the_span(client: anthropic.Anthropic) -> None:
    memory = init()
    with tripwire.start_transaction(name="tx"):
        with client.messages.create(
            model="claude-x", max_tokens=8, messages=HI, stream=True
        ) as stream:
            first = next(iter(stream))
    assert first.type == "message_start"
    (span,) = spans(memory)
    # Only the first event was read: its usage, no finish reason yet.
    assert span["data"]["gen_ai.usage.output_tokens"] == 1
    assert "gen_ai.response.finish_reasons" not in span["data"]


def test_messages_stream_helper(client: anthropic.Anthropic) -> None:
    memory = init(**PII)
    with tripwire.start_transaction(name="tx"):
        with client.messages.stream(
            model="claude-x", max_tokens=8, messages=HI, system=[{"type": "text", "text": "s"}]
        ) as stream:
            text = "".join(stream.text_stream)
            final = stream.get_final_message()
    assert text == TEXT
    assert final.usage.output_tokens == 5
    (span,) = spans(memory)  # one span: the helper's request is not a second call
    assert span["data"]["gen_ai.response.streaming"] is True
    assert span["data"]["gen_ai.system_instructions"] == '[{"type": "text", "content": "s"}]'
    assert usage(span) == USAGE


def test_async_create_and_stream(llm: LlmServer) -> None:
    memory = init(**PII)

    async def main() -> str:
        async with anthropic.AsyncAnthropic(api_key="k", base_url=llm.url, max_retries=0) as c:
            with tripwire.start_transaction(name="tx"):
                await c.messages.create(model="claude-a", max_tokens=8, messages=HI)
                async for _ in await c.messages.create(
                    model="claude-b", max_tokens=8, messages=HI, stream=True, tools=TOOLS
                ):
                    pass
                async with c.messages.stream(model="claude-c", max_tokens=8, messages=HI) as s:
                    return await s.get_final_text()

    assert asyncio.run(main()) == TEXT
    plain, streamed, helper = spans(memory)
    assert [s["description"] for s in (plain, streamed, helper)] == [
        "chat claude-a",
        "chat claude-b",
        "chat claude-c",
    ]
    # A streamed tool call is reported as text, as sentry_sdk does.
    assert json.loads(streamed["data"]["gen_ai.output.messages"])[0]["parts"] == [
        {"type": "text", "content": '{"city": "Paris"}'}
    ]
    assert usage(helper) == USAGE


def test_error_is_an_event(client: anthropic.Anthropic) -> None:
    memory = init()
    with tripwire.start_transaction(name="tx"), pytest.raises(anthropic.BadRequestError):
        client.messages.create(model="error", max_tokens=8, messages=HI)
    (span,) = spans(memory)
    assert span["status"] == "internal_error"
    (event,) = memory.events
    assert event["exception"]["values"][-1]["mechanism"] == {"type": "anthropic", "handled": False}


def test_falls_through_without_the_integration(client: anthropic.Anthropic) -> None:
    memory = init(integrations=[])
    with tripwire.start_transaction(name="tx"):
        client.messages.create(model="claude-x", max_tokens=8, messages=HI)
        with client.messages.stream(model="claude-x", max_tokens=8, messages=HI) as s:
            s.until_done()
    assert spans(memory) == []


def test_import_tripwire_does_not_import_anthropic() -> None:
    code = (
        "import sys, tripwire\n"
        "from tripwire.integrations.anthropic import AnthropicIntegration\n"
        "tripwire.init(dsn='http://k@example.com/1', integrations=[AnthropicIntegration()])\n"
        "assert 'anthropic' not in sys.modules\n"
        "import anthropic.resources as r\n"
        "assert getattr(r.Messages.create, '__tripwire_anthropic__', False)\n"
    )
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


SCRIPT = """
import asyncio, warnings
warnings.simplefilter("ignore", DeprecationWarning)
import anthropic
from sentry_sdk.integrations.anthropic import AnthropicIntegration

sentry_sdk.init(
    dsn="https://k@o1.ingest.sentry.io/1", transport=KEEP, traces_sample_rate=1.0,
    default_integrations=False, integrations=[AnthropicIntegration()], release="r",
    send_default_pii=True, stream_gen_ai_spans=False,
)
url = {url!r}
a = anthropic.Anthropic(api_key="k", base_url=url, max_retries=0)
hi = [{{"role": "user", "content": "hi"}}]
msgs = hi + [{{"role": "assistant", "content": "yo"}}, {{"role": "user", "content": [
    {{"type": "text", "text": "again"}},
    {{"type": "image", "source": {{"type": "base64", "media_type": "image/png", "data": "AAAA"}}}},
    {{"type": "tool_result", "tool_use_id": "t", "content": "x"}}]}}]
tools = [{{"name": "get_weather", "input_schema": {{"type": "object"}}}}]
with sentry_sdk.start_transaction(name="tx"):
    sentry_sdk.get_current_scope().set_conversation_id("conv-1")
    a.messages.create(model="claude-x", max_tokens=10, system="s", messages=msgs)
    a.messages.create(model="claude-x", max_tokens=10, messages=hi, tools=tools)
    for _ in a.messages.create(model="claude-x", max_tokens=10, messages=hi, stream=True):
        pass
    with a.messages.create(model="claude-x", max_tokens=10, messages=hi, stream=True,
                           tools=tools) as st:
        next(iter(st))
    with a.messages.stream(model="claude-x", max_tokens=10, messages=hi,
                           system=[{{"type": "text", "text": "sys"}}]) as ms:
        ms.until_done()
    try:
        a.messages.create(model="error", max_tokens=10, messages=hi)
    except anthropic.BadRequestError:
        pass

    async def main():
        aa = anthropic.AsyncAnthropic(api_key="k", base_url=url, max_retries=0)
        async for _ in await aa.messages.create(model="claude-a", max_tokens=10, messages=hi,
                                                stream=True, tools=tools):
            pass
        async with aa.messages.stream(model="claude-b", max_tokens=10, messages=msgs) as ms:
            await ms.get_final_message()
        await aa.close()

    asyncio.run(main())
a.messages.create(model="alone", max_tokens=10, messages=hi)
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

    return {
        "spans": [view(s) for tx in txs for s in tx["spans"]],
        "roots": [(tx["transaction"], view(tx["contexts"]["trace"])) for tx in txs],
        "metas": [tx.get("_meta") for tx in txs],
        "events": [e["exception"]["values"][-1]["mechanism"] for e in of_type(found, "event")],
    }


def test_same_as_sentry_sdk(llm: LlmServer, tmp_path: Path) -> None:
    sentry, ours = run_both(SCRIPT.format(url=llm.url), tmp_path, preload=True)
    expected, found = shape(sentry), shape(ours)
    assert found == expected
    assert len(found["spans"]) == 8
    assert found["events"] == [{"type": "anthropic", "handled": False}]
    cut = {"data": {"gen_ai.request.messages": {"": {"len": 3}}}}
    assert found["metas"][0] == {"spans": {"0": cut, "7": cut}}  # the two 3-message calls
