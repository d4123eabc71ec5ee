"""TrytondWSGIIntegration: trytond's own WSGI application served on 127.0.0.1.

The application is `trytond.wsgi.app` with Tryton's JSON-RPC dispatcher
(`trytond.protocols.dispatcher`: ``/rpc/`` answers without a database) and one route of
this test that raises a `UserError`, as Tryton's own tests add routes. Requests go
over loopback HTTP; what the SDK sends reaches a real receiver. The differential test
runs the same requests on sentry_sdk 2.75 and on tripwire and compares what they send.
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
from tripwire.integrations.trytond import TrytondWSGIIntegration
from tripwire.testing import reset

if TYPE_CHECKING:
    from trytond.wsgi import app

TRACE_ID = "771a43a4192642f0b136d5159a501700"
PARENT = "1234567890abcdef"
JSON = {"Content-Type": "application/json"}


def _refuse(request: Any, database_name: str) -> None:
    from trytond.exceptions import UserError

    raise UserError("Not allowed", "ask an administrator")


@pytest.fixture(scope="module", autouse=True)
def _trytond() -> None:
    """trytond is imported when the module's tests start, not at collection (every xdist
    worker collects every module; tests/_lazy.py)."""
    global app
    with warnings.catch_warnings():  # trytond 8 warns about its own deprecated imports
        warnings.simplefilter("ignore", DeprecationWarning)
        import trytond.protocols.dispatcher  # noqa: F401  (registers /rpc/ on the app)
        from trytond.wsgi import app

    # The app is process-wide: the route is added once (Tryton adds rules, never replaces).
    if not any(
        rule.rule == "/<database_name>/tripwire-test/refuse" for rule in app.url_map.iter_rules()
    ):
        app.route("/<database_name>/tripwire-test/refuse", methods=["POST"])(_refuse)


@pytest.fixture(scope="module", autouse=True)
def _status_dumper(_trytond: None) -> None:
    """Tryton starts its status dumper, a daemon thread that lives as long as the process,
    on its first request: started before any test's thread snapshot."""
    from trytond.status import start as start_status_dumper

    start_status_dumper()


def init(rx: Receiver, **options: Any) -> None:
    tripwire.get_client().close()  # a client replaced without closing keeps its threads
    tripwire.init(
        dsn=rx.dsn(), integrations=[TrytondWSGIIntegration()], default_integrations=False, **options
    )


def rpc(port: int, method: str, path: str = "/rpc/") -> tuple[int, Any]:
    status, body = request(
        port, "POST", path, headers=JSON, json_body={"id": 1, "method": method, "params": []}
    )
    return status, json.loads(body)


def test_error_in_an_rpc_call_is_reported_and_user_errors_are_not(rx: Receiver) -> None:
    init(rx, traces_sample_rate=1.0)
    with served(app) as port:
        assert rpc(port, "common.server.version")[1]["result"]
        status, body = rpc(port, "no.such.method")
        # Tryton turns the error into a JSON-RPC error response.
        assert (status, body["error"][0]) == (200, "'no.such.method'")
        status, body = rpc(port, "anything", "/db1/tripwire-test/refuse")
        assert body["error"][0] == "UserError"
        tripwire.flush()
    (event,) = rx.events()
    (exception,) = event["exception"]["values"]
    assert (exception["type"], exception["value"]) == ("KeyError", "'no.such.method'")
    assert exception["mechanism"] == {"type": "trytond", "handled": False}
    assert event["request"]["url"] == f"http://127.0.0.1:{port}/rpc/"
    assert event["request"]["method"] == "POST"
    # Tryton's own log record of the error is not reported a second time.
    assert "logentry" not in event and event.get("logger") is None
    txs = [json.loads(item.get_bytes()) for item in rx.items("transaction")]
    assert len(txs) == 3
    for tx in txs:
        trace = tx["contexts"]["trace"]
        assert (tx["transaction"], trace["op"], trace["origin"]) == (
            "generic WSGI request",
            "http.server",
            "auto.http.trytond_wsgi",
        )
    # JSON-RPC answers both errors with 200 and an error member.
    assert [tx["contexts"]["trace"]["status"] for tx in txs] == ["ok", "ok", "ok"]
    assert event["contexts"]["trace"]["trace_id"] == txs[1]["contexts"]["trace"]["trace_id"]


