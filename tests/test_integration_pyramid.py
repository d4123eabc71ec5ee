"""PyramidIntegration: a real Pyramid application served on 127.0.0.1.

Requests go over loopback HTTP; what the SDK sends reaches a real receiver. The
differential test runs one app on sentry_sdk 2.75 and on tripwire (each in its own
interpreter) and compares the events and transactions.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _receiver import Receiver
from _sentry_side import Ids, normalise
from _side_by_side import run_both
from _wsgi_serve import request, served

import tripwire
from tripwire.integrations.pyramid import PyramidIntegration
from tripwire.testing import reset

if TYPE_CHECKING:
    from pyramid import router
    from pyramid.config import Configurator
    from pyramid.httpexceptions import HTTPForbidden
    from pyramid.response import Response


@pytest.fixture(autouse=True, scope="module")
def _pyramid() -> None:
    """Pyramid is imported when the module's tests start, not at collection (every xdist
    worker collects every module; tests/_lazy.py)."""
    global router, Configurator, HTTPForbidden, Response
    with warnings.catch_warnings():  # Pyramid 2.1 imports pkg_resources, WebOb 1.8 cgi
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        from pyramid import router
        from pyramid.config import Configurator
        from pyramid.httpexceptions import HTTPForbidden
        from pyramid.response import Response


TRACE_ID = "771a43a4192642f0b136d5159a501700"
PARENT = "1234567890abcdef"


class Policy:
    """A security policy whose user is named by the ``X-User`` header."""

    def identity(self, request: Any) -> Any:
        return request.headers.get("X-User")

    def authenticated_userid(self, request: Any) -> Any:
        return request.headers.get("X-User")

    def permits(self, request: Any, context: Any, permission: Any) -> bool:
        return True


def make_app() -> Any:
    def item(request: Any) -> Response:
        tripwire.set_tag("item", request.matchdict["item_id"])
        if request.params.get("fail"):
            raise KeyError("missing")
        return Response("ok")

    def errors(request: Any) -> Response:
        kind = request.matchdict["kind"]
        if kind == "forbidden":
            raise HTTPForbidden()
        raise LookupError(kind)  # answered by the exception view below

    def lookup_view(exc: LookupError, request: Any) -> Response:
        return Response("handled", status=200 if str(exc) == "fine" else 500)

    with Configurator() as config:
        config.set_security_policy(Policy())
        config.add_route("item", "/items/{item_id}")
        config.add_view(item, route_name="item")
        config.add_route("errors", "/errors/{kind}")
        config.add_view(errors, route_name="errors")
        config.add_view(lookup_view, context=LookupError)
        return config.make_wsgi_app()


def init(rx: Receiver, **options: Any) -> None:
    tripwire.get_client().close()  # a client replaced without closing keeps its threads
    integration = options.pop("integration", PyramidIntegration())
    tripwire.init(dsn=rx.dsn(), integrations=[integration], **options)


def transactions(rx: Receiver) -> list[dict[str, Any]]:
    return [json.loads(item.get_bytes()) for item in rx.items("transaction")]


def test_error_in_a_view_is_reported_once_with_the_request(rx: Receiver) -> None:
    init(rx, send_default_pii=True)  # default integrations: dedupe keeps one event
    with served(make_app()) as port:
        status, _ = request(
            port,
            "POST",
            "/items/3?fail=1",
            headers={"Authorization": "Bearer s3cret", "Cookie": "theme=dark", "X-User": "ann"},
            json_body={"sku": "a1", "password": "hunter2"},
        )
        assert status == 500
        tripwire.flush()
    (event,) = rx.events()
    (exception,) = event["exception"]["values"]
    assert exception["type"] == "KeyError"
    assert exception["mechanism"] == {"type": "pyramid", "handled": False}
    assert (event["transaction"], event["transaction_info"]) == ("item", {"source": "component"})
    assert event["tags"]["item"] == "3"
    req = event["request"]
    assert req["url"] == f"http://127.0.0.1:{port}/items/3"
    assert (req["method"], req["query_string"]) == ("POST", "fail=1")
    assert req["headers"]["Authorization"] == "[Filtered]"
    assert req["cookies"] == {"theme": "dark"}
    assert req["data"] == {"sku": "a1", "password": "[Filtered]"}
    assert event["user"] == {"ip_address": "127.0.0.1", "id": "ann"}
    assert "s3cret" not in json.dumps(event) and "hunter2" not in json.dumps(event)


def test_which_handled_errors_are_reported(rx: Receiver) -> None:
    init(rx, default_integrations=False)
    with served(make_app()) as port:
        statuses = [
            request(port, "GET", f"/errors/{kind}")[0] for kind in ("forbidden", "fine", "broken")
        ]
        tripwire.flush()
    assert statuses == [403, 200, 500]
    # Only the exception an exception view answered with a 500; no user without PII.
    (event,) = rx.events()
    assert event["exception"]["values"][0]["type"] == "LookupError"
    assert event["exception"]["values"][0]["mechanism"] == {"type": "pyramid", "handled": False}
    assert "user" not in event and "cookies" not in event["request"]


def test_traced_requests_named_per_style_and_unmatched_ones(rx: Receiver) -> None:
    init(rx, default_integrations=False, traces_sample_rate=1.0)
    with served(make_app()) as port:
        request(port, "GET", "/items/1", headers={"sentry-trace": f"{TRACE_ID}-{PARENT}-1"})
        assert request(port, "GET", "/nowhere")[0] == 404
        init(
            rx,
            default_integrations=False,
            traces_sample_rate=1.0,
            integration=PyramidIntegration(transaction_style="route_pattern"),
        )
        request(port, "GET", "/items/2")
        tripwire.flush()
    by_name, unmatched, by_pattern = transactions(rx)
    trace = by_name["contexts"]["trace"]
    assert (trace["trace_id"], trace["parent_span_id"]) == (TRACE_ID, PARENT)
    assert (trace["op"], trace["origin"], trace["status"]) == (
        "http.server",
        "auto.http.pyramid",
        "ok",
    )
    assert (by_name["transaction"], by_name["transaction_info"]) == (
        "item",
        {"source": "component"},
    )
    assert (unmatched["transaction"], unmatched["contexts"]["trace"]["status"]) == (
        "generic WSGI request",
        "not_found",
    )
    assert (by_pattern["transaction"], by_pattern["transaction_info"]) == (
        "/items/{item_id}",
        {"source": "route"},
    )
    assert by_pattern["tags"] == {"item": "2", "http.status_code": "200"}
    assert rx.events() == []


def test_inactive_without_the_integration_and_reset_undoes_the_patch(rx: Receiver) -> None:
    original = router.Router.__call__
    init(rx, default_integrations=False, traces_sample_rate=1.0)
    assert router.Router.__call__ is not original
    tripwire.get_client().close()
    tripwire.init(dsn=rx.dsn(), traces_sample_rate=1.0, default_integrations=False)
    with served(make_app()) as port:
        assert request(port, "GET", "/errors/broken")[0] == 500
        tripwire.flush()
    assert rx.items() == []
    reset()
    assert router.Router.__call__ is original


# -- the same app on sentry_sdk 2.75 -------------------------------------------------------

SCENARIO = """
import io
import json
import warnings
warnings.filterwarnings("ignore", ".*send_default_pii option is deprecated", DeprecationWarning)
with warnings.catch_warnings():  # pkg_resources and cgi, imported by Pyramid and WebOb
    warnings.simplefilter("ignore")
    from pyramid.config import Configurator
    from pyramid.response import Response
