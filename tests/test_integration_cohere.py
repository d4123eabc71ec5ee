"""The Cohere integration: the real `cohere` client against a loopback fake of its v1 API.

`fakes.cohere_server` answers chats (plain and streamed as JSON lines, tool calls,
errors) and embeddings on 127.0.0.1. The differential test runs one script on
sentry_sdk 2.75 and on tripwire, each in its own interpreter, against the same server.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _side_by_side import of_type, run_both
from fakes.cohere_server import CohereServer, serving
from fakes.llm_server import TEXT, TEXT_PIECES

import tripwire
from tripwire.integrations.cohere import CohereIntegration
from tripwire.testing import MemoryTransport

if TYPE_CHECKING:
    import cohere
    from cohere import ChatMessage


@pytest.fixture(autouse=True, scope="module")
def _cohere() -> None:
    """Cohere is imported when the module's tests start, not at collection (every xdist
    worker collects every module; tests/_lazy.py)."""
    global cohere, ChatMessage
    import cohere
    from cohere import ChatMessage


PII = {"data_collection": {"gen_ai": {"inputs": True, "outputs": True}}}
TOOL = {"name": "get_weather", "description": "the weather", "parameter_definitions": {}}


@pytest.fixture(scope="module")
def server() -> Iterator[CohereServer]:
    with serving() as s:
        yield s


@pytest.fixture
def make_client(server: CohereServer) -> Iterator[Callable[[], cohere.Client]]:
    """Builds clients (after `init`, as with sentry_sdk: `cohere.Client()` binds its own
    `chat` when built); closed after the test."""
    made: list[cohere.Client] = []

    def make() -> cohere.Client:
        made.append(cohere.Client(api_key="k", base_url=server.url))
        return made[-1]

    yield make
    for client in made:
        client._client_wrapper.httpx_client.httpx_client.close()


def init(**options: Any) -> MemoryTransport:
    memory = MemoryTransport()
    options.setdefault("integrations", [CohereIntegration()])
    # gen_ai spans stay in their transaction, where these tests read them (the default
    # moves them to a span item: tests/test_trace_templates.py and the differential).
    options.setdefault("stream_gen_ai_spans", False)
    tripwire.init(transport=memory, traces_sample_rate=1.0, default_integrations=False, **options)
    return memory


def ai_spans(memory: MemoryTransport) -> list[dict[str, Any]]:
    tripwire.flush()
    return [s for tx in memory.transactions for s in tx["spans"] if s["op"].startswith("ai.")]


def test_chat_span(make_client: Callable[[], cohere.Client]) -> None:
    memory = init(**PII)
    client = make_client()
    history = [ChatMessage(role="USER", message="yo"), ChatMessage(role="CHATBOT", message="sup")]
    with tripwire.start_transaction(name="tx"):
        answer = client.chat(
            model="command-r", message="hi", chat_history=history, preamble="be nice", k=3, p=0.5
        )
    assert answer.text == TEXT
    (span,) = ai_spans(memory)
    assert (span["op"], span["description"], span["origin"]) == (
        "ai.chat_completions.create.cohere",
        "cohere.client.Chat",
        "auto.ai.cohere",
    )
    data = span["data"]
    assert json.loads(data["ai.input_messages"]) == [
        {"role": "user", "content": "yo"},
        {"role": "chatbot", "content": "sup"},
        {"role": "user", "content": "hi"},
    ]
    assert (data["ai.preamble"], data["ai.model_id"]) == ("be nice", "command-r")
    assert (data["ai.top_k"], data["ai.top_p"], data["ai.streaming"]) == (3, 0.5, False)
    assert (data["ai.responses"], data["ai.generation_id"]) == (TEXT, "gen-1")
    assert (data["ai.finish_reason"], data["ai.warnings"]) == ("COMPLETE", "a warning")
    usage = [data[f"gen_ai.usage.{k}_tokens"] for k in ("input", "output", "total")]
    assert usage == [10, 4, 14]  # the billed units


def test_prompts_need_permission_and_tool_calls(make_client: Callable[[], cohere.Client]) -> None:
    memory = init()
    client = make_client()
    with tripwire.start_transaction(name="tx"):
        answer = client.chat(model="command-r", message="weather?", tools=[TOOL])
    assert answer.tool_calls and answer.tool_calls[0].name == "get_weather"
    (span,) = ai_spans(memory)
    for key in ("ai.input_messages", "ai.tools", "ai.responses", "ai.tool_calls"):
        assert key not in span["data"]
    assert span["data"]["ai.model_id"] == "command-r"

    tripwire.get_client().close()
    memory = init(**PII)
    client = make_client()
    with tripwire.start_transaction(name="tx"):
        client.chat(model="command-r", message="weather?", tools=[TOOL])
    (span,) = ai_spans(memory)
    assert json.loads(span["data"]["ai.tools"])["name"] == "get_weather"
    assert json.loads(span["data"]["ai.tool_calls"]) == {
        "name": "get_weather",
        "parameters": {"city": "Paris"},
    }


def test_stream_ends_after_the_last_event(make_client: Callable[[], cohere.Client]) -> None:
    memory = init(**PII)
    client = make_client()
    with tripwire.start_transaction(name="tx"):
        events = list(client.chat_stream(model="command-r", message="hi"))
    assert [e.text for e in events if e.event_type == "text-generation"] == list(TEXT_PIECES)
    (span,) = ai_spans(memory)
    assert span["data"]["ai.responses"] == TEXT
    assert span["data"]["gen_ai.usage.total_tokens"] == 14
    assert span["data"]["ai.streaming"] is False  # as sentry_sdk 2.75 sets it


def test_embed(make_client: Callable[[], cohere.Client]) -> None:
    memory = init(**PII)
    client = make_client()
    with tripwire.start_transaction(name="tx"):
        result = client.embed(model="embed-v3", texts=["a", "b"], input_type="search_document")
    assert result.embeddings == [[0.25, 0.5, 0.75]] * 2
    (span,) = ai_spans(memory)
    assert (span["op"], span["description"]) == (
        "ai.embeddings.create.cohere",
        "Cohere Embedding Creation",
    )
    assert span["data"]["ai.input_messages"] == '["a", "b"]'
    assert span["data"]["ai.model_id"] == "embed-v3"
    assert span["data"]["gen_ai.usage.input_tokens"] == 7


def test_errors_are_events_and_the_spans_fail(make_client: Callable[[], cohere.Client]) -> None:
    memory = init()
    client = make_client()
    with tripwire.start_transaction(name="tx"):
        with pytest.raises(cohere.BadRequestError):
            client.chat(model="error", message="hi")
        with pytest.raises(cohere.BadRequestError):
            client.embed(model="error", texts=["a"])
    chat, embed = ai_spans(memory)
    assert chat["status"] == embed["status"] == "internal_error"
    assert len(memory.events) == 2
    for event, span in zip(memory.events, (chat, embed)):
        assert event["exception"]["values"][-1]["mechanism"] == {"type": "cohere", "handled": False}
        assert event["contexts"]["trace"]["span_id"] == span["span_id"]


def test_falls_through_without_the_integration(make_client: Callable[[], cohere.Client]) -> None:
    memory = init(integrations=[])
    client = make_client()
    with tripwire.start_transaction(name="tx"):
        assert client.chat(model="command-r", message="hi").text == TEXT
    assert ai_spans(memory) == []


# -- against sentry_sdk 2.75 -----------------------------------------------------------

# stream_gen_ai_spans=False: sentry_sdk 2.75 otherwise sends AI spans as separate (v2)
# span items, where tripwire keeps them in the transaction.
SCRIPT = """
import warnings
warnings.simplefilter("ignore", DeprecationWarning)
import cohere
from cohere import ChatMessage
from sentry_sdk.integrations.cohere import CohereIntegration

