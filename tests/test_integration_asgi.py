"""`SentryAsgiMiddleware` around bare ASGI applications, driven through the ASGI protocol.

Each request runs as an asyncio task, as a server runs it; concurrent requests run as
concurrent tasks on one loop.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from typing import Any, Callable

import pytest

import tripwire
from tripwire.integrations.asgi import SentryAsgiMiddleware
from tripwire.testing import MemoryTransport

TRACE_ID = "771a43a4192642f0b136d5159a501700"
PARENT = "1234567890abcdef"


def init(**options: Any) -> MemoryTransport:
    tripwire.get_client().close()
    memory = MemoryTransport()
    options.setdefault("dsn", "http://key@example.com/1")
    tripwire.init(transport=memory, default_integrations=False, release="r1", **options)
    return memory


def http_scope(path: str = "/items/7", **extra: Any) -> dict[str, Any]:
    headers = extra.pop("headers", {})
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"example.org")]
        + [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("10.0.0.9", 50000),
        "server": ("example.org", 80),
    }
    scope.update(extra)
    return scope


async def request(app: Any, scope: dict[str, Any]) -> list[dict[str, Any]]:
    """Run one connection; returns what the application sent (an error propagates)."""
    sent: list[dict[str, Any]] = []
    messages = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return sent


def serve(app: Any, scope: dict[str, Any]) -> list[dict[str, Any]]:
    return asyncio.run(request(app, scope))


async def respond(send: Callable[..., Any], status: int, body: bytes = b"ok") -> None:
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def hello(scope: Any, receive: Any, send: Any) -> None:
    await respond(send, 200)


async def failing(scope: Any, receive: Any, send: Any) -> None:
    tripwire.set_tag("where", scope["path"])
    await respond(send, 500)
    raise ZeroDivisionError("boom")


def test_unhandled_error_event_with_request_and_url_name() -> None:
    memory = init()
    app = SentryAsgiMiddleware(failing)
    scope = http_scope(
        query_string=b"q=a%20b&x=1",
        headers={"authorization": "Bearer s3cret", "x-forwarded-for": "1.2.3.4", "a": "1"},
    )
    with pytest.raises(ZeroDivisionError):
        serve(app, scope)

    (event,) = memory.events
    (exception,) = event["exception"]["values"]
    assert exception["type"] == "ZeroDivisionError"
    assert exception["mechanism"] == {"type": "asgi", "handled": False}
    assert event["tags"] == {"where": "/items/7"}
    assert event["transaction"] == "http://example.org/items/7"
    assert event["transaction_info"] == {"source": "url"}
    # sentry_sdk's key order; sensitive headers filtered, no IP without PII.
    assert event["request"] == {
        "method": "GET",
        "headers": {
            "host": "example.org",
            "authorization": "[Filtered]",
            "x-forwarded-for": "[Filtered]",
            "a": "1",
        },
        "query_string": "q=a b&x=1",
        "url": "http://example.org/items/7",
    }
    assert list(event["request"]) == ["method", "headers", "query_string", "url"]
    assert memory.transactions == []


def test_pii_adds_the_client_address_and_keeps_headers() -> None:
    memory = init(send_default_pii=True)
    with pytest.raises(ZeroDivisionError):
        serve(
            SentryAsgiMiddleware(failing),
            http_scope(headers={"x-forwarded-for": "1.2.3.4, 5.6.7.8"}),
        )
    with pytest.raises(ZeroDivisionError):
        serve(SentryAsgiMiddleware(failing), http_scope(server=("h", 8080), headers={}))

    first, second = memory.events
    assert first["request"]["env"] == {"REMOTE_ADDR": "1.2.3.4"}
    assert first["request"]["headers"]["x-forwarded-for"] == "1.2.3.4, 5.6.7.8"
    assert second["request"]["env"] == {"REMOTE_ADDR": "10.0.0.9"}


def test_transaction_continues_the_trace_with_status_from_the_response() -> None:
    memory = init(traces_sample_rate=1.0)
    app = SentryAsgiMiddleware(hello, transaction_style="url")
    sent = serve(
        app,
        http_scope(
            headers={"sentry-trace": f"{TRACE_ID}-{PARENT}-1", "baggage": "sentry-release=up"},
        ),
    )
    assert sent[0]["status"] == 200
    tripwire.flush()

    (transaction,) = memory.transactions
    trace = transaction["contexts"]["trace"]
    assert (trace["trace_id"], trace["parent_span_id"]) == (TRACE_ID, PARENT)
    assert trace["op"] == "http.server"
    assert trace["origin"] == "manual"
    assert trace["status"] == "ok"
    assert trace["data"]["http.response.status_code"] == 200
    assert transaction["contexts"]["response"] == {"status_code": 200}
    assert transaction["tags"] == {"asgi.type": "http", "http.status_code": "200"}
    assert transaction["transaction"] == "http://example.org/items/7"
    assert transaction["transaction_info"] == {"source": "url"}
    assert transaction["request"]["url"] == "http://example.org/items/7"


def test_w3c_traceparent_is_continued_and_errors_join_the_transaction() -> None:
    memory = init(traces_sample_rate=1.0)
    scope = http_scope(headers={"traceparent": f"00-{TRACE_ID}-{PARENT}-01"})
    with pytest.raises(ZeroDivisionError):
        serve(SentryAsgiMiddleware(failing), scope)
    tripwire.flush()

    (event,) = memory.events
    (transaction,) = memory.transactions
    assert event["contexts"]["trace"]["trace_id"] == TRACE_ID
    assert event["contexts"]["trace"]["span_id"] == transaction["contexts"]["trace"]["span_id"]
    assert transaction["contexts"]["trace"]["status"] == "internal_error"
    assert transaction["contexts"]["response"] == {"status_code": 500}


def test_names_from_the_endpoint_or_route_the_framework_put_in_the_scope() -> None:
    class Route:
        path = "/items/{id}"

    def view() -> None:
        pass

    async def routed(scope: Any, receive: Any, send: Any) -> None:
        scope["endpoint"] = view
        scope["route"] = Route()
        await failing(scope, receive, send)

    memory = init(traces_sample_rate=1.0)
    for style in ("endpoint", "url"):
        with pytest.raises(ZeroDivisionError):
            serve(SentryAsgiMiddleware(routed, transaction_style=style), http_scope())
    tripwire.flush()

    endpoint_event, url_event = memory.events
    assert endpoint_event["transaction"].endswith(
        "test_names_from_the_endpoint_or_route_the_framework_put_in_the_scope.<locals>.view"
    )
    assert endpoint_event["transaction_info"] == {"source": "component"}
    assert (url_event["transaction"], url_event["transaction_info"]) == (
        "/items/{id}",
        {"source": "route"},
    )
    names = [(t["transaction"], t["transaction_info"]["source"]) for t in memory.transactions]
    assert names == [(endpoint_event["transaction"], "component"), ("/items/{id}", "route")]

    with pytest.raises(ValueError, match="transaction_style"):
        SentryAsgiMiddleware(hello, transaction_style="path")


def test_an_endpoint_without_a_name_leaves_the_url_never_an_empty_name() -> None:
    class Application:  # an instance (as the `Router` of a `Mount`): no qualified name
        async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
            pass

    async def routed(scope: Any, receive: Any, send: Any) -> None:
        scope["endpoint"] = Application()
        await failing(scope, receive, send)

    memory = init(traces_sample_rate=1.0)
    with pytest.raises(ZeroDivisionError):
        serve(SentryAsgiMiddleware(routed, transaction_style="endpoint"), http_scope())
    tripwire.flush()
    (event,) = memory.events
    (transaction,) = memory.transactions
    for payload in (event, transaction):
        assert payload["transaction"] == "http://example.org/items/7"
        assert payload["transaction_info"] == {"source": "url"}


def test_traces_sampler_sees_the_asgi_type_tag_in_the_transaction_context() -> None:
    """sentry_sdk's keys (its ASGI middleware tags the transaction before sampling)."""
    seen: list[dict[str, Any]] = []

    def sampler(context: dict[str, Any]) -> float:
        seen.append(context)
        # As a sampler written for sentry_sdk reads it: a KeyError would drop the request.
        kind = context["transaction_context"]["tags"]["asgi.type"]
        return 1.0 if kind in ("http", "websocket") else 0.0

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "websocket":
            await send({"type": "websocket.accept"})
        else:
            await respond(send, 200)

    memory = init(traces_sampler=sampler)
    serve(SentryAsgiMiddleware(app), http_scope(headers={"sentry-trace": f"{TRACE_ID}-{PARENT}"}))
    ws = http_scope(type="websocket", scheme="ws")
    del ws["method"]
    serve(SentryAsgiMiddleware(app), ws)
    tripwire.flush()

    http, websocket = seen
    assert set(http) == {"transaction_context", "parent_sampled", "asgi_scope"}
    assert set(http["transaction_context"]) == {
        "trace_id",
        "span_id",
        "parent_span_id",
        "same_process_as_parent",
        "op",
        "description",
        "start_timestamp",
        "timestamp",
        "origin",
        "tags",
        "data",
        "name",
        "source",
        "sampled",
    }
    assert http["transaction_context"]["tags"] == {"asgi.type": "http"}
    assert http["transaction_context"]["parent_span_id"] == PARENT
    assert websocket["transaction_context"]["tags"] == {"asgi.type": "websocket"}
    assert [t["contexts"]["trace"]["op"] for t in memory.transactions] == [
        "http.server",
        "websocket.server",
    ]
    assert memory.transactions[0]["tags"] == {"asgi.type": "http", "http.status_code": "200"}