from sentry_sdk.integrations.dedupe import DedupeIntegration
from sentry_sdk.integrations.pyramid import PyramidIntegration
BAGGAGE = "sentry-trace_id=771a43a4192642f0b136d5159a501700,sentry-sample_rand=0.5"


def scenario(STYLE, OPTIONS):
    sentry_sdk.init(
        dsn="https://abc@o1.ingest.sentry.io/42",
        transport=KEEP,
        release="r1",
        default_integrations=False,
        integrations=[DedupeIntegration(), PyramidIntegration(transaction_style=STYLE)],
        **OPTIONS,
    )

    class Policy:
        def identity(self, request):
            return "ann"
        def authenticated_userid(self, request):
            return "ann"
        def permits(self, request, context, permission):
            return True

    def order(request):
        order_id = request.matchdict["order_id"]
        sentry_sdk.set_tag("order", order_id)
        sentry_sdk.add_breadcrumb(message="looking up")
        if order_id == "0":
            raise LookupError("no order 0")
        if order_id == "5":
            raise KeyError("five")
        return Response("ok")

    def key_view(exc, request):
        return Response("no", status=500)

    with Configurator() as config:
        config.set_security_policy(Policy())
        config.add_route("order", "/orders/{order_id}")
        config.add_view(order, route_name="order")
        config.add_view(key_view, context=KeyError)
        app = config.make_wsgi_app()

    def call(method, path, body=b"", headers=()):
        path, _, query = path.partition("?")
        environ = {
            "REQUEST_METHOD": method, "PATH_INFO": path, "QUERY_STRING": query,
            "SERVER_NAME": "localhost", "SERVER_PORT": "80", "HTTP_HOST": "localhost",
            "REMOTE_ADDR": "192.0.2.4", "SERVER_PROTOCOL": "HTTP/1.1", "SCRIPT_NAME": "",
            "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
            "wsgi.errors": io.StringIO(), "CONTENT_LENGTH": str(len(body)),
            "CONTENT_TYPE": "application/x-www-form-urlencoded",
        }
        environ.update(headers)
        try:
            b"".join(app(environ, lambda status, headers, exc_info=None: None))
        except LookupError:
            pass

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


# Each SDK runs the scenario twice in one interpreter: 'route_pattern' with tracing and PII,
# then 'route_name' with the defaults (errors only, no PII).
CONFIGS = [
    ("route_pattern", {"traces_sample_rate": 1.0, "send_default_pii": True}),
    ("route_name", {}),
]


def test_same_events_and_transactions_as_sentry_sdk(tmp_path: Path) -> None:
    script = f"CONFIGS = {CONFIGS!r}\n" + SCENARIO
    sentry, ours = run_both(script, tmp_path)
    expected, found = _shape(sentry), _shape(ours)
    assert len(found["events"]) == 4
    assert found["events"] == expected["events"]
    assert len(found["transactions"]) == 3
    assert found["transactions"] == expected["transactions"]
