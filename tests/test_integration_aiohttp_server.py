"""The aiohttp integration, server side: a real `aiohttp.web` app on 127.0.0.1.

Each test starts aiohttp's own `TestServer` on loopback inside the event loop it runs,
drives it with a `TestClient` (a real `ClientSession` over a socket) and stops both
when the block ends. The differential test runs one app on sentry_sdk 2.75 and on
tripwire, each in its own interpreter (both patch aiohttp for the whole process).
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import warnings
from collections.abc import Awaitable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import pytest
from _sentry_side import Ids, normalise
from _side_by_side import run_both

import tripwire
from tripwire.integrations import DidNotEnable
from tripwire.integrations.aiohttp import BODY_NOT_READ_MESSAGE, AioHttpIntegration
from tripwire.testing import MemoryTransport, reset

if TYPE_CHECKING:
    import aiohttp
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer


@pytest.fixture(autouse=True, scope="module")
def _aiohttp() -> None:
    """aiohttp is imported when the module's tests start, not at collection (every xdist
    worker collects every module; tests/_lazy.py)."""
    global aiohttp, web, TestClient, TestServer
    import aiohttp
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer


DSN = "http://key@example.com/1"
TRACE_ID = "771a43a4192642f0b136d5159a501700"
PARENT = "1234567890abcdef"


def init(integration: AioHttpIntegration | None = None, **options: Any) -> MemoryTransport:
    tripwire.get_client().close()  # a client replaced without closing keeps its threads
    memory = MemoryTransport()
    options.setdefault("dsn", DSN)
    options.setdefault("default_integrations", False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # send_default_pii
        tripwire.init(
            transport=memory,
            integrations=[integration or AioHttpIntegration()],
            release="r1",
            **options,
        )
    return memory


# -- the application ----------------------------------------------------------------


async def boom(request: web.Request) -> web.Response:
    tripwire.set_tag("route", "boom")
    raise ZeroDivisionError("division by zero")


async def echo(request: web.Request) -> web.Response:
    body = await request.read()
    return web.Response(text=f"{len(body)}")


async def unread(request: web.Request) -> web.Response:
    tripwire.capture_message("before reading")  # the body is there, not read yet
    return web.Response(text="ok")


async def server_error(request: web.Request) -> web.Response:
    raise web.HTTPInternalServerError()


async def forbidden(request: web.Request) -> web.Response:
    raise web.HTTPForbidden()


async def handled(request: web.Request) -> web.Response:
    try:
        raise KeyError("caught")
    except KeyError:
        tripwire.capture_exception()
    return web.Response(text="ok")


async def cancelled(request: web.Request) -> web.Response:
    raise asyncio.CancelledError()


def make_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/boom/{id}", boom)
    app.router.add_post("/echo", echo)
    app.router.add_post("/unread", unread)
    app.router.add_get("/ise", server_error)
    app.router.add_get("/forbidden", forbidden)
    app.router.add_get("/handled", handled)
    app.router.add_get("/cancelled", cancelled)
    return app


def serve(app: web.Application, scenario: Callable[[TestClient[Any, Any]], Awaitable[Any]]) -> Any:
    """Run `scenario(client)` against `app` on 127.0.0.1; the server stops afterwards."""

    async def main() -> Any:
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            return await scenario(client)

    return asyncio.run(main())


def get(*paths: str, **kwargs: Any) -> Callable[[TestClient[Any, Any]], Awaitable[list[int]]]:
    async def scenario(client: TestClient[Any, Any]) -> list[int]:
        statuses = []
        for path in paths:
            async with client.get(path, **kwargs) as response:
                await response.read()
                statuses.append(response.status)
        return statuses

    return scenario


def post(path: str, body: bytes) -> Callable[[TestClient[Any, Any]], Awaitable[int]]:
    async def scenario(client: TestClient[Any, Any]) -> int:
        async with client.post(path, data=body) as response:
            await response.read()
            return response.status

    return scenario


def flushed(memory: MemoryTransport) -> MemoryTransport:
    tripwire.flush()
    return memory


# -- events and transactions ----------------------------------------------------------


def test_unhandled_error_event_and_transaction() -> None:
    memory = init(traces_sample_rate=1.0)
    headers = {"Authorization": "Bearer secret", "Cookie": "session=s", "X-Custom": "kept"}
    assert serve(make_app(), get("/boom/7?q=1", headers=headers)) == [500]

    (event,) = flushed(memory).events
    (transaction,) = memory.transactions
    (exception,) = event["exception"]["values"]
    assert exception["type"] == "ZeroDivisionError"
    assert exception["mechanism"] == {"type": "aiohttp", "handled": False}
    assert exception["stacktrace"]["frames"][-1]["function"] == "boom"
    assert event["transaction"] == "test_integration_aiohttp_server.boom"
    assert event["transaction_info"] == {"source": "component"}
    assert event["tags"] == {"route": "boom"}
    request = event["request"]
    port = request["url"].split(":")[2].split("/")[0]
    assert request == {
        "url": f"http://127.0.0.1:{port}/boom/7",
        "query_string": "q=1",
        "method": "GET",
        "env": {"REMOTE_ADDR": "127.0.0.1"},
        "headers": {
            "Host": f"127.0.0.1:{port}",
            "Authorization": "[Filtered]",
            "Cookie": "[Filtered]",
            "X-Custom": "kept",
            "Accept": "*/*",
            "Accept-Encoding": request["headers"]["Accept-Encoding"],
            "User-Agent": request["headers"]["User-Agent"],
        },
        "data": None,
    }
    # Removed by the integration, then marked filtered by the event scrubber (as sentry_sdk).
    filtered = {"": {"rem": [["!config", "s"]]}}
    assert event["_meta"]["request"]["headers"] == {"Authorization": filtered, "Cookie": filtered}

    trace = transaction["contexts"]["trace"]
    assert (trace["op"], trace["origin"], trace["status"]) == (
        "http.server",
        "auto.http.aiohttp",
        "internal_error",
    )
    assert trace["trace_id"] == event["contexts"]["trace"]["trace_id"]
    assert trace["span_id"] == event["contexts"]["trace"]["span_id"]
    assert transaction["transaction"] == "test_integration_aiohttp_server.boom"
    assert transaction["transaction_info"] == {"source": "component"}
    assert transaction["tags"] == {"route": "boom"}
    assert transaction["request"] == request


def test_ok_response_status_and_request_body() -> None:
    memory = init(traces_sample_rate=1.0, max_request_body_size="small")
    assert serve(make_app(), post("/echo", b'{"a": 1}')) == 200
    assert serve(make_app(), post("/echo", b"x" * 1001)) == 200
    assert serve(make_app(), post("/unread", b"abc")) == 200

    small, large, unread_tx = flushed(memory).transactions
    trace = small["contexts"]["trace"]
    assert trace["status"] == "ok"
    assert trace["data"]["http.response.status_code"] == 200
    assert small["contexts"]["response"] == {"status_code": 200}
    assert small["tags"] == {"http.status_code": "200"}
    assert small["transaction"] == "test_integration_aiohttp_server.echo"
    assert small["request"]["data"] == '{"a": 1}'
    assert small["request"]["query_string"] == ""
    assert large["request"]["data"] == "[Exceeds maximum size]"
    assert large["_meta"]["request"]["data"] == {"": {"rem": [["!config", "s"]]}}
    (message,) = memory.events
    assert message["request"]["data"] == BODY_NOT_READ_MESSAGE
    assert unread_tx["request"]["data"] == BODY_NOT_READ_MESSAGE


def test_personal_data_rules() -> None:
    headers = {"X-Forwarded-For": "203.0.113.9", "Cookie": "session=s"}
    memory = init()
    serve(make_app(), get("/boom/1?token=t", headers=headers))
    (event,) = flushed(memory).events
    assert event["request"]["headers"]["X-Forwarded-For"] != "203.0.113.9"
    assert event["request"]["headers"]["Cookie"] == "[Filtered]"
    assert event["_meta"]["request"]["headers"]["X-Forwarded-For"] == {
        "": {"rem": [["!config", "s"]]}
    }
    # As sentry_sdk's aiohttp integration: the peer's address goes in any case.
    assert event["request"]["env"] == {"REMOTE_ADDR": "127.0.0.1"}

    memory = init(send_default_pii=True)
    serve(make_app(), get("/boom/1?token=t", headers=headers))
    (event,) = flushed(memory).events
    assert event["request"]["headers"]["X-Forwarded-For"] == "203.0.113.9"
    assert event["request"]["query_string"] == "token=t"
    assert event["request"]["env"] == {"REMOTE_ADDR": "127.0.0.1"}

    memory = init(
        data_collection={
            "user_info": False,
            "url_query_params": {"mode": "denylist", "terms": ["token"]},
            "http_bodies": [],
        }
    )
    serve(make_app(), get("/boom/1?token=t&page=2", headers=headers))
    (event,) = flushed(memory).events
    request = event["request"]
    assert "env" not in request  # no REMOTE_ADDR without user_info
    assert "data" not in request  # incoming bodies not collected
    assert request["query_string"] == "token=%5BFiltered%5D&page=2"
    assert request["headers"]["Cookie"] == "[Filtered]"


def test_http_exceptions_and_not_found() -> None:
    memory = init(traces_sample_rate=1.0)
    assert serve(make_app(), get("/ise", "/forbidden", "/missing")) == [500, 403, 404]
    with pytest.raises(aiohttp.ServerDisconnectedError):  # cancelled: no answer
        serve(make_app(), get("/cancelled"))

    (event,) = flushed(memory).events  # only the 500: 403 and 404 are answers
    (exception,) = event["exception"]["values"]
    assert exception["type"] == "HTTPInternalServerError"
    assert exception["mechanism"] == {"type": "aiohttp", "handled": False}
    assert event["transaction"] == "test_integration_aiohttp_server.server_error"
    found = {
        t["transaction"]: (t["contexts"]["trace"]["status"], t["tags"]) for t in memory.transactions
    }
    assert found == {
        "test_integration_aiohttp_server.server_error": (
            "internal_error",
            {"http.status_code": "500"},
        ),
        "test_integration_aiohttp_server.forbidden": (
            "permission_denied",
            {"http.status_code": "403"},
        ),
        # sentry_sdk names an unmatched request after aiohttp's own 404 handler.
        "aiohttp.web_urldispatcher.SystemRoute._handle": ("not_found", {"http.status_code": "404"}),
        # Cancelled: not reported; sentry_sdk's transaction ends internal_error too.
        "test_integration_aiohttp_server.cancelled": ("internal_error", {}),
    }


def test_failed_request_status_codes_and_path_pattern_names() -> None:
    integration = AioHttpIntegration("method_and_path_pattern", failed_request_status_codes={403})
    memory = init(integration, traces_sample_rate=1.0)
    assert serve(make_app(), get("/ise", "/forbidden", "/boom/3", "/missing")) == [
        500,
        403,
        500,
        404,
    ]
    events = flushed(memory).events
    assert [e["exception"]["values"][0]["type"] for e in events] == [
        "HTTPForbidden",
        "ZeroDivisionError",
    ]
    assert [e["transaction"] for e in events] == ["GET /forbidden", "GET /boom/{id}"]
    assert {e["transaction_info"]["source"] for e in events} == {"route"}
    assert [t["transaction"] for t in memory.transactions] == [
        "GET /ise",
        "GET /forbidden",
        "GET /boom/{id}",
        "GET None",  # no route, no pattern: sentry_sdk's name
    ]


def test_the_logged_500_is_not_reported_twice() -> None:
    memory = init(default_integrations=True)  # the logging integration is on
    assert serve(make_app(), get("/boom/1")) == [500]
    (event,) = flushed(memory).events
    assert event["exception"]["values"][0]["mechanism"]["type"] == "aiohttp"


# -- isolation, traces, sessions ------------------------------------------------------


def test_concurrent_requests_are_isolated() -> None:
    memory = init(traces_sample_rate=1.0)
    count = 8
    inside: list[str] = []
    all_inside = asyncio.Event()

    async def personal(request: web.Request) -> web.Response:
        name = request.match_info["name"]
        tripwire.set_tag("who", name)
        tripwire.set_user({"id": name})
        tripwire.add_breadcrumb(message=f"crumb of {name}")
        inside.append(name)
        if len(inside) == count:
            all_inside.set()
        await all_inside.wait()  # every request has set its data before any reports
        raise RuntimeError(name)

    app = web.Application()
    app.router.add_get("/p/{name}", personal)

    async def scenario(client: TestClient[Any, Any]) -> list[int]:
        async def one(name: str) -> int:
            async with client.get(f"/p/{name}") as response:
                return response.status

        return await asyncio.gather(*(one(f"u{i}") for i in range(count)))

    assert serve(app, scenario) == [500] * count
    events = flushed(memory).events
    assert len(events) == count
    for event in events:
        name = event["exception"]["values"][0]["value"]
        assert event["tags"] == {"who": name}
        assert event["user"] == {"id": name}
        assert [c["message"] for c in event["breadcrumbs"]["values"]] == [f"crumb of {name}"]
    transactions = memory.transactions
    assert sorted(t["tags"]["who"] for t in transactions) == sorted(f"u{i}" for i in range(count))
    assert len({t["contexts"]["trace"]["trace_id"] for t in transactions}) == count
    # Nothing leaked into the scopes outside the requests.
    assert tripwire.get_isolation_scope()._tags == {}


def test_incoming_trace_is_continued() -> None:
    memory = init(traces_sample_rate=1.0)
    incoming = {
        "sentry-trace": f"{TRACE_ID}-{PARENT}-1",
        "baggage": f"sentry-trace_id={TRACE_ID},sentry-sample_rate=1.0,sentry-release=up,other=x",
    }
    w3c = {"traceparent": f"00-{TRACE_ID}-{PARENT}-01"}
    serve(make_app(), get("/boom/1", headers=incoming))
    serve(make_app(), get("/forbidden", headers=w3c))
    serve(make_app(), get("/forbidden"))

    event = flushed(memory).events[0]
    first, second, third = memory.transactions
    for item in (event, first, second):
        assert item["contexts"]["trace"]["trace_id"] == TRACE_ID
        assert item["contexts"]["trace"]["parent_span_id"] == PARENT
    assert third["contexts"]["trace"]["trace_id"] != TRACE_ID
    assert third["contexts"]["trace"]["parent_span_id"] is None
    envelope = memory.envelopes[1]  # the first transaction's: the upstream's DSC
    assert envelope.headers["trace"]["release"] == "up"
    assert envelope.headers["trace"]["trace_id"] == TRACE_ID


def test_incoming_trace_without_tracing_is_on_error_events() -> None:
    memory = init()  # no traces_sample_rate: no transaction, the trace still continued
    serve(make_app(), get("/boom/1", headers={"sentry-trace": f"{TRACE_ID}-{PARENT}-1"}))
    (event,) = flushed(memory).events
    assert memory.transactions == []
    assert event["contexts"]["trace"]["trace_id"] == TRACE_ID
    assert event["contexts"]["trace"]["parent_span_id"] == PARENT
    assert event["transaction"] == "test_integration_aiohttp_server.boom"


def test_request_mode_sessions() -> None:
    memory = init(auto_session_tracking=True)
    statuses = serve(make_app(), get("/boom/1", "/ise", "/handled", "/forbidden", "/missing"))
    assert statuses == [500, 500, 200, 403, 404]
    tripwire.flush()
    (item,) = memory.items("sessions")
    payload = json.loads(item.get_bytes())
    assert payload["attrs"] == {"release": "r1", "environment": "production"}
    (aggregate,) = payload["aggregates"]
    del aggregate["started"]
    assert aggregate == {"crashed": 2, "errored": 1, "exited": 2}


# -- set-up ---------------------------------------------------------------------------


def test_inactive_without_the_integration_and_reset_undoes_the_patches() -> None:
    original = web.Application._handle
    memory = init(traces_sample_rate=1.0)
    assert web.Application._handle is not original
    tripwire.get_client().close()
    tripwire.init(dsn=DSN, transport=memory, traces_sample_rate=1.0, default_integrations=False)
    assert serve(make_app(), get("/boom/1")) == [500]
    assert flushed(memory).raw == []
    reset()
    assert web.Application._handle is original


def test_too_old_aiohttp_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aiohttp, "__version__", "3.3.2")
    with pytest.raises(DidNotEnable, match=r"aiohttp 3\.4 or newer"):
        init()


def test_init_imports_no_aiohttp() -> None:
    code = (
        "import sys, tripwire; tripwire.init(dsn='http://k@example.com/1', "
        "auto_enabling_integrations=True); "
        "assert 'aiohttp' in tripwire.get_client().integrations; "
        "print(sorted(m for m in sys.modules if m.startswith('aiohttp')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.strip() == "[]"


def test_sigv4_signed_trace_headers_are_left_alone() -> None:
    init(traces_sample_rate=1.0)
    received: list[dict[str, Any]] = []

    async def record(request: web.Request) -> web.Response:
        received.append({k: request.headers.getall(k, None) for k in ("sentry-trace", "baggage")})
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_get("/r", record)
    signed = (
        "AWS4-HMAC-SHA256 Credential=a/b, SignedHeaders=host;sentry-trace;x-amz-date, Signature=s"
    )
    presigned = "/r?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-SignedHeaders=host%3Bbaggage"

    async def scenario(client: TestClient[Any, Any]) -> None:
        with tripwire.start_transaction(name="outgoing"):
            for path, headers in (
                ("/r", {"Authorization": signed}),
                (presigned, {}),
                ("/r", {"Authorization": "Basic dXNlcjpwdw=="}),
            ):
                async with client.get(path, headers=headers) as response:
                    await response.read()

    serve(app, scenario)
    header_only, query_signed, basic = received
    assert header_only["sentry-trace"] is None and header_only["baggage"] is not None
    assert query_signed["sentry-trace"] is not None and query_signed["baggage"] is None
    assert basic["sentry-trace"] is not None and basic["baggage"] is not None


# -- the same app on sentry_sdk 2.75 ---------------------------------------------------

_SCRIPT = """
import asyncio
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sentry_sdk.integrations.aiohttp import AioHttpIntegration

