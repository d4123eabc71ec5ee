"""TornadoIntegration: a real `tornado.web.Application` on 127.0.0.1.

Each test serves the app with Tornado's `HTTPServer` on a loopback socket inside the
event loop it runs, sends raw HTTP/1.1 requests (`_raw_http.fetch`) and stops the
server (and its connections) when the block ends. The concurrency test reads what
reached a real loopback receiver; the differential test runs one app on sentry_sdk
2.75 and on tripwire, each in its own interpreter (both patch Tornado for the process).
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import Awaitable
from pathlib import Path
from typing import Any, Callable

import tornado.httpserver
import tornado.web
from _raw_http import bound_socket, fetch
from _receiver import Receiver
from _sentry_side import Ids, normalise
from _side_by_side import run_both

import tripwire
from tripwire.integrations.tornado import TornadoIntegration
from tripwire.testing import MemoryTransport, reset

DSN = "http://key@example.com/1"
TRACE_ID = "771a43a4192642f0b136d5159a501700"
PARENT = "1234567890abcdef"


def init(**options: Any) -> MemoryTransport:
    tripwire.get_client().close()  # a client replaced without closing keeps its threads
    memory = MemoryTransport()
    options.setdefault("dsn", DSN)
    tripwire.init(
        transport=memory,
        integrations=[TornadoIntegration()],
        default_integrations=False,
        release="r1",
        **options,
    )
    return memory


# -- the application ----------------------------------------------------------------------


class Boom(tornado.web.RequestHandler):
    def get(self, ident: str) -> None:
        tripwire.set_tag("route", "boom")
        raise ZeroDivisionError(f"no {ident}")


class Echo(tornado.web.RequestHandler):
    def get_current_user(self) -> Any:
        return self.get_argument("who", None)

    async def post(self) -> None:
        tripwire.capture_message("echo")
        self.write(str(len(self.request.body)))


class Forbidden(tornado.web.RequestHandler):
    def get(self) -> None:
        raise tornado.web.HTTPError(403)


def make_app(*extra: Any) -> tornado.web.Application:
    return tornado.web.Application(
        [(r"/boom/(\d+)", Boom), (r"/echo", Echo), (r"/forbidden", Forbidden), *extra]
    )


def serve(app: tornado.web.Application, scenario: Callable[[int], Awaitable[Any]]) -> Any:
    """Run `scenario(port)` against `app` on 127.0.0.1; the server stops afterwards."""

    async def main() -> Any:
        sock = bound_socket()
        sock.listen(16)
        sock.setblocking(False)
        server = tornado.httpserver.HTTPServer(app)
        server.add_sockets([sock])
        try:
            return await scenario(sock.getsockname()[1])
        finally:
            server.stop()
            await server.close_all_connections()

    return asyncio.run(main())


def requests(*calls: tuple[Any, ...]) -> Callable[[int], Awaitable[list[int]]]:
    """One request after another: (method, path[, headers[, body]]) each; their statuses."""

    async def scenario(port: int) -> list[int]:
        return [(await fetch(port, *call))[0] for call in calls]

    return scenario


# -- events and transactions ----------------------------------------------------------------


def test_error_event_and_transaction() -> None:
    memory = init(traces_sample_rate=1.0)
    headers = {"Authorization": "Bearer secret", "Cookie": "session=s", "X-Custom": "kept"}
    assert serve(make_app(), requests(("GET", "/boom/7?q=1", headers))) == [500]
    tripwire.flush()

    (event,) = memory.events
    (transaction,) = memory.transactions
    (exception,) = event["exception"]["values"]
    assert (exception["type"], exception["value"]) == ("ZeroDivisionError", "no 7")
    assert exception["mechanism"] == {"type": "tornado", "handled": False}
    assert exception["stacktrace"]["frames"][-1]["function"] == "get"
    assert event["transaction"] == "test_integration_tornado.Boom.get"
    assert event["transaction_info"] == {"source": "component"}
    assert event["tags"] == {"route": "boom"}
    request = event["request"]
    port = request["headers"]["Host"].split(":")[1]
    assert request == {
        "url": f"http://127.0.0.1:{port}/boom/7",
        "query_string": "q=1",
        "method": "GET",
        "env": {"REMOTE_ADDR": "127.0.0.1"},  # sent without PII too, as sentry_sdk
        "headers": {
            "Host": f"127.0.0.1:{port}",
            "Connection": "close",
            "Authorization": "[Filtered]",
            "Cookie": "[Filtered]",
            "X-Custom": "kept",
        },
    }
    trace = transaction["contexts"]["trace"]
    assert (trace["op"], trace["origin"]) == ("http.server", "auto.http.tornado")
    assert "status" not in trace  # Tornado answers errors itself: sentry_sdk sets none
    assert trace["span_id"] == event["contexts"]["trace"]["span_id"]
    assert transaction["transaction"] == "test_integration_tornado.Boom.get"
    assert transaction["tags"] == {"route": "boom"}
    assert transaction["request"] == request


def test_body_cookies_and_user_with_pii() -> None:
    memory = init(send_default_pii=True, max_request_body_size="small")
    form = {"Content-Type": "application/x-www-form-urlencoded", "Cookie": "a=b"}
    as_json = {"Content-Type": "application/json"}
    assert (
        serve(
            make_app(),
            requests(
                ("POST", "/echo?who=ann", form, b"x=1&x=2&y=3"),
                ("POST", "/echo", as_json, b'{"k": [1, 2]}'),
                ("POST", "/echo", {"Content-Type": "text/plain"}, b"raw"),
                ("POST", "/echo", as_json, b'{"k": "' + b"v" * 1000 + b'"}'),
            ),
        )
        == [200] * 4
    )
    first, parsed, raw, large = flushed(memory).events
    assert first["request"]["data"] == {"x": ["1", "2"], "y": ["3"]}
    assert first["request"]["cookies"] == {"a": "b"}
    assert first["request"]["headers"]["Cookie"] == "[Filtered]"  # the scrubber, as sentry_sdk
    assert first["user"] == {"is_authenticated": True}
    assert parsed["request"]["data"] == {"k": [1, 2]}
    assert parsed["request"]["cookies"] == {}
    assert "user" not in parsed  # no current user
    assert raw["request"]["data"] == ""
    assert raw["_meta"]["request"]["data"] == {"": {"rem": [["!raw", "x"]]}}
    assert large["request"]["data"] == ""
    assert large["_meta"]["request"]["data"] == {"": {"rem": [["!config", "x"]]}}


def flushed(memory: MemoryTransport) -> MemoryTransport:
    tripwire.flush()
    return memory


def test_http_errors_and_unknown_paths_are_not_reported() -> None:
    memory = init(traces_sample_rate=1.0)
    assert serve(make_app(), requests(("GET", "/forbidden"), ("GET", "/missing"))) == [403, 404]
    assert flushed(memory).events == []
    names = [t["transaction"] for t in memory.transactions]
    assert names == [
        "test_integration_tornado.Forbidden.get",
        "tornado.web.RequestHandler._unimplemented_method",  # sentry_sdk's name for a 404
    ]


def test_incoming_trace_without_tracing_is_on_error_events() -> None:
    memory = init()
    headers = {"sentry-trace": f"{TRACE_ID}-{PARENT}-1", "baggage": f"sentry-trace_id={TRACE_ID}"}
    assert serve(make_app(), requests(("GET", "/boom/1", headers))) == [500]
    (event,) = flushed(memory).events
    assert memory.transactions == []
    trace = event["contexts"]["trace"]
    assert (trace["trace_id"], trace["parent_span_id"]) == (TRACE_ID, PARENT)


def test_streamed_span_is_named_after_the_handler() -> None:
    memory = init(traces_sample_rate=1.0, trace_lifecycle="stream")
    assert serve(make_app(), requests(("GET", "/forbidden"))) == [403]
    spans = [
        span
        for item in flushed(memory).items("span")
        for span in json.loads(item.get_bytes())["items"]
    ]
    (span,) = spans
    assert span["name"] == "test_integration_tornado.Forbidden.get"
    assert span["status"] == "error"
    assert span["attributes"]["sentry.origin"]["value"] == "auto.http.tornado"


# -- isolation ---------------------------------------------------------------------------


def test_concurrent_requests_are_isolated(rx: Receiver) -> None:
    tripwire.init(
        dsn=rx.dsn(),
        release="r1",
        traces_sample_rate=1.0,
        integrations=[TornadoIntegration()],
        default_integrations=False,
    )
    count = 4
    inside: list[str] = []
    all_inside = asyncio.Event()

    class Personal(tornado.web.RequestHandler):
        async def get(self, name: str) -> None:
            tripwire.set_tag("who", name)
            tripwire.set_user({"id": name})
            tripwire.add_breadcrumb(message=f"crumb of {name}")
            inside.append(name)
            if len(inside) == count:
                all_inside.set()
            await all_inside.wait()  # every request has set its data before any reports
            raise RuntimeError(name)

    async def scenario(port: int) -> list[int]:
        calls = (fetch(port, "GET", f"/p/u{i}") for i in range(count))
        return [status for status, _ in await asyncio.gather(*calls)]

    assert serve(make_app((r"/p/(\w+)", Personal)), scenario) == [500] * count
    tripwire.flush()
    events = rx.events()
    assert len(events) == count
    for event in events:
        name = event["exception"]["values"][0]["value"]
        assert event["tags"] == {"who": name}
        assert event["user"] == {"id": name}
        assert [c["message"] for c in event["breadcrumbs"]["values"]] == [f"crumb of {name}"]
    transactions = [json.loads(i.get_bytes()) for i in rx.items("transaction")]
    assert sorted(t["tags"]["who"] for t in transactions) == [f"u{i}" for i in range(count)]
    assert len({t["contexts"]["trace"]["trace_id"] for t in transactions}) == count
    assert tripwire.get_isolation_scope()._tags == {}  # nothing leaked out of the requests


def test_inactive_without_the_integration_and_reset_undoes_the_patches() -> None:
    memory = init()
    patched = tornado.web.RequestHandler._execute
    tripwire.get_client().close()
    other = MemoryTransport()
    tripwire.init(dsn=DSN, transport=other, default_integrations=False)
    assert serve(make_app(), requests(("GET", "/boom/1"))) == [500]
    assert flushed(other).events == [] and memory.events == []
    reset()
    assert tornado.web.RequestHandler._execute is not patched


# -- the same as sentry_sdk --------------------------------------------------------------

_SCRIPT = """
import asyncio
import warnings

