"""Span streaming of the ASGI frameworks (Starlette, FastAPI, Litestar, Quart) next to
sentry-sdk 2.75.

One script runs on both SDKs (`_side_by_side.run_both`): Starlette, FastAPI and
Litestar applications through their test clients (the same ASGI middleware path a
server takes), a Quart application on uvicorn on 127.0.0.1. It runs three times in a
row, re-initialised: streaming with `send_default_pii` (the url, query and client
attributes), streaming without (sensitive headers filtered), and the transaction
model, whose logs carry the request's scope attributes as under streaming. The
segments, their children and the logs must be the same.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from _side_by_side import run_both
from _stream_shapes import named_logs, named_spans, segments_by_name

import tripwire
from tripwire.integrations.starlette import StarletteIntegration
from tripwire.testing import MemoryTransport, reset

TESTS = Path(__file__).resolve().parent

SCRIPT = f"""
import asyncio
import sys
import warnings

warnings.simplefilter("ignore")
sys.path.insert(0, {str(TESTS)!r})

import quart
import uvicorn
from _raw_http import bound_socket, fetch
from fastapi import FastAPI
from litestar import Litestar, get
from litestar.middleware import AbstractMiddleware
from litestar.testing import TestClient as LitestarClient
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from sentry_sdk.integrations.fastapi import FastApiIntegration
from sentry_sdk.integrations.litestar import LitestarIntegration
from sentry_sdk.integrations.quart import QuartIntegration
from sentry_sdk.integrations.starlette import StarletteIntegration


def init(lifecycle, pii):
    sentry_sdk.init(
        dsn="https://key@example.com/1",
        transport=KEEP,
        traces_sample_rate=1.0,
        trace_lifecycle=lifecycle,
        release="r1",
        enable_logs=True,
        send_default_pii=pii,
        default_integrations=False,
        integrations=[
            StarletteIntegration(middleware_spans=True),
            FastApiIntegration(),
            LitestarIntegration(),
            QuartIntegration(transaction_style="url"),
        ],
    )


init("stream", True)  # before the routes: their endpoints are wrapped when made


class Passing(BaseHTTPMiddleware):
    async def dispatch(self, request, call_next):
        return await call_next(request)


async def item(request):
    sentry_sdk.logger.info("starlette item")
    return PlainTextResponse("ok")


async def boom(request):
    raise ValueError("boom")


async def posted(request):
    return JSONResponse(await request.json())


starlette_app = Starlette(
    routes=[
        Route("/items/{{ident}}", item),
        Route("/boom", boom),
        Route("/post", posted, methods=["POST"]),
    ],
    middleware=[Middleware(Passing)],
)

fastapi_app = FastAPI()


@fastapi_app.get("/users/{{uid}}")
async def user(uid: int):
    sentry_sdk.logger.info("fastapi user")
    return {{"uid": uid}}


class LitestarMiddleware(AbstractMiddleware):
    async def __call__(self, scope, receive, send):
        await self.app(scope, receive, send)


@get("/things/{{ident:int}}")
async def thing(ident: int) -> str:
    sentry_sdk.logger.info("litestar thing")
    return "ok"


@get("/fail", name="failing")
async def fail() -> str:
    raise ValueError("fail")


litestar_app = Litestar(route_handlers=[thing, fail], middleware=[LitestarMiddleware])

quart_app = quart.Quart("shop")


@quart_app.route("/orders/<int:ident>")
async def order(ident):
    sentry_sdk.logger.info("quart order")
    return "ok"


@quart_app.route("/crash")
async def crash():
    1 / 0


def starlette_calls(phase):
    client = TestClient(starlette_app, raise_server_exceptions=False)
    client.get(
        "/items/7?phase=" + phase,
        headers={{"user-agent": "UA/1", "host": "localhost:8000", "authorization": "x"}},
    )
    if phase == "static":
        return
    client.get("/boom?phase=" + phase)
    client.get("/nothing?phase=" + phase)
    client.post("/post?phase=" + phase, json={{"a": 1}})
    TestClient(fastapi_app).get("/users/3?phase=" + phase, headers={{"x-forwarded-for": "1.2.3.4"}})
    with LitestarClient(litestar_app) as client:
        client.get("/things/5?phase=" + phase)
        client.get("/fail?phase=" + phase)


