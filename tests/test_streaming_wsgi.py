"""WSGI and the frameworks on it (Flask, Bottle, Falcon, Pyramid) under span streaming.

The same applications run on sentry_sdk 2.75 and on tripwire (``import sentry_sdk``
aliased, `_side_by_side.run_both`) with ``trace_lifecycle="stream"``: the segment of
each request carries the same name, status and attributes (method, headers with the
sensitive ones filtered, scheme, port; path, query, full URL and client's address
only with `send_default_pii` or as `data_collection` allows; the framework's
``http.route``), its children hang under it, and a log made while serving the request
carries the request's scope attributes (``sentry.is_localhost``,
``user_agent.original`` in both modes; ``user.ip_address`` under streaming, as the
options allow).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from _side_by_side import run_both
from _stream_shapes import kept_logs, parented_by_name

# Differ between the SDKs (name, version, integrations), between runs, or with argv.
_VOLATILE = {
    "sentry.sdk.name",
    "sentry.sdk.version",
    "sentry.sdk.integrations",
    "sentry.segment.id",
    "thread.id",
    "process.pid",
    "process.command_args",
    "server.address",
}
_INCOMING_TRACE = "771a43a4192642f0b136d5159a501700"
_INCOMING_PARENT = "1234567890abcdef"


def _kept(key: str) -> bool:
    return key not in _VOLATILE


def _spans(found: dict[str, Any]) -> list[str]:
    """Every span, as JSON without ids and times: its parent by name, sorted."""
    shapes = parented_by_name(found, _kept, _INCOMING_PARENT, _INCOMING_TRACE)
    return sorted(json.dumps(shape, sort_keys=True) for shape in shapes)


def _logs(found: dict[str, Any]) -> list[str]:
    return sorted(json.dumps(log, sort_keys=True) for log in kept_logs(found, _kept))


def _by_name(found: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for shape in map(json.loads, _spans(found)):
        out.setdefault(shape["name"], []).append(shape)
    return out


WSGI_SCRIPT = """
import io
import warnings

warnings.simplefilter("ignore")
import sentry_sdk.logger
import sentry_sdk.traces
from sentry_sdk.integrations.wsgi import SentryWsgiMiddleware


def app(environ, start_response):
    sentry_sdk.logger.info("serving {path}", path=environ["PATH_INFO"])
    if environ["PATH_INFO"] == "/boom":
        raise ValueError("boom")
    if environ["PATH_INFO"] == "/hello":
        with sentry_sdk.traces.start_span(name="work"):
            pass
    status = "404 Not Found" if environ["PATH_INFO"] == "/missing" else "200 OK"
    start_response(status, [("Content-Type", "text/plain")])
    return [b"hello"]


def environ(path, method="GET", query="", **extra):
    env = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "example.com",
        "SERVER_PORT": "8080",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
        "wsgi.input": io.BytesIO(),
        "REMOTE_ADDR": "10.1.2.3",
        "HTTP_HOST": "example.com:8080",
        "HTTP_USER_AGENT": "curl/8",
        "HTTP_AUTHORIZATION": "Bearer x",
        "HTTP_COOKIE": "a=b",
        "HTTP_X_CUSTOM": "c",
    }
    env.update(extra)
    return env


def request(env, **middleware):
    try:
        response = SentryWsgiMiddleware(app, **middleware)(env, lambda s, h, e=None: None)
        list(response)
        response.close()
    except ValueError:
        pass


CONFIGS = [
    dict(trace_lifecycle="stream"),
    dict(trace_lifecycle="stream", send_default_pii=True),
    dict(trace_lifecycle="stream", data_collection={"user_info": True}),
    dict(),  # the transaction model: the scope attributes reach the logs all the same
]
for number, options in enumerate(CONFIGS):
    sentry_sdk.init(
        transport=KEEP,
        traces_sample_rate=1.0,
        enable_logs=True,
        default_integrations=False,
        release=f"config-{number}",
        **options,
    )
    request(
        environ(
            "/hello",
            query="x=1&token=abc",
            HTTP_SENTRY_TRACE="771a43a4192642f0b136d5159a501700-1234567890abcdef-1",
        )
    )
    request(environ("/boom"))
    request(environ("/missing"))
    request(environ("/options", method="OPTIONS"))  # not captured: no segment
    request(
        environ(
            "/local",
            HTTP_HOST="localhost:8080",
            HTTP_X_FORWARDED_FOR="127.0.0.1, 10.0.0.1",
        )
    )
    env = environ(
        "/proxied",
        query="a=1",
        HTTP_X_FORWARDED_HOST="shop.example",
        HTTP_X_FORWARDED_PROTO="https",
    )
    del env["HTTP_HOST"], env["HTTP_USER_AGENT"]
    request(env, use_x_forwarded_for=True)
    env = environ("/by-server-name", SERVER_NAME="localhost", SERVER_PORT="443")
    env["wsgi.url_scheme"] = "https"
    del env["HTTP_HOST"]
    request(env)
    sentry_sdk.flush()