sentry_sdk.init(
    dsn="https://key@o1.ingest.sentry.io/1",
    transport=KEEP,
    release="r1",
    traces_sample_rate=1.0,
    default_integrations=False,
    integrations=[AioHttpIntegration()],
)


async def boom(request):
    sentry_sdk.set_tag("route", "boom")
    sentry_sdk.add_breadcrumb(message="before", category="test")
    raise ValueError("no " + request.match_info["id"])


async def echo(request):
    body = await request.read()
    return web.Response(text=str(len(body)))


async def forbidden(request):
    raise web.HTTPForbidden()


async def main():
    app = web.Application()
    app.router.add_get("/boom/{id}", boom)
    app.router.add_post("/echo", echo)
    app.router.add_get("/forbidden", forbidden)
    incoming = {
        "sentry-trace": "771a43a4192642f0b136d5159a501700-1234567890abcdef-1",
        "baggage": "sentry-trace_id=771a43a4192642f0b136d5159a501700,sentry-sample_rate=1.0",
    }
    async with TestClient(TestServer(app, host="127.0.0.1")) as client:
        NOTES.append(client.port)
        for method, path, headers, body in (
            ("GET", "/boom/7?q=1", {"Authorization": "secret", "Cookie": "a=b"}, None),
            ("POST", "/echo", incoming, b'{"a": 1}'),
            ("GET", "/forbidden", {}, None),
            ("GET", "/missing", {}, None),
        ):
            async with client.request(method, path, headers=headers, data=body) as response:
                await response.read()


asyncio.run(main())
finish()
"""


def _shape(found: dict[str, Any]) -> list[Any]:
    (port,) = found["notes"]
    text = json.dumps(found["items"]).replace(f":{port}", ":<port>")
    text = re.sub(r" at 0x[0-9a-f]+", " at <addr>", text)
    items = json.loads(text)
    ids = Ids()
    drop = frozenset({"event_id", "sdk", "server_name", "platform", "thread.id", "lineno"})
    out = []
    for item in items:
        if item["type"] not in ("event", "transaction"):
            continue
        payload = normalise(item["payload"], ids, drop=drop)
        for value in payload.get("exception", {}).get("values", ()):
            frames = value["stacktrace"]["frames"]
            value["stacktrace"]["frames"] = [(f["function"], f["in_app"]) for f in frames]
        out.append(payload)
    return out


def test_same_as_sentry_sdk(tmp_path: Path) -> None:
    sentry, ours = run_both(_SCRIPT, tmp_path)
    expected, found = _shape(sentry), _shape(ours)
    assert [p.get("type", "event") for p in found] == [
        "event",
        "transaction",
        "transaction",
        "transaction",
        "transaction",
    ]
    assert found == expected
