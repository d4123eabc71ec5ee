"""The server-rendered web pages.

Everything an event holds is untrusted: it reaches the page only through Jinja2's
autoescaping (no ``|safe`` anywhere in the templates), and every page carries a
Content-Security-Policy that allows no inline script, as a second line of defence.
"""

from __future__ import annotations

import hmac
import json
import re
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional
from urllib.parse import parse_qs, urlencode, urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from tripwire.server import convertors as convertors
from tripwire.server import flamegraph, queries, spans
from tripwire.server.grouping import formatted_message
from tripwire.server.limits import (
    INSPECT_COUNT,
    INSPECT_ITEM_BYTES,
    INSPECT_TOTAL_BYTES,
    KiB,
    MiB,
)
from tripwire.server.store import Store
from tripwire.server.triage import FILTERS, Action

_HERE = Path(__file__).parent

_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)

_env: Optional[Environment] = None


def _environment() -> Environment:
    global _env
    if _env is None:
        env = Environment(
            loader=FileSystemLoader(str(_HERE / "templates")),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )
        env.filters["when"] = format_time
        env.filters["ago"] = format_ago
        env.filters["pretty"] = pretty
        env.filters["plural"] = plural
        env.filters["hexdump"] = hexdump
        env.filters["ms"] = lambda v: f"{v:,.1f} ms" if isinstance(v, (int, float)) else ""
        env.globals["query_string"] = lambda **kw: urlencode({k: v for k, v in kw.items() if v})
        _env = env
    return _env


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    """Render `template` with `context` into an HTML response.

    Templates get ``form_token``, which every form that changes data sends back.
    """
    token = request.app.state.tripwire.form_token
    html = (
        _environment().get_template(template).render(request=request, form_token=token, **context)
    )
    return HTMLResponse(
        html,
        status_code=status_code,
        headers={"Content-Security-Policy": _CSP, "X-Content-Type-Options": "nosniff"},
    )


def _store(request: Request) -> Store:
    store: Store = request.app.state.tripwire.store
    return store


# -- formatting ---------------------------------------------------------------------------------


def format_time(ts: Any) -> str:
    """A timestamp as ``2024-01-31 12:00:00 UTC``."""
    if not isinstance(ts, (int, float)):
        return ""
    try:
        return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")
    except (OverflowError, OSError, ValueError):
        return str(ts)


