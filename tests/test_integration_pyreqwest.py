"""The pyreqwest integration: real pyreqwest clients against a loopback server.

The server records the trace headers it received. The differential test runs one
script on sentry_sdk 2.75 and on tripwire, each in its own interpreter.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _http_server import Server, crumbs_of, serving, spans_of
from _side_by_side import run_both

import tripwire
from tripwire.integrations.pyreqwest import PyreqwestIntegration
from tripwire.testing import MemoryTransport, reset

if TYPE_CHECKING:
    from pyreqwest.client import ClientBuilder, SyncClientBuilder
    from pyreqwest.exceptions import ConnectError
    from pyreqwest.request import OneOffRequestBuilder, SyncOneOffRequestBuilder
    from pyreqwest.simple.sync_request import pyreqwest_get


@pytest.fixture(autouse=True, scope="module")
def _pyreqwest() -> None:
    """pyreqwest is imported when the module's tests start, not at collection (every xdist
    worker collects every module; tests/_lazy.py)."""
    global ClientBuilder, SyncClientBuilder, ConnectError, OneOffRequestBuilder
    global SyncOneOffRequestBuilder, pyreqwest_get
    from pyreqwest.client import ClientBuilder, SyncClientBuilder
    from pyreqwest.exceptions import ConnectError
    from pyreqwest.request import OneOffRequestBuilder, SyncOneOffRequestBuilder
    from pyreqwest.simple.sync_request import pyreqwest_get


@pytest.fixture
def server() -> Iterator[Server]:
    with serving() as srv:
        yield srv


def init(**options: Any) -> MemoryTransport:
    tripwire.get_client().close()
    memory = MemoryTransport()
    options.setdefault("dsn", "http://key@example.com/1")
    tripwire.init(
        transport=memory,
        integrations=[PyreqwestIntegration()],
        default_integrations=False,
        **options,
    )
    return memory


async def async_get(url: str) -> int:
    client = ClientBuilder().build()
    status: int = (await client.get(url).build().send()).status
    return status


def test_requests_get_spans_breadcrumbs_and_headers(server: Server) -> None:
    memory = init(traces_sample_rate=1.0)
    with tripwire.start_transaction(name="tx") as transaction:
        client = SyncClientBuilder().build()
        assert client.get(server.url + "/sync?x=1#frag").build().send().status == 200
        assert client.get(server.url + "/missing").build().send().status == 404
        assert pyreqwest_get(server.url + "/oneoff").send().status == 200
        assert asyncio.run(async_get(server.url + "/async")) == 200
        with pytest.raises(ConnectError):
            client.get("http://127.0.0.1:9/refused").build().send()  # the discard port
        tripwire.capture_message("after")
    spans = spans_of(memory, "http.client")
    sync = spans[0]
    assert sync["description"] == f"GET {server.url}/sync"
    data = {k: v for k, v in sync["data"].items() if not k.startswith("thread.")}
    assert list(data.items())[:4] == [
        ("http.method", "GET"),
        ("url", f"{server.url}/sync"),
        ("http.query", "x=1"),
        ("http.fragment", "frag"),
    ]
    assert sync["data"]["http.response.status_code"] == 200
    assert "reason" not in sync["data"]
    assert {s["origin"] for s in spans} == {"auto.http.pyreqwest"}
    assert [s["status"] for s in spans] == ["ok", "not_found", "ok", "ok", "internal_error"]
    # Breadcrumbs carry no URL (as sentry_sdk 2.75's, without span streaming).
    assert [c["data"] for c in crumbs_of(memory, "httplib")] == [
        {"http.method": "GET", "http.response.status_code": status}
        for status in (200, 404, 200, 200)
    ]
    assert [h["sentry-trace"] for h in server.received] == [
        f"{transaction.trace_id}-{span['span_id']}-1" for span in spans[:4]
    ]


def test_quiet_without_the_integration_and_reset_undoes_the_patch(server: Server) -> None:
    originals = (
        ClientBuilder.build,
        SyncClientBuilder.build,
        OneOffRequestBuilder.send,
        SyncOneOffRequestBuilder.send,
    )
    memory = init(traces_sample_rate=1.0)
    client = SyncClientBuilder().build()  # built with the middleware
    tripwire.get_client().close()
    tripwire.init(
        dsn="http://key@example.com/1",
        transport=memory,
        traces_sample_rate=1.0,
        default_integrations=False,
    )
    with tripwire.start_transaction(name="tx"):
        client.get(server.url + "/p").build().send()
        pyreqwest_get(server.url + "/q").send()
    assert spans_of(memory, "http.client") == []
    assert all("sentry-trace" not in headers for headers in server.received)
    reset()
    assert (
        ClientBuilder.build,
        SyncClientBuilder.build,
        OneOffRequestBuilder.send,
        SyncOneOffRequestBuilder.send,
    ) == originals


_SCRIPT = """
import asyncio, http.server, threading
from pyreqwest.client import ClientBuilder, SyncClientBuilder
from pyreqwest.simple.sync_request import pyreqwest_get
from sentry_sdk.integrations.pyreqwest import PyreqwestIntegration


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        NOTES.append({"path": self.path, "sentry-trace": self.headers.get("sentry-trace"),
                      "baggage": self.headers.get_all("baggage")})
        self.send_response(404 if "missing" in self.path else 200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
thread = threading.Thread(target=server.serve_forever)
thread.start()
URL = "http://127.0.0.1:%d" % server.server_address[1]


def init(**options):
    sentry_sdk.init(dsn="http://key@example.com/1", transport=KEEP, default_integrations=False,
                    integrations=[PyreqwestIntegration()], **options)


def requests(tag, headers=None):
    client = SyncClientBuilder().build()
    builder = client.get(URL + "/%s/sync?q=1#frag" % tag)
    if headers:
        builder = builder.headers(headers)
    builder.build().send()
    client.get("http://user:pw@" + URL[7:] + "/%s/missing" % tag).build().send()
    pyreqwest_get(URL + "/%s/oneoff" % tag).send()

    async def main():
        await ClientBuilder().build().get(URL + "/%s/async?q=2" % tag).build().send()

    asyncio.run(main())


try:
    init()
    requests("no-tracing")
    sentry_sdk.capture_message("no-tracing")
    init(traces_sample_rate=1.0)
    with sentry_sdk.start_transaction(name="in-tx"):
        requests("tx", headers={"baggage": "other=1"})
        try:
            SyncClientBuilder().build().get("http://127.0.0.1:9/refused").build().send()
        except Exception as exc:
            NOTES.append({"error": type(exc).__name__})
        sentry_sdk.capture_message("in-tx")
    requests("no-tx")
    sentry_sdk.capture_message("no-tx")
    init(traces_sample_rate=1.0, trace_propagation_targets=["elsewhere.example"])
    with sentry_sdk.start_transaction(name="targets"):
        requests("targets")
    finish()
finally:
    server.shutdown()
    server.server_close()
    thread.join()
"""

_PORT = re.compile(r"127\.0\.0\.1:\d+")


def _shape(found: dict[str, Any]) -> dict[str, Any]:
    """Spans, breadcrumbs and received headers, ids replaced by the role they play."""
    names: dict[str, str] = {}
    spans = []
    crumbs = []
    for item in found["items"]:
        payload = item["payload"]
        if item["type"] == "transaction":
            tx, trace = payload["transaction"], payload["contexts"]["trace"]
            names[trace["trace_id"]] = f"trace:{tx}"
            for index, span in enumerate(payload["spans"]):
                names[span["span_id"]] = f"span:{tx}:{index}"
                data = {k: v for k, v in span["data"].items() if not k.startswith("thread.")}
                spans.append(
                    [tx, span["op"], _PORT.sub("H", span["description"]), span.get("status"),
                     span.get("tags"), _PORT.sub("H", repr(data)), span["origin"],
                     span["parent_span_id"] == trace["span_id"]]
                )  # fmt: skip
        elif item["type"] == "event":
            trace = payload["contexts"]["trace"]
            names.setdefault(trace["trace_id"], "trace:" + payload["message"])
            names.setdefault(trace["span_id"], "context:" + payload["message"])
            values = payload.get("breadcrumbs", {}).get("values", [])
            crumbs.append([{k: v for k, v in c.items() if k != "timestamp"} for c in values])
    received = []
    for note in found["notes"]:
        trace = note.get("sentry-trace")
        baggage = note.get("baggage")
        received.append(
            [
                note.get("path") or note.get("error"),
                trace and [names.get(part, part) for part in trace.split("-")],
                # sentry_sdk's harness transport has no DSN: no public key of its own.
                baggage
                and [
                    (key, names.get(value, value))
                    for header in baggage
                    for key, _, value in (part.partition("=") for part in header.split(","))
                    if key not in ("sentry-sample_rand", "sentry-public_key")
                ],
            ]
        )
    return {"spans": spans, "crumbs": crumbs, "received": received}


def test_same_as_sentry_sdk(tmp_path: Path) -> None:
    sentry, ours = run_both(_SCRIPT, tmp_path)
    expected, found = _shape(sentry), _shape(ours)
    assert found["spans"] == expected["spans"]
    assert found["crumbs"] == expected["crumbs"]
    assert found["received"] == expected["received"]
    assert len(found["spans"]) == 9  # in-tx: 4 + refused; targets: 4
    assert found["received"][0][1] is not None  # without tracing: the propagation context
