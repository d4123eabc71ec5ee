"""The LiteLLM integration: real `litellm` calls to the loopback OpenAI fake.

litellm's ``openai/`` provider talks to `fakes.llm_server` (``api_base``); the
integration hears about each call through litellm's callbacks, which litellm runs on
its own thread pool for sync calls: the tests wait for what they expect to arrive
(bounded), never for a time. litellm takes seconds to import, so it is imported once,
and the tests are few. The differential test runs one script on sentry_sdk 2.75 and on
tripwire, each in its own interpreter, against the same server.
"""

from __future__ import annotations

import asyncio
import gc
import json
import os
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Callable

import pytest
from _lazy import imported, lazy
from _side_by_side import of_type, run_both
from fakes.llm_server import TEXT, LlmServer, serving

import tripwire
from tripwire.integrations.litellm import LiteLLMIntegration
from tripwire.testing import MemoryTransport

# litellm would fetch its model price list from the internet at import.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
litellm = lazy("litellm")
_cleanup = lazy("litellm.llms.custom_httpx.async_client_cleanup")

# litellm's own modules warn (pydantic schemas, its event loop handling).
pytestmark = pytest.mark.filterwarnings("ignore::UserWarning", "ignore::DeprecationWarning")

MESSAGES = [{"role": "system", "content": "be nice"}, {"role": "user", "content": "hi"}]
PII = {"data_collection": {"gen_ai": {"inputs": True, "outputs": True}}}


@pytest.fixture(scope="module")
def llm() -> Iterator[LlmServer]:
    with serving() as server:
        yield server


@pytest.fixture(scope="module", autouse=True)
def _litellm_leftovers() -> Iterator[None]:
    """litellm keeps HTTP clients (some bound to the tests' finished event loops) and
    loops of its own; dropped and collected here, their ResourceWarnings silenced:
    they are litellm's, not tripwire's. litellm itself is imported here, before the
    first test (tests/_lazy.py)."""
    imported(litellm, _cleanup)
    yield
    for client in list(litellm.in_memory_llm_clients_cache.cache_dict.values()):
        if hasattr(client, "close") and not asyncio.iscoroutinefunction(client.close):
            client.close()
    litellm.in_memory_llm_clients_cache.flush_cache()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ResourceWarning)
        gc.collect()


@pytest.fixture
def call(llm: LlmServer) -> Callable[..., Any]:
    """`litellm.completion`-like calls to the fake: ``call(litellm.embedding, model=...)``."""

    def run(function: Callable[..., Any], **kwargs: Any) -> Any:
        return function(api_base=llm.url + "/v1", api_key="k", num_retries=0, **kwargs)

    return run


def init(**options: Any) -> MemoryTransport:
    memory = MemoryTransport()
    options.setdefault("integrations", [LiteLLMIntegration()])
    # gen_ai spans stay in their transaction, where these tests read them (the default
    # moves them to a span item: tests/test_trace_templates.py and the differential).
    options.setdefault("stream_gen_ai_spans", False)
    tripwire.init(transport=memory, traces_sample_rate=1.0, default_integrations=False, **options)
    return memory


def wait_for(ready: Callable[[], bool]) -> None:
    """Until `ready()` (litellm's callback threads are done), at most 30 s."""
    deadline = time.monotonic() + 30
    while not ready():
        assert time.monotonic() < deadline, "litellm's callbacks did not run"
        time.sleep(0.01)


def transactions(memory: MemoryTransport, count: int) -> list[dict[str, Any]]:
    def arrived() -> bool:
        tripwire.flush()
        return len(memory.transactions) >= count

    wait_for(arrived)
    return sorted(memory.transactions, key=lambda tx: str(tx["start_timestamp"]))


