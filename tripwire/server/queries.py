"""Reads from the store, shared by the JSON API and the web pages.

Every function takes the `Store` and returns plain dicts and lists (JSON-ready).
"""

from __future__ import annotations

import json
import re
import time
from collections import Counter
from typing import Any, Optional

from tripwire.server.genai import summarize as genai_summary
from tripwire.server.items import tag_pairs
from tripwire.server.store import Store
from tripwire.server.triage import effective_status

# ``key:value`` words of the issues search that are not tags ("is:resolved", "user:ana").
_SPECIAL_KEYS = ("is", "user")
_TOKEN = re.compile(r'([A-Za-z_][\w.\-]*):(?:"([^"]*)"|(\S+))|"([^"]*)"|(\S+)')


def parse_search(query: str) -> tuple[dict[str, str], str]:
    """Split a search string into ``key:value`` filters and the remaining free text.

    ``is:`` (a status, ``regressed`` or ``all``) and ``user:`` are filters of their
    own; every other key is a tag (``release:1.2``, ``level:error``,
    ``browser:"Chrome 120"``: quotes keep spaces). A later filter of a key wins.
    """
    filters: dict[str, str] = {}
    words = []
    for match in _TOKEN.finditer(query[:2000]):
        key, quoted, plain, quoted_text, word = match.groups()
        value = quoted if quoted is not None else plain
        if key is not None and value:
            filters[key.lower() if key.lower() in _SPECIAL_KEYS else key] = value
        elif key is not None:
            words.append(match.group(0))
        else:
            words.append(quoted_text if quoted_text is not None else word)
    return filters, " ".join(w for w in words if w)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# The status as shown: an ignore until a time that has passed is over (see `triage`).
_STATUS_WHERE = {
    "unresolved": "(i.status = 'unresolved' OR (i.status = 'ignored' AND i.ignore_until <= ?))",
    "ignored": "(i.status = 'ignored' AND (i.ignore_until IS NULL OR i.ignore_until > ?))",
    "resolved": "(i.status = 'resolved' AND ? IS NOT NULL)",
    "regressed": "(i.status = 'unresolved' AND i.substatus = 'regressed' AND ? IS NOT NULL)",
}


def list_issues(
    store: Store,
    query: str = "",
    level: Optional[str] = None,
    environment: Optional[str] = None,
    release: Optional[str] = None,
    status: Optional[str] = "unresolved",
    project_id: Optional[int] = None,
    limit: int = 100,
    now: Optional[float] = None,
) -> list[dict[str, Any]]:
    """Issues, most recently seen first, filtered by search text and fields.

    `status` ``None`` (or ``all``) lists every status, ``regressed`` the unresolved
    issues that came back. `query` is a search (see `parse_search`): its ``is:``
    overrides `status`, and its tags (``level:``, ``release:``, any key) are ANDed
    with the `level`, `environment` and `release` arguments.
    """
    now = time.time() if now is None else now
    filters, text = parse_search(query)
    status = filters.pop("is", status)
    user = filters.pop("user", None)
    tags = dict(filters)
    where = ["1 = 1"]
    args: list[Any] = []
    if project_id is not None:
        where.append("i.project_id = ?")
        args.append(project_id)
    if status and status != "all":
        if status in _STATUS_WHERE:
            where.append(_STATUS_WHERE[status])
            args.append(now)
        else:
            where.append("i.status = ?")
            args.append(status)
    if level and "level" not in tags:
        where.append("i.level = ?")
        args.append(level)
    for key, value in (("environment", environment), ("release", release)):
        if value and key not in tags:
            tags[key] = value
    if text:
        where.append(
            "(i.title LIKE ? ESCAPE '\\' OR i.culprit LIKE ? ESCAPE '\\' "
            "OR i.value LIKE ? ESCAPE '\\')"
        )
        args.extend([_like(text)] * 3)
    for key, value in tags.items():
        where.append(
            "EXISTS (SELECT 1 FROM issue_tags t WHERE t.issue_id = i.id AND t.key = ? "
            "AND t.value = ?)"
        )
        args.extend([key[:200], value[:200]])
    if user is not None:
        where.append(
            "EXISTS (SELECT 1 FROM issue_users u WHERE u.issue_id = i.id "
            "AND u.user_key LIKE ? ESCAPE '\\')"
        )
        args.append(_like(user))
    args.append(max(1, min(limit, 1000)))
    sql = (
        "SELECT i.*, (SELECT count(*) FROM issue_users u WHERE u.issue_id = i.id) AS users "  # noqa: S608 -- fixed clauses; values are bound
        f"FROM issues i WHERE {' AND '.join(where)} ORDER BY i.last_seen DESC LIMIT ?"
    )
    rows = store.connection().execute(sql, args)
    return [_issue(row, now) for row in rows]


