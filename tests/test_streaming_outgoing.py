"""Span streaming of the outgoing-call integrations, side by side with sentry-sdk 2.75.

Under ``trace_lifecycle="stream"`` sentry-sdk 2.75 gives http.client, subprocess,
socket, httpx, httpx2, pyreqwest, asyncio, grpc (client and server, sync and aio) and
boto3 a code path of their own: spans only inside a streamed span, with
``http.request.method``, ``url.full`` / ``url.query`` / ``url.fragment`` (only with
``send_default_pii``), ``server.address`` / ``server.port``, ``process.pid``,
``rpc.method`` / ``rpc.response.status_code`` attributes, breadcrumbs with the same
names, and trace headers from the scope outside any span. Each script runs once on
each SDK (real libraries against loopback servers) and every span, breadcrumb and trace
header shape must agree.

Deliberate difference, not visible here: tripwire never makes an http.client span the
current span (sentry-sdk's stays current until the body is read, and forever if the
connection fails).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _side_by_side import dumps, logs, of_type, run_both
from _stream_shapes import sent
from fakes.aws import AwsServer, serving

_PORT = re.compile(r"(127\.0\.0\.1|localhost):\d{3,}")  # not the refused port 9
_TRACE_ID = re.compile(r"\b[0-9a-f]{32}\b")
_SPAN_ID = re.compile(r"\b[0-9a-f]{16}\b")
# Attributes whose values differ between the SDKs or between runs.
_VOLATILE = {
    "sentry.sdk.name",
    "sentry.sdk.version",
    "sentry.sdk.integrations",
    "thread.id",
    "process.pid",
    "process.command_args",
}


def _text(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    value = _PORT.sub(r"\1:PORT", value)
    return _SPAN_ID.sub("<span>", _TRACE_ID.sub("<trace>", value))


def _spans(found: dict[str, Any]) -> list[dict[str, Any]]:
    """Every streamed span: name, status, segment flag, parent's name, typed attributes;
    sorted (spans of concurrent work finish in either order)."""
    spans = sent(found)
    names = {span["span_id"]: span["name"] for span in spans}
    out = []
    for span in spans:
        attributes = {}
        for key, found_value in span.get("attributes", {}).items():
            value = found_value["value"]
            if key in _VOLATILE:
                value = "?"
            elif key in ("server.port", "network.peer.port"):
                value = "PORT"
            elif key == "thread.name" and str(value).startswith("ThreadPoolExecutor"):
                value = "pool"  # which pool thread ran a handler varies
            attributes[key] = (found_value["type"], _text(value))
        parent = span.get("parent_span_id")
        out.append(
            {
                "name": _text(span["name"]),
                "status": span["status"],
                "is_segment": span["is_segment"],
                "parent": _text(names.get(parent, "<remote>" if parent else None)),
                "attributes": dict(sorted(attributes.items())),
            }
        )
    return sorted(out, key=lambda span: json.dumps(span, sort_keys=True))


def _crumbs(found: dict[str, Any]) -> list[Any]:
    out = []
    for event in of_type(found, "event"):
        for crumb in (event.get("breadcrumbs") or {}).get("values", []):
            crumb = {k: v for k, v in crumb.items() if k != "timestamp"}
            if "network.peer.port" in crumb.get("data", {}):
                crumb["data"] = {**crumb["data"], "network.peer.port": "PORT"}
            out.append(_text(json.dumps(crumb, sort_keys=True)))
    return out


def _notes(found: dict[str, Any]) -> list[Any]:
    return [json.loads(_text(json.dumps(note, sort_keys=True))) for note in found["notes"]]


def _refused(span: dict[str, Any]) -> bool:
    return str(span["attributes"].get("sentry.segment.name", (0, ""))[1]).startswith("refused")


def _assert_same(theirs: dict[str, Any], ours: dict[str, Any]) -> list[dict[str, Any]]:
    spans = [span for span in _spans(ours) if not _refused(span)]
    assert spans == [span for span in _spans(theirs) if not _refused(span)], dumps(spans)
    assert _crumbs(ours) == _crumbs(theirs), dumps(_crumbs(ours))
    assert _notes(ours) == _notes(theirs), dumps(_notes(ours))
    assert [log["body"] for log in logs(ours)] == [log["body"] for log in logs(theirs)]
    return spans


def _op(span: dict[str, Any]) -> Any:
    return span["attributes"].get("sentry.op", (None, None))[1]


def _attributes(spans: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [{k: v[1] for k, v in s["attributes"].items()} for s in spans if s["name"] == name]


# -- http.client, subprocess, socket, httpx, httpx2, pyreqwest, asyncio ------------------

_HTTP_SCRIPT = """
import asyncio
import http.client
import http.server
import socket
import subprocess
import threading
import warnings

