"""The `baggage` a streamed segment sends, side by side with sentry-sdk 2.75.

Under ``trace_lifecycle="stream"``: the outgoing `baggage` header (http.client and
httpx), `get_baggage()` and the `trace` header of the `span` envelope, in a
`traces.start_span` segment and in a WSGI request segment, with and without an
incoming baggage. A segment sends its own DSC (name, sampling decision) unless the
trace already has a frozen one: the incoming baggage, or the DSC made from the options
before the segment started (a `get_baggage()`, propagation headers or an error).
A WSGI request continues its incoming trace even when the current scope has a trace of
its own.
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

import httpx
from sentry_sdk import traces
from sentry_sdk.integrations.httpx import HttpxIntegration
from sentry_sdk.integrations.stdlib import StdlibIntegration
from sentry_sdk.integrations.wsgi import SentryWsgiMiddleware

seen = []


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        seen.append(self.headers.get("baggage"))
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
thread = threading.Thread(target=server.serve_forever)
thread.start()
port = server.server_address[1]

INCOMING = {
    "sentry-trace": "a" * 32 + "-" + "b" * 16 + "-1",
    "baggage": "sentry-trace_id=" + "a" * 32
    + ",sentry-sample_rate=0.3,sentry-sample_rand=0.1,other=1",
}
THIRD_PARTY_ONLY = {"sentry-trace": "c" * 32 + "-" + "b" * 16 + "-1", "baggage": "other=1"}


def stdlib_get():
    conn = http.client.HTTPConnection("127.0.0.1", port)
    conn.request("GET", "/")
    conn.getresponse().read()
    conn.close()
    return seen[-1]


def httpx_get():
    with httpx.Client() as client:
        client.get(f"http://127.0.0.1:{port}/")
    return seen[-1]


def state():
    return {
        "trace": sentry_sdk.get_traceparent().split("-")[0],
        "http.client": stdlib_get(),
        "httpx": httpx_get(),
        "get_baggage": sentry_sdk.get_baggage(),
    }


def app(environ, start_response):
    NOTES.append({"wsgi " + environ["PATH_INFO"]: state()})
    start_response("200 OK", [])
    return [b""]


middleware = SentryWsgiMiddleware(app)


def request(path, headers):
    environ = {
        "REQUEST_METHOD": "GET",
        "PATH_INFO": path,
        "SERVER_NAME": "example.com",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "wsgi.url_scheme": "http",
    }
    for name, value in headers.items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    list(middleware(environ, lambda *args: None))


try:
    sentry_sdk.init(
        dsn="http://key@127.0.0.1:9/1",
        transport=KEEP,
        default_integrations=False,
        integrations=[StdlibIntegration(), HttpxIntegration()],
        traces_sample_rate=0.5,
        release="app@1.0",
        environment="env",
        trace_propagation_targets=["127.0.0.1"],
        _experiments={"trace_lifecycle": "stream"},
    )
    for case, headers in (
        ("fresh", None),
        ("incoming", INCOMING),
        ("third-party only", THIRD_PARTY_ONLY),
    ):
        traces.new_trace()
        if headers is not None:
            traces.continue_trace(headers)
        with traces.start_span(name="segment"):
            NOTES.append({case: state()})
            with traces.start_span(name="child"):
                NOTES.append({case + " child": state()})
        NOTES.append({case + " after": state()})
    # The trace's DSC made from the options before the segment: it stays.
    for n, before in enumerate(("get_baggage", "headers", "error", "traceparent"), 1):
        # A sampled parent without baggage: the decision is known, the DSC is this SDK's.
        traces.new_trace()
        traces.continue_trace({"sentry-trace": str(n) * 32 + "-" + "b" * 16 + "-1"})
        if before == "get_baggage":
            sentry_sdk.get_baggage()
        elif before == "headers":
            dict(sentry_sdk.get_current_scope().iter_trace_propagation_headers())
        elif before == "error":
            sentry_sdk.capture_message("before")
        else:
            sentry_sdk.get_traceparent()
        with traces.start_span(name="segment"):
            with traces.start_span(name="child"):
                NOTES.append({"after " + before: state()})
    # A trace of the current scope's own does not hide the request's.
    for path, headers in (("/plain", {}), ("/incoming", INCOMING), ("/third", THIRD_PARTY_ONLY)):
        traces.new_trace()
        request(path, headers)
    sentry_sdk.flush()
    for raw in KEEP.raw:
        lines = raw.split(b"\n")
        kind, trace = json.loads(lines[1])["type"], json.loads(lines[0]).get("trace")
        NOTES.append({"envelope": [kind, trace]})
finally:
    server.shutdown()
    server.server_close()
    thread.join()
finish()
"""

