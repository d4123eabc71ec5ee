"""AWS Lambda, Google Cloud Functions and Chalice under span streaming, against sentry_sdk.

The functions run as their integration tests run them (the real Lambda runtime
interface client against a loopback Runtime API; the Cloud Functions worker's shape
behind Flask; Chalice's local test client), with ``trace_lifecycle="stream"``, on
sentry_sdk 2.75 and on tripwire (``import sentry_sdk`` aliased): each invocation is a
segment with the same name, status and attributes (``cloud.*``, ``faas.*``,
``aws.*``, the request's headers, method and, with `send_default_pii`, its query).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import test_integration_aws_lambda as lambda_tests
import test_integration_gcp as gcp_tests
from _receiver import Receiver
from _side_by_side import run_both
from fakes.lambda_runtime import LambdaRuntime, serving

# Differ between the SDKs (name, version, integrations), between runs, or with argv.
_VOLATILE = {
    "sentry.sdk.name",
    "sentry.sdk.version",
    "sentry.sdk.integrations",
    "sentry.segment.id",
    "thread.id",
    "thread.name",
    "process.pid",
    "process.command_args",
    "server.address",
    "faas.invocation_id",
    "http.request.header.host",  # the function's loopback port
}
_INCOMING_PARENT = "1234567890abcdef"


def _shape(span: dict[str, Any]) -> str:
    parent = span.get("parent_span_id")
    return json.dumps(
        {
            "name": span["name"],
            "status": span["status"],
            "is_segment": span["is_segment"],
            "parent": "<incoming>" if parent == _INCOMING_PARENT else parent is not None,
            "attributes": {
                key: found["value"]
                for key, found in span["attributes"].items()
                if key not in _VOLATILE
            },
        },
        sort_keys=True,
    )


def _received_spans(rx: Receiver, start: int) -> list[dict[str, Any]]:
    return [
        span
        for request in rx.requests[start:]
        for item in request.envelope.items
        if item.type == "span"
        for span in json.loads(item.get_bytes())["items"]
    ]


def _wait_for_spans(rx: Receiver, start: int, count: int) -> list[str]:
    """The shapes of the first `count` spans received after request `start` (sorted)."""
    deadline = time.monotonic() + 30
    while len(_received_spans(rx, start)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    spans = _received_spans(rx, start)
    assert len(spans) >= count, spans
    return sorted(_shape(span) for span in spans)


# -- AWS Lambda -------------------------------------------------------------------------

_STREAMING = 'trace_lifecycle="stream", send_default_pii=bool(os.environ.get("TEST_PII")),'


@pytest.fixture(scope="module")
def runtime() -> Iterator[LambdaRuntime]:
    with serving() as found:
        yield found


def test_aws_lambda_segments_match_sentry_sdk(
    tmp_path: Path, runtime: LambdaRuntime, rx: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = lambda_tests.APP.replace(
        "traces_sample_rate=1.0,", "traces_sample_rate=1.0," + _STREAMING
    )
    assert app != lambda_tests.APP
    monkeypatch.setattr(lambda_tests, "APP", app)
    gateway = {
        "httpMethod": "GET",
        "path": "/p",
        "headers": {
            "Host": "h.example",
            "Cookie": "a=b",
            "X-Custom": "c",
            "sentry-trace": "771a43a4192642f0b136d5159a501700-1234567890abcdef-1",
        },
        "queryStringParameters": {"q": "1", "token": "t"},
    }
    events = [{"action": "ok"}, {"action": "fail"}, gateway, [{"action": "ok"}, {"action": "ok"}]]
    shapes = {}
    for sdk in ("sentry", "tripwire"):
        found = []
        for pii in ("", "1"):
            start = len(rx.requests)
            runtime.results.clear()
            process = lambda_tests.start_function(sdk, tmp_path, runtime, rx.dsn(), TEST_PII=pii)
            try:
                for event in events:
                    runtime.invoke(event, 30_000)
                runtime.wait_results(len(events), timeout=60)
                found += _wait_for_spans(rx, start, len(events))
            finally:
                lambda_tests.stop(process, runtime)
        shapes[sdk] = found
    assert shapes["tripwire"] == shapes["sentry"]
    segments = [json.loads(shape) for shape in shapes["tripwire"]]
    assert len(segments) == 8
    failed = [s for s in segments if s["status"] == "error"]
    assert len(failed) == 2
    (gateway_pii,) = [s for s in segments if s["attributes"].get("url.query")]
    assert gateway_pii["parent"] == "<incoming>"
    assert gateway_pii["attributes"]["url.query"] == "q=1&token=t"
    assert gateway_pii["attributes"]["cloud.platform"] == "aws_lambda"
    batch = [s for s in segments if s["attributes"]["messaging.batch.message_count"] == 2]
    assert len(batch) == 2


# -- Google Cloud Functions ---------------------------------------------------------------


def test_gcp_segments_match_sentry_sdk(
    tmp_path: Path, rx: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The function flushes before its segment ends: a last call, unsampled, sends the
    # segment before it and leaves nothing to send when the process is killed.
    runtime = gcp_tests.RUNTIME.replace(
        "traces_sample_rate=1.0,",
        'traces_sampler=lambda context: float(context["gcp_event"].path != "/last"),'
        ' trace_lifecycle="stream", send_client_reports=False,',
    )
    assert runtime != gcp_tests.RUNTIME
    monkeypatch.setattr(gcp_tests, "RUNTIME", runtime)
    trace = "771a43a4192642f0b136d5159a501700-1234567890abcdef-1"
    shapes = {}
    for sdk in ("sentry", "tripwire"):
        found = []
        for pii in (False, True):
            start = len(rx.requests)
            with gcp_tests.function_process(sdk, tmp_path, rx.dsn(), pii=pii) as url:
                headers = {"Cookie": "c=1", "X-Custom": "v", "sentry-trace": trace}
                assert gcp_tests.call(url + "/ok?a=1&secret=s", headers) == 200
                assert gcp_tests.call(url + "/fail", data=b"body") == 500
                assert gcp_tests.call(url + "/last") == 200
                found += _wait_for_spans(rx, start, 2)
        shapes[sdk] = found
    assert shapes["tripwire"] == shapes["sentry"]
    segments = [json.loads(shape) for shape in shapes["tripwire"]]
    assert len(segments) == 4  # /ok and /fail, without and with PII; /last unsampled
    ok = [s for s in segments if s["status"] == "ok"]
    assert {s["attributes"].get("url.query") for s in ok} == {None, "a=1&secret=s"}
    assert all(s["attributes"]["faas.name"] == "resize" for s in segments)
    assert all(s["attributes"]["gcp.project.id"] == "shop" for s in segments)


# -- Chalice ----------------------------------------------------------------------------------

CHALICE_SCRIPT = """
import warnings

