"""The Pydantic AI integration: real `pydantic_ai.Agent` runs against a loopback fake of OpenAI.

The agents use pydantic-ai's OpenAI models (chat completions and responses) on a real
`openai` client pointed at `fakes.openai_agents_server` on 127.0.0.1 (the first tool is
called, a tool's result is answered with text). The differential tests run one script
on sentry_sdk 2.75 and on tripwire, each in its own interpreter.
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
from _side_by_side import of_type, run_gen_ai_settings
from fakes.llm_server import TEXT
from fakes.openai_agents_server import AgentLlmServer, serving

import tripwire
from tripwire.integrations.openai import OpenAIIntegration
from tripwire.integrations.pydantic_ai import PydanticAIIntegration
from tripwire.testing import MemoryTransport

if TYPE_CHECKING:
    import openai
    from pydantic_ai import Agent, ModelRetry
    from pydantic_ai.exceptions import ModelHTTPError
    from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel
    from pydantic_ai.providers.openai import OpenAIProvider


@pytest.fixture(autouse=True, scope="module")
def _pydantic_ai() -> None:
    """Pydantic AI is imported when the module's tests start, not at collection (every
    xdist worker collects every module; tests/_lazy.py)."""
    global openai, Agent, ModelRetry, ModelHTTPError, OpenAIChatModel, OpenAIResponsesModel
    global OpenAIProvider
    import openai
    from pydantic_ai import Agent, ModelRetry
    from pydantic_ai.exceptions import ModelHTTPError
    from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel
    from pydantic_ai.providers.openai import OpenAIProvider


@pytest.fixture(scope="module")
def llm() -> Iterator[AgentLlmServer]:
    with serving() as server:
        yield server


_clients: list[openai.AsyncOpenAI] = []


@pytest.fixture
def loop(llm: AgentLlmServer) -> Iterator[asyncio.AbstractEventLoop]:
    """The thread's event loop for the test (`run_sync` runs on it), closed after it."""
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield loop
    for client in _clients:
        loop.run_until_complete(client.close())
    _clients.clear()
    loop.run_until_complete(loop.shutdown_asyncgens())
    loop.run_until_complete(loop.shutdown_default_executor())
    loop.close()
    asyncio.set_event_loop(None)


def provider(llm: AgentLlmServer) -> OpenAIProvider:
    client = openai.AsyncOpenAI(api_key="k", base_url=llm.url + "/v1", max_retries=0)
    _clients.append(client)
    return OpenAIProvider(openai_client=client)


def chat_model(llm: AgentLlmServer, name: str = "gpt-4o") -> OpenAIChatModel:
    return OpenAIChatModel(name, provider=provider(llm))


def weather_agent(llm: AgentLlmServer, **kwargs: Any) -> Agent[None, str]:
    agent = Agent(
        chat_model(llm),
        name="weather",
        system_prompt="you are nice",
        instructions="be brief",
        model_settings={"temperature": 0.3},
        **kwargs,
    )

    @agent.tool_plain
    def get_weather(city: str) -> str:
        """Weather of a city."""
        return f"sunny in {city}"

    return agent


def init(**options: Any) -> MemoryTransport:
    memory = MemoryTransport()
    options.setdefault("integrations", [PydanticAIIntegration()])
    options.setdefault("default_integrations", False)
    # The gen_ai spans in their transaction (inputs are then cut to their last message).
    options.setdefault("stream_gen_ai_spans", False)
    tripwire.init(transport=memory, traces_sample_rate=1.0, **options)
    return memory


def pii() -> dict[str, Any]:
    return {"data_collection": {"gen_ai": {"inputs": True, "outputs": True}}}


def the_transaction(memory: MemoryTransport) -> dict[str, Any]:
    tripwire.flush()
    (tx,) = memory.transactions
    return tx


def ordered(tx: dict[str, Any]) -> list[dict[str, Any]]:
    return sorted(tx["spans"], key=lambda s: s["start_timestamp"])


