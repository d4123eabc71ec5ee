"""GcpIntegration in the shape of the Cloud Functions Python 3.7 runtime.

Google Cloud cannot run here, and the runtime sentry_sdk instruments (``worker_v1``
in ``__main__``) is no longer shipped (``functions-framework`` replaced it and has no
such hook). The function therefore runs in a process whose ``__main__`` holds
`fakes.gcf_worker` as ``worker_v1``: a real Flask app on 127.0.0.1 that calls the
function through ``FunctionHandler.invoke_user_function``, as that worker did. The
SDK sends its envelopes over HTTP to a loopback receiver (`rx`); the same function
runs on sentry_sdk 2.75 and on tripwire for the differential test.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Optional

import pytest
from _receiver import Receiver

FAKES = Path(__file__).resolve().parent / "fakes"

RUNTIME = """
import os
import sys
import threading

sys.path.insert(0, os.environ["TEST_FAKES"])
import gcf_worker as worker_v1  # the runtime's worker, in __main__ as in Python 3.7's

if os.environ["TEST_SDK"] == "tripwire":
    import tripwire.alias

    tripwire.alias.install()

import sentry_sdk
from sentry_sdk.integrations.gcp import GcpIntegration

sentry_sdk.init(
    dsn=os.environ["TEST_DSN"],
    traces_sample_rate=1.0,
    release="r1",
    default_integrations=False,
    integrations=[GcpIntegration(timeout_warning=True)],
    send_default_pii=bool(os.environ.get("TEST_PII")),
)


def function(request):
    sentry_sdk.add_breadcrumb(message="handling " + request.path, category="app")
    if request.path == "/fail":
        raise ValueError("boom")
    if request.path == "/slow":
        # As a function stuck until its timeout: the warning's thread ends once it
        # has reported, then the function returns.
        for thread in threading.enumerate():
            if isinstance(thread, sentry_sdk.utils.TimeoutThread):
                thread.join(30)
    return {"path": request.path}


