"""Streamed spans: ``span`` envelope items, read into the trace store, and their segments.

An SDK in span-streaming mode (sentry_sdk's ``trace_lifecycle="stream"``, and its
gen_ai spans by default) sends spans as they end, in ``span`` items: a v2 container
``{"items": [span, ...]}`` whose spans carry ``name``, ``status``, ``is_segment``,
float ``start_timestamp`` / ``end_timestamp`` and typed ``attributes``
(``{key: {"type": ..., "value": ...}}``). A lone span object (the older single-span
item) is read too. Both become rows of the ``spans`` table next to the spans of
transactions: the name is the description, the ``sentry.op`` attribute the op, the
attribute values the data. A streamed span whose segment is a stored transaction's
root span is linked to that transaction (sentry_sdk sends a transaction's gen_ai spans
this way, in the transaction's envelope).

The saver itself is `tripwire.server.items` (which owns the savers); this module
imports nothing from the server but `genai` (no store) so that the store can use it.
"""

from __future__ import annotations

import json
import re
import sqlite3
from typing import Any, NamedTuple, Optional

from tripwire.server.genai import summarize

__all__ = [
    "StreamedSpan",
    "flatten_attributes",
    "list_segments",
    "parse_span",
    "span_entries",
    "with_segments",
]

_TRACE_ID = re.compile(r"^[0-9a-fA-F]{32}$")
_SPAN_ID = re.compile(r"^[0-9a-fA-F]{16}$")


class StreamedSpan(NamedTuple):
    """One streamed span, checked and flattened (timestamps as sent)."""

    trace_id: str
    span_id: str
    parent_span_id: Optional[str]
    is_segment: bool
    op: Optional[str]
    name: Optional[str]
    status: Optional[str]
    start: Any
    end: Any
    data: dict[str, Any]
    segment_id: Optional[str]


def span_entries(payload: Any) -> Optional[list[Any]]:
    """The spans of a ``span`` item's payload (v2 container or a lone span); None if neither."""
    if isinstance(payload, dict):
        items = payload.get("items")
        if isinstance(items, list):
            return items
        if "span_id" in payload:
            return [payload]
    return None


def flatten_attributes(attributes: Any) -> dict[str, Any]:
    """``{key: {"type": t, "value": v}}`` -> ``{key: v}`` (plain values are kept as they are)."""
    if not isinstance(attributes, dict):
        return {}
    flat: dict[str, Any] = {}
    for key, value in attributes.items():
        if isinstance(value, dict) and "value" in value:
            flat[str(key)] = value["value"]
        else:
            flat[str(key)] = value
    return flat


def parse_span(entry: Any) -> Optional[StreamedSpan]:
    """A span of a ``span`` item, or None if it has no valid trace and span id."""
    if not isinstance(entry, dict):
        return None
    trace_id = entry.get("trace_id")
    span_id = entry.get("span_id")
    if not isinstance(trace_id, str) or not _TRACE_ID.match(trace_id):
        return None
    if not isinstance(span_id, str) or not _SPAN_ID.match(span_id):
        return None
    data = flatten_attributes(entry.get("attributes"))
    # The older single-span item had transaction-style fields.
    old_data = entry.get("data")
    if isinstance(old_data, dict):
        data = {**old_data, **data}
    parent = entry.get("parent_span_id")
    op = _text(data.get("sentry.op")) or _text(entry.get("op"))
    name = _text(entry.get("name")) or _text(entry.get("description"))
    segment = _text(data.get("sentry.segment.id")) or _text(entry.get("segment_id"))
    end = entry.get("end_timestamp")
    return StreamedSpan(
        trace_id=trace_id.lower(),
        span_id=span_id.lower(),
        parent_span_id=parent.lower() if isinstance(parent, str) and parent else None,
        is_segment=entry.get("is_segment") is True,
        op=op,
        name=name,
        status=_text(entry.get("status")),
        start=entry.get("start_timestamp"),
        end=end if end is not None else entry.get("timestamp"),
        data=data,
        segment_id=segment.lower() if segment else None,
    )