def test_run_sync_with_a_tool(llm: AgentLlmServer, loop: asyncio.AbstractEventLoop) -> None:
    memory = init(**pii())
    result = weather_agent(llm).run_sync("hello")
    assert result.output == TEXT
    tx = the_transaction(memory)
    trace = tx["contexts"]["trace"]
    assert tx["transaction"] == "invoke_agent weather"
    assert (trace["op"], trace["origin"]) == ("gen_ai.invoke_agent", "auto.ai.pydantic_ai")
    data = trace["data"]
    assert data["gen_ai.agent.name"] == "weather"
    assert data["gen_ai.response.text"] == TEXT
    assert data["gen_ai.response.model"] == "gpt-4o-2024"
    (tool,) = json.loads(data["gen_ai.request.available_tools"])
    assert (tool["name"], tool["description"]) == ("get_weather", "Weather of a city.")

    spans = ordered(tx)
    assert [(s["op"], s["description"]) for s in spans] == [
        ("gen_ai.chat", "chat gpt-4o"),
        ("gen_ai.execute_tool", "execute_tool get_weather"),
        ("gen_ai.chat", "chat gpt-4o"),
    ]
    assert {s["parent_span_id"] for s in spans} == {trace["span_id"]}
    assert {s["origin"] for s in spans} == {"auto.ai.pydantic_ai"}
    first = spans[0]["data"]
    assert first["gen_ai.system"] == "openai"
    assert first["gen_ai.request.model"] == "gpt-4o"
    assert first["gen_ai.request.temperature"] == 0.3
    assert first["gen_ai.response.streaming"] is False
    usage = {k: v for k, v in first.items() if k.startswith("gen_ai.usage.")}
    assert usage == {
        "gen_ai.usage.input_tokens": 12,
        "gen_ai.usage.input_tokens.cached": 4,
        "gen_ai.usage.input_tokens.cache_write": 0,
        "gen_ai.usage.output_tokens": 5,
        "gen_ai.usage.total_tokens": 17,
    }
    assert json.loads(first["gen_ai.system_instructions"]) == [
        {"type": "text", "content": "you are nice"},
        {"type": "text", "content": "be brief"},
    ]
    (answer,) = json.loads(first["gen_ai.output.messages"])
    assert answer["parts"][0]["type"] == "tool_call"
    tool_data = spans[1]["data"]
    assert json.loads(tool_data["gen_ai.tool.input"]) == {"city": "Paris"}
    assert tool_data["gen_ai.tool.output"] == "sunny in Paris"
    assert tool_data["gen_ai.agent.name"] == "weather"
    (last,) = json.loads(spans[2]["data"]["gen_ai.output.messages"])
    assert last["parts"] == [{"type": "text", "content": TEXT}]


def test_async_run_inside_a_transaction_with_responses(
    llm: AgentLlmServer, loop: asyncio.AbstractEventLoop
) -> None:
    memory = init(**pii())
    agent = Agent(OpenAIResponsesModel("gpt-4o", provider=provider(llm)), name="resp")

    async def main() -> Any:
        with tripwire.start_transaction(name="outer"):
            return await agent.run("hello")

    assert loop.run_until_complete(main()).output == TEXT
    tx = the_transaction(memory)
    assert tx["transaction"] == "outer"
    invoke, chat = ordered(tx)
    assert (invoke["op"], invoke["description"]) == ("gen_ai.invoke_agent", "invoke_agent resp")
    assert invoke["parent_span_id"] == tx["contexts"]["trace"]["span_id"]
    assert (chat["description"], chat["parent_span_id"]) == ("chat gpt-4o", invoke["span_id"])
    assert chat["data"]["gen_ai.usage.total_tokens"] == 17


def test_run_stream(llm: AgentLlmServer, loop: asyncio.AbstractEventLoop) -> None:
    memory = init(**pii())
    agent = weather_agent(llm)

    async def main() -> str:
        async with agent.run_stream("hello") as result:
            return "".join([piece async for piece in result.stream_text(delta=True)])

    assert loop.run_until_complete(main()) == TEXT
    tx = the_transaction(memory)
    assert tx["transaction"] == "invoke_agent weather"
    (chat,) = tx["spans"]
    assert chat["data"]["gen_ai.response.streaming"] is True
    assert chat["data"]["gen_ai.usage.output_tokens"] == 5
    assert tx["contexts"]["trace"]["data"]["gen_ai.response.model"] == "gpt-4o-2024"


def test_model_error_is_captured_and_reraised(
    llm: AgentLlmServer, loop: asyncio.AbstractEventLoop
) -> None:
    memory = init(**pii())
    agent = Agent(chat_model(llm, "error"), name="bad")
    with pytest.raises(ModelHTTPError):
        agent.run_sync("hello")
    tripwire.flush()
    (event,) = memory.events
    values = event["exception"]["values"]
    assert values[0]["type"] == "BadRequestError"  # the cause, then what the run raised
    assert values[-1]["mechanism"] == {"type": "pydantic_ai", "handled": False}
    tx = the_transaction(memory)
    assert tx["contexts"]["trace"]["status"] == "internal_error"
    (chat,) = tx["spans"]
    assert (chat["description"], chat["status"]) == ("chat error", "internal_error")


