"""The stdlib integration: `http.client` and `subprocess`, over loopback and real children.

A real HTTP server on 127.0.0.1 records the trace headers it received; real child
processes report the trace they continued. The differential tests run one script on
sentry_sdk 2.75 and on tripwire, each in its own interpreter (sentry_sdk's stdlib
integration patches the standard library for the whole process).
"""

from __future__ import annotations

import http.client
import http.server
import json
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _http_server import Server, _Handler, crumbs_of, spans_of

import tripwire
from tripwire.integrations.stdlib import StdlibIntegration
from tripwire.testing import MemoryTransport, reset


class _RawHandler(_Handler):
    def do_GET(self) -> None:
        server: RawServer = self.server  # type: ignore[assignment]
        server.raw.append([(k.lower(), v) for k, v in self.headers.items()])
        super().do_GET()


class RawServer(Server):
    """`Server` that also keeps every header line as received (a duplicate too)."""

    def __init__(self) -> None:
        super().__init__()
        self.RequestHandlerClass = _RawHandler
        self.raw: list[list[tuple[str, str]]] = []


@pytest.fixture(scope="session")
def _loopback() -> Iterator[RawServer]:
    srv = RawServer()
    srv.thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        srv.thread.join()


@pytest.fixture
def server(_loopback: RawServer) -> RawServer:
    _loopback.received.clear()
    _loopback.raw.clear()
    return _loopback


def init(**options: Any) -> MemoryTransport:
    memory = MemoryTransport()
    options.setdefault("dsn", "http://key@example.com/1")
    tripwire.init(transport=memory, **options)
    return memory


def get(url: str) -> int:
    with urllib.request.urlopen(url) as response:
        response.read()
        return int(response.status)


# -- http.client -----------------------------------------------------------------------------


def test_request_gets_span_breadcrumb_and_trace_headers(server: Server) -> None:
    memory = init(traces_sample_rate=1.0)
    with tripwire.start_transaction(name="tx", op="test") as transaction:
        assert get(server.url + "/path?x=1&y=2#frag") == 200
        tripwire.capture_message("after")

    (span,) = spans_of(memory, "http.client")
    url = server.url + "/path"
    assert span["description"] == f"GET {url}"
    assert span["origin"] == "auto.http.stdlib.httplib"
    assert span["status"] == "ok"
    assert span["tags"] == {"http.status_code": "200", "status": "ok"}
    data = {k: v for k, v in span["data"].items() if not k.startswith("thread.")}
    assert data == {
        "http.method": "GET",
        "http.fragment": "",  # urllib does not send the fragment
        "url": url,
        "http.query": "x=1&y=2",
        "http.response.status_code": 200,
        "reason": "OK",
    }
    (crumb,) = crumbs_of(memory, "httplib")
    assert crumb["type"] == "http"
    assert crumb["data"] == data
    assert "level" not in crumb
    (headers,) = server.received
    assert headers["sentry-trace"] == f"{transaction.trace_id}-{span['span_id']}-1"
    assert f"sentry-trace_id={transaction.trace_id}" in headers["baggage"]
    assert "sentry-transaction=tx" in headers["baggage"]


def test_error_status_sets_span_status_and_crumb_level(server: Server) -> None:
    memory = init(traces_sample_rate=1.0)
    with tripwire.start_transaction(name="tx"):
        for path in ("/missing", "/fail"):
            conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1])
            conn.request("GET", path)
            conn.getresponse().read()
            conn.close()
        tripwire.capture_message("after")

    assert [s["status"] for s in spans_of(memory, "http.client")] == [
        "not_found",
        "unavailable",
    ]
    levels = [c.get("level") for c in crumbs_of(memory, "httplib")]
    assert levels == ["warning", "error"]


def test_credentials_are_filtered_and_default_port_left_out(server: Server) -> None:
    memory = init(traces_sample_rate=1.0)
    port = server.server_address[1]

    class DefaultPort(http.client.HTTPConnection):
        default_port = port

    with tripwire.start_transaction(name="tx"):
        conn = http.client.HTTPConnection("127.0.0.1", port)
        conn.request("GET", f"http://user:secret@127.0.0.1:{port}/abs?q=1")
        conn.getresponse().read()
        conn.close()
        conn = DefaultPort("127.0.0.1")
        conn.request("GET", "/default")
        conn.getresponse().read()
        conn.close()

    first, second = spans_of(memory, "http.client")
    assert first["description"] == f"GET http://[Filtered]:[Filtered]@127.0.0.1:{port}/abs"
    assert "secret" not in json.dumps(first)
    assert second["description"] == "GET http://127.0.0.1/default"


