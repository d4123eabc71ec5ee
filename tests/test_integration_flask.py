"""FlaskIntegration: real Flask applications, through Flask's test client and waitress.

Most tests drive an app in-process with Flask's test client and assert the events,
transactions and session aggregates that reach an in-memory transport. One serves the
app with waitress on 127.0.0.1 to concurrent clients and reads what reached a real
loopback receiver. The differential test runs one app on sentry_sdk 2.75 and on
tripwire (each in its own interpreter) and compares the event and transaction shape.
"""

from __future__ import annotations

import http.client
import io
import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _receiver import Receiver
from _sentry_side import Ids, normalise
from _side_by_side import run_both

import tripwire
from tripwire.integrations import DidNotEnable
from tripwire.integrations.flask import FlaskIntegration
from tripwire.testing import MemoryTransport, reset

TRACE_ID = "771a43a4192642f0b136d5159a501700"
PARENT = "1234567890abcdef"
DSN = "http://key@example.com/1"


if TYPE_CHECKING:
    import flask
    import flask_login
    import waitress

    User: type[flask_login.UserMixin]


@pytest.fixture(autouse=True, scope="module")
def _flask() -> None:
    """Flask, Flask-Login and waitress are imported when the module's tests start, not at
    collection (every xdist worker collects every module; tests/_lazy.py); the user class
    is made here."""
    global flask, flask_login, waitress, User
    import flask
    import flask_login
    import waitress

    class User(flask_login.UserMixin):  # type: ignore[misc]
        def __init__(self, user_id: str) -> None:
            self.id = user_id
            self.email = f"{user_id}@example.com"


def make_app() -> flask.Flask:
    app = flask.Flask("shop")
    app.secret_key = "test"
    login = flask_login.LoginManager(app)
    login.user_loader(User)

    @app.route("/boom")
    def boom() -> str:
        tripwire.set_tag("view", "boom")
        raise ZeroDivisionError("boom")

    @app.route("/items/<int:item_id>", methods=["GET", "POST"])
    def item(item_id: int) -> str:
        tripwire.set_tag("item", str(item_id))
        if flask.request.args.get("fail"):
            raise KeyError("missing")
        return "ok"

    @app.route("/login/<name>")
    def login_as(name: str) -> str:
        flask_login.login_user(User(name))
        return "in"

    @app.route("/whoami")
    def whoami() -> str:
        raise RuntimeError(f"user {flask_login.current_user.get_id()}")

    @app.route("/page")
    def page() -> str:
        return flask.render_template_string("{{ sentry_trace_meta }}|{{ sentry_trace }}")

    return app


def init(memory: MemoryTransport | None = None, **options: Any) -> MemoryTransport:
    tripwire.get_client().close()  # a client replaced without closing keeps its threads
    memory = memory or MemoryTransport()
    integration = options.pop("integration", FlaskIntegration())
    options.setdefault("dsn", DSN)
    tripwire.init(
        transport=memory, integrations=[integration], default_integrations=False, **options
    )
    return memory


@pytest.fixture
def app() -> flask.Flask:
    return make_app()


def test_unhandled_error_event(app: flask.Flask) -> None:
    memory = init()
    response = app.test_client().get("/boom?x=1", headers={"Authorization": "Bearer s3cret"})
    assert response.status_code == 500
    (event,) = memory.events
    (exception,) = event["exception"]["values"]
    assert exception["type"] == "ZeroDivisionError"
    assert exception["mechanism"] == {"type": "flask", "handled": False}
    assert event["transaction"] == "boom"
    assert event["transaction_info"] == {"source": "component"}
    assert event["tags"] == {"view": "boom"}
    request = event["request"]
    assert request["url"] == "http://localhost/boom"
    assert (request["method"], request["query_string"]) == ("GET", "x=1")
    assert request["env"] == {"SERVER_NAME": "localhost", "SERVER_PORT": "80"}
    assert request["headers"]["Authorization"] == "[Filtered]"
    assert "cookies" not in request and "user" not in event
    assert "s3cret" not in json.dumps(event)