warnings.simplefilter("ignore", DeprecationWarning)  # send_default_pii
import httpcore  # imports what it needs (trio: a subprocess) before the SDK watches
import httpx
from sentry_sdk.integrations.asyncio import AsyncioIntegration
from sentry_sdk.integrations.httpx import HttpxIntegration
from sentry_sdk.integrations.socket import SocketIntegration
from sentry_sdk.integrations.stdlib import StdlibIntegration

integrations = [StdlibIntegration(), HttpxIntegration(), SocketIntegration()]
try:  # Python 3.10+
    import httpx2
    from pyreqwest.client import ClientBuilder, SyncClientBuilder
    from sentry_sdk.integrations.httpx2 import Httpx2Integration
    from sentry_sdk.integrations.pyreqwest import PyreqwestIntegration

    integrations += [Httpx2Integration(), PyreqwestIntegration()]
except ImportError:
    httpx2 = None


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        baggage = self.headers.get("baggage") or ""
        NOTES.append({
            "path": self.path,
            "sentry-trace": self.headers.get("sentry-trace"),
            "baggage": [part for part in baggage.split(",") if not part.startswith("sentry-")],
            "sentry baggage": "sentry-trace_id=" in baggage,
        })
        self.send_response(404 if "missing" in self.path else 200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_POST = do_GET

    def do_CONNECT(self):
        # A proxy whose tunnel leads back to this server: the next request comes on it.
        NOTES.append({"connect": self.path})
        self.send_response(200, "Connection established")
        self.end_headers()
        self.close_connection = False

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
thread = threading.Thread(target=server.serve_forever)
thread.start()
URL = "http://127.0.0.1:%d" % server.server_address[1]


def http_client(tag):
    connection = http.client.HTTPConnection("127.0.0.1", server.server_address[1])
    connection.request("GET", "/stdlib-" + tag + "?a=1&b=2#frag")
    connection.getresponse().read()
    connection.request("POST", "/missing-stdlib-" + tag)
    connection.getresponse().read()
    connection.close()
    tunnel = http.client.HTTPConnection("127.0.0.1", server.server_address[1])
    tunnel.set_tunnel("tunnel.example", 8080)
    tunnel.request("GET", "/tunnel-" + tag)
    tunnel.getresponse().read()
    tunnel.close()


def refused(tag):
    with sentry_sdk.traces.start_span(name="refused-" + tag):
        try:
            http.client.HTTPConnection("127.0.0.1", 9).request("GET", "/refused")
        except OSError:
            pass


def processes():
    code = "import os; print(os.environ.get('SUBPROCESS_SENTRY_TRACE'))"
    child = subprocess.Popen([sys.executable, "-c", code], cwd="/", stdout=subprocess.PIPE)
    NOTES.append({"child": child.communicate()[0].decode().strip()})
    subprocess.Popen([sys.executable, "-c", "pass"]).wait()


def sockets():
    socket.create_connection(("127.0.0.1", server.server_address[1])).close()
    socket.getaddrinfo(b"localhost", str(server.server_address[1]))


def clients(tag):
    with httpx.Client() as client:
        client.get(URL + "/httpx-" + tag + "?q=1#f", headers={"baggage": "other=1"})
        client.get(URL + "/missing-httpx-" + tag)
        try:
            client.get("http://127.0.0.1:9/refused")
        except httpx.ConnectError:
            pass
    if httpx2 is not None:
        with httpx2.Client() as client:
            client.get(URL + "/httpx2-" + tag + "?q=1")
        client = SyncClientBuilder().build()
        client.get(URL + "/reqwest-" + tag + "?x=1#frag").build().send()
        client.get(URL + "/missing-reqwest-" + tag).build().send()


async def tasks(tag):
    async def fetch():
        async with httpx.AsyncClient() as client:
            await client.get(URL + "/httpx-async-" + tag)
        if httpx2 is not None:
            async with httpx2.AsyncClient() as client:
                await client.get(URL + "/httpx2-async-" + tag)
            client = ClientBuilder().build()
            await client.get(URL + "/reqwest-async-" + tag + "?a=b").build().send()

    async def failing():
        raise ValueError("task " + tag)

    await asyncio.create_task(fetch())
    try:
        await asyncio.create_task(failing())
    except ValueError:
        pass


async def main():
    for pii in (False, True):
        sentry_sdk.init(
            dsn="https://key@example.com/1",
            transport=KEEP,
            traces_sample_rate=1.0,
            trace_lifecycle="stream",
            release="r1",
            send_default_pii=pii,
            http_request_source_threshold_ms=0,  # the code location of every request
            default_integrations=False,
            integrations=integrations + [AsyncioIntegration()],
        )
        tag = "pii" if pii else "no-pii"
        # Outside a span: no spans, trace headers from the scope (none to a child).
        http_client("outside-" + tag)
        processes()
        sockets()
        clients("outside-" + tag)
        await tasks("outside-" + tag)
        with sentry_sdk.traces.start_span(name="outer-" + tag):
            http_client(tag)
            processes()
            sockets()
            clients(tag)
            await tasks(tag)
            sentry_sdk.capture_message("breadcrumbs " + tag)
        refused(tag)
        sentry_sdk.flush()


asyncio.run(main())
server.shutdown()
thread.join()
server.server_close()
finish()
"""


def test_http_clients_subprocess_socket_and_tasks_match_sentry_sdk(tmp_path: Path) -> None:
    theirs, ours = run_both(_HTTP_SCRIPT, tmp_path)
    spans = _assert_same(theirs, ours)
    # What the comparison covered (both SDKs agree on all of it).
    (stdlib,) = [
        a for a in _attributes(spans, "GET http://127.0.0.1:PORT/stdlib-pii") if "url.full" in a
    ]
    assert stdlib["url.full"] == "http://127.0.0.1:PORT/stdlib-pii?a=1&b=2#frag"
    assert stdlib["url.query"] == "a=1&b=2"
    assert stdlib["http.request.method"] == "GET"
    assert stdlib["code.function"] == "http_client"
    (tunnel,) = _attributes(spans, "GET http://tunnel.example:8080/tunnel-pii")
    assert tunnel["network.peer.address"] == "127.0.0.1"
    assert tunnel["url.full"] == "http://tunnel.example:8080/tunnel-pii"
    (no_pii,) = _attributes(spans, "GET http://127.0.0.1:PORT/stdlib-no-pii")
    assert not any(key.startswith("url.") for key in no_pii)
    (missing,) = [s for s in spans if s["name"] == "POST http://127.0.0.1:PORT/missing-stdlib-pii"]
    assert missing["status"] == "error"
    assert {_op(s) for s in spans} >= {
        "http.client",
        "subprocess",
        "subprocess.wait",
        "subprocess.communicate",
        "socket.connection",
        "socket.dns",
        "function",
    }
    (connection, *_) = _attributes(spans, "127.0.0.1:PORT")
    assert connection["server.address"] == "127.0.0.1"
    # No span outside a span, but the trace headers of the scope.
    assert not [s for s in spans if "outside" in s["name"]]
    notes = _notes(ours)
    outside = next(n for n in notes if n.get("path") == "/stdlib-outside-pii?a=1&b=2#frag")
    assert re.fullmatch(r"<trace>-<span>", outside["sentry-trace"])
    kept = next(n for n in notes if n.get("path") == "/httpx-pii?q=1")
    assert kept["baggage"] == ["other=1"] and kept["sentry baggage"]
    assert [n["child"] for n in notes if "child" in n] == ["None", "<trace>-<span>-1"] * 2
    # Deliberate difference: an http.client request that could not be sent. sentry-sdk's
    # span never ends (it is not sent, and stays current: the connection attempt's span
    # points to it); tripwire's ends with status error.
    refused = [(s["name"], s["status"], s["parent"]) for s in _spans(theirs) if _refused(s)]
    segments = [(f"refused-{tag}", "ok", None) for tag in ("no-pii", "pii")]
    dns = [("127.0.0.1:9", "ok", "127.0.0.1:9")] * 2  # the lookup under the connection
    assert sorted(refused) == sorted(
        [*segments, *dns, *[("127.0.0.1:9", "error", "<remote>")] * 2]
    ), refused
    ours_refused = [(s["name"], s["status"], s["parent"]) for s in _spans(ours) if _refused(s)]
    url = "GET http://127.0.0.1:9/refused"
    assert sorted(ours_refused) == sorted(
        [*segments, *dns, (url, "error", "refused-no-pii"), (url, "error", "refused-pii")]
        + [("127.0.0.1:9", "error", url)] * 2
    ), ours_refused


# -- grpc (sync and aio) and boto3 -------------------------------------------------------

_RPC_SCRIPT = """
import asyncio
import types
import warnings
from concurrent.futures import ThreadPoolExecutor

warnings.simplefilter("ignore", DeprecationWarning)  # send_default_pii
# sentry_sdk's grpc modules import protobuf's Message (for annotations only); protobuf
# may be missing: both runs get a stand-in module.
message = types.ModuleType("google.protobuf.message")
message.Message = type("Message", (), {})
sys.modules.update({
    "google": types.ModuleType("google"),
    "google.protobuf": types.ModuleType("google.protobuf"),
    "google.protobuf.message": message,
})

import boto3
import grpc
import grpc.aio
import sentry_sdk.logger
from sentry_sdk.integrations.boto3 import Boto3Integration
from sentry_sdk.integrations.grpc import GRPCIntegration
from sentry_sdk.integrations.stdlib import StdlibIntegration

AWS = sys.argv[2]
same = lambda data: data


def hello(request, context):
    NOTES.append({k: v for k, v in context.invocation_metadata() if k == "sentry-trace"})
    sentry_sdk.logger.info("in handler")
    if request == b"boom":
        raise ValueError("boom")
    if request == b"abort":
        context.abort(grpc.StatusCode.NOT_FOUND, "nf")
    return b"hi"


def stream(request, context):
    yield b"a"


async def ahello(request, context):
    NOTES.append({k: v for k, v in context.invocation_metadata() if k == "sentry-trace"})
    sentry_sdk.logger.info("in aio handler")
    if request == b"boom":
        raise ValueError("aio boom")
    if request == b"abort":
        await context.abort(grpc.StatusCode.NOT_FOUND, "nf")
    return b"hi"


async def astream(request, context):
    yield b"a"


def handlers(unary, streaming):
    return grpc.method_handlers_generic_handler("pkg.Svc", {
        "Hello": grpc.unary_unary_rpc_method_handler(unary, same, same),
        "Stream": grpc.unary_stream_rpc_method_handler(streaming, same, same),
    })


def sync_grpc():
    pool = ThreadPoolExecutor(2)
    server = grpc.server(pool)
    server.add_generic_rpc_handlers((handlers(hello, stream),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    channel = grpc.insecure_channel("127.0.0.1:%d" % port)
    call = channel.unary_unary("/pkg.Svc/Hello", same, same)
    call(b"outside")
    with sentry_sdk.traces.start_span(name="sync-grpc"):
        call(b"x")
        list(channel.unary_stream("/pkg.Svc/Stream", same, same)(b"s"))
        for request in (b"boom", b"abort"):
            try:
                call(request)
            except grpc.RpcError:
                pass
    channel.close()
    server.stop(None).wait()
    pool.shutdown()


async def aio_grpc():
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handlers(ahello, astream),))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel("127.0.0.1:%d" % port) as channel:
        call = channel.unary_unary("/pkg.Svc/Hello", same, same)
        await call(b"outside")
        with sentry_sdk.traces.start_span(name="aio-grpc"):
            await call(b"x")
            [r async for r in channel.unary_stream("/pkg.Svc/Stream", same, same)(b"s")]
            for request in (b"boom", b"abort"):
                try:
                    await call(request)
                except grpc.RpcError:
                    pass
    await server.stop(None)


def aws(tag):
    session = boto3.session.Session(
        aws_access_key_id="a", aws_secret_access_key="b", region_name="us-east-1"
    )
    s3 = session.client("s3", endpoint_url=AWS)
    sqs = session.client("sqs", endpoint_url=AWS)
    s3.list_buckets()  # outside a span
    with sentry_sdk.traces.start_span(name="aws-" + tag):
        s3.put_object(Bucket="diff", Key="k", Body=b"hello")
        s3.get_object(Bucket="diff", Key="k")["Body"].read()
        try:
            s3.get_object(Bucket="diff", Key="missing")
        except Exception:
            pass
        sqs.send_message(QueueUrl=AWS + "/q", MessageBody="m")
        sentry_sdk.capture_message("breadcrumbs " + tag)


for pii in (False, True):
    sentry_sdk.init(
        dsn="https://key@o1.ingest.sentry.io/1",
        transport=KEEP,
        traces_sample_rate=1.0,
        trace_lifecycle="stream",
        release="r1",
        enable_logs=True,
        send_default_pii=pii,
        # A request slower than the threshold gets its code location: a loaded machine
        # would make that differ between the two runs (the other script pins it at 0).
        enable_http_request_source=False,
        default_integrations=False,
        integrations=[GRPCIntegration(), Boto3Integration(), StdlibIntegration()],
    )
    if not pii:
        sync_grpc()
        asyncio.run(aio_grpc())
    aws("pii" if pii else "no-pii")
    sentry_sdk.flush()
finish()
"""


@pytest.fixture(scope="module")
def aws() -> Iterator[AwsServer]:
    with serving() as srv:
        yield srv


def test_grpc_and_boto3_match_sentry_sdk(tmp_path: Path, aws: AwsServer) -> None:
    script = _RPC_SCRIPT.replace("AWS = sys.argv[2]", f"AWS = {aws.url!r}")
    theirs, ours = run_both(script, tmp_path)
    spans = _assert_same(theirs, ours)
    (unary, *_) = _attributes(spans, "unary unary call to /pkg.Svc/Hello")
    assert unary["rpc.method"] == "/pkg.Svc/Hello"
    assert "type" not in unary and "method" not in unary
    assert {a.get("rpc.response.status_code") for a in _attributes(spans, unary_name())} == {
        "OK",
        "UNKNOWN",
        "NOT_FOUND",
    }
    servers = [s for s in spans if _op(s) == "grpc.server"]
    assert len(servers) == 8 and all(s["is_segment"] for s in servers)
    # The call made outside a span continued the scope's trace on the server.
    assert sum(s["parent"] == "<remote>" for s in servers) == 2
    (put,) = [a for a in _attributes(spans, "aws.s3.PutObject") if "url.full" in a]
    assert put["rpc.method"] == "PutObject" and put["http.request.method"] == "PUT"
    assert put["url.full"] == "http://127.0.0.1:PORT/diff/k"
    stream = [s for s in spans if _op(s) == "http.client.stream"]
    assert [s["parent"] for s in stream] == ["aws.s3.GetObject"] * 2
    stdlib = [s for s in spans if s["name"].startswith(("GET http", "PUT http", "POST http"))]
    assert {s["parent"] for s in stdlib} >= {"aws.s3.PutObject", "aws.sqs.SendMessage"}
    assert len(logs(ours)) == 8


def unary_name() -> str:
    return "unary unary call to /pkg.Svc/Hello"
