"""SanicIntegration: a real `Sanic` application served on 127.0.0.1.

Each test starts its app with Sanic's own low-level server (`create_server` on a
loopback socket, its startup and server events run) inside the event loop it runs,
sends raw HTTP/1.1 requests (`_raw_http.fetch`) and stops the server when the block
ends. The concurrency test reads what reached a real loopback receiver; the
differential test runs one app on sentry_sdk 2.75 and on tripwire, each in its own
interpreter (both patch Sanic for the process).
"""

from __future__ import annotations

import asyncio
import itertools
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
from tripwire.integrations.sanic import SanicIntegration
from tripwire.testing import MemoryTransport, reset

if TYPE_CHECKING:
    from sanic import Sanic, response
    from sanic.exceptions import Forbidden


@pytest.fixture(autouse=True, scope="module")
def _sanic() -> None:
    """Sanic is imported when the module's tests start, not at collection (every xdist
    worker collects every module; tests/_lazy.py)."""
    global Sanic, response, Forbidden
    from sanic import Sanic, response
    from sanic.exceptions import Forbidden


DSN = "http://key@example.com/1"
TRACE_ID = "771a43a4192642f0b136d5159a501700"
PARENT = "1234567890abcdef"
_app_numbers = itertools.count()  # Sanic refuses two applications of one name


def init(integration: SanicIntegration | None = None, **options: Any) -> MemoryTransport:
    tripwire.get_client().close()  # a client replaced without closing keeps its threads
    memory = MemoryTransport()
    options.setdefault("dsn", DSN)
    tripwire.init(
        transport=memory,
        integrations=[integration or SanicIntegration()],
        default_integrations=False,
        release="r1",
        **options,
    )
    return memory


def make_app() -> Any:  # Sanic[...]: its generics do not matter here
    app = Sanic(f"shop{next(_app_numbers)}")
    # Sanic rewrites its own HTTP code at startup, once per process: not for a second app.
    app.config.TOUCHUP = False

    @app.get("/boom/<ident:int>")
    async def boom(request: Any, ident: int) -> Any:
        tripwire.set_tag("route", "boom")
        raise ZeroDivisionError(f"no {ident}")

    @app.post("/echo")
    async def echo(request: Any) -> Any:
        tripwire.capture_message("echo")
        return response.text(str(len(request.body)))

    @app.get("/forbidden")
    async def forbidden(request: Any) -> Any:
        raise Forbidden("no")

    return app


def serve(app: Any, scenario: Callable[[int], Awaitable[Any]]) -> Any:
    """Run `scenario(port)` against `app` on 127.0.0.1; the server stops afterwards."""

    async def main() -> Any:
        sock = bound_socket()
        port = sock.getsockname()[1]
        server: Any = await app.create_server(
            sock=sock, return_asyncio_server=True, access_log=False
        )
        await server.startup()
        await server.before_start()
        await server.start_serving()
        try:
            return await scenario(port)
        finally:
            await server.before_stop()
            await server.close()
            await server.after_stop()

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
    headers = {"Authorization": "Bearer secret", "Cookie": "session=s", "X-Custom": "kept"}
    assert serve(make_app(), requests(("GET", "/boom/7?q=1", headers))) == [500]

    (event,) = flushed(memory).events
    (transaction,) = memory.transactions
    (exception,) = event["exception"]["values"]
    assert (exception["type"], exception["value"]) == ("ZeroDivisionError", "no 7")
    assert exception["mechanism"] == {"type": "sanic", "handled": False}
    assert exception["stacktrace"]["frames"][-1]["function"] == "boom"
    assert event["transaction"] == "boom"  # the route's name, without the app's
    assert event["transaction_info"] == {"source": "component"}
    assert event["tags"] == {"route": "boom"}
    request = event["request"]
    port = request["headers"]["host"].split(":")[1]
    assert request == {
        "url": f"http://127.0.0.1:{port}/boom/7",
        "query_string": "q=1",
        "method": "GET",
        "env": {"REMOTE_ADDR": ""},  # Sanic knows the client only behind a proxy
        "headers": {
            "host": f"127.0.0.1:{port}",
            "connection": "close",
            "authorization": "[Filtered]",
            "cookie": "[Filtered]",
            "x-custom": "kept",
        },
    }
    trace = transaction["contexts"]["trace"]
    assert (trace["op"], trace["origin"], trace["status"]) == (
        "http.server",
        "auto.http.sanic",
        "internal_error",
    )
    assert trace["data"]["http.response.status_code"] == 500
    assert trace["span_id"] == event["contexts"]["trace"]["span_id"]
    assert transaction["transaction"] == "boom"
    assert transaction["tags"]["route"] == "boom"
    assert transaction["request"] == request


