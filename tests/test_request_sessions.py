"""Request-mode sessions per web framework: sent exactly where sentry_sdk 2.75 sends them.

sentry_sdk counts a request session for every request served through its WSGI or ASGI
middleware (Flask, Django, Falcon, Bottle, Pyramid, Starlette/FastAPI, Quart, Litestar,
plain WSGI/ASGI) and aiohttp's, and none for Sanic and Tornado. The in-process tests
serve real applications on loopback and read what reaches a real receiver; one
differential run serves one request per framework on both SDKs.
"""

from __future__ import annotations

import asyncio
import io
import itertools
import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any
from wsgiref.util import setup_testing_defaults

import pytest
from _raw_http import bound_socket, fetch
from _receiver import Receiver
from _side_by_side import of_type, run_each

import tripwire
from tripwire.integrations.aiohttp import AioHttpIntegration
from tripwire.integrations.asgi import SentryAsgiMiddleware
from tripwire.integrations.sanic import SanicIntegration
from tripwire.integrations.tornado import TornadoIntegration
from tripwire.integrations.wsgi import SentryWsgiMiddleware

if TYPE_CHECKING:
    import tornado.httpserver
    import tornado.web
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer
    from sanic import Sanic, response


@pytest.fixture(autouse=True, scope="module")
def _frameworks() -> None:
    """Tornado, aiohttp and Sanic are imported when the module's tests start, not at
    collection (every xdist worker collects every module; tests/_lazy.py)."""
    global tornado, web, TestClient, TestServer, Sanic, response
    import tornado.httpserver
    import tornado.web
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer
    from sanic import Sanic, response


_app_numbers = itertools.count()  # Sanic refuses two applications of one name


def init(rx: Receiver, *integrations: Any) -> None:
    # auto_session_tracking is left at its default (on).
    tripwire.init(
        dsn=rx.dsn(),
        release="r1",
        default_integrations=False,
        integrations=list(integrations),
    )


def aggregates(rx: Receiver) -> list[dict[str, Any]]:
    """Every aggregate of every ``sessions`` item received, without its minute."""
    tripwire.flush()
    found = []
    for item in rx.items("sessions"):
        for aggregate in json.loads(item.get_bytes())["aggregates"]:
            del aggregate["started"]
            found.append(aggregate)
    return found


def events(rx: Receiver) -> list[str]:
    """The exception types of the error events received."""
    return [event["exception"]["values"][-1]["type"] for event in rx.events()]


# -- no request sessions: Sanic, Tornado ----------------------------------------------------


def test_sanic_requests_make_no_session(rx: Receiver) -> None:
    init(rx, SanicIntegration())
    app = Sanic(f"sessions{next(_app_numbers)}")
    app.config.TOUCHUP = False  # Sanic rewrites its HTTP code once per process

    @app.get("/ok")
    async def ok(request: Any) -> Any:
        return response.text("ok")

    @app.get("/boom")
    async def boom(request: Any) -> Any:
        raise ZeroDivisionError("no")

    async def main() -> list[int]:
        sock = bound_socket()
        server: Any = await app.create_server(
            sock=sock, return_asyncio_server=True, access_log=False
        )
        await server.startup()
        await server.before_start()
        await server.start_serving()
        try:
            port = sock.getsockname()[1]
            return [(await fetch(port, "GET", path))[0] for path in ("/ok", "/boom")]
        finally:
            await server.before_stop()
            await server.close()
            await server.after_stop()

    assert asyncio.run(main()) == [200, 500]
    assert aggregates(rx) == []
    assert events(rx) == ["ZeroDivisionError"]  # everything flushed arrived


def test_tornado_requests_make_no_session(rx: Receiver) -> None:
    init(rx, TornadoIntegration())

    class Ok(tornado.web.RequestHandler):
        def get(self) -> None:
            self.write("ok")

    class Boom(tornado.web.RequestHandler):
        def get(self) -> None:
            raise ZeroDivisionError("no")

    async def main() -> list[int]:
        sock = bound_socket()
        sock.listen(16)
        sock.setblocking(False)
        server = tornado.httpserver.HTTPServer(
            tornado.web.Application([("/ok", Ok), ("/boom", Boom)])
        )
        server.add_sockets([sock])
        try:
            port = sock.getsockname()[1]
            return [(await fetch(port, "GET", path))[0] for path in ("/ok", "/boom")]
        finally:
            server.stop()
            await server.close_all_connections()

    assert asyncio.run(main()) == [200, 500]
    assert aggregates(rx) == []
    assert events(rx) == ["ZeroDivisionError"]


# -- request sessions: aiohttp and the WSGI/ASGI middlewares ---------------------------------


def test_aiohttp_requests_are_counted(rx: Receiver) -> None:
    init(rx, AioHttpIntegration())

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def main() -> list[int]:
        app = web.Application()
        app.router.add_get("/ok", ok)
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            statuses = []
            for _ in range(2):
                async with client.get("/ok") as reply:
                    statuses.append(reply.status)
            return statuses

    assert asyncio.run(main()) == [200, 200]
    assert aggregates(rx) == [{"exited": 2}]


