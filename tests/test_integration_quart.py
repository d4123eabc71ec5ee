"""QuartIntegration: a real `Quart` application served by uvicorn on 127.0.0.1.

Each test serves its app with uvicorn on a loopback socket (listening before uvicorn
starts, so requests queue instead of racing its start-up) inside the event loop it
runs, sends raw HTTP/1.1 requests (`_raw_http.fetch`) and stops the server when the
block ends. The concurrency test reads what reached a real loopback receiver; the
differential test runs one app on sentry_sdk 2.75 and on tripwire, each in its own
interpreter (both patch Quart for the process).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import pytest
from _raw_http import bound_socket, fetch
from _receiver import Receiver
from _sentry_side import Ids, normalise
from _side_by_side import run_both

import tripwire
from tripwire.integrations.quart import QuartIntegration
from tripwire.testing import MemoryTransport, reset

if TYPE_CHECKING:
    import quart
    import uvicorn


@pytest.fixture(autouse=True, scope="module")
def _quart() -> None:
    """Quart is imported when the module's tests start, not at collection (every xdist
    worker collects every module; tests/_lazy.py)."""
    global quart, uvicorn
    import quart
    import uvicorn


DSN = "http://key@example.com/1"
TRACE_ID = "771a43a4192642f0b136d5159a501700"
PARENT = "1234567890abcdef"


def init(integration: QuartIntegration | None = None, **options: Any) -> MemoryTransport:
    tripwire.get_client().close()  # a client replaced without closing keeps its threads
    memory = MemoryTransport()
    options.setdefault("dsn", DSN)
    tripwire.init(
        transport=memory,
        integrations=[integration or QuartIntegration()],
        default_integrations=False,
        release="r1",
        **options,
    )
    return memory


def make_app() -> quart.Quart:
    app = quart.Quart("shop")

    @app.get("/boom/<int:ident>")
    async def boom(ident: int) -> str:
        tripwire.set_tag("route", "boom")
        raise ZeroDivisionError(f"no {ident}")

    @app.post("/echo")
    async def echo() -> str:
        body = await quart.request.get_data()
        tripwire.capture_message("echo")
        return str(len(body))

    @app.get("/sync")
    def sync_view() -> str:  # Quart runs it in a thread
        tripwire.capture_message("sync")
        return "ok"

    @app.get("/forbidden")
    async def forbidden() -> str:
        quart.abort(403)

    return app


def serve(app: quart.Quart, scenario: Callable[[int], Awaitable[Any]]) -> Any:
    """Run `scenario(port)` against `app` on 127.0.0.1; the server stops afterwards."""

    async def main() -> Any:
        sock = bound_socket()
        sock.listen(16)  # connections queue until uvicorn accepts them
        config = uvicorn.Config(app, lifespan="off", log_config=None, access_log=False)
        server = uvicorn.Server(config)
        task = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            return await scenario(sock.getsockname()[1])
        finally:
            server.should_exit = True
            await task
            sock.close()

    return asyncio.run(main())


def requests(*calls: tuple[Any, ...]) -> Callable[[int], Awaitable[list[int]]]:
    """One request after another: (method, path[, headers[, body]]) each; their statuses."""

    async def scenario(port: int) -> list[int]:
        return [(await fetch(port, *call))[0] for call in calls]

    return scenario


def flushed(memory: MemoryTransport) -> MemoryTransport:
    tripwire.flush()
    return memory


# -- events and transactions ----------------------------------------------------------------


def test_error_event_and_transaction() -> None:
    memory = init(traces_sample_rate=1.0)
    headers = {"Authorization": "Bearer secret", "X-Custom": "kept"}
    assert serve(make_app(), requests(("GET", "/boom/7?q=1", headers))) == [500]

    (event,) = flushed(memory).events
    (transaction,) = memory.transactions
    (exception,) = event["exception"]["values"]
    assert (exception["type"], exception["value"]) == ("ZeroDivisionError", "no 7")
    assert exception["mechanism"] == {"type": "quart", "handled": False}
    assert exception["stacktrace"]["frames"][-1]["function"] == "boom"
    assert event["transaction"] == "boom"
    assert event["transaction_info"] == {"source": "component"}
    assert event["tags"] == {"route": "boom"}
    request = event["request"]
    port = request["headers"]["Host"].split(":")[1]
    assert request == {
        "url": f"http://127.0.0.1:{port}/boom/7?q=1",  # Quart's url keeps the query
        "query_string": "q=1",
        "method": "GET",
        "headers": {
            "Host": f"127.0.0.1:{port}",
            "Connection": "close",
            "Authorization": "[Filtered]",
            "X-Custom": "kept",
            "Remote-Addr": "[Filtered]",  # Quart's own header; the scrubber's
        },
    }
    trace = transaction["contexts"]["trace"]
    assert (trace["op"], trace["origin"], trace["status"]) == (
        "http.server",
        "auto.http.quart",
        "internal_error",
    )
    assert trace["span_id"] == event["contexts"]["trace"]["span_id"]
    assert transaction["transaction"] == "boom"
    assert transaction["tags"] == {"route": "boom", "asgi.type": "http", "http.status_code": "500"}


def test_url_style_client_address_and_sync_views() -> None:
    memory = init(QuartIntegration(transaction_style="url"), send_default_pii=True)
    calls: tuple[tuple[Any, ...], ...] = (
        ("GET", "/boom/3"),
        ("GET", "/sync"),
        ("POST", "/echo", {}, b"abc"),
    )
    assert serve(make_app(), requests(*calls)) == [500, 200, 200]
    boom, sync, echo = flushed(memory).events
    assert (boom["transaction"], boom["transaction_info"]) == (
        "/boom/<int:ident>",
        {"source": "route"},
    )
    assert boom["request"]["env"] == {"REMOTE_ADDR": "127.0.0.1"}
    assert sync["message"] == "sync" and sync["transaction"] == "/sync"
    assert echo["request"]["method"] == "POST" and "data" not in echo["request"]


def test_http_errors_and_unknown_paths_are_not_reported() -> None:
    memory = init(traces_sample_rate=1.0)
    calls = (("GET", "/forbidden"), ("GET", "/missing"), ("GET", "/sync"))
    assert serve(make_app(), requests(*calls)) == [403, 404, 200]
    (sync_event,) = flushed(memory).events  # only the message
    assert sync_event["message"] == "sync"
    forbidden, missing, sync = memory.transactions
    assert (forbidden["transaction"], forbidden["contexts"]["trace"]["status"]) == (
        "forbidden",
        "permission_denied",
    )
    port = missing["request"]["headers"]["Host"].split(":")[1]
    assert missing["transaction"] == f"http://127.0.0.1:{port}/missing"
    assert missing["transaction_info"] == {"source": "url"}
    assert missing["contexts"]["trace"]["status"] == "not_found"
    # The synchronous view ran in Quart's executor: that thread is the transaction's.
    assert sync["contexts"]["trace"]["data"]["thread.name"] != "MainThread"


def test_incoming_trace_without_tracing_is_on_error_events() -> None:
    memory = init()
    headers = {"sentry-trace": f"{TRACE_ID}-{PARENT}-1", "baggage": f"sentry-trace_id={TRACE_ID}"}
    assert serve(make_app(), requests(("GET", "/boom/1", headers))) == [500]
    (event,) = flushed(memory).events
    assert memory.transactions == []
    trace = event["contexts"]["trace"]
    assert (trace["trace_id"], trace["parent_span_id"]) == (TRACE_ID, PARENT)
    assert event["transaction"] == "boom"


# -- isolation ---------------------------------------------------------------------------


def test_concurrent_requests_are_isolated(rx: Receiver) -> None:
    tripwire.init(
        dsn=rx.dsn(),
        release="r1",
        traces_sample_rate=1.0,
        integrations=[QuartIntegration()],
        default_integrations=False,
    )
    count = 4
    inside: list[str] = []
    all_inside = asyncio.Event()
    app = make_app()

    @app.get("/p/<name>")
    async def personal(name: str) -> str:
        tripwire.set_tag("who", name)
        tripwire.set_user({"id": name})
        tripwire.add_breadcrumb(message=f"crumb of {name}")
        inside.append(name)
        if len(inside) == count:
            all_inside.set()
        await all_inside.wait()  # every request has set its data before any reports
        raise RuntimeError(name)

    async def scenario(port: int) -> list[int]:
        calls = (fetch(port, "GET", f"/p/u{i}") for i in range(count))
        return [status for status, _ in await asyncio.gather(*calls)]

    assert serve(app, scenario) == [500] * count
    tripwire.flush()
    events = rx.events()
    assert len(events) == count
    for event in events:
        name = event["exception"]["values"][0]["value"]
        assert event["tags"] == {"who": name}
        assert event["user"] == {"id": name}
        assert [c["message"] for c in event["breadcrumbs"]["values"]] == [f"crumb of {name}"]
        assert event["request"]["url"].endswith(f"/p/{name}")
    transactions = [json.loads(i.get_bytes()) for i in rx.items("transaction")]
    assert sorted(t["tags"]["who"] for t in transactions) == [f"u{i}" for i in range(count)]
    assert len({t["contexts"]["trace"]["trace_id"] for t in transactions}) == count
    assert tripwire.get_isolation_scope()._tags == {}  # nothing leaked out of the requests


def test_inactive_without_the_integration_and_reset_undoes_the_patches() -> None:
    memory = init()
    patched = quart.Quart.__call__
    tripwire.get_client().close()
    other = MemoryTransport()
    tripwire.init(dsn=DSN, transport=other, default_integrations=False)
    assert serve(make_app(), requests(("GET", "/boom/1"))) == [500]
    assert flushed(other).events == [] and memory.events == []
    reset()
    assert quart.Quart.__call__ is not patched
    assert not quart.signals.got_request_exception.receivers


# -- the same as sentry_sdk --------------------------------------------------------------

_SCRIPT = """
import asyncio
import warnings

