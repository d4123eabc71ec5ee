"""The FastAPI integration: real FastAPI applications, in process and over uvicorn.

Routes are declared after `init()` (the integration wraps FastAPI's request handlers as
routes are declared). One test serves an application with uvicorn on 127.0.0.1 and
sends its events to the loopback receiver; one compares what sentry_sdk 2.75 and
tripwire send for the same application (each in its own interpreter: both patch
FastAPI and Starlette for the whole process).
"""

from __future__ import annotations

import asyncio
import json
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _receiver import Receiver
from _side_by_side import of_type, run, stored_tags

import tripwire
from tripwire.integrations.fastapi import FastApiIntegration
from tripwire.integrations.starlette import StarletteIntegration
from tripwire.testing import MemoryTransport

if TYPE_CHECKING:
    import httpx
    import uvicorn
    from fastapi import APIRouter, FastAPI, Form, HTTPException, Request
    from fastapi.testclient import TestClient
    from pydantic import BaseModel

    Item: type[BaseModel]
    ReadyServer: type[uvicorn.Server]


@pytest.fixture(autouse=True, scope="module")
def _fastapi() -> None:
    """FastAPI, pydantic and uvicorn are imported when the module's tests start, not at
    collection (every xdist worker collects every module; tests/_lazy.py); the classes
    built on them are made here too."""
    global httpx, uvicorn, APIRouter, FastAPI, Form, HTTPException, Request, TestClient
    global Item, ReadyServer
    import httpx
    import uvicorn
    from fastapi import APIRouter, FastAPI, Form, HTTPException, Request
    from pydantic import BaseModel

    with warnings.catch_warnings():  # Starlette 1.x prefers httpx2 for its TestClient
        warnings.simplefilter("ignore")
        from fastapi.testclient import TestClient

    class Item(BaseModel):
        name: str
        password: str

    class ReadyServer(uvicorn.Server):
        """uvicorn's server, saying when it listens (or gave up) through an Event."""

        def __init__(self, config: uvicorn.Config) -> None:
            super().__init__(config)
            self.ready = threading.Event()

        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets=sockets)
            self.ready.set()

        def serve_in_thread(self) -> None:
            try:
                self.run()
            finally:
                self.ready.set()  # a failed start does not leave the test waiting


TRACE_ID = "771a43a4192642f0b136d5159a501700"
PARENT = "1234567890abcdef"


def init(style: str = "url", **options: Any) -> MemoryTransport:
    tripwire.get_client().close()
    memory = MemoryTransport()
    options.setdefault("dsn", "http://key@example.com/1")
    tripwire.init(
        transport=memory,
        integrations=[
            StarletteIntegration(transaction_style=style),
            FastApiIntegration(transaction_style=style),
        ],
        default_integrations=False,
        auto_enabling_integrations=False,
        release="r1",
        **options,
    )
    return memory


def make_app() -> FastAPI:
    app = FastAPI()
    router = APIRouter(prefix="/api")

    @router.post("/items/{item_id}")
    async def create_item(item_id: int, item: Item) -> None:
        tripwire.set_tag("item", str(item_id))
        raise ValueError(item.name)

    @app.get("/sync/{key}")
    def sync_view(key: str) -> None:
        tripwire.set_tag("key", key)
        raise KeyError(key)

    @app.post("/form")
    async def form_view(name: str = Form(...)) -> None:
        raise ValueError(name)

    @app.get("/http/{code}")
    async def http_error(code: int) -> None:
        raise HTTPException(status_code=code, detail="nope")

    @app.get("/ok")
    async def ok() -> dict[str, str]:
        return {"ok": "yes"}

    app.include_router(router)
    return app


def client(app: FastAPI) -> TestClient:
    return TestClient(app, raise_server_exceptions=False)


def test_error_named_by_route_with_json_body_and_transaction() -> None:
    memory = init(traces_sample_rate=1.0)
    response = client(make_app()).post(
        "/api/items/3?q=1",
        json={"name": "widget", "password": "hunter2"},
        headers={"sentry-trace": f"{TRACE_ID}-{PARENT}-1"},
    )
    assert response.status_code == 500
    tripwire.flush()

    (event,) = memory.events
    assert event["exception"]["values"][0]["value"] == "widget"  # FastAPI parsed the body too
    assert event["exception"]["values"][0]["mechanism"] == {"type": "starlette", "handled": False}
    assert (event["transaction"], event["transaction_info"]) == (
        "/api/items/{item_id}",
        {"source": "route"},
    )
    assert event["request"]["data"] == {"name": "widget", "password": "[Filtered]"}
    assert event["request"]["query_string"] == "q=1"
    assert event["tags"] == {"item": "3"}
    (transaction,) = memory.transactions
    trace = transaction["contexts"]["trace"]
    assert (trace["trace_id"], trace["parent_span_id"]) == (TRACE_ID, PARENT)
    assert (trace["op"], trace["origin"], trace["status"]) == (
        "http.server",
        "auto.http.starlette",
        "internal_error",
    )
    assert transaction["transaction"] == "/api/items/{item_id}"
    assert transaction["request"]["data"] == event["request"]["data"]