@pytest.mark.parametrize("capture", [True, False])
def test_tool_retry_is_a_handled_event(
    llm: AgentLlmServer, loop: asyncio.AbstractEventLoop, capture: bool
) -> None:
    memory = init(integrations=[PydanticAIIntegration(handled_tool_call_exceptions=capture)])
    agent = Agent(chat_model(llm), name="retrying")

    @agent.tool_plain(retries=1)
    def flaky(city: str) -> str:
        raise ModelRetry("try again")

    assert agent.run_sync("hello").output == TEXT  # the model was asked again
    tripwire.flush()
    if capture:
        (event,) = memory.events
        assert event["exception"]["values"][-1]["mechanism"] == {
            "type": "pydantic_ai",
            "handled": True,
        }
    else:
        assert memory.events == []
    tx = the_transaction(memory)
    tool = next(s for s in tx["spans"] if s["op"] == "gen_ai.execute_tool")
    assert tool["status"] == "internal_error"


def test_prompts_need_permission_and_include_prompts(
    llm: AgentLlmServer, loop: asyncio.AbstractEventLoop
) -> None:
    memory = init(
        send_default_pii=True, integrations=[PydanticAIIntegration(include_prompts=False)]
    )
    weather_agent(llm).run_sync("private")
    tx = the_transaction(memory)
    sent = json.dumps(tx)
    for secret in ("private", "you are nice", "sunny", TEXT):
        assert secret not in sent
    # Tool definitions are always sent (as sentry_sdk before data_collection).
    assert "gen_ai.request.available_tools" in tx["contexts"]["trace"]["data"]
    assert ordered(tx)[0]["data"]["gen_ai.usage.total_tokens"] == 17


def test_an_agent_made_before_init_is_instrumented(
    llm: AgentLlmServer, loop: asyncio.AbstractEventLoop
) -> None:
    agent = Agent(chat_model(llm), name="early")
    memory = init()
    agent.run_sync("hello")
    tx = the_transaction(memory)
    assert [s["description"] for s in tx["spans"]] == ["chat gpt-4o"]


def test_the_openai_integration_is_switched_off(
    llm: AgentLlmServer, loop: asyncio.AbstractEventLoop
) -> None:
    # Both would be auto-enabled; each model call must make one chat span, this one's.
    memory = init(default_integrations=True, integrations=[])
    assert tripwire.get_client().get_integration(PydanticAIIntegration) is not None
    assert tripwire.get_client().get_integration(OpenAIIntegration) is None
    weather_agent(llm).run_sync("hello")
    tx = the_transaction(memory)
    chats = [s for s in tx["spans"] if s["op"] == "gen_ai.chat"]
    assert [s["origin"] for s in chats] == ["auto.ai.pydantic_ai"] * 2


def test_falls_through_without_the_integration(
    llm: AgentLlmServer, loop: asyncio.AbstractEventLoop
) -> None:
    memory = init(integrations=[])
    assert weather_agent(llm).run_sync("hello").output == TEXT
    tripwire.flush()
    assert memory.transactions == []


