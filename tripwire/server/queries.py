"""Reads from the store, shared by the JSON API and the web pages.

Every function takes the `Store` and returns plain dicts and lists (JSON-ready).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any, Optional

from tripwire.server.store import Store

# Search keys understood in the issues search box ("level:error is:resolved timeout").
_FILTER_KEYS = ("level", "environment", "release", "is", "user")


def parse_search(query: str) -> tuple[dict[str, str], str]:
    """Split a search string into ``key:value`` filters and the remaining free text."""
    filters: dict[str, str] = {}
    words = []
    for word in query.split():
        key, sep, value = word.partition(":")
        if sep and key.lower() in _FILTER_KEYS and value:
            filters[key.lower()] = value
        else:
            words.append(word)
    return filters, " ".join(words)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def list_issues(
    store: Store,
    query: str = "",
    level: Optional[str] = None,
    environment: Optional[str] = None,
    release: Optional[str] = None,
    status: Optional[str] = "unresolved",
    project_id: Optional[int] = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """Issues, most recently seen first, filtered by search text and fields.

    `status` ``None`` (or ``all``) lists every status. Filters in `query` (``level:``,
    ``environment:``, ``release:``, ``is:``, ``user:``) override the arguments.
    """
    filters, text = parse_search(query)
    level = filters.get("level", level)
    environment = filters.get("environment", environment)
    release = filters.get("release", release)
    status = filters.get("is", status)
    where = ["1 = 1"]
    args: list[Any] = []
    if project_id is not None:
        where.append("i.project_id = ?")
        args.append(project_id)
    if status and status != "all":
        where.append("i.status = ?")
        args.append(status)
    if level:
        where.append("i.level = ?")
        args.append(level)
    if text:
        where.append(
            "(i.title LIKE ? ESCAPE '\\' OR i.culprit LIKE ? ESCAPE '\\' "
            "OR i.value LIKE ? ESCAPE '\\')"
        )
        args.extend([_like(text)] * 3)
    for column, value in (("environment", environment), ("release", release)):
        if value:
            where.append(
                # Only the fixed names in the tuple above are interpolated.
                f"EXISTS (SELECT 1 FROM events e WHERE e.issue_id = i.id AND e.{column} = ?)"  # noqa: S608
            )
            args.append(value)
    if "user" in filters:
        where.append(
            "EXISTS (SELECT 1 FROM issue_users u WHERE u.issue_id = i.id "
            "AND u.user_key LIKE ? ESCAPE '\\')"
        )
        args.append(_like(filters["user"]))
    args.append(max(1, min(limit, 1000)))
    sql = (
        "SELECT i.*, (SELECT count(*) FROM issue_users u WHERE u.issue_id = i.id) AS users "  # noqa: S608 -- fixed clauses; values are bound
        f"FROM issues i WHERE {' AND '.join(where)} ORDER BY i.last_seen DESC LIMIT ?"
    )
    rows = store.connection().execute(sql, args)
    return [_issue(row) for row in rows]


def _issue(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "project_id": row["project_id"],
        "hash": row["hash"],
        "title": row["title"],
        "culprit": row["culprit"],
        "type": row["type"],
        "value": row["value"],
        "level": row["level"],
        "status": row["status"],
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
    issue = _issue(row)
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


def get_trace(store: Store, trace_id: str) -> dict[str, Any]:
    """Everything with this trace id: spans in tree order (with depth), errors and logs."""
    conn = store.connection()
    spans = [
        dict(row)
        for row in conn.execute(
            "SELECT span_id, parent_span_id, transaction_event_id, is_segment, op, description, "
            "status, start_time, end_time, data FROM spans WHERE trace_id = ? "
            "ORDER BY start_time, id",
            (trace_id,),
        )
    ]
    for span in spans:
        span["data"] = _loads(span["data"]) if span["data"] else None
    ordered = _tree_order(spans)
    start = min((s["start_time"] for s in spans), default=0.0)
    end = max((s["end_time"] for s in spans), default=start)
    total = max(end - start, 1e-9)
    for span in ordered:
        span["duration_ms"] = round((span["end_time"] - span["start_time"]) * 1000, 3)
        span["offset_pct"] = round((span["start_time"] - start) / total * 100, 3)
        span["width_pct"] = max(
            round((span["end_time"] - span["start_time"]) / total * 100, 3), 0.2
        )
    errors = [
        dict(row)
        for row in conn.execute(
            "SELECT event_id, issue_id, title, level, timestamp FROM events WHERE trace_id = ? "
            "ORDER BY timestamp",
            (trace_id,),
        )
    ]
    logs = list_logs(store, trace_id=trace_id, limit=500)
    return {
        "trace_id": trace_id,
        "start": start,
        "duration_ms": round((end - start) * 1000, 3),
        "spans": ordered,
        "errors": errors,
        "logs": logs,
    }


def _tree_order(spans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ids = {s["span_id"] for s in spans}
    children: dict[Optional[str], list[dict[str, Any]]] = {}
    for span in spans:
        parent = span["parent_span_id"] if span["parent_span_id"] in ids else None
        children.setdefault(parent, []).append(span)
    ordered: list[dict[str, Any]] = []
    seen: set[int] = set()
    stack = [(s, 0) for s in reversed(children.get(None, []))]
    while stack:
        span, depth = stack.pop()
        if id(span) in seen:
            continue
        seen.add(id(span))
        span["depth"] = depth
        ordered.append(span)
        stack.extend((c, depth + 1) for c in reversed(children.get(span["span_id"], [])))
    # Spans caught in a parent cycle are still shown, at the top level.
    for span in spans:
        if id(span) not in seen:
            span["depth"] = 0
            ordered.append(span)
    return ordered


def list_logs(
    store: Store,
    query: str = "",
    level: Optional[str] = None,
    trace_id: Optional[str] = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    """Structured log records, newest first."""
    where = ["1 = 1"]
    args: list[Any] = []
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
        "SELECT release, environment, count(DISTINCT did) FROM sessions WHERE did IS NOT NULL "
        "GROUP BY release, environment"
    ):
        bucket(row[0], row[1])["users"] = row[2]
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
    """Stored items of other types (profiles, replays, unknown types): metadata only."""
    args: list[Any] = []
    where = ""
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
    ):
        counts[name] = int(conn.execute(sql).fetchone()[0])
    return counts


def event_tags(event: Any) -> list[tuple[str, str]]:
    """An event's tags as (key, value) pairs: a dict, or the legacy list of pairs."""
    if not isinstance(event, dict):
        return []
    tags = event.get("tags")
    pairs: list[tuple[str, str]] = []
    if isinstance(tags, dict):
        pairs = [(str(k), _display(v)) for k, v in tags.items()]
    elif isinstance(tags, list):
        pairs = [
            (str(t[0]), _display(t[1]))
            for t in tags
            if isinstance(t, (list, tuple)) and len(t) == 2
        ]
    for key in ("level", "release", "environment", "server_name"):
        value = event.get(key)
        if isinstance(value, str) and value:
            pairs.append((key, value))
    return pairs


def _display(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=repr)


def _loads(data: Any) -> Any:
    if data is None:
        return None
    try:
        return json.loads(data)
    except (ValueError, TypeError, RecursionError):
        return None