def list_segments(
    conn: sqlite3.Connection, query: str = "", limit: int = 100
) -> list[dict[str, Any]]:
    """Streamed segments (root spans without a transaction), newest first, like transactions.

    Each has the keys of `queries.list_transactions`' rows (``event_id`` is None) and
    ``kind`` ``"segment"``; ``spans`` counts the spans of its segment.
    """
    args: list[Any] = []
    where = "is_segment = 1 AND transaction_event_id IS NULL"
    if query:
        escaped = query.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        where += " AND description LIKE ? ESCAPE '\\'"
        args.append(f"%{escaped}%")
    args.append(limit)
    rows = conn.execute(
        "SELECT trace_id, span_id, description, op, status, start_time, end_time, "  # noqa: S608 -- fixed clauses; values are bound
        "CASE WHEN json_valid(data) THEN json_extract(data, '$.\"sentry.release\"') END, "
        "CASE WHEN json_valid(data) THEN json_extract(data, '$.\"sentry.environment\"') END, "
        "(SELECT count(*) FROM spans c WHERE c.trace_id = s.trace_id "
        "AND c.transaction_event_id IS NULL AND (c.span_id = s.span_id OR "
        "(json_valid(c.data) AND json_extract(c.data, '$.\"sentry.segment.id\"') = s.span_id))) "
        # The partial index of segments: the planner would rather take the one of
        # transaction_event_id, then sort every streamed span.
        f"FROM spans s INDEXED BY spans_segments WHERE {where} ORDER BY start_time DESC LIMIT ?",
        args,
    ).fetchall()
    return [
        {
            "kind": "segment",
            "event_id": None,
            "trace_id": row[0],
            "span_id": row[1],
            "name": row[2] or "<unlabeled span>",
            "op": row[3],
            "status": row[4],
            "start_time": row[5],
            "end_time": row[6],
            "release": row[7] if isinstance(row[7], str) else None,
            "environment": row[8] if isinstance(row[8], str) else None,
            "spans": row[9],
            "duration_ms": round((row[6] - row[5]) * 1000, 3),
        }
        for row in rows
    ]


def with_segments(
    conn: sqlite3.Connection, transactions: list[dict[str, Any]], query: str = "", limit: int = 100
) -> list[dict[str, Any]]:
    """Transactions and streamed segments in one list, newest first, at most `limit`.

    Each row has ``gen_ai``: the totals of its gen_ai spans (`genai.summarize`), or None.
    """
    merged = [{**t, "kind": "transaction"} for t in transactions]
    merged += list_segments(conn, query, limit)
    merged.sort(key=lambda r: r["start_time"], reverse=True)
    merged = merged[:limit]
    _add_gen_ai(conn, merged)
    return merged


def _add_gen_ai(conn: sqlite3.Connection, rows: list[dict[str, Any]]) -> None:
    # Only gen_ai spans are read: an agent span and its calls nest among themselves.
    for row in rows:
        row["gen_ai"] = None
    events = {r["event_id"]: r for r in rows if r["kind"] == "transaction"}
    segments = {(r["trace_id"], r["span_id"]): r for r in rows if r["kind"] == "segment"}
    found: dict[int, list[dict[str, Any]]] = {}
    columns = "transaction_event_id, trace_id, span_id, parent_span_id, op, data"
    if events:
        marks = ", ".join("?" * len(events))
        for record in conn.execute(
            f"SELECT {columns} FROM spans WHERE op LIKE 'gen\\_ai.%' ESCAPE '\\' "  # noqa: S608 -- fixed clauses; values are bound
            f"AND transaction_event_id IN ({marks})",
            list(events),
        ):
            found.setdefault(id(events[record[0]]), []).append(_span_row(record))
    if segments:
        traces = sorted({trace for trace, _ in segments})
        marks = ", ".join("?" * len(traces))
        for record in conn.execute(
            # By trace (as above, the planner would rather scan every streamed span).
            f"SELECT {columns} FROM spans INDEXED BY spans_trace WHERE trace_id IN ({marks}) "  # noqa: S608 -- fixed clauses; values are bound
            "AND transaction_event_id IS NULL AND op LIKE 'gen\\_ai.%' ESCAPE '\\'",
            traces,
        ):
            span = _span_row(record)
            owner = segments.get((record[1], span["data"].get("sentry.segment.id")))
            if owner is not None:
                found.setdefault(id(owner), []).append(span)
    for row in rows:
        if id(row) in found:
            row["gen_ai"] = summarize(found[id(row)])


def _span_row(record: Any) -> dict[str, Any]:
    try:
        data = json.loads(record[5]) if record[5] else {}
    except ValueError:
        data = {}
    return {
        "span_id": record[2],
        "parent_span_id": record[3],
        "op": record[4],
        "data": data if isinstance(data, dict) else {},
    }


def _text(value: Any) -> Optional[str]:
    if value is None or value == "":
        return None
    return value if isinstance(value, str) else str(value)