sentry_sdk.init(
    dsn="https://k@o1.ingest.sentry.io/1", transport=KEEP, traces_sample_rate=1.0,
    default_integrations=False, integrations=[CohereIntegration()], release="r",
    send_default_pii=True, stream_gen_ai_spans=False,
)
c = cohere.Client(api_key="k", base_url={url!r})
tool = {{"name": "get_weather", "description": "d", "parameter_definitions": {{}}}}
with sentry_sdk.start_transaction(name="tx"):
    sentry_sdk.get_current_scope().set_conversation_id("conv-1")
    c.chat(model="command-r", message="hi", preamble="p", seed=3, frequency_penalty=0.1,
           chat_history=[ChatMessage(role="USER", message="yo")])
    for _ in c.chat_stream(model="command-r", message="hi", k=2):
        pass
    c.chat(model="command-r", message="weather", tools=[tool])
    c.embed(model="embed-v3", texts=["a", "b"], input_type="search_document")
    c.embed(model="embed-v3", texts="one", input_type="search_document")
    for call in (lambda: c.chat(model="error", message="hi"),
                 lambda: c.embed(model="error", texts=["a"])):
        try:
            call()
        except cohere.BadRequestError:
            pass
c.chat(model="alone", message="hi")
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
    events = [e["exception"]["values"][-1] for e in of_type(found, "event")]
    return {
        "spans": [_view(s) for tx in txs for s in tx["spans"]],
        "roots": [(tx["transaction"], _view(tx["contexts"]["trace"])) for tx in txs],
        "events": [(v["type"], v["mechanism"]) for v in events],
    }


def test_same_as_sentry_sdk(server: CohereServer, tmp_path: Path) -> None:
    sentry, ours = run_both(SCRIPT.format(url=server.url), tmp_path, preload=True)
    assert shape(ours) == shape(sentry)
    assert len(shape(ours)["spans"]) == 7
    assert len(shape(ours)["events"]) == 2


def test_init_imports_none_of_the_libraries() -> None:
    code = (
        "import sys, tripwire\n"
        "from tripwire.integrations.cohere import CohereIntegration\n"
        "from tripwire.integrations.litellm import LiteLLMIntegration\n"
        "from tripwire.integrations.mistral import MistralIntegration\n"
        "tripwire.init(dsn='http://k@example.com/1', integrations=[\n"
        "    CohereIntegration(), LiteLLMIntegration(), MistralIntegration()])\n"
        "assert not {'cohere', 'litellm', 'mistralai'} & set(sys.modules), sys.modules\n"
        "from cohere.base_client import BaseCohere\n"
        "from mistralai.client.chat import Chat\n"
        "assert getattr(BaseCohere.chat, '__tripwire_cohere__', False)\n"
        "assert getattr(Chat.complete, '__tripwire_mistral__', False)\n"
    )
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