def test_wsgi_requests_are_counted(rx: Receiver) -> None:
    init(rx)

    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    environ: dict[str, Any] = {"PATH_INFO": "/ok", "wsgi.input": io.BytesIO()}
    setup_testing_defaults(environ)
    body = SentryWsgiMiddleware(app)(environ, lambda status, headers, exc_info=None: None)
    assert b"".join(body) == b"ok"
    body.close()
    assert aggregates(rx) == [{"exited": 1}]


def test_asgi_requests_are_counted(rx: Receiver) -> None:
    init(rx)

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/ok",
        "raw_path": b"/ok",
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"127.0.0.1")],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 80),
    }
    asyncio.run(SentryAsgiMiddleware(app)(scope, receive, send))
    assert sent[0]["status"] == 200
    assert aggregates(rx) == [{"exited": 1}]


# -- the same as sentry_sdk, every framework ------------------------------------------------

# Whether sentry_sdk 2.75 counts a request session, by framework (observed).
TRACKED = {
    "sanic": False,
    "tornado": False,
    "aiohttp": True,
    "quart": True,
    "litestar": True,
    "starlette": True,
    "fastapi": True,
    "django": True,
    "flask": True,
    "falcon": True,
    "bottle": True,
    "pyramid": True,
    "wsgi": True,
    "asgi": True,
}

