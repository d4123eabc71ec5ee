"""The Hugging Face Hub integration: the real `InferenceClient` against a loopback fake TGI.

`fakes.tgi_server` answers TGI's text generation (plain, with details, streamed) and
the OpenAI-compatible chat API (plain, streamed, tool calls, errors) on 127.0.0.1.
The differential test runs one script on sentry_sdk 2.75 and on tripwire, each in
its own interpreter, against the same server.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _receiver import Receiver
from _side_by_side import of_type, run_both
from fakes.llm_server import TEXT, TEXT_PIECES
from fakes.tgi_server import TgiServer, serving

import tripwire
from tripwire.integrations.huggingface_hub import HuggingfaceHubIntegration
from tripwire.testing import MemoryTransport

if TYPE_CHECKING:
    from huggingface_hub import InferenceClient
    from huggingface_hub.errors import BadRequestError


@pytest.fixture(autouse=True, scope="module")
def _huggingface_hub() -> None:
    """huggingface_hub is imported when the module's tests start, not at collection (every xdist
    worker collects every module; tests/_lazy.py)."""
    global InferenceClient, BadRequestError
    from huggingface_hub import InferenceClient
    from huggingface_hub.errors import BadRequestError


HI = [{"role": "user", "content": "hi"}]
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {}}},
    }
]
PII = {"send_default_pii": True}


@pytest.fixture(scope="session")
def tgi() -> Iterator[TgiServer]:
    with serving() as server:
        yield server


@pytest.fixture
def chat(tgi: TgiServer) -> InferenceClient:
    return InferenceClient(base_url=tgi.url)


@pytest.fixture
def generator(tgi: TgiServer) -> InferenceClient:
    return InferenceClient(model=tgi.url)


def init(**options: Any) -> MemoryTransport:
    memory = MemoryTransport()
    options.setdefault("integrations", [HuggingfaceHubIntegration()])
    # gen_ai spans stay in their transaction, where these tests read them (the default
    # moves them to a span item: tests/test_trace_templates.py and the differential).
    options.setdefault("stream_gen_ai_spans", False)
    tripwire.init(transport=memory, traces_sample_rate=1.0, default_integrations=False, **options)
    return memory


def spans(memory: MemoryTransport) -> list[dict[str, Any]]:
    tripwire.flush()
    return [s for tx in memory.transactions for s in tx["spans"]]


def test_chat_completion_span(chat: InferenceClient, tgi: TgiServer) -> None:
    memory = init(**PII)
    with tripwire.start_transaction(name="tx"):
        answer = chat.chat_completion(messages=HI, model="m1", max_tokens=5, temperature=0.5)
    assert answer.choices[0].message.content == TEXT
    (span,) = spans(memory)
    assert (span["op"], span["description"], span["origin"]) == (
        "gen_ai.chat",
        f"chat {tgi.url}",  # the client's base URL is its model
        "auto.ai.huggingface_hub",
    )
    data = span["data"]
    assert data["gen_ai.operation.name"] == "chat"
    assert data["gen_ai.request.model"] == tgi.url
    assert data["gen_ai.request.max_tokens"] == 5
    assert data["gen_ai.request.temperature"] == 0.5
    assert data["gen_ai.response.model"] == "m1-2024"
    assert data["gen_ai.response.finish_reasons"] == "stop"
    assert data["gen_ai.response.text"] == TEXT
    assert json.loads(data["gen_ai.request.messages"]) == HI
    assert data["gen_ai.usage.input_tokens"] == 12
    assert data["gen_ai.usage.output_tokens"] == 5
    assert data["gen_ai.usage.total_tokens"] == 17


def test_tools_and_permissions(chat: InferenceClient) -> None:
    memory = init()
    with tripwire.start_transaction(name="tx"):
        chat.chat_completion(messages=HI, model="m1", tools=TOOLS)
    (span,) = spans(memory)
    data = span["data"]
    assert json.loads(data["gen_ai.request.available_tools"]) == TOOLS
    assert data["gen_ai.response.finish_reasons"] == "tool_calls"
    for key in ("gen_ai.request.messages", "gen_ai.response.tool_calls", "gen_ai.response.text"):
        assert key not in data
    tripwire.get_client().close()
    memory = init(**PII)
    with tripwire.start_transaction(name="tx"):
        chat.chat_completion(messages=HI, model="m1", tools=TOOLS)
    (span,) = spans(memory)
    (call,) = json.loads(span["data"]["gen_ai.response.tool_calls"])
    assert call["function"]["name"] == "get_weather"
    assert json.loads(call["function"]["arguments"]) == {"city": "Paris"}


def test_data_collection_rules(chat: InferenceClient) -> None:
    memory = init(data_collection={"gen_ai": {"inputs": False, "outputs": True}})
    with tripwire.start_transaction(name="tx"):
        chat.chat_completion(messages=HI, model="m1", tools=TOOLS)
    (span,) = spans(memory)
    assert "gen_ai.request.messages" not in span["data"]
    assert "gen_ai.request.available_tools" not in span["data"]
    assert "gen_ai.response.tool_calls" in span["data"]


def test_streamed_chat_passes_chunks_and_ends_at_the_last(chat: InferenceClient) -> None:
    memory = init(**PII)
    with tripwire.start_transaction(name="tx"):
        pieces = [c.choices[0].delta.content for c in chat.chat_completion(HI, stream=True)]
    assert pieces == ["", *TEXT_PIECES, None]
    (span,) = spans(memory)
    data = span["data"]
    assert data["gen_ai.response.streaming"] is True
    assert data["gen_ai.response.finish_reasons"] == "stop"
    assert data["gen_ai.response.text"] == TEXT


def test_stream_closed_early_ends_the_span(chat: InferenceClient) -> None:
    memory = init(**PII)
    with tripwire.start_transaction(name="tx"):
        stream: Any = chat.chat_completion(HI, stream=True)
        next(stream)
        stream.close()
    (span,) = spans(memory)
    assert span["data"]["gen_ai.response.streaming"] is True
    assert "gen_ai.response.text" not in span["data"]


def test_text_generation(generator: InferenceClient) -> None:
    memory = init(**PII)
    with tripwire.start_transaction(name="tx"):
        assert generator.text_generation("hello", max_new_tokens=5) == TEXT
        detailed = generator.text_generation("hello", details=True)
        assert list(generator.text_generation("hello", stream=True)) == list(TEXT_PIECES)
        tokens = list(generator.text_generation(prompt="hello", stream=True, details=True))
    assert detailed.details is not None and detailed.details.finish_reason == "length"
    assert [t.token.text for t in tokens] == list(TEXT_PIECES)
    plain, with_details, streamed, streamed_details = spans(memory)
    for span in (plain, with_details, streamed, streamed_details):
        assert span["op"] == "gen_ai.text_completion"
        assert span["data"]["gen_ai.request.messages"] == "hello"
        assert span["data"]["gen_ai.response.text"] == TEXT
    assert "gen_ai.usage.total_tokens" not in plain["data"]
    for span in (with_details, streamed_details):
        assert span["data"]["gen_ai.usage.total_tokens"] == 5  # the generated tokens
        assert span["data"]["gen_ai.response.finish_reasons"] == "length"
    assert streamed["data"]["gen_ai.response.streaming"] is True


def test_error_is_an_event(chat: InferenceClient) -> None:
    memory = init()
    with tripwire.start_transaction(name="tx"), pytest.raises(BadRequestError):
        chat.chat_completion(HI, model="error")
    (span,) = spans(memory)
    assert span["status"] == "internal_error"
    (event,) = memory.events
    assert event["exception"]["values"][-1]["mechanism"] == {
        "type": "huggingface_hub",
        "handled": False,
    }


def test_span_and_error_reach_the_server(rx: Receiver, chat: InferenceClient) -> None:
    tripwire.init(
        dsn=rx.dsn(),
        traces_sample_rate=1.0,
        default_integrations=False,
        integrations=[HuggingfaceHubIntegration()],
    )
    with tripwire.start_transaction(name="tx"):
        chat.chat_completion(HI, model="m1")
        with pytest.raises(BadRequestError):
            chat.chat_completion(HI, model="error")
    tripwire.flush()
    rx.wait_for(2)
    (event,) = rx.events()
    assert event["exception"]["values"][-1]["type"] == "BadRequestError"
    (tx,) = [item.payload.json for item in rx.items("transaction")]
    # By default (stream_gen_ai_spans) the gen_ai spans travel beside their
    # transaction, as a v2 span item of the same envelope.
    assert tx["spans"] == []
    (container,) = [json.loads(item.get_bytes()) for item in rx.items("span")]
    spans = container["items"]
    assert [(s["attributes"]["sentry.op"]["value"], s["status"]) for s in spans] == [
        ("gen_ai.chat", "ok"),
        ("gen_ai.chat", "error"),
    ]
    usage = spans[0]["attributes"]["gen_ai.usage.total_tokens"]
    assert usage == {"value": 17, "type": "integer"}


def test_falls_through_without_the_integration(chat: InferenceClient) -> None:
    memory = init(integrations=[])
    with tripwire.start_transaction(name="tx"):
        chat.chat_completion(HI)
        list(chat.chat_completion(HI, stream=True))
    assert spans(memory) == []


def test_import_tripwire_does_not_import_huggingface_hub() -> None:
    code = (
        "import sys, tripwire\n"
        "from tripwire.integrations.huggingface_hub import HuggingfaceHubIntegration\n"
        "tripwire.init(dsn='http://k@example.com/1', integrations=[HuggingfaceHubIntegration()])\n"
        "assert 'huggingface_hub' not in sys.modules\n"
        "from huggingface_hub import InferenceClient\n"
        "assert getattr(InferenceClient.chat_completion, '__tripwire_huggingface_hub__', False)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr


SCRIPT = """
import warnings
warnings.simplefilter("ignore")
from huggingface_hub import InferenceClient
from sentry_sdk.integrations.huggingface_hub import HuggingfaceHubIntegration

