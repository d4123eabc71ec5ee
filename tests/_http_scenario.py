"""One outgoing-HTTP script for the httpx and aiohttp differential tests.

`script(clients)` is run by `_side_by_side.run_both`: a loopback server records the
trace headers it receives (as notes), and the chosen clients ("httpx", "aiohttp")
make requests under several configurations. `shape` keeps what both SDKs must agree
on: spans, breadcrumbs and the headers, with ids replaced by the role they play.
"""

from __future__ import annotations

import re
from typing import Any

_SCRIPT = """
import asyncio
import http.server
import threading
import warnings

CLIENTS = {clients!r}
integrations = []
if "httpx" in CLIENTS:
    import httpx
    from sentry_sdk.integrations.httpx import HttpxIntegration
    integrations.append(HttpxIntegration())
if "aiohttp" in CLIENTS:
    import aiohttp
    from sentry_sdk.integrations.aiohttp import AioHttpIntegration
    integrations.append(AioHttpIntegration())


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self):
        NOTES.append({{
            "path": self.path,
            "sentry-trace": self.headers.get("sentry-trace"),
            "baggage": self.headers.get_all("baggage"),
        }})
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
REFUSED = "http://127.0.0.1:9/refused"  # the discard port: nothing listens


def init(**options):
    options.setdefault("dsn", "http://key@example.com/1")
    # No code location on the spans: whether a request is slower than the default
    # 100 ms threshold depends on the machine's load, in either SDK's run.
    options.setdefault("http_request_source_threshold_ms", 60000)
    sentry_sdk.init(
        transport=KEEP, integrations=integrations, default_integrations=False, **options
    )


def requests(tag, headers=None, refused=False):
    if "httpx" in CLIENTS:
        with httpx.Client() as client:
            client.get(URL + "/%s/sync?q=1#frag" % tag, headers=headers)
            client.get("http://user:secret@" + URL[7:] + "/%s/missing" % tag)
            if refused:
                try:
                    client.get(REFUSED)
                except httpx.ConnectError:
                    pass

    async def main():
        if "httpx" in CLIENTS:
            async with httpx.AsyncClient() as client:
                await client.get(URL + "/%s/async?q=2" % tag, headers=headers)
        if "aiohttp" in CLIENTS:
            async with aiohttp.ClientSession() as session:
                async with session.get(URL + "/%s/aio?q=3#f" % tag, headers=headers) as r:
                    await r.read()
                async with session.post(URL + "/%s/missing" % tag) as r:
                    await r.read()
                if refused:
                    try:
                        async with session.get(REFUSED):
                            pass
                    except aiohttp.ClientConnectionError:
                        pass

    asyncio.run(main())


try:
    init()
    requests("no-tracing")
    sentry_sdk.capture_message("no-tracing")
    init(traces_sample_rate=1.0)
    with sentry_sdk.start_transaction(name="in-tx"):
        requests("tx", headers={{"baggage": "other=1"}}, refused=True)
        sentry_sdk.capture_message("in-tx")
    requests("no-tx")
    sentry_sdk.capture_message("no-tx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # sentry_sdk warns per request
        init(traces_sample_rate=1.0, propagate_traces=False)
        with sentry_sdk.start_transaction(name="no-propagation"):
            requests("no-propagation")
    init(traces_sample_rate=1.0, trace_propagation_targets=["elsewhere.example"])
    with sentry_sdk.start_transaction(name="targets"):
        requests("targets")
    finish()
finally:
    server.shutdown()
    server.server_close()
    thread.join()
"""


def script(clients: tuple[str, ...]) -> str:
    """The scenario for `clients` (a subset of "httpx", "aiohttp")."""
    return _SCRIPT.format(clients=clients)


_PORT = re.compile(r"127\.0\.0\.1:\d+")


def _plain(value: Any) -> Any:
    if isinstance(value, str):
        return _PORT.sub("127.0.0.1:PORT", value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if not k.startswith("thread.")}
    return value


def _baggage(values: Any, names: dict[str, str]) -> Any:
    """Third-party entries, and the sentry-* keys with ids replaced by their role.

    ``sentry-public_key`` is left out: sentry_sdk takes it from its transport's
    parsed DSN, and the harness's transport is built without options.
    """
    if values is None:
        return None
    parts = []
    for header in values:
        for part in header.split(","):
            key, _, value = part.partition("=")
            if key in ("sentry-public_key", "sentry-sample_rand"):
                continue
            parts.append((key, names.get(value, value)))
    return parts


def shape(found: dict[str, Any]) -> dict[str, Any]:
    """Spans, breadcrumbs (of the last event) and received headers, ids as roles."""
    names: dict[str, str] = {}
    spans = []
    for item in found["items"]:
        if item["type"] != "transaction":
            continue
        payload = item["payload"]
        tx = payload["transaction"]
        names[payload["contexts"]["trace"]["trace_id"]] = f"trace:{tx}"
        names[payload["contexts"]["trace"]["span_id"]] = f"root:{tx}"
        for index, span in enumerate(payload["spans"]):
            names[span["span_id"]] = f"span:{tx}:{index}"
            spans.append(
                {
                    "tx": tx,
                    "parent": span["parent_span_id"],
                    "op": span["op"],
                    "description": _plain(span["description"]),
                    "origin": span["origin"],
                    "status": span.get("status"),
                    "tags": span.get("tags"),
                    "data": list(_plain(span["data"]).items()),
                }
            )
    for span in spans:
        span["parent"] = names.get(span["parent"], span["parent"])
    events = [item["payload"] for item in found["items"] if item["type"] == "event"]
    for event in events:
        trace = event["contexts"]["trace"]
        names.setdefault(trace["trace_id"], f"trace:{event['message']}")
        names.setdefault(trace["span_id"], f"context:{event['message']}")
    crumbs = [
        {k: _plain(v) if k != "data" else list(_plain(v).items()) for k, v in crumb.items()}
        for crumb in events[-1].get("breadcrumbs", {}).get("values", [])
        if crumb.get("category") == "httplib"
    ]
    for crumb in crumbs:
        crumb.pop("timestamp", None)
    received = []
    for note in found["notes"]:
        trace = note["sentry-trace"]
        if trace is not None:
            trace = [names.get(part, part) for part in trace.split("-")]
        received.append(
            {
                "path": note["path"],
                "sentry-trace": trace,
                "baggage": _baggage(note["baggage"], names),
            }
        )
    return {"spans": spans, "crumbs": crumbs, "received": received}