def test_body_and_cookies_with_pii() -> None:
    memory = init(send_default_pii=True, max_request_body_size="small")
    form = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": "a=b"}
    assert (
        serve(
            make_app(),
            requests(
                ("POST", "/echo?x=2", form, b"x=1&x=2&y=3"),
                ("POST", "/echo", {"Content-Type": "application/json"}, b'{"k": [1, 2]}'),
                ("POST", "/echo", {"Content-Type": "text/plain"}, b"raw"),
                ("POST", "/echo", {}, b'{"k": "' + b"v" * 1000 + b'"}'),
            ),
        )
        == [200] * 4
    )
    first, parsed, raw, large = flushed(memory).events
    assert first["request"]["data"] == {"x": ["1", "2"], "y": ["3"]}
    assert first["request"]["cookies"] == {"a": ["b"]}  # Sanic's parameters: lists
    assert first["request"]["query_string"] == "x=2"
    assert first["transaction"] == "echo"
    assert parsed["request"]["data"] == {"k": [1, 2]}
    assert raw["request"]["data"] == ""
    assert raw["_meta"]["request"]["data"] == {"": {"rem": [["!raw", "x"]]}}
    assert large["request"]["data"] == ""
    assert large["_meta"]["request"]["data"] == {"": {"rem": [["!config", "x"]]}}


def test_sanic_exceptions_are_not_reported_and_404s_not_sent() -> None:
    memory = init(traces_sample_rate=1.0)
    calls = (("GET", "/forbidden"), ("GET", "/missing"))
    assert serve(make_app(), requests(*calls)) == [403, 404]
    assert flushed(memory).events == []
    (forbidden,) = memory.transactions  # the 404 is not sampled (unsampled_statuses)
    assert forbidden["transaction"] == "forbidden"
    assert forbidden["contexts"]["trace"]["status"] == "permission_denied"

    memory = init(SanicIntegration(unsampled_statuses=None), traces_sample_rate=1.0)
    assert serve(make_app(), requests(*calls)) == [403, 404]
    names = [(t["transaction"], t["transaction_info"]) for t in flushed(memory).transactions]
    assert names == [("forbidden", {"source": "component"}), ("/missing", {"source": "url"})]


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
        integrations=[SanicIntegration()],
        default_integrations=False,
    )
    count = 4
    inside: list[str] = []
    all_inside = asyncio.Event()
    app = make_app()

    @app.get("/p/<name>")  # type: ignore[untyped-decorator]
    async def personal(request: Any, name: str) -> Any:
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
        assert event["transaction"] == "personal"
    transactions = [json.loads(i.get_bytes()) for i in rx.items("transaction")]
    assert sorted(t["tags"]["who"] for t in transactions) == [f"u{i}" for i in range(count)]
    assert len({t["contexts"]["trace"]["trace_id"] for t in transactions}) == count
    assert tripwire.get_isolation_scope()._tags == {}  # nothing leaked out of the requests


