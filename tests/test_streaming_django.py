"""Django under span streaming, against sentry_sdk 2.75.

The test project (`django_app`) serves the same requests (over WSGI and over ASGI) on
sentry_sdk and on tripwire (``import sentry_sdk`` aliased) with
``trace_lifecycle="stream"``: the segments are named after the route and carry
``http.route``; middleware, signal, view, cache, template and database spans hang
under them with sentry_sdk's streamed attributes (``middleware.name``,
``code.function.name``, ``db.system.name``, ``db.namespace``, ``db.query.text``, no
template context); with `send_default_pii` the logged-in user is on the segment.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from _side_by_side import run_both
from _stream_shapes import parented_by_name

TESTS = Path(__file__).resolve().parent

# Differ between the SDKs (name, version, integrations), between runs, or with argv.
_VOLATILE = {
    "sentry.sdk.name",
    "sentry.sdk.version",
    "sentry.sdk.integrations",
    "sentry.segment.id",
    "thread.id",
    "process.pid",
    "process.command_args",
    "server.address",
}
_INCOMING_PARENT = "1234567890abcdef"


def _kept(key: str) -> bool:
    # `code.*` of a query's source: where it was made differs by design (frames).
    if key == "code.function.name":  # a signal receiver's name
        return True
    return key not in _VOLATILE and not key.startswith("code.")


def _spans(found: dict[str, Any]) -> list[dict[str, Any]]:
    """Every span without ids and times (its parent by name), sorted; the SDK's own
    module names made the same."""
    out = []
    for shape in parented_by_name(found, _kept, _INCOMING_PARENT):
        cookie = shape["attributes"].get("http.request.header.cookie")
        if cookie and cookie.startswith("sessionid="):  # each run logs in anew
            shape["attributes"]["http.request.header.cookie"] = "sessionid=<key>"
        text = json.dumps(shape, sort_keys=True).replace("sentry_sdk.", "tripwire.")
        out.append(text)
    return [json.loads(text) for text in sorted(out)]


SCRIPT = f"""
import asyncio
import sys
import warnings

warnings.simplefilter("ignore")
sys.path.insert(0, {str(TESTS)!r})
import django_app

django_app.configure()
from django.core.management import call_command

call_command("migrate", run_syncdb=True, verbosity=0)
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.models import User
from django.contrib.sessions.backends.db import SessionStore
from django.core.handlers.asgi import ASGIHandler
from django.core.handlers.wsgi import WSGIHandler
from django.template.response import TemplateResponse
from django.test import RequestFactory
import httpx
from werkzeug.test import Client

import sentry_sdk.traces
from django_app import views
from sentry_sdk.integrations.django import DjangoIntegration

views.sdk = sentry_sdk


async def over_asgi(headers):
    transport = httpx.ASGITransport(app=ASGIHandler())
    async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
        for path in ("/async-ok/", "/async-boom/", "/shop/items/6/"):
            await client.get(path, headers=headers)


user = User.objects.create(username="ada", email="ada@example.com")
session = SessionStore()
session[SESSION_KEY] = str(user.pk)
session["_auth_user_backend"] = "django.contrib.auth.backends.ModelBackend"
session["_auth_user_hash"] = user.get_session_auth_hash()
session.save()

for number, options in enumerate((dict(), dict(send_default_pii=True))):
    sentry_sdk.init(
        transport=KEEP,
        release=f"config-{{number}}",
        traces_sample_rate=1.0,
        trace_lifecycle="stream",
        default_integrations=False,
        auto_enabling_integrations=False,
        integrations=[
            DjangoIntegration(
                middleware_spans=True,
                cache_spans=True,
                transaction_style="url" if number == 0 else "function_name",
            )
        ],
        **options,
    )
    client = Client(WSGIHandler())
    client.set_cookie("sessionid", session.session_key)
    headers = {{
        "sentry-trace": "771a43a4192642f0b136d5159a501700-1234567890abcdef-1",
        "User-Agent": "ua/1",
    }}
    for path in (
        "/boom/3/?x=1",
        "/query/",
        "/missing/",
        "/shop/items/5/",
        "/forbidden/",
        "/cached/",
        "/shop/legacy/abc/4/",
        "/me/",
        "/nowhere/",
    ):
        client.get(path, headers=headers)
    asyncio.run(over_asgi(headers))
    # A template response rendered inside a span: no context on its streamed span.
    with sentry_sdk.traces.start_span(name="render"):
        request = RequestFactory().get("/page/")
        TemplateResponse(request, "page.html", {{"title": "Hi"}}).rendered_content
    sentry_sdk.flush()
finish()
"""


def test_django_spans_match_sentry_sdk(tmp_path: Path) -> None:
    theirs, ours = run_both(SCRIPT, tmp_path)
    assert _spans(ours) == _spans(theirs)

    spans = _spans(ours)
    segments = {(s["attributes"]["sentry.release"], s["name"]): s for s in spans if s["is_segment"]}
    item = segments[("config-0", "/shop/items/{item_id}/")]
    assert item["attributes"]["http.route"] == "/shop/items/{item_id}/"
    assert item["parent"] == "<incoming>"
    # Named after the view, the route is on the segment all the same.
    item = segments[("config-1", "django_app.views.item")]
    assert item["attributes"]["http.route"] == "/shop/items/{item_id}/"
    # With send_default_pii the logged-in user is on the segment, not without.
    me = segments[("config-1", "django_app.views.me")]
    assert me["status"] == "error"
    assert me["attributes"]["user.email"] == "ada@example.com"
    assert "user.email" not in segments[("config-0", "/me/")]["attributes"]
    (query,) = [
        s
        for s in spans
        if s["attributes"].get("sentry.op") == "db"
        and s["attributes"]["sentry.release"] == "config-0"
        and s["parent"] == "django_app.views.query"
    ]
    assert query["attributes"]["db.system.name"] == "sqlite"
    assert query["attributes"]["db.query.text"] == query["name"]
    middleware = next(s for s in spans if s["attributes"].get("sentry.op") == "middleware.django")
    assert "middleware.name" in middleware["attributes"]
    # Over ASGI the same: the async view's segment is named after its route.
    assert segments[("config-0", "/async-boom/")]["status"] == "error"
    template = next(s for s in spans if s["attributes"].get("sentry.op") == "template.render")
    assert template["parent"] == "render"
    assert "context" not in template["attributes"]