def _issue(row: Any, now: float) -> dict[str, Any]:
    status = effective_status(row["status"], row["ignore_until"], now)
    return {
        "id": row["id"],
        "project_id": row["project_id"],
        "hash": row["hash"],
        "title": row["title"],
        "culprit": row["culprit"],
        "type": row["type"],
        "value": row["value"],
        "level": row["level"],
        "status": status,
        # "regressed": resolved, then it happened again; "unignored": an ignore ended.
        "substatus": row["substatus"] if status == "unresolved" else None,
        "status_changed": row["status_changed"],
        "in_next_release": bool(row["in_next_release"]) if status == "resolved" else False,
        "resolved_release": row["resolved_release"] if status == "resolved" else None,
        "ignore_until": row["ignore_until"] if status == "ignored" else None,
        "ignore_until_count": row["ignore_until_count"] if status == "ignored" else None,
        "regressed_at": row["regressed_at"],
        "first_seen": row["first_seen"],
        "last_seen": row["last_seen"],
        "count": row["times_seen"],
        "users": row["users"],
        "last_event_id": row["last_event_id"],
    }


def get_issue(store: Store, issue_id: int) -> Optional[dict[str, Any]]:
    """One issue with its releases, environments and tag distribution; None if unknown."""
    conn = store.connection()
    row = conn.execute(
        "SELECT i.*, (SELECT count(*) FROM issue_users u WHERE u.issue_id = i.id) AS users "
        "FROM issues i WHERE i.id = ?",
        (issue_id,),
    ).fetchone()
    if row is None:
        return None
    issue = _issue(row, time.time())
    issue["activity"] = [
        dict(r)
        for r in conn.execute(
            "SELECT at, kind, detail FROM issue_activity WHERE issue_id = ? "
            "ORDER BY at DESC, id DESC LIMIT 50",
            (issue_id,),
        )
    ]
    for column, key in (("release", "releases"), ("environment", "environments")):
        issue[key] = [
            {"name": r[0], "count": r[1]}
            for r in conn.execute(
                f"SELECT {column}, count(*) FROM events "  # noqa: S608 -- fixed column names
                f"WHERE issue_id = ? AND {column} IS NOT NULL GROUP BY {column} ORDER BY 2 DESC",
                (issue_id,),
            )
        ]
    # Tag distribution over the most recent events: enough for a local backend.
    tags: dict[str, Counter[str]] = {}
    for (data,) in conn.execute(
        "SELECT data FROM events WHERE issue_id = ? ORDER BY timestamp DESC LIMIT 500", (issue_id,)
    ):
        for key, value in event_tags(_loads(data)):
            tags.setdefault(key, Counter())[value] += 1
    issue["tags"] = {
        key: [{"value": v, "count": n} for v, n in counter.most_common(10)]
        for key, counter in sorted(tags.items())
    }
    return issue


def issue_events(store: Store, issue_id: int, limit: int = 50) -> list[dict[str, Any]]:
    """The latest events of an issue (summaries, newest first)."""
    rows = store.connection().execute(
        "SELECT event_id, timestamp, received, level, title, release, environment, user_key, "
        "trace_id FROM events WHERE issue_id = ? ORDER BY timestamp DESC, received DESC LIMIT ?",
        (issue_id, limit),
    )
    return [dict(row) for row in rows]


