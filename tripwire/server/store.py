"""The SQLite store of the local backend: schema, versioning and writes.

One database file holds projects (with their public keys), issues, events,
transactions and spans, sessions, check-ins, logs, attachments, outcomes (client
reports and the server's own drops), rejected requests and items of other types.
It runs in WAL mode, so the web pages read while ingest writes, and several server
processes may share one file. Each thread gets its own connection; each write is
one ``BEGIN IMMEDIATE`` transaction, so an envelope is stored whole or not at all.

The schema version lives in ``PRAGMA user_version``; `MIGRATIONS` upgrades older
files in place, and a file from a newer tripwire is refused rather than damaged.

Reads are in `tripwire.server.queries`.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import sqlite3
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Optional, Union

from tripwire.server.grouping import group_event

SCHEMA_VERSION = 1

# MIGRATIONS[n] upgrades a database at version n to n + 1 (version 0 is a new file).
MIGRATIONS: list[str] = [
    """
    CREATE TABLE projects (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL,
        public_key TEXT NOT NULL UNIQUE,
        created REAL NOT NULL
    );
    CREATE TABLE issues (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL,
        hash TEXT NOT NULL,
        title TEXT NOT NULL,
        culprit TEXT NOT NULL,
        type TEXT NOT NULL,
        value TEXT NOT NULL,
        level TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'unresolved',
        first_seen REAL NOT NULL,
        last_seen REAL NOT NULL,
        times_seen INTEGER NOT NULL,
        last_event_id TEXT NOT NULL,
        UNIQUE (project_id, hash)
    );
    CREATE INDEX issues_last_seen ON issues (project_id, last_seen);
    CREATE TABLE events (
        project_id INTEGER NOT NULL,
        event_id TEXT NOT NULL,
        issue_id INTEGER NOT NULL,
        received REAL NOT NULL,
        timestamp REAL NOT NULL,
        level TEXT NOT NULL,
        title TEXT NOT NULL,
        release TEXT,
        environment TEXT,
        platform TEXT,
        transaction_name TEXT,
        trace_id TEXT,
        user_key TEXT,
        data TEXT NOT NULL,
        PRIMARY KEY (project_id, event_id)
    );
    CREATE INDEX events_issue ON events (issue_id, timestamp);
    CREATE INDEX events_trace ON events (trace_id);
    CREATE TABLE issue_users (
        issue_id INTEGER NOT NULL,
        user_key TEXT NOT NULL,
        PRIMARY KEY (issue_id, user_key)
    ) WITHOUT ROWID;
    CREATE TABLE transactions (
        project_id INTEGER NOT NULL,
        event_id TEXT NOT NULL,
        received REAL NOT NULL,
        trace_id TEXT,
        span_id TEXT,
        name TEXT NOT NULL,
        op TEXT,
        status TEXT,
        start_time REAL NOT NULL,
        end_time REAL NOT NULL,
        release TEXT,
        environment TEXT,
        data TEXT NOT NULL,
        PRIMARY KEY (project_id, event_id)
    );
    CREATE INDEX transactions_start ON transactions (project_id, start_time);
    CREATE INDEX transactions_trace ON transactions (trace_id);
    CREATE TABLE spans (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL,
        trace_id TEXT NOT NULL,
        span_id TEXT NOT NULL,
        parent_span_id TEXT,
        transaction_event_id TEXT,
        is_segment INTEGER NOT NULL,
        op TEXT,
        description TEXT,
        status TEXT,
        start_time REAL NOT NULL,
        end_time REAL NOT NULL,
        data TEXT
    );
    CREATE INDEX spans_trace ON spans (trace_id, start_time);
    CREATE TABLE sessions (
        project_id INTEGER NOT NULL,
        sid TEXT NOT NULL,
        did TEXT,
        release TEXT NOT NULL,
        environment TEXT,
        status TEXT NOT NULL,
        errors INTEGER NOT NULL,
        started REAL NOT NULL,
        timestamp REAL NOT NULL,
        duration REAL,
        PRIMARY KEY (project_id, sid)
    );
    CREATE TABLE session_aggregates (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL,
        release TEXT NOT NULL,
        environment TEXT,
        started REAL NOT NULL,
        exited INTEGER NOT NULL,
        errored INTEGER NOT NULL,
        abnormal INTEGER NOT NULL,
        crashed INTEGER NOT NULL
    );
    CREATE TABLE check_ins (
        project_id INTEGER NOT NULL,
        check_in_id TEXT NOT NULL,
        monitor_slug TEXT NOT NULL,
        status TEXT NOT NULL,
        duration REAL,
        environment TEXT,
        release TEXT,
        received REAL NOT NULL,
        monitor_config TEXT,
        PRIMARY KEY (project_id, check_in_id)
    );
    CREATE INDEX check_ins_slug ON check_ins (project_id, monitor_slug, received);
    CREATE TABLE logs (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL,
        timestamp REAL NOT NULL,
        level TEXT NOT NULL,
        severity_number INTEGER,
        body TEXT NOT NULL,
        trace_id TEXT,
        release TEXT,
        environment TEXT,
        attributes TEXT NOT NULL
    );
    CREATE INDEX logs_timestamp ON logs (project_id, timestamp);
    CREATE INDEX logs_trace ON logs (trace_id);
    CREATE TABLE attachments (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL,
        event_id TEXT,
        filename TEXT NOT NULL,
        content_type TEXT,
        attachment_type TEXT,
        size INTEGER NOT NULL,
        data BLOB NOT NULL
    );
    CREATE INDEX attachments_event ON attachments (project_id, event_id);
    CREATE TABLE outcomes (
        id INTEGER PRIMARY KEY,
        project_id INTEGER,
        source TEXT NOT NULL,
        received REAL NOT NULL,
        reason TEXT NOT NULL,
        category TEXT NOT NULL,
        quantity INTEGER NOT NULL
    );
    CREATE TABLE rejections (
        id INTEGER PRIMARY KEY,
        project_id INTEGER,
        received REAL NOT NULL,
        status INTEGER NOT NULL,
        reason TEXT NOT NULL,
        size INTEGER NOT NULL
    );
    CREATE TABLE items (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL,
        received REAL NOT NULL,
        event_id TEXT,
        type TEXT NOT NULL,
        headers TEXT NOT NULL,
        payload BLOB NOT NULL
    );
    CREATE INDEX items_type ON items (project_id, type);
    """,
]

PathLike = Union[str, "os.PathLike[str]"]


class SchemaError(RuntimeError):
    """The database was written by a newer tripwire, or is not a tripwire database."""


class InvalidItem(ValueError):
    """An envelope item whose payload cannot be stored (counted as an ``invalid`` drop)."""


class Item:
    """One item to store: its type, headers and payload (bytes, JSON parsed on demand)."""

    __slots__ = ("_json", "headers", "payload", "type")

    def __init__(
        self, type: str, headers: dict[str, Any], payload: bytes, parsed: Any = None
    ) -> None:
        self.type = type
        self.headers = headers
        self.payload = payload
        self._json = parsed

    def json(self) -> Any:
        """The payload as JSON. Raises `InvalidItem` if it is not."""
        if self._json is None:
            try:
                self._json = json.loads(self.payload)
            except (ValueError, RecursionError) as exc:
                raise InvalidItem(f"{self.type} payload is not JSON: {exc}") from None
        return self._json

    def object(self) -> dict[str, Any]:
        """The payload as a JSON object. Raises `InvalidItem` if it is not one."""
        value = self.json()
        if not isinstance(value, dict):
            raise InvalidItem(f"{self.type} payload is not a JSON object")
        return value


class SaveResult:
    """What one `Store.save` stored: counts per item type and dropped items."""

    __slots__ = ("dropped", "event_ids", "issue_ids", "stored")

    def __init__(self) -> None:
        self.stored: dict[str, int] = {}
        self.dropped: list[tuple[str, str, str]] = []  # (item type, reason, detail)
        self.event_ids: list[str] = []
        self.issue_ids: list[int] = []

    def count(self, kind: str, n: int = 1) -> None:
        self.stored[kind] = self.stored.get(kind, 0) + n


def default_db_path() -> Path:
    """The database of the project in the current directory (``$TRIPWIRE_DB`` overrides).

    The default lives in ``./.tripwire/tripwire.db``, next to the code it watches;
    the folder gets a ``.gitignore`` so that it is never committed.
    """
    env = os.environ.get("TRIPWIRE_DB")
    if env:
        return Path(env)
    return Path.cwd() / ".tripwire" / "tripwire.db"


class Store:
    """A tripwire database. Safe to share between threads; see the module docstring."""

    def __init__(self, path: PathLike) -> None:
        """Open (creating or upgrading) the database at `path`; ``:memory:`` is refused.

        Raises:
            SchemaError: the file is from a newer tripwire or not a tripwire database.
            sqlite3.Error: the file cannot be opened.
        """
        self.path = Path(path)
        if str(path) == ":memory:":
            raise ValueError("the store needs a file: threads and processes share it")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        ignore = self.path.parent / ".gitignore"
        if self.path.parent.name == ".tripwire" and not ignore.exists():
            ignore.write_text("# created by tripwire\n*\n")
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connections: list[sqlite3.Connection] = []
        self._keys: dict[str, int] = {}
        self._closed = False
        self._migrate()
        self._load_keys()

    # -- connections ------------------------------------------------------------------------

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (autocommit; `write` opens transactions)."""
        conn: Optional[sqlite3.Connection] = getattr(self._local, "conn", None)
        if conn is None:
            if self._closed:
                raise RuntimeError("the store is closed")
            conn = sqlite3.connect(
                str(self.path), timeout=30.0, isolation_level=None, check_same_thread=False
            )
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=OFF")
            self._local.conn = conn
            with self._lock:
                self._connections.append(conn)
        return conn

    def close(self) -> None:
        """Close every connection this store opened."""
        with self._lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for conn in connections:
            try:
                conn.close()
            except sqlite3.Error:
                pass

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _migrate(self) -> None:
        conn = self.connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            version = int(conn.execute("PRAGMA user_version").fetchone()[0])
            if version > SCHEMA_VERSION:
                raise SchemaError(
                    f"{self.path} has schema version {version}; this tripwire reads up to "
                    f"{SCHEMA_VERSION}: upgrade tripwire or use another --db"
                )
            if version == 0:
                tables = conn.execute(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                ).fetchone()[0]
                if tables:
                    raise SchemaError(f"{self.path} is a SQLite file but not a tripwire database")
            for step in range(version, SCHEMA_VERSION):
                for statement in _statements(MIGRATIONS[step]):
                    conn.execute(statement)
            if version != SCHEMA_VERSION:
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            if conn.execute("SELECT count(*) FROM projects").fetchone()[0] == 0:
                conn.execute(
                    "INSERT INTO projects (id, name, public_key, created) VALUES (1, ?, ?, ?)",
                    ("default", secrets.token_hex(16), time.time()),
                )
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def _load_keys(self) -> None:
        rows = self.connection().execute("SELECT id, public_key FROM projects").fetchall()
        self._keys = {row["public_key"]: row["id"] for row in rows}

    # -- projects ---------------------------------------------------------------------------

    def project_for_key(self, public_key: str) -> Optional[int]:
        """The id of the project `public_key` belongs to, or None."""
        project = self._keys.get(public_key)
        if project is None:
            # Another process may have added a project since we loaded the keys.
            self._load_keys()
            project = self._keys.get(public_key)
        return project

    def projects(self) -> list[dict[str, Any]]:
        """All projects: ``id``, ``name``, ``public_key``."""
        rows = self.connection().execute("SELECT id, name, public_key FROM projects ORDER BY id")
        return [dict(row) for row in rows]

    def default_project(self) -> dict[str, Any]:
        """The first project (created with the database)."""
        return self.projects()[0]

    def add_project(self, name: str, public_key: Optional[str] = None) -> dict[str, Any]:
        """Create a project with a new (or the given) public key."""
        key = public_key or secrets.token_hex(16)
        with self.write() as conn:
            cur = conn.execute(
                "INSERT INTO projects (name, public_key, created) VALUES (?, ?, ?)",
                (name, key, time.time()),
            )
            project_id = cur.lastrowid
        self._load_keys()
        return {"id": project_id, "name": name, "public_key": key}

    # -- writes -----------------------------------------------------------------------------

    def write(self) -> _Transaction:
        """A context manager running its block as one write transaction."""
        return _Transaction(self.connection())

    def save(
        self,
        project_id: int,
        items: Iterable[Item],
        envelope_headers: Optional[dict[str, Any]] = None,
        received: Optional[float] = None,
        dropped: Iterable[tuple[str, str, str]] = (),
    ) -> SaveResult:
        """Store the items of one envelope in one transaction.

        An item that cannot be stored (bad JSON, wrong shape) is left out and recorded
        as an ``invalid`` outcome; the others are stored. `dropped` lists items the
        caller already left out (type, reason, detail): they are recorded the same way.
        """
        now = time.time() if received is None else received
        headers = envelope_headers or {}
        header_event_id = _text(headers.get("event_id")) or None
        result = SaveResult()
        result.dropped.extend(dropped)
        with self.write() as conn:
            for item in items:
                # A savepoint per item: one bad item is left out, the others are kept.
                conn.execute("SAVEPOINT item")
                try:
                    _SAVERS.get(item.type, _save_raw)(
                        conn, project_id, item, header_event_id, now, result
                    )
                except (InvalidItem, sqlite3.InterfaceError, TypeError, ValueError, OverflowError) as exc:
                    conn.execute("ROLLBACK TO item")
                    result.dropped.append((item.type, "invalid", str(exc)))
                conn.execute("RELEASE item")
            for item_type, reason, _detail in result.dropped:
                conn.execute(
                    "INSERT INTO outcomes (project_id, source, received, reason, category, "
                    "quantity) VALUES (?, 'server', ?, ?, ?, 1)",
                    (project_id, now, reason, _category(item_type)),
                )
        return result

    def record_rejection(
        self, project_id: Optional[int], status: int, reason: str, size: int
    ) -> None:
        """Remember a refused request (shown on the client reports page)."""
        with self.write() as conn:
            conn.execute(
                "INSERT INTO rejections (project_id, received, status, reason, size) "
                "VALUES (?, ?, ?, ?, ?)",
                (project_id, time.time(), status, reason[:500], size),
            )

    def set_issue_status(self, issue_id: int, status: str) -> bool:
        """Set an issue's status (``unresolved``, ``resolved``, ``ignored``)."""
        if status not in ("unresolved", "resolved", "ignored"):
            raise ValueError(f"unknown issue status {status!r}")
        with self.write() as conn:
            cur = conn.execute("UPDATE issues SET status = ? WHERE id = ?", (status, issue_id))
        return cur.rowcount > 0


