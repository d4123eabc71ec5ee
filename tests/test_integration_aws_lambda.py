"""AwsLambdaIntegration inside the real Lambda runtime interface client.

AWS itself cannot run here. The function runs as in a Lambda container: ``python -m
awslambdaric app.handler`` (AWS's own runtime interface client, whose ``bootstrap``
module the integration patches) polls a loopback Runtime API (`fakes.lambda_runtime`,
the Runtime Interface Emulator's HTTP protocol) for events and posts each result or
error back; the SDK sends its envelopes over HTTP to a loopback receiver (`rx`). The
same function runs on sentry_sdk 2.75 and on tripwire (``import sentry_sdk`` aliased)
for the differential test.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _receiver import Receiver
from fakes.lambda_runtime import ARN, LambdaRuntime, serving

pytest.importorskip("awslambdaric", reason="awslambdaric (the runtime interface client)")

APP = """
import os
import threading

if os.environ["TEST_SDK"] == "tripwire":
    import tripwire.alias

    tripwire.alias.install()

import sentry_sdk
from sentry_sdk.integrations.aws_lambda import AwsLambdaIntegration

sentry_sdk.init(
    dsn=os.environ["TEST_DSN"],
    traces_sample_rate=1.0,
    release="r1",
    environment="test",
    default_integrations=False,
    integrations=[AwsLambdaIntegration(timeout_warning=True)],
)
if os.environ.get("TEST_INIT_ERROR"):
    raise RuntimeError("cannot start")


def handler(event, context):
    sentry_sdk.add_breadcrumb(message="handling", category="app")
    action = event.get("action") if isinstance(event, dict) else None
    if action == "fail":
        raise ValueError("boom")
    if action == "slow":
        # As a function stuck until its timeout: the warning's thread ends once it
        # has reported, then the function returns.
        for thread in threading.enumerate():
            if isinstance(thread, sentry_sdk.utils.TimeoutThread):
                thread.join(30)
        return {"slow": True}
    return {"ok": True}