def get_event(store: Store, event_id: str) -> Optional[dict[str, Any]]:
    """A stored error event: ``data`` (the payload), its issue, and its attachments."""
    conn = store.connection()
    row = conn.execute(
        "SELECT * FROM events WHERE event_id = ? ORDER BY received DESC LIMIT 1",
        (event_id.replace("-", "").lower(),),
    ).fetchone()
    if row is None:
        return None
    event = dict(row)
    event["data"] = _loads(row["data"])
    event["attachments"] = attachments_for(store, row["project_id"], row["event_id"])
    return event


def attachments_for(store: Store, project_id: int, event_id: str) -> list[dict[str, Any]]:
    """Metadata of the attachments sent with an event."""
    rows = store.connection().execute(
        "SELECT id, filename, content_type, attachment_type, size FROM attachments "
        "WHERE project_id = ? AND event_id = ? ORDER BY id",
        (project_id, event_id),
    )
    return [dict(row) for row in rows]


def get_attachment(store: Store, attachment_id: int) -> Optional[dict[str, Any]]:
    """One attachment, with its bytes in ``data``."""
    row = (
        store.connection()
        .execute("SELECT * FROM attachments WHERE id = ?", (attachment_id,))
        .fetchone()
    )
    return dict(row) if row is not None else None


def list_transactions(store: Store, query: str = "", limit: int = 100) -> list[dict[str, Any]]:
    """Transactions, newest first (name search)."""
    args: list[Any] = []
    where = ""
    if query:
        where = "WHERE name LIKE ? ESCAPE '\\'"
        args.append(_like(query))
    args.append(limit)
    sql = (
        "SELECT event_id, trace_id, span_id, name, op, status, start_time, end_time, release, "  # noqa: S608 -- fixed clauses; values are bound
        "environment, (SELECT count(*) FROM spans s WHERE s.transaction_event_id = t.event_id) "
        f"AS spans FROM transactions t {where} ORDER BY start_time DESC LIMIT ?"
    )
    rows = store.connection().execute(sql, args)
    result = []
    for row in rows:
        item = dict(row)
        item["duration_ms"] = round((row["end_time"] - row["start_time"]) * 1000, 3)
        result.append(item)
    return result


def get_transaction(store: Store, event_id: str) -> Optional[dict[str, Any]]:
    """A stored transaction (its summary; ``data`` is the payload); None if unknown."""
    row = (
        store.connection()
        .execute(
            "SELECT * FROM transactions WHERE event_id = ? ORDER BY received DESC LIMIT 1",
            (event_id.replace("-", "").lower(),),
        )
        .fetchone()
    )
    if row is None:
        return None
    found = dict(row)
    found["data"] = _loads(row["data"])
    found["duration_ms"] = round((row["end_time"] - row["start_time"]) * 1000, 3)
    return found