finish()
"""


def test_wsgi_segments_and_scope_attributes_match_sentry_sdk(tmp_path: Path) -> None:
    theirs, ours = run_both(WSGI_SCRIPT, tmp_path)
    assert _spans(ours) == _spans(theirs)
    assert _logs(ours) == _logs(theirs)

    segments = _by_name(ours)["generic WSGI request"]
    # 6 captured requests under each of the three streaming configurations.
    assert len(segments) == 18
    plain = [s for s in segments if s["attributes"]["sentry.release"] == "config-0"]
    hello = next(
        s
        for s in plain
        if s["attributes"].get("http.response.status_code") == 200 and s["incoming_trace"]
    )
    assert hello["parent"] == "<incoming>"
    assert hello["attributes"]["http.request.header.authorization"] == "[Filtered]"
    assert hello["attributes"]["server.port"] == 8080
    assert "url.full" not in hello["attributes"]  # no PII: no URL, query or address
    (work,) = [s for s in _by_name(ours)["work"] if s["attributes"]["sentry.release"] == "config-1"]
    assert work["parent"] == "generic WSGI request" and not work["is_segment"]
    assert work["attributes"]["user.ip_address"] == "10.1.2.3"  # the scope's, under PII
    # The transaction model's logs carry the request's scope attributes too.
    tx_logs = [json.loads(log) for log in _logs(ours)]
    tx_logs = [log for log in tx_logs if log["attributes"]["sentry.release"] == "config-3"]
    assert len(tx_logs) == 7
    assert all("sentry.is_localhost" in log["attributes"] for log in tx_logs)
    assert not any("user.ip_address" in log["attributes"] for log in tx_logs)


FRAMEWORKS_SCRIPT = """
import warnings

warnings.simplefilter("ignore")
import sentry_sdk.logger
from werkzeug.test import Client

import bottle
import falcon
from flask import Flask
from pyramid.config import Configurator
from pyramid.response import Response
from sentry_sdk.integrations.bottle import BottleIntegration
from sentry_sdk.integrations.falcon import FalconIntegration
from sentry_sdk.integrations.flask import FlaskIntegration
from sentry_sdk.integrations.pyramid import PyramidIntegration


def serve(framework, item_id):
    sentry_sdk.logger.info("{framework} item {id}", framework=framework, id=item_id)
    if item_id == 0:
        raise LookupError("no item 0")
    return "ok"


flask_app = Flask("shop")
flask_app.add_url_rule(
    "/items/<int:item_id>", "item", lambda item_id: serve("flask", item_id)
)

bottle_app = bottle.Bottle()


@bottle_app.route("/items/<item_id:int>")
def bottle_item(item_id):
    return serve("bottle", item_id)


class FalconItem:
    def on_get(self, req, resp, item_id):
        resp.text = serve("falcon", item_id)


def pyramid_item(request):
    return Response(serve("pyramid", int(request.matchdict["item_id"])))


def make_falcon():
    app = falcon.App()
    app.add_route("/items/{item_id:int}", FalconItem())
    return app


def make_pyramid():
    with Configurator() as config:
        config.add_route("pyramid-item", "/items/{item_id}")
        config.add_view(pyramid_item, route_name="pyramid-item")
        return config.make_wsgi_app()


STREAMING = dict(trace_lifecycle="stream")
for options in (STREAMING, dict(STREAMING, send_default_pii=True)):
    sentry_sdk.init(
        transport=KEEP,
        traces_sample_rate=1.0,
        enable_logs=True,
        default_integrations=False,
        integrations=[
            FlaskIntegration(),
            BottleIntegration(),
            FalconIntegration(),
            PyramidIntegration(),
        ],
        **options,
    )
    for app in (flask_app, bottle_app, make_falcon(), make_pyramid()):
        client = Client(app)
        for path in ("/items/7?q=1", "/items/0", "/nothing"):
            try:
                client.get(path, headers={"User-Agent": "ua/1"})
            except LookupError:
                pass
    sentry_sdk.flush()
finish()
"""


def test_framework_segments_carry_the_route_as_sentry_sdk(tmp_path: Path) -> None:
    theirs, ours = run_both(FRAMEWORKS_SCRIPT, tmp_path)
    assert _spans(ours) == _spans(theirs)
    assert _logs(ours) == _logs(theirs)
    routes = {
        name: {s["attributes"].get("http.route") for s in shapes}
        for name, shapes in _by_name(ours).items()
    }
    # Named as each framework's transaction style does; the route as the framework has it.
    assert routes["item"] == {"/items/<int:item_id>"}  # Flask (endpoint)
    assert routes["__main__.bottle_item"] == {"/items/<item_id:int>"}  # Bottle (endpoint)
    assert routes["/items/{item_id:int}"] == {"/items/{item_id:int}"}  # Falcon
    assert routes["pyramid-item"] == {"/items/{item_id}"}  # Pyramid (route name)
