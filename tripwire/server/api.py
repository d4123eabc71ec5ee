"""The JSON API under ``/api/0/``: what the pages show, for the CLI and tests.

Reads are GETs; the writes (issues' status, the rate limits) take a JSON body
and refuse anything else, so a web page on another origin cannot make them (a
cross-origin JSON request needs a CORS preflight, which this API never grants).
"""

from __future__ import annotations

import json
import re
from typing import Any, Optional, Union

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from tripwire.server import convertors as convertors
from tripwire.server import flamegraph, queries
from tripwire.server.ratelimits import RateLimit
from tripwire.server.store import Store
from tripwire.server.triage import Action, parse_action


class _JSON(JSONResponse):
    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, default=repr).encode("utf-8")


def _store(request: Request) -> Store:
    store: Store = request.app.state.tripwire.store
    return store


# The most rows one request returns; a larger ``limit`` is read as this.
MAX_LIMIT = 1000


_INTEGER = re.compile(r"^[+-]?[0-9]+$")


class BadParameter(Exception):
    """A query parameter out of range: answered with a 400 and the reason."""


def _int(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    text = raw.strip()
    if not _INTEGER.match(text):
        raise BadParameter(f"{name} must be a whole number, not {raw[:40]!r}")
    digits = text.lstrip("+-").lstrip("0") or "0"
    # Any number of digits is read without int() of the whole (which has a cap).
    value = int(digits) if len(digits) <= 18 else MAX_LIMIT + 1
    if text.startswith("-"):
        value = -value
    if value < 1:
        raise BadParameter(f"{name} must be at least 1, not {value}")
    return min(value, MAX_LIMIT)


def bad_parameter(request: Request, exc: Exception) -> Response:
    """The exception handler for `BadParameter`."""
    return _JSON({"detail": str(exc)}, status_code=400)


def _not_found(what: str) -> Response:
    return _JSON({"detail": f"{what} not found"}, status_code=404)


def dsn_of(request: Request, project: dict[str, Any]) -> str:
    """A project's DSN as seen from this request (the host and port it reached)."""
    netloc = request.url.netloc
    return f"{request.url.scheme}://{project['public_key']}@{netloc}/{project['id']}"


async def projects(request: Request) -> Response:
    """``GET /api/0/projects/``: projects, their keys and DSNs as seen from this request.

    ``POST`` with ``{"name": "shop"}`` creates one (201, with its DSN).
    """
    from starlette.concurrency import run_in_threadpool

    store = _store(request)
    if request.method == "POST":
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return _JSON({"detail": "send a JSON body"}, status_code=415)
        raw = await read_small_body(request)
        if raw is None:
            return _JSON({"detail": f"body over {MAX_WRITE_BODY} bytes"}, status_code=413)
        try:
            body = json.loads(raw)
            name = body["name"] if isinstance(body, dict) else None
            if not isinstance(name, str):
                raise TypeError("name must be a string")
            project = await run_in_threadpool(store.add_project, name)
        except (ValueError, KeyError, TypeError, RecursionError) as exc:
            return _JSON({"detail": f"bad request: {exc}"}, status_code=400)
        return _JSON({**project, "dsn": dsn_of(request, project)}, status_code=201)
    found = await run_in_threadpool(store.projects)
    return _JSON([{**project, "dsn": dsn_of(request, project)} for project in found])


async def issues(request: Request) -> Response:
    """``GET /api/0/issues/?query=&level=&environment=&release=&status=&project=``.

    ``PUT /api/0/issues/?id=1&id=2`` with a triage body (as for one issue) changes
    them all at once: ``{"updated": n}``.
    """
    from starlette.concurrency import run_in_threadpool

    params = request.query_params
    store = _store(request)
    if request.method == "PUT":
        ids = [_id(raw) for raw in params.getlist("id")[:MAX_LIMIT]]
        if not ids:
            return _JSON({"detail": "name the issues: ?id=1&id=2"}, status_code=400)
        action = await _triage_action(request)
        if isinstance(action, Response):
            return action
        updated = await run_in_threadpool(store.triage, ids, action)
        return _JSON({"updated": updated})
    status: Optional[str] = params.get("status", "unresolved")
    return _JSON(
        queries.list_issues(
            store,
            query=params.get("query", ""),
            level=params.get("level") or None,
            environment=params.get("environment") or None,
            release=params.get("release") or None,
            status=status or None,
            project_id=_int(request, "project", 0) or None,
            limit=_int(request, "limit", 100),
        )
    )


def _id(raw: str) -> int:
    text = raw.strip()
    if not text.isdigit() or len(text) > 18:
        raise BadParameter(f"id must be an issue id, not {raw[:40]!r}")
    return int(text)


async def _triage_action(request: Request) -> Union[Action, Response]:
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return _JSON({"detail": "send a JSON body"}, status_code=415)
    raw = await read_small_body(request)
    if raw is None:
        return _JSON({"detail": f"body over {MAX_WRITE_BODY} bytes"}, status_code=413)
    try:
        return parse_action(json.loads(raw))
    except (ValueError, RecursionError) as exc:
        return _JSON({"detail": f"bad request: {exc}"}, status_code=400)


# The largest body a write to the API or a form of the pages may have.
MAX_WRITE_BODY = 64 * 1024


async def read_small_body(request: Request, limit: int = MAX_WRITE_BODY) -> Optional[bytes]:
    """The body of a write, or None when it is over `limit` bytes (never held whole)."""
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
    return b"".join(chunks)


async def issue(request: Request) -> Response:
    """``GET /api/0/issues/<id>/``; ``PUT`` changes its status, as Sentry's API does.

    The body: ``{"status": "resolved"}`` (``"statusDetails": {"inNextRelease": true}``
    for the next release), ``{"status": "ignored"}`` (``"statusDetails":
    {"ignoreDuration": minutes, "ignoreCount": events}`` for a while or a count),
    ``{"status": "unresolved"}``.
    """
    from starlette.concurrency import run_in_threadpool

    issue_id: int = request.path_params["issue_id"]
    store = _store(request)
    if request.method == "PUT":
        action = await _triage_action(request)
        if isinstance(action, Response):
            return action
        if not await run_in_threadpool(store.triage, [issue_id], action):
            return _not_found("issue")
    result = await run_in_threadpool(queries.get_issue, store, issue_id)
    return _JSON(result) if result is not None else _not_found("issue")


def issue_events(request: Request) -> Response:
    """``GET /api/0/issues/<id>/events/``: its latest events (summaries)."""
    issue_id: int = request.path_params["issue_id"]
    return _JSON(queries.issue_events(_store(request), issue_id, _int(request, "limit", 50)))


def event(request: Request) -> Response:
    """``GET /api/0/events/<event_id>/``: the stored event, its issue and attachments."""
    result = queries.get_event(_store(request), request.path_params["event_id"])
    return _JSON(result) if result is not None else _not_found("event")


def attachment(request: Request) -> Response:
    """``GET /api/0/attachments/<id>/``: the bytes, always as a download."""
    found = queries.get_attachment(_store(request), request.path_params["attachment_id"])
    if found is None:
        return _not_found("attachment")
    filename = "".join(c for c in found["filename"] if c.isalnum() or c in "._-")[:100]
    # Never rendered inline: an attachment may hold HTML or script from anywhere.
    return Response(
        found["data"],
        media_type="application/octet-stream",
        headers={
            "Content-Disposition": f'attachment; filename="{filename or "attachment"}"',
            "X-Content-Type-Options": "nosniff",
        },
    )


def transactions(request: Request) -> Response:
    """``GET /api/0/transactions/?query=``."""
    params = request.query_params
    return _JSON(
        queries.list_transactions(
            _store(request), params.get("query", ""), _int(request, "limit", 100)
        )
    )


def transaction(request: Request) -> Response:
    """``GET /api/0/transactions/<event_id>/``: the transaction and its waterfall."""
    store = _store(request)
    found = queries.get_transaction(store, request.path_params["event_id"])
    if found is None:
        return _not_found("transaction")
    found["trace"] = queries.get_trace(store, found["trace_id"], found["event_id"])
    return _JSON(found)


def trace(request: Request) -> Response:
    """``GET /api/0/traces/<trace_id>/``: spans (tree order), errors and logs."""
    return _JSON(queries.get_trace(_store(request), request.path_params["trace_id"]))


def logs(request: Request) -> Response:
    """``GET /api/0/logs/?query=&level=&trace_id=&project=``."""
    params = request.query_params
    return _JSON(
        queries.list_logs(
            _store(request),
            query=params.get("query", ""),
            level=params.get("level") or None,
            trace_id=params.get("trace_id") or None,
            limit=_int(request, "limit", 200),
            project_id=_int(request, "project", 0) or None,
        )
    )


def releases(request: Request) -> Response:
    """``GET /api/0/releases/``: every release seen, with its events, issues and health."""
    return _JSON(queries.releases(_store(request)))


def monitors(request: Request) -> Response:
    """``GET /api/0/monitors/``: cron monitors and their check-ins."""
    return _JSON(queries.monitors(_store(request)))


def outcomes(request: Request) -> Response:
    """``GET /api/0/outcomes/``: client reports, server drops and refused requests."""
    return _JSON(queries.outcomes(_store(request)))


def items(request: Request) -> Response:
    """``GET /api/0/items/?type=``: items of other types (profiles, unknown types)."""
    return _JSON(
        queries.raw_items(
            _store(request), request.query_params.get("type") or None, _int(request, "limit", 100)
        )
    )


def envelopes(request: Request) -> Response:
    """``GET /api/0/envelopes/``: the envelopes the inspector keeps (newest first)."""
    return _JSON(queries.list_envelopes(_store(request), _int(request, "limit", 100)))


def envelope(request: Request) -> Response:
    """``GET /api/0/envelopes/<id>/``: one envelope as received, each item decoded."""
    found = queries.get_envelope(_store(request), request.path_params["envelope_id"])
    return _JSON(found) if found is not None else _not_found("envelope")


def metrics(request: Request) -> Response:
    """``GET /api/0/metrics/``: metrics as received, and a summary per name."""
    return _JSON(queries.list_metrics(_store(request), _int(request, "limit", 500)))


def metric_series(request: Request) -> Response:
    """``GET /api/0/metrics/series/?name=&group=&project=``: the metrics page's charts."""
    from tripwire.server import metrics_chart

    params = request.query_params
    return _JSON(
        metrics_chart.page(
            _store(request),
            _int(request, "project", 0) or None,
            params.get("name", "")[:200] or None,
            params.get("group", "")[:200] or None,
            received=0,
        )
    )


def stats(request: Request) -> Response:
    """``GET /api/0/stats/``: how much of each kind is stored."""
    return _JSON(queries.stats(_store(request)))


async def rate_limits(request: Request) -> Response:
    """``GET``/``PUT /api/0/rate-limits/``: ``{"limits": ["60:error:key", ...]}``."""
    limits = request.app.state.tripwire.rate_limits
    if request.method == "PUT":
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
            return _JSON({"detail": "send a JSON body"}, status_code=415)
        raw = await read_small_body(request)
        if raw is None:
            return _JSON({"detail": f"body over {MAX_WRITE_BODY} bytes"}, status_code=413)
        try:
            body = json.loads(raw)
            specs = body["limits"]
            if not isinstance(specs, list):
                raise TypeError("limits must be a list of strings")
            limits.replace([RateLimit.parse(str(spec)) for spec in specs])
        except (ValueError, KeyError, TypeError) as exc:
            return _JSON({"detail": f"bad request: {exc}"}, status_code=400)
    return _JSON({"limits": [limit.header_value() for limit in limits.limits]})


routes = [
    Route("/projects/", projects, methods=["GET", "POST"]),
    Route("/issues/", issues, methods=["GET", "PUT"]),
    Route("/issues/{issue_id:id}/", issue, methods=["GET", "PUT"]),
    Route("/issues/{issue_id:id}/events/", issue_events),
    Route("/events/{event_id}/", event),
    Route("/attachments/{attachment_id:id}/", attachment),
    Route("/transactions/", transactions),
    Route("/transactions/{event_id}/", transaction),
    *flamegraph.api_routes,
    Route("/traces/{trace_id}/", trace),
    Route("/logs/", logs),
    Route("/releases/", releases),
    Route("/monitors/", monitors),
    Route("/outcomes/", outcomes),
    Route("/items/", items),
    Route("/metrics/", metrics),
    Route("/metrics/series/", metric_series),
    Route("/envelopes/", envelopes),
    Route("/envelopes/{envelope_id:id}/", envelope),
    Route("/stats/", stats),
    Route("/rate-limits/", rate_limits, methods=["GET", "PUT"]),
]