def get_trace(
    store: Store, trace_id: str, transaction_event_id: Optional[str] = None
) -> dict[str, Any]:
    """Everything with this trace id, as a waterfall: spans, errors and logs.

    ``spans`` are in tree order (children under their ``parent_span_id``, each with
    its ``depth``); ``rows`` is the waterfall: those spans with the trace's errors
    and logs placed under the span they happened in, at their time. Offsets and
    widths are percentages of the whole (``start`` to ``start + duration_ms``).
    With `transaction_event_id`, only that transaction's spans, and the errors and
    logs of those spans.
    """
    conn = store.connection()
    span_where, txn_where, args = "trace_id = ?", "trace_id = ?", [trace_id]
    if transaction_event_id is not None:
        span_where += " AND transaction_event_id = ?"
        txn_where += " AND event_id = ?"
        args.append(transaction_event_id)
    spans = [
        dict(row)
        for row in conn.execute(
            "SELECT span_id, parent_span_id, transaction_event_id, is_segment, op, description, "  # noqa: S608 -- fixed clauses; values are bound
            f"status, start_time, end_time, data FROM spans WHERE {span_where} "
            f"ORDER BY start_time, id LIMIT {MAX_TRACE_SPANS}",
            args,
        )
    ]
    for span in spans:
        span["data"] = _loads(span["data"]) if span["data"] else None
        span["kind"] = "span"
    span_ids = {s["span_id"] for s in spans}
    transactions = [
        dict(row)
        for row in conn.execute(
            "SELECT event_id, name, op, status, start_time, end_time, release, environment, "  # noqa: S608 -- fixed clauses; values are bound
            f"span_id FROM transactions WHERE {txn_where} ORDER BY start_time LIMIT 1000",
            args,
        )
    ]
    for txn in transactions:
        txn["duration_ms"] = round((txn["end_time"] - txn["start_time"]) * 1000, 3)
    errors = [
        dict(row)
        for row in conn.execute(
            "SELECT e.event_id, e.issue_id, e.title, e.level, e.timestamp, "
            "CASE WHEN json_valid(e.data) THEN json_extract(e.data, '$.contexts.trace.span_id') "
            "END AS span_id, i.status, i.substatus "
            "FROM events e JOIN issues i ON i.id = e.issue_id WHERE e.trace_id = ? "
            "ORDER BY e.timestamp LIMIT 1000",
            (trace_id,),
        )
    ]
    logs = list_logs(store, trace_id=trace_id, limit=500)
    for log in logs:
        parent = log["attributes"].get("sentry.trace.parent_span_id")
        log["span_id"] = parent if isinstance(parent, str) else None
    if transaction_event_id is not None:
        errors = [e for e in errors if e["span_id"] in span_ids]
        logs = [log for log in logs if log["span_id"] in span_ids]
    moments = [s["start_time"] for s in spans] + [e["timestamp"] for e in errors]
    moments += [log["timestamp"] for log in logs]
    start = min(moments, default=0.0)
    end = max([s["end_time"] for s in spans] + moments, default=start)
    total = max(end - start, 1e-9)

    def place(row: dict[str, Any], begin: float, finish: float) -> None:
        row["offset_ms"] = round((begin - start) * 1000, 3)
        row["offset_pct"] = round((begin - start) / total * 100, 3)
        row["width_pct"] = max(round((finish - begin) / total * 100, 3), 0.2)

    for span in spans:
        span["duration_ms"] = round((span["end_time"] - span["start_time"]) * 1000, 3)
        place(span, span["start_time"], span["end_time"])
    markers: list[dict[str, Any]] = []
    for error in errors:
        marker = {**error, "kind": "error", "parent_span_id": error["span_id"]}
        marker["start_time"] = error["timestamp"]
        place(marker, error["timestamp"], error["timestamp"])
        markers.append(marker)
    for log in logs:
        marker = {
            "kind": "log",
            "level": log["level"],
            "body": log["body"],
            "parent_span_id": log["span_id"],
            "start_time": log["timestamp"],
        }
        place(marker, log["timestamp"], log["timestamp"])
        markers.append(marker)
    return {
        "trace_id": trace_id,
        "transaction_event_id": transaction_event_id,
        "start": start if moments else None,
        "duration_ms": round((end - start) * 1000, 3),
        # Model, tokens, prompts and cost of gen_ai spans (each span's ``gen_ai``).
        "gen_ai": genai_summary(spans),
        "spans": _tree_order(spans),
        "rows": _tree_order(spans + markers),
        "transactions": transactions,
        "errors": errors,
        "logs": logs,
    }


# A trace page shows at most this many spans (a runaway loop can make millions).
MAX_TRACE_SPANS = 10000