def test_a_trace_header_sent_twice_continues_the_first_sentry_trace() -> None:
    """As sentry_sdk: the values are joined, the first `sentry-trace` is continued (the
    second's decision not to sample is not), and both baggages count."""
    memory = init(traces_sample_rate=1.0)
    scope = http_scope()
    scope["headers"] += [
        (b"sentry-trace", f"{TRACE_ID}-{PARENT}-1".encode()),
        (b"sentry-trace", f"{'a' * 32}-fedcba0987654321-0".encode()),
        (b"baggage", f"sentry-trace_id={TRACE_ID},sentry-release=up".encode()),
        (b"baggage", b"sentry-environment=upstream,other=x"),
    ]
    serve(SentryAsgiMiddleware(hello), scope)
    garbage_first = http_scope()
    garbage_first["headers"] += [
        (b"sentry-trace", b"garbage"),
        (b"sentry-trace", f"{TRACE_ID}-{PARENT}-1".encode()),
    ]
    serve(SentryAsgiMiddleware(hello), garbage_first)
    tripwire.flush()

    first, new = memory.transactions
    trace = first["contexts"]["trace"]
    assert (trace["trace_id"], trace["parent_span_id"]) == (TRACE_ID, PARENT)
    dsc = next(e.headers["trace"] for e in memory.envelopes if e.get_transaction_event())
    assert (dsc["release"], dsc["environment"]) == ("up", "upstream")
    # A first value that does not parse: a new trace (sentry_sdk's too).
    assert new["contexts"]["trace"]["trace_id"] != TRACE_ID
    assert new["contexts"]["trace"]["parent_span_id"] is None