import tornado.httpserver
import tornado.web
from sentry_sdk.integrations.tornado import TornadoIntegration

sys.path.insert(0, TESTS)
from _raw_http import bound_socket, fetch

warnings.simplefilter("ignore", DeprecationWarning)  # send_default_pii
sentry_sdk.init(
    dsn="https://key@o1.ingest.sentry.io/1",
    transport=KEEP,
    release="r1",
    traces_sample_rate=1.0,
    send_default_pii=True,
    default_integrations=False,
    integrations=[TornadoIntegration()],
)


class Boom(tornado.web.RequestHandler):
    def get(self, ident):
        sentry_sdk.set_tag("route", "boom")
        sentry_sdk.add_breadcrumb(message="before", category="test")
        raise ValueError("no " + ident)


class Echo(tornado.web.RequestHandler):
    def get_current_user(self):
        return "u1"

    async def post(self):
        sentry_sdk.capture_message("echo")
        self.write(str(len(self.request.body)))


class Forbidden(tornado.web.RequestHandler):
    def get(self):
        raise tornado.web.HTTPError(403)


async def main():
    routes = [(r"/boom/(\\d+)", Boom), (r"/echo", Echo), (r"/forbidden", Forbidden)]
    app = tornado.web.Application(routes)
    sock = bound_socket()
    sock.listen(16)
    sock.setblocking(False)
    server = tornado.httpserver.HTTPServer(app)
    server.add_sockets([sock])
    port = sock.getsockname()[1]
    NOTES.append(port)
    incoming = {
        "sentry-trace": "771a43a4192642f0b136d5159a501700-1234567890abcdef-1",
        "baggage": "sentry-trace_id=771a43a4192642f0b136d5159a501700,sentry-sample_rate=1.0",
    }
    form = dict(incoming, **{"Content-Type": "application/x-www-form-urlencoded"})
    for call in (
        ("GET", "/boom/7?q=1", {"Authorization": "secret", "Cookie": "a=b"}),
        ("POST", "/echo?x=2", form, b"a=1&b=2"),
        ("POST", "/echo", {"Content-Type": "application/json"}, b'{"k": [1]}'),
        ("GET", "/forbidden"),
        ("GET", "/missing"),
    ):
        NOTES.append((await fetch(port, *call))[0])
    server.stop()
    await server.close_all_connections()