def _tree_order(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # Spans under their parent span; errors and logs (no span_id) as leaves under theirs.
    ids = {r["span_id"] for r in rows if r["kind"] == "span"}
    children: dict[Optional[str], list[dict[str, Any]]] = {}
    for row in rows:
        parent = row["parent_span_id"] if row["parent_span_id"] in ids else None
        children.setdefault(parent, []).append(row)
    for group in children.values():
        group.sort(key=lambda r: (r["start_time"], r["kind"] != "span"))
    ordered: list[dict[str, Any]] = []
    seen: set[int] = set()
    stack = [(r, 0) for r in reversed(children.get(None, []))]
    while stack:
        row, depth = stack.pop()
        if id(row) in seen:
            continue
        seen.add(id(row))
        ordered.append({**row, "depth": depth})
        if row["kind"] == "span":
            stack.extend((c, depth + 1) for c in reversed(children.get(row["span_id"], [])))
    # Spans caught in a parent cycle are still shown, at the top level.
    ordered.extend({**row, "depth": 0} for row in rows if id(row) not in seen)
    return ordered


def list_logs(
    store: Store,
    query: str = "",
    level: Optional[str] = None,
    trace_id: Optional[str] = None,
    limit: int = 200,
    project_id: Optional[int] = None,
) -> list[dict[str, Any]]:
    """Structured log records, newest first."""
    where = ["1 = 1"]
    args: list[Any] = []
    if project_id is not None:
        where.append("project_id = ?")
        args.append(project_id)
    if query:
        where.append("body LIKE ? ESCAPE '\\'")
        args.append(_like(query))
    if level:
        where.append("level = ?")
        args.append(level)
    if trace_id:
        where.append("trace_id = ?")
        args.append(trace_id)
    args.append(limit)
    sql = (
        "SELECT id, timestamp, level, severity_number, body, trace_id, release, environment, "  # noqa: S608 -- fixed clauses; values are bound
        f"attributes FROM logs WHERE {' AND '.join(where)} "
        "ORDER BY timestamp DESC, id DESC LIMIT ?"
    )
    rows = store.connection().execute(sql, args)
    result = []
    for row in rows:
        item = dict(row)
        attributes = _loads(row["attributes"])
        item["attributes"] = {
            k: (v.get("value") if isinstance(v, dict) else v)
            for k, v in (attributes.items() if isinstance(attributes, dict) else ())
        }
        result.append(item)
    return result


def release_health(store: Store) -> list[dict[str, Any]]:
    """Per release and environment: sessions by outcome and the crash-free rate."""
    conn = store.connection()
    totals: dict[tuple[str, str], dict[str, Any]] = {}

    def bucket(release: str, environment: Optional[str]) -> dict[str, Any]:
        key = (release, environment or "")
        if key not in totals:
            totals[key] = {
                "release": release,
                "environment": environment or "",
                "sessions": 0,
                "healthy": 0,
                "errored": 0,
                "abnormal": 0,
                "crashed": 0,
                "users": 0,
                "crashed_users": 0,
            }
        return totals[key]

    for row in conn.execute("SELECT release, environment, status, errors, did FROM sessions"):
        b = bucket(row["release"], row["environment"])
        b["sessions"] += 1
        status = row["status"]
        if status == "crashed":
            b["crashed"] += 1
        elif status == "abnormal":
            b["abnormal"] += 1
        elif status == "errored" or row["errors"]:
            b["errored"] += 1
        else:
            b["healthy"] += 1
    for row in conn.execute(
        "SELECT release, environment, count(DISTINCT did), "
        "count(DISTINCT CASE WHEN status = 'crashed' THEN did END) FROM sessions "
        "WHERE did IS NOT NULL GROUP BY release, environment"
    ):
        b = bucket(row[0], row[1])
        b["users"], b["crashed_users"] = row[2], row[3]
    for row in conn.execute(
        "SELECT release, environment, sum(exited), sum(errored), sum(abnormal), sum(crashed) "
        "FROM session_aggregates GROUP BY release, environment"
    ):
        b = bucket(row[0], row[1])
        exited, errored, abnormal, crashed = (int(v or 0) for v in row[2:])
        b["sessions"] += exited + errored + abnormal + crashed
        b["healthy"] += exited
        b["errored"] += errored
        b["abnormal"] += abnormal
        b["crashed"] += crashed
    result = sorted(totals.values(), key=lambda b: (b["release"], b["environment"]))
    for b in result:
        sessions = b["sessions"]
        b["crash_free_rate"] = (
            round(100.0 * (sessions - b["crashed"]) / sessions, 2) if sessions else None
        )
    return result


def releases(store: Store) -> list[dict[str, Any]]:
    """Every release seen (on events, transactions or sessions), latest first.

    Each has its ``events``, the ``issues`` they belong to and the ``new_issues``
    first seen in it, its ``transactions``, and, once sessions arrive, session
    counts with the crash-free rates of sessions and of users (``environments``:
    the same health per environment).
    """
    conn = store.connection()
    found: dict[str, dict[str, Any]] = {}

    def entry(release: str) -> dict[str, Any]:
        if release not in found:
            found[release] = {
                "release": release,
                "first_seen": None,
                "last_seen": None,
                "events": 0,
                "issues": 0,
                "new_issues": 0,
                "transactions": 0,
                "sessions": 0,
                "healthy": 0,
                "errored": 0,
                "abnormal": 0,
                "crashed": 0,
                "users": 0,
                "crashed_users": 0,
                "crash_free_rate": None,
                "crash_free_users": None,
                "environments": [],
            }
        return found[release]

    def seen(item: dict[str, Any], first: Optional[float], last: Optional[float]) -> None:
        if first is not None:
            item["first_seen"] = (
                first if item["first_seen"] is None else min(item["first_seen"], first)
            )
        if last is not None:
            item["last_seen"] = last if item["last_seen"] is None else max(item["last_seen"], last)

    for row in conn.execute(
        "SELECT release, count(*), count(DISTINCT issue_id), min(timestamp), max(timestamp) "
        "FROM events WHERE release IS NOT NULL GROUP BY release"
    ):
        item = entry(row[0])
        item["events"], item["issues"] = row[1], row[2]
        seen(item, row[3], row[4])
    # An issue is new in the release of its earliest event.
    for row in conn.execute(
        "SELECT release, count(*) FROM (SELECT issue_id, release, min(timestamp) FROM events "
        "GROUP BY issue_id) WHERE release IS NOT NULL GROUP BY release"
    ):
        entry(row[0])["new_issues"] = row[1]
    for row in conn.execute(
        "SELECT release, count(*), min(start_time), max(end_time) FROM transactions "
        "WHERE release IS NOT NULL GROUP BY release"
    ):
        item = entry(row[0])
        item["transactions"] = row[1]
        seen(item, row[2], row[3])
    for row in conn.execute(
        "SELECT release, min(started), max(timestamp) FROM sessions GROUP BY release "
        "UNION ALL SELECT release, min(started), max(started) FROM session_aggregates "
        "GROUP BY release"
    ):
        seen(entry(row[0]), row[1], row[2])
    for health in release_health(store):
        item = entry(health["release"])
        item["environments"].append(health)
        for key in ("sessions", "healthy", "errored", "abnormal", "crashed", "users"):
            item[key] += health[key]
        item["crashed_users"] += health["crashed_users"]
    for item in found.values():
        if item["sessions"]:
            rate = 100.0 * (item["sessions"] - item["crashed"]) / item["sessions"]
            item["crash_free_rate"] = round(rate, 2)
        if item["users"]:
            rate = 100.0 * (item["users"] - item["crashed_users"]) / item["users"]
            item["crash_free_users"] = round(rate, 2)
    return sorted(found.values(), key=lambda r: (r["last_seen"] or 0.0, r["release"]), reverse=True)


def monitors(store: Store) -> list[dict[str, Any]]:
    """Cron monitors (by slug): last status, counts by status and recent check-ins."""
    conn = store.connection()
    result = []
    slugs = conn.execute(
        "SELECT monitor_slug, max(received) AS last FROM check_ins GROUP BY monitor_slug "
        "ORDER BY last DESC"
    ).fetchall()
    for slug_row in slugs:
        slug = slug_row["monitor_slug"]
        recent = [
            dict(row)
            for row in conn.execute(
                "SELECT check_in_id, status, duration, environment, release, received, "
                "monitor_config FROM check_ins WHERE monitor_slug = ? "
                "ORDER BY received DESC LIMIT 20",
                (slug,),
            )
        ]
        for row in recent:
            row["monitor_config"] = _loads(row["monitor_config"]) if row["monitor_config"] else None
        counts = {
            row[0]: row[1]
            for row in conn.execute(
                "SELECT status, count(*) FROM check_ins WHERE monitor_slug = ? GROUP BY status",
                (slug,),
            )
        }
        config = next((r["monitor_config"] for r in recent if r["monitor_config"]), None)
        result.append(
            {
                "slug": slug,
                "last_status": recent[0]["status"] if recent else None,
                "last_check_in": slug_row["last"],
                "counts": counts,
                "config": config,
                "check_ins": recent,
            }
        )
    return result


def outcomes(store: Store) -> dict[str, Any]:
    """Dropped data: client reports (the SDK's own drops), the server's drops and refusals."""
    conn = store.connection()
    drops = [
        dict(row)
        for row in conn.execute(
            "SELECT source, reason, category, sum(quantity) AS quantity FROM outcomes "
            "GROUP BY source, reason, category ORDER BY source, quantity DESC"
        )
    ]
    rejections = [
        dict(row)
        for row in conn.execute(
            "SELECT received, status, reason, size FROM rejections ORDER BY id DESC LIMIT 50"
        )
    ]
    return {"outcomes": drops, "rejections": rejections}


def raw_items(
    store: Store, item_type: Optional[str] = None, limit: int = 100
) -> list[dict[str, Any]]:
    """Stored items of other types (profiles, replays, unknown types): metadata only.

    Metrics (``trace_metric``) are left out unless asked for: they have their page.
    """
    args: list[Any] = []
    where = "WHERE type != 'trace_metric'"
    if item_type:
        where = "WHERE type = ?"
        args.append(item_type)
    args.append(limit)
    sql = (
        "SELECT id, received, event_id, type, headers, length(payload) AS size FROM items "  # noqa: S608 -- fixed clauses; values are bound
        f"{where} ORDER BY id DESC LIMIT ?"
    )
    rows = store.connection().execute(sql, args)
    return [dict(row, headers=_loads(row["headers"])) for row in rows]


def list_envelopes(store: Store, limit: int = 100) -> list[dict[str, Any]]:
    """The envelopes the inspector keeps, newest first (without their items)."""
    rows = store.connection().execute(
        "SELECT id, project_id, received, path, size, item_types, kept FROM envelopes "
        "ORDER BY id DESC LIMIT ?",
        (max(1, min(limit, 1000)),),
    )
    return [dict(row) for row in rows]


def get_envelope(store: Store, envelope_id: int) -> Optional[dict[str, Any]]:
    """One envelope as received: headers, each item (decoded), and what became of it.

    Each item has ``headers``, ``size``, ``truncated`` and ``text`` (or ``hex`` for
    binary payloads), plus ``json`` when the text is a whole JSON document.
    """
    row = (
        store.connection()
        .execute("SELECT * FROM envelopes WHERE id = ?", (envelope_id,))
        .fetchone()
    )
    if row is None:
        return None
    found = dict(row)
    found["headers"] = _loads(row["headers"])
    found["outcome"] = _loads(row["outcome"])
    items = _loads(row["items"])
    found["items"] = items if isinstance(items, list) else []
    for item in found["items"]:
        text = item.get("text")
        if isinstance(text, str) and not item.get("truncated"):
            parsed = _loads(text)
            if parsed is not None or text.strip() == "null":
                item["json"] = parsed
    return found


def list_metrics(store: Store, limit: int = 500) -> dict[str, Any]:
    """Metrics as received (``trace_metric`` items), newest first, and a summary per name.

    ``metrics``: each value sent (name, type, value, unit, time, trace, attributes);
    ``summary``: per name and type, how many values, their sum, min, max and the last.
    """
    rows = store.connection().execute(
        "SELECT received, payload FROM items WHERE type = 'trace_metric' ORDER BY id DESC LIMIT 200"
    )
    metrics: list[dict[str, Any]] = []
    for row in rows:
        container = _loads(row["payload"])
        entries = container.get("items") if isinstance(container, dict) else None
        for entry in entries if isinstance(entries, list) else ():
            if not isinstance(entry, dict) or len(metrics) >= max(1, min(limit, 5000)):
                continue
            value = entry.get("value")
            attributes = entry.get("attributes")
            metrics.append(
                {
                    "timestamp": entry.get("timestamp")
                    if isinstance(entry.get("timestamp"), (int, float))
                    else row["received"],
                    "name": str(entry.get("name") or "<unnamed>")[:200],
                    "type": str(entry.get("type") or "")[:50],
                    "value": value
                    if isinstance(value, (int, float)) and not isinstance(value, bool)
                    else None,
                    "unit": str(entry.get("unit") or "")[:50],
                    "trace_id": entry.get("trace_id")
                    if isinstance(entry.get("trace_id"), str)
                    else None,
                    "attributes": {
                        str(k): (v.get("value") if isinstance(v, dict) else v)
                        for k, v in (attributes.items() if isinstance(attributes, dict) else ())
                    },
                }
            )
    metrics.sort(key=lambda m: m["timestamp"], reverse=True)
    summary: dict[tuple[str, str], dict[str, Any]] = {}
    for metric in reversed(metrics):
        key = (metric["name"], metric["type"])
        item = summary.setdefault(
            key,
            {"name": key[0], "type": key[1], "unit": metric["unit"], "count": 0, "sum": 0.0},
        )
        item["count"] += 1
        value = metric["value"]
        if value is not None:
            item["sum"] += value
            item["min"] = min(item.get("min", value), value)
            item["max"] = max(item.get("max", value), value)
            item["last"] = value
            item.setdefault("series", []).append((metric["timestamp"], value))
    for item in summary.values():
        item["points"] = _sparkline(item.pop("series", []))
    return {"metrics": metrics, "summary": sorted(summary.values(), key=lambda m: m["name"])}


def _sparkline(series: list[tuple[float, float]], width: int = 100, height: int = 24) -> str:
    """SVG polyline points for (time, value) pairs, oldest first, scaled to the box."""
    if not series:
        return ""
    times = [t for t, _ in series]
    values = [v for _, v in series]
    t0, t_span = min(times), (max(times) - min(times)) or 1.0
    v0, v_span = min(values), (max(values) - min(values)) or 1.0
    if len(series) == 1:
        series = [(t0, values[0]), (t0 + t_span, values[0])]
    return " ".join(
        f"{(t - t0) / t_span * width:.1f},{height - 1 - (v - v0) / v_span * (height - 2):.1f}"
        for t, v in series
    )


def projects(store: Store) -> list[dict[str, Any]]:
    """Projects with their keys and how much each holds (issues, events, transactions)."""
    conn = store.connection()
    counts: dict[int, dict[str, int]] = {}
    for table in ("issues", "events", "transactions"):
        for project_id, n in conn.execute(
            f"SELECT project_id, count(*) FROM {table} GROUP BY project_id"  # noqa: S608 -- fixed names
        ):
            counts.setdefault(project_id, {})[table] = n
    return [
        {
            **p,
            **{t: counts.get(p["id"], {}).get(t, 0) for t in ("issues", "events", "transactions")},
        }
        for p in store.projects()
    ]


def stats(store: Store) -> dict[str, int]:
    """Row counts per kind of stored data."""
    conn = store.connection()
    counts = {}
    for name, sql in (
        ("issues", "SELECT count(*) FROM issues"),
        ("events", "SELECT count(*) FROM events"),
        ("transactions", "SELECT count(*) FROM transactions"),
        ("spans", "SELECT count(*) FROM spans"),
        ("sessions", "SELECT count(*) FROM sessions"),
        ("session_aggregates", "SELECT count(*) FROM session_aggregates"),
        ("check_ins", "SELECT count(*) FROM check_ins"),
        ("logs", "SELECT count(*) FROM logs"),
        ("attachments", "SELECT count(*) FROM attachments"),
        ("client_reports", "SELECT count(*) FROM outcomes WHERE source = 'client'"),
        ("items", "SELECT count(*) FROM items"),
        ("rejections", "SELECT count(*) FROM rejections"),
        ("envelopes", "SELECT count(*) FROM envelopes"),
    ):
        counts[name] = int(conn.execute(sql).fetchone()[0])
    return counts


def event_tags(event: Any) -> list[tuple[str, str]]:
    """An event's tags as (key, value) pairs (see `tripwire.server.items.tag_pairs`)."""
    return tag_pairs(event)


def _loads(data: Any) -> Any:
    if data is None:
        return None
    try:
        return json.loads(data)
    except (ValueError, TypeError, RecursionError):
        return None
