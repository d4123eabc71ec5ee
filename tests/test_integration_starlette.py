"""The Starlette integration: real Starlette applications through Starlette's TestClient.

Routes are made after `init()` (the integration wraps endpoints as routes are built).
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.authentication import AuthCredentials, AuthenticationBackend, SimpleUser
from starlette.background import BackgroundTask
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Mount, Route

import tripwire
from tripwire.integrations.starlette import StarletteIntegration
from tripwire.testing import MemoryTransport, reset

with warnings.catch_warnings():  # Starlette 1.x prefers httpx2 for its TestClient
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

TRACE_ID = "771a43a4192642f0b136d5159a501700"


def init(integration: StarletteIntegration | None = None, **options: Any) -> MemoryTransport:
    tripwire.get_client().close()
    memory = MemoryTransport()
    tripwire.init(
        dsn="http://key@example.com/1",
        transport=memory,
        integrations=[integration or StarletteIntegration()],
        default_integrations=False,
        auto_enabling_integrations=False,
        release="r1",
        **options,
    )
    return memory


async def boom(request: Request) -> None:
    tripwire.set_tag("item", request.path_params["id"])
    raise ValueError("boom")


async def echo(request: Request) -> Any:
    body = await request.body()  # the body stays readable for the endpoint
    if request.query_params.get("fail"):
        raise ValueError(body.decode())
    return PlainTextResponse(body)


async def server_error(request: Request) -> None:
    raise HTTPException(503, "unavailable")


async def client_error(request: Request) -> None:
    raise HTTPException(400, "bad")


def sync_boom(request: Request) -> None:
    tripwire.set_tag("sync", "yes")
    raise KeyError("sync")


def background_failure() -> None:
    raise RuntimeError("in the background")


async def with_background(request: Request) -> Any:
    return PlainTextResponse("ok", background=BackgroundTask(background_failure))


async def ok(request: Request) -> Any:
    return PlainTextResponse("ok")


class Backend(AuthenticationBackend):
    async def authenticate(self, conn: Any) -> Any:
        return AuthCredentials(["authenticated"]), SimpleUser("ada")


def make_app(**kwargs: Any) -> Starlette:
    sub = Starlette(routes=[Route("/x/{n}", boom)])
    routes = [
        Route("/items/{id}", boom),
        Route("/echo", echo, methods=["POST"]),
        Route("/503", server_error),
        Route("/400", client_error),
        Route("/sync", sync_boom),
        Route("/background", with_background),
        Route("/ok", ok),
        Mount("/mounted", routes=[Route("/inner/{id}", boom)]),
        Mount("/app", app=sub),
        Mount(
            "/org/{org}",
            routes=[Route("/items/{id}", boom), Mount("/v2", routes=[Route("/items/{id}", boom)])],
        ),
    ]
    return Starlette(routes=routes, **kwargs)


def client(app: Starlette) -> TestClient:
    return TestClient(app, raise_server_exceptions=False)


def test_unhandled_error_named_by_route_with_request_and_transaction() -> None:
    memory = init(traces_sample_rate=1.0)
    response = client(make_app()).get(
        "/items/42?q=1",
        headers={"sentry-trace": f"{TRACE_ID}-1234567890abcdef-1", "authorization": "x"},
    )
    assert response.status_code == 500
    tripwire.flush()

    (event,) = memory.events
    assert event["exception"]["values"][0]["mechanism"] == {"type": "starlette", "handled": False}
    assert (event["transaction"], event["transaction_info"]) == ("/items/{id}", {"source": "route"})
    assert event["tags"] == {"item": "42"}
    request = event["request"]
    assert list(request) == ["method", "headers", "query_string", "url"]
    assert request["url"] == "http://testserver/items/42"
    assert request["query_string"] == "q=1"
    assert request["headers"]["authorization"] == "[Filtered]"
    (transaction,) = memory.transactions
    assert transaction["transaction"] == "/items/{id}"
    trace = transaction["contexts"]["trace"]
    assert (trace["op"], trace["origin"], trace["status"]) == (
        "http.server",
        "auto.http.starlette",
        "internal_error",
    )
    assert trace["trace_id"] == TRACE_ID
    assert transaction["tags"] == {"asgi.type": "http", "http.status_code": "500", "item": "42"}
    assert event["contexts"]["trace"]["span_id"] == trace["span_id"]


@pytest.mark.parametrize(
    ("style", "path", "name", "source"),
    [
        ("url", "/items/1", "/items/{id}", "route"),
        ("url", "/mounted/inner/2", "/mounted/inner/{id}", "route"),
        ("url", "/app/x/3", "/app/x/{n}", "route"),
        # The mounts' path templates, not the values in the url.
        ("url", "/org/acme/items/4", "/org/{org}/items/{id}", "route"),
        ("url", "/org/acme/v2/items/5", "/org/{org}/v2/items/{id}", "route"),
        ("endpoint", "/items/1", f"{__name__}.boom", "component"),
        ("endpoint", "/app/x/3", f"{__name__}.boom", "component"),
    ],
)
def test_transaction_style(style: str, path: str, name: str, source: str) -> None:
    memory = init(StarletteIntegration(transaction_style=style), traces_sample_rate=1.0)
    client(make_app()).get(path)
    tripwire.flush()
    (event,) = memory.events  # a mounted application reports once
    (transaction,) = memory.transactions
    for payload in (event, transaction):
        assert payload["transaction"] == name
        assert payload["transaction_info"] == {"source": source}


def test_unrouted_request_keeps_its_url_and_status() -> None:
    memory = init(traces_sample_rate=1.0)
    assert client(make_app()).get("/nowhere").status_code == 404
    tripwire.flush()
    (transaction,) = memory.transactions
    assert transaction["transaction"] == "http://testserver/nowhere"
    assert transaction["transaction_info"] == {"source": "url"}
    assert transaction["contexts"]["trace"]["status"] == "not_found"
    assert memory.events == []


@pytest.mark.parametrize(
    ("style", "path", "name", "source"),
    [
        # Named by the mounts' path templates, as sentry_sdk (``/mounted``), the mount's
        # path not twice (was ``/mounted/mounted``).
        ("url", "/mounted/nowhere", "/mounted", "route"),
        ("url", "/app/nowhere", "/app", "route"),
        ("url", "/org/acme/nowhere", "/org/{org}", "route"),
        ("url", "/org/acme/v2/nowhere", "/org/{org}/v2", "route"),
        # The url, as an unrouted request at the top (was an empty name).
        ("endpoint", "/mounted/nowhere", "http://testserver/mounted/nowhere", "url"),
        ("endpoint", "/app/nowhere", "http://testserver/app/nowhere", "url"),
        ("endpoint", "/org/acme/nowhere", "http://testserver/org/acme/nowhere", "url"),
    ],
)
def test_unrouted_request_under_a_mount(style: str, path: str, name: str, source: str) -> None:
    memory = init(StarletteIntegration(transaction_style=style), traces_sample_rate=1.0)
    assert client(make_app()).get(path).status_code == 404
    tripwire.flush()
    (transaction,) = memory.transactions
    assert transaction["transaction"] == name
    assert transaction["transaction_info"] == {"source": source}
    assert transaction["contexts"]["trace"]["status"] == "not_found"


def test_traces_sampler_sees_the_asgi_type_tag() -> None:
    contexts: list[dict[str, Any]] = []

    def sampler(context: dict[str, Any]) -> float:
        contexts.append(context["transaction_context"])
        return 1.0 if context["transaction_context"]["tags"]["asgi.type"] == "http" else 0.0

    memory = init(traces_sampler=sampler)
    client(make_app()).get("/ok")
    tripwire.flush()
    (context,) = contexts
    assert context["tags"] == {"asgi.type": "http"}
    assert context["origin"] == "auto.http.starlette"
    (transaction,) = memory.transactions
    assert transaction["transaction"] == "/ok"


def test_the_first_of_two_sentry_trace_headers_is_continued() -> None:
    memory = init(traces_sample_rate=1.0)
    client(make_app()).get(
        "/ok",
        headers=[
            ("sentry-trace", f"{TRACE_ID}-1234567890abcdef-1"),
            ("sentry-trace", f"{TRACE_ID}-fedcba0987654321-0"),
        ],
    )
    tripwire.flush()
    (transaction,) = memory.transactions  # the second's decision (0) is not followed
    trace = transaction["contexts"]["trace"]
    assert (trace["trace_id"], trace["parent_span_id"]) == (TRACE_ID, "1234567890abcdef")


def test_json_form_and_raw_bodies_reach_the_event_and_the_endpoint() -> None:
    memory = init(send_default_pii=True)
    app = client(make_app())
    response = app.post("/echo?fail=1", json={"a": 1, "password": "hunter2"})
    assert response.status_code == 500
    assert app.post("/echo", json={"a": 1}).text == '{"a":1}'
    app.post("/echo?fail=1", data={"name": "x"}, files={"upload": ("f.txt", b"data")})
    app.post(
        "/echo?fail=1", content=b"\x00raw", headers={"content-type": "application/octet-stream"}
    )

    json_event, form_event, raw_event = memory.events
    assert json_event["request"]["data"] == {"a": 1, "password": "[Filtered]"}
    assert json_event["exception"]["values"][0]["value"] == '{"a":1,"password":"hunter2"}'
    assert form_event["request"]["data"] == {"name": "x", "upload": ""}
    assert form_event["_meta"]["request"]["data"]["upload"] == {"": {"rem": [["!raw", "x"]]}}
    assert raw_event["request"]["data"] == ""
    assert raw_event["_meta"]["request"]["data"] == {"": {"rem": [["!raw", "x"]]}}


def test_bodies_over_max_request_body_size_are_marked_not_read() -> None:
    memory = init(max_request_body_size="small")
    app = client(make_app())
    app.post("/echo?fail=1", json={"a": "x" * 2000})
    (event,) = memory.events
    assert event["request"]["data"] == ""
    assert event["_meta"]["request"]["data"] == {"": {"rem": [["!config", "x"]]}}
    # The endpoint read the whole body itself.
    assert len(event["exception"]["values"][0]["value"]) > 1000


def test_cookies_and_ip_only_with_pii() -> None:
    memory = init()
    client(make_app()).get("/items/1", headers={"cookie": "theme=dark; sessionid=abc"})
    init(send_default_pii=True)
    memory_pii = tripwire.get_client().transport
    assert isinstance(memory_pii, MemoryTransport)
    client(make_app()).get("/items/1", headers={"cookie": "theme=dark; sessionid=abc"})

    (without,) = memory.events
    assert "cookies" not in without["request"]
    assert "env" not in without["request"]
    assert without["request"]["headers"]["cookie"] == "[Filtered]"
    (with_pii,) = memory_pii.events
    assert with_pii["request"]["cookies"] == {"theme": "dark", "sessionid": "[Filtered]"}
    assert with_pii["request"]["env"] == {"REMOTE_ADDR": "testclient"}


def test_authenticated_user_goes_with_events_only_with_pii() -> None:
    middleware = [Middleware(AuthenticationMiddleware, backend=Backend())]
    memory = init()
    client(make_app(middleware=middleware)).get("/items/1")
    assert "user" not in memory.events[0]

    memory = init(send_default_pii=True)
    client(make_app(middleware=middleware)).get("/items/1")
    assert memory.events[0]["user"] == {"username": "ada"}


def test_http_exceptions_reported_by_status() -> None:
    memory = init(traces_sample_rate=1.0)
    app = client(make_app())
    assert app.get("/503").status_code == 503
    assert app.get("/400").status_code == 400
    tripwire.flush()
    (event,) = memory.events
    exception = event["exception"]["values"][0]
    # The value is its detail, as sentry_sdk sends it.
    assert (exception["type"], exception["value"]) == ("HTTPException", "unavailable")
    assert exception["mechanism"] == {"type": "starlette", "handled": True}
    assert event["transaction"] == "/503"
    statuses = [t["contexts"]["trace"]["status"] for t in memory.transactions]
    assert statuses == ["unavailable", "invalid_argument"]

    memory = init(StarletteIntegration(failed_request_status_codes={400}))
    app = client(make_app())
    app.get("/503")
    app.get("/400")
    assert [e["exception"]["values"][0]["value"] for e in memory.events] == ["bad"]


def test_middleware_spans_only_when_asked() -> None:
    memory = init(traces_sample_rate=1.0)
    client(make_app()).get("/ok")
    init(StarletteIntegration(middleware_spans=True), traces_sample_rate=1.0)
    spanned = tripwire.get_client().transport
    assert isinstance(spanned, MemoryTransport)
    client(make_app()).get("/ok")
    tripwire.flush()

    assert memory.transactions[0]["spans"] == []
    spans = spanned.transactions[0]["spans"]
    middleware = [(s["op"], s["description"]) for s in spans if s["op"] == "middleware.starlette"]
    assert middleware == [
        ("middleware.starlette", "ServerErrorMiddleware"),
        ("middleware.starlette", "ExceptionMiddleware"),
    ]
    assert {s["origin"] for s in spans} == {"auto.http.starlette"}
    assert "middleware.starlette.send" in {s["op"] for s in spans}
    assert spans[0]["tags"]["starlette.middleware_name"] == "ServerErrorMiddleware"


def test_background_task_errors_and_sync_endpoints_keep_the_request_scope() -> None:
    memory = init(traces_sample_rate=1.0)
    app = client(make_app())
    assert app.get("/background").status_code == 200
    app.get("/sync")
    tripwire.flush()

    background, sync = memory.events
    assert background["exception"]["values"][0]["value"] == "in the background"
    assert background["transaction"] == "/background"
    assert sync["tags"] == {"sync": "yes"}
    assert sync["transaction"] == "/sync"
    by_name = {t["transaction"]: t for t in memory.transactions}
    assert by_name["/background"]["contexts"]["trace"]["status"] == "internal_error"
    assert by_name["/background"]["contexts"]["response"] == {"status_code": 200}
    # The sync endpoint ran in a worker thread: the transaction says which.
    assert by_name["/sync"]["contexts"]["trace"]["data"]["thread.name"] == "AnyIO worker thread"
    assert (
        by_name["/background"]["contexts"]["trace"]["data"]["thread.name"] != "AnyIO worker thread"
    )


def test_sessions_per_request() -> None:
    memory = init()
    app = client(make_app())
    for path in ("/ok", "/items/1", "/503", "/400"):
        app.get(path)
    tripwire.flush()
    (aggregate,) = [json.loads(item.get_bytes()) for item in memory.items("sessions")]
    (counts,) = aggregate["aggregates"]
    assert {k: v for k, v in counts.items() if k != "started"} == {
        "exited": 2,
        "crashed": 1,
        "errored": 1,
    }


def test_without_the_integration_nothing_is_reported_and_reset_undoes_the_patches() -> None:
    original = Starlette.__call__
    memory = init(traces_sample_rate=1.0)
    assert Starlette.__call__ is not original
    tripwire.get_client().close()
    tripwire.init(
        dsn="http://key@example.com/1",
        transport=memory,
        traces_sample_rate=1.0,
        default_integrations=False,
        auto_enabling_integrations=False,
    )
    client(make_app()).get("/items/1")
    tripwire.flush()
    assert memory.events == []
    assert memory.transactions == []
    reset()
    assert Starlette.__call__ is original


def test_json_response_endpoint_untouched() -> None:
    async def data(request: Request) -> Any:
        return JSONResponse(await request.json())

    init()
    app = Starlette(routes=[Route("/data", data, methods=["POST"])])
    assert client(app).post("/data", json={"k": [1, 2]}).json() == {"k": [1, 2]}


def test_list_of_failed_status_codes_is_deprecated_but_honoured() -> None:
    with pytest.warns(DeprecationWarning, match="failed_request_status_codes"):
        integration = StarletteIntegration(failed_request_status_codes=[400, range(500, 502)])
    assert 400 in integration.failed_request_status_codes
    assert 501 in integration.failed_request_status_codes
    assert 502 not in integration.failed_request_status_codes


def test_templates_get_escaped_trace_meta_tags() -> None:
    from jinja2 import DictLoader, Environment
    from starlette.templating import Jinja2Templates

    init(traces_sample_rate=1.0)
    templates = Jinja2Templates(
        env=Environment(loader=DictLoader({"page": "{{ sentry_trace_meta }}"}))
    )

    async def page(request: Request) -> Any:
        return templates.TemplateResponse(request, "page")

    app = Starlette(routes=[Route("/page", page)])
    html = (
        client(app)
        .get(
            "/page",
            headers={
                "sentry-trace": f"{TRACE_ID}-1234567890abcdef-1",
                "baggage": f'sentry-trace_id={TRACE_ID},sentry-release=a"><script>',
            },
        )
        .text
    )
    assert html.startswith(f'<meta name="sentry-trace" content="{TRACE_ID}-')
    # The incoming baggage is continued, and nothing from it can open a tag.
    assert "sentry-release=a%22%3E%3Cscript%3E" in html
    assert "<script>" not in html