def test_keep_alive_requests_do_not_share_scopes() -> None:
    # Sanic serves one connection's requests in one task: each must restore the scopes.
    memory = init(traces_sample_rate=1.0)
    app = make_app()

    @app.get("/n/<n>")  # type: ignore[untyped-decorator]
    async def numbered(request: Any, n: str) -> Any:
        tripwire.set_tag(f"n{n}", n)
        tripwire.add_breadcrumb(message=f"crumb {n}")
        if n == "2":
            raise RuntimeError(n)
        return response.text(n)

    async def scenario(port: int) -> list[bytes]:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        heads = []
        try:
            for n in ("1", "2", "3"):
                writer.write(f"GET /n/{n} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
                head = await reader.readuntil(b"\r\n\r\n")
                length = re.search(rb"(?i)content-length: *(\d+)", head)
                assert length is not None
                await reader.readexactly(int(length.group(1)))
                heads.append(head.split(b"\r\n", 1)[0])
        finally:
            writer.close()
        return heads

    ok, failed = b"HTTP/1.1 200 OK", b"HTTP/1.1 500 Internal Server Error"
    assert serve(app, scenario) == [ok, failed, ok]
    (event,) = flushed(memory).events
    assert event["tags"] == {"n2": "2"}
    assert [c["message"] for c in event["breadcrumbs"]["values"]] == ["crumb 2"]
    tags = [{k: v for k, v in t["tags"].items() if k.startswith("n")} for t in memory.transactions]
    assert tags == [{"n1": "1"}, {"n2": "2"}, {"n3": "3"}]


def test_inactive_without_the_integration_and_reset_undoes_the_patches() -> None:
    memory = init()
    patched = Sanic._startup
    tripwire.get_client().close()
    other = MemoryTransport()
    tripwire.init(dsn=DSN, transport=other, default_integrations=False)
    assert serve(make_app(), requests(("GET", "/boom/1"))) == [500]
    assert flushed(other).events == [] and memory.events == []
    reset()
    assert Sanic._startup is not patched


# -- the same as sentry_sdk --------------------------------------------------------------

_SCRIPT = """
import asyncio
import warnings

from sanic import Sanic, response
from sanic.exceptions import Forbidden
from sentry_sdk.integrations.sanic import SanicIntegration

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
    integrations=[SanicIntegration()],
)

app = Sanic("shop")


@app.get("/boom/<ident:int>")
async def boom(request, ident):
    sentry_sdk.set_tag("route", "boom")
    sentry_sdk.add_breadcrumb(message="before", category="test")
    raise ValueError(f"no {ident}")


@app.post("/echo")
async def echo(request):
    sentry_sdk.capture_message("echo")
    return response.text(str(len(request.body)))


@app.get("/forbidden")
async def forbidden(request):
    raise Forbidden("no")


async def main():
    sock = bound_socket()
    port = sock.getsockname()[1]
    NOTES.append(port)
    server = await app.create_server(sock=sock, return_asyncio_server=True, access_log=False)
    await server.startup()
    await server.before_start()
    await server.start_serving()
    incoming = {
        "sentry-trace": "771a43a4192642f0b136d5159a501700-1234567890abcdef-1",
        "baggage": "sentry-trace_id=771a43a4192642f0b136d5159a501700,sentry-sample_rate=1.0",
    }
    form = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": "a=b"}
    for call in (
        ("GET", "/boom/7?q=1", {"Authorization": "secret", "Cookie": "a=b"}),
        ("POST", "/echo?x=2", dict(incoming, **{"Content-Type": "application/json"}), b'{"a": 1}'),
        ("POST", "/echo", form, b"a=1&a=2"),
        ("GET", "/forbidden"),
        ("GET", "/missing"),
    ):
        NOTES.append((await fetch(port, *call))[0])
    await server.before_stop()
    await server.close()
    await server.after_stop()


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
            continue  # only events and transactions are compared
        payload = normalise(item["payload"], ids, drop=drop)
        for value in payload.get("exception", {}).get("values", ()):
            frames = value["stacktrace"]["frames"]
            value["stacktrace"]["frames"] = [(f["function"], f["in_app"]) for f in frames]
        out.append(payload)
    return out


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
        "transaction",  # 403; the 404's is not sampled
    ]
    assert found == expected