def test_calls_are_gen_ai_transactions(call: Callable[..., Any]) -> None:
    # Roots of their own transactions: nothing to move out, and no message is cut.
    memory = init(stream_gen_ai_spans=True, **PII)
    answer = call(litellm.completion, model="openai/gpt-4o", messages=MESSAGES, temperature=0.5)
    assert answer.choices[0].message.content == TEXT
    pieces = [
        c.choices[0].delta.content
        for c in call(litellm.completion, model="openai/gpt-4o", messages=MESSAGES, stream=True)
    ]
    assert "".join(p or "" for p in pieces) == TEXT
    call(litellm.embedding, model="openai/emb", input=["a", "b"])
    chat, streamed, embedded = [
        (tx["transaction"], tx["contexts"]["trace"]) for tx in transactions(memory, 3)
    ]
    assert chat[0] == streamed[0] == "chat gpt-4o"
    assert (chat[1]["op"], chat[1]["origin"]) == ("gen_ai.chat", "auto.ai.litellm")
    data = chat[1]["data"]
    assert (data["gen_ai.system"], data["gen_ai.operation.name"]) == ("openai", "chat")
    assert (data["gen_ai.request.model"], data["gen_ai.response.model"]) == (
        "gpt-4o",
        "gpt-4o-2024",
    )
    assert (data["gen_ai.request.temperature"], data["gen_ai.response.streaming"]) == (0.5, False)
    assert json.loads(data["gen_ai.request.messages"]) == MESSAGES
    assert json.loads(data["gen_ai.response.text"])["content"] == TEXT
    usage = [data[f"gen_ai.usage.{k}_tokens"] for k in ("input", "output", "total")]
    assert usage == [12, 5, 17]
    data = streamed[1]["data"]
    assert data["gen_ai.response.streaming"] is True
    assert json.loads(data["gen_ai.response.text"])["content"] == TEXT  # the whole answer
    assert data["gen_ai.usage.total_tokens"] > 0  # counted by litellm
    assert embedded[0] == "embeddings emb"
    data = embedded[1]["data"]
    assert (embedded[1]["op"], data["gen_ai.operation.name"]) == ("gen_ai.embeddings", "embeddings")
    assert data["gen_ai.embeddings.input"] == '["a", "b"]'
    assert data["gen_ai.usage.input_tokens"] == 8


def test_spans_are_children_of_the_callers_span(call: Callable[..., Any]) -> None:
    memory = init()
    done: list[Any] = []

    def seen(kwargs: dict[str, Any], *args: Any) -> None:
        if not kwargs.get("stream") or "complete_streaming_response" in kwargs:
            done.append(kwargs.get("model"))

    litellm.success_callback.append(seen)  # after tripwire's: runs once they have
    try:
        with tripwire.start_transaction(name="tx") as tx:
            call(litellm.completion, model="openai/gpt-4o", messages=MESSAGES)
            for _ in call(
                litellm.completion, model="openai/gpt-4o", messages=MESSAGES, stream=True
            ):
                pass
            call(litellm.embedding, model="openai/emb", input="a")
            wait_for(lambda: len(done) == 3)
    finally:
        litellm.success_callback.remove(seen)
    (sent,) = transactions(memory, 1)
    spans = sent["spans"]
    assert [s["description"] for s in spans] == ["chat gpt-4o", "chat gpt-4o", "embeddings emb"]
    assert {s["parent_span_id"] for s in spans} == {tx.span_id}
    # Without permission: no prompts or answers.
    for span in spans:
        assert not {"gen_ai.request.messages", "gen_ai.response.text"} & set(span["data"])
        assert "gen_ai.embeddings.input" not in span["data"]


def test_async_calls(call: Callable[..., Any]) -> None:
    memory = init(**PII)

    async def main() -> list[dict[str, Any]]:
        await call(litellm.acompletion, model="openai/gpt-4o", messages=MESSAGES)
        stream = await call(
            litellm.acompletion, model="openai/gpt-4o", messages=MESSAGES, stream=True
        )
        async for _ in stream:
            pass
        await call(litellm.aembedding, model="openai/emb", input="a")
        # litellm runs async callbacks on this loop: it must stay up until they ran.
        deadline = time.monotonic() + 30
        while len(memory.transactions) < 3 and time.monotonic() < deadline:
            tripwire.flush()
            await asyncio.sleep(0.01)
        await _cleanup.close_litellm_async_clients()  # on their loop, while it runs
        return memory.transactions

    sent = asyncio.run(main())
    assert len(sent) == 3
    names = sorted(tx["transaction"] for tx in sent)
    assert names == ["chat gpt-4o", "chat gpt-4o", "embeddings emb"]
    streaming = sorted(tx["contexts"]["trace"]["data"]["gen_ai.response.streaming"] for tx in sent)
    assert streaming == [False, False, True]
    for tx in sent:
        assert tx["contexts"]["trace"]["data"]["gen_ai.usage.input_tokens"] > 0


def test_error_is_an_event_and_the_span_fails(call: Callable[..., Any]) -> None:
    memory = init()
    with pytest.raises(litellm.BadRequestError):
        call(litellm.completion, model="openai/error", messages=MESSAGES)
    (tx,) = transactions(memory, 1)
    assert tx["contexts"]["trace"]["status"] == "internal_error"
    (event,) = memory.events
    (exc,) = event["exception"]["values"][-1:]
    assert exc["type"] == "BadRequestError"
    assert exc["mechanism"] == {"type": "litellm", "handled": False}
    assert event["contexts"]["trace"]["trace_id"] == tx["contexts"]["trace"]["trace_id"]


