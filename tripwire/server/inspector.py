"""The envelope inspector: the envelopes received, as sent, for debugging an SDK.

Each envelope stored is also kept as a record: its headers, each item's headers and
payload, and what the server made of it (stored, dropped and why, repaired). The
live page links every arrival to its record (``/envelopes/<id>/``).

Everything is bounded in bytes (`tripwire.server.limits`): a payload is kept up to
`INSPECT_ITEM_BYTES` (then marked truncated, with its full size), an envelope's
payloads together up to `INSPECT_ENVELOPE_BYTES`, and the records together up to
`INSPECT_TOTAL_BYTES` and `INSPECT_COUNT` records: the oldest go first. Records are
written in the transaction that stores the envelope.
"""

from __future__ import annotations

import json
import re
import sqlite3
from dataclasses import dataclass
from typing import Any, Optional

from tripwire.server.items import repair_text
from tripwire.server.limits import (
    INSPECT_COUNT,
    INSPECT_ENVELOPE_BYTES,
    INSPECT_ITEM_BYTES,
    INSPECT_TOTAL_BYTES,
)

__all__ = ["EnvelopeRecord", "record", "save_record"]

# Item headers and envelope headers are small in practice; a hostile one is cut here.
_MAX_HEADERS_TEXT = 8 * 1024
_MAX_ITEMS = 100
_CONTROL = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1a\x1c-\x1f\x7f]")


@dataclass(frozen=True)
class EnvelopeRecord:
    """What the inspector keeps of one envelope (built by `record`)."""

    path: str
    size: int
    item_types: str
    headers: str
    items: str
    kept: int


def record(
    path: str,
    data: bytes,
    item_bytes: int = INSPECT_ITEM_BYTES,
    envelope_bytes: int = INSPECT_ENVELOPE_BYTES,
) -> EnvelopeRecord:
    """The record of the envelope `data` (decompressed) received on `path`.

    Headers are kept as sent (not as the parser completes them); of each payload, at
    most `item_bytes`, and `envelope_bytes` for all of them.
    """
    headers, items = split_envelope(data, item_bytes)
    budget = envelope_bytes
    shown = []
    for item_headers, payload, size in items[:_MAX_ITEMS]:
        keep = max(0, min(len(payload), budget))
        budget -= keep
        part = payload[:keep]
        try:
            text: Optional[str] = part.decode("utf-8")
        except UnicodeDecodeError as exc:
            # Cut inside a character (text) or not text at all (binary).
            cut = keep < size and exc.start >= len(part) - 3
            text = part[: exc.start].decode("utf-8") if cut else None
        if text is not None and _CONTROL.search(text):
            text = None  # NUL and other control characters: binary, however it decodes
        entry: dict[str, Any] = {
            "headers": _bounded_json(item_headers),
            "size": size,
            "truncated": keep < size,
        }
        if text is not None:
            entry["text"] = text
        else:
            entry["hex"] = part[:4096].hex()
        shown.append(entry)
    if len(items) > _MAX_ITEMS:
        shown.append({"more": len(items) - _MAX_ITEMS})
    types = ", ".join(str(h.get("type") or "unknown")[:50] for h, _p, _s in items[:20])
    if len(items) > 20:
        types += ", …"
    headers_text = json.dumps(_bounded_json(headers), ensure_ascii=False, default=repr)
    items_text = json.dumps(shown, ensure_ascii=False, default=repr)
    return EnvelopeRecord(
        path=path[:200],
        size=len(data),
        item_types=types,
        headers=headers_text,
        items=items_text,
        kept=len(headers_text) + len(items_text) + len(types),
    )


def split_envelope(
    data: bytes, item_bytes: int
) -> tuple[dict[str, Any], list[tuple[dict[str, Any], bytes, int]]]:
    """The envelope's headers and items as sent: (item headers, payload start, size).

    Only the first `item_bytes` of each payload are copied. Ingest has already parsed
    the envelope; what cannot be read here ends the list (never raises).
    """
    view = memoryview(data)
    end = len(data)
    line_end = data.find(b"\n")
    line_end = end if line_end < 0 else line_end
    headers = _json_object(data[:line_end])
    pos = line_end + 1
    items: list[tuple[dict[str, Any], bytes, int]] = []
    while pos < end:
        line_end = data.find(b"\n", pos)
        line_end = end if line_end < 0 else line_end
        if not data[pos:line_end].strip():
            pos = line_end + 1
            continue
        item_headers = _json_object(data[pos:line_end])
        pos = line_end + 1
        length = item_headers.get("length")
        if type(length) is int and length >= 0:
            stop = min(pos + length, end)
        else:
            stop = data.find(b"\n", pos)
            stop = end if stop < 0 else stop
        items.append((item_headers, bytes(view[pos : min(stop, pos + item_bytes)]), stop - pos))
        pos = stop + 1
    return headers, items


def _json_object(line: bytes) -> dict[str, Any]:
    try:
        value = json.loads(line)
    except (ValueError, RecursionError):
        return {}
    return value if isinstance(value, dict) else {}


def _bounded_json(value: dict[str, Any]) -> Any:
    # Lone surrogates (JSON can escape them; SQLite text cannot hold them) become U+FFFD.
    value = repair_text(value)
    text = json.dumps(value, ensure_ascii=False, default=repr)
    if len(text) <= _MAX_HEADERS_TEXT:
        return value
    return {"_truncated": text[:_MAX_HEADERS_TEXT]}


def save_record(
    conn: sqlite3.Connection,
    project_id: int,
    rec: EnvelopeRecord,
    received: float,
    outcome: dict[str, Any],
    total_bytes: int = INSPECT_TOTAL_BYTES,
    count: int = INSPECT_COUNT,
) -> int:
    """Insert `rec` (inside the caller's transaction), prune the oldest; its id."""
    outcome_text = json.dumps(outcome, ensure_ascii=False, default=repr)
    cur = conn.execute(
        "INSERT INTO envelopes (project_id, received, path, size, item_types, headers, items, "
        "outcome, kept) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            project_id,
            received,
            rec.path,
            rec.size,
            rec.item_types,
            rec.headers,
            rec.items,
            outcome_text,
            rec.kept + len(outcome_text),
        ),
    )
    envelope_id = int(cur.lastrowid or 0)
    # The newest first until the count or the bytes are reached; everything older goes.
    cutoff = conn.execute(
        "SELECT min(id) FROM (SELECT id, sum(kept) OVER (ORDER BY id DESC) AS total, "
        "row_number() OVER (ORDER BY id DESC) AS n FROM envelopes) "
        "WHERE total <= ? AND n <= ?",
        (total_bytes, count),
    ).fetchone()[0]
    oldest_kept = cutoff if cutoff is not None else envelope_id + 1
    conn.execute("DELETE FROM envelopes WHERE id < ?", (oldest_kept,))
    return envelope_id
