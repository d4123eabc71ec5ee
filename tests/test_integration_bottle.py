"""BottleIntegration: a real Bottle application served on 127.0.0.1.

Requests go over loopback HTTP; what the SDK sends reaches a real receiver. The
differential test runs one app on sentry_sdk 2.75 and on tripwire (each in its own
interpreter) and compares the events and transactions.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import bottle
from _receiver import Receiver
from _sentry_side import Ids, normalise
from _side_by_side import run_both
from _wsgi_serve import request, served

import tripwire
from tripwire.integrations.bottle import BottleIntegration
from tripwire.testing import reset

TRACE_ID = "771a43a4192642f0b136d5159a501700"
PARENT = "1234567890abcdef"
ITEM = "test_integration_bottle.make_app.<locals>.item"  # the callback's qualified name


def make_app() -> bottle.Bottle:
    app = bottle.Bottle(catchall=True)

    @app.route("/items/<item_id:int>", method=["GET", "POST"])
    def item(item_id: int) -> str:
        tripwire.set_tag("item", str(item_id))
        if bottle.request.query.get("fail"):
            raise KeyError("missing")
        return "ok"

    @app.route("/gone", name="gone_page")
    def gone() -> Any:
        return bottle.HTTPResponse(status=502, body="upstream")

    @app.route("/denied")
    def denied() -> None:
        bottle.abort(403, "no")

    return app


def init(rx: Receiver, **options: Any) -> None:
    tripwire.get_client().close()  # a client replaced without closing keeps its threads
    integration = options.pop("integration", BottleIntegration())
    tripwire.init(dsn=rx.dsn(), integrations=[integration], default_integrations=False, **options)


def transactions(rx: Receiver) -> list[dict[str, Any]]:
    return [json.loads(item.get_bytes()) for item in rx.items("transaction")]


def test_error_in_a_route_is_reported_with_the_request(rx: Receiver) -> None:
    init(rx)
    with served(make_app()) as port:
        status, _ = request(
            port,
            "POST",
            "/items/3?fail=1",
            headers={"Authorization": "Bearer s3cret", "Cookie": "theme=dark"},
            json_body={"sku": "a1", "password": "hunter2"},
        )
        assert status == 500
        tripwire.flush()
    (event,) = rx.events()
    (exception,) = event["exception"]["values"]
    assert exception["type"] == "KeyError"
    assert exception["mechanism"] == {"type": "bottle", "handled": False}
    assert (event["transaction"], event["transaction_info"]) == (
        ITEM,
        {"source": "component"},
    )
    assert event["tags"] == {"item": "3"}
    req = event["request"]
    assert req["url"] == f"http://127.0.0.1:{port}/items/3"
    assert (req["method"], req["query_string"]) == ("POST", "fail=1")
    assert req["headers"]["Authorization"] == "[Filtered]"
    assert req["data"] == {"sku": "a1", "password": "[Filtered]"}
    assert "cookies" not in req and "user" not in event  # no PII by default
    assert "s3cret" not in json.dumps(event) and "hunter2" not in json.dumps(event)


def test_traced_requests_named_per_style_and_unmatched_ones(rx: Receiver) -> None:
    init(rx, traces_sample_rate=1.0, send_default_pii=True)
    with served(make_app()) as port:
        request(port, "GET", "/items/1", headers={"sentry-trace": f"{TRACE_ID}-{PARENT}-1"})
        request(port, "GET", "/gone")
        init(rx, traces_sample_rate=1.0, integration=BottleIntegration(transaction_style="url"))
        request(port, "GET", "/items/2")
        assert request(port, "GET", "/nowhere")[0] == 404
        tripwire.flush()
    by_endpoint, named, by_url, unmatched = transactions(rx)
    trace = by_endpoint["contexts"]["trace"]
    assert (trace["trace_id"], trace["parent_span_id"]) == (TRACE_ID, PARENT)
    assert (trace["op"], trace["origin"], trace["status"]) == (
        "http.server",
        "auto.http.bottle",
        "ok",
    )
    assert by_endpoint["transaction"] == ITEM
    assert (named["transaction"], named["contexts"]["trace"]["status"]) == (
        "gone_page",
        "internal_error",
    )
    assert (by_url["transaction"], by_url["transaction_info"]) == (
        "/items/<item_id:int>",
        {"source": "route"},
    )
    assert by_url["tags"] == {"item": "2", "http.status_code": "200"}
    # Unlike sentry_sdk (an empty name), an unmatched request keeps the WSGI name.
    assert unmatched["transaction"] == "generic WSGI request"
    assert unmatched["contexts"]["trace"]["status"] == "not_found"
    # The 502 response the route returned is reported, handled; 404 is not.
    (event,) = rx.events()
    assert event["exception"]["values"][0]["type"] == "HTTPResponse"
    assert event["exception"]["values"][0]["mechanism"] == {"type": "bottle", "handled": True}
    assert event["transaction"] == "gone_page"


def test_failed_request_status_codes(rx: Receiver) -> None:
    init(rx, integration=BottleIntegration(failed_request_status_codes={403}))
    with served(make_app()) as port:
        assert request(port, "GET", "/denied")[0] == 403
        assert request(port, "GET", "/gone")[0] == 502
        tripwire.flush()
    (event,) = rx.events()
    (exception,) = event["exception"]["values"]
    assert (exception["type"], exception["value"]) == ("HTTPError", "(403, 'no')")
    assert exception["mechanism"] == {"type": "bottle", "handled": True}


def test_inactive_without_the_integration_and_reset_undoes_the_patch(rx: Receiver) -> None:
    original = bottle.Bottle.__call__
    init(rx, traces_sample_rate=1.0)
    assert bottle.Bottle.__call__ is not original
    tripwire.get_client().close()
    tripwire.init(dsn=rx.dsn(), traces_sample_rate=1.0, default_integrations=False)
    with served(make_app()) as port:
        assert request(port, "GET", "/items/1?fail=1")[0] == 500
        tripwire.flush()
    assert rx.items() == []
    reset()
    assert bottle.Bottle.__call__ is original


# -- the same app on sentry_sdk 2.75 -------------------------------------------------------

SCENARIO = """
import io
import warnings
warnings.filterwarnings("ignore", ".*send_default_pii option is deprecated", DeprecationWarning)
import bottle
from sentry_sdk.integrations.bottle import BottleIntegration
BAGGAGE = "sentry-trace_id=771a43a4192642f0b136d5159a501700,sentry-sample_rand=0.5"


