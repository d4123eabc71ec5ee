"""Envelope items as the store keeps them: one saver per item type.

Each saver reads one item (an event, a transaction, a session, ...) and writes its
rows inside the transaction `Store.save` opened. A saver raises `InvalidItem` for an
item it cannot store; the caller leaves that item out and records why.
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
from datetime import datetime, timezone
from typing import Any, Callable, Optional

from tripwire.outcomes import item_category
from tripwire.server.grouping import group_event
from tripwire.server.spans import parse_span, span_entries
from tripwire.server.triage import after_event


class InvalidItem(ValueError):
    """An envelope item whose payload cannot be stored (counted as an ``invalid`` drop)."""


class StoredItem:
    """One item to store: its type, headers and payload (bytes, JSON parsed on demand).

    Text that cannot be stored as UTF-8 (lone surrogates, which JSON can escape and
    Python SDKs produce for undecodable file names) is repaired on the way in: each
    one becomes U+FFFD, and `repaired` says so; the stored JSON is then the repaired
    one, not the bytes as sent.

    Not `tripwire.envelope.Item` (sentry_sdk's wire item, which ingest decodes and
    rate-limits): this is the storage record made from it after the server's checks.
    """

    __slots__ = (
        "_json",
        "client_address",
        "headers",
        "payload",
        "repaired",
        "text_repaired",
        "type",
    )

    def __init__(
        self, type: str, headers: dict[str, Any], payload: bytes, parsed: Any = None
    ) -> None:
        self.type = type
        # The sender's address (ingest sets it): what ``"{{auto}}"`` IPs stand for.
        self.client_address: Optional[str] = None
        self.repaired = False  # stored other than as sent (see SaveResult.repaired)
        self.text_repaired = False
        fixed_headers = repair_text(headers)
        if fixed_headers is not headers:
            self.repaired = self.text_repaired = True
        self.headers = fixed_headers
        self.payload = payload
        self._json = parsed
        if parsed is not None and (not payload or _ESCAPED_SURROGATE.search(payload)):
            self._repair()

    def _repair(self) -> None:
        fixed = repair_text(self._json)
        if fixed is not self._json:
            self._json = fixed
            self.repaired = self.text_repaired = True

    def json(self) -> Any:
        """The payload as JSON. Raises `InvalidItem` if it is not."""
        if self._json is None:
            try:
                self._json = json.loads(self.payload)
            except (ValueError, RecursionError) as exc:
                raise InvalidItem(f"{self.type} payload is not JSON: {exc}") from None
            if _ESCAPED_SURROGATE.search(self.payload):
                self._repair()
        return self._json

    def object(self) -> dict[str, Any]:
        """The payload as a JSON object. Raises `InvalidItem` if it is not one."""
        value = self.json()
        if not isinstance(value, dict):
            raise InvalidItem(f"{self.type} payload is not a JSON object")
        return value


class SaveResult:
    """What one `Store.save` stored: counts per item type, dropped and repaired items."""

    __slots__ = (
        "dropped",
        "envelope_id",
        "event_ids",
        "header_event_id",
        "issue_ids",
        "repaired",
        "stored",
    )

    def __init__(self) -> None:
        self.stored: dict[str, int] = {}
        self.dropped: list[tuple[str, str, str]] = []  # (item type, reason, detail)
        self.event_ids: list[str] = []
        self.issue_ids: list[int] = []
        # What was stored other than as sent: {"type": ..., "field": ..., "reason": ...}.
        self.repaired: list[dict[str, str]] = []
        self.header_event_id: Optional[str] = None
        # The envelope inspector's record of it (`tripwire.server.inspector`).
        self.envelope_id: Optional[int] = None

    def repair(self, item_type: str, field: str, reason: str) -> None:
        self.repaired.append({"type": item_type, "field": field, "reason": reason[:200]})

    def count(self, kind: str, n: int = 1) -> None:
        self.stored[kind] = self.stored.get(kind, 0) + n


# -- savers, one per item type ------------------------------------------------------------------


def _save_event(
    conn: sqlite3.Connection,
    project_id: int,
    item: StoredItem,
    header_event_id: Optional[str],
    now: float,
    result: SaveResult,
) -> None:
    event = item.object()
    if event.get("type") == "transaction":
        _save_transaction(conn, project_id, item, header_event_id, now, result)
        return
    event_id = _event_id(event, header_event_id, item, result)
    if conn.execute(
        "SELECT 1 FROM events WHERE project_id = ? AND event_id = ?", (project_id, event_id)
    ).fetchone():
        result.dropped.append((item.type, "duplicate", event_id))
        return
    _fill_auto_ip(event, item)
    grouping = group_event(event)
    timestamp = parse_timestamp(event.get("timestamp"), now)
    level = _text(event.get("level")) or "error"
    conn.execute(
        "INSERT INTO issues (project_id, hash, title, culprit, type, value, level, first_seen, "
        "last_seen, times_seen, last_event_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?) "
        "ON CONFLICT (project_id, hash) DO UPDATE SET "
        "times_seen = times_seen + 1, "
        "first_seen = min(first_seen, excluded.first_seen), "
        "title = CASE WHEN excluded.last_seen >= last_seen THEN excluded.title ELSE title END, "
        "level = CASE WHEN excluded.last_seen >= last_seen THEN excluded.level ELSE level END, "
        "last_event_id = CASE WHEN excluded.last_seen >= last_seen "
        "THEN excluded.last_event_id ELSE last_event_id END, "
        "last_seen = max(last_seen, excluded.last_seen)",
        (
            project_id,
            grouping.hash,
            grouping.title,
            grouping.culprit,
            grouping.type,
            grouping.value[:1000],
            level,
            timestamp,
            timestamp,
            event_id,
        ),
    )
    issue = conn.execute(
        "SELECT * FROM issues WHERE project_id = ? AND hash = ?", (project_id, grouping.hash)
    ).fetchone()
    issue_id = int(issue["id"])
    release = _text_or_none(event.get("release"))
    # A resolved issue that happens again is a regression; an ignored one may be due back.
    change = after_event(issue, release, timestamp, now, event_id)
    if change is not None:
        conn.execute(
            "UPDATE issues SET status = ?, substatus = ?, status_changed = ?, "
            "regressed_at = CASE WHEN ? = 'regressed' THEN ? ELSE regressed_at END, "
            "in_next_release = 0, resolved_release = NULL, ignore_until = NULL, "
            "ignore_until_count = NULL WHERE id = ?",
            (change.status, change.substatus, now, change.substatus, now, issue_id),
        )
        conn.execute(
            "INSERT INTO issue_activity (issue_id, at, kind, detail) VALUES (?, ?, ?, ?)",
            (issue_id, now, change.kind, change.detail),
        )
    conn.executemany(
        "INSERT INTO issue_tags (issue_id, key, value, times_seen) VALUES (?, ?, ?, 1) "
        "ON CONFLICT (issue_id, key, value) DO UPDATE SET times_seen = times_seen + 1",
        [
            (issue_id, key[:200], value[:200])
            for key, value in {*tag_pairs(event), ("level", level)}
        ],
    )
    user_key = _user_key(event.get("user"))
    conn.execute(
        "INSERT INTO events (project_id, event_id, issue_id, received, timestamp, level, title, "
        "release, environment, platform, transaction_name, trace_id, user_key, data) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            project_id,
            event_id,
            issue_id,
            now,
            timestamp,
            level,
            grouping.title,
            release,
            _text_or_none(event.get("environment")),
            _text_or_none(event.get("platform")),
            _text_or_none(event.get("transaction")),
            _trace_context(event).get("trace_id"),
            user_key,
            _json_text(item, event),
        ),
    )
    if user_key:
        conn.execute(
            "INSERT OR IGNORE INTO issue_users (issue_id, user_key) VALUES (?, ?)",
            (issue_id, user_key),
        )
    result.count("event")
    result.event_ids.append(event_id)
    result.issue_ids.append(issue_id)


def _save_transaction(
    conn: sqlite3.Connection,
    project_id: int,
    item: StoredItem,
    header_event_id: Optional[str],
    now: float,
    result: SaveResult,
) -> None:
    event = item.object()
    event_id = _event_id(event, header_event_id, item, result)
    if conn.execute(
        "SELECT 1 FROM transactions WHERE project_id = ? AND event_id = ?",
        (project_id, event_id),
    ).fetchone():
        result.dropped.append(("transaction", "duplicate", event_id))
        return
    _fill_auto_ip(event, item)
    trace = _trace_context(event)
    end = parse_timestamp(event.get("timestamp"), now)
    start = parse_timestamp(event.get("start_timestamp"), end)
    trace_id = trace.get("trace_id") or event_id
    name = _text(event.get("transaction")) or "<unnamed transaction>"
    conn.execute(
        "INSERT INTO transactions (project_id, event_id, received, trace_id, span_id, name, op, "
        "status, start_time, end_time, release, environment, data) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            project_id,
            event_id,
            now,
            trace_id,
            trace.get("span_id"),
            name,
            trace.get("op"),
            trace.get("status"),
            start,
            end,
            _text_or_none(event.get("release")),
            _text_or_none(event.get("environment")),
            _json_text(item, event),
        ),
    )
    rows: list[tuple[Any, ...]] = [
        (
            project_id,
            trace_id,
            trace.get("span_id") or event_id[:16],
            trace.get("parent_span_id"),
            event_id,
            1,
            trace.get("op"),
            name,
            trace.get("status"),
            start,
            end,
            _dump(trace.get("data")),
        )
    ]
    spans = event.get("spans")
    for span in spans if isinstance(spans, list) else ():
        if not isinstance(span, dict):
            continue
        span_end = parse_timestamp(span.get("timestamp"), end)
        rows.append(
            (
                project_id,
                _text(span.get("trace_id")) or trace_id,
                _text(span.get("span_id")),
                _text_or_none(span.get("parent_span_id")),
                event_id,
                0,
                _text_or_none(span.get("op")),
                _text_or_none(span.get("description")),
                _text_or_none(span.get("status")),
                parse_timestamp(span.get("start_timestamp"), span_end),
                span_end,
                _dump(span.get("data")),
            )
        )
    conn.executemany(
        "INSERT INTO spans (project_id, trace_id, span_id, parent_span_id, transaction_event_id, "
        "is_segment, op, description, status, start_time, end_time, data) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    result.count("transaction")
    result.count("span", len(rows))
    result.event_ids.append(event_id)


def _save_spans(
    conn: sqlite3.Connection,
    project_id: int,
    item: StoredItem,
    header_event_id: Optional[str],
    now: float,
    result: SaveResult,
) -> None:
    # Streamed spans (see `tripwire.server.spans`): rows of the trace store. A span
    # already stored (an SDK resending a batch) is skipped.
    entries = span_entries(item.json())
    if entries is None:
        raise InvalidItem("span item without an items list or a span")
    stored: dict[str, set[str]] = {}
    links: dict[tuple[str, str], Optional[str]] = {}
    rows: list[tuple[Any, ...]] = []
    invalid = duplicates = 0
    for entry in entries:
        span = parse_span(entry)
        if span is None:
            invalid += 1
            continue
        known = stored.get(span.trace_id)
        if known is None:
            known = stored[span.trace_id] = {
                row[0]
                for row in conn.execute(
                    "SELECT span_id FROM spans WHERE trace_id = ? AND project_id = ?",
                    (span.trace_id, project_id),
                )
            }
        if span.span_id in known:
            duplicates += 1
            continue
        known.add(span.span_id)
        transaction = None
        if span.segment_id:
            key = (span.trace_id, span.segment_id)
            if key not in links:
                found = conn.execute(
                    "SELECT event_id FROM transactions WHERE trace_id = ? AND span_id = ? "
                    "AND project_id = ? LIMIT 1",
                    (span.trace_id, span.segment_id, project_id),
                ).fetchone()
                links[key] = found[0] if found else None
            transaction = links[key]
        end = parse_timestamp(span.end, now)
        rows.append(
            (
                project_id,
                span.trace_id,
                span.span_id,
                span.parent_span_id,
                transaction,
                1 if span.is_segment else 0,
                span.op,
                span.name,
                span.status,
                parse_timestamp(span.start, end),
                end,
                _dump(span.data),
            )
        )
    if invalid and not rows and not duplicates:
        raise InvalidItem("span item without a span that has a trace_id and a span_id")
    conn.executemany(
        "INSERT INTO spans (project_id, trace_id, span_id, parent_span_id, transaction_event_id, "
        "is_segment, op, description, status, start_time, end_time, data) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    if invalid:
        result.dropped.append(("span", "invalid", f"{invalid} spans without a valid trace/span id"))
    if duplicates:
        result.dropped.append(("span", "duplicate", f"{duplicates} spans already stored"))
    result.count("span", len(rows))


def _save_session(
    conn: sqlite3.Connection,
    project_id: int,
    item: StoredItem,
    header_event_id: Optional[str],
    now: float,
    result: SaveResult,
) -> None:
    session = item.object()
    sid = _text(session.get("sid"))
    attrs = _obj(session.get("attrs"))
    release = _text(attrs.get("release"))
    if not sid or not release:
        raise InvalidItem("session without sid or attrs.release")
    timestamp = parse_timestamp(session.get("timestamp"), now)
    errors = session.get("errors")
    duration = session.get("duration")
    conn.execute(
        "INSERT INTO sessions (project_id, sid, did, release, environment, status, errors, "
        "started, timestamp, duration) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (project_id, sid) DO UPDATE SET status = excluded.status, "
        "errors = max(errors, excluded.errors), timestamp = excluded.timestamp, "
        "duration = coalesce(excluded.duration, duration) "
        "WHERE excluded.timestamp >= timestamp",
        (
            project_id,
            sid,
            _text_or_none(session.get("did")),
            release,
            _text_or_none(attrs.get("environment")),
            _text(session.get("status")) or "ok",
            errors if type(errors) is int else 0,
            parse_timestamp(session.get("started"), timestamp),
            timestamp,
            duration if isinstance(duration, (int, float)) else None,
        ),
    )
    result.count("session")


def _save_sessions(
    conn: sqlite3.Connection,
    project_id: int,
    item: StoredItem,
    header_event_id: Optional[str],
    now: float,
    result: SaveResult,
) -> None:
    payload = item.object()
    attrs = _obj(payload.get("attrs"))
    release = _text(attrs.get("release"))
    aggregates = payload.get("aggregates")
    if not release or not isinstance(aggregates, list):
        raise InvalidItem("sessions without attrs.release or aggregates")
    rows = []
    for bucket in aggregates:
        if not isinstance(bucket, dict):
            continue
        rows.append(
            (
                project_id,
                release,
                _text_or_none(attrs.get("environment")),
                parse_timestamp(bucket.get("started"), now),
                *(_count(bucket.get(k)) for k in ("exited", "errored", "abnormal", "crashed")),
            )
        )
    conn.executemany(
        "INSERT INTO session_aggregates (project_id, release, environment, started, exited, "
        "errored, abnormal, crashed) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    result.count("sessions")


def _save_check_in(
    conn: sqlite3.Connection,
    project_id: int,
    item: StoredItem,
    header_event_id: Optional[str],
    now: float,
    result: SaveResult,
) -> None:
    check_in = item.object()
    slug = _text(check_in.get("monitor_slug"))
    status = _text(check_in.get("status"))
    if not slug or not status:
        raise InvalidItem("check_in without monitor_slug or status")
    check_in_id = _text(check_in.get("check_in_id")) or secrets.token_hex(16)
    duration = check_in.get("duration")
    config = check_in.get("monitor_config")
    conn.execute(
        "INSERT INTO check_ins (project_id, check_in_id, monitor_slug, status, duration, "
        "environment, release, received, monitor_config) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (project_id, check_in_id) DO UPDATE SET status = excluded.status, "
        "duration = coalesce(excluded.duration, duration), "
        "monitor_config = coalesce(excluded.monitor_config, monitor_config)",
        (
            project_id,
            check_in_id,
            slug,
            status,
            duration if isinstance(duration, (int, float)) else None,
            _text_or_none(check_in.get("environment")),
            _text_or_none(check_in.get("release")),
            now,
            _dump(config) if config is not None else None,
        ),
    )
    result.count("check_in")


def _save_log(
    conn: sqlite3.Connection,
    project_id: int,
    item: StoredItem,
    header_event_id: Optional[str],
    now: float,
    result: SaveResult,
) -> None:
    payload = item.object()
    entries = payload.get("items")
    if not isinstance(entries, list):
        raise InvalidItem("log item without an items list")
    rows = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        attributes = _obj(entry.get("attributes"))
        severity = entry.get("severity_number")
        rows.append(
            (
                project_id,
                parse_timestamp(entry.get("timestamp"), now),
                _text(entry.get("level")) or "info",
                severity
                if type(severity) is int
                else _attribute(attributes, "sentry.severity_number"),
                _text(entry.get("body")),
                _text_or_none(entry.get("trace_id")),
                _text_or_none(_attribute(attributes, "sentry.release")),
                _text_or_none(_attribute(attributes, "sentry.environment")),
                _dump(attributes),
            )
        )
    conn.executemany(
        "INSERT INTO logs (project_id, timestamp, level, severity_number, body, trace_id, "
        "release, environment, attributes) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows,
    )
    result.count("log", len(rows))


def _save_attachment(
    conn: sqlite3.Connection,
    project_id: int,
    item: StoredItem,
    header_event_id: Optional[str],
    now: float,
    result: SaveResult,
) -> None:
    headers = item.headers
    # The envelope's event_id (normalised by `Store.save`, as events' ids are: 32
    # lowercase hex digits), else that of the event stored before it in the envelope.
    event_id = header_event_id or (result.event_ids[0] if result.event_ids else None)
    conn.execute(
        "INSERT INTO attachments (project_id, event_id, filename, content_type, attachment_type, "
        "size, data, received) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (
            project_id,
            event_id,
            _text(headers.get("filename")) or "attachment",
            _text_or_none(headers.get("content_type")),
            _text_or_none(headers.get("attachment_type")),
            len(item.payload),
            item.payload,
            now,
        ),
    )
    result.count("attachment")


def _save_client_report(
    conn: sqlite3.Connection,
    project_id: int,
    item: StoredItem,
    header_event_id: Optional[str],
    now: float,
    result: SaveResult,
) -> None:
    report = item.object()
    rows = []
    for key in ("discarded_events", "rate_limited_events", "filtered_events"):
        entries = report.get(key)
        for entry in entries if isinstance(entries, list) else ():
            if not isinstance(entry, dict):
                continue
            reason = _text(entry.get("reason")) or key
            rows.append(
                (
                    project_id,
                    now,
                    reason,
                    _text(entry.get("category")) or "default",
                    _count(entry.get("quantity")),
                )
            )
    conn.executemany(
        "INSERT INTO outcomes (project_id, source, received, reason, category, quantity) "
        "VALUES (?, 'client', ?, ?, ?, ?)",
        rows,
    )
    result.count("client_report")


def save_raw(
    conn: sqlite3.Connection,
    project_id: int,
    item: StoredItem,
    header_event_id: Optional[str],
    now: float,
    result: SaveResult,
) -> None:
    # Profiles, replays, feedback and item types this server does not know: kept as sent.
    conn.execute(
        "INSERT INTO items (project_id, received, event_id, type, headers, payload) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        (project_id, now, header_event_id, item.type, _dump(item.headers), item.payload),
    )
    result.count(item.type or "unknown")


Saver = Callable[[sqlite3.Connection, int, "StoredItem", Optional[str], float, "SaveResult"], None]

SAVERS: dict[str, Saver] = {
    "event": _save_event,
    "transaction": _save_transaction,
    "span": _save_spans,
    "session": _save_session,
    "sessions": _save_sessions,
    "check_in": _save_check_in,
    "log": _save_log,
    "attachment": _save_attachment,
    "client_report": _save_client_report,
}

# Item type -> data category, for outcomes: the one table in `tripwire.outcomes`, which
# the SDK reads too (`envelope.Item.data_category`, used by ingest's rate limiting).
category = item_category


# -- helpers ------------------------------------------------------------------------------------

_ISO = re.compile(
    r"^(\d{4})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:[.,](\d+))?\s*(Z|[+-]\d\d:?\d\d)?$"
)


def parse_timestamp(value: Any, default: float) -> float:
    """Seconds since the epoch from an RFC 3339 string or a number; `default` otherwise."""
    if isinstance(value, bool):
        return default
    if isinstance(value, (int, float)):
        return float(value) if value == value and abs(value) < 1e11 else default
    if not isinstance(value, str):
        return default
    match = _ISO.match(value.strip())
    if match is None:
        return default
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        moment = datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            tzinfo=timezone.utc,
        )
    except ValueError:
        return default
    seconds = moment.timestamp() + (float("0." + fraction) if fraction else 0.0)
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        seconds -= sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60)
    return seconds


_UUID = re.compile(
    r"^(?:[0-9a-fA-F]{32}|[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-"
    r"[0-9a-fA-F]{12})$"
)


def valid_event_id(value: Any) -> Optional[str]:
    """`value` as 32 lowercase hex digits if it is a UUID (plain or dashed), else None."""
    if isinstance(value, str) and _UUID.match(value):
        return value.replace("-", "").lower()
    return None


def _event_id(
    event: dict[str, Any], header_event_id: Optional[str], item: StoredItem, result: SaveResult
) -> str:
    sent = event.get("event_id")
    if sent is None or sent == "":
        return header_event_id or secrets.token_hex(16)
    event_id = valid_event_id(sent)
    if event_id is not None:
        return event_id
    # As Relay does: a new id, and the value sent kept in the event's _meta.
    event_id = header_event_id or secrets.token_hex(16)
    shown = sent if isinstance(sent, str) else _dump(sent)
    meta = event.get("_meta")
    meta = dict(meta) if isinstance(meta, dict) else {}
    meta["event_id"] = {
        "": {"err": [["invalid_data", {"reason": "not a UUID"}]], "val": shown[:200]}
    }
    event["_meta"] = meta
    event["event_id"] = event_id
    item.repaired = True
    result.repair(item.type, "event_id", f"not a UUID: {shown[:100]!r}; stored as {event_id}")
    return event_id


# A JSON escape of a UTF-16 surrogate (paired or not); only then can a parsed string hold one.
_ESCAPED_SURROGATE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
_SURROGATE = re.compile("[\ud800-\udfff]")


def repair_text(value: Any) -> Any:
    """`value` with every lone surrogate in its strings (and keys) replaced by U+FFFD.

    Returns `value` itself when there is nothing to repair.
    """
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value) if _SURROGATE.search(value) else value
    if isinstance(value, dict):
        changed = False
        out: dict[Any, Any] = {}
        for key, item in value.items():
            new_key = repair_text(key)
            new_item = repair_text(item)
            changed = changed or new_key is not key or new_item is not item
            out[new_key] = new_item
        return out if changed else value
    if isinstance(value, list):
        items = [repair_text(v) for v in value]
        if any(a is not b for a, b in zip(items, value)):
            return items
        return value
    return value


_AUTO_IP = "{{auto}}"


def _fill_auto_ip(event: dict[str, Any], item: StoredItem) -> None:
    """``"{{auto}}"`` as the user's (or the request's) IP: the sender's address, as Sentry.

    Without a known sender address the placeholder is removed rather than stored.
    The event is then stored as changed (`StoredItem.repaired`), not as sent.
    """
    for holder in (
        _obj(event.get("user")),
        _obj(_obj(event.get("request")).get("env")),
    ):
        for key in ("ip_address", "REMOTE_ADDR"):
            value = holder.get(key)
            if isinstance(value, str) and value.strip().replace(" ", "") == _AUTO_IP:
                if item.client_address:
                    holder[key] = item.client_address
                else:
                    del holder[key]
                item.repaired = True


def _trace_context(event: dict[str, Any]) -> dict[str, Any]:
    contexts = event.get("contexts")
    if isinstance(contexts, dict):
        trace = contexts.get("trace")
        if isinstance(trace, dict):
            return {k: v for k, v in trace.items() if isinstance(v, str) or k == "data"}
    return {}


def tag_pairs(event: Any) -> list[tuple[str, str]]:
    """An event's tags as (key, value) pairs: a dict, or the legacy list of pairs.

    ``level``, ``release``, ``environment`` and ``server_name`` count as tags too.
    """
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


def _user_key(user: Any) -> Optional[str]:
    if not isinstance(user, dict):
        return None
    for key in ("id", "email", "username", "ip_address"):
        value = user.get(key)
        if value not in (None, ""):
            return f"{key}:{value}"[:200]
    return None


def _attribute(attributes: dict[str, Any], name: str) -> Any:
    value = attributes.get(name)
    if isinstance(value, dict):
        return value.get("value")
    return value


def _json_text(item: StoredItem, parsed: Any) -> str:
    # Keep the bytes as sent when they are UTF-8 JSON; re-encode what came parsed or
    # what had to be repaired.
    if item.payload and not item.repaired:
        try:
            return item.payload.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return _dump(parsed)


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=repr)


def _obj(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _count(value: Any) -> int:
    return value if type(value) is int and value >= 0 else 0


def _text(value: Any) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else str(value)


def _text_or_none(value: Any) -> Optional[str]:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)
