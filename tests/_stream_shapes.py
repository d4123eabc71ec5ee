"""What the span-streaming differential tests compare: spans, logs and breadcrumbs.

Every helper takes the ``found`` dict of a `_side_by_side.run_both` script and leaves out
what differs between the two SDKs or two runs by nature (ids, times, ports, SDK name and
version, thread and process facts), each test choosing what it must see.

- `outline(found)`: sorted, each span's name, segment flag, parent's name, status and op
  (`op_of`), as JSON strings (the start-attribute tests).
- `spans(found)`: the spans in the order sent; parent and segment as indexes in that list
  (``"remote"`` for one not sent, None for a trace's head), volatile values masked.
  `canonical` sorts such a list for spans whose order depends on timing.
- `named_spans(found)`: sorted, the parent by name, volatile attributes dropped (the web
  framework tests); `segments_by_name` picks the segments by name.
- `parented_by_name(found, ...)`: unsorted, the parent by name, a filter of the kept
  attributes (the WSGI and Django tests post-process these).
- `logs`, `kept_logs`, `named_logs`, `log_shapes`, `crumbs`, `notes`, `id_labels`: the other items.
- `assert_same(ours, theirs)`: equality with a per-field difference report.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Collection
from typing import Any

from _side_by_side import dumps, log_shape, logs, of_type

# Attributes whose values differ between the SDKs or between runs by nature.
VOLATILE = frozenset(
    {
        "sentry.sdk.name",
        "sentry.sdk.version",
        "thread.id",
        "thread.name",  # a worker thread's number depends on the threads started before it
        "process.pid",
        "process.command_args",  # the script's argv names the SDK
        "messaging.message.receive.latency",
    }
)
# Dropped by `named_spans` and `named_logs` (the web-framework tests).
_DROPPED = frozenset(
    {
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
)
# Header values that carry trace ids (a test client's outgoing propagation).
_TRACE_HEADERS = {"http.request.header.sentry-trace", "http.request.header.baggage"}
_PORT = re.compile(r":\d{2,5}(?=\D|$)")
_BOUNDARY = re.compile(r"boundary=[0-9a-f]+")
_UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_ADDRESS = re.compile(r" 0x[0-9a-f]+>")
_HEX_ID = re.compile(r"[0-9a-f]{16}|[0-9a-f]{32}")

__all__ = [
    "VOLATILE",
    "assert_same",
    "by_name",
    "by_op",
    "canonical",
    "crumbs",
    "differences",
    "id_labels",
    "kept_logs",
    "log_shapes",
    "logs",
    "masked",
    "named_logs",
    "named_spans",
    "notes",
    "op_of",
    "outline",
    "parented_by_name",
    "segments_by_name",
    "sent",
    "spans",
    "values",
]


# -- the spans as sent ------------------------------------------------------------------


def sent(found: dict[str, Any]) -> list[dict[str, Any]]:
    """Every span of every ``span`` item, in the order sent, as sent."""
    return [span for payload in of_type(found, "span") for span in payload["items"]]


def op_of(span: dict[str, Any]) -> Any:
    """A sent span's ``sentry.op`` (None without one)."""
    return span.get("attributes", {}).get("sentry.op", {}).get("value")


def outline(
    found: dict[str, Any],
    name: Callable[[dict[str, Any]], str] = lambda span: str(span["name"]),
    skip: Callable[[dict[str, Any], dict[str, dict[str, Any]]], bool] = lambda span, by_id: False,
) -> list[str]:
    """The streamed spans, sorted, as JSON: name, segment flag, parent's name ("-" for a
    head), status and op. `name`: a span's name as compared; `skip(span, by_id)`: spans
    left out (`by_id`: every sent span by its id)."""
    sent_spans = sent(found)
    by_id = {span["span_id"]: span for span in sent_spans}
    names = {span["span_id"]: name(span) for span in sent_spans}
    return sorted(
        json.dumps(
            {
                "name": name(span),
                "segment": span["is_segment"],
                "parent": names.get(span.get("parent_span_id"), "-"),
                "status": span["status"],
                "op": op_of(span),
            },
            sort_keys=True,
        )
        for span in sent_spans
        if not skip(span, by_id)
    )


def values(span: dict[str, Any]) -> dict[str, Any]:
    """A span's attributes without their types."""
    return {key: typed["value"] for key, typed in span.get("attributes", {}).items()}


def masked(attributes: dict[str, Any], volatile: Collection[str]) -> dict[str, Any]:
    """`attributes` (in place) with the values of the `volatile` keys it has as ``"?"``."""
    for key in set(volatile) & set(attributes):
        attributes[key] = "?"
    return attributes


# -- spans with indexes -----------------------------------------------------------------


def _value(key: str, value: Any, index: dict[str, int]) -> Any:
    if key in VOLATILE:
        return "?"
    if key == "sentry.segment.id":
        return index.get(value, "remote")
    if isinstance(value, str) and _UUID.match(value):
        return "<uuid>"
    return value