def scenario(STYLE, OPTIONS):
    sentry_sdk.init(
        dsn="https://abc@o1.ingest.sentry.io/42",
        transport=KEEP,
        release="r1",
        default_integrations=False,
        integrations=[BottleIntegration(transaction_style=STYLE)],
        **OPTIONS,
    )
    app = bottle.Bottle()

    @app.route("/orders/<order_id:int>", method=["GET", "POST"])
    def order(order_id):
        sentry_sdk.set_tag("order", str(order_id))
        sentry_sdk.add_breadcrumb(message="looking up")
        if order_id == 0:
            raise LookupError("no order 0")
        if order_id == 5:
            return bottle.HTTPResponse(status=503)
        return "ok"

    def call(method, path, body=b"", headers=()):
        path, _, query = path.partition("?")
        environ = {
            "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
            "SERVER_NAME": "localhost", "SERVER_PORT": "80", "HTTP_HOST": "localhost",
            "REMOTE_ADDR": "192.0.2.4", "SERVER_PROTOCOL": "HTTP/1.1",
            "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
            "wsgi.errors": io.StringIO(), "CONTENT_LENGTH": str(len(body)),
            "CONTENT_TYPE": "application/x-www-form-urlencoded",
        }
        environ.update(headers)
        b"".join(app(environ, lambda status, headers, exc_info=None: None))

    call(
        "POST",
        "/orders/0?expand=1",
        b"note=rush&password=p",
        {
            "HTTP_SENTRY_TRACE": "771a43a4192642f0b136d5159a501700-1234567890abcdef-1",
            "HTTP_BAGGAGE": BAGGAGE,
            "HTTP_COOKIE": "theme=dark",
        },
    )
    call("GET", "/orders/5")
    call("GET", "/orders/7")
    sentry_sdk.get_client().close()


for style, options in CONFIGS:
    scenario(style, options)
finish()
"""


def _shape(found: dict[str, Any]) -> dict[str, Any]:
    ids = Ids({TRACE_ID: "<incoming>", PARENT: "<parent>"})
    out: dict[str, Any] = {"events": [], "transactions": []}
    for item in found["items"]:
        payload = item["payload"]
        if item["type"] == "event":
            exception = payload["exception"]["values"][-1]
            payload["exception"] = {k: exception[k] for k in ("type", "value", "mechanism")}
            out["events"].append(payload)
        elif item["type"] == "transaction":
            out["transactions"].append(payload)
    drop = frozenset({"event_id", "sdk", "server_name", "platform", "extra", "runtime"})
    shaped: dict[str, Any] = normalise(out, ids, mask_rand=True, drop=drop)
    return shaped


# Each SDK runs the scenario twice in one interpreter: 'url' with tracing and PII,
# then 'endpoint' with the defaults (errors only, no PII).
CONFIGS = [("url", {"traces_sample_rate": 1.0, "send_default_pii": True}), ("endpoint", {})]


def test_same_events_and_transactions_as_sentry_sdk(tmp_path: Path) -> None:
    script = f"CONFIGS = {CONFIGS!r}\n" + SCENARIO
    sentry, ours = run_both(script, tmp_path)
    expected, found = _shape(sentry), _shape(ours)
    assert len(found["events"]) == 4
    assert found["events"] == expected["events"]
    assert len(found["transactions"]) == 3
    assert found["transactions"] == expected["transactions"]


def test_init_imports_none_of_the_three_frameworks() -> None:
    """Bottle, Falcon and Pyramid are patched when the application imports them."""
    code = (
        "import sys, warnings, tripwire\n"
        "tripwire.init(dsn='http://k@example.com/1', auto_enabling_integrations=True)\n"
        "loaded = {'bottle', 'falcon', 'pyramid'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
        "import bottle, falcon\n"
        "with warnings.catch_warnings():\n"
        "    warnings.simplefilter('ignore')\n"
        "    import pyramid.router\n"
        "assert getattr(bottle.Bottle.__call__, '__tripwire_bottle__', False)\n"
        "assert getattr(falcon.App.__call__, '__tripwire_falcon__', False)\n"
        "assert getattr(pyramid.router.Router.__call__, '__tripwire_pyramid__', False)\n"
    )
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