def test_a_name_the_application_sets_is_kept() -> None:
    async def named(scope: Any, receive: Any, send: Any) -> None:
        # With a source (sentry_sdk overrides a name set without one, and so do we).
        tripwire.get_current_scope().set_transaction_name("custom-name", source="route")
        await failing(scope, receive, send)

    memory = init(traces_sample_rate=1.0)
    with pytest.raises(ZeroDivisionError):
        serve(SentryAsgiMiddleware(named), http_scope())
    tripwire.flush()
    (event,) = memory.events
    assert (event["transaction"], event["transaction_info"]) == ("custom-name", {"source": "route"})
    assert memory.transactions[0]["transaction"] == "custom-name"


def test_asgi2_application() -> None:
    def app2(scope: Any) -> Any:
        async def instance(receive: Any, send: Any) -> None:
            await failing(scope, receive, send)

        return instance

    memory = init()
    middleware = SentryAsgiMiddleware(app2)
    with pytest.raises(ZeroDivisionError):
        asyncio.run(_asgi2(middleware, http_scope()))
    assert memory.events[0]["exception"]["values"][0]["mechanism"]["type"] == "asgi"
    assert SentryAsgiMiddleware(app2, asgi_version=3).__call__ is not None


async def _asgi2(app: Any, scope: dict[str, Any]) -> None:
    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(message: dict[str, Any]) -> None:
        pass

    await app(scope)(receive, send)


def test_websocket_transaction_and_lifespan_passed_through() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            raise RuntimeError("startup failed")
        await send({"type": "websocket.accept"})

    memory = init(traces_sample_rate=1.0)
    middleware = SentryAsgiMiddleware(app)
    ws = http_scope(
        type="websocket", scheme="ws", headers={"sentry-trace": f"{TRACE_ID}-{PARENT}-1"}
    )
    del ws["method"]
    serve(middleware, ws)
    with pytest.raises(RuntimeError):
        serve(middleware, {"type": "lifespan", "asgi": {"version": "3.0"}})
    tripwire.flush()

    (transaction,) = memory.transactions
    assert transaction["contexts"]["trace"]["op"] == "websocket.server"
    assert transaction["contexts"]["trace"]["trace_id"] == TRACE_ID
    assert transaction["tags"] == {"asgi.type": "websocket"}
    assert transaction["transaction"] == "ws://example.org/items/7"
    (event,) = memory.events  # the lifespan error: reported, with no request
    assert event["exception"]["values"][0]["value"] == "startup failed"
    assert "request" not in event