asyncio.run(main())
finish()
"""


def _shape(found: dict[str, Any]) -> list[Any]:
    port = found["notes"][0]
    text = json.dumps(found["items"]).replace(f":{port}", ":<port>")
    text = re.sub(r" at 0x[0-9a-f]+", " at <addr>", text)
    ids = Ids()
    drop = frozenset({"event_id", "sdk", "server_name", "platform", "thread.id", "lineno"})
    out = []
    for item in json.loads(text):
        if item["type"] not in ("event", "transaction"):
            continue  # only events and transactions are compared
        payload = normalise(item["payload"], ids, drop=drop)
        for value in payload.get("exception", {}).get("values", ()):
            frames = value["stacktrace"]["frames"]
            value["stacktrace"]["frames"] = [(f["function"], f["in_app"]) for f in frames]
        out.append(payload)
    return out


def test_same_as_sentry_sdk(tmp_path: Path) -> None:
    script = _SCRIPT.replace("TESTS", repr(str(Path(__file__).parent)))
    sentry, ours = run_both(script, tmp_path)
    assert sentry["notes"][1:] == ours["notes"][1:] == [500, 200, 200, 403, 404]
    expected, found = _shape(sentry), _shape(ours)
    assert [p.get("type", "event") for p in found] == [
        "event",
        "transaction",
        "event",
        "transaction",
        "event",
        "transaction",
        "transaction",
        "transaction",
    ]
    assert found == expected
