"""Normalised span and log shapes of a side-by-side run (`_side_by_side.run_both`).

What both SDKs must agree on for the web-framework streaming tests: each span's name,
status, segment flag, its parent's name and its attributes, and each log's body and
attributes, without what differs by design or between runs (ids, times, ports, SDK
name and version, thread and process facts, the trace headers a test client adds).
"""

from __future__ import annotations

import json
import re
from typing import Any

# Attributes whose values differ between the two SDKs or between two runs.
_DROPPED = {
    "sentry.sdk.name",
    "sentry.sdk.version",
    "sentry.sdk.integrations",
    "thread.id",
    "thread.name",
    "process.pid",
    "process.command_args",
    "server.address",
    "asctime",
}
# Header values that carry trace ids (a test client's outgoing propagation).
_TRACE_HEADERS = {"http.request.header.sentry-trace", "http.request.header.baggage"}
_PORT = re.compile(r":\d{2,5}(?=\D|$)")
_BOUNDARY = re.compile(r"boundary=[0-9a-f]+")


def _plain(value: Any) -> Any:
    if isinstance(value, str):
        return _BOUNDARY.sub("boundary=?", _PORT.sub(":PORT", value))
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def spans(found: dict[str, Any], renames: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Every span of the run, sorted; `renames` maps span names that differ by design."""
    raw = [
        span
        for item in found["items"]
        if item["type"] == "span"
        for span in item["payload"]["items"]
    ]
    names = {span["span_id"]: span["name"] for span in raw}
    out = []
    for span in raw:
        attributes = {}
        for key, found_value in span.get("attributes", {}).items():
            if key in _DROPPED:
                continue
            value = found_value["value"]
            if key in _TRACE_HEADERS:
                value = "?"
            elif key == "sentry.segment.id":
                value = names.get(value, "?")
            attributes[key] = _plain(value)
        parent = span.get("parent_span_id")
        name = _plain(span["name"])
        out.append(
            {
                "name": (renames or {}).get(name, name),
                "status": span["status"],
                "is_segment": span["is_segment"],
                "parent": _plain(names.get(parent, "remote")) if parent else None,
                "attributes": attributes,
            }
        )
    return sorted(out, key=lambda shape: json.dumps(shape, sort_keys=True))


def logs(found: dict[str, Any]) -> list[dict[str, Any]]:
    """Every log of the run (body and attributes), in order."""
    return [
        {
            "body": log["body"],
            "attributes": {
                key: _plain(value["value"])
                for key, value in log["attributes"].items()
                if key not in _DROPPED
            },
        }
        for item in found["items"]
        if item["type"] == "log"
        for log in item["payload"]["items"]
    ]


def by_name(shapes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The segments' shapes by name (the last one of a name wins)."""
    return {shape["name"]: shape for shape in shapes if shape["is_segment"]}