def test_endpoint_style_names_by_function() -> None:
    memory = init("endpoint", traces_sample_rate=1.0)
    client(make_app()).get("/sync/k")
    tripwire.flush()
    (event,) = memory.events
    assert event["transaction"] == f"{__name__}.make_app.<locals>.sync_view"
    assert event["transaction_info"] == {"source": "component"}
    assert memory.transactions[0]["transaction"] == event["transaction"]


def test_sync_endpoint_in_the_threadpool_keeps_the_request_scope() -> None:
    memory = init(traces_sample_rate=1.0)
    app = client(make_app())
    app.get("/sync/first")
    app.get("/sync/second")
    tripwire.flush()
    assert [e["tags"] for e in memory.events] == [{"key": "first"}, {"key": "second"}]
    for transaction in memory.transactions:
        assert transaction["transaction"] == "/sync/{key}"
        assert transaction["contexts"]["trace"]["data"]["thread.name"] == "AnyIO worker thread"
        assert transaction["tags"]["key"] in ("first", "second")


def test_form_body_and_http_exceptions() -> None:
    memory = init()
    app = client(make_app())
    app.post("/form", data={"name": "ada"})
    assert app.get("/http/404").status_code == 404
    assert app.get("/http/502").status_code == 502
    form_event, http_event = memory.events
    assert form_event["request"]["data"] == {"name": "ada"}
    assert form_event["exception"]["values"][0]["value"] == "ada"
    assert http_event["exception"]["values"][0]["mechanism"] == {
        "type": "starlette",
        "handled": True,
    }
    assert http_event["transaction"] == "/http/{code}"


@pytest.mark.parametrize("outer", ["starlette", "fastapi"])
@pytest.mark.parametrize(
    ("style", "method", "path", "name", "source"),
    [
        ("url", "GET", "/fa/ok", "/fa/ok", "route"),
        # The router's prefix and the mount's path (the mount's was left out).
        ("url", "POST", "/fa/api/items/3", "/fa/api/items/{item_id}", "route"),
        # Under a Starlette application as sentry_sdk, the mount's path (was ``/fa/fa``);
        # FastAPI's router leaves no route in the scope: the url.
        ("url", "GET", "/fa/nowhere", "/fa", "route"),
        ("endpoint", "GET", "/fa/ok", f"{__name__}.make_app.<locals>.ok", "component"),
        # The url, as an unrouted request at the top (was an empty name).
        ("endpoint", "GET", "/fa/nowhere", "http://testserver/fa/nowhere", "url"),
    ],
)
def test_mounted_application(
    outer: str, style: str, method: str, path: str, name: str, source: str
) -> None:
    from starlette.applications import Starlette
    from starlette.routing import Mount

    memory = init(style, traces_sample_rate=1.0)
    if outer == "starlette":
        app: Any = Starlette(routes=[Mount("/fa", app=make_app())])
    else:
        app = FastAPI()
        app.mount("/fa", make_app())
        if name == "/fa":
            name, source = "http://testserver/fa/nowhere", "url"
    client(app).request(method, path, json={"name": "n", "password": "p"})
    tripwire.flush()
    (transaction,) = memory.transactions
    assert transaction["transaction"] == name
    assert transaction["transaction_info"] == {"source": source}
    for event in memory.events:
        assert (event["transaction"], event["transaction_info"]) == (name, {"source": source})


def test_traces_sampler_sees_the_asgi_type_tag() -> None:
    tags: list[Any] = []

    def sampler(context: dict[str, Any]) -> float:
        tags.append(context["transaction_context"]["tags"])
        return 1.0 if context["transaction_context"]["tags"]["asgi.type"] == "http" else 0.0

    memory = init(traces_sampler=sampler)
    client(make_app()).get("/ok")
    tripwire.flush()
    assert tags == [{"asgi.type": "http"}]
    assert [t["transaction"] for t in memory.transactions] == ["/ok"]