def test_connection_dropped_still_finishes_span_and_crumb(server: Server) -> None:
    memory = init(traces_sample_rate=1.0)
    with tripwire.start_transaction(name="tx"):
        conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1])
        conn.request("GET", "/drop")
        with pytest.raises(http.client.RemoteDisconnected):
            conn.getresponse()
        conn.close()
        tripwire.capture_message("after")

    (span,) = spans_of(memory, "http.client")
    assert "status" not in span
    assert "http.response.status_code" not in span["data"]
    (crumb,) = crumbs_of(memory, "httplib")
    assert "reason" not in crumb["data"]


def test_trace_propagation_targets_are_honoured(server: Server) -> None:
    init(traces_sample_rate=1.0, trace_propagation_targets=["elsewhere.example"])
    with tripwire.start_transaction(name="tx"):
        get(server.url + "/a")
    reset()
    init(traces_sample_rate=1.0, trace_propagation_targets=[r"127\.0\.0\.1"])
    with tripwire.start_transaction(name="tx"):
        get(server.url + "/b")
    first, second = server.received
    assert "sentry-trace" not in first and "baggage" not in first
    assert "sentry-trace" in second and "baggage" in second


def test_propagate_traces_false_sends_no_headers(server: Server) -> None:
    with pytest.warns(DeprecationWarning):
        init(traces_sample_rate=1.0, propagate_traces=False)
    with tripwire.start_transaction(name="tx"):
        get(server.url + "/a")
    (headers,) = server.received
    assert "sentry-trace" not in headers


def test_without_tracing_the_scope_trace_is_propagated(server: Server) -> None:
    memory = init()
    get(server.url + "/a")
    tripwire.capture_message("after")
    (headers,) = server.received
    assert headers["sentry-trace"] == tripwire.get_traceparent()
    assert headers["baggage"] == tripwire.get_baggage()
    assert len(crumbs_of(memory, "httplib")) == 1
    assert memory.transactions == []


def test_tracing_without_a_transaction_sends_no_headers(server: Server) -> None:
    # As sentry_sdk 2.75: with tracing on, only a transaction speaks for the trace.
    memory = init(traces_sample_rate=1.0)
    get(server.url + "/a")
    tripwire.capture_message("after")
    (headers,) = server.received
    assert "sentry-trace" not in headers
    assert len(crumbs_of(memory, "httplib")) == 1


def test_requests_to_the_dsn_host_are_left_alone(server: Server) -> None:
    port = server.server_address[1]
    memory = init(dsn=f"http://key@127.0.0.1:{port}/1", traces_sample_rate=1.0)
    with tripwire.start_transaction(name="tx"):
        get(server.url + "/api/1/envelope/")
        tripwire.capture_message("after")
    (headers,) = server.received
    assert "sentry-trace" not in headers and "baggage" not in headers
    assert spans_of(memory, "http.client") == []
    assert crumbs_of(memory, "httplib") == []


def test_request_source_when_slower_than_threshold(server: Server) -> None:
    memory = init(traces_sample_rate=1.0, http_request_source_threshold_ms=0)
    with tripwire.start_transaction(name="tx"):
        get(server.url + "/a")
    (span,) = spans_of(memory, "http.client")
    assert span["data"]["code.function"] == "get"
    assert span["data"]["code.namespace"] == __name__
    reset()
    memory = init(
        traces_sample_rate=1.0,
        http_request_source_threshold_ms=0,
        enable_http_request_source=False,
    )
    with tripwire.start_transaction(name="tx"):
        get(server.url + "/a")
    (span,) = spans_of(memory, "http.client")
    assert "code.function" not in span["data"]


def test_disabled_integration_falls_through(server: Server) -> None:
    memory = init(traces_sample_rate=1.0, disabled_integrations=[StdlibIntegration])
    with tripwire.start_transaction(name="tx"):
        get(server.url + "/a")
        tripwire.capture_message("after")
    (headers,) = server.received
    assert "sentry-trace" not in headers
    assert spans_of(memory, "http.client") == []