def test_transaction_names_per_style(app: flask.Flask) -> None:
    memory = init(traces_sample_rate=1.0)
    app.test_client().get("/items/3")
    init(memory, traces_sample_rate=1.0, integration=FlaskIntegration(transaction_style="url"))
    app.test_client().get("/items/4")
    app.test_client().get("/nowhere")
    by_endpoint, by_url, unmatched = memory.transactions
    assert (by_endpoint["transaction"], by_endpoint["transaction_info"]) == (
        "item",
        {"source": "component"},
    )
    assert (by_url["transaction"], by_url["transaction_info"]) == (
        "/items/<int:item_id>",
        {"source": "route"},
    )
    assert by_url["tags"] == {"item": "4", "http.status_code": "200"}
    trace = by_url["contexts"]["trace"]
    assert (trace["op"], trace["origin"], trace["status"]) == (
        "http.server",
        "auto.http.flask",
        "ok",
    )
    assert unmatched["transaction"] == "generic WSGI request"
    assert unmatched["contexts"]["trace"]["status"] == "not_found"
    with pytest.raises(ValueError, match="transaction_style"):
        FlaskIntegration(transaction_style="view")


def test_incoming_trace_continued_and_error_joins_the_transaction(app: flask.Flask) -> None:
    memory = init(traces_sample_rate=1.0)
    app.test_client().get(
        "/items/1?fail=1",
        headers={
            "sentry-trace": f"{TRACE_ID}-{PARENT}-1",
            "baggage": f"sentry-trace_id={TRACE_ID},sentry-sample_rand=0.25",
        },
    )
    (event,) = memory.events
    (transaction,) = memory.transactions
    trace = transaction["contexts"]["trace"]
    assert (trace["trace_id"], trace["parent_span_id"]) == (TRACE_ID, PARENT)
    assert trace["status"] == "internal_error"
    assert transaction["contexts"]["response"] == {"status_code": 500}
    assert event["contexts"]["trace"]["span_id"] == trace["span_id"]
    assert event["transaction"] == transaction["transaction"] == "item"
    assert transaction["request"]["query_string"] == "fail=1"


def test_http_methods_to_capture(app: flask.Flask) -> None:
    memory = init(
        traces_sample_rate=1.0, integration=FlaskIntegration(http_methods_to_capture=("post",))
    )
    client = app.test_client()
    client.get("/items/1")
    client.post("/items/2")
    assert [t["request"]["method"] for t in memory.transactions] == ["POST"]


def test_request_bodies_under_the_size_limit(app: flask.Flask) -> None:
    @app.route("/submit", methods=["POST"])
    def submit() -> str:
        raise ValueError("bad input")

    memory = init(max_request_body_size="small")
    client = app.test_client()
    client.post("/submit", json={"sku": "a1", "password": "hunter2"})
    client.post("/submit", data={"name": "x", "doc": (io.BytesIO(b"%PDF"), "a.pdf")})
    client.post("/submit", data=b"\x00raw bytes", content_type="application/octet-stream")
    client.post("/submit", json={"blob": "x" * 2000})
    as_json, as_form, raw, too_large = (e["request"] for e in memory.events)
    assert as_json["data"] == {"sku": "a1", "password": "[Filtered]"}
    assert as_form["data"] == {"name": "x", "doc": ""}
    metas = [e.get("_meta", {}).get("request", {}) for e in memory.events]
    assert metas[1]["data"]["doc"] == {"": {"rem": [["!raw", "x"]]}}
    assert raw["data"] == ""
    assert metas[2]["data"] == {"": {"rem": [["!raw", "x"]]}}
    assert too_large["data"] == ""
    assert metas[3]["data"] == {"": {"rem": [["!config", "x"]]}}
    assert "hunter2" not in json.dumps([e["request"] for e in memory.events])


