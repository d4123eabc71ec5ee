"""ChaliceIntegration: a real Chalice application through Chalice's own test client.

`chalice.test.Client` invokes the application as Lambda does (an API Gateway event and
a Lambda context through Chalice's local gateway), so views and event handlers run
through the code paths the integration patches. The differential test runs one app
on sentry_sdk 2.75 and on tripwire, each in its own interpreter (both patch Chalice
for the process).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _receiver import Receiver
from _side_by_side import run_both

import tripwire
from tripwire.integrations.chalice import ChaliceIntegration
from tripwire.testing import MemoryTransport, reset

if TYPE_CHECKING:
    from chalice.app import BadRequestError, Chalice, RestAPIEventHandler
    from chalice.test import Client


@pytest.fixture(autouse=True, scope="module")
def _chalice() -> None:
    """Chalice is imported when the module's tests start, not at collection (every xdist
    worker collects every module; tests/_lazy.py)."""
    global BadRequestError, Chalice, RestAPIEventHandler, Client
    from chalice.app import BadRequestError, Chalice, RestAPIEventHandler
    from chalice.test import Client


DSN = "http://key@example.com/1"


def make_app() -> Chalice:
    app = Chalice(app_name="shop")
    app.log.disabled = True  # Chalice logs the view's traceback: not this test's output

    @app.route("/boom/{n}")
    def boom(n: str) -> None:
        tripwire.set_tag("n", n)
        raise ValueError("no " + n)

    @app.route("/bad")
    def bad() -> None:
        raise BadRequestError("bad")

    @app.route("/echo", methods=["POST"])
    def echo() -> dict[str, Any]:
        tripwire.capture_message("echo")
        return {"ok": 1}

    @app.on_sns_message(topic="t")
    def on_sns(event: Any) -> None:
        raise KeyError("sns")

    return app


def test_view_errors_reach_the_receiver_with_the_lambda_data(rx: Receiver) -> None:
    tripwire.init(
        dsn=rx.dsn(),
        release="r1",
        integrations=[ChaliceIntegration()],
        default_integrations=False,
    )
    with Client(make_app()) as client:
        response = client.http.get("/boom/3", headers={"Authorization": "secret"})
        assert response.status_code == 500
        # The view's error was flushed before Chalice answered.
        assert len(rx.events()) == 1
        assert client.http.get("/bad").status_code == 400  # the view's own answer
        assert client.http.post("/echo", body=b"{}").status_code == 200
    tripwire.flush()
    boom, echo = rx.events()
    (exception,) = boom["exception"]["values"]
    assert (exception["type"], exception["value"]) == ("ValueError", "no 3")
    assert exception["mechanism"] == {"type": "chalice", "handled": False}
    assert exception["stacktrace"]["frames"][-1]["function"] == "boom"
    assert boom["transaction"] == "api_handler"
    assert boom["transaction_info"] == {"source": "component"}
    assert boom["tags"] == {"n": "3"}
    assert boom["request"]["url"] == "awslambda:///api_handler"
    assert boom["request"]["headers"]["authorization"] == "[Filtered]"
    assert boom["extra"]["lambda"]["function_name"] == "api_handler"
    assert echo["message"] == "echo" and "tags" not in echo  # nothing leaked between views
    assert tripwire.get_isolation_scope()._tags == {}


def test_event_source_errors_are_reported_and_reraised() -> None:
    tripwire.get_client().close()
    memory = MemoryTransport()
    tripwire.init(
        dsn=DSN, transport=memory, integrations=[ChaliceIntegration()], default_integrations=False
    )
    with Client(make_app()) as client, pytest.raises(KeyError):
        client.lambda_.invoke("on_sns", client.events.generate_sns_event(message="hi"))
    (event,) = memory.events
    assert event["exception"]["values"][0]["mechanism"] == {"type": "chalice", "handled": False}
    assert event["extra"]["lambda"]["function_name"] == "on_sns"
    assert event["request"] == {"url": "awslambda:///on_sns"}


def test_inactive_without_the_integration_and_reset_undoes_the_patches() -> None:
    original = RestAPIEventHandler._get_view_function_response
    tripwire.init(dsn=DSN, integrations=[ChaliceIntegration()], default_integrations=False)
    assert RestAPIEventHandler._get_view_function_response is not original
    tripwire.get_client().close()
    memory = MemoryTransport()
    tripwire.init(dsn=DSN, transport=memory, default_integrations=False)
    with Client(make_app()) as client:
        assert client.http.get("/boom/1").status_code == 500
    tripwire.flush()
    assert memory.events == []
    reset()
    assert RestAPIEventHandler._get_view_function_response is original


_SCRIPT = """
import warnings

from chalice.app import BadRequestError, Chalice
from chalice.test import Client
from sentry_sdk.integrations.chalice import ChaliceIntegration

warnings.simplefilter("ignore", DeprecationWarning)  # send_default_pii
sentry_sdk.init(
    dsn="https://key@o1.ingest.sentry.io/1",
    transport=KEEP,
    release="r1",
    send_default_pii=True,
    default_integrations=False,
    integrations=[ChaliceIntegration()],
)
app = Chalice(app_name="shop")
app.log.disabled = True


@app.route("/boom/{n}")
def boom(n):
    sentry_sdk.set_tag("n", n)
    sentry_sdk.add_breadcrumb(message="before", category="test")
    raise ValueError("no " + n)


@app.route("/bad")
def bad():
    raise BadRequestError("bad")


@app.route("/echo", methods=["POST"])
def echo():
    sentry_sdk.capture_message("echo")
    return {"ok": 1}


@app.on_sns_message(topic="t")
def on_sns(event):
    raise KeyError("sns")


with Client(app) as client:
    NOTES.append(client.http.get("/boom/3", headers={"Authorization": "x"}).status_code)
    NOTES.append(client.http.get("/bad").status_code)
    json_headers = {"Content-Type": "application/json"}
    NOTES.append(client.http.post("/echo", headers=json_headers, body=b'{"a": 1}').status_code)
    try:
        client.lambda_.invoke("on_sns", client.events.generate_sns_event(message="hi"))
    except KeyError:
        NOTES.append("raised")
finish()
"""


def _shape(found: dict[str, Any]) -> list[Any]:
    text = re.sub(r" at 0x[0-9a-f]+", " at <addr>", json.dumps(found["items"]))
    out = []
    for item in json.loads(text):
        payload = item["payload"]
        for key in ("event_id", "sdk", "server_name", "timestamp", "contexts", "modules"):
            payload.pop(key, None)
        lam = payload["extra"]["lambda"]
        for key in ("aws_request_id", "execution_duration_in_millis", "remaining_time_in_millis"):
            lam[key] = "<varies>"
        payload["extra"]["cloudwatch logs"]["url"] = re.sub(
            r"start=.*", "", payload["extra"]["cloudwatch logs"]["url"]
        )
        for crumb in payload.get("breadcrumbs", {}).get("values", ()):
            crumb.pop("timestamp", None)
        for value in payload.get("exception", {}).get("values", ()):
            frames = value["stacktrace"]["frames"]
            value["stacktrace"]["frames"] = [(f["function"], f["in_app"]) for f in frames]
        out.append((item["type"], payload))
    return out


def test_same_as_sentry_sdk(tmp_path: Path) -> None:
    sentry, ours = run_both(_SCRIPT, tmp_path)
    assert sentry["notes"] == ours["notes"] == [500, 400, 200, "raised"]
    expected, found = _shape(sentry), _shape(ours)
    assert [kind for kind, _ in found] == ["event", "event", "event"]
    assert found == expected
