"""gen_ai spans leave their transaction as a ``span`` item (`stream_gen_ai_spans`, on by default).

sentry_sdk 2.75 sends the ``gen_ai.*`` spans of a finished transaction in the same
envelope but as a version 2 span container (the span streaming format) rather than
in the transaction's ``spans``: Sentry's AI views read them from there. Each span is
rewritten from its transaction form (op, description, data, tags) into the streamed
form (name, status, typed attributes), with the attributes a streamed span carries
taken from the transaction: release, environment, user, segment, SDK.
"""

from __future__ import annotations

import json
import platform
import sys
from datetime import datetime
from typing import Any, Optional

from tripwire.capture.markers import PlainSpans
from tripwire.envelope import Item, PayloadRef

SPAN_CONTENT_TYPE = "application/vnd.sentry.items.span.v2+json"

_RUNTIME = {
    "process.runtime.name": platform.python_implementation(),
    "process.runtime.version": "%d.%d.%d" % sys.version_info[:3],
}


def split_gen_ai_spans(event: dict[str, Any]) -> Optional[Item]:
    """Move the gen_ai spans out of transaction `event`; their ``span`` item, or None."""
    spans = event.get("spans")
    if not isinstance(spans, list) or not any(_is_gen_ai(span) for span in spans):
        return None
    kept: list[Any] = PlainSpans() if isinstance(spans, PlainSpans) else []
    moved: list[dict[str, Any]] = []
    for span in spans:
        (moved if _is_gen_ai(span) else kept).append(span)
    static = _static_attributes(event)
    items = [_v2_span(span, static) for span in moved]
    event["spans"] = kept  # only once nothing can fail: else they stay where they were
    return Item(
        payload=PayloadRef(json={"version": 2, "items": items}),
        type="span",
        content_type=SPAN_CONTENT_TYPE,
        headers={"item_count": len(items)},
    )


def _is_gen_ai(span: Any) -> bool:
    if type(span) is not dict:
        return False
    op = span.get("op")
    return isinstance(op, str) and op.startswith("gen_ai.")


def _static_attributes(event: dict[str, Any]) -> dict[str, Any]:
    """The attributes every moved span gets from its transaction."""
    out: dict[str, Any] = {}
    user = event.get("user")
    if isinstance(user, dict):
        for key, name in (("id", "user.id"), ("username", "user.name"), ("email", "user.email")):
            if key in user:
                out[name] = user[key]
    for key, name in (
        ("release", "sentry.release"),
        ("environment", "sentry.environment"),
        ("server_name", "server.address"),
        ("transaction", "sentry.segment.name"),
    ):
        if key in event:
            out[name] = event[key]
    contexts = event.get("contexts")
    trace = contexts.get("trace") if isinstance(contexts, dict) else None
    if isinstance(trace, dict) and "span_id" in trace:
        out["sentry.segment.id"] = trace["span_id"]
    sdk = event.get("sdk")
    if isinstance(sdk, dict):
        for key in ("name", "version"):
            if key in sdk:
                out["sentry.sdk." + key] = sdk[key]
    out.update(_RUNTIME)
    return out


def _v2_span(span: dict[str, Any], static: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"status": "ok", "is_segment": False}
    for key in ("trace_id", "span_id"):
        if key in span:
            out[key] = span[key]
    if "description" in span:
        name = span["description"]
        out["name"] = span.get("op") if name is None else name
    for key, target in (("start_timestamp", "start_timestamp"), ("timestamp", "end_timestamp")):
        when = _seconds(span.get(key))
        if when is not None:
            out[target] = when
    if "parent_span_id" in span:
        out["parent_span_id"] = span["parent_span_id"]
    if "status" in span and span["status"] != "ok":
        out["status"] = "error"
    attributes: dict[str, Any] = {}
    if "op" in span:
        attributes["sentry.op"] = span["op"]
    if "origin" in span:
        attributes["sentry.origin"] = span["origin"]
    for key in ("data", "tags"):
        values = span.get(key)
        if isinstance(values, dict):
            attributes.update(values)
    attributes.update(static)
    typed = {}
    for key, value in attributes.items():
        found = _typed(value)
        if found is not None:
            typed[key] = found
    typed.pop("status", None)  # the span's own field says it
    if typed:
        out["attributes"] = typed
    return out


def _seconds(value: Any) -> Optional[float]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _typed(value: Any) -> Optional[dict[str, Any]]:
    """A transaction span's (already serialized) data value as a typed attribute."""
    if isinstance(value, bool):
        return {"value": value, "type": "boolean"}
    if isinstance(value, int):
        return {"value": value, "type": "integer"}
    if isinstance(value, float):
        return {"value": value, "type": "double"}
    if isinstance(value, str):
        return {"value": value, "type": "string"}
    if isinstance(value, list):
        if not value:
            return {"value": [], "type": "array"}
        first = type(value[0])
        if first in (int, str, bool, float) and all(type(v) is first for v in value):
            return {"value": value, "type": "array"}
    if isinstance(value, (dict, list)):
        # Spelled as sentry_sdk spells it (the standard library's default separators).
        return {"value": json.dumps(value), "type": "string"}
    return None