def test_pii_cookies_and_flask_login_user(app: flask.Flask) -> None:
    memory = init(send_default_pii=True, traces_sample_rate=1.0)
    client = app.test_client()
    client.set_cookie("theme", "dark")
    assert client.get("/login/ann").data == b"in"
    client.get("/whoami", environ_base={"REMOTE_ADDR": "192.0.2.4"})
    (event,) = memory.events
    assert event["user"] == {"id": "ann", "email": "ann@example.com", "ip_address": "192.0.2.4"}
    assert event["request"]["cookies"]["theme"] == "dark"
    assert event["request"]["env"]["REMOTE_ADDR"] == "192.0.2.4"
    # The transaction (finished after Flask's request context is gone) has the user too.
    assert memory.transactions[-1]["user"]["id"] == "ann"


def test_without_pii_no_user_and_no_cookies(app: flask.Flask) -> None:
    memory = init()
    client = app.test_client()
    client.set_cookie("theme", "dark")
    client.get("/login/ann")
    client.get("/whoami")
    (event,) = memory.events
    assert "user" not in event
    assert "cookies" not in event["request"]
    assert event["request"]["headers"]["Cookie"] == "[Filtered]"


def test_templates_get_the_trace_meta_tags(app: flask.Flask) -> None:
    memory = init(traces_sample_rate=1.0)
    body = app.test_client().get("/page", headers={"sentry-trace": f"{TRACE_ID}-{PARENT}-1"})
    meta, older = body.data.decode().split("|")
    assert meta == older
    (transaction,) = memory.transactions
    span_id = transaction["contexts"]["trace"]["span_id"]
    assert f'<meta name="sentry-trace" content="{TRACE_ID}-{span_id}-1">' in meta
    assert '<meta name="baggage" content="sentry-trace_id=' in meta


def test_isolation_between_requests_of_one_thread(app: flask.Flask) -> None:
    memory = init()
    client = app.test_client()
    client.get("/items/1?fail=1")
    client.get("/boom")
    first, second = memory.events
    assert first["tags"] == {"item": "1"}
    assert second["tags"] == {"view": "boom"}


def test_sessions(app: flask.Flask) -> None:
    memory = init(release="r1")
    client = app.test_client()
    for path in ("/items/1", "/items/2", "/boom", "/nowhere"):
        client.get(path)
    tripwire.flush()
    (aggregate,) = [json.loads(item.get_bytes()) for item in memory.items("sessions")]
    (bucket,) = aggregate["aggregates"]
    # An error Flask turns into a 500 is unhandled: that request's session crashed.
    assert {k: v for k, v in bucket.items() if k != "started"} == {"exited": 3, "crashed": 1}


def test_inactive_without_the_integration_and_reset_undoes_the_patch(app: flask.Flask) -> None:
    original = flask.Flask.__call__
    memory = init(traces_sample_rate=1.0)
    assert flask.Flask.__call__ is not original
    tripwire.get_client().close()
    tripwire.init(dsn=DSN, transport=memory, traces_sample_rate=1.0, default_integrations=False)
    app.test_client().get("/boom")
    assert memory.events == [] and memory.transactions == []
    reset()
    assert flask.Flask.__call__ is original
    assert not flask.signals.request_started.receivers


def test_did_not_enable_for_old_flask_or_missing_blinker(monkeypatch: pytest.MonkeyPatch) -> None:
    import tripwire.utils

    monkeypatch.setattr(tripwire.utils, "package_version", lambda name: (1, 0, 2))
    with pytest.raises(DidNotEnable, match=r"Flask 1\.1\.4 or newer"):
        FlaskIntegration.setup_once()
    monkeypatch.undo()
    monkeypatch.setitem(sys.modules, "blinker", None)
    with pytest.raises(DidNotEnable, match="blinker"):
        FlaskIntegration.setup_once()


