"""Bottle, Falcon and Pyramid apps inside a user's SentryWsgiMiddleware, and the
`transaction_style` check every web integration shares.

Inside the middleware the framework's integration adds its part of the request (the
body it parsed, the route's name) to the middleware's request: one transaction per
request, not two. The expected values are what sentry-sdk 2.75 sends for the same apps
(observed side by side when this test was written).
"""

from __future__ import annotations

import json
import warnings
from contextlib import suppress
from typing import TYPE_CHECKING, Any, Callable

import pytest
from _receiver import Receiver
from _wsgi_serve import request, served

import tripwire
from tripwire.integrations.aiohttp import AioHttpIntegration
from tripwire.integrations.asgi import SentryAsgiMiddleware
from tripwire.integrations.bottle import BottleIntegration
from tripwire.integrations.django import DjangoIntegration
from tripwire.integrations.falcon import FalconIntegration
from tripwire.integrations.flask import FlaskIntegration
from tripwire.integrations.pyramid import PyramidIntegration
from tripwire.integrations.quart import QuartIntegration
from tripwire.integrations.starlette import StarletteIntegration
from tripwire.integrations.wsgi import SentryWsgiMiddleware

if TYPE_CHECKING:
    import bottle
    import falcon
    from pyramid.config import Configurator


@pytest.fixture(autouse=True, scope="module")
def _frameworks() -> None:
    """Bottle, Falcon and Pyramid are imported when the module's tests start, not at
    collection (every xdist worker collects every module; tests/_lazy.py)."""
    global bottle, falcon, Configurator
    import bottle
    import falcon

    with warnings.catch_warnings():  # Pyramid 2.1 imports pkg_resources, WebOb 1.8 cgi
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        from pyramid.config import Configurator


def bottle_app() -> Any:
    app = bottle.Bottle()

    @app.route("/items/<n:int>", method=["POST"])
    def item(n: int) -> None:
        assert bottle.request.json == {"sku": "a1"}
        raise KeyError("missing")

    return app


def falcon_app() -> Any:
    class Item:
        def on_post(self, req: Any, resp: Any, n: int) -> None:
            req.get_media()
            raise KeyError("missing")

    app = falcon.App()
    app.add_route("/items/{n:int}", Item())
    return app


def pyramid_app() -> Any:
    def view(request: Any) -> None:
        assert request.json_body == {"sku": "a1"}
        raise KeyError("missing")

    with Configurator() as config:
        config.add_route("item", "/items/{n}")
        config.add_view(view, route_name="item")
        return config.make_wsgi_app()


# (app, integration, transaction name, the events' (exception type, mechanism)).
CASES = [
    (
        bottle_app,
        BottleIntegration,
        "test_wsgi_frameworks_in_middleware.bottle_app.<locals>.item",
        [("KeyError", "bottle")],
    ),
    (falcon_app, FalconIntegration, "/items/{n:int}", [("KeyError", "falcon")]),
    # Both Pyramid's integration and the middleware report the view's error, as
    # sentry-sdk's do.
    (
        pyramid_app,
        PyramidIntegration,
        "item",
        [("KeyError", "pyramid"), ("KeyError", "wsgi")],
    ),
]


@pytest.mark.parametrize(("make_app", "integration", "name", "errors"), CASES)
def test_the_framework_adds_its_part_to_the_middlewares_request(
    rx: Receiver,
    make_app: Callable[[], Any],
    integration: Any,
    name: str,
    errors: list[tuple[str, str]],
) -> None:
    tripwire.get_client().close()
    tripwire.init(
        dsn=rx.dsn(),
        integrations=[integration()],
        default_integrations=False,
        traces_sample_rate=1.0,
    )
    try:
        with served(SentryWsgiMiddleware(make_app())) as port:
            status, _ = request(port, "POST", "/items/3", json_body={"sku": "a1"})
            tripwire.flush()
    finally:
        tripwire.get_client().close()
    assert status == 500
    events = rx.events()
    found = []
    for event in events:
        exception = event["exception"]["values"][-1]  # the one raised last
        found.append((exception["type"], exception["mechanism"]["type"]))
        assert exception["mechanism"]["handled"] is False
        assert event["transaction"] == name
        assert event["request"]["data"] == {"sku": "a1"}  # the body only the framework parsed
    assert sorted(found) == errors
    (transaction,) = [json.loads(item.get_bytes()) for item in rx.items("transaction")]
    assert transaction["transaction"] == name


@pytest.mark.parametrize("forwarded", [False, True])
@pytest.mark.parametrize(("make_app", "integration"), [case[:2] for case in CASES])
def test_the_framework_reports_the_request_as_the_middleware_got_it(
    make_app: Callable[[], Any], integration: Any, forwarded: bool
) -> None:
    # werkzeug's ProxyFix between the middleware and the app rewrites the environ the
    # framework sees; as sentry-sdk, events carry the request as it reached the
    # middleware, under the middleware's `use_x_forwarded_for`.
    from werkzeug.middleware.proxy_fix import ProxyFix
    from werkzeug.test import Client

    from tripwire.testing import MemoryTransport

    memory = MemoryTransport()
    tripwire.get_client().close()
    tripwire.init(
        dsn="https://k@example.com/1",
        transport=memory,
        integrations=[integration()],
        default_integrations=False,
        traces_sample_rate=1.0,
        send_default_pii=True,
    )
    fixed = ProxyFix(make_app(), x_for=1, x_proto=1, x_host=1, x_prefix=1)
    try:
        with suppress(KeyError):  # the view's error, when the framework re-raises it
            Client(SentryWsgiMiddleware(fixed, use_x_forwarded_for=forwarded)).post(
                "/items/3",
                json={"sku": "a1"},
                headers={
                    "X-Forwarded-For": "9.9.9.9",
                    "X-Forwarded-Proto": "https",
                    "X-Forwarded-Host": "public.example",
                    "X-Forwarded-Prefix": "/app",
                },
                environ_base={"REMOTE_ADDR": "10.0.0.1"},
            )
        tripwire.flush()
    finally:
        tripwire.get_client().close()
    assert memory.events and memory.transactions
    url = "https://public.example/items/3" if forwarded else "http://localhost/items/3"
    for event in memory.events + memory.transactions:
        assert event["request"]["url"] == url
        assert event["request"]["env"] == {
            "SERVER_NAME": "localhost",
            "SERVER_PORT": "80",
            "REMOTE_ADDR": "10.0.0.1",
        }
        assert event["request"]["headers"]["Host"] == "localhost"
        assert event["user"]["ip_address"] == "9.9.9.9"


@pytest.mark.parametrize(
    "make",
    [
        BottleIntegration,
        FalconIntegration,
        PyramidIntegration,
        FlaskIntegration,
        DjangoIntegration,
        StarletteIntegration,
        QuartIntegration,
        AioHttpIntegration,
        lambda transaction_style: SentryAsgiMiddleware(None, transaction_style=transaction_style),
    ],
)
def test_an_unknown_transaction_style_is_refused_with_sentry_sdks_message(make: Any) -> None:
    with pytest.raises(
        ValueError, match=r"^Invalid value for transaction_style: bogus \(must be in \("
    ):
        make(transaction_style="bogus")