def test_patches_are_reversible_and_idempotent() -> None:
    original_put = http.client.HTTPConnection.putrequest
    original_init = subprocess.Popen.__init__
    original_end = http.client.HTTPConnection.endheaders
    init()
    patched = http.client.HTTPConnection.putrequest
    assert patched is not original_put
    assert http.client.HTTPConnection.endheaders is not original_end
    assert subprocess.Popen.__init__ is not original_init
    StdlibIntegration.setup_once()  # a second set-up does not wrap twice
    assert http.client.HTTPConnection.putrequest is patched
    reset()
    assert http.client.HTTPConnection.putrequest is original_put
    assert http.client.HTTPConnection.endheaders is original_end
    assert subprocess.Popen.__init__ is original_init


def test_modules_are_patched_when_imported_after_init(tmp_path: Path) -> None:
    script = """
import sys
import tripwire
tripwire.init()
assert "http.client" not in sys.modules and "subprocess" not in sys.modules
import http.client, subprocess
print(hasattr(http.client.HTTPConnection.putrequest, "__tripwire_stdlib__"),
      hasattr(subprocess.Popen.wait, "__tripwire_stdlib__"),
      http.client.HTTPConnection.__module__, http.client.__spec__.loader.__class__.__name__)
from tripwire.testing import reset
reset()
print(hasattr(http.client.HTTPConnection.putrequest, "__tripwire_stdlib__"))
"""
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True", "http.client", "SourceFileLoader", "False"]


# -- trace headers a request already has ------------------------------------------------------

_THEIR_TRACE = "0123456789abcdef0123456789abcdef-0123456789abcdef-1"


def sent(server: RawServer, index: int, name: str) -> list[str]:
    """The values of header `name` in the `index`-th request, each line as it came."""
    return [value for key, value in server.raw[index] if key == name]