class _Transaction:
    __slots__ = ("conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def __enter__(self) -> sqlite3.Connection:
        self.conn.execute("BEGIN IMMEDIATE")
        return self.conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        if exc_type is None:
            self.conn.execute("COMMIT")
        else:
            self.conn.execute("ROLLBACK")


# -- savers, one per item type ------------------------------------------------------------------


def _save_event(
    conn: sqlite3.Connection,
    project_id: int,
    item: Item,
    header_event_id: Optional[str],
    now: float,
    result: SaveResult,
) -> None:
    event = item.object()
    if event.get("type") == "transaction":
        _save_transaction(conn, project_id, item, header_event_id, now, result)
        return
    event_id = _event_id(event, header_event_id)
    if conn.execute(
        "SELECT 1 FROM events WHERE project_id = ? AND event_id = ?", (project_id, event_id)
    ).fetchone():
        result.dropped.append((item.type, "duplicate", event_id))
        return
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
        "last_seen = max(last_seen, excluded.last_seen), "
        # A resolved issue that happens again is a regression: it opens again.
        "status = CASE WHEN status = 'resolved' THEN 'unresolved' ELSE status END",
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
    issue_id = int(
        conn.execute(
            "SELECT id FROM issues WHERE project_id = ? AND hash = ?", (project_id, grouping.hash)
        ).fetchone()[0]
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
            _text_or_none(event.get("release")),
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
    item: Item,
    header_event_id: Optional[str],
    now: float,
    result: SaveResult,
) -> None:
    event = item.object()
    event_id = _event_id(event, header_event_id)
    if conn.execute(
        "SELECT 1 FROM transactions WHERE project_id = ? AND event_id = ?",
        (project_id, event_id),
    ).fetchone():
        result.dropped.append(("transaction", "duplicate", event_id))
        return
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
    rows = [
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


def _save_session(
    conn: sqlite3.Connection,
    project_id: int,
    item: Item,
    header_event_id: Optional[str],
    now: float,
    result: SaveResult,
) -> None:
    session = item.object()
    sid = _text(session.get("sid"))
    attrs = session.get("attrs") if isinstance(session.get("attrs"), dict) else {}
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
    item: Item,
    header_event_id: Optional[str],
    now: float,
    result: SaveResult,
) -> None:
    payload = item.object()
    attrs = payload.get("attrs") if isinstance(payload.get("attrs"), dict) else {}
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
    item: Item,
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
    item: Item,
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
        attributes = entry.get("attributes")
        attributes = attributes if isinstance(attributes, dict) else {}
        severity = entry.get("severity_number")
        rows.append(
            (
                project_id,
                parse_timestamp(entry.get("timestamp"), now),
                _text(entry.get("level")) or "info",
                severity if type(severity) is int else _attribute(attributes, "sentry.severity_number"),
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
    item: Item,
    header_event_id: Optional[str],
    now: float,
    result: SaveResult,
) -> None:
    headers = item.headers
    conn.execute(
        "INSERT INTO attachments (project_id, event_id, filename, content_type, attachment_type, "
        "size, data) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (
            project_id,
            header_event_id,
            _text(headers.get("filename")) or "attachment",
            _text_or_none(headers.get("content_type")),
            _text_or_none(headers.get("attachment_type")),
            len(item.payload),
            item.payload,
        ),
    )
    result.count("attachment")


def _save_client_report(
    conn: sqlite3.Connection,
    project_id: int,
    item: Item,
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


def _save_raw(
    conn: sqlite3.Connection,
    project_id: int,
    item: Item,
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


_SAVERS = {
    "event": _save_event,
    "transaction": _save_transaction,
    "session": _save_session,
    "sessions": _save_sessions,
    "check_in": _save_check_in,
    "log": _save_log,
    "attachment": _save_attachment,
    "client_report": _save_client_report,
}

# Item type -> the protocol's data category, for outcomes.
_CATEGORIES = {
    "event": "error",
    "transaction": "transaction",
    "session": "session",
    "sessions": "session",
    "check_in": "monitor",
    "log": "log_item",
    "attachment": "attachment",
    "client_report": "internal",
    "profile": "profile",
    "profile_chunk": "profile_chunk",
    "span": "span",
    "replay_event": "replay",
    "replay_recording": "replay",
}


def _category(item_type: str) -> str:
    return _CATEGORIES.get(item_type, "default")


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
            int(year), int(month), int(day), int(hour), int(minute), int(second),
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


def _event_id(event: dict[str, Any], header_event_id: Optional[str]) -> str:
    event_id = _text(event.get("event_id")) or header_event_id or secrets.token_hex(16)
    return event_id.replace("-", "").lower()[:64]


def _trace_context(event: dict[str, Any]) -> dict[str, Any]:
    contexts = event.get("contexts")
    if isinstance(contexts, dict):
        trace = contexts.get("trace")
        if isinstance(trace, dict):
            return {k: v for k, v in trace.items() if isinstance(v, str) or k == "data"}
    return {}


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


def _json_text(item: Item, parsed: Any) -> str:
    # Keep the bytes as sent when they are UTF-8 JSON; re-encode only what came parsed.
    if item.payload:
        try:
            return item.payload.decode("utf-8")
        except UnicodeDecodeError:
            pass
    return _dump(parsed)


def _dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=repr)


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


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]
