"""The MCP integration: real `mcp` servers driven by the real `mcp` client.

In process (the client's in-memory connection to an `MCPServer` or a lowlevel
`Server`) and over Streamable HTTP (uvicorn on 127.0.0.1). The differential test
runs one script on sentry_sdk 2.75 and on tripwire, each in its own interpreter.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _receiver import Receiver
from _side_by_side import of_type, run_both

import tripwire
from tripwire.integrations.mcp import MCPIntegration
from tripwire.integrations.starlette import StarletteIntegration
from tripwire.testing import MemoryTransport

if TYPE_CHECKING:
    import mcp_types as types
    import uvicorn
    from mcp import Client
    from mcp.server.lowlevel import Server
    from mcp.server.mcpserver import MCPServer


@pytest.fixture(autouse=True, scope="module")
def _mcp() -> None:
    """MCP is imported when the module's tests start, not at collection (every xdist
    worker collects every module; tests/_lazy.py)."""
    global types, uvicorn, Client, Server, MCPServer
    import mcp_types as types
    import uvicorn
    from mcp import Client
    from mcp.server.lowlevel import Server
    from mcp.server.mcpserver import MCPServer


def init(**options: Any) -> MemoryTransport:
    memory = MemoryTransport()
    options.setdefault("integrations", [MCPIntegration()])
    # gen_ai spans stay in their transaction, where these tests read them (the default
    # moves them to a span item: tests/test_trace_templates.py and the differential).
    options.setdefault("stream_gen_ai_spans", False)
    tripwire.init(transport=memory, traces_sample_rate=1.0, default_integrations=False, **options)
    return memory


def demo() -> MCPServer:
    app = MCPServer("demo")

    @app.tool()
    def add(a: int, b: int) -> int:
        """Add two numbers."""
        return a + b

    @app.tool()
    def info(name: str) -> str:
        return f"about {name}"

    @app.prompt()
    def greet(who: str) -> str:
        return f"Hello {who}"

    @app.resource("data://config")
    def config() -> str:
        return "cfg"

    return app


async def drive(server: Any) -> list[Any]:
    async with Client(server) as client:
        return [
            await client.call_tool("add", {"a": 1, "b": 2}),
            await client.call_tool("info", {"name": "n"}),
            await client.get_prompt("greet", {"who": "Bob"}),
            await client.read_resource("data://config"),
        ]


def roots(memory: MemoryTransport) -> list[dict[str, Any]]:
    tripwire.flush()
    return memory.transactions


def data(tx: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in tx["contexts"]["trace"]["data"].items() if not k.startswith("thread.")}


def test_tool_prompt_and_resource_spans() -> None:
    memory = init(send_default_pii=True)
    results = asyncio.run(drive(demo()))
    assert results[0].structured_content == {"result": 3}
    add, info, greet, config = roots(memory)
    assert [(tx["transaction"], tx["contexts"]["trace"]["op"]) for tx in (add, info, greet)] == [
        ("tools/call add", "mcp.server"),
        ("tools/call info", "mcp.server"),
        ("prompts/get greet", "mcp.server"),
    ]
    assert add["contexts"]["trace"]["origin"] == "auto.ai.mcp"
    found = data(add)
    request_id = found.pop("mcp.request.id")
    assert isinstance(request_id, int)
    assert found == {
        "mcp.tool.name": "add",
        "mcp.method.name": "tools/call",
        "network.transport": "pipe",
        "mcp.transport": "stdio",
        "mcp.request.argument.a": "1",
        "mcp.request.argument.b": "2",
        "mcp.tool.result.content": '{"result": 3}',
        "mcp.tool.result.content_count": 1,
    }
    assert data(info)["mcp.tool.result.content"] == '{"result": "about n"}'
    assert data(greet)["mcp.prompt.result.message_count"] == 1
    assert data(greet)["mcp.prompt.result.message_role"] == "user"
    assert data(greet)["mcp.prompt.result.message_content"] == "Hello Bob"
    assert config["transaction"] == "resources/read data://config"
    assert data(config)["mcp.resource.uri"] == "data://config"
    assert data(config)["mcp.resource.protocol"] == "data"


def test_results_need_pii_arguments_follow_data_collection() -> None:
    memory = init()
    asyncio.run(drive(demo()))
    add, _, greet, _ = roots(memory)
    assert data(add)["mcp.request.argument.a"] == "1"  # sent without send_default_pii
    assert "mcp.tool.result.content" not in data(add)
    assert data(greet)["mcp.prompt.result.message_count"] == 1
    assert "mcp.prompt.result.message_content" not in data(greet)
    tripwire.get_client().close()
    memory = init(data_collection={"gen_ai": {"inputs": False, "outputs": True}})
    asyncio.run(drive(demo()))
    add, _, greet, _ = roots(memory)
    assert not [k for k in data(add) if k.startswith("mcp.request.argument.")]
    assert data(add)["mcp.tool.result.content"] == '{"result": 3}'
    assert "mcp.prompt.result.message_content" not in data(greet)  # a prompt's text is an input


def test_spans_nest_in_the_current_transaction() -> None:
    memory = init()

    async def main() -> None:
        with tripwire.start_transaction(name="outer"):
            await drive(demo())

    asyncio.run(main())
    (tx,) = roots(memory)
    assert [s["description"] for s in tx["spans"]] == [
        "tools/call add",
        "tools/call info",
        "prompts/get greet",
        "resources/read data://config",
    ]


def lowlevel(error: Exception) -> Server[Any]:
    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        raise error

    return Server("low", on_call_tool=call_tool)


def test_handler_exception_is_an_event() -> None:
    memory = init()

    async def main() -> Any:
        async with Client(lowlevel(ValueError("tool broke"))) as client:
            return await client.call_tool("t", {"x": 1})

    with pytest.raises(Exception):  # in process, the handler's error comes back grouped
        asyncio.run(main())
    (tx,) = roots(memory)
    assert tx["transaction"] == "tools/call t"
    assert tx["contexts"]["trace"]["status"] == "internal_error"
    (event,) = memory.events
    value = event["exception"]["values"][-1]
    assert (value["type"], value["value"]) == ("ValueError", "tool broke")
    assert value["mechanism"] == {"type": "mcp", "handled": False}


def test_spans_and_error_reach_the_server(rx: Receiver) -> None:
    tripwire.init(
        dsn=rx.dsn(),
        traces_sample_rate=1.0,
        default_integrations=False,
        integrations=[MCPIntegration()],
    )

    async def main() -> None:
        async with Client(demo()) as client:
            await client.call_tool("add", {"a": 1, "b": 2})
        async with Client(lowlevel(KeyError("k"))) as client:
            await client.call_tool("t", {})

    with pytest.raises(Exception):  # in process, the handler's error comes back grouped
        asyncio.run(main())
    tripwire.flush()
    rx.wait_for(3)
    (event,) = rx.events()
    assert event["exception"]["values"][-1]["mechanism"] == {"type": "mcp", "handled": False}
    txs = [item.payload.json for item in rx.items("transaction")]
    assert sorted((tx["transaction"], tx["contexts"]["trace"].get("status")) for tx in txs) == [
        ("tools/call add", None),
        ("tools/call t", "internal_error"),
    ]


def test_falls_through_without_the_integration() -> None:
    memory = init(integrations=[])
    asyncio.run(drive(demo()))
    assert roots(memory) == []


class _Uvicorn:
    """An ASGI app served on 127.0.0.1 in a thread; `url` once it listens."""

    def __init__(self, app: Any) -> None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="mcp-http", daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            self.thread.join(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/mcp"

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


def test_streamable_http_nests_under_the_request() -> None:
    memory = init(integrations=[MCPIntegration(), StarletteIntegration()])

    async def main(url: str) -> Any:
        # The handshake era's sessions (the modern protocol has none to report).
        async with Client(url, mode="legacy") as client:
            return await client.call_tool("add", {"a": 2, "b": 3})

    # Built after init: the server picks up the middleware when it is constructed.
    with _Uvicorn(demo().streamable_http_app()) as url:
        assert asyncio.run(main(url)).structured_content == {"result": 5}
    tripwire.flush()
    spans = [
        (tx, span)
        for tx in memory.transactions
        for span in tx["spans"]
        if span["op"] == "mcp.server"
    ]
    ((tx, span),) = spans
    assert tx["contexts"]["trace"]["op"] == "http.server"
    assert span["description"] == "tools/call add"
    assert span["data"]["mcp.transport"] == "http"
    assert span["data"]["network.transport"] == "tcp"
    assert span["data"]["mcp.session.id"]


def test_import_tripwire_does_not_import_mcp() -> None:
    code = (
        "import sys, tripwire\n"
        "from tripwire.integrations.mcp import MCPIntegration\n"
        "tripwire.init(dsn='http://k@example.com/1', integrations=[MCPIntegration()])\n"
        "assert 'mcp' not in sys.modules\n"
        "from mcp.server.lowlevel import Server\n"
        "assert getattr(Server.__init__, '__tripwire_mcp__', False)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr


SCRIPT = """
import asyncio, logging, warnings
warnings.simplefilter("ignore")
logging.disable(logging.CRITICAL)
import mcp_types as types
from mcp import Client
from mcp.server.lowlevel import Server
from mcp.server.mcpserver import MCPServer
from sentry_sdk.integrations.mcp import MCPIntegration

