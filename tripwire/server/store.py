"""The SQLite store of the local backend: connections, versioning and writes.

One database file holds projects (with their public keys), issues, events,
transactions and spans, sessions, check-ins, logs, attachments, outcomes (client
reports and the server's own drops), rejected requests and items of other types.
It runs in WAL mode, so the web pages read while ingest writes, and several server
processes may share one file. Each thread gets its own connection; each write is
one ``BEGIN IMMEDIATE`` transaction, so an envelope is stored whole or not at all.

The schema version lives in ``PRAGMA user_version``; `MIGRATIONS` (in
`tripwire.server.schema`) upgrades older files in place, and a file from a newer
tripwire is refused rather than damaged.

Reads are in `tripwire.server.queries`.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Optional, Union

from tripwire.server.inspector import EnvelopeRecord, save_record
from tripwire.server.items import (
    SAVERS,
    InvalidItem,
    SaveResult,
    StoredItem,
    category,
    parse_timestamp,
    save_raw,
    valid_event_id,
)
from tripwire.server.limits import INSPECT_COUNT, INSPECT_TOTAL_BYTES
from tripwire.server.retention import PRUNE_INTERVAL, Retention, prune
from tripwire.server.schema import MIGRATIONS as MIGRATIONS
from tripwire.server.schema import SCHEMA_VERSION, SchemaError
from tripwire.server.triage import Action

__all__ = [
    "SCHEMA_VERSION",
    "InvalidItem",
    "SaveResult",
    "SchemaError",
    "Store",
    "StoreFull",
    "StoredItem",
    "default_db_path",
    "parse_timestamp",
]

PathLike = Union[str, "os.PathLike[str]"]


def default_db_path() -> Path:
    """The database of the project in the current directory (``$TRIPWIRE_DB`` overrides).

    The default lives in ``./.tripwire/tripwire.db``, next to the code it watches;
    the folder gets a ``.gitignore`` so that it is never committed.
    """
    env = os.environ.get("TRIPWIRE_DB")
    if env:
        return Path(env)
    return Path.cwd() / ".tripwire" / "tripwire.db"


class StoreFull(Exception):
    """Saving would take the database over `Store.max_bytes` (nothing was written)."""


class Store:
    """A tripwire database. Safe to share between threads; see the module docstring.

    `max_bytes` (None: no limit) bounds what `save` adds: an envelope that would take
    the database past it is refused whole with `StoreFull`.
    """

    max_bytes: Optional[int] = None
    # What the envelope inspector keeps of all envelopes together (oldest go first).
    inspect_total_bytes: int = INSPECT_TOTAL_BYTES
    inspect_count: int = INSPECT_COUNT
    # What is forgotten by age and size (`tripwire.server.retention`): nothing by default.
    retention: Retention = Retention()
    # How often a save checks retention, in seconds (0 in tests: every save).
    prune_interval: float = PRUNE_INTERVAL

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
        self._prune_lock = threading.Lock()
        self._last_prune = float("-inf")
        try:
            self._migrate()
            self._load_keys()
        except BaseException:
            self.close()  # the caller never gets the store: release its connection now
            raise

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
        """Create a project with a new (or the given) public key.

        Raises:
            ValueError: the name is empty or longer than 100 characters.
        """
        name = name.strip()
        if not name or len(name) > 100:
            raise ValueError("a project name has 1 to 100 characters")
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
        items: Iterable[StoredItem],
        envelope_headers: Optional[dict[str, Any]] = None,
        received: Optional[float] = None,
        dropped: Iterable[tuple[str, str, str]] = (),
        client_address: Optional[str] = None,
        inspect: Optional[EnvelopeRecord] = None,
    ) -> SaveResult:
        """Store the items of one envelope in one transaction.

        An item that cannot be stored (bad JSON, wrong shape) is left out and recorded
        as an ``invalid`` outcome; the others are stored. `dropped` lists items the
        caller already left out (type, reason, detail): they are recorded the same way.
        `client_address` is the sender's IP address, what ``"{{auto}}"`` IPs stand for.
        `inspect` is the envelope's record for the inspector, kept with what became of it.
        """
        now = time.time() if received is None else received
        headers = envelope_headers or {}
        items = list(items)
        for item in items:
            item.client_address = client_address
        result = SaveResult()
        sent_id = headers.get("event_id")
        header_event_id = valid_event_id(sent_id)
        if header_event_id is None and sent_id not in (None, ""):
            result.repair("envelope", "event_id", f"not a UUID: {str(sent_id)[:100]!r}; ignored")
        result.header_event_id = header_event_id
        result.dropped.extend(dropped)
        with self.write() as conn:
            if self.max_bytes is not None:
                incoming = sum(len(item.payload) for item in items)
                incoming += inspect.kept if inspect is not None else 0
                used = self.used_bytes(conn)
                if used + incoming > self.max_bytes:
                    raise StoreFull(
                        f"the database {self.path} holds {used} bytes and its limit is "
                        f"{self.max_bytes} bytes: this envelope ({incoming} bytes) is refused; "
                        "start the server on a new --db or raise --max-db-size"
                    )
            for item in items:
                # A savepoint per item: one bad item is left out, the others are kept.
                conn.execute("SAVEPOINT item")
                try:
                    SAVERS.get(item.type, save_raw)(
                        conn, project_id, item, header_event_id, now, result
                    )
                except (
                    InvalidItem,
                    sqlite3.InterfaceError,
                    TypeError,
                    ValueError,
                    OverflowError,
                ) as exc:
                    conn.execute("ROLLBACK TO item")
                    result.dropped.append((item.type, "invalid", str(exc)))
                else:
                    if item.text_repaired:
                        result.repair(item.type, "text", "lone surrogates replaced by U+FFFD")
                conn.execute("RELEASE item")
            for item_type, reason, _detail in result.dropped:
                conn.execute(
                    "INSERT INTO outcomes (project_id, source, received, reason, category, "
                    "quantity) VALUES (?, 'server', ?, ?, ?, 1)",
                    (project_id, now, reason, category(item_type)),
                )
            if inspect is not None:
                result.envelope_id = save_record(
                    conn,
                    project_id,
                    inspect,
                    now,
                    {
                        "stored": result.stored,
                        "dropped": [
                            {"type": t, "reason": r, "detail": d[:200]}
                            for t, r, d in result.dropped
                        ],
                        "repaired": result.repaired[:20],
                        "event_ids": result.event_ids[:20],
                    },
                    self.inspect_total_bytes,
                    self.inspect_count,
                )
        self._maybe_prune()
        return result

    def prune(self, now: Optional[float] = None) -> dict[str, int]:
        """Forget what `retention` says is too old or too much; rows deleted per table."""
        if not self.retention.active:
            return {}
        now = time.time() if now is None else now
        with self._prune_lock:
            self._last_prune = time.monotonic()
            with self.write() as conn:
                return prune(conn, self.retention, now, self.used_bytes)

    def _maybe_prune(self) -> None:
        # After a save, at most every PRUNE_INTERVAL; never two at once, never waiting.
        if not self.retention.active:
            return
        if time.monotonic() - self._last_prune < self.prune_interval:
            return
        if self._prune_lock.acquire(blocking=False):
            try:
                self._last_prune = time.monotonic()
                with self.write() as conn:
                    prune(conn, self.retention, time.time(), self.used_bytes)
            finally:
                self._prune_lock.release()

    def used_bytes(self, conn: Optional[sqlite3.Connection] = None) -> int:
        """Bytes the database's pages hold (free pages not counted)."""
        conn = conn or self.connection()
        pages = int(conn.execute("PRAGMA page_count").fetchone()[0])
        free = int(conn.execute("PRAGMA freelist_count").fetchone()[0])
        size = int(conn.execute("PRAGMA page_size").fetchone()[0])
        return (pages - free) * size

    def record_rejection(
        self, project_id: Optional[int], status: int, reason: str, size: int
    ) -> None:
        """Remember a refused request (shown on the client reports page)."""
        with self.write() as conn:
            conn.execute(
                "INSERT INTO rejections (project_id, received, status, reason, size) "
                "VALUES (?, ?, ?, ?, ?)",
                (_sqlite_int(project_id), time.time(), status, reason[:500], size),
            )

    def set_issue_status(self, issue_id: int, status: str) -> bool:
        """Set an issue's status (``unresolved``, ``resolved``, ``ignored``)."""
        return self.triage([issue_id], Action(status)) > 0

    def triage(self, issue_ids: Iterable[int], action: Action, now: Optional[float] = None) -> int:
        """Apply `action` to the issues `issue_ids` (one transaction); how many exist.

        Each gets an activity record; resolving in the next release remembers the
        release of the issue's latest event (see `tripwire.server.triage`).
        """
        now = time.time() if now is None else now
        ids = sorted({i for i in issue_ids if _sqlite_int(i) is not None})
        changed = 0
        with self.write() as conn:
            for issue_id in ids:
                row = conn.execute(
                    "SELECT times_seen FROM issues WHERE id = ?", (issue_id,)
                ).fetchone()
                if row is None:
                    continue
                release = None
                if action.in_next_release:
                    latest = conn.execute(
                        "SELECT release FROM events WHERE issue_id = ? AND release IS NOT NULL "
                        "ORDER BY timestamp DESC, received DESC LIMIT 1",
                        (issue_id,),
                    ).fetchone()
                    release = latest[0] if latest is not None else None
                conn.execute(
                    "UPDATE issues SET status = ?, substatus = NULL, status_changed = ?, "
                    "in_next_release = ?, resolved_release = ?, ignore_until = ?, "
                    "ignore_until_count = ? WHERE id = ?",
                    (
                        action.status,
                        now,
                        int(action.in_next_release),
                        release,
                        now + 60 * action.ignore_minutes
                        if action.ignore_minutes is not None
                        else None,
                        row[0] + action.ignore_count if action.ignore_count is not None else None,
                        issue_id,
                    ),
                )
                conn.execute(
                    "INSERT INTO issue_activity (issue_id, at, kind, detail) VALUES (?, ?, ?, ?)",
                    (issue_id, now, action.status, action.describe(release)),
                )
                changed += 1
        return changed


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


def _sqlite_int(value: Optional[int]) -> Optional[int]:
    # A project id from a URL may be any size; SQLite integers are 64-bit.
    return value if value is None or -(2**63) <= value < 2**63 else None


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]