def format_ago(ts: Any) -> str:
    """A timestamp as ``5 min ago``."""
    if not isinstance(ts, (int, float)):
        return ""
    delta = time.time() - ts
    if delta < 60:
        return "just now" if delta < 5 else f"{int(delta)} s ago"
    for unit, seconds in (("day", 86400), ("h", 3600), ("min", 60)):
        if delta >= seconds:
            n = int(delta // seconds)
            return f"{n} {unit}{'s' if unit == 'day' and n > 1 else ''} ago"
    return ""


def pretty(value: Any) -> str:
    """A value as readable text: strings as they are, the rest as indented JSON."""
    if isinstance(value, str):
        return value
    try:
        return json.dumps(value, indent=2, ensure_ascii=False, default=repr, sort_keys=True)
    except (ValueError, TypeError, RecursionError):
        return repr(value)


def plural(count: Any, noun: str) -> str:
    """``1 span``, ``2 spans``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def hexdump(hex_text: Any) -> str:
    """Hex digits as lines of 16 bytes: offset, bytes, and the printable ASCII."""
    try:
        data = bytes.fromhex(hex_text) if isinstance(hex_text, str) else b""
    except ValueError:
        return ""
    lines = []
    for offset in range(0, len(data), 16):
        chunk = data[offset : offset + 16]
        ascii_text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{offset:08x}  {chunk.hex(' '):<47}  {ascii_text}")
    return "\n".join(lines)


# ANSI escape sequences (colours from a terminal logger): CSI, OSC (to BEL or ST), and
# two-character escapes. They are removed, not rendered: the page shows the text.
_ANSI = re.compile(
    r"\x1b(?:\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(?:\x07|\x1b\\)?|[@-Z\\-_])|\x9b[0-?]*[ -/]*[@-~]"
)


def strip_ansi(text: str) -> str:
    """`text` without ANSI escape sequences (and without a stray ESC)."""
    return _ANSI.sub("", text).replace("\x1b", "") if ("\x1b" in text or "\x9b" in text) else text


def _strip_ansi_within(value: Any, depth: int = 0) -> Any:
    # Before JSON: it would turn ESC into "\\u001b", which no longer looks like one.
    if isinstance(value, str):
        return strip_ansi(value)
    if depth > 50:
        return value
    if isinstance(value, list):
        return [_strip_ansi_within(v, depth + 1) for v in value]
    if isinstance(value, dict):
        return {k: _strip_ansi_within(v, depth + 1) for k, v in value.items()}
    return value


def python_like(value: Any, indent: int = 0) -> str:
    """A frame variable as Python would show it.

    SDKs send each string in frame locals as its ``repr`` (``"'kiwi'"``), inside lists
    and dicts too, so strings are shown as they are (JSON would quote them twice);
    dict keys, sent as plain strings, get their quotes here.
    """
    try:
        one_line = _python_like(value, None, 0)
        if len(one_line) <= 100 or not isinstance(value, (list, dict)):
            return one_line
        return _python_like(value, 2, indent)
    except RecursionError:
        return pretty(value)


def _python_like(value: Any, step: Optional[int], level: int) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return "None"
    if isinstance(value, bool):
        return "True" if value else "False"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, dict)):
        if isinstance(value, list):
            parts = [_python_like(v, step, level + 1) for v in value]
            opening, closing = "[", "]"
        else:
            parts = [f"{str(k)!r}: {_python_like(v, step, level + 1)}" for k, v in value.items()]
            opening, closing = "{", "}"
        if not parts:
            return opening + closing
        if step is None:
            return opening + ", ".join(parts) + closing
        pad = " " * (step * (level + 1))
        inner = ",\n".join(pad + part for part in parts)
        return f"{opening}\n{inner},\n{' ' * (step * level)}{closing}"
    return repr(value)


# -- the event view -----------------------------------------------------------------------------


def event_view(event: dict[str, Any]) -> dict[str, Any]:
    """What the issue page shows of an event payload, in display order."""
    return {
        "message": formatted_message(event),
        "exceptions": _exception_views(event),
        "threads": _thread_views(event),
        "breadcrumbs": _breadcrumbs(event),
        "tags": queries.event_tags(event),
        "contexts": _contexts(event),
        "flags": _flags(event),
        "user": _pairs(event.get("user")),
        "request": _request(event.get("request")),
        "extra": _pairs(event.get("extra")),
        "sdk": event.get("sdk") if isinstance(event.get("sdk"), dict) else {},
        "fingerprint": event.get("fingerprint")
        if isinstance(event.get("fingerprint"), list)
        else None,
    }


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _exception_views(event: dict[str, Any]) -> list[dict[str, Any]]:
    exception = event.get("exception")
    values = (
        _list(_dict(exception).get("values")) if isinstance(exception, dict) else _list(exception)
    )
    views = []
    # The protocol lists the chain oldest first; the page shows the raised one first.
    for exc in reversed([v for v in values if isinstance(v, dict)]):
        mechanism = _dict(exc.get("mechanism"))
        views.append(
            {
                "type": exc.get("type") or "",
                "value": exc.get("value") or "",
                "module": exc.get("module") or "",
                "mechanism": mechanism.get("type") or "",
                "handled": mechanism.get("handled"),
                "frames": _frames(_dict(exc.get("stacktrace"))),
            }
        )
    return views


def _thread_views(event: dict[str, Any]) -> list[dict[str, Any]]:
    views = []
    stacktrace = event.get("stacktrace")
    if isinstance(stacktrace, dict):
        views.append({"name": "stack trace", "frames": _frames(stacktrace)})
    for thread in _list(_dict(event.get("threads")).get("values")):
        if isinstance(thread, dict) and isinstance(thread.get("stacktrace"), dict):
            name = thread.get("name") or thread.get("id") or "thread"
            views.append({"name": str(name), "frames": _frames(thread["stacktrace"])})
    return views


def _frames(stacktrace: dict[str, Any]) -> list[dict[str, Any]]:
    frames = [f for f in _list(stacktrace.get("frames")) if isinstance(f, dict)]
    views = []
    # Most recent call first, as a reader looks for it.
    for frame in reversed(frames):
        lineno = frame.get("lineno") if type(frame.get("lineno")) is int else None
        pre = [str(line) for line in _list(frame.get("pre_context"))]
        post = [str(line) for line in _list(frame.get("post_context"))]
        context = frame.get("context_line")
        source: list[tuple[Optional[int], str, bool]] = []
        if context is not None:
            first = lineno - len(pre) if lineno is not None else None
            for i, line in enumerate(pre):
                source.append((first + i if first is not None else None, line, False))
            source.append((lineno, str(context), True))
            for i, line in enumerate(post):
                source.append((lineno + 1 + i if lineno is not None else None, line, False))
        variables = frame.get("vars")
        views.append(
            {
                "filename": frame.get("filename")
                or frame.get("abs_path")
                or frame.get("module")
                or "?",
                "abs_path": frame.get("abs_path") or "",
                "function": frame.get("function") or "?",
                "module": frame.get("module") or "",
                "lineno": lineno,
                "in_app": frame.get("in_app") is True,
                "source": source,
                "vars": [(str(k), python_like(v)) for k, v in variables.items()]
                if isinstance(variables, dict)
                else [],
            }
        )
    return views


def _breadcrumbs(event: dict[str, Any]) -> list[dict[str, Any]]:
    crumbs = event.get("breadcrumbs")
    values = _list(_dict(crumbs).get("values")) if isinstance(crumbs, dict) else _list(crumbs)
    from tripwire.server.items import parse_timestamp

    views = []
    for crumb in values:
        if not isinstance(crumb, dict):
            continue
        ts = parse_timestamp(crumb.get("timestamp"), 0.0)
        views.append(
            {
                "time": format_time(ts) if ts else "",
                "type": crumb.get("type") or "default",
                "category": crumb.get("category") or "",
                "level": crumb.get("level") or "info",
                "message": strip_ansi(pretty(crumb.get("message")))
                if crumb.get("message") is not None
                else "",
                "data": pretty(_strip_ansi_within(crumb["data"])) if crumb.get("data") else "",
            }
        )
    return views


def _pairs(value: Any) -> list[tuple[str, str]]:
    if not isinstance(value, dict):
        return []
    return [(str(k), pretty(v)) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))]


def _contexts(event: dict[str, Any]) -> list[tuple[str, list[tuple[str, str]]]]:
    contexts = _dict(event.get("contexts"))
    return [
        (str(name), _pairs(ctx)) for name, ctx in sorted(contexts.items()) if isinstance(ctx, dict)
    ]


def _flags(event: dict[str, Any]) -> list[tuple[str, str]]:
    """``contexts.flags.values`` as (flag, result) pairs, in evaluation order."""
    values = _list(_dict(_dict(event.get("contexts")).get("flags")).get("values"))
    return [
        (str(v.get("flag")), pretty(v.get("result")))
        for v in values
        if isinstance(v, dict) and "flag" in v
    ]


def _request(value: Any) -> Optional[dict[str, Any]]:
    if not isinstance(value, dict):
        return None
    headers = value.get("headers")
    if isinstance(headers, list):
        header_pairs = [
            (str(h[0]), pretty(h[1])) for h in headers if isinstance(h, list) and len(h) == 2
        ]
    else:
        header_pairs = _pairs(headers)
    return {
        "method": value.get("method") or "",
        "url": value.get("url") or "",
        "query_string": pretty(value.get("query_string")) if value.get("query_string") else "",
        "headers": header_pairs,
        "cookies": pretty(value.get("cookies")) if value.get("cookies") else "",
        "data": pretty(value.get("data")) if value.get("data") is not None else "",
        "env": _pairs(value.get("env")),
    }


# -- pages --------------------------------------------------------------------------------------


def home(request: Request) -> Response:
    """``/``: the issues list."""
    return RedirectResponse("/issues/", status_code=302)


def issues_page(request: Request) -> Response:
    """``/issues/``: the issues list, with search and filters."""
    params = request.query_params
    store = _store(request)
    filters = {
        "query": params.get("query", ""),
        "level": params.get("level", ""),
        "environment": params.get("environment", ""),
        "release": params.get("release", ""),
        "status": params.get("status", "unresolved"),
    }
    projects = store.projects()
    project_id = _project_param(request, projects)
    found = queries.list_issues(
        store,
        query=filters["query"],
        level=filters["level"] or None,
        environment=filters["environment"] or None,
        release=filters["release"] or None,
        status=filters["status"] or None,
        project_id=project_id,
    )
    conn = store.connection()
    choices = {
        column: [
            r[0]
            for r in conn.execute(
                f"SELECT DISTINCT {column} FROM events "  # noqa: S608 -- fixed column names
                f"WHERE {column} IS NOT NULL ORDER BY 1 LIMIT 200"
            )
        ]
        for column in ("level", "environment", "release")
    }
    project = next((p for p in projects if p["id"] == project_id), projects[0])
    dsn = f"{request.url.scheme}://{project['public_key']}@{request.url.netloc}/{project['id']}"
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return render(
        request,
        "issues.html",
        issues=found,
        filters=filters,
        choices=choices,
        statuses=list(FILTERS),
        dsn=dsn,
        here=here,
        projects=projects,
        project_id=project_id,
        project_names={p["id"]: p["name"] for p in projects},
        nav="issues",
    )


def _project_param(request: Request, projects: list[dict[str, Any]]) -> Optional[int]:
    """``?project=<id>`` when it names a project; None (every project) otherwise."""
    raw = request.query_params.get("project", "")
    if raw.isdigit() and len(raw) < 19 and any(p["id"] == int(raw) for p in projects):
        return int(raw)
    return None


def issue_page(request: Request) -> Response:
    """``/issues/<id>/``: one issue and one of its events (the latest by default)."""
    store = _store(request)
    issue_id: int = request.path_params["issue_id"]
    issue = queries.get_issue(store, issue_id)
    if issue is None:
        return render(
            request, "error.html", status_code=404, message="No such issue.", nav="issues"
        )
    events = queries.issue_events(store, issue_id, limit=50)
    wanted = request.query_params.get("event") or issue["last_event_id"]
    stored = queries.get_event(store, wanted)
    if stored is None or stored["issue_id"] != issue_id:
        stored = queries.get_event(store, issue["last_event_id"])
    view = event_view(stored["data"]) if stored and isinstance(stored["data"], dict) else None
    return render(
        request, "issue.html", issue=issue, events=events, event=stored, view=view, nav="issues"
    )


def event_page(request: Request) -> Response:
    """``/events/<event_id>/``: the issue page showing that event."""
    stored = queries.get_event(_store(request), request.path_params["event_id"])
    if stored is None:
        return render(
            request, "error.html", status_code=404, message="No such event.", nav="issues"
        )
    query = urlencode({"event": stored["event_id"]})
    return RedirectResponse(f"/issues/{stored['issue_id']}/?{query}", status_code=302)


def traces_page(request: Request) -> Response:
    """``/traces/``: transactions and streamed segments, newest first."""
    query = request.query_params.get("query", "")
    found = queries.list_transactions(_store(request), query)
    found = spans.with_segments(_store(request).connection(), found, query)
    return render(request, "traces.html", transactions=found, query=query, nav="traces")


def trace_page(request: Request) -> Response:
    """``/traces/<trace_id>/``: the span waterfall, with the trace's errors and logs."""
    trace = queries.get_trace(_store(request), request.path_params["trace_id"])
    return render(request, "trace.html", trace=trace, transaction=None, nav="traces")


def transaction_page(request: Request) -> Response:
    """``/transactions/<event_id>/``: one transaction's spans as a waterfall."""
    store = _store(request)
    found = queries.get_transaction(store, request.path_params["event_id"])
    if found is None:
        return render(
            request, "error.html", status_code=404, message="No such transaction.", nav="traces"
        )
    trace = queries.get_trace(store, found["trace_id"], found["event_id"])
    found["profiled"] = flamegraph.has_profile(store, found)
    return render(request, "trace.html", trace=trace, transaction=found, nav="traces")


def logs_page(request: Request) -> Response:
    """``/logs/``: structured logs."""
    params = request.query_params
    filters = {"query": params.get("query", ""), "level": params.get("level", "")}
    projects = _store(request).projects()
    project_id = _project_param(request, projects)
    found = queries.list_logs(
        _store(request),
        query=filters["query"],
        level=filters["level"] or None,
        trace_id=params.get("trace_id") or None,
        project_id=project_id,
    )
    return render(
        request,
        "logs.html",
        logs=found,
        filters=filters,
        projects=projects,
        project_id=project_id,
        nav="logs",
    )


def metrics_page(request: Request) -> Response:
    """``/metrics/``: a chart per metric (series by attributes over time), and the values."""
    from tripwire.server import metrics_chart

    store = _store(request)
    projects = store.projects()
    project_id = _project_param(request, projects)
    filters = {
        "name": request.query_params.get("name", "")[:200],
        "group": request.query_params.get("group", "")[:200],
    }
    data = metrics_chart.page(store, project_id, filters["name"] or None, filters["group"])
    keys = sorted({k for m in data["metrics"] for k in m["attribute_keys"]})
    return render(
        request,
        "metrics.html",
        nav="metrics",
        filters=filters,
        projects=projects,
        project_id=project_id,
        attribute_keys=keys,
        max_items=metrics_chart.MAX_ITEMS,
        **data,
    )


def releases_page(request: Request) -> Response:
    """``/releases/``: every release seen, its events and issues, and health from sessions."""
    return render(
        request, "releases.html", releases=queries.releases(_store(request)), nav="releases"
    )


def crons_page(request: Request) -> Response:
    """``/crons/``: cron monitors and their check-ins."""
    return render(request, "crons.html", monitors=queries.monitors(_store(request)), nav="crons")


def drops_page(request: Request) -> Response:
    """``/drops/``: what was dropped, by the SDKs (client reports) and by this server."""
    data = queries.outcomes(_store(request))
    items = queries.raw_items(_store(request), limit=50)
    return render(request, "drops.html", nav="drops", items=items, **data)


def envelopes_page(request: Request) -> Response:
    """``/envelopes/``: the envelopes received, newest first (the inspector)."""
    return render(
        request,
        "envelopes.html",
        envelopes=queries.list_envelopes(_store(request), limit=200),
        limit_count=INSPECT_COUNT,
        limit_mib=INSPECT_TOTAL_BYTES // MiB,
        item_kib=INSPECT_ITEM_BYTES // KiB,
        nav="live",
    )


def envelope_page(request: Request) -> Response:
    """``/envelopes/<id>/``: one envelope as received, each item decoded."""
    found = queries.get_envelope(_store(request), request.path_params["envelope_id"])
    if found is None:
        return render(
            request,
            "error.html",
            status_code=404,
            message="No such envelope (the oldest are not kept).",
            nav="live",
        )
    return render(request, "envelope.html", envelope=found, nav="live")


def live_page(request: Request) -> Response:
    """``/live/``: arrivals as they come (the page's script reads ``/live/feed``)."""
    return render(request, "live.html", nav="live")


# -- triage -------------------------------------------------------------------------------------

# The buttons of the triage forms: name="action", value one of these.
_ACTIONS: dict[str, Action] = {
    "resolve": Action("resolved"),
    "resolve_next": Action("resolved", in_next_release=True),
    "unresolve": Action("unresolved"),
    "ignore": Action("ignored"),
    "ignore_1h": Action("ignored", ignore_minutes=60),
    "ignore_1d": Action("ignored", ignore_minutes=24 * 60),
    "ignore_1w": Action("ignored", ignore_minutes=7 * 24 * 60),
    "ignore_10": Action("ignored", ignore_count=10),
    "ignore_100": Action("ignored", ignore_count=100),
}


async def _form(request: Request) -> Optional[dict[str, list[str]]]:
    """The urlencoded form of a POST, or None if it is too large or its token is wrong."""
    from tripwire.server.api import read_small_body

    raw = await read_small_body(request)
    if raw is None:
        return None
    try:
        form = parse_qs(raw.decode("utf-8", "replace"), max_num_fields=1100)
    except ValueError:  # more fields than any of the pages' forms has
        return None
    token = form.get("token", [""])[0]
    expected: str = request.app.state.tripwire.form_token
    if not hmac.compare_digest(token.encode(), expected.encode()):
        return None
    return form


def _local_path(value: str, default: str) -> str:
    """`value` if it is a path on this server (never another site), else `default`."""
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not value.startswith("/") or value.startswith(("//", "/\\")):
        return default
    return value


def _refused_form(request: Request) -> Response:
    return render(
        request,
        "error.html",
        status_code=403,
        title="Form refused",
        message="This form is from an earlier run of the server (or too large): "
        "reload the page and try again.",
        nav="issues",
    )


async def _triage(request: Request, ids: list[int], form: dict[str, list[str]]) -> Response:
    from starlette.concurrency import run_in_threadpool

    action = _ACTIONS.get(form.get("action", [""])[0])
    if action is None:
        return render(
            request,
            "error.html",
            status_code=400,
            title="Unknown action",
            message="That triage action is unknown.",
            nav="issues",
        )
    await run_in_threadpool(_store(request).triage, ids, action)
    target = _local_path(form.get("next", [""])[0], "/issues/")
    return RedirectResponse(target, status_code=303)


async def issue_triage(request: Request) -> Response:
    """``POST /issues/<id>/triage/``: resolve, ignore or unresolve one issue (a form)."""
    form = await _form(request)
    if form is None:
        return _refused_form(request)
    issue_id: int = request.path_params["issue_id"]
    if not form.get("next"):
        form["next"] = [f"/issues/{issue_id}/"]
    return await _triage(request, [issue_id], form)


async def issues_triage(request: Request) -> Response:
    """``POST /issues/triage/``: the same for the issues ticked on the list (``id``)."""
    form = await _form(request)
    if form is None:
        return _refused_form(request)
    ids = [int(v) for v in form.get("id", [])[:1000] if v.isdigit() and len(v) <= 18]
    return await _triage(request, ids, form)


def projects_page(request: Request) -> Response:
    """``/projects/``: the projects, their DSNs, and a form to add one."""
    from tripwire.server.api import dsn_of

    found = queries.projects(_store(request))
    for project in found:
        project["dsn"] = dsn_of(request, project)
    created = request.query_params.get("created", "")
    return render(
        request,
        "projects.html",
        projects=found,
        created=int(created) if created.isdigit() and len(created) < 19 else None,
        nav="projects",
    )


async def project_create(request: Request) -> Response:
    """``POST /projects/``: create a project (a form); back to the list, which shows its DSN."""
    from starlette.concurrency import run_in_threadpool

    form = await _form(request)
    if form is None:
        return _refused_form(request)
    try:
        project = await run_in_threadpool(_store(request).add_project, form.get("name", [""])[0])
    except ValueError as exc:
        return render(
            request,
            "error.html",
            status_code=400,
            title="Project not created",
            message=str(exc),
            nav="projects",
        )
    return RedirectResponse(f"/projects/?created={project['id']}", status_code=303)


def favicon(request: Request) -> Response:
    """``/favicon.ico``: browsers ask for it on every page."""
    return FileResponse(
        _HERE / "static" / "favicon.ico",
        media_type="image/x-icon",
        headers={"Cache-Control": "public, max-age=86400"},
    )


routes = [
    Route("/", home),
    Route("/favicon.ico", favicon),
    Route("/issues/", issues_page),
    Route("/issues/triage/", issues_triage, methods=["POST"]),
    Route("/issues/{issue_id:id}/", issue_page),
    Route("/issues/{issue_id:id}/triage/", issue_triage, methods=["POST"]),
    Route("/events/{event_id}/", event_page),
    Route("/traces/", traces_page),
    Route("/traces/{trace_id}/", trace_page),
    Route("/transactions/{event_id}/", transaction_page),
    Route("/logs/", logs_page),
    Route("/releases/", releases_page),
    Route("/metrics/", metrics_page),
    Route("/crons/", crons_page),
    Route("/drops/", drops_page),
    Route("/live/", live_page),
    Route("/projects/", projects_page, methods=["GET"]),
    Route("/projects/", project_create, methods=["POST"]),
    Route("/envelopes/", envelopes_page),
    Route("/envelopes/{envelope_id:id}/", envelope_page),
    *flamegraph.web_routes,
    Mount("/static", StaticFiles(directory=str(_HERE / "static")), name="static"),
]
