"""Django integration: a real Django project (tests/django_app) driven in-process.

Requests go through Django's real `WSGIHandler` (werkzeug's test client speaks WSGI to
it) and `ASGIHandler` (httpx's ASGI transport): Django's own test `Client` uses a
handler of its own that no WSGI middleware wraps, so it would not show what users get.

Django's settings are process-wide. They are configured once, here, for the test
project (sqlite in memory, shared by threads); they only matter to code that uses
Django, and no other test module does in-process. The differential test against
sentry_sdk runs in subprocesses: sentry_sdk patches Django for good.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

# Found, not imported: every xdist worker collects every module (tests/_lazy.py).
for _needed in ("django", "werkzeug"):
    if importlib.util.find_spec(_needed) is None:
        pytest.skip(f"could not import {_needed!r}", allow_module_level=True)

import django_app  # noqa: E402 (after the skip checks)
from _side_by_side import dumps, events, of_type, run_both  # noqa: E402

import tripwire  # noqa: E402
from tripwire.integrations.django import DjangoIntegration  # noqa: E402
from tripwire.testing import MemoryTransport  # noqa: E402

if TYPE_CHECKING:
    import werkzeug.test as werkzeug_test

TESTS = Path(__file__).resolve().parent
DSN = "https://key@o1.ingest.sentry.io/1"
TRACE_ID = "771a43a4192642f0b136d5159a501700"
PARENT_SPAN = "1234567890abcdef"


@pytest.fixture(scope="module", autouse=True)
def _project() -> None:
    global werkzeug_test
    import werkzeug.test as werkzeug_test

    django_app.configure()


def init(**options: Any) -> MemoryTransport:
    """tripwire with only the Django integration (plus what a test asks for)."""
    integration = options.pop("integration", None) or DjangoIntegration()
    tripwire.get_client().close()  # a test may init twice: the first client's threads end
    memory = MemoryTransport()
    tripwire.init(
        dsn=DSN,
        transport=memory,
        release="r1",
        default_integrations=False,
        integrations=[integration],
        **options,
    )
    return memory


def wsgi_client() -> Any:
    """A WSGI client for a new `WSGIHandler` (its middleware loaded now, after init)."""
    from django.core.handlers.wsgi import WSGIHandler

    return werkzeug_test.Client(WSGIHandler())


def sessions(memory: MemoryTransport) -> list[dict[str, Any]]:
    tripwire.flush()
    return [
        bucket
        for item in memory.items("sessions")
        for bucket in json.loads(item.get_bytes())["aggregates"]
    ]


def spans_by_op(transaction: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for span in transaction["spans"]:
        found.setdefault(span["op"], []).append(span)
    return found


# -- errors, names, request data ---------------------------------------------------------


def test_unhandled_view_error_is_reported_with_the_route_and_the_request() -> None:
    memory = init(traces_sample_rate=1.0)
    response = wsgi_client().get("/boom/7/?q=1", headers={"User-Agent": "ua"})
    assert response.status_code == 500

    (event,) = memory.events
    (exception,) = event["exception"]["values"]
    assert (exception["type"], exception["value"]) == ("ValueError", "boom 7")
    assert exception["mechanism"] == {"type": "django", "handled": False}
    assert event["transaction"] == "/boom/{item_id}/"
    assert event["transaction_info"] == {"source": "route"}
    assert event["tags"] == {"item": "7"}
    request = event["request"]
    assert request["url"] == "http://localhost/boom/7/"
    assert request["method"] == "GET"
    assert request["query_string"] == "q=1"
    assert request["headers"]["User-Agent"] == "ua"
    assert "cookies" not in request and "user" not in event  # no personal data by default

    (transaction,) = memory.transactions
    assert transaction["transaction"] == "/boom/{item_id}/"
    trace = transaction["contexts"]["trace"]
    assert (trace["op"], trace["origin"], trace["status"]) == (
        "http.server",
        "auto.http.django",
        "internal_error",
    )
    assert event["contexts"]["trace"]["trace_id"] == trace["trace_id"]
    ((bucket),) = sessions(memory)
    assert {k: v for k, v in bucket.items() if k != "started"} == {"crashed": 1}


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/boom/3/", "/boom/{item_id}/"),
        ("/shop/items/5/", "/shop/items/{item_id}/"),
        ("/shop/legacy/abc/12/", "/shop/legacy/{slug}/{var}/"),
        ("/nowhere/", "/nowhere/"),
    ],
)
def test_url_style_names_from_the_pattern(path: str, expected: str) -> None:
    memory = init(traces_sample_rate=1.0)
    wsgi_client().get(path)
    (transaction,) = memory.transactions
    assert transaction["transaction"] == expected
    source = "url" if path == "/nowhere/" else "route"
    assert transaction["transaction_info"] == {"source": source}


def test_function_name_style() -> None:
    memory = init(
        traces_sample_rate=1.0, integration=DjangoIntegration(transaction_style="function_name")
    )
    client = wsgi_client()
    client.get("/boom/3/")
    client.get("/shop/items/5/")
    (event,) = memory.events
    assert event["transaction"] == "django_app.views.boom"
    assert event["transaction_info"] == {"source": "component"}
    names = [t["transaction"] for t in memory.transactions]
    assert names == ["django_app.views.boom", "django_app.views.item"]


def test_invalid_transaction_style() -> None:
    with pytest.raises(ValueError, match="transaction_style"):
        DjangoIntegration(transaction_style="endpoint")


def test_404_and_403_are_not_reported_unless_asked() -> None:
    memory = init()
    client = wsgi_client()
    assert client.get("/missing/").status_code == 404
    assert client.get("/not-a-route/").status_code == 404
    assert client.get("/forbidden/").status_code == 403
    tripwire.flush()
    assert memory.events == []
    assert sessions(memory)[0].get("errored", 0) == 0

    memory = init(integration=DjangoIntegration(failed_request_status_codes={403}))
    client = wsgi_client()
    client.get("/forbidden/")
    client.get("/missing/")
    (event,) = memory.events
    (exception,) = event["exception"]["values"]
    assert exception["type"] == "PermissionDenied"
    assert exception["mechanism"] == {"type": "django", "handled": True}
    (bucket,) = sessions(memory)
    assert (bucket.get("errored"), bucket.get("exited"), bucket.get("crashed")) == (1, 1, None)


def test_disallowed_host_is_not_an_error_event() -> None:
    memory = init()
    response = wsgi_client().get("/host/", environ_overrides={"HTTP_HOST": "evil.example"})
    assert response.status_code == 400
    tripwire.flush()
    assert memory.events == []  # a 400: not in failed_request_status_codes


def test_personal_data_only_with_send_default_pii() -> None:
    from django.contrib.auth.models import User

    user, _ = User.objects.get_or_create(username="ada", defaults={"email": "ada@example.com"})

    def login(client: Any) -> None:
        from django.contrib.auth import SESSION_KEY
        from django.contrib.sessions.backends.db import SessionStore

        session = SessionStore()
        session[SESSION_KEY] = str(user.pk)
        session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
        session["_auth_user_hash"] = user.get_session_auth_hash()
        session.save()
        client.set_cookie("sessionid", session.session_key)
        client.set_cookie("csrftoken", "c" * 32)
        client.set_cookie("theme", "dark")

    for pii in (False, True):
        memory = init(send_default_pii=pii)
        client = wsgi_client()
        login(client)
        client.get("/me/", headers={"X-Forwarded-For": "203.0.113.9"})
        (event,) = memory.events
        assert event["exception"]["values"][0]["value"] == "who is ada"
        if pii:
            assert event["user"] == {
                "ip_address": "203.0.113.9",
                "id": str(user.pk),
                "email": "ada@example.com",
                "username": "ada",
            }
            assert event["request"]["cookies"] == {
                "sessionid": "[Filtered]",
                "csrftoken": "[Filtered]",
                "theme": "dark",
            }
        else:
            assert "user" not in event
            assert "cookies" not in event["request"]
            assert "dark" not in json.dumps(event) and "c" * 32 not in json.dumps(event)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"data": {"name": "ada", "age": "36"}}, {"name": "ada", "age": "36"}),
        ({"json": {"items": [1, 2]}}, {"items": [1, 2]}),
        (
            {"data": {"note": "x", "upload": (__import__("io").BytesIO(b"abc"), "a.txt")}},
            {"note": "x", "upload": ""},
        ),
    ],
)
def test_request_body(kwargs: dict[str, Any], expected: Any) -> None:
    memory = init()
    wsgi_client().post("/post/", **kwargs)
    (event,) = memory.events
    assert event["request"]["data"] == expected
    if "upload" in expected:
        assert event["_meta"]["request"]["data"]["upload"] == {"": {"rem": [["!raw", "x"]]}}


def test_request_body_too_large_or_raw() -> None:
    memory = init(max_request_body_size="small")
    client = wsgi_client()
    client.post("/post/", json={"blob": "x" * 2000})
    client.post("/post/", data=b"\x00\x01raw", content_type="application/octet-stream")
    large, raw = memory.events
    assert large["request"]["data"] == ""
    assert large["_meta"]["request"]["data"] == {"": {"rem": [["!config", "x"]]}}
    assert raw["request"]["data"] == ""
    assert raw["_meta"]["request"]["data"] == {"": {"rem": [["!raw", "x"]]}}


# Percent-encoded paths and the URL sentry_sdk 2.75 reports for them: the bytes
# decoded as UTF-8, a byte that is not UTF-8 replaced.
_NON_ASCII_PATHS = [
    ("caf%C3%A9", "caf\xe9"),
    ("%E2%82%AC", "\u20ac"),  # not latin-1 once Django decoded it
    ("nope%ff", "nope\ufffd"),
]


@pytest.mark.parametrize(("quoted", "decoded"), _NON_ASCII_PATHS)
def test_non_ascii_paths_are_reported_as_they_arrived(quoted: str, decoded: str) -> None:
    # Django's WSGIRequest puts its decoded path in the environ's PATH_INFO: the
    # request is reported as it arrived, whole (as sentry_sdk), on errors (a message
    # captured in the view) and on the transaction of a 404.
    memory = init(traces_sample_rate=1.0)
    client = wsgi_client()
    assert client.get(f"/tagged/{quoted}/?q=1", headers={"User-Agent": "ua"}).status_code == 200
    assert client.get(f"/{quoted}").status_code == 404
    (event,) = memory.events
    assert event["request"] == {
        "url": f"http://localhost/tagged/{decoded}/",
        "method": "GET",
        "env": {"SERVER_NAME": "localhost", "SERVER_PORT": "80"},
        "headers": {"Host": "localhost", "User-Agent": "ua"},
        "query_string": "q=1",
    }
    in_view, not_found = memory.transactions
    assert in_view["request"] == event["request"]
    assert not_found["request"] == {
        "url": f"http://localhost/{decoded}",
        "method": "GET",
        "env": {"SERVER_NAME": "localhost", "SERVER_PORT": "80"},
        "headers": {"Host": "localhost"},
        "query_string": "",
    }


def test_force_script_name_does_not_change_the_reported_url() -> None:
    # Django rewrites SCRIPT_NAME and PATH_INFO for FORCE_SCRIPT_NAME; sentry_sdk
    # reports the URL the request arrived with.
    from django.test import override_settings

    memory = init(traces_sample_rate=1.0)
    with override_settings(FORCE_SCRIPT_NAME="/app"):
        wsgi_client().get("/boom/7/")
    (event,) = memory.events
    assert event["request"]["url"] == "http://localhost/boom/7/"
    assert event["transaction"] == "/boom/{item_id}/"
    (transaction,) = memory.transactions
    assert transaction["request"]["url"] == "http://localhost/boom/7/"


# -- tracing ------------------------------------------------------------------------------


def test_trace_is_continued_and_spans_recorded() -> None:
    memory = init(
        traces_sample_rate=1.0,
        integration=DjangoIntegration(middleware_spans=True, db_transaction_spans=True),
    )
    client = wsgi_client()
    headers = {
        "sentry-trace": f"{TRACE_ID}-{PARENT_SPAN}-1",
        "baggage": f"sentry-trace_id={TRACE_ID},sentry-sample_rate=1.0,sentry-release=up",
    }
    assert client.get("/query/", headers=headers).status_code == 200
    assert client.get("/page/").status_code == 200

    query, page = memory.transactions
    trace = query["contexts"]["trace"]
    assert (trace["trace_id"], trace["parent_span_id"]) == (TRACE_ID, PARENT_SPAN)
    assert trace["status"] == "ok"
    ops = spans_by_op(query)
    (db,) = [s for s in ops["db"] if s["description"].startswith("SELECT")]
    assert db["origin"] == "auto.db.django"
    assert '"auth_user"' in db["description"]
    assert db["data"]["db.system"] == "sqlite"
    assert db["data"]["db.name"] == "file:tripwire_django?mode=memory&cache=shared"
    assert [s["description"] for s in ops["middleware.django"]] == [
        "django.contrib.sessions.middleware.SessionMiddleware.__call__",
        "django.middleware.csrf.CsrfViewMiddleware.__call__",
        "django.contrib.auth.middleware.AuthenticationMiddleware.__call__",
        "django.middleware.csrf.CsrfViewMiddleware.process_view",
    ]
    assert ops["middleware.django"][0]["tags"] == {
        "django.function_name": "django.utils.deprecation.MiddlewareMixin.__call__",
        "django.middleware_name": "django.contrib.sessions.middleware.SessionMiddleware",
    }
    assert [s["description"] for s in ops["view.render"]] == ["django_app.views.query"]
    assert [s["data"]["signal"] for s in ops["event.django"]] == [
        "django.db.reset_queries",
        "django.db.close_old_connections",
    ]
    # Spans nest: the view inside the innermost middleware, the query inside the view.
    by_id = {s["span_id"]: s for s in query["spans"]}
    assert by_id[db["parent_span_id"]]["op"] == "view.render"

    assert page["contexts"]["trace"]["trace_id"] != TRACE_ID
    (render,) = spans_by_op(page)["template.render"]
    assert render["description"] == "page.html"
    assert render["data"]["context"]["title"] == "Hello"
    assert "sentry_trace_meta" in render["data"]["context"]


def test_trace_meta_tags_in_the_rendered_page() -> None:
    init(traces_sample_rate=1.0)
    body = wsgi_client().get("/page/").get_data(as_text=True)
    assert '<meta name="sentry-trace" content="' in body
    assert '<meta name="baggage" content="' in body


def test_middleware_and_signal_spans_can_be_turned_off() -> None:
    from django.core.signals import request_started

    memory = init(
        traces_sample_rate=1.0,
        integration=DjangoIntegration(signals_denylist=[request_started]),
    )
    wsgi_client().get("/ok/")
    (transaction,) = memory.transactions
    ops = spans_by_op(transaction)
    assert "middleware.django" not in ops and "view.render" not in ops  # the default
    assert "event.django" not in ops  # request_started denied

    memory = init(traces_sample_rate=1.0, integration=DjangoIntegration(signals_spans=False))
    wsgi_client().get("/ok/")
    (transaction,) = memory.transactions
    assert transaction["spans"] == []


def test_cache_spans() -> None:
    from django.core.cache import caches

    memory = init(traces_sample_rate=1.0, integration=DjangoIntegration(cache_spans=True))
    caches._settings = None  # new connections for this client (made on first use per thread)
    if hasattr(caches._connections, "default"):
        del caches._connections.default
    wsgi_client().get("/cached/")
    (transaction,) = memory.transactions
    spans = [s for s in transaction["spans"] if s["op"].startswith("cache.")]
    assert [(s["op"], s["description"]) for s in spans] == [
        ("cache.put", "greeting"),
        ("cache.get", "greeting"),
        ("cache.get", "absent"),
    ]
    put, hit, miss = (s["data"] for s in spans)
    assert put["cache.key"] == ["greeting"] and put["cache.item_size"] == 5
    assert hit["cache.hit"] is True and hit["cache.item_size"] == 5
    assert miss["cache.hit"] is False and "cache.item_size" not in miss


def test_template_error_gets_the_template_frame() -> None:
    memory = init()
    wsgi_client().get("/bad-template/")
    (event,) = memory.events
    frames = event["exception"]["values"][-1]["stacktrace"]["frames"]
    template_frames = [f for f in frames if f.get("filename", "").endswith("bad.html")]
    (frame,) = template_frames
    assert frame["context_line"].strip() == "{% if %}"
    assert frame["lineno"] == 3


# -- isolation, ASGI, set-up --------------------------------------------------------------


def test_concurrent_requests_in_threads_keep_their_own_scope() -> None:
    from django_app import views

    memory = init(traces_sample_rate=1.0)
    client = wsgi_client()
    names = [f"user{i}" for i in range(6)]
    views.barrier.append(threading.Barrier(len(names)))
    statuses: list[int] = []

    def request(name: str) -> None:
        statuses.append(client.get(f"/tagged/{name}/").status_code)

    try:
        threads = [
            threading.Thread(
                target=lambda n=n: statuses.append(client.get(f"/tagged/{n}/").status_code)
            )
            for n in names
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        views.barrier.clear()
    assert statuses == [200] * len(names)
    events = memory.events
    assert sorted(e["message"] for e in events) == sorted(f"hello from {n}" for n in names)
    for event in events:
        who = event["message"].rsplit(" ", 1)[1]
        assert event["tags"] == {"who": who}
        assert event["user"] == {"id": who}
        assert [c["message"] for c in event["breadcrumbs"]["values"]] == [f"crumb of {who}"]
        assert event["transaction"] == "/tagged/{who}/"
    traces = {t["contexts"]["trace"]["trace_id"] for t in memory.transactions}
    assert len(traces) == len(names)
    by_trace = {e["contexts"]["trace"]["trace_id"] for e in events}
    assert by_trace == traces


def asgi_get(path: str) -> int:
    import httpx
    from django.core.handlers.asgi import ASGIHandler

    async def go() -> int:
        transport = httpx.ASGITransport(app=ASGIHandler())
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            response = await client.get(path)
        return response.status_code

    return asyncio.run(go())


def test_asgi_async_views() -> None:
    pytest.importorskip("httpx")
    memory = init(traces_sample_rate=1.0, integration=DjangoIntegration(middleware_spans=True))
    assert asgi_get("/async-ok/") == 200
    assert asgi_get("/async-boom/") == 500
    (event,) = memory.events
    (exception,) = event["exception"]["values"]
    assert exception["type"] == "KeyError"
    assert exception["mechanism"] == {"type": "django", "handled": False}
    assert event["transaction"] == "/async-boom/"
    assert event["request"]["url"] == "http://test/async-boom/"
    ok, boom = memory.transactions
    assert (ok["transaction"], ok["contexts"]["trace"]["status"]) == ("/async-ok/", "ok")
    assert ok["contexts"]["trace"]["origin"] == "auto.http.django"
    assert boom["contexts"]["trace"]["status"] == "internal_error"
    assert [s["description"] for s in spans_by_op(ok)["view.render"]] == [
        "django_app.views.async_ok"
    ]


def test_channels_routes_http_through_the_instrumented_handler() -> None:
    # Channels 3+ serves HTTP with Django's ASGI handler (Channels 3's own AsgiHandler
    # is patched the same way when channels.http has one).
    pytest.importorskip("channels")
    import httpx
    from channels.routing import ProtocolTypeRouter
    from django.core.asgi import get_asgi_application

    memory = init(traces_sample_rate=1.0)
    app = ProtocolTypeRouter({"http": get_asgi_application()})

    async def go() -> list[int]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return [(await client.get(path)).status_code for path in ("/async-ok/", "/async-boom/")]

    assert asyncio.run(go()) == [200, 500]
    (event,) = memory.events
    assert event["exception"]["values"][0]["mechanism"] == {"type": "django", "handled": False}
    assert event["transaction"] == "/async-boom/"
    assert [(t["transaction"], t["contexts"]["trace"]["origin"]) for t in memory.transactions] == [
        ("/async-ok/", "auto.http.django"),
        ("/async-boom/", "auto.http.django"),
    ]


def test_without_the_integration_django_runs_untouched() -> None:
    memory = MemoryTransport()
    tripwire.get_client().close()
    tripwire.init(dsn=DSN, transport=memory, default_integrations=False, traces_sample_rate=1.0)
    client = wsgi_client()
    assert client.get("/boom/1/").status_code == 500
    assert client.get("/query/").status_code == 200
    tripwire.flush()
    assert memory.events == [] and memory.transactions == []

    from django.core.handlers.wsgi import WSGIHandler

    init()
    assert getattr(WSGIHandler.__call__, "__tripwire_django__", False)
    tripwire.testing.reset()
    assert not getattr(WSGIHandler.__call__, "__tripwire_django__", False)


def test_init_imports_no_django_and_patches_it_when_imported() -> None:
    code = (
        "import sys, tripwire\n"
        "from tripwire.testing import MemoryTransport\n"
        f"tripwire.init(dsn={DSN!r}, transport=MemoryTransport(),\n"
        "              auto_enabling_integrations=True)\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'django'], 'django imported'\n"
        "from django.core.handlers.wsgi import WSGIHandler\n"
        "assert getattr(WSGIHandler.__call__, '__tripwire_django__', False)\n"
        "assert tripwire.get_client().get_integration('django') is not None\n"
    )
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


# -- the same as sentry_sdk ---------------------------------------------------------------


def _django_side(integration: str) -> str:
    """The start of a differential script: the test project, the SDK on `integration`."""
    return f"""
