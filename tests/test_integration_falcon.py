"""FalconIntegration: a real Falcon (WSGI) application served on 127.0.0.1.

Requests go over loopback HTTP; what the SDK sends reaches a real receiver. The
differential test runs one app on sentry_sdk 2.75 and on tripwire (each in its own
interpreter) and compares the events and transactions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _receiver import Receiver
from _sentry_side import Ids, normalise
from _side_by_side import run_both
from _wsgi_serve import request, served

import tripwire
from tripwire.integrations.falcon import FalconIntegration
from tripwire.testing import reset

if TYPE_CHECKING:
    import falcon


@pytest.fixture(autouse=True, scope="module")
def _falcon() -> None:
    """Falcon is imported when the module's tests start, not at collection (every xdist
    worker collects every module; tests/_lazy.py)."""
    global falcon
    import falcon


TRACE_ID = "771a43a4192642f0b136d5159a501700"
PARENT = "1234567890abcdef"


class Items:
    def on_get(self, req: falcon.Request, resp: falcon.Response, item_id: int) -> None:
        tripwire.set_tag("item", str(item_id))
        if req.get_param("fail"):
            raise KeyError("missing")
        resp.media = {"id": item_id}

    def on_post(self, req: falcon.Request, resp: falcon.Response, item_id: int) -> None:
        if req.get_param("parse"):
            req.get_media()
        raise ValueError("bad input")


class Errors:
    def on_get(self, req: falcon.Request, resp: falcon.Response, kind: str) -> None:
        if kind == "unavailable":
            raise falcon.HTTPServiceUnavailable()
        if kind == "bad":
            raise falcon.HTTPBadRequest()
        raise LookupError(kind)  # answered by the app's handler below


def make_app() -> falcon.App:
    app = falcon.App()
    app.add_route("/items/{item_id:int}", Items())
    app.add_route("/errors/{kind}", Errors())

    def lookup_handler(req: Any, resp: Any, ex: Exception, params: Any) -> None:
        resp.status = falcon.HTTP_200 if str(ex) == "fine" else falcon.HTTP_500

    app.add_error_handler(LookupError, lookup_handler)
    return app


def init(rx: Receiver, **options: Any) -> None:
    tripwire.get_client().close()  # a client replaced without closing keeps its threads
    integration = options.pop("integration", FalconIntegration())
    tripwire.init(dsn=rx.dsn(), integrations=[integration], default_integrations=False, **options)


def transactions(rx: Receiver) -> list[dict[str, Any]]:
    return [json.loads(item.get_bytes()) for item in rx.items("transaction")]


def test_error_in_a_responder_is_reported_with_the_request(rx: Receiver) -> None:
    init(rx, send_default_pii=True)
    with served(make_app()) as port:
        status, _ = request(
            port,
            "GET",
            "/items/3?fail=1",
            headers={"Authorization": "Bearer s3cret", "Cookie": "theme=dark"},
        )
        assert status == 500
        # A body the responder parsed is sent; one it did not read is only marked.
        request(port, "POST", "/items/4?parse=1", json_body={"sku": "a1", "password": "x"})
        request(port, "POST", "/items/5", json_body={"sku": "b2"})
        tripwire.flush()
    error, parsed, unread = rx.events()
    (exception,) = error["exception"]["values"]
    assert exception["type"] == "KeyError"
    assert exception["mechanism"] == {"type": "falcon", "handled": False}
    assert (error["transaction"], error["transaction_info"]) == (
        "/items/{item_id:int}",
        {"source": "route"},
    )
    assert error["tags"] == {"item": "3"}
    req = error["request"]
    assert req["url"] == f"http://127.0.0.1:{port}/items/3"
    assert (req["method"], req["query_string"]) == ("GET", "fail=1")
    assert req["headers"]["Authorization"] == "[Filtered]"
    assert req["cookies"] == {"theme": "dark"}
    assert error["user"] == {"ip_address": "127.0.0.1"}
    assert parsed["request"]["data"] == {"sku": "a1", "password": "[Filtered]"}
    assert unread["request"]["data"] == ""
    assert unread["_meta"]["request"]["data"] == {"": {"rem": [["!raw", "x"]]}}


def test_which_handled_errors_are_reported(rx: Receiver) -> None:
    init(rx)
    with served(make_app()) as port:
        statuses = [
            request(port, "GET", f"/errors/{kind}")[0]
            for kind in ("unavailable", "bad", "fine", "broken")
        ]
        tripwire.flush()
    assert statuses == [503, 400, 200, 500]
    # A 5xx HTTPError, and an exception the app's handler answered with a 500.
    reported = [e["exception"]["values"][0]["type"] for e in rx.events()]
    assert reported == ["HTTPServiceUnavailable", "LookupError"]


def test_traced_requests_named_per_style_and_unmatched_ones(rx: Receiver) -> None:
    init(rx, traces_sample_rate=1.0)
    with served(make_app()) as port:
        request(port, "GET", "/items/1", headers={"sentry-trace": f"{TRACE_ID}-{PARENT}-1"})
        assert request(port, "GET", "/nowhere")[0] == 404
        init(rx, traces_sample_rate=1.0, integration=FalconIntegration(transaction_style="path"))
        request(port, "GET", "/items/2")
        tripwire.flush()
    by_template, unmatched, by_path = transactions(rx)
    trace = by_template["contexts"]["trace"]
    assert (trace["trace_id"], trace["parent_span_id"]) == (TRACE_ID, PARENT)
    assert (trace["op"], trace["origin"], trace["status"]) == (
        "http.server",
        "auto.http.falcon",
        "ok",
    )
    assert (by_template["transaction"], by_template["transaction_info"]) == (
        "/items/{item_id:int}",
        {"source": "route"},
    )
    # Unlike sentry_sdk (no name), an unmatched request keeps the WSGI name.
    assert unmatched["transaction"] == "generic WSGI request"
    assert unmatched["contexts"]["trace"]["status"] == "not_found"
    assert (by_path["transaction"], by_path["transaction_info"]) == (
        "/items/2",
        {"source": "url"},
    )
    assert by_path["tags"] == {"item": "2", "http.status_code": "200"}
    assert rx.events() == []


def test_inactive_without_the_integration_and_reset_undoes_the_patch(rx: Receiver) -> None:
    original = falcon.App.__call__
    init(rx, traces_sample_rate=1.0)
    assert falcon.App.__call__ is not original
    tripwire.get_client().close()
    tripwire.init(dsn=rx.dsn(), traces_sample_rate=1.0, default_integrations=False)
    with served(make_app()) as port:
        assert request(port, "GET", "/items/1?fail=1")[0] == 500
        tripwire.flush()
    assert rx.items() == []
    reset()
    assert falcon.App.__call__ is original


# -- the same app on sentry_sdk 2.75 -------------------------------------------------------

SCENARIO = """
import io
import json
import warnings
warnings.filterwarnings("ignore", ".*send_default_pii option is deprecated", DeprecationWarning)
import falcon
from sentry_sdk.integrations.falcon import FalconIntegration
BAGGAGE = "sentry-trace_id=771a43a4192642f0b136d5159a501700,sentry-sample_rand=0.5"