import uvicorn
from quart import Quart, abort, request
from sentry_sdk.integrations.quart import QuartIntegration

sys.path.insert(0, TESTS)
from _raw_http import bound_socket, fetch

warnings.simplefilter("ignore", DeprecationWarning)  # send_default_pii
sentry_sdk.init(
    dsn="https://key@o1.ingest.sentry.io/1",
    transport=KEEP,
    release="r1",
    traces_sample_rate=1.0,
    send_default_pii=True,
    default_integrations=False,
    integrations=[QuartIntegration()],
)

app = Quart("shop")


@app.get("/boom/<int:ident>")
async def boom(ident):
    sentry_sdk.set_tag("route", "boom")
    sentry_sdk.add_breadcrumb(message="before", category="test")
    raise ValueError(f"no {ident}")


@app.post("/echo")
async def echo():
    body = await request.get_data()
    sentry_sdk.capture_message("echo")
    return str(len(body))


@app.get("/sync")
def sync_view():
    sentry_sdk.capture_message("sync")
    return "ok"


@app.get("/forbidden")
async def forbidden():
    abort(403)


async def main():
    sock = bound_socket()
    sock.listen(16)
    port = sock.getsockname()[1]
    NOTES.append(port)
    config = uvicorn.Config(app, lifespan="off", log_config=None, access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    incoming = {
        "sentry-trace": "771a43a4192642f0b136d5159a501700-1234567890abcdef-1",
        "baggage": "sentry-trace_id=771a43a4192642f0b136d5159a501700,sentry-sample_rate=1.0",
    }
    for call in (
        ("GET", "/boom/7?q=1", {"Authorization": "secret", "Cookie": "a=b"}),
        ("POST", "/echo?x=2", dict(incoming, **{"Content-Type": "application/json"}), b'{"a": 1}'),
        ("GET", "/sync"),
        ("GET", "/forbidden"),
        ("GET", "/missing"),
    ):
        NOTES.append((await fetch(port, *call))[0])
    server.should_exit = True
    await task
    sock.close()


asyncio.run(main())
finish()
"""


def _shape(found: dict[str, Any]) -> list[Any]:
    port = found["notes"][0]
    text = json.dumps(found["items"]).replace(f":{port}", ":<port>")
    text = re.sub(r" at 0x[0-9a-f]+", " at <addr>", text)
    ids = Ids()
    drop = frozenset({"event_id", "sdk", "server_name", "platform", "thread.id", "lineno"})
    out = []
    for item in json.loads(text):
        if item["type"] not in ("event", "transaction"):
            continue  # sessions are compared apart
        payload = normalise(item["payload"], ids, drop=drop)
        # tripwire's event scrubber also takes Quart's "Remote-Addr" header for an address
        # (sentry_sdk's matches "remote_addr" only): compared without it.
        payload.get("request", {}).get("headers", {}).pop("Remote-Addr", None)
        meta_headers = payload.get("_meta", {}).get("request", {}).get("headers", {})
        meta_headers.pop("Remote-Addr", None)
        if payload.get("_meta") == {"request": {"headers": {}}}:
            del payload["_meta"]
        for value in payload.get("exception", {}).get("values", ()):
            frames = value["stacktrace"]["frames"]
            value["stacktrace"]["frames"] = [(f["function"], f["in_app"]) for f in frames]
        out.append(payload)
    return out


def _sessions(found: dict[str, Any]) -> list[Any]:
    return [
        {k: v for k, v in bucket.items() if k != "started"}
        for item in found["items"]
        if item["type"] == "sessions"
        for bucket in item["payload"]["aggregates"]
    ]


def test_same_as_sentry_sdk(tmp_path: Path) -> None:
    script = _SCRIPT.replace("TESTS", repr(str(Path(__file__).parent)))
    sentry, ours = run_both(script, tmp_path)
    assert sentry["notes"][1:] == ours["notes"][1:] == [500, 200, 200, 403, 404]
    expected, found = _shape(sentry), _shape(ours)
    assert [p.get("type", "event") for p in found] == [
        "event",
        "transaction",
        "event",
        "transaction",
        "event",
        "transaction",
        "transaction",
        "transaction",
    ]
    assert found == expected
    assert _sessions(ours) == _sessions(sentry) == [{"exited": 4, "crashed": 1}]