sys.path.insert(0, {str(TESTS)!r})
import django_app
django_app.configure()
from django_app import views
from sentry_sdk.integrations.django import DjangoIntegration

views.sdk = sentry_sdk
sentry_sdk.init(
    dsn="https://k@o1.ingest.sentry.io/1", transport=KEEP, release="r1",
    traces_sample_rate=1.0, default_integrations=False, auto_enabling_integrations=False,
    integrations=[{integration}],
)
from django.core.handlers.wsgi import WSGIHandler
"""


_DIFFERENTIAL = (
    _django_side("DjangoIntegration(middleware_spans=True)")
    + f"""
from werkzeug.test import Client

client = Client(WSGIHandler())
trace = {{"sentry-trace": "{TRACE_ID}-{PARENT_SPAN}-1"}}
for path in ("/boom/3/?x=1", "/query/", "/page/", "/missing/", "/shop/items/5/", "/forbidden/"):
    client.get(path, headers=trace)
finish()
"""
)


def _transaction_shape(transaction: dict[str, Any]) -> dict[str, Any]:
    def clean(value: Any) -> Any:
        text = json.dumps(value).replace("sentry_sdk.integrations", "tripwire.integrations")
        return json.loads(text)

    trace = transaction["contexts"]["trace"]
    parents = {span["span_id"]: span["op"] for span in transaction["spans"]}
    return {
        "name": transaction["transaction"],
        "info": transaction.get("transaction_info"),
        "trace": {
            k: trace.get(k) for k in ("trace_id", "parent_span_id", "op", "origin", "status")
        },
        "request": transaction.get("request"),
        "tags": transaction.get("tags"),
        "spans": [
            clean(
                {
                    "op": span["op"],
                    "description": span.get("description"),
                    "origin": span.get("origin"),
                    "status": span.get("status"),
                    "tags": span.get("tags"),
                    "data": {
                        k: v
                        for k, v in (span.get("data") or {}).items()
                        if not k.startswith("thread.")
                    },
                    "parent": parents.get(span["parent_span_id"], "transaction"),
                }
            )
            for span in transaction["spans"]
        ],
    }


def test_same_event_and_transactions_as_sentry_sdk(tmp_path: Path) -> None:
    sentry, ours = run_both(_DIFFERENTIAL, tmp_path)
    assert [i["type"] for i in ours["items"]] == [i["type"] for i in sentry["items"]]
    assert events(ours) == events(sentry), dumps(events(ours))
    (their_event,) = of_type(sentry, "event")
    (our_event,) = of_type(ours, "event")
    for key in ("request", "transaction", "transaction_info"):
        assert our_event[key] == their_event[key], key
    expected = [_transaction_shape(t) for t in of_type(sentry, "transaction")]
    found = [_transaction_shape(t) for t in of_type(ours, "transaction")]
    assert len(found) == 6
    for theirs, mine in zip(expected, found):
        assert mine == theirs, dumps(mine)


_DIFFERENTIAL_PATHS = (
    _django_side("DjangoIntegration()")
    + f"""