def scenario(STYLE, OPTIONS):
    sentry_sdk.init(
        dsn="https://abc@o1.ingest.sentry.io/42",
        transport=KEEP,
        release="r1",
        default_integrations=False,
        integrations=[FalconIntegration(transaction_style=STYLE)],
        **OPTIONS,
    )

    class Orders:
        def on_post(self, req, resp, order_id):
            sentry_sdk.set_tag("order", str(order_id))
            sentry_sdk.add_breadcrumb(message="looking up")
            req.get_media()
            raise LookupError("no order")

        def on_get(self, req, resp, order_id):
            if order_id == 5:
                raise falcon.HTTPBadGateway()
            resp.media = {"id": order_id}

    app = falcon.App()
    app.add_route("/orders/{order_id:int}", Orders())

    def call(method, path, body=b"", headers=()):
        path, _, query = path.partition("?")
        environ = {
            "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
            "SERVER_NAME": "localhost", "SERVER_PORT": "80", "HTTP_HOST": "localhost",
            "REMOTE_ADDR": "192.0.2.4", "SERVER_PROTOCOL": "HTTP/1.1", "SCRIPT_NAME": "",
            "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
            "wsgi.errors": io.StringIO(), "CONTENT_LENGTH": str(len(body)),
            "CONTENT_TYPE": "application/json",
        }
        environ.update(headers)
        b"".join(app(environ, lambda status, headers, exc_info=None: None))

    call(
        "POST",
        "/orders/0?expand=1",
        json.dumps({"note": "rush", "password": "p"}).encode(),
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


# Each SDK runs the scenario twice in one interpreter: 'path' with tracing and PII,
# then 'uri_template' with the defaults (errors only, no PII).
CONFIGS = [("path", {"traces_sample_rate": 1.0, "send_default_pii": True}), ("uri_template", {})]


def test_same_events_and_transactions_as_sentry_sdk(tmp_path: Path) -> None:
    script = f"CONFIGS = {CONFIGS!r}\n" + SCENARIO
    sentry, ours = run_both(script, tmp_path)
    expected, found = _shape(sentry), _shape(ours)
    assert len(found["events"]) == 4
    assert found["events"] == expected["events"]
    assert len(found["transactions"]) == 3
    assert found["transactions"] == expected["transactions"]