def test_fastapi_alone_names_errors_and_keeps_no_request_state() -> None:
    """Without the Starlette integration (as sentry_sdk): no transaction, errors named.

    The scopes are then shared by every request: nothing of one request is kept in them
    (sentry_sdk adds a processor with the body there, per request).
    """
    tripwire.get_client().close()
    memory = MemoryTransport()
    tripwire.init(
        dsn="http://key@example.com/1",
        transport=memory,
        integrations=[FastApiIntegration()],
        default_integrations=False,
        auto_enabling_integrations=False,
        traces_sample_rate=1.0,
    )

    app = FastAPI()

    @app.post("/items/{item_id}")
    async def create_item(item_id: int, item: Item) -> None:
        tripwire.capture_message("seen")

    processors = list(tripwire.get_isolation_scope()._d.event_processors)
    client(app).post("/items/1", json={"name": "n", "password": "p"})
    client(app).post("/items/2", json={"name": "n", "password": "p"})
    assert [e["transaction"] for e in memory.events] == ["/items/{item_id}"] * 2
    assert "request" not in memory.events[0]
    assert list(tripwire.get_isolation_scope()._d.event_processors) == processors


# -- sentry_sdk 2.75 and tripwire on the same application -------------------------------------

DIFFERENTIAL = """
import warnings
warnings.simplefilter("ignore", DeprecationWarning)
from sentry_sdk.integrations.fastapi import FastApiIntegration
from sentry_sdk.integrations.starlette import StarletteIntegration

sentry_sdk.init(
    dsn="http://key@example.com/1",
    transport=KEEP,
    release="r1",
    traces_sample_rate=1.0,
    send_default_pii=True,
    default_integrations=False,
    integrations=[StarletteIntegration(), FastApiIntegration()],
)

from fastapi import APIRouter, FastAPI
from pydantic import BaseModel
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

app = FastAPI()
router = APIRouter(prefix="/api")

class Item(BaseModel):
    name: str
    password: str

@router.post("/items/{item_id}")
async def create_item(item_id: int, item: Item):
    sentry_sdk.set_tag("item", str(item_id))
    sentry_sdk.set_user({"id": "u1"})
    raise ValueError(item.name)

@app.get("/sync/{key}")
def sync_view(key: str):
    sentry_sdk.add_breadcrumb(message="in sync")
    raise KeyError(key)

@app.get("/ok")
async def ok():
    return {"ok": True}

app.include_router(router)
client = TestClient(app, raise_server_exceptions=False)
client.post(
    "/api/items/3?q=a%20b",
    json={"name": "widget", "password": "hunter2"},
    headers={
        "sentry-trace": "771a43a4192642f0b136d5159a501700-1234567890abcdef-1",
        "cookie": "theme=dark; sessionid=abc",
        "authorization": "Bearer x",
    },
)
client.get("/sync/k", headers={"x-forwarded-for": "1.2.3.4"})
client.get("/ok")
client.get("/missing")
finish()
"""


def _shape(payload: dict[str, Any]) -> dict[str, Any]:
    """What both SDKs must agree on for one event or transaction."""
    trace = payload["contexts"]["trace"]
    shape = {
        "type": payload.get("type", "event"),
        "transaction": payload.get("transaction"),
        "transaction_info": payload.get("transaction_info"),
        "request": payload.get("request"),
        "user": payload.get("user"),
        "tags": stored_tags(payload.get("tags")),
        "level": payload.get("level"),
        "response": payload["contexts"].get("response"),
        "trace": {
            "op": trace.get("op"),
            "origin": trace.get("origin"),
            "status": trace.get("status"),
            "continued": trace.get("trace_id") == TRACE_ID,
            "parent": trace.get("parent_span_id"),
        },
        "exception": [
            (value["type"], value["value"], value["mechanism"])
            for value in (payload.get("exception") or {}).get("values", [])
        ],
        "breadcrumbs": [
            crumb.get("message") for crumb in (payload.get("breadcrumbs") or {}).get("values", [])
        ],
        "spans": [(s["op"], s.get("description")) for s in payload.get("spans", [])],
        "_meta": payload.get("_meta"),
    }
    if shape["type"] == "transaction":
        shape["trace_data"] = {
            k: v for k, v in trace.get("data", {}).items() if not k.startswith("thread.")
        }
    return shape


