"""Views of the test project."""

from __future__ import annotations

import threading
from typing import Any

from django.contrib.auth.models import User
from django.core.cache import cache
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template.response import TemplateResponse
from django.views.decorators.csrf import csrf_exempt

import tripwire

# The SDK the views call (the differential test runs them on sentry_sdk too).
sdk: Any = tripwire
# Set by the concurrency test: each request waits here until all are inside a view.
barrier: list[threading.Barrier] = []


def ok(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


def boom(request: HttpRequest, item_id: int) -> HttpResponse:
    sdk.set_tag("item", str(item_id))
    raise ValueError(f"boom {item_id}")


def host(request: HttpRequest) -> HttpResponse:
    return HttpResponse(request.get_host())


def missing(request: HttpRequest) -> HttpResponse:
    raise Http404("no such thing")


def forbidden(request: HttpRequest) -> HttpResponse:
    raise PermissionDenied("not yours")


def tagged(request: HttpRequest, who: str) -> HttpResponse:
    sdk.set_tag("who", who)
    sdk.set_user({"id": who})
    sdk.add_breadcrumb(message=f"crumb of {who}")
    if barrier:
        barrier[0].wait(timeout=30)
    sdk.capture_message(f"hello from {who}")
    return HttpResponse(who)


def item(request: HttpRequest, item_id: int) -> HttpResponse:
    return HttpResponse(str(item_id))


def item_legacy(request: HttpRequest, slug: str) -> HttpResponse:
    return HttpResponse(slug)


def query(request: HttpRequest) -> HttpResponse:
    return HttpResponse(str(User.objects.filter(username="nobody").count()))


def page(request: HttpRequest) -> HttpResponse:
    return render(request, "page.html", {"title": "Hello"})


def template_response(request: HttpRequest) -> HttpResponse:
    return TemplateResponse(request, "page.html", {"title": "Hi"})


def cached(request: HttpRequest) -> HttpResponse:
    cache.set("greeting", "hello")
    found = cache.get("greeting")
    cache.get("absent")
    return HttpResponse(found)


@csrf_exempt  # type: ignore[untyped-decorator]
def post(request: HttpRequest) -> HttpResponse:
    raise RuntimeError("bad post")


def me(request: HttpRequest) -> HttpResponse:
    name = request.user.get_username()
    raise LookupError(f"who is {name}")


async def async_ok(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"ok": True})


async def async_boom(request: HttpRequest) -> Any:
    raise KeyError("async boom")


def bad_template(request: HttpRequest) -> HttpResponse:
    return render(request, "bad.html", {})