def request(server: RawServer, target: str, headers: dict[str, str]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", server.server_address[1])
    try:
        conn.request("GET", target, headers=headers)
        conn.getresponse().read()
    finally:
        conn.close()


def test_a_plain_request_gets_each_trace_header_once(server: RawServer) -> None:
    memory = init(traces_sample_rate=1.0)
    with tripwire.start_transaction(name="tx") as transaction:
        request(server, "/plain", {"X-Other": "1"})
    (span,) = spans_of(memory, "http.client")
    assert sent(server, 0, "sentry-trace") == [f"{transaction.trace_id}-{span['span_id']}-1"]
    (baggage,) = sent(server, 0, "baggage")
    assert baggage.startswith(f"sentry-trace_id={transaction.trace_id},")
    assert sent(server, 0, "x-other") == ["1"]


def test_the_callers_own_trace_headers_are_not_duplicated(server: RawServer) -> None:
    memory = init(traces_sample_rate=1.0)
    theirs = "sentry-trace_id=0123456789abcdef0123456789abcdef,vendor=a"
    with tripwire.start_transaction(name="tx") as transaction:
        request(server, "/own", {"Sentry-Trace": _THEIR_TRACE, "baggage": theirs})
        request(server, "/own", {"sentry-trace": _THEIR_TRACE})
        request(server, "/own", {"baggage": "vendor=a"})
    assert [sent(server, i, "sentry-trace") for i in range(3)] == [
        [_THEIR_TRACE],
        [_THEIR_TRACE],
        [f"{transaction.trace_id}-{spans_of(memory, 'http.client')[2]['span_id']}-1"],
    ]
    assert sent(server, 0, "baggage") == [theirs]
    (ours,) = sent(server, 1, "baggage")
    assert ours.startswith(f"sentry-trace_id={transaction.trace_id},")
    # A baggage without sentry-* members gets ours as a further field line.
    their_line, our_line = sent(server, 2, "baggage")
    assert their_line == "vendor=a"
    assert our_line.startswith(f"sentry-trace_id={transaction.trace_id},")
    # The spans and breadcrumbs are there as for any request.
    assert len(spans_of(memory, "http.client")) == 3


@pytest.mark.parametrize("algorithm", ["AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256"])
def test_sigv4_signed_trace_headers_are_left_alone(server: RawServer, algorithm: str) -> None:
    init(traces_sample_rate=1.0)
    auth = (
        algorithm
        + " Credential=a/20260101/eu-west-1/s3/aws4_request, SignedHeaders={}, Signature=f"
    )
    with tripwire.start_transaction(name="tx") as transaction:
        # sentry-trace signed (with the caller's value), baggage not: ours is added.
        signed_trace = auth.format("host;Sentry-Trace;x-amz-date")
        request(server, "/s", {"sentry-trace": _THEIR_TRACE, "Authorization": signed_trace})
        # baggage signed but absent: none is added (it would break the signature).
        request(server, "/s", {"Authorization": auth.format("baggage;host")})
    assert sent(server, 0, "sentry-trace") == [_THEIR_TRACE]
    (baggage,) = sent(server, 0, "baggage")
    assert baggage.startswith(f"sentry-trace_id={transaction.trace_id},")
    assert sent(server, 1, "baggage") == []
    (trace,) = sent(server, 1, "sentry-trace")
    assert trace.startswith(transaction.trace_id + "-")


def test_an_authorization_that_is_not_sigv4_changes_nothing(server: RawServer) -> None:
    init(traces_sample_rate=1.0)
    with tripwire.start_transaction(name="tx"):
        request(server, "/s", {"Authorization": "Bearer x SignedHeaders=sentry-trace;baggage"})
        request(server, "/s?X-Amz-SignedHeaders=sentry-trace%3Bbaggage", {})  # no algorithm
    for index in (0, 1):
        assert len(sent(server, index, "sentry-trace")) == 1
        assert len(sent(server, index, "baggage")) == 1


def test_a_presigned_url_keeps_its_signed_headers_unset(server: RawServer) -> None:
    init(traces_sample_rate=1.0)
    presigned = (
        "/bucket/key?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=a"
        "&X-Amz-SignedHeaders={}&X-Amz-Signature=f"
    )
    with tripwire.start_transaction(name="tx") as transaction:
        get(server.url + presigned.format("host%3Bsentry-trace"))
        get(server.url + presigned.format("host").lower())  # query keys in any case
    assert sent(server, 0, "sentry-trace") == []
    (baggage,) = sent(server, 0, "baggage")
    assert baggage.startswith(f"sentry-trace_id={transaction.trace_id},")
    assert len(sent(server, 1, "sentry-trace")) == len(sent(server, 1, "baggage")) == 1


def test_a_botocore_signed_request_keeps_its_signature(server: RawServer) -> None:
    """botocore signs the trace headers a client integration added; the server's check
    of the signature over what it received still passes."""
    botocore_auth = pytest.importorskip("botocore.auth")
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    init(traces_sample_rate=1.0)
    url = server.url + "/signed?x=1"
    with tripwire.start_transaction(name="tx"):
        headers = dict(tripwire.get_current_scope().iter_trace_propagation_headers())
        aws = AWSRequest(method="GET", url=url, headers=headers)
        signer = botocore_auth.SigV4Auth(Credentials("a", "b"), "s3", "eu-west-1")
        signer.add_auth(aws)
        request(server, "/signed?x=1", dict(aws.headers.items()))

    assert sent(server, 0, "sentry-trace") == [headers["sentry-trace"]]
    assert sent(server, 0, "baggage") == [headers["baggage"]]
    # The server's side: sign the received headers the signature names, compare.
    received = server.raw[0]
    (authorization,) = sent(server, 0, "authorization")
    names = authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    assert "sentry-trace" in names  # botocore never signs baggage: ours is skipped as
    assert "baggage" not in names  # the caller's has sentry-* members
    check = AWSRequest(method="GET", url=url, headers={k: v for k, v in received if k in names})
    check.context["timestamp"] = dict(received)["x-amz-date"]
    canonical = signer.canonical_request(check)
    signature = signer.signature(signer.string_to_sign(check, canonical), check)
    assert authorization.endswith("Signature=" + signature)


def test_requests_sends_one_sentry_trace_and_one_baggage(server: RawServer) -> None:
    requests = pytest.importorskip("requests")
    memory = init(traces_sample_rate=1.0)
    with tripwire.start_transaction(name="tx") as transaction:
        with requests.Session() as session:
            assert session.get(server.url + "/r?q=1").status_code == 200
            # A caller who forwards the trace itself still sends one of each.
            forwarded = {
                "sentry-trace": tripwire.get_traceparent() or "",
                "baggage": tripwire.get_baggage() or "",
            }
            assert session.get(server.url + "/r", headers=forwarded).status_code == 200
        tripwire.capture_message("after")
    first, _ = spans_of(memory, "http.client")
    assert sent(server, 0, "sentry-trace") == [f"{transaction.trace_id}-{first['span_id']}-1"]
    assert len(sent(server, 0, "baggage")) == 1
    assert sent(server, 1, "sentry-trace") == [forwarded["sentry-trace"]]
    assert sent(server, 1, "baggage") == [forwarded["baggage"]]
    assert [c["data"]["url"] for c in crumbs_of(memory, "httplib")] == [server.url + "/r"] * 2


def test_urllib3_sends_one_sentry_trace_and_one_baggage(server: RawServer) -> None:
    import urllib3

    init(traces_sample_rate=1.0)
    with tripwire.start_transaction(name="tx"):
        with urllib3.PoolManager() as pool:
            assert pool.request("GET", server.url + "/u").status == 200
            assert (
                pool.request(
                    "GET", server.url + "/u", headers={"sentry-trace": _THEIR_TRACE}
                ).status
                == 200
            )
    assert len(sent(server, 0, "sentry-trace")) == len(sent(server, 0, "baggage")) == 1
    assert sent(server, 1, "sentry-trace") == [_THEIR_TRACE]
    assert len(sent(server, 1, "baggage")) == 1


# -- subprocess ------------------------------------------------------------------------------

_CHILD = (
    "import os, tripwire; tripwire.init(); "
    "print(tripwire.get_traceparent()); print(os.environ.get('SUBPROCESS_SENTRY_TRACE'))"
)


def test_subprocess_spans_and_breadcrumb() -> None:
    memory = init(traces_sample_rate=1.0)
    with tripwire.start_transaction(name="tx") as transaction:
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        tripwire.capture_message("after")

    spans = spans_of(memory, "subprocess")
    (span,) = spans
    assert span["description"] == f"{sys.executable} -c pass"
    assert span["origin"] == "auto.subprocess.stdlib.subprocess"
    assert isinstance(span["tags"]["subprocess.pid"], int)
    (communicate,) = spans_of(memory, "subprocess.communicate")
    waits = spans_of(memory, "subprocess.wait")
    parents = sorted(w["parent_span_id"] for w in waits)
    assert parents == sorted([communicate["span_id"], transaction.span_id])
    (crumb,) = crumbs_of(memory, "subprocess")
    assert crumb["type"] == "subprocess"
    assert crumb["message"] == span["description"]
    assert crumb["data"] == {}


def test_subprocess_cwd_is_sent_as_given(tmp_path: Path) -> None:
    # As sentry_sdk 2.75: the value as passed, so a Path shows as its repr.
    memory = init(traces_sample_rate=1.0)
    command = [sys.executable, "-c", "pass"]
    with tripwire.start_transaction(name="tx"):
        subprocess.run(command, cwd=tmp_path, check=True)
        subprocess.run(command, cwd=str(tmp_path), check=True)
        subprocess.run(command, cwd=bytes(tmp_path), check=True)
        # `cwd` given positionally (Popen's tenth parameter).
        subprocess.Popen(command, -1, None, None, None, None, None, True, False, tmp_path).wait()
        subprocess.run(command, check=True)
        tripwire.capture_message("after")

    expected = [repr(tmp_path), str(tmp_path), str(tmp_path), repr(tmp_path)]
    crumbs = crumbs_of(memory, "subprocess")
    assert [c["data"].get("subprocess.cwd") for c in crumbs] == [*expected, None]
    spans = spans_of(memory, "subprocess")
    assert [s["data"].get("subprocess.cwd") for s in spans] == [*expected, None]


def test_failed_start_marks_span_internal_error() -> None:
    memory = init(traces_sample_rate=1.0)
    with tripwire.start_transaction(name="tx"):
        with pytest.raises(OSError):
            subprocess.Popen(["/nonexistent/command"])
    (span,) = spans_of(memory, "subprocess")
    assert span["status"] == "internal_error"
    assert span["description"] == "/nonexistent/command"


def test_child_continues_the_trace_of_the_subprocess_span() -> None:
    memory = init(traces_sample_rate=1.0)
    env = {"PATH": "/usr/bin:/bin"}
    with tripwire.start_transaction(name="tx") as transaction:
        out = subprocess.check_output([sys.executable, "-c", _CHILD], env=env, text=True)
    assert env == {"PATH": "/usr/bin:/bin"}  # the caller's dict is not changed
    traceparent, handed_down = out.split()
    (span,) = spans_of(memory, "subprocess")
    assert handed_down == f"{transaction.trace_id}-{span['span_id']}-1"
    assert traceparent.split("-")[0] == transaction.trace_id


def test_child_env_carries_sentry_names() -> None:
    init(traces_sample_rate=1.0)
    code = "import os, json; print(json.dumps({k: v for k, v in os.environ.items()}))"
    with tripwire.start_transaction(name="tx") as transaction:
        out = subprocess.check_output([sys.executable, "-c", code], text=True)
        child_env = json.loads(out)
        span_id = child_env["SUBPROCESS_SENTRY_TRACE"].split("-")[1]
    assert child_env["SUBPROCESS_SENTRY_TRACE"] == f"{transaction.trace_id}-{span_id}-1"
    assert "SENTRY_TRACE" not in child_env
    assert "sentry-transaction=tx" in child_env["SUBPROCESS_BAGGAGE"]
    assert "PATH" in child_env  # os.environ is the base when env is not given


def test_no_env_without_transaction_under_tracing() -> None:
    init(traces_sample_rate=1.0)
    code = "import os; print('SUBPROCESS_SENTRY_TRACE' in os.environ)"
    out = subprocess.check_output([sys.executable, "-c", code], text=True)
    assert out.strip() == "False"


@pytest.mark.parametrize(
    ("env", "continued"),
    [
        ({"SENTRY_TRACE": "T", "SENTRY_BAGGAGE": "B"}, True),
        ({"SUBPROCESS_SENTRY_TRACE": "T", "SUBPROCESS_BAGGAGE": "B"}, True),
        ({"SENTRY_TRACE": "T", "SENTRY_USE_ENVIRONMENT": "false"}, False),
        ({"SENTRY_TRACE": "not a trace"}, False),
        ({"SENTRY_BAGGAGE": "B"}, False),
    ],
)
def test_init_reads_the_trace_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], continued: bool
) -> None:
    trace = "0123456789abcdef0123456789abcdef-0123456789abcdef-1"
    baggage = "sentry-trace_id=0123456789abcdef0123456789abcdef,sentry-environment=staging"
    for key, value in env.items():
        monkeypatch.setenv(key, value.replace("T", trace) if value == "T" else value)
        if value == "B":
            monkeypatch.setenv(key, baggage)
    init()
    parent = tripwire.get_traceparent()
    assert parent is not None
    assert parent.startswith("0123456789abcdef0123456789abcdef-") is continued
    if continued and ("SENTRY_BAGGAGE" in env or "SUBPROCESS_BAGGAGE" in env):
        assert "sentry-environment=staging" in (tripwire.get_baggage() or "")