def test_incoming_trace_is_continued(rx: Receiver) -> None:
    init(rx, traces_sample_rate=1.0)
    with served(app) as port:
        request(
            port,
            "POST",
            "/rpc/",
            headers={**JSON, "sentry-trace": f"{TRACE_ID}-{PARENT}-1"},
            json_body={"id": 1, "method": "common.server.version", "params": []},
        )
        tripwire.flush()
    (item,) = rx.items("transaction")
    trace = json.loads(item.get_bytes())["contexts"]["trace"]
    assert (trace["trace_id"], trace["parent_span_id"], trace["status"]) == (
        TRACE_ID,
        PARENT,
        "ok",
    )


def test_inactive_without_the_integration_and_reset_undoes_it(rx: Receiver) -> None:
    original, handlers = app.wsgi_app, list(app.error_handlers)
    init(rx, traces_sample_rate=1.0)
    assert app.wsgi_app is not original and len(app.error_handlers) == len(handlers) + 1
    tripwire.get_client().close()
    tripwire.init(dsn=rx.dsn(), traces_sample_rate=1.0, default_integrations=False)
    with served(app) as port:
        assert "error" in rpc(port, "no.such.method")[1]
        tripwire.flush()
    assert rx.items() == []
    reset()
    assert app.wsgi_app is original and app.error_handlers == handlers


# -- the same requests on sentry_sdk 2.75 ----------------------------------------------------

SCENARIO = """
import io
import json
import warnings
warnings.filterwarnings("ignore", ".*send_default_pii option is deprecated", DeprecationWarning)
warnings.filterwarnings("ignore", category=DeprecationWarning, module="trytond")
import trytond.protocols.dispatcher
from trytond.exceptions import UserError
from trytond.wsgi import app
from sentry_sdk.integrations.trytond import TrytondWSGIIntegration


@app.route("/<database_name>/refuse", methods=["POST"])
def refuse(request, database_name):
    raise UserError("Not allowed")


def call(path, method, headers=()):
    body = json.dumps({"id": 1, "method": method, "params": []}).encode()
    environ = {
        "REQUEST_METHOD": "POST", "PATH_INFO": path, "QUERY_STRING": "",
        "SERVER_NAME": "localhost", "SERVER_PORT": "80", "HTTP_HOST": "localhost",
        "REMOTE_ADDR": "192.0.2.4", "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(body),
        "wsgi.errors": io.StringIO(), "CONTENT_LENGTH": str(len(body)),
        "CONTENT_TYPE": "application/json",
    }
    environ.update(headers)
    b"".join(app(environ, lambda status, headers, exc_info=None: None))


sentry_sdk.init(
    dsn="https://abc@o1.ingest.sentry.io/42",
    transport=KEEP,
    release="r1",
    default_integrations=False,
    integrations=[TrytondWSGIIntegration()],
    traces_sample_rate=1.0,
    send_default_pii=True,
)
call(
    "/rpc/",
    "no.such.method",
    {"HTTP_SENTRY_TRACE": "771a43a4192642f0b136d5159a501700-1234567890abcdef-1"},
)
call("/rpc/", "common.server.version")
call("/db1/refuse", "anything")
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


def test_same_events_and_transactions_as_sentry_sdk(tmp_path: Path) -> None:
    sentry, ours = run_both(SCENARIO, tmp_path)
    expected, found = _shape(sentry), _shape(ours)
    assert len(found["events"]) == 1
    assert found["events"] == expected["events"]
    assert len(found["transactions"]) == 3
    assert found["transactions"] == expected["transactions"]