def test_import_tripwire_does_not_import_pydantic_ai() -> None:
    code = (
        "import sys, tripwire\n"
        "from tripwire.integrations.pydantic_ai import PydanticAIIntegration\n"
        "tripwire.init(dsn='http://k@example.com/1', integrations=[PydanticAIIntegration()])\n"
        "assert 'pydantic_ai' not in sys.modules\n"
        "from pydantic_ai import Agent\n"
        "assert getattr(Agent.run, '__tripwire_pydantic_ai__', False)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr


# -- against sentry_sdk 2.75 -----------------------------------------------------------

SCRIPT = """
import asyncio, sys, warnings
warnings.simplefilter("ignore", DeprecationWarning)
sys.path.insert(0, {tests!r})
import openai
from pydantic_ai import Agent, ModelRetry
from pydantic_ai.models.openai import OpenAIChatModel, OpenAIResponsesModel
from pydantic_ai.providers.openai import OpenAIProvider
from sentry_sdk.integrations.pydantic_ai import PydanticAIIntegration
from fakes.openai_agents_server import serving

sentry_sdk.init(
    dsn="https://k@o1.ingest.sentry.io/1", transport=KEEP, traces_sample_rate=1.0,
    default_integrations=False, auto_enabling_integrations=False, release="r",
    integrations=[PydanticAIIntegration()],
    send_default_pii=True, stream_gen_ai_spans={stream_gen_ai_spans},
)

async def main(url):
    c = openai.AsyncOpenAI(api_key="k", base_url=url + "/v1", max_retries=0)
    p = OpenAIProvider(openai_client=c)
    agent = Agent(OpenAIChatModel("gpt-4o", provider=p), name="weather",
                  system_prompt="you are nice", instructions="be brief",
                  model_settings={{"temperature": 0.3, "max_tokens": 50}})

    @agent.tool_plain
    def get_weather(city: str) -> str:
        '''Weather of a city.'''
        return "sunny in " + city

    await agent.run("hello")
    async with agent.run_stream("hello") as result:
        async for _ in result.stream_text():
            pass
    await Agent(OpenAIResponsesModel("gpt-4o", provider=p), name="resp").run("hi")
    retrying = Agent(OpenAIChatModel("gpt-4o", provider=p), name="retrying")

    @retrying.tool_plain(retries=1)
    def flaky(city: str) -> str:
        raise ModelRetry("again")

    await retrying.run("hello")
    try:
        await Agent(OpenAIChatModel("error", provider=p), name="bad").run("hello")
    except Exception:
        pass
    await c.close()

with serving() as server:
    asyncio.run(main(server.url))
finish()
"""

_ENVELOPE_ATTRS = ("sentry.", "thread.", "server.", "process.")


def _data(data: dict[str, Any]) -> dict[str, Any]:
    # A v2 span attribute cannot be null: sentry_sdk drops those (a tool without a
    # description) from streamed spans; a span in a transaction keeps them.
    return {k: v for k, v in data.items() if not k.startswith(_ENVELOPE_ATTRS) and v is not None}


def shape(found: dict[str, Any]) -> dict[str, Any]:
    txs = of_type(found, "transaction")
    spans = [
        {
            "op": s.get("op"),
            "description": s.get("description"),
            "origin": s.get("origin"),
            "status": s.get("status"),
            "data": _data(s.get("data", {})),
        }
        for tx in txs
        for s in tx["spans"]
    ]
    for item in of_type(found, "span"):
        for s in item["items"]:
            attrs = {k: v["value"] for k, v in s["attributes"].items()}
            spans.append(
                {
                    "op": attrs["sentry.op"],
                    "description": s["name"],
                    "origin": attrs["sentry.origin"],
                    "status": None if s["status"] == "ok" else "internal_error",
                    "data": _data(attrs),
                }
            )
    roots: list[Any] = []
    for tx in txs:
        trace = tx["contexts"]["trace"]
        roots.append((tx["transaction"], trace.get("op"), trace.get("origin"), trace.get("status")))
        roots.append(_data({k: v for k, v in trace.get("data", {}).items()}))
    events = [
        ([v["type"] for v in e["exception"]["values"]], e["exception"]["values"][-1]["mechanism"])
        for e in of_type(found, "event")
    ]
    return {
        "spans": spans,
        "roots": roots,
        "events": events,
        "metas": [t.get("_meta") for t in txs],
    }


def test_same_as_sentry_sdk(tmp_path: Path) -> None:
    # Both settings of stream_gen_ai_spans, one after the other in one interpreter per
    # SDK (importing pydantic-ai is most of a run's cost).
    runs = run_gen_ai_settings(SCRIPT, tmp_path, tests=str(Path(__file__).parent))
    for stream_gen_ai_spans, sentry, ours in runs:
        expected, found = shape(sentry), shape(ours)
        if stream_gen_ai_spans:
            # sentry_sdk 2.75 sends gen_ai spans as span items (v2) then; tripwire keeps
            # them in their transaction: their contents must agree all the same.
            key = lambda s: json.dumps(s, sort_keys=True)  # noqa: E731
            expected["spans"].sort(key=key)
            found["spans"].sort(key=key)
            expected.pop("metas"), found.pop("metas")
        assert found == expected, stream_gen_ai_spans
        assert len(found["roots"]) == 10
        assert found["events"] == [
            (["ModelRetry", "ToolRetryError"], {"type": "pydantic_ai", "handled": True}),
            (
                ["BadRequestError", "ModelRequestRejectedError"],
                {"type": "pydantic_ai", "handled": False},
            ),
        ]
