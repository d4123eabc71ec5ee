"""Span streaming of Sanic, Tornado, aiohttp (server and client) and the GraphQL
integrations (Graphene, Strawberry) next to sentry-sdk 2.75.

One script runs on both SDKs (`_side_by_side.run_both`): a Sanic, a Tornado and an
aiohttp server on 127.0.0.1 (the aiohttp handler calls a second aiohttp server
through `ClientSession`), and GraphQL operations inside a streamed segment. Its
requests run three times, re-initialised: streaming with `send_default_pii`,
streaming without, and the transaction model, whose logs carry the request's scope
attributes as under streaming. The segments, their children and the logs must be
the same.
"""

from __future__ import annotations

from pathlib import Path

from _side_by_side import run_both
from _stream_shapes import named_logs, named_spans, segments_by_name

TESTS = Path(__file__).resolve().parent

SCRIPT = f"""
import asyncio
import sys
import warnings

warnings.simplefilter("ignore")
sys.path.insert(0, {str(TESTS)!r})

import aiohttp
import graphene
import strawberry
import tornado.httpserver
import tornado.web
from _raw_http import bound_socket, fetch
from aiohttp import web
from aiohttp.test_utils import TestServer
from sanic import Sanic, response
from sanic.exceptions import Forbidden

from sentry_sdk.integrations.aiohttp import AioHttpIntegration
from sentry_sdk.integrations.graphene import GrapheneIntegration
from sentry_sdk.integrations.sanic import SanicIntegration
from sentry_sdk.integrations.strawberry import StrawberryIntegration
from sentry_sdk.integrations.tornado import TornadoIntegration


def init(lifecycle, pii):
    sentry_sdk.init(
        dsn="https://key@example.com/1",
        transport=KEEP,
        traces_sample_rate=1.0,
        trace_lifecycle=lifecycle,
        release="r1",
        enable_logs=True,
        send_default_pii=pii,
        # A request slower than the threshold gets its code location: a loaded machine
        # would make that differ between the two runs.
        enable_http_request_source=False,
        default_integrations=False,
        integrations=[
            SanicIntegration(unsampled_statuses=None),
            TornadoIntegration(),
            AioHttpIntegration(transaction_style="method_and_path_pattern"),
            GrapheneIntegration(),
            StrawberryIntegration(async_execution=True),
        ],
    )


init("stream", True)

sanic_app = Sanic("shop")
sanic_app.config.TOUCHUP = False


@sanic_app.get("/s/items/<ident:int>")
async def sanic_item(request, ident):
    sentry_sdk.logger.info("sanic item")
    return response.text("ok")


@sanic_app.get("/s/forbidden")
async def sanic_forbidden(request):
    raise Forbidden("no")


class TornadoItem(tornado.web.RequestHandler):
    def get(self, ident):
        sentry_sdk.logger.info("tornado item")
        self.write("ok")

    def post(self, ident):
        self.write("posted")


class TornadoBoom(tornado.web.RequestHandler):
    def get(self):
        1 / 0


tornado_app = tornado.web.Application(
    [(r"/t/items/(\\d+)", TornadoItem), (r"/t/boom", TornadoBoom)]
)


async def upstream(request):
    return web.Response(text="up")


async def aiohttp_item(request):
    sentry_sdk.logger.info("aiohttp item")
    async with aiohttp.ClientSession() as session:
        async with session.get(str(request.app["up"]) + "/data?q=1#frag") as answer:
            await answer.read()
    return web.Response(text="ok")


async def aiohttp_forbidden(request):
    raise web.HTTPForbidden()


class Query(graphene.ObjectType):
    hello = graphene.String()

    def resolve_hello(root, info):
        return "hi"


graphene_schema = graphene.Schema(query=Query)


@strawberry.type
class StrawberryQuery:
    @strawberry.field
    def hello(self) -> str:
        return "hi"


strawberry_schema = strawberry.Schema(query=StrawberryQuery)


async def graphql_calls():
    graphene_schema.execute("{{ hello }}")  # outside a span: no span
    with sentry_sdk.traces.start_span(name="graphene segment"):
        graphene_schema.execute("query Greet {{ hello }}", operation_name="Greet")
    with sentry_sdk.traces.start_span(name="strawberry segment"):
        await strawberry_schema.execute("query Greet {{ hello }}", operation_name="Greet")
    with sentry_sdk.traces.start_span(name="anonymous segment"):
        await strawberry_schema.execute("{{ hello }}")


async def main():
    sock = bound_socket()
    sanic_port = sock.getsockname()[1]
    sanic_server = await sanic_app.create_server(
        sock=sock, return_asyncio_server=True, access_log=False
    )
    await sanic_server.startup()
    await sanic_server.before_start()
    await sanic_server.start_serving()

    tornado_sock = bound_socket()
    tornado_sock.listen(16)
    tornado_sock.setblocking(False)
    tornado_server = tornado.httpserver.HTTPServer(tornado_app)
    tornado_server.add_sockets([tornado_sock])
    tornado_port = tornado_sock.getsockname()[1]

    up = web.Application()
    up.router.add_get("/data", upstream)
    up_server = TestServer(up, host="127.0.0.1")
    await up_server.start_server()
    app = web.Application()
    app["up"] = up_server.make_url("")
    app.router.add_get("/a/items/{{ident}}", aiohttp_item)
    app.router.add_get("/a/forbidden", aiohttp_forbidden)
    aiohttp_server = TestServer(app, host="127.0.0.1")
    await aiohttp_server.start_server()
    aiohttp_port = aiohttp_server.port

    phases = (("stream", True, "pii"), ("stream", False, "plain"), ("static", True, "static"))
    for lifecycle, pii, phase in phases:
        if phase != "pii":
            init(lifecycle, pii)
        agent = {{"User-Agent": "UA/" + phase, "Authorization": "secret"}}
        await fetch(sanic_port, "GET", "/s/items/7?x=1&phase=" + phase, agent)
        await fetch(tornado_port, "GET", "/t/items/7?x=1&phase=" + phase, agent)
        await fetch(aiohttp_port, "GET", "/a/items/7?x=1&phase=" + phase, agent)
        if phase != "static":
            await fetch(sanic_port, "GET", "/s/forbidden?phase=" + phase)
            await fetch(sanic_port, "GET", "/s/missing?phase=" + phase, {{"Host": "localhost"}})
            await fetch(
                tornado_port, "POST", "/t/items/8?phase=" + phase,
                {{"Content-Type": "application/json"}}, b'{{"a": 1}}',
            )
            forwarded = {{"X-Forwarded-For": "1.2.3.4"}}
            await fetch(tornado_port, "GET", "/t/boom?phase=" + phase, forwarded)
            await fetch(aiohttp_port, "GET", "/a/forbidden?phase=" + phase)
            await fetch(aiohttp_port, "GET", "/a/missing?phase=" + phase)
            await graphql_calls()
        sentry_sdk.flush()

    await sanic_server.before_stop()
    await sanic_server.close()
    await sanic_server.after_stop()
    tornado_server.stop()
    await tornado_server.close_all_connections()
    await aiohttp_server.close()
    await up_server.close()


asyncio.run(main())
finish()
"""