worker_v1.serve(function)
"""


@contextmanager
def function_process(
    sdk: str, tmp_path: Path, dsn: str, timeout_sec: str = "30", pii: bool = False
) -> Iterator[str]:
    """The runtime serving the function; yields its URL."""
    script = tmp_path / "runtime.py"
    script.write_text(textwrap.dedent(RUNTIME))
    env = {
        **os.environ,
        "TEST_FAKES": str(FAKES),
        "TEST_SDK": sdk,
        "TEST_DSN": dsn,
        "FUNCTION_NAME": "resize",
        "ENTRY_POINT": "function",
        "FUNCTION_IDENTITY": "svc@example.iam.gserviceaccount.com",
        "FUNCTION_REGION": "europe-west1",
        "GCP_PROJECT": "shop",
        "FUNCTION_TIMEOUT_SEC": timeout_sec,
    }
    if pii:
        env["TEST_PII"] = "1"
    process = subprocess.Popen(
        [sys.executable, "-W", "ignore::DeprecationWarning", str(script)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()  # the port, once listening (EOF if it died)
        assert line.strip().isdigit(), f"the runtime did not start (exit {process.poll()})"
        yield f"http://127.0.0.1:{int(line)}"
    finally:
        process.kill()
        process.wait(timeout=30)
        if process.stdout is not None:
            process.stdout.close()


def call(url: str, headers: Optional[dict[str, str]] = None, data: Optional[bytes] = None) -> int:
    headers = dict(headers or {})
    if data is not None:  # Flask keeps a form-encoded body (urllib's default) as a form
        headers.setdefault("Content-Type", "text/plain")
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as error:
        error.close()
        return error.code


def payloads(rx: Receiver, kind: str) -> list[Any]:
    return [item.payload.json for item in rx.items(kind)]


def test_a_transaction_per_call_flushed_before_the_answer(tmp_path: Path, rx: Receiver) -> None:
    with function_process("tripwire", tmp_path, rx.dsn()) as url:
        trace = "771a43a4192642f0b136d5159a501700-1234567890abcdef-1"
        assert call(url + "/a?size=2", {"sentry-trace": trace, "Authorization": "x"}) == 200
        assert call(url + "/b", data=b"raw body") == 200
        # As sentry_sdk, the flush runs as the call ends, before its transaction does:
        # the transactions follow the answers.
        rx.wait_for(2)
    first, second = payloads(rx, "transaction")
    for transaction in (first, second):
        assert transaction["transaction"] == "resize"
        assert transaction["transaction_info"] == {"source": "component"}
        context = transaction["contexts"]["trace"]
        assert (context["op"], context["origin"]) == ("function.gcp", "auto.function.gcp")
        assert transaction["tags"]["gcp_region"] == "europe-west1"
        gcf = transaction["extra"]["google cloud functions"]
        assert gcf["function_name"] == "resize"
        assert gcf["function_project"] == "shop"
        assert gcf["configured_timeout_in_seconds"] == 30
        assert transaction["extra"]["google cloud logs"]["url"].startswith(
            "https://console.cloud.google.com/logs/viewer?project=shop&resource=cloud_function"
        )
    assert first["contexts"]["trace"]["trace_id"] == "771a43a4192642f0b136d5159a501700"
    assert first["contexts"]["trace"]["parent_span_id"] == "1234567890abcdef"
    request = first["request"]
    assert (request["url"], request["method"]) == ("gcp:///resize", "GET")
    assert request["query_string"] == "size=2"
    assert request["headers"]["Authorization"] == "[Filtered]"
    assert second["request"]["data"] == ""  # a raw body only with send_default_pii
    assert second["request"]["method"] == "POST"


def test_an_error_is_captured_unhandled(tmp_path: Path, rx: Receiver) -> None:
    with function_process("tripwire", tmp_path, rx.dsn(), pii=True) as url:
        assert call(url + "/fail", data=b"payload") == 500
        # Flushed before the answer: the error had arrived.
        assert [item.type for item in rx.requests[0].envelope.items] == ["event"]
        rx.wait_for(2)
    (event,) = payloads(rx, "event")
    (exception,) = event["exception"]["values"]
    assert (exception["type"], exception["value"]) == ("ValueError", "boom")
    assert exception["mechanism"] == {"type": "gcp", "handled": False}
    assert event["transaction"] == "resize"
    assert event["request"]["data"] == "payload"
    assert [c["message"] for c in event["breadcrumbs"]["values"]] == ["handling /fail"]
    (transaction,) = payloads(rx, "transaction")
    assert transaction["contexts"]["trace"]["status"] == "internal_error"


def test_timeout_warning(tmp_path: Path, rx: Receiver) -> None:
    # A 2 s timeout: the warning is due 1.5 s before it.
    with function_process("tripwire", tmp_path, rx.dsn(), timeout_sec="2") as url:
        assert call(url + "/slow") == 200
        rx.wait_for(2)
    (event,) = payloads(rx, "event")
    (exception,) = event["exception"]["values"]
    assert exception["type"] == "ServerlessTimeoutWarning"
    assert exception["value"].endswith("Configured timeout duration = 2 seconds.")
    assert exception["mechanism"] == {"type": "threading", "handled": False}
    assert event["tags"]["gcp_region"] == "europe-west1"


def _shape(rx: Receiver, start: int) -> list[dict[str, Any]]:
    out = []
    for request in rx.requests[start:]:
        for item in request.envelope.items:
            if item.type not in ("event", "transaction"):
                continue
            body = item.payload.json
            gcf = dict(body["extra"]["google cloud functions"])
            gcf.pop("execution_duration_in_millis")
            trace = body["contexts"]["trace"]
            out.append(
                {
                    "type": item.type,
                    "transaction": body.get("transaction"),
                    "transaction_info": body.get("transaction_info"),
                    "op": trace.get("op"),
                    "origin": trace.get("origin"),
                    "status": trace.get("status"),
                    "tags": {k: str(v) for k, v in (body.get("tags") or {}).items()},
                    "gcf": gcf,
                    "logs": body["extra"]["google cloud logs"]["url"].split("&timestamp=")[0],
                    "request": {k: v for k, v in body.get("request", {}).items() if k != "headers"},
                    "headers": sorted(
                        (k, v)
                        for k, v in body.get("request", {}).get("headers", {}).items()
                        if k not in ("Host", "User-Agent")
                    ),
                    "exception": [
                        {k: e.get(k) for k in ("type", "value", "mechanism")}
                        for e in (body.get("exception") or {}).get("values", [])
                    ],
                    "crumbs": [
                        c.get("message") for c in body.get("breadcrumbs", {}).get("values", [])
                    ],
                }
            )
    return sorted(out, key=json.dumps)


@pytest.mark.parametrize("pii", [False, True])
def test_same_as_sentry_sdk(tmp_path: Path, rx: Receiver, pii: bool) -> None:
    shapes = {}
    for sdk in ("sentry", "tripwire"):
        start = len(rx.requests)
        with function_process(sdk, tmp_path, rx.dsn(), timeout_sec="2", pii=pii) as url:
            assert call(url + "/ok?a=1", {"Cookie": "c=1", "X-Custom": "v"}) == 200
            assert call(url + "/fail", data=b"body") == 500
            assert call(url + "/slow") == 200
            rx.wait_for(start + 5)
        shapes[sdk] = _shape(rx, start)
    if pii:
        # sentry_sdk 2.75 loses the `request` part of an event made while the function
        # runs with send_default_pii (its event processor fails deep-copying the
        # request's headers object); tripwire sends it (see the error test above).
        for shape in shapes["sentry"] + shapes["tripwire"]:
            del shape["request"], shape["headers"]
        shapes = {sdk: sorted(found, key=json.dumps) for sdk, found in shapes.items()}
    assert shapes["tripwire"] == shapes["sentry"]
    assert len(shapes["tripwire"]) == 5  # 3 transactions, the error, the timeout warning


def test_outside_the_gcp_runtime_set_up_warns(caplog: pytest.LogCaptureFixture) -> None:
    import tripwire
    from tripwire.integrations.gcp import GcpIntegration
    from tripwire.testing import MemoryTransport

    with caplog.at_level("WARNING", logger="tripwire"):
        tripwire.init(
            dsn="http://key@example.com/1",
            transport=MemoryTransport(),
            default_integrations=False,
            integrations=[GcpIntegration()],
        )
    assert "supports only Python 3.7 runtime" in caplog.text