from django.test import override_settings
from werkzeug.test import Client

client = Client(WSGIHandler())
for quoted in {[quoted for quoted, _ in _NON_ASCII_PATHS]!r}:
    client.get("/tagged/" + quoted + "/?q=%ff", headers={{"User-Agent": "ua"}})
    client.get("/" + quoted)
with override_settings(FORCE_SCRIPT_NAME="/app"):
    client.get("/boom/7/")
finish()
"""
)


def test_same_request_parts_as_sentry_sdk_for_rewritten_paths(tmp_path: Path) -> None:
    sentry, ours = run_both(_DIFFERENTIAL_PATHS, tmp_path)
    expected = [(i["type"], i["payload"].get("request")) for i in sentry["items"]]
    found = [(i["type"], i["payload"].get("request")) for i in ours["items"]]
    assert found == expected, dumps(found)
    assert len(of_type(ours, "event")) == 4 and len(of_type(ours, "transaction")) == 7


def test_only_the_methods_to_capture_get_a_transaction() -> None:
    memory = init(traces_sample_rate=1.0)
    client = wsgi_client()
    client.options("/ok/")
    client.get("/ok/")
    assert [t["request"]["method"] for t in memory.transactions] == ["GET"]

    memory = init(
        traces_sample_rate=1.0, integration=DjangoIntegration(http_methods_to_capture=("options",))
    )
    client = wsgi_client()
    client.options("/ok/")
    client.get("/ok/")
    assert [t["request"]["method"] for t in memory.transactions] == ["OPTIONS"]