warnings.simplefilter("ignore")
from chalice.app import BadRequestError, Chalice
from chalice.test import Client

import sentry_sdk.traces
from sentry_sdk.integrations.chalice import ChaliceIntegration

sentry_sdk.init(
    transport=KEEP,
    release="r1",
    traces_sample_rate=1.0,
    trace_lifecycle="stream",
    default_integrations=False,
    integrations=[ChaliceIntegration()],
)
app = Chalice(app_name="shop")
app.log.disabled = True


@app.route("/boom/{n}")
def boom(n):
    raise ValueError("no " + n)


@app.route("/bad")
def bad():
    raise BadRequestError("bad")


@app.route("/ok")
def ok():
    return {"ok": 1}


with Client(app) as client:
    # Under Lambda the AWS Lambda integration's segment is current: Chalice marks it.
    for path in ("/boom/3", "/bad", "/ok"):
        with sentry_sdk.traces.start_span(name="invocation " + path):
            client.http.get(path, headers={"Authorization": "x", "X-Custom": "c"})
    client.http.get("/ok")  # outside a segment: no span
finish()
"""


def test_chalice_marks_the_invocation_segment_as_sentry_sdk(tmp_path: Path) -> None:
    theirs, ours = run_both(CHALICE_SCRIPT, tmp_path)

    def spans(found: dict[str, Any]) -> list[str]:
        return sorted(
            _shape(span)
            for item in found["items"]
            if item["type"] == "span"
            for span in item["payload"]["items"]
        )

    assert spans(ours) == spans(theirs)
    segments = {s["name"]: s for s in map(json.loads, spans(ours))}
    assert set(segments) == {"invocation /boom/3", "invocation /bad", "invocation /ok"}
    boom = segments["invocation /boom/3"]
    assert boom["status"] == "error"
    assert boom["attributes"]["sentry.origin"] == "auto.function.chalice"
    assert boom["attributes"]["http.request.header.authorization"] == "[Filtered]"
    assert segments["invocation /bad"]["status"] == "ok"  # an answer the view chose


# -- attributes at start: what traces_sampler and ignore_spans see -----------------------------

# sentry_sdk starts the invocation's segment with its attributes: the sampler reads them
# from ``transaction_context["data"]``, and `ignore_spans` rules on them match.
_LAMBDA_START = (
    "traces_sampler=lambda context: float("
    '"faas.name" in context["transaction_context"]["data"]'
    ' and context["transaction_context"]["data"].get("messaging.batch.message_count") == 1),'
    ' ignore_spans=[{"attributes": {"http.request.method": "DELETE", "cloud.provider": "aws"}}],'
    ' trace_lifecycle="stream", send_client_reports=False,'
)


def test_aws_lambda_start_attributes_reach_sampler_and_ignore_spans_as_sentry_sdk(
    tmp_path: Path, runtime: LambdaRuntime, rx: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = lambda_tests.APP.replace("traces_sample_rate=1.0,", _LAMBDA_START)
    assert app != lambda_tests.APP
    monkeypatch.setattr(lambda_tests, "APP", app)
    deleted = {"httpMethod": "DELETE", "path": "/p", "headers": {"X-Custom": "c"}}
    batch = [{"action": "ok"}, {"action": "ok"}]
    events = [{"action": "ok"}, batch, deleted, {"action": "fail"}]
    shapes = {}
    for sdk in ("sentry", "tripwire"):
        start = len(rx.requests)
        runtime.results.clear()
        process = lambda_tests.start_function(sdk, tmp_path, runtime, rx.dsn())
        try:
            for event in events:
                runtime.invoke(event, 30_000)
            runtime.wait_results(len(events), timeout=60)
            shapes[sdk] = _wait_for_spans(rx, start, 2)
        finally:
            lambda_tests.stop(process, runtime)
    assert shapes["tripwire"] == shapes["sentry"]
    # The batch was sampled out by its start attributes, the DELETE ignored by them.
    segments = [json.loads(shape) for shape in shapes["tripwire"]]
    assert sorted(s["status"] for s in segments) == ["error", "ok"]
    assert all(s["attributes"]["messaging.batch.message_count"] == 1 for s in segments)
    assert all("http.request.method" not in s["attributes"] for s in segments)


def test_gcp_start_attributes_reach_sampler_and_ignore_spans_as_sentry_sdk(
    tmp_path: Path, rx: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = gcp_tests.RUNTIME.replace(
        "traces_sample_rate=1.0,",
        "traces_sampler=lambda context: float("
        'context["transaction_context"]["data"].get("faas.name") == "resize"'
        ' and context["transaction_context"]["data"].get("http.request.method") == "GET"'
        ' and context["gcp_event"].path != "/last"),'
        ' ignore_spans=[{"attributes": {"http.request.header.x-skip": "1"}}],'
        ' trace_lifecycle="stream", send_client_reports=False,',
    )
    assert runtime != gcp_tests.RUNTIME
    monkeypatch.setattr(gcp_tests, "RUNTIME", runtime)
    shapes = {}
    for sdk in ("sentry", "tripwire"):
        start = len(rx.requests)
        with gcp_tests.function_process(sdk, tmp_path, rx.dsn()) as url:
            assert gcp_tests.call(url + "/ok") == 200
            assert gcp_tests.call(url + "/skipped", {"X-Skip": "1"}) == 200
            assert gcp_tests.call(url + "/posted", data=b"body") == 200
            # Unsampled: its flush sends what the calls before it left.
            assert gcp_tests.call(url + "/last") == 200
            shapes[sdk] = _wait_for_spans(rx, start, 1)
    assert shapes["tripwire"] == shapes["sentry"]
    (segment,) = [json.loads(shape) for shape in shapes["tripwire"]]
    assert segment["attributes"]["http.request.method"] == "GET"
    assert "http.request.header.x-skip" not in segment["attributes"]