sentry_sdk.init(
    dsn="https://k@o1.ingest.sentry.io/1", transport=KEEP, traces_sample_rate=1.0,
    default_integrations=False, integrations=[MCPIntegration()], release="r",
    send_default_pii=True,
)
app = MCPServer("demo")

@app.tool()
def add(a: int, b: int) -> int:
    return a + b

@app.tool()
def info(name: str, tags: list[str]) -> dict:
    return {"name": name, "tags": tags}

@app.tool()
def boom(x: str) -> str:
    raise ValueError("boom")

@app.prompt()
def greet(who: str) -> str:
    return "Hello " + who

@app.prompt()
def chat(topic: str) -> list:
    return ["one " + topic, "two"]

@app.resource("data://config")
def config() -> str:
    return "cfg"

@app.resource("file://{name}")
def file(name: str) -> str:
    return name

async def failing(ctx, params):
    raise KeyError("nope")

low = Server("low", on_call_tool=failing)

async def main():
    async with Client(app) as c:
        await c.call_tool("add", {"a": 1, "b": 2})
        await c.call_tool("info", {"name": "n", "tags": ["a", "b"]})
        await c.call_tool("boom", {"x": "y"})
        await c.get_prompt("greet", {"who": "Bob"})
        await c.get_prompt("chat", {"topic": "t"})
        await c.read_resource("data://config")
        await c.read_resource("file://readme")
    with sentry_sdk.start_transaction(name="outer"):
        async with Client(app) as c:
            await c.call_tool("add", {"a": 3, "b": 4})
    async with Client(low) as c:
        try:
            await c.call_tool("t", {})
        except Exception:
            pass

