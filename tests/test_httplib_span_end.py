"""When the http.client span ends, side by side with sentry-sdk 2.75, in both tracing modes.

sentry_sdk 2.75 does not end the span at `getresponse()` when the answer announces a
body (a length above 0, or chunked): it ends once `read()` has read the body (a
partial `read(n)` leaves it open), or when the response is closed (also by garbage
collection); `readinto` and `readline` do not end it. An answer without a body (204,
HEAD) ends it at `getresponse()`. tripwire does the same. What shows it:

- transaction mode: a span still open when its transaction finishes is left out of the
  transaction, so each case ends its transaction before or after reading;
- span streaming: the span is the current one until it ends, so a span started between
  `getresponse()` and the read is its child (inside a boto3 call both SDKs keep it
  inactive instead: test_streaming_outgoing.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from _side_by_side import dumps, run_both

SCRIPT = r"""
import http.client
import http.server
import threading
import urllib.request

import requests
from sentry_sdk import traces
from sentry_sdk.integrations.stdlib import StdlibIntegration


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        if self.path == "/empty":
            self.send_response(204)
            self.end_headers()
        elif self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            self.wfile.write(b"5\r\nhello\r\n0\r\n\r\n")
        else:
            self.send_response(200)
            self.send_header("Content-Length", "50")
            self.end_headers()
            self.wfile.write(b"x" * 50)

    do_HEAD = do_GET

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
thread = threading.Thread(target=server.serve_forever)
thread.start()
port = server.server_address[1]
STREAM = LIFECYCLE == "stream"


def get(path, method="GET"):
    connection = http.client.HTTPConnection("127.0.0.1", port)
    connection.request(method, path)
    return connection.getresponse()


def outer(name):
    if STREAM:
        return traces.start_span(name=name)
    return sentry_sdk.start_transaction(name=name)


def probe(name):
    # Under streaming: the current span's child (the http.client span's while open).
    if STREAM:
        with traces.start_span(name="probe " + name):
            pass


try:
    sentry_sdk.init(
        transport=KEEP,
        default_integrations=False,
        integrations=[StdlibIntegration()],
        traces_sample_rate=1.0,
        trace_lifecycle=LIFECYCLE,
    )
    with outer("read"):
        response = get("/body")
        probe("before read")
        response.read()
        probe("after read")
    with outer("read after the end"):
        response = get("/body")
    response.read()
    with outer("partial read"):
        response = get("/body")
        response.read(10)
        probe("after partial read")
    response.read()
    with outer("close"):
        response = get("/body")
        probe("before close")
        response.close()
        probe("after close")
    with outer("no body"):
        response = get("/empty")
        probe("no body")
    response.close()
    with outer("head"):
        response = get("/body", "HEAD")
        probe("head")
    response.close()
    with outer("chunked"):
        response = get("/chunked")
        probe("before chunked read")
        response.read()
        probe("after chunked read")
    with outer("urllib"):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/body") as answer:
            probe("urllib before read")
            answer.read()
        probe("urllib after")
    with outer("requests"):
        requests.get(f"http://127.0.0.1:{port}/body")
        probe("requests")
    with outer("readinto"):
        response = get("/body")
        response.readinto(bytearray(50))
        probe("after readinto")
    response.close()
    with outer("readline"):
        response = get("/body")
        response.readline()
        probe("after readline")
    response.close()
finally:
    server.shutdown()
    server.server_close()
    thread.join()
finish()
"""

_PORT = re.compile(r":\d+/")


def _transactions(found: dict[str, Any]) -> dict[str, int]:
    """Transaction-mode: the http.client spans each transaction kept."""
    return {
        item["payload"]["transaction"]: sum(
            span.get("op") == "http.client" for span in item["payload"]["spans"]
        )
        for item in found["items"]
        if item["type"] == "transaction"
    }


def _probes(found: dict[str, Any]) -> dict[str, str]:
    """Span streaming: each probe's parent, by name."""
    spans = [
        s for item in found["items"] if item["type"] == "span" for s in item["payload"]["items"]
    ]
    names = {span["span_id"]: _PORT.sub(":PORT/", span["name"]) for span in spans}
    return {
        span["name"]: names.get(span.get("parent_span_id", ""), "<not sent>")
        for span in spans
        if span["name"].startswith("probe ")
    }


def test_http_client_span_ends_with_the_body_in_transactions_as_sentry_sdk(tmp_path: Path) -> None:
    theirs, ours = run_both("LIFECYCLE = None\n" + SCRIPT, tmp_path)
    found = _transactions(ours)
    assert found == _transactions(theirs), dumps({"sentry": _transactions(theirs), "ours": found})
    assert found == {
        "read": 1,
        "read after the end": 0,  # still open when its transaction finished
        "partial read": 0,
        "close": 1,
        "no body": 1,
        "head": 1,
        "chunked": 1,
        "urllib": 1,
        "requests": 1,
        "readinto": 0,
        "readline": 0,
    }


def test_streamed_http_client_span_is_current_until_the_body_is_read_as_sentry_sdk(
    tmp_path: Path,
) -> None:
    theirs, ours = run_both('LIFECYCLE = "stream"\n' + SCRIPT, tmp_path)
    found = _probes(ours)
    assert found == _probes(theirs), dumps({"sentry": _probes(theirs), "ours": found})
    request = "GET http://127.0.0.1:PORT/body"
    assert found == {
        "probe before read": request,
        "probe after read": "read",
        "probe after partial read": request,
        "probe before close": request,
        "probe after close": "close",
        "probe no body": "no body",
        "probe head": "head",
        "probe before chunked read": "GET http://127.0.0.1:PORT/chunked",
        "probe after chunked read": "chunked",
        "probe urllib before read": request,
        "probe urllib after": "urllib",
        "probe requests": "requests",
        "probe after readinto": request,
        "probe after readline": request,
    }
    # Every http.client span was sent: each ended (read, closed, or without a body).
    sent = [
        s["name"]
        for item in ours["items"]
        if item["type"] == "span"
        for s in item["payload"]["items"]
        if s["attributes"].get("sentry.op", {}).get("value") == "http.client"
    ]
    assert len(sent) == 11, json.dumps(sent)