def test_falls_through_without_the_integration(call: Callable[..., Any]) -> None:
    memory = init(integrations=[])
    done = threading.Event()
    litellm.success_callback.append(lambda *args: done.set())
    try:
        with tripwire.start_transaction(name="tx"):
            call(litellm.completion, model="openai/gpt-4o", messages=MESSAGES)
            wait_for(done.is_set)
    finally:
        litellm.success_callback.pop()
    (tx,) = transactions(memory, 1)
    assert tx["spans"] == []


# -- against sentry_sdk 2.75 -----------------------------------------------------------

# Each call its own transaction, the next call only once the last one arrived:
# sentry_sdk ends spans on litellm's callback threads and leaves them current on the
# caller's scope meanwhile, so calls in one transaction would nest by timing.
# stream_gen_ai_spans=False: sentry_sdk 2.75 otherwise sends gen_ai spans as separate
# (v2) span items, where tripwire keeps them in the transaction.
SCRIPT = """
import asyncio, os, time, warnings
warnings.simplefilter("ignore")
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"
import litellm
from sentry_sdk.integrations.litellm import LiteLLMIntegration

sentry_sdk.init(
    dsn="https://k@o1.ingest.sentry.io/1", transport=KEEP, traces_sample_rate=1.0,
    default_integrations=False, integrations=[LiteLLMIntegration()], release="r",
    send_default_pii=True, stream_gen_ai_spans=False,
)
sentry_sdk.get_current_scope().set_conversation_id("conv-1")
base = dict(api_base={url!r} + "/v1", api_key="k", num_retries=0)
msgs = [{{"role": "system", "content": "s"}}, {{"role": "user", "content": "hi"}},
        {{"role": "user", "content": [{{"type": "text", "text": "look"}},
            {{"type": "image_url", "image_url": {{"url": "data:image/png;base64,AAAA"}}}}]}}]


def arrived(count):
    return sum(b'"type":"transaction"' in raw for raw in KEEP.raw) >= count


def wait(count):
    deadline = time.monotonic() + 30
    while not arrived(count) and time.monotonic() < deadline:
        time.sleep(0.01)


async def async_wait(count):
    # litellm runs async callbacks on the caller's loop: it must stay up meanwhile.
    deadline = time.monotonic() + 30
    while not arrived(count) and time.monotonic() < deadline:
        await asyncio.sleep(0.01)


litellm.completion(model="openai/gpt-4o", messages=msgs, max_tokens=9, top_p=0.5,
                   presence_penalty=0.1, frequency_penalty=0.2, **base)
wait(1)
list(litellm.completion(model="openai/gpt-4o", messages=msgs[1:2], stream=True, **base))
wait(2)
litellm.embedding(model="openai/emb", input=["a", "b"], **base)
wait(3)
try:
    litellm.completion(model="openai/error", messages=msgs[1:2], **base)
except litellm.BadRequestError:
    pass
wait(4)


async def main():
    await litellm.acompletion(model="openai/gpt-4o-mini", messages=msgs, **base)
    await async_wait(5)
    await litellm.aembedding(model="openai/emb", input="a", **base)
    await async_wait(6)


asyncio.run(main())
finish()
"""


def shape(found: dict[str, Any]) -> list[Any]:
    out = []
    for tx in of_type(found, "transaction"):
        trace = tx["contexts"]["trace"]
        data = {k: v for k, v in trace.get("data", {}).items() if not k.startswith("thread.")}
        out.append((tx["transaction"], trace["op"], trace["origin"], data, tx.get("_meta")))
    return sorted(out, key=json.dumps)


def test_same_as_sentry_sdk(llm: LlmServer, tmp_path: Path) -> None:
    sentry, ours = run_both(SCRIPT.format(url=llm.url), tmp_path, preload=True)
    expected, found = shape(sentry), shape(ours)
    assert len(found) == 6
    failed = [t for t in found if t[0] == "chat error"]
    # sentry_sdk 2.75 with litellm 1.110 reports no error (litellm hands its failure
    # callback None) and ends the span without a status; tripwire reports it.
    assert [t for t in expected if t[0] == "chat error"] == failed
    sent = of_type(ours, "transaction")
    assert [
        tx["contexts"]["trace"]["status"] for tx in sent if tx["transaction"] == "chat error"
    ] == ["internal_error"]
    assert of_type(sentry, "event") == []
    (event,) = of_type(ours, "event")
    assert event["exception"]["values"][-1]["mechanism"] == {"type": "litellm", "handled": False}
    assert found == expected