def test_init_imports_no_web_framework() -> None:
    code = (
        "import sys, tripwire\n"
        "tripwire.init(dsn='http://k@example.com/1', debug=True, auto_enabling_integrations=True)\n"
        "loaded = {'flask', 'django', 'fastapi', 'starlette'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
        "import flask\n"
        "assert getattr(flask.Flask.__call__, '__tripwire_flask__', False)\n"
    )
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    # debug=True says what was enabled, and what was skipped and why.
    assert "Enabling integration flask" in result.stderr
    # Starlite cannot be installed beside the test extras (it pins pydantic 1).
    assert "Did not enable default integration starlite: Starlite is not installed" in (
        result.stderr
    )


# -- a real server -----------------------------------------------------------------------


@pytest.fixture
def served(rx: Receiver) -> Iterator[tuple[int, threading.Barrier]]:
    """The app on waitress (4 threads) at 127.0.0.1; its requests meet at a barrier."""
    app = make_app()
    barrier = threading.Barrier(4, timeout=10)

    @app.route("/work/<name>")
    def work(name: str) -> str:
        tripwire.set_tag("client", name)
        tripwire.set_user({"id": name})
        tripwire.add_breadcrumb(message=f"step of {name}")
        barrier.wait()  # all four requests are in flight at once
        if name.startswith("fail"):
            raise RuntimeError(f"failed for {name}")
        return name

    # Its own socket map (not waitress's global one): what is left in it is closed below.
    sockets: dict[int, Any] = {}
    server = waitress.create_server(app, host="127.0.0.1", port=0, threads=4, map=sockets)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield server.effective_port, barrier
    finally:
        # Closed by the loop's own thread: a socket closed from here while the loop
        # waits in select() on it fails that select (EBADF, in the loop's thread). Once
        # the map is empty, the loop returns.
        from waitress import wasyncore

        server.trigger.pull_trigger(lambda: wasyncore.close_all(sockets))
        thread.join(10)
        assert not thread.is_alive()
        server.task_dispatcher.shutdown()