sentry_sdk.init(
    dsn="https://k@o1.ingest.sentry.io/1", transport=KEEP, traces_sample_rate=1.0,
    default_integrations=False, integrations=[HuggingfaceHubIntegration()], release="r",
    send_default_pii=True, stream_gen_ai_spans=False,
)
url = {url!r}
hi = [{{"role": "user", "content": "hi"}}]
tools = [{{"type": "function", "function": {{"name": "f", "parameters": {{"type": "object"}}}}}}]
chat = InferenceClient(base_url=url)
gen = InferenceClient(model=url)
with sentry_sdk.start_transaction(name="tx"):
    sentry_sdk.get_current_scope().set_conversation_id("conv-1")
    chat.chat_completion(hi, max_tokens=5, temperature=0.5, top_p=0.9, frequency_penalty=0.1,
                         presence_penalty=0.2)
    chat.chat_completion(messages=hi, tools=tools)
    for _ in chat.chat_completion(hi, stream=True):
        pass
    gen.text_generation("hello", max_new_tokens=5)
    gen.text_generation("hello", details=True)
    list(gen.text_generation("hello", stream=True))
    list(gen.text_generation(prompt="hello", stream=True, details=True))
    try:
        chat.chat_completion(hi, model="error")
    except Exception:
        pass
InferenceClient().chat_completion(hi, model=url + "/v1/chat/completions")
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
        "events": [e["exception"]["values"][-1]["mechanism"] for e in of_type(found, "event")],
    }


def test_same_as_sentry_sdk(tgi: TgiServer, tmp_path: Path) -> None:
    sentry, ours = run_both(SCRIPT.format(url=tgi.url), tmp_path, preload=True)
    expected, found = shape(sentry), shape(ours)
    assert found == expected
    assert len(found["spans"]) == 8
    assert len(found["roots"]) == 2  # the call outside a transaction is one
    assert found["spans"][0]["data"]["gen_ai.conversation.id"] == "conv-1"
    assert found["events"] == [{"type": "huggingface_hub", "handled": False}]