def test_methods_not_captured_get_no_transaction_but_errors_still_report() -> None:
    memory = init(traces_sample_rate=1.0)
    serve(SentryAsgiMiddleware(hello), http_scope(method="HEAD"))
    serve(SentryAsgiMiddleware(hello, http_methods_to_capture=("POST",)), http_scope())
    with pytest.raises(ZeroDivisionError):
        serve(SentryAsgiMiddleware(failing), http_scope(method="OPTIONS"))
    tripwire.flush()
    assert memory.transactions == []
    assert len(memory.events) == 1
    assert memory.events[0]["transaction"] == "http://example.org/items/7"


def test_nested_middleware_reports_once() -> None:
    memory = init(traces_sample_rate=1.0)
    app = SentryAsgiMiddleware(SentryAsgiMiddleware(failing))
    with pytest.raises(ZeroDivisionError):
        serve(app, http_scope())
    tripwire.flush()
    assert len(memory.events) == 1
    assert len(memory.transactions) == 1


def test_concurrent_requests_keep_their_own_tags_user_and_breadcrumbs() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        me = scope["path"].rsplit("/", 1)[1]
        tripwire.set_tag("me", me)
        tripwire.set_user({"id": me})
        tripwire.add_breadcrumb(message=f"crumb-{me}")
        await asyncio.sleep(0)  # let the other requests' tasks run in between
        tripwire.add_breadcrumb(message=f"late-{me}")
        tripwire.capture_message(f"from {me}")
        await respond(send, 200)

    async def many() -> None:
        middleware = SentryAsgiMiddleware(app)
        await asyncio.gather(
            *(asyncio.ensure_future(request(middleware, http_scope(f"/r/{n}"))) for n in range(20))
        )

    memory = init(traces_sample_rate=1.0)
    tripwire.set_tag("global", "yes")
    asyncio.run(many())
    tripwire.flush()

    assert len(memory.events) == 20
    for event in memory.events:
        me = event["message"].split()[-1]
        assert event["tags"] == {"global": "yes", "me": me}
        assert event["user"] == {"id": me}
        crumbs = [c["message"] for c in event["breadcrumbs"]["values"]]
        assert crumbs == [f"crumb-{me}", f"late-{me}"]
        assert event["request"]["url"] == f"http://example.org/r/{me}"
    # Nothing leaked into the process's own scopes.
    assert tripwire.get_isolation_scope()._tags == {"global": "yes"}
    by_name = {t["transaction"]: t["tags"]["me"] for t in memory.transactions}
    assert by_name == {f"http://example.org/r/{n}": str(n) for n in range(20)}


def test_request_mode_sessions_aggregate_errored_and_crashed() -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["path"] == "/handled":
            tripwire.capture_exception(ValueError("handled"))
        elif scope["path"] == "/crash":
            raise ValueError("crash")
        await respond(send, 200)

    memory = init()
    middleware = SentryAsgiMiddleware(app)
    for path in ("/ok", "/ok", "/handled", "/crash"):
        try:
            serve(middleware, http_scope(path))
        except ValueError:
            pass
    tripwire.flush()

    (aggregate,) = [json.loads(item.get_bytes()) for item in memory.items("sessions")]
    assert aggregate["attrs"] == {"release": "r1", "environment": "production"}
    (counts,) = aggregate["aggregates"]
    assert {k: v for k, v in counts.items() if k != "started"} == {
        "exited": 2,
        "errored": 1,
        "crashed": 1,
    }


def test_without_a_client_the_application_runs_untouched() -> None:
    sent = serve(SentryAsgiMiddleware(hello), http_scope())
    assert sent[0]["status"] == 200


def test_import_and_init_load_no_web_framework() -> None:
    code = (
        "import sys, tripwire\n"
        "tripwire.init(dsn='http://k@example.com/1', traces_sample_rate=1.0)\n"
        "loaded = {'starlette', 'fastapi', 'flask', 'django'} & set(sys.modules)\n"
        "assert not loaded, loaded\n"
        "import fastapi, starlette.applications, starlette.routing\n"
        "assert getattr(starlette.applications.Starlette.__call__, '__tripwire_starlette__')\n"
        "assert getattr(fastapi.routing.get_request_handler, '__tripwire_fastapi__')\n"
        "names = set(tripwire.get_client().integrations)\n"
        "assert {'starlette', 'fastapi'} <= names, names\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