async def quart_calls(phase):
    sock = bound_socket()
    sock.listen(16)
    config = uvicorn.Config(quart_app, lifespan="off", log_config=None, access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    port = sock.getsockname()[1]
    try:
        await fetch(port, "GET", "/orders/4?a=1&phase=" + phase, {{"User-Agent": "UA/2"}})
        if phase != "static":
            await fetch(port, "GET", "/crash?phase=" + phase, {{"X-Forwarded-For": "10.0.0.1"}})
            await fetch(port, "GET", "/missing?phase=" + phase)
    finally:
        server.should_exit = True
        await task
        sock.close()


PHASES = (("stream", True, "pii"), ("stream", False, "plain"), ("static", True, "static"))
for lifecycle, pii, phase in PHASES:
    if phase != "pii":
        init(lifecycle, pii)
    starlette_calls(phase)
    asyncio.run(quart_calls(phase))
    sentry_sdk.flush()
finish()
"""

# The wrapped `send` a Starlette middleware span is named after: each SDK's own function.
_SEND_NAMES = {
    "SentryAsgiMiddleware._run_app.<locals>._sentry_wrapped_send": "<the SDK's send>",
    "AsgiRequest.send": "<the SDK's send>",
}


def test_asgi_frameworks_stream_the_spans_and_logs_sentry_sdk_does(tmp_path: Path) -> None:
    theirs, ours = run_both(SCRIPT, tmp_path)
    their_spans, our_spans = named_spans(theirs, _SEND_NAMES), named_spans(ours, _SEND_NAMES)
    assert our_spans == their_spans
    assert named_logs(ours) == named_logs(theirs)

    segments = segments_by_name(our_spans)
    item = segments["/items/{ident}"]["attributes"]
    assert item["http.route"] == "/items/{ident}"
    assert item["sentry.is_localhost"] is True  # Host: localhost
    assert item["user_agent.original"] == "UA/1"
    assert item["network.protocol.name"] == "http"
    # Phase "plain" (no PII) is the last of that name: a filtered header, no url.
    assert item["http.request.header.authorization"] == "[Filtered]"
    assert "url.full" not in item and "client.address" not in item
    posted = segments["/post"]["attributes"]
    assert posted["http.request.body.data"] == '{"a": 1}'
    assert segments["/users/{uid}"]["attributes"]["http.route"] == "/users/{uid}"
    assert segments["failing"]["status"] == "error"
    order = segments["/orders/<int:ident>"]["attributes"]
    assert order["http.route"] == "/orders/<int:ident>"
    assert order["http.request.header.remote-addr"] == "127.0.0.1"  # Quart's own header
    middleware = [
        s for s in our_spans if s["attributes"].get("sentry.op") == "middleware.starlette"
    ]
    assert {s["attributes"]["middleware.name"] for s in middleware} >= {"Passing"}
    # Every phase's logs carry the request's scope attributes, the transaction model too.
    static_logs = [log for log in named_logs(ours) if "user.ip_address" not in log["attributes"]]
    assert any(log["attributes"].get("user_agent.original") == "UA/2" for log in static_logs)


def test_transactions_keep_their_tag_and_get_no_streaming_attributes() -> None:
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    async def item(request: Any) -> Any:
        return PlainTextResponse("ok")

    reset()
    memory = MemoryTransport()
    tripwire.init(
        dsn="https://key@example.com/1",
        transport=memory,
        traces_sample_rate=1.0,
        default_integrations=False,
        integrations=[StarletteIntegration()],
    )
    try:
        app = Starlette(routes=[Route("/items/{ident}", item)])
        TestClient(app).get("/items/1", headers={"user-agent": "UA/3"})
        tripwire.flush()
        (transaction,) = memory.transactions
        assert transaction["transaction"] == "/items/{ident}"
        assert transaction["tags"]["asgi.type"] == "http"
        data = transaction["contexts"]["trace"].get("data", {})
        assert not {"http.route", "network.protocol.name", "url.full"} & set(data)
    finally:
        reset()


def test_a_mounted_route_streams_its_full_path_as_http_route() -> None:
    """Unlike sentry_sdk (no ``http.route``, ``generic Starlette request``), a route in a
    `Mount` is named with its mount's prefix, and ``http.route`` says the same."""
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Mount, Route
    from starlette.testclient import TestClient

    from tripwire._json import loads

    async def inner(request: Any) -> Any:
        return PlainTextResponse("ok")

    reset()
    memory = MemoryTransport()
    tripwire.init(
        dsn="https://key@example.com/1",
        transport=memory,
        traces_sample_rate=1.0,
        trace_lifecycle="stream",
        default_integrations=False,
        integrations=[StarletteIntegration()],
    )
    try:
        app = Starlette(routes=[Mount("/sub", routes=[Route("/in/{x}", inner)])])
        TestClient(app).get("/sub/in/3")
        tripwire.flush()
        (segment,) = [
            span
            for item in memory.items("span")
            for span in loads(item.get_bytes())["items"]
            if span["is_segment"]
        ]
        assert segment["name"] == "/sub/in/{x}"
        assert segment["attributes"]["http.route"]["value"] == "/sub/in/{x}"
    finally:
        reset()