def test_async_web_and_graphql_stream_the_spans_and_logs_sentry_sdk_does(tmp_path: Path) -> None:
    theirs, ours = run_both(SCRIPT, tmp_path)
    our_spans = named_spans(ours)
    assert our_spans == named_spans(theirs)
    assert named_logs(ours) == named_logs(theirs)

    segments = segments_by_name(our_spans)
    # The last segment of a name is the one without PII: headers filtered, no url.
    sanic = segments["sanic_item"]["attributes"]
    assert sanic["http.request.header.authorization"] == "[Filtered]"
    assert sanic["sentry.is_localhost"] is True
    assert "url.full" not in sanic
    aiohttp_item = segments["GET /a/items/{ident}"]
    assert aiohttp_item["attributes"]["http.route"] == "/a/items/{ident}"
    (client_span,) = {
        s["name"]: s
        for s in our_spans
        if s["attributes"].get("sentry.op") == "http.client" and "url.path" in s["attributes"]
    }.values()
    assert client_span["attributes"]["url.path"] == "/data"  # with PII only
    tornado_post = segments["__main__.TornadoItem.post"]["attributes"]
    assert tornado_post["http.request.body.data"] == '{"a": 1}'
    strawberry_segment = segments["Greet"]
    assert strawberry_segment["attributes"]["sentry.op"] == "graphql.query"
    resolves = [s for s in our_spans if s["attributes"].get("sentry.op") == "graphql.resolve"]
    assert resolves and not any("graphql.field_name" in s["attributes"] for s in resolves)
    # The transaction model's logs carry the scope attributes too.
    static_agents = {log["attributes"].get("user_agent.original") for log in named_logs(ours)}
    assert "UA/static" in static_agents
