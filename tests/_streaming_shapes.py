"""What a span-streaming differential test compares: spans, logs and breadcrumbs.

`spans(found)` turns the ``span`` items a `_side_by_side.run` script sent into a list
(in the order sent) of name, status, segment flag, parent (the index of the parent in
that list, ``"remote"`` for a parent that was not sent, None for a trace's head) and
attributes, without what differs between the two SDKs or two runs by nature (SDK
name and version, thread and process ids, argv, generated message ids, latencies).
"""

from __future__ import annotations

import re
from typing import Any

from _side_by_side import dumps, log_shape, logs, of_type

# Attributes whose values differ between the SDKs or between runs by nature.
_VOLATILE = {
    "sentry.sdk.name",
    "sentry.sdk.version",
    "thread.id",
    "thread.name",  # a worker thread's number depends on the threads started before it
    "process.pid",
    "process.command_args",  # the script's argv names the SDK
    "messaging.message.receive.latency",
}
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_ADDRESS = re.compile(r" 0x[0-9a-f]+>")


def _value(key: str, value: Any, index: dict[str, int]) -> Any:
    if key in _VOLATILE:
        return "?"
    if key == "sentry.segment.id":
        return index.get(value, "remote")
    if isinstance(value, str) and _UUID.match(value):
        return "<uuid>"
    return value


def spans(found: dict[str, Any]) -> list[dict[str, Any]]:
    """The spans sent, normalised (see the module docstring)."""
    sent = [span for payload in of_type(found, "span") for span in payload["items"]]
    index = {span["span_id"]: i for i, span in enumerate(sent)}
    out = []
    for span in sent:
        parent = span.get("parent_span_id")
        out.append(
            {
                "name": span["name"],
                "status": span["status"],
                "is_segment": span["is_segment"],
                "parent": None if parent is None else index.get(parent, "remote"),
                "attributes": {
                    key: _value(key, found_value["value"], index)
                    for key, found_value in span.get("attributes", {}).items()
                },
            }
        )
    return out


def canonical(shapes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """`shapes` sorted by name, op and message id (parent and segment indexes follow).

    For spans whose order depends on a worker's timing: a stable sort, so spans with the
    same key keep the order they were sent in.
    """

    def key(i: int) -> tuple[str, str, str]:
        attributes = shapes[i]["attributes"]
        return (
            shapes[i]["name"],
            str(attributes.get("sentry.op", "")),
            str(attributes.get("messaging.message.id", "")),
        )

    order = sorted(range(len(shapes)), key=key)
    new_index = {old: new for new, old in enumerate(order)}

    def moved(value: Any) -> Any:
        return new_index[value] if isinstance(value, int) else value

    out = []
    for old in order:
        shape = shapes[old]
        attributes = dict(shape["attributes"])
        if "sentry.segment.id" in attributes:
            attributes["sentry.segment.id"] = moved(attributes["sentry.segment.id"])
        out.append({**shape, "parent": moved(shape["parent"]), "attributes": attributes})
    return out


def crumbs(found: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """The breadcrumbs of each error event (no timestamps or object addresses)."""
    out = []
    for event in of_type(found, "event"):
        values = (event.get("breadcrumbs") or {}).get("values", [])
        out.append(
            [
                {
                    k: _ADDRESS.sub(" 0x?>", v) if isinstance(v, str) else _clean(v)
                    for k, v in crumb.items()
                    if k != "timestamp"
                }
                for crumb in values
            ]
        )
    return out


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, str):
        return _ADDRESS.sub(" 0x?>", value)
    return value


def log_shapes(found: dict[str, Any]) -> list[dict[str, Any]]:
    """The logs sent, as `_side_by_side.log_shape` compares them."""
    return [log_shape(log) for log in logs(found)]


def assert_same(ours: list[Any], theirs: list[Any]) -> None:
    """Equal lists; the message lists where they differ."""
    assert ours == theirs, dumps({"differences": _differences(ours, theirs), "ours": ours})


def _differences(ours: list[Any], theirs: list[Any]) -> list[Any]:
    out: list[Any] = []
    if len(ours) != len(theirs):
        out.append({"lengths": [len(ours), len(theirs)]})
    for i, (mine, their) in enumerate(zip(ours, theirs)):
        if mine == their:
            continue
        if not (isinstance(mine, dict) and isinstance(their, dict)):
            out.append({"index": i, "ours": mine, "theirs": their})
            continue
        for key in sorted(set(mine) | set(their)):
            a, b = mine.get(key, "<missing>"), their.get(key, "<missing>")
            if a == b:
                continue
            if isinstance(a, dict) and isinstance(b, dict):
                for sub in sorted(set(a) | set(b)):
                    if a.get(sub, "<missing>") != b.get(sub, "<missing>"):
                        out.append([i, key, sub, a.get(sub, "<missing>"), b.get(sub, "<missing>")])
            else:
                out.append([i, key, a, b])
    return out


def by_name(shapes: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """The spans named `name`, in the order sent."""
    return [shape for shape in shapes if shape["name"] == name]


__all__ = ["assert_same", "by_name", "canonical", "crumbs", "log_shapes", "spans"]