def test_waitress_concurrent_requests_are_isolated(
    rx: Receiver, served: tuple[int, threading.Barrier]
) -> None:
    port, _ = served
    tripwire.init(
        dsn=rx.dsn(),
        release="r1",
        traces_sample_rate=1.0,
        integrations=[FlaskIntegration()],
        default_integrations=False,
    )
    names = ["ok-a", "fail-b", "ok-c", "fail-d"]
    statuses: dict[str, int] = {}

    def call(name: str) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        try:
            conn.request(
                "GET",
                f"/work/{name}",
                headers={"sentry-trace": f"{TRACE_ID}-{PARENT}-1"} if name == "ok-a" else {},
            )
            statuses[name] = conn.getresponse().status
        finally:
            conn.close()

    threads = [threading.Thread(target=call, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert statuses == {"ok-a": 200, "fail-b": 500, "ok-c": 200, "fail-d": 500}
    tripwire.flush()

    events = {e["tags"]["client"]: e for e in rx.events()}
    assert sorted(events) == ["fail-b", "fail-d"]
    for name, event in events.items():
        assert event["user"] == {"id": name}
        assert [c["message"] for c in event["breadcrumbs"]["values"]] == [f"step of {name}"]
        assert event["exception"]["values"][0]["value"] == f"failed for {name}"
        assert event["request"]["url"] == f"http://127.0.0.1:{port}/work/{name}"
    transactions = {
        t["tags"]["client"]: t for t in (json.loads(i.get_bytes()) for i in rx.items("transaction"))
    }
    assert sorted(transactions) == sorted(names)
    for name, transaction in transactions.items():
        assert transaction["user"] == {"id": name}
        assert transaction["transaction"] == "work"
        expected = "internal_error" if name.startswith("fail") else "ok"
        assert transaction["contexts"]["trace"]["status"] == expected
    assert transactions["ok-a"]["contexts"]["trace"]["trace_id"] == TRACE_ID
    assert transactions["ok-a"]["contexts"]["trace"]["parent_span_id"] == PARENT
    others = {t["contexts"]["trace"]["trace_id"] for n, t in transactions.items() if n != "ok-a"}
    assert TRACE_ID not in others and len(others) == 3
    for name in ("fail-b", "fail-d"):
        trace = transactions[name]["contexts"]["trace"]
        assert events[name]["contexts"]["trace"]["span_id"] == trace["span_id"]
    (aggregate,) = [json.loads(i.get_bytes()) for i in rx.items("sessions")]
    assert aggregate["attrs"]["release"] == "r1"
    (bucket,) = aggregate["aggregates"]
    assert {k: v for k, v in bucket.items() if k != "started"} == {"exited": 2, "crashed": 2}


# -- the same app on sentry_sdk 2.75 -------------------------------------------------------

SCENARIO = """
import warnings
warnings.filterwarnings("ignore", ".*send_default_pii option is deprecated", DeprecationWarning)
from flask import Flask, render_template_string
from sentry_sdk.integrations.flask import FlaskIntegration

sentry_sdk.init(
    dsn="https://abc@o1.ingest.sentry.io/42",
    transport=KEEP,
    release="r1",
    default_integrations=False,
    integrations=[FlaskIntegration(transaction_style=STYLE)],
    **OPTIONS,
)
app = Flask("shop")

@app.route("/orders/<int:order_id>", methods=["GET", "POST"])
def order(order_id):
    sentry_sdk.set_tag("order", order_id)
    sentry_sdk.add_breadcrumb(message="looking up")
    if order_id == 0:
        raise LookupError("no order 0")
    return render_template_string("{{ sentry_trace_meta }}")

client = app.test_client()
client.post(
    "/orders/0?expand=1",
    json={"note": "rush", "password": "p"},
    headers={
        "sentry-trace": "771a43a4192642f0b136d5159a501700-1234567890abcdef-1",
        "baggage": "sentry-trace_id=771a43a4192642f0b136d5159a501700,sentry-sample_rand=0.5",
        "X-Forwarded-For": "203.0.113.9",
    },
)
NOTES.append(client.get("/orders/7").data.decode())
finish()
"""


def _shape(found: dict[str, Any]) -> dict[str, Any]:
    ids = Ids({TRACE_ID: "<incoming>", PARENT: "<parent>"})
    out: dict[str, Any] = {"events": [], "transactions": [], "sessions": []}
    for item in found["items"]:
        payload = item["payload"]
        if item["type"] == "event":
            exception = payload["exception"]["values"][-1]
            payload["exception"] = {
                k: exception[k] for k in ("type", "value", "mechanism")
            }  # frames are compared by the core's own differential tests
            out["events"].append(payload)
        elif item["type"] == "transaction":
            out["transactions"].append(payload)
        # Known difference: without PII sentry_sdk sends X-Forwarded-For as "" marked
        # removed by config ("x"); tripwire's default scrubber then substitutes the
        # value, as for any sensitive key ("[Filtered]", "s"). Removed either way.
        headers = payload.get("request", {}).get("headers", {})
        if headers.get("X-Forwarded-For") in ("", "[Filtered]"):
            headers["X-Forwarded-For"] = "<removed>"
            meta = payload["_meta"]["request"]["headers"]["X-Forwarded-For"]
            meta[""]["rem"] = [["!config", "<removed>"]]
        if "tags" in payload:
            # Intended: tripwire sends tag values as strings (sentry_sdk sends the int
            # `order_id` as a JSON number, which Sentry turns into a string anyway).
            payload["tags"] = {k: str(v) for k, v in payload["tags"].items()}
        elif item["type"] == "sessions":
            out["sessions"].append([{**b, "started": "<time>"} for b in payload["aggregates"]])
    drop = frozenset({"event_id", "sdk", "server_name", "platform", "extra", "runtime"})
    shaped: dict[str, Any] = normalise(out, ids, mask_rand=True, drop=drop)
    return shaped


@pytest.mark.parametrize(
    ("style", "options", "transactions"),
    [
        ("url", {"traces_sample_rate": 1.0, "send_default_pii": True}, 2),
        ("endpoint", {}, 0),  # errors only, no PII: the defaults
    ],
)
def test_same_event_and_transaction_shape_as_sentry_sdk(
    tmp_path: Path, style: str, options: dict[str, Any], transactions: int
) -> None:
    script = f"STYLE = {style!r}\nOPTIONS = {options!r}\n" + SCENARIO
    sentry, ours = run_both(script, tmp_path)
    expected, found = _shape(sentry), _shape(ours)
    assert found["events"] == expected["events"]
    assert len(found["events"]) == 1
    assert found["transactions"] == expected["transactions"]
    assert found["sessions"] == expected["sessions"]
    assert len(found["transactions"]) == transactions
    # The template's meta tags: the same trace as its transaction, from both SDKs.
    for run in (sentry, ours):
        (meta,) = run["notes"]
        assert meta.startswith('<meta name="sentry-trace" content="')


def test_inside_a_users_wsgi_middleware_flask_still_adds_its_part(app: flask.Flask) -> None:
    from werkzeug.test import Client

    from tripwire.integrations.wsgi import SentryWsgiMiddleware

    @app.route("/submit", methods=["POST"])
    def submit() -> str:
        raise ValueError("bad input")

    memory = init(traces_sample_rate=1.0)
    # The user's middleware outside Flask: it serves the request, Flask's call passes.
    Client(SentryWsgiMiddleware(app)).post("/submit", json={"sku": "a1"})
    # ... and inside (around wsgi_app): Flask's call serves, the middleware passes.
    app.wsgi_app = SentryWsgiMiddleware(app.wsgi_app)  # type: ignore[method-assign]
    app.test_client().post("/submit", json={"sku": "b2"})
    outside, inside = memory.events
    assert outside["request"]["data"] == {"sku": "a1"}
    assert inside["request"]["data"] == {"sku": "b2"}
    assert outside["transaction"] == inside["transaction"] == "submit"
    # One transaction per request, from whichever wrapper came first.
    origins = [t["contexts"]["trace"]["origin"] for t in memory.transactions]
    assert origins == ["manual", "auto.http.flask"]


def test_behind_proxy_fix_the_request_is_reported_as_it_arrived(app: flask.Flask) -> None:
    # werkzeug's ProxyFix rewrites the environ under Flask's patched __call__; as
    # sentry_sdk, the request is reported as it reached Flask (or the user's middleware
    # outside it, under that middleware's `use_x_forwarded_for`).
    from werkzeug.middleware.proxy_fix import ProxyFix
    from werkzeug.test import Client

    from tripwire.integrations.wsgi import SentryWsgiMiddleware

    headers = {
        "X-Forwarded-For": "9.9.9.9",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "public.example.com",
        "X-Forwarded-Prefix": "/app",
    }
    environ = {"REMOTE_ADDR": "10.0.0.1"}
    app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
        app.wsgi_app, x_for=1, x_proto=1, x_host=1, x_port=1, x_prefix=1
    )
    memory = init(send_default_pii=True, traces_sample_rate=1.0)
    app.test_client().get("/boom?a=1", headers=headers, environ_base=environ)
    Client(SentryWsgiMiddleware(app)).get("/boom?a=1", headers=headers, environ_base=environ)
    forwarded = SentryWsgiMiddleware(app, use_x_forwarded_for=True)
    Client(forwarded).get("/boom?a=1", headers=headers, environ_base=environ)
    urls = [
        "http://localhost/boom",
        "http://localhost/boom",
        "https://public.example.com/boom",
    ]
    for events in (memory.events, memory.transactions):
        assert [event["request"]["url"] for event in events] == urls
        for event in events:
            request = event["request"]
            assert request["env"] == {
                "SERVER_NAME": "localhost",
                "SERVER_PORT": "80",
                "REMOTE_ADDR": "10.0.0.1",
            }
            assert request["headers"]["Host"] == "localhost"
            assert request["query_string"] == "a=1"
            assert event["user"]["ip_address"] == "9.9.9.9"
