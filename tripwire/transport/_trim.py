"""Fit envelope items under the server's size limits before they are sent.

Relay rejects an event over 1 MiB, a check-in over 100 KiB, and so on; the whole
envelope is then lost. Instead, an oversized JSON item is rebuilt with stricter and
stricter bounds (fewer breadcrumbs, no frame variables, shorter strings and lists)
until it fits. Binary items (attachments, profiles) cannot be shortened and are
left out when over their limit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from tripwire._json import dumps, loads
from tripwire.envelope import Item, PayloadRef

if TYPE_CHECKING:
    from tripwire.envelope import Item

KIB = 1024
MIB = 1024 * KIB

# Payload limits (uncompressed) per item type, as Relay enforces them by default.
JSON_LIMITS: dict[str, int] = {
    "event": 1 * MIB,
    "transaction": 1 * MIB,
    "feedback": 1 * MIB,
    "span": 1 * MIB,
    "log": 1 * MIB,
    "otel_log": 1 * MIB,
    "check_in": 100 * KIB,
}
BINARY_LIMITS: dict[str, int] = {
    "attachment": 100 * MIB,
    "profile": 50 * MIB,
    "profile_chunk": 50 * MIB,
    "replay_recording": 10 * MIB,
    "replay_video": 10 * MIB,
}

# (breadcrumbs kept, max string length, max list length, max depth, frame vars kept)
_LEVELS: tuple[tuple[int, int, int, int, bool], ...] = (
    (50, 16 * KIB, 500, 20, True),
    (20, 4 * KIB, 100, 12, False),
    (5, 1 * KIB, 30, 8, False),
    (0, 256, 10, 6, False),
)
# Fields kept by the last resort: enough for the server to group and show the event.
_ESSENTIAL = (
    "event_id",
    "timestamp",
    "start_timestamp",
    "type",
    "platform",
    "level",
    "logger",
    "message",
    "logentry",
    "transaction",
    "release",
    "environment",
    "dist",
    "server_name",
    "sdk",
    "tags",
    "fingerprint",
    "exception",
    "contexts",
    "check_in_id",
    "monitor_slug",
    "status",
    "duration",
)


def limit_for(item_type: Optional[str]) -> Optional[int]:
    """The payload size limit for an item type, if any."""
    if item_type is None:
        return None
    return JSON_LIMITS.get(item_type) or BINARY_LIMITS.get(item_type)


def fit(item: Item) -> Optional[Item]:
    """`item` itself if it fits its limit, a trimmed copy if it can be made to, else None.

    Raises:
        Exception: the payload cannot be read (see `Item.get_bytes`).
    """
    item_type = item.type
    limit = limit_for(item_type)
    payload = item.get_bytes()
    if limit is None or len(payload) <= limit:
        return item
    if item_type not in JSON_LIMITS:
        return None
    data = item.payload.json
    if data is None:
        try:
            data = loads(payload)
        except (ValueError, RecursionError):
            return None
    if not isinstance(data, dict):
        return None
    for level in _LEVELS:
        encoded = dumps(_trim_event(data, *level))
        if len(encoded) <= limit:
            return _replacement(item, encoded)
    encoded = dumps(_bound(_essentials(data), 256, 10, 6, False))
    if len(encoded) <= limit:
        return _replacement(item, encoded)
    return None


def _replacement(item: Item, payload: bytes) -> Item:
    headers = {k: v for k, v in item.headers.items() if k != "length"}
    return Item(payload=PayloadRef(bytes=payload), headers=headers)


def _essentials(event: dict[str, Any]) -> dict[str, Any]:
    kept = {k: event[k] for k in _ESSENTIAL if k in event}
    exception = kept.get("exception")
    values = exception.get("values") if isinstance(exception, dict) else None
    if isinstance(values, list):
        # Type and value identify the error; the frames are what made it too large.
        kept["exception"] = {
            "values": [
                {k: v[k] for k in ("type", "value", "module", "mechanism") if k in v}
                for v in values[-5:]
                if isinstance(v, dict)
            ]
        }
    return kept


def _trim_event(
    event: dict[str, Any], crumbs: int, max_str: int, max_list: int, depth: int, frame_vars: bool
) -> Any:
    event = dict(event)
    breadcrumbs = event.get("breadcrumbs")
    if isinstance(breadcrumbs, dict) and isinstance(breadcrumbs.get("values"), list):
        # Keep the newest: they lead up to the error.
        values = breadcrumbs["values"]
        event["breadcrumbs"] = {**breadcrumbs, "values": values[-crumbs:] if crumbs else []}
    elif isinstance(breadcrumbs, list):
        event["breadcrumbs"] = breadcrumbs[-crumbs:] if crumbs else []
    return _bound(event, max_str, max_list, depth, frame_vars)


def _bound(value: Any, max_str: int, max_list: int, depth: int, frame_vars: bool) -> Any:
    """A copy of `value` with strings, lists and nesting cut to the given bounds."""
    if isinstance(value, str):
        return value if len(value) <= max_str else value[: max_str - 3] + "..."
    if isinstance(value, dict):
        if depth <= 0:
            return "[trimmed]"
        out: dict[Any, Any] = {}
        for key, item in value.items():
            if key == "vars" and not frame_vars:
                continue
            if key == "frames" and isinstance(item, list) and len(item) > max_list:
                # Keep both ends of a deep stack: the entry point and the crash site.
                half = max(max_list // 2, 1)
                item = item[:half] + item[-half:]
                out[key] = [_bound(f, max_str, max_list, depth - 1, frame_vars) for f in item]
                continue
            out[key] = _bound(item, max_str, max_list, depth - 1, frame_vars)
        return out
    if isinstance(value, (list, tuple)):
        if depth <= 0:
            return "[trimmed]"
        return [_bound(v, max_str, max_list, depth - 1, frame_vars) for v in value[:max_list]]
    return value