"""


@pytest.fixture(scope="session")
def runtime_api() -> Iterator[LambdaRuntime]:
    with serving() as runtime:
        yield runtime


@pytest.fixture
def runtime(runtime_api: LambdaRuntime) -> LambdaRuntime:
    runtime_api.results.clear()
    runtime_api.on_result = None
    return runtime_api


def start_function(
    sdk: str, tmp_path: Path, runtime: LambdaRuntime, dsn: str, **env: str
) -> subprocess.Popen[bytes]:
    (tmp_path / "app.py").write_text(textwrap.dedent(APP))
    environ = {
        **os.environ,
        "AWS_LAMBDA_RUNTIME_API": runtime.address,
        "AWS_LAMBDA_FUNCTION_NAME": "checkout",
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128",
        "AWS_LAMBDA_LOG_GROUP_NAME": "/aws/lambda/checkout",
        "AWS_LAMBDA_LOG_STREAM_NAME": "2026/12/07/[$LATEST]abc",
        "AWS_REGION": "eu-central-1",
        "TEST_SDK": sdk,
        "TEST_DSN": dsn,
        **env,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "awslambdaric", "app.handler"],
        cwd=tmp_path,
        env=environ,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop(process: subprocess.Popen[bytes], runtime: LambdaRuntime) -> None:
    process.kill()  # a Lambda runtime never exits by itself: it waits for the next event
    process.wait(timeout=30)
    runtime.release()


def run_invocations(
    sdk: str, tmp_path: Path, runtime: LambdaRuntime, rx: Receiver, events: list[tuple[Any, int]]
) -> tuple[list[tuple[str, str, Any]], list[int]]:
    """Invoke the function with each (event, timeout ms); the results, and how many
    envelopes had reached `rx` when each result was posted."""
    seen_at_result: list[int] = []
    runtime.on_result = lambda _id, _kind: seen_at_result.append(len(rx.requests))
    process = start_function(sdk, tmp_path, runtime, rx.dsn())
    try:
        for event, timeout_ms in events:
            runtime.invoke(event, timeout_ms)
        results = runtime.wait_results(len(events), timeout=60)
    finally:
        stop(process, runtime)
    return results, seen_at_result


def test_a_transaction_per_invocation_errors_and_a_flush_before_each_result(
    tmp_path: Path, runtime: LambdaRuntime, rx: Receiver
) -> None:
    gateway = {
        "httpMethod": "POST",
        "path": "/orders",
        "headers": {
            "Host": "api.example.com",
            "X-Forwarded-Proto": "https",
            "Authorization": "secret",
            "sentry-trace": "771a43a4192642f0b136d5159a501700-1234567890abcdef-1",
        },
        "queryStringParameters": {"page": "2"},
        "body": '{"card": "4111"}',
    }
    results, seen = run_invocations(
        "tripwire", tmp_path, runtime, rx, [({"action": "ok"}, 30_000), (gateway, 30_000)]
    )
    assert [(kind, payload) for _, kind, payload in results] == [
        ("response", {"ok": True}),
        ("response", {"ok": True}),
    ]
    # Flushed before the result was posted: each invocation's transaction had arrived.
    assert seen == [1, 2]
    first, second = (item.payload.json for item in rx.items("transaction"))
    for transaction in (first, second):
        assert transaction["transaction"] == "checkout"
        assert transaction["transaction_info"] == {"source": "component"}
        trace = transaction["contexts"]["trace"]
        assert (trace["op"], trace["origin"]) == ("function.aws", "auto.function.aws_lambda")
        assert transaction["tags"]["aws_region"] == "eu-central-1"
        assert transaction["extra"]["lambda"]["function_name"] == "checkout"
        assert transaction["extra"]["lambda"]["invoked_function_arn"] == ARN
        assert transaction["extra"]["cloudwatch logs"]["log_group"] == "/aws/lambda/checkout"
        assert transaction["extra"]["cloudwatch logs"]["url"].startswith(
            "https://console.aws.amazon.com/cloudwatch/home?region=eu-central-1#"
        )
    assert first["request"] == {"url": "awslambda:///checkout"}
    # The gateway request continued the caller's trace.
    assert second["contexts"]["trace"]["trace_id"] == "771a43a4192642f0b136d5159a501700"
    assert second["contexts"]["trace"]["parent_span_id"] == "1234567890abcdef"
    request = second["request"]
    assert (request["method"], request["url"]) == ("POST", "https://api.example.com/orders")
    assert request["query_string"] == {"page": "2"}
    assert request["headers"]["Authorization"] == "[Filtered]"  # the event scrubber
    assert request["data"] == ""  # a raw body is left out without send_default_pii
    # (As a number of its own: a thread id may contain the digits.)
    assert re.search(r"(?<!\d)4111(?!\d)", str(second)) is None


def test_an_error_is_captured_unhandled_and_the_runtime_gets_it(
    tmp_path: Path, runtime: LambdaRuntime, rx: Receiver
) -> None:
    results, seen = run_invocations(
        "tripwire", tmp_path, runtime, rx, [({"action": "fail"}, 30_000)]
    )
    ((_, kind, payload),) = results
    assert kind == "error"
    assert (payload["errorType"], payload["errorMessage"]) == ("ValueError", "boom")
    assert seen == [2]  # the event and the transaction arrived before the error was posted
    (event,) = rx.events()
    (exception,) = event["exception"]["values"]
    assert (exception["type"], exception["value"]) == ("ValueError", "boom")
    assert exception["mechanism"] == {"type": "aws_lambda", "handled": False}
    assert event["transaction"] == "checkout"
    assert event["extra"]["lambda"]["aws_request_id"] == results[0][0]
    (transaction,) = (item.payload.json for item in rx.items("transaction"))
    assert transaction["contexts"]["trace"]["status"] == "internal_error"


def test_timeout_warning(tmp_path: Path, runtime: LambdaRuntime, rx: Receiver) -> None:
    # 2.5 s before the deadline: the warning is due 1.5 s before it, after ~1 s.
    results, _ = run_invocations("tripwire", tmp_path, runtime, rx, [({"action": "slow"}, 2_500)])
    assert [kind for _, kind, _ in results] == ["response"]
    (event,) = rx.events()
    (exception,) = event["exception"]["values"]
    assert exception["type"] == "ServerlessTimeoutWarning"
    assert exception["value"] == (
        "WARNING : Function is expected to get timed out. Configured timeout duration = 3 seconds."
    )
    assert exception["mechanism"] == {"type": "threading", "handled": False}
    assert event["tags"]["aws_region"] == "eu-central-1"
    assert event["extra"]["lambda"]["function_name"] == "checkout"


def test_an_initialisation_error_is_reported(
    tmp_path: Path, runtime: LambdaRuntime, rx: Receiver
) -> None:
    process = start_function("tripwire", tmp_path, runtime, rx.dsn(), TEST_INIT_ERROR="1")
    try:
        ((request_id, kind, payload),) = runtime.wait_results(1, timeout=60)
        assert process.wait(timeout=30) == 1  # the runtime exits after reporting
    finally:
        if process.poll() is None:
            stop(process, runtime)
    assert (request_id, kind) == ("init", "error")
    assert payload["errorType"] == "RuntimeError"
    (request,) = rx.wait_for(1)
    (event,) = [item.payload.json for item in request.envelope.items if item.type == "event"]
    (exception,) = event["exception"]["values"]
    assert (exception["type"], exception["value"]) == ("RuntimeError", "cannot start")
    assert exception["mechanism"] == {"type": "aws_lambda", "handled": False}
    assert any(frame["filename"].endswith("app.py") for frame in exception["stacktrace"]["frames"])


def _shape(rx: Receiver, start: int) -> list[dict[str, Any]]:
    """What both SDKs must agree on, per envelope item (no ids, times, SDK facts)."""
    out = []
    for request in rx.requests[start:]:
        for item in request.envelope.items:
            body = item.payload.json
            if item.type not in ("event", "transaction"):
                continue
            lam = dict(body["extra"]["lambda"])
            for volatile in (
                "aws_request_id",
                "execution_duration_in_millis",
                "remaining_time_in_millis",
            ):
                lam.pop(volatile)
            logs = dict(body["extra"]["cloudwatch logs"])
            logs["url"] = logs["url"].split(";start=")[0]
            trace = body["contexts"]["trace"]
            exception = [
                {k: e.get(k) for k in ("type", "value", "mechanism")}
                for e in (body.get("exception") or {}).get("values", [])
            ]
            out.append(
                {
                    "type": item.type,
                    "transaction": body.get("transaction"),
                    "transaction_info": body.get("transaction_info"),
                    "op": trace.get("op"),
                    "origin": trace.get("origin"),
                    "status": trace.get("status"),
                    "tags": {k: str(v) for k, v in (body.get("tags") or {}).items()},
                    "lambda": lam,
                    "logs": logs,
                    "request": body.get("request"),
                    "user": body.get("user"),
                    "exception": exception,
                    "crumbs": [
                        c.get("message") for c in body.get("breadcrumbs", {}).get("values", [])
                    ],
                }
            )
    return sorted(
        out, key=lambda item: (item["type"], str(item["exception"]), str(item["request"]))
    )


def test_same_as_sentry_sdk(tmp_path: Path, runtime: LambdaRuntime, rx: Receiver) -> None:
    events: list[tuple[Any, int]] = [
        ({"action": "ok"}, 30_000),
        ({"action": "fail"}, 30_000),
        (
            {
                "httpMethod": "GET",
                "path": "/p",
                "headers": {"Host": "h.example", "X-Forwarded-Proto": "https", "Cookie": "a=b"},
                "queryStringParameters": {"q": "1"},
                "body": "raw",
            },
            30_000,
        ),
        ([{"action": "ok"}, {"action": "ok"}], 30_000),
        ({"action": "slow"}, 2_500),
    ]
    shapes = {}
    for sdk in ("sentry", "tripwire"):
        start = len(rx.requests)
        runtime.results.clear()
        run_invocations(sdk, tmp_path, runtime, rx, events)
        shapes[sdk] = _shape(rx, start)
    assert shapes["tripwire"] == shapes["sentry"]
    assert len(shapes["tripwire"]) == 7  # 5 transactions, the error, the timeout warning


def test_outside_lambda_set_up_warns_and_patches_nothing(caplog: pytest.LogCaptureFixture) -> None:
    import tripwire
    from tripwire.integrations import aws_lambda
    from tripwire.testing import MemoryTransport

    assert aws_lambda.get_lambda_bootstrap() is sys.modules["__main__"]  # no bootstrap here
    with caplog.at_level("WARNING", logger="tripwire"):
        tripwire.init(
            dsn="http://key@example.com/1",
            transport=MemoryTransport(),
            default_integrations=False,
            integrations=[aws_lambda.AwsLambdaIntegration()],
        )
    assert "Not running in AWS Lambda environment" in caplog.text