def spans(found: dict[str, Any]) -> list[dict[str, Any]]:
    """The spans sent, normalised (see the module docstring)."""
    out_of = sent(found)
    index = {span["span_id"]: i for i, span in enumerate(out_of)}
    out = []
    for span in out_of:
        parent = span.get("parent_span_id")
        out.append(
            {
                "name": span["name"],
                "status": span["status"],
                "is_segment": span["is_segment"],
                "parent": None if parent is None else index.get(parent, "remote"),
                "attributes": {
                    key: _value(key, typed["value"], index)
                    for key, typed in span.get("attributes", {}).items()
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


def by_name(shapes: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """The spans named `name`, in the order given."""
    return [shape for shape in shapes if shape["name"] == name]


def by_op(shapes: list[dict[str, Any]], unwrap: Callable[[Any], Any]) -> dict[str, int]:
    """How many spans have each ``sentry.op`` (``"-"`` for none); `unwrap` reads an
    attribute as the caller's shapes hold it."""
    ops: dict[str, int] = {}
    for shape in shapes:
        attribute = shape["attributes"].get("sentry.op")
        op = "-" if attribute is None else unwrap(attribute)
        ops[op] = ops.get(op, 0) + 1
    return ops


# -- spans with parents by name ---------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, str):
        return _BOUNDARY.sub("boundary=?", _PORT.sub(":PORT", value))
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def named_spans(
    found: dict[str, Any], renames: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Every span, sorted: the parent and segment by name, ports and multipart
    boundaries masked, volatile attributes dropped; `renames` maps span names that differ
    by design."""
    out_of = sent(found)
    names = {span["span_id"]: span["name"] for span in out_of}
    out = []
    for span in out_of:
        attributes = {}
        for key, typed in span.get("attributes", {}).items():
            if key in _DROPPED:
                continue
            value = typed["value"]
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


def segments_by_name(shapes: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The segments' shapes by name (the last one of a name wins)."""
    return {shape["name"]: shape for shape in shapes if shape["is_segment"]}


def parented_by_name(
    found: dict[str, Any],
    kept: Callable[[str], bool],
    incoming_parent: str,
    incoming_trace: str | None = None,
) -> list[dict[str, Any]]:
    """Every span in the order sent: the parent by name (``"<incoming>"`` for
    `incoming_parent`, the raw id for another one not sent), the `kept` attributes
    unwrapped; with `incoming_trace`, whether the span is in that trace."""
    out_of = sent(found)
    names = {span["span_id"]: span["name"] for span in out_of}
    out = []
    for span in out_of:
        parent = span.get("parent_span_id")
        shape: dict[str, Any] = {
            "name": span["name"],
            "status": span["status"],
            "is_segment": span["is_segment"],
            "parent": "<incoming>" if parent == incoming_parent else names.get(parent, parent),
        }
        if incoming_trace is not None:
            shape["incoming_trace"] = span["trace_id"] == incoming_trace
        shape["attributes"] = {
            key: typed["value"] for key, typed in span["attributes"].items() if kept(key)
        }
        out.append(shape)
    return out


# -- logs, breadcrumbs, notes -----------------------------------------------------------


def log_shapes(found: dict[str, Any]) -> list[dict[str, Any]]:
    """The logs sent, as `_side_by_side.log_shape` compares them."""
    return [log_shape(log) for log in logs(found)]


def kept_logs(found: dict[str, Any], kept: Callable[[str], bool]) -> list[dict[str, Any]]:
    """Every log (body and the `kept` attributes, unwrapped), in order."""
    return [
        {
            "body": log["body"],
            "attributes": {
                key: typed["value"] for key, typed in log["attributes"].items() if kept(key)
            },
        }
        for log in logs(found)
    ]


def named_logs(found: dict[str, Any]) -> list[dict[str, Any]]:
    """Every log (body and attributes, ports masked, volatile ones dropped), in order."""
    return [
        {
            "body": log["body"],
            "attributes": {
                key: _plain(typed["value"])
                for key, typed in log["attributes"].items()
                if key not in _DROPPED
            },
        }
        for log in logs(found)
    ]


def crumbs(found: dict[str, Any]) -> list[list[dict[str, Any]]]:
    """The breadcrumbs of each error event (no timestamps or object addresses)."""
    out = []
    for event in of_type(found, "event"):
        found_crumbs = (event.get("breadcrumbs") or {}).get("values", [])
        out.append(
            [
                {
                    k: _ADDRESS.sub(" 0x?>", v) if isinstance(v, str) else _clean(v)
                    for k, v in crumb.items()
                    if k != "timestamp"
                }
                for crumb in found_crumbs
            ]
        )
    return out


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, str):
        return _ADDRESS.sub(" 0x?>", value)
    return value


def notes(found: dict[str, Any]) -> dict[str, Any]:
    """The script's notes merged into one dict (a later key wins)."""
    return {key: value for note in found["notes"] for key, value in note.items()}


def id_labels(
    found: dict[str, Any], *, hex_only: bool = False, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """Ids the script noted (strings of 16 or 32 characters, or only hex ones), each
    to the key it was noted under; `extra` adds known ids."""
    labels: dict[str, str] = {}
    for note in found["notes"]:
        for key, value in note.items():
            if not isinstance(value, str):
                continue
            if _HEX_ID.fullmatch(value) if hex_only else len(value) in (16, 32):
                labels[value] = key
    labels.update(extra or {})
    return labels


# -- comparing --------------------------------------------------------------------------


def assert_same(ours: list[Any], theirs: list[Any]) -> None:
    """Equal lists; the message lists where they differ."""
    assert ours == theirs, dumps({"differences": differences(ours, theirs), "ours": ours})


def differences(ours: list[Any], theirs: list[Any]) -> list[Any]:
    """Where two lists differ: their lengths, then per index each differing field
    (``[index, key, sub-key, ours, theirs]`` inside a dict value)."""
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