_SCRIPT = r"""import asyncio
import io
import sys
import warnings
from wsgiref.util import setup_testing_defaults

sys.path.insert(0, TESTS)
from _raw_http import bound_socket, fetch

warnings.simplefilter("ignore", DeprecationWarning)


def start(integration):
    sentry_sdk.init(
        dsn="https://key@o1.ingest.sentry.io/1",
        transport=KEEP,
        release="r1",
        default_integrations=False,
        integrations=[integration] if integration is not None else [],
    )


def wsgi_get(app, path="/ok"):
    environ = {"PATH_INFO": path, "REQUEST_METHOD": "GET", "wsgi.input": io.BytesIO()}
    setup_testing_defaults(environ)
    statuses = []
    body = app(environ, lambda status, headers, exc_info=None: statuses.append(status))
    try:
        b"".join(body)
    finally:
        if hasattr(body, "close"):
            body.close()
    NOTES.append(statuses[0][:3])


def asgi_get(app, path="/ok"):
    async def go():
        sent = []
        scope = {
            "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
            "method": "GET", "scheme": "http", "path": path, "raw_path": path.encode(),
            "root_path": "", "query_string": b"", "headers": [(b"host", b"127.0.0.1")],
            "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 80),
        }
        messages = [{"type": "http.request", "body": b"", "more_body": False}]

        async def receive():
            if messages:
                return messages.pop(0)
            await asyncio.sleep(3600)

        async def send(message):
            sent.append(message)

        await app(scope, receive, send)
        NOTES.append(str(sent[0]["status"]))

    asyncio.run(go())


def scenario_sanic():
    from sanic import Sanic, response
    from sentry_sdk.integrations.sanic import SanicIntegration

    start(SanicIntegration())
    app = Sanic("shop")
    app.config.TOUCHUP = False

    @app.get("/ok")
    async def ok(request):
        return response.text("ok")

    async def main():
        sock = bound_socket()
        port = sock.getsockname()[1]
        server = await app.create_server(sock=sock, return_asyncio_server=True, access_log=False)
        await server.startup()
        await server.before_start()
        await server.start_serving()
        try:
            NOTES.append(str((await fetch(port, "GET", "/ok"))[0]))
        finally:
            await server.before_stop()
            await server.close()
            await server.after_stop()

    asyncio.run(main())


def scenario_tornado():
    import tornado.httpserver
    import tornado.web
    from sentry_sdk.integrations.tornado import TornadoIntegration

    start(TornadoIntegration())

    class Ok(tornado.web.RequestHandler):
        def get(self):
            self.write("ok")

    async def main():
        sock = bound_socket()
        port = sock.getsockname()[1]
        sock.listen(16)
        sock.setblocking(False)
        server = tornado.httpserver.HTTPServer(tornado.web.Application([("/ok", Ok)]))
        server.add_sockets([sock])
        try:
            NOTES.append(str((await fetch(port, "GET", "/ok"))[0]))
        finally:
            server.stop()
            await server.close_all_connections()

    asyncio.run(main())


def scenario_aiohttp():
    from aiohttp import web
    from aiohttp.test_utils import TestClient, TestServer
    from sentry_sdk.integrations.aiohttp import AioHttpIntegration

    start(AioHttpIntegration())

    async def ok(request):
        return web.Response(text="ok")

    async def main():
        app = web.Application()
        app.router.add_get("/ok", ok)
        async with TestClient(TestServer(app, host="127.0.0.1")) as client:
            response = await client.get("/ok")
            NOTES.append(str(response.status))

    asyncio.run(main())


def scenario_quart():
    import quart
    from sentry_sdk.integrations.quart import QuartIntegration

    start(QuartIntegration())
    app = quart.Quart("shop")

    @app.route("/ok")
    async def ok():
        return "ok"

    asgi_get(app)


def scenario_litestar():
    from litestar import Litestar, get
    from sentry_sdk.integrations.litestar import LitestarIntegration

    start(LitestarIntegration())

    @get("/ok", sync_to_thread=False)
    def ok() -> str:
        return "ok"

    asgi_get(Litestar(route_handlers=[ok]))


def scenario_starlette():
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from sentry_sdk.integrations.starlette import StarletteIntegration

    start(StarletteIntegration())

    async def ok(request):
        return PlainTextResponse("ok")

    asgi_get(Starlette(routes=[Route("/ok", ok)]))


def scenario_fastapi():
    from fastapi import FastAPI
    from sentry_sdk.integrations.fastapi import FastApiIntegration
    from sentry_sdk.integrations.starlette import StarletteIntegration

    sentry_sdk.init(
        dsn="https://key@o1.ingest.sentry.io/1",
        transport=KEEP,
        release="r1",
        default_integrations=False,
        integrations=[StarletteIntegration(), FastApiIntegration()],
    )
    app = FastAPI()

    @app.get("/ok")
    async def ok():
        return {"ok": True}

    asgi_get(app)


def scenario_django():
    import django
    from django.conf import settings
    from django.http import HttpResponse
    from django.urls import path
    from sentry_sdk.integrations.django import DjangoIntegration

    def ok(request):
        return HttpResponse("ok")

    sys.modules[__name__].urlpatterns = [path("ok", ok)]
    settings.configure(
        ROOT_URLCONF=__name__, ALLOWED_HOSTS=["*"], SECRET_KEY="s", DEBUG=False,
        MIDDLEWARE=[], INSTALLED_APPS=[], DATABASES={},
    )
    django.setup()
    start(DjangoIntegration())
    from django.core.wsgi import get_wsgi_application

    wsgi_get(get_wsgi_application())


def scenario_flask():
    import flask
    from sentry_sdk.integrations.flask import FlaskIntegration

    start(FlaskIntegration())
    app = flask.Flask("shop")

    @app.route("/ok")
    def ok():
        return "ok"

    wsgi_get(app)


def scenario_falcon():
    import falcon
    from sentry_sdk.integrations.falcon import FalconIntegration

    start(FalconIntegration())

    class Ok:
        def on_get(self, req, resp):
            resp.text = "ok"

    app = falcon.App()
    app.add_route("/ok", Ok())
    wsgi_get(app)


def scenario_bottle():
    import bottle
    from sentry_sdk.integrations.bottle import BottleIntegration

    start(BottleIntegration())
    app = bottle.Bottle()

    @app.route("/ok")
    def ok():
        return "ok"

    wsgi_get(app)


def scenario_pyramid():
    with warnings.catch_warnings():  # Pyramid 2.1 imports pkg_resources, WebOb cgi
        warnings.simplefilter("ignore")
        from pyramid.config import Configurator
        from pyramid.response import Response
    from sentry_sdk.integrations.pyramid import PyramidIntegration

    start(PyramidIntegration())
    with Configurator() as config:
        config.add_route("ok", "/ok")
        config.add_view(lambda request: Response("ok"), route_name="ok")
        app = config.make_wsgi_app()
    wsgi_get(app)


def scenario_wsgi():
    from sentry_sdk.integrations.wsgi import SentryWsgiMiddleware

    start(None)

    def app(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]

    wsgi_get(SentryWsgiMiddleware(app))


def scenario_asgi():
    from sentry_sdk.integrations.asgi import SentryAsgiMiddleware

    start(None)

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    asgi_get(SentryAsgiMiddleware(app))


NAMES = FRAMEWORKS
for index, name in enumerate(NAMES):
    NOTES.append(name)
    globals()["scenario_" + name]()
    if index == len(NAMES) - 1:
        finish()
    else:
        next_scenario()
"""


def _counts(found: dict[str, Any]) -> list[dict[str, Any]]:
    # The minute (`started`) may differ between the two runs.
    return [
        {key: value for key, value in aggregate.items() if key != "started"}
        for payload in of_type(found, "sessions")
        for aggregate in payload["aggregates"]
    ]


@pytest.fixture(scope="module")
def both(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    script = _SCRIPT.replace("TESTS", repr(str(Path(__file__).parent)))
    script = script.replace("FRAMEWORKS", repr(list(TRACKED)))
    runs = run_each(script, tmp_path_factory.mktemp("sessions"), timeout=120)
    yield {sentry["notes"][0]: (sentry, ours) for sentry, ours in runs}


@pytest.mark.parametrize("framework", list(TRACKED))
def test_same_as_sentry_sdk(both: dict[str, Any], framework: str) -> None:
    sentry, ours = both[framework]
    assert sentry["notes"] == ours["notes"] == [framework, "200"]
    expected = [{"exited": 1}] if TRACKED[framework] else []
    assert _counts(sentry) == expected  # what sentry_sdk does, as the table says
    assert _counts(ours) == expected