def test_same_events_and_transactions_as_sentry_sdk(tmp_path: Path) -> None:
    theirs = run(DIFFERENTIAL, "sentry", tmp_path)
    ours = run(DIFFERENTIAL, "tripwire", tmp_path)
    expected = [_shape(p) for p in of_type(theirs, "event") + of_type(theirs, "transaction")]
    found = [_shape(p) for p in of_type(ours, "event") + of_type(ours, "transaction")]
    assert len(expected) == 6  # 2 errors, 4 transactions
    assert found == expected
    # The PII the scenario turned on is there, and the sessions agree.
    assert expected[0]["request"]["cookies"] == {"theme": "dark", "sessionid": "[Filtered]"}
    assert expected[1]["request"]["env"] == {"REMOTE_ADDR": "1.2.3.4"}
    sessions = [
        {k: v for k, v in agg.items() if k != "started"}
        for found_items in (theirs, ours)
        for payload in of_type(found_items, "sessions")
        for agg in payload["aggregates"]
    ]
    assert sessions == [{"crashed": 2, "exited": 2}] * 2


# -- over a real server -----------------------------------------------------------------------


@pytest.fixture
def served(rx: Receiver) -> Iterator[str]:
    """A FastAPI application served by uvicorn on 127.0.0.1, sending to the receiver."""
    tripwire.get_client().close()
    tripwire.init(
        dsn=rx.dsn(),
        integrations=[StarletteIntegration(), FastApiIntegration()],
        default_integrations=False,
        auto_enabling_integrations=False,
        traces_sample_rate=1.0,
        send_default_pii=True,
        release="r1",
    )
    app = FastAPI()

    @app.get("/work/{n}")
    async def work(n: int, request: Request) -> None:
        tripwire.set_tag("n", str(n))
        tripwire.set_user({"id": f"user-{n}"})
        tripwire.add_breadcrumb(message=f"crumb-{n}")
        await asyncio.sleep(0)  # other requests' tasks run in between
        raise ValueError(f"failure {n}")

    # asyncio's own loop: uvloop (installed with Sanic) keeps a self-pipe open after it.
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="critical", lifespan="off", loop="asyncio"
    )
    server = ReadyServer(config)
    thread = threading.Thread(target=server.serve_in_thread, daemon=True)
    thread.start()
    try:
        assert server.ready.wait(30) and server.started, "uvicorn did not start"
        port = server.servers[0].sockets[0].getsockname()[1]
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
        assert not thread.is_alive()


def test_uvicorn_concurrent_requests_are_isolated_and_continue_their_traces(
    rx: Receiver, served: str
) -> None:
    url = served
    count = 8

    async def hit_all() -> list[int]:
        async with httpx.AsyncClient() as http:
            responses = await asyncio.gather(
                *(
                    http.get(
                        f"{url}/work/{n}",
                        headers={"sentry-trace": f"{TRACE_ID[:-2]}{n:02d}-{PARENT}-1"},
                    )
                    for n in range(count)
                )
            )
        return [r.status_code for r in responses]

    assert asyncio.run(hit_all()) == [500] * count
    # Generous timeouts: under load the default 2 s passed before all went out (seen).
    # The receiver records a request before it answers: all is in once these return.
    tripwire.flush(timeout=30)
    tripwire.get_client().close(timeout=30)  # the request-mode sessions go out on close
    items = [(item.type, json.loads(item.get_bytes())) for item in rx.items()]

    events = [p for t, p in items if t == "event"]
    transactions = [p for t, p in items if t == "transaction"]
    assert len(events) == count
    assert len(transactions) == count
    for event in events:
        n = int(event["tags"]["n"])
        assert event["exception"]["values"][0]["value"] == f"failure {n}"
        assert event["user"] == {"id": f"user-{n}"}
        assert [c["message"] for c in event["breadcrumbs"]["values"]] == [f"crumb-{n}"]
        assert event["transaction"] == "/work/{n}"
        assert event["request"]["url"] == f"{url}/work/{n}"
        assert event["request"]["env"] == {"REMOTE_ADDR": "127.0.0.1"}
        trace = event["contexts"]["trace"]
        assert trace["trace_id"] == f"{TRACE_ID[:-2]}{n:02d}"
        assert trace["parent_span_id"] == PARENT
    for transaction in transactions:
        n = int(transaction["tags"]["n"])
        assert transaction["contexts"]["trace"]["trace_id"] == f"{TRACE_ID[:-2]}{n:02d}"
        assert transaction["contexts"]["response"] == {"status_code": 500}
    # One aggregate, or more when the session flusher ran while requests were in flight.
    sessions = [p for t, p in items if t == "sessions"]
    assert sessions
    assert {s["attrs"]["release"] for s in sessions} == {"r1"}
    counted: dict[str, int] = {}
    for aggregate in (a for s in sessions for a in s["aggregates"]):
        for key, value in aggregate.items():
            if key != "started":
                counted[key] = counted.get(key, 0) + value
    assert counted == {"crashed": count}
