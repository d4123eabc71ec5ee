"""Retention: what the store forgets, by age and by size, so that it does not grow forever.

`prune` deletes what was received before a cutoff: events (and the issues left
without any), transactions with their spans, logs, sessions, check-ins,
attachments, other items, outcomes, refused requests and the inspector's envelopes.

- by age: everything older than `Retention.days`;
- by size: while the data takes more than `Retention.max_bytes`, the oldest tenth of
  the time still held goes, then the next, until it fits (at worst: everything).

An issue keeps its counts (``times_seen``, tags) over its whole life, as Sentry's do;
it goes once none of its events is left. `tripwire.server.store.Store.prune` runs
this at start and then at most once every `PRUNE_INTERVAL` seconds after a save.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from typing import Callable, Optional

__all__ = ["PRUNE_INTERVAL", "Retention", "prune"]

# How often saving checks retention (seconds).
PRUNE_INTERVAL = 60.0
_STEPS = 10

# (table, time column) of what is deleted by age. Spans go with their transaction,
# attachments without a time (from schema 1 and 2) with their event, and issues with
# their last event.
_TABLES = (
    ("events", "received"),
    ("transactions", "received"),
    ("logs", "timestamp"),
    ("sessions", "timestamp"),
    ("session_aggregates", "started"),
    ("check_ins", "received"),
    ("attachments", "received"),
    ("items", "received"),
    ("outcomes", "received"),
    ("rejections", "received"),
    ("envelopes", "received"),
)


@dataclass(frozen=True)
class Retention:
    """How long data is kept (`days`) and how much of it (`max_bytes`); None: no bound."""

    days: Optional[float] = None
    max_bytes: Optional[int] = None

    def __post_init__(self) -> None:
        if self.days is not None and not self.days > 0:
            raise ValueError(f"retention days must be more than 0, not {self.days}")
        if self.max_bytes is not None and self.max_bytes < 0:
            raise ValueError(f"the retention size must be at least 0, not {self.max_bytes}")

    @property
    def active(self) -> bool:
        """Whether anything is ever pruned."""
        return self.days is not None or self.max_bytes is not None


def prune(
    conn: sqlite3.Connection,
    retention: Retention,
    now: float,
    used_bytes: Callable[[sqlite3.Connection], int],
) -> dict[str, int]:
    """Apply `retention` (inside the caller's write transaction): rows deleted per table."""
    deleted: dict[str, int] = {}
    if retention.days is not None:
        _delete_before(conn, now - retention.days * 86400.0, deleted)
    if retention.max_bytes is not None and used_bytes(conn) > retention.max_bytes:
        oldest = _oldest(conn)
        if oldest is not None and oldest < now:
            for step in range(1, _STEPS + 1):
                cutoff = oldest + (now - oldest) * step / _STEPS
                _delete_before(conn, cutoff if step < _STEPS else float("inf"), deleted)
                if used_bytes(conn) <= retention.max_bytes:
                    break
    return {table: n for table, n in deleted.items() if n}


def _oldest(conn: sqlite3.Connection) -> Optional[float]:
    parts = " UNION ALL ".join(
        f"SELECT min({column}) AS t FROM {table}"  # noqa: S608 -- fixed names from _TABLES
        for table, column in _TABLES
    )
    value = conn.execute(f"SELECT min(t) FROM ({parts})").fetchone()[0]  # noqa: S608
    return float(value) if value is not None else None


def _delete_before(conn: sqlite3.Connection, cutoff: float, deleted: dict[str, int]) -> None:
    def count(table: str, n: int) -> None:
        deleted[table] = deleted.get(table, 0) + n

    count(
        "spans",
        conn.execute(
            "DELETE FROM spans WHERE transaction_event_id IN "
            "(SELECT event_id FROM transactions WHERE received < ?)",
            (cutoff,),
        ).rowcount,
    )
    # Streamed spans (no transaction) go by their end time.
    count(
        "spans",
        conn.execute(
            "DELETE FROM spans WHERE transaction_event_id IS NULL AND end_time < ?", (cutoff,)
        ).rowcount,
    )
    count(
        "attachments",
        conn.execute(
            "DELETE FROM attachments WHERE received IS NULL AND event_id IN "
            "(SELECT event_id FROM events WHERE received < ?)",
            (cutoff,),
        ).rowcount,
    )
    for table, column in _TABLES:
        count(
            table,
            conn.execute(
                f"DELETE FROM {table} WHERE {column} < ?",  # noqa: S608 -- fixed names
                (cutoff,),
            ).rowcount,
        )
    gone = "NOT EXISTS (SELECT 1 FROM events e WHERE e.issue_id = issues.id)"
    for table in ("issue_users", "issue_tags", "issue_activity"):
        conn.execute(
            f"DELETE FROM {table} WHERE issue_id IN (SELECT id FROM issues WHERE {gone})"  # noqa: S608
        )
    count("issues", conn.execute(f"DELETE FROM issues WHERE {gone}").rowcount)  # noqa: S608