def test_sentry_trace_wins_over_subprocess_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTRY_TRACE", "11111111111111111111111111111111-1111111111111111-1")
    monkeypatch.setenv(
        "SUBPROCESS_SENTRY_TRACE", "22222222222222222222222222222222-2222222222222222-1"
    )
    init()
    assert (tripwire.get_traceparent() or "").startswith("1111")


# -- differential -------------------------------------------------------------------------

_SCRIPT = """
import http.client, http.server, pathlib, subprocess, sys, threading, urllib.request
import requests
received = []

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        received.append([(k.lower(), v) for k, v in self.headers.items()
                         if k.lower() in ("sentry-trace", "baggage")])
        self.send_response(404 if "missing" in self.path else 200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args):
        pass

srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
port = srv.server_address[1]
thread = threading.Thread(target=srv.serve_forever)
thread.start()
sentry_sdk.init(dsn="http://key@example.com/1", transport=KEEP, **OPTIONS)
urllib.request.urlopen(f"http://127.0.0.1:{port}/outside").read()  # no transaction
with sentry_sdk.start_transaction(name="tx", op="test"):
    urllib.request.urlopen(f"http://127.0.0.1:{port}/path?x=1#frag").read()
    conn = http.client.HTTPConnection("127.0.0.1", port)
    conn.request("GET", "/missing")
    conn.getresponse().read()
    conn.close()
    requests.get(f"http://127.0.0.1:{port}/requests?q=1")
    code = "import os; print(os.environ.get('SUBPROCESS_SENTRY_TRACE', '')[:32])"
    child = subprocess.check_output([sys.executable, "-c", code], text=True).strip()
    subprocess.run("exit 0", shell=True)
    subprocess.run([sys.executable, "-c", "pass"], cwd=pathlib.Path("."))
    subprocess.run([sys.executable, "-c", "pass"], cwd=".")
    try:
        subprocess.Popen(["/nonexistent/command"])
    except OSError:
        pass
    sentry_sdk.capture_message("after")
srv.shutdown()
thread.join()
srv.server_close()
NOTES.append({"received": received, "child": child})
finish()
"""