_FIXED_TRACES = {"a" * 32: "incoming", "c" * 32: "third-party only"}


def _fixed(trace_id: Any) -> bool:
    """A trace id the script gave (one digit repeated), not one an SDK drew at random."""
    return isinstance(trace_id, str) and len(set(trace_id)) == 1


def _normalized(found: dict[str, Any]) -> dict[str, Any]:
    """Each case's baggage values by trace label; random values of a new trace as ``?``.

    `public_key` is left out: sentry_sdk takes it from its transport's DSN, which the
    side-by-side transport has not.
    """
    labels = dict(_FIXED_TRACES)
    cases: dict[str, Any] = {}
    envelopes: list[Any] = []
    for note in found["notes"]:
        ((name, value),) = note.items()
        if name == "envelope":
            envelopes.append(value)
            continue
        labels.setdefault(value["trace"], name)
        cases[name] = value

    def entries(items: list[tuple[str, str]]) -> list[tuple[str, str]]:
        out = []
        trace = dict(items).get("trace_id")
        fixed = _fixed(trace)
        for key, value in items:
            if key == "public_key":
                continue
            if key == "trace_id":
                value = labels.get(value, "unknown")
            elif key in ("sample_rand", "sampled") and not fixed:
                value = "?"
            out.append((key, value))
        return out

    def header(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        pairs = [part.split("=", 1) for part in value.split(",")]
        return entries(
            [(k[len("sentry-") :] if k.startswith("sentry-") else k, v) for k, v in pairs]
        )

    shaped = {
        name: {
            "trace": labels.get(value["trace"]),
            **{key: header(value[key]) for key in ("http.client", "httpx", "get_baggage")},
        }
        for name, value in cases.items()
    }
    # Which new traces are sampled is random: the envelopes of the script's traces only;
    # distinct headers (how spans are batched into envelopes is each SDK's own).
    shaped["envelopes"] = sorted(
        {
            json.dumps([kind, entries(list(trace.items()))])
            for kind, trace in envelopes
            if trace and _fixed(trace.get("trace_id"))
        }
    )
    return shaped


def test_streamed_baggage_matches_sentry_sdk(tmp_path: Path) -> None:
    theirs, ours = run_both(SCRIPT, tmp_path)
    their_shape, our_shape = _normalized(theirs), _normalized(ours)
    assert dumps(our_shape) == dumps(their_shape)
    # What the comparison covers: a segment's own DSC, the incoming one, the options'.
    fresh = dict(our_shape["fresh"]["http.client"])
    assert fresh["transaction"] == "segment"
    assert fresh["release"] == "app%401.0"
    assert dict(our_shape["incoming child"]["httpx"]) == {
        "trace_id": "incoming",
        "sample_rate": "0.3",
        "sample_rand": "0.1",
    }
    for before in ("get_baggage", "headers", "error"):
        assert "transaction" not in dict(our_shape["after " + before]["httpx"]), before
    assert "transaction" in dict(our_shape["after traceparent"]["httpx"])
    assert our_shape["wsgi /incoming"]["trace"] == "incoming"
    assert dict(our_shape["wsgi /third"]["get_baggage"])["sample_rate"] == "1.0"
    assert re.search("generic%20WSGI%20request", json.dumps(our_shape["wsgi /plain"]))
    span_headers = [json.loads(e)[1] for e in our_shape["envelopes"] if '"span"' in e]
    assert [
        ("trace_id", "after get_baggage"),
        ("environment", "env"),
        ("release", "app@1.0"),
        ("sample_rate", "0.5"),
    ] in [[tuple(entry) for entry in header] for header in span_headers]