asyncio.run(main())
finish()
"""


def shape(found: dict[str, Any]) -> dict[str, Any]:
    def view(span: dict[str, Any]) -> dict[str, Any]:
        return {
            "op": span.get("op"),
            "description": span.get("description"),
            "origin": span.get("origin"),
            "status": span.get("status"),
            "data": {k: v for k, v in span.get("data", {}).items() if not k.startswith("thread.")},
        }

    txs = of_type(found, "transaction")
    return {
        "roots": [(tx["transaction"], view(tx["contexts"]["trace"])) for tx in txs],
        "spans": [[view(s) for s in tx["spans"]] for tx in txs],
        "events": [
            (e["exception"]["values"][-1]["type"], e["exception"]["values"][-1]["mechanism"])
            for e in of_type(found, "event")
        ],
    }


def test_same_as_sentry_sdk(tmp_path: Path) -> None:
    sentry, ours = run_both(SCRIPT, tmp_path, preload=True)
    expected, found = shape(sentry), shape(ours)
    assert found == expected
    assert len(found["roots"]) == 9
    assert found["events"] == [("KeyError", {"type": "mcp", "handled": False})]
    info = found["roots"][1][1]["data"]["mcp.tool.result.content"]
    assert json.loads(info) == {"name": "n", "tags": ["a", "b"]}  # the text block, joined