_HEX = re.compile(r"[0-9a-f]{16,32}")


def _span_shape(span: dict[str, Any], port: str) -> dict[str, Any]:
    tags = {k: ("pid" if k == "subprocess.pid" else v) for k, v in span.get("tags", {}).items()}
    data = {k: v for k, v in span.get("data", {}).items() if not k.startswith("thread.")}
    return {
        "op": span["op"],
        "description": (span.get("description") or "").replace(port, "PORT"),
        "status": span.get("status"),
        "origin": span.get("origin"),
        "tags": tags,
        "data": json.loads(json.dumps(data).replace(port, "PORT")),
    }


def _headers_shape(headers: list[list[str]]) -> list[tuple[str, str]]:
    """Each trace header line as received (a duplicate stays), ids and rand masked."""
    shape = []
    for key, value in headers:
        if key == "baggage":
            # sentry_sdk leaves sentry-public_key out of the baggage with a custom transport.
            value = re.sub(r",?sentry-public_key=[^,]*", "", value)
            value = re.sub(r"sentry-sample_rand=[0-9.]+", "sentry-sample_rand=R", value)
        shape.append((key, _HEX.sub("ID", value)))
    return shape


@pytest.mark.parametrize(
    "options",
    [
        "dict(traces_sample_rate=1.0)",
        "dict()",
        "dict(traces_sample_rate=1.0, trace_propagation_targets=['nomatch'])",
    ],
)
def test_same_spans_breadcrumbs_and_headers_as_sentry_sdk(tmp_path: Path, options: str) -> None:
    pytest.importorskip("sentry_sdk")
    from _side_by_side import of_type, run_both

    sentry, ours = run_both(_SCRIPT.replace("**OPTIONS", f"**{options}"), tmp_path)
    shapes = []
    for found in (sentry, ours):
        (event,) = of_type(found, "event")
        note = found["notes"][0]
        port = re.search(r"127\.0\.0\.1:(\d+)", json.dumps(event)).group(1)  # type: ignore[union-attr]
        crumbs = [
            {k: v for k, v in crumb.items() if k != "timestamp"}
            for crumb in event["breadcrumbs"]["values"]
            if crumb["category"] in ("httplib", "subprocess")
        ]
        transactions = of_type(found, "transaction")
        spans = [_span_shape(s, port) for t in transactions for s in t["spans"]]
        shapes.append(
            {
                "crumbs": json.loads(json.dumps(crumbs).replace(port, "PORT")),
                "spans": spans,
                "received": [_headers_shape(h) for h in note["received"]],
                "child_has_trace": bool(note["child"]),
                "child_trace_is_ours": note["child"] == event["contexts"]["trace"]["trace_id"],
            }
        )
    assert shapes[1] == shapes[0]
    ours = shapes[1]
    assert len(ours["received"]) == 4  # urlopen (outside, inside), http.client, requests
    cwds = [
        c["data"].get("subprocess.cwd") for c in ours["crumbs"] if c["category"] == "subprocess"
    ]
    assert cwds[-3:] == [repr(Path(".")), ".", None]  # the last: /nonexistent/command
    if options == "dict(traces_sample_rate=1.0)":
        assert ours["received"][0] == []  # outside a transaction: none, as sentry_sdk
        for lines in ours["received"][1:]:
            assert [key for key, _ in lines] == ["sentry-trace", "baggage"]
