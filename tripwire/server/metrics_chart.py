"""The metrics page's data: trace metric values as series over time, drawn as SVG.

A *metric* is a name, type and unit; its *series* are its values split by attributes
(the user's own by default, or one chosen key such as ``sentry.environment``). Each
series is aggregated per time bucket as its type means it: a counter is summed, a
gauge keeps its last value, a distribution is averaged. The chart is geometry
computed here (coordinates, tick labels, colours) that the template writes out as
SVG elements: the page needs no script and no build step, and every label from an
event stays text under autoescaping.
"""

from __future__ import annotations

import json
import math
import time
from datetime import datetime, timezone
from typing import Any, Optional

from tripwire.server.store import Store

# Attributes the SDKs add to every value; a series is split by the user's others.
_SDK_PREFIXES = ("sentry.", "process.", "os.", "telemetry.", "device.", "user.")
_SDK_KEYS = frozenset({"server.address"})

# What is read: the newest items, and at most this many values, whatever they hold.
MAX_ITEMS = 2000
MAX_VALUES = 50_000
# Series drawn per chart (the rest are counted), charts per page.
MAX_SERIES = 8
MAX_CHARTS = 24
# Buckets per chart at most: the bucket is the first of these steps that fits.
MAX_BUCKETS = 60
_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 21600, 43200, 86400)

# Colour-blind-safe (Okabe-Ito), as SVG presentation attributes: no inline style.
PALETTE = (
    "#0072b2",
    "#e69f00",
    "#009e73",
    "#cc79a7",
    "#56b4e9",
    "#d55e00",
    "#000000",
    "#f0e442",
)

AGGREGATES = {"counter": "sum", "gauge": "last", "distribution": "avg"}

WIDTH, HEIGHT = 640, 190
_LEFT, _RIGHT, _TOP, _BOTTOM = 56, 12, 10, 26


def is_sdk_attribute(key: str) -> bool:
    """Whether the SDK (not the user) sets this attribute on every value."""
    return key in _SDK_KEYS or key.startswith(_SDK_PREFIXES)


def load_values(
    store: Store,
    project_id: Optional[int] = None,
    name: Optional[str] = None,
    max_items: int = MAX_ITEMS,
    max_values: int = MAX_VALUES,
) -> list[dict[str, Any]]:
    """The values of the newest ``trace_metric`` items, newest first.

    Each: ``timestamp``, ``name``, ``type``, ``unit``, ``value`` (a number or None),
    ``trace_id``, ``attributes`` (plain values), ``project_id``.
    """
    where, args = "type = 'trace_metric'", []
    if project_id is not None:
        where += " AND project_id = ?"
        args.append(project_id)
    rows = store.connection().execute(
        f"SELECT project_id, received, payload FROM items WHERE {where} "  # noqa: S608 -- fixed clauses; values are bound
        "ORDER BY id DESC LIMIT ?",
        [*args, max(1, max_items)],
    )
    values: list[dict[str, Any]] = []
    for row in rows:
        try:
            container = json.loads(row["payload"])
        except (ValueError, TypeError, RecursionError):
            continue
        entries = container.get("items") if isinstance(container, dict) else None
        for entry in entries if isinstance(entries, list) else ():
            if len(values) >= max_values:
                break
            value = _value(entry, row["received"], row["project_id"])
            if value is not None and (name is None or value["name"] == name):
                values.append(value)
    values.sort(key=lambda v: v["timestamp"], reverse=True)
    return values


def _value(entry: Any, received: float, project_id: int) -> Optional[dict[str, Any]]:
    if not isinstance(entry, dict):
        return None
    number = entry.get("value")
    timestamp = entry.get("timestamp")
    attributes = entry.get("attributes")
    trace_id = entry.get("trace_id")
    return {
        "timestamp": float(timestamp)
        if isinstance(timestamp, (int, float)) and math.isfinite(timestamp)
        else received,
        "name": str(entry.get("name") or "<unnamed>")[:200],
        "type": str(entry.get("type") or "")[:50],
        "unit": str(entry.get("unit") or "")[:50],
        "value": float(number)
        if isinstance(number, (int, float))
        and not isinstance(number, bool)
        and math.isfinite(number)
        else None,
        "trace_id": trace_id if isinstance(trace_id, str) else None,
        "attributes": {
            str(k)[:200]: (v.get("value") if isinstance(v, dict) else v)
            for k, v in (attributes.items() if isinstance(attributes, dict) else ())
        },
        "project_id": project_id,
    }


def _label(attributes: dict[str, Any], group: Optional[str]) -> str:
    if group:
        value = attributes.get(group)
        return f"{group}={_text(value)}" if value is not None else f"no {group}"
    own = sorted((k, v) for k, v in attributes.items() if not is_sdk_attribute(k))
    return ", ".join(f"{k}={_text(v)}" for k, v in own) or "all values"


def _text(value: Any) -> str:
    return (value if isinstance(value, str) else json.dumps(value, default=repr))[:100]


def metrics(values: list[dict[str, Any]], group: Optional[str] = None) -> list[dict[str, Any]]:
    """The metrics in `values`, each with its series and its chart, by name.

    Each: ``name``, ``type``, ``unit``, ``aggregate``, ``count``, ``sum``, ``min``,
    ``max``, ``last``, ``attribute_keys`` (every key seen), ``series`` (``label``,
    ``count``, ``total``, ``mean``, ``last``, ``points``: [bucket start, aggregate]) and
    ``chart`` (see `chart`).
    """
    by_metric: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for value in values:
        by_metric.setdefault((value["name"], value["type"], value["unit"]), []).append(value)
    found = []
    for (name, kind, unit), members in sorted(by_metric.items())[:MAX_CHARTS]:
        members = sorted(members, key=lambda v: v["timestamp"])
        numbers = [v["value"] for v in members if v["value"] is not None]
        step = bucket_step(members[0]["timestamp"], members[-1]["timestamp"])
        groups: dict[str, list[dict[str, Any]]] = {}
        keys: set[str] = set()
        for value in members:
            keys.update(value["attributes"])
            groups.setdefault(_label(value["attributes"], group), []).append(value)
        aggregate = AGGREGATES.get(kind, "avg")
        series = [
            {
                "label": label,
                "count": len(group_values),
                "total": sum(v["value"] for v in group_values if v["value"] is not None),
                "mean": _mean([v["value"] for v in group_values if v["value"] is not None]),
                "last": next(
                    (v["value"] for v in reversed(group_values) if v["value"] is not None), None
                ),
                "points": bucketed(group_values, step, aggregate),
            }
            for label, group_values in groups.items()
        ]
        series.sort(key=lambda s: (-s["count"], s["label"]))
        found.append(
            {
                "name": name,
                "type": kind,
                "unit": unit,
                "aggregate": aggregate,
                "step": step,
                "count": len(members),
                "sum": sum(numbers),
                "min": min(numbers, default=None),
                "max": max(numbers, default=None),
                "last": numbers[-1] if numbers else None,
                "attribute_keys": sorted(keys),
                "series": series,
                "chart": chart(series[:MAX_SERIES], step, aggregate, unit),
                "hidden_series": max(0, len(series) - MAX_SERIES),
            }
        )
    return found


def _mean(numbers: list[float]) -> Optional[float]:
    return sum(numbers) / len(numbers) if numbers else None


def bucket_step(first: float, last: float) -> int:
    """Seconds per bucket: the first step that puts `first`..`last` in few buckets."""
    span = max(last - first, 0.0)
    for step in _STEPS:
        if span / step < MAX_BUCKETS:
            return step
    return int(math.ceil(span / MAX_BUCKETS / 86400) * 86400)


def bucketed(values: list[dict[str, Any]], step: int, aggregate: str) -> list[tuple[float, float]]:
    """(bucket start, aggregate) for the buckets that have a number, oldest first."""
    buckets: dict[float, list[float]] = {}
    for value in values:  # oldest first
        if value["value"] is not None:
            start = math.floor(value["timestamp"] / step) * step
            buckets.setdefault(start, []).append(value["value"])
    points = []
    for start in sorted(buckets):
        numbers = buckets[start]
        if aggregate == "sum":
            result = sum(numbers)
        elif aggregate == "last":
            result = numbers[-1]
        else:
            result = sum(numbers) / len(numbers)
        points.append((start, result))
    return points


def chart(series: list[dict[str, Any]], step: int, aggregate: str, unit: str) -> dict[str, Any]:
    """SVG geometry of `series` on shared axes.

    ``width``/``height`` (the viewBox), ``plot`` (x, y, width, height), ``y_ticks``
    and ``x_ticks`` (position and label), ``lines`` (``color``, ``label``,
    ``points`` for a polyline, ``dots``: x, y and a tooltip), ``caption``.
    """
    points: list[tuple[float, float]] = [p for s in series for p in s["points"]]
    plot_w, plot_h = WIDTH - _LEFT - _RIGHT, HEIGHT - _TOP - _BOTTOM
    caption = f"{aggregate} per {_duration(step)}"
    result: dict[str, Any] = {
        "width": WIDTH,
        "height": HEIGHT,
        "plot": {"x": _LEFT, "y": _TOP, "width": plot_w, "height": plot_h},
        "bottom": _TOP + plot_h,
        "right": _LEFT + plot_w,
        "caption": caption,
        "y_ticks": [],
        "x_ticks": [],
        "lines": [],
    }
    if not points:
        return result
    t0 = min(t for t, _ in points)
    t1 = max(t for t, _ in points) + step
    low = min(0.0, min(v for _, v in points))
    high = max(v for _, v in points)
    ticks = nice_ticks(low, high)
    low, high = ticks[0], ticks[-1]

    def x_of(t: float) -> float:
        # A bucket's value is drawn at its middle.
        return round(_LEFT + (t + step / 2 - t0) / (t1 - t0) * plot_w, 1)

    def y_of(v: float) -> float:
        return round(_TOP + plot_h - (v - low) / ((high - low) or 1.0) * plot_h, 1)

    result["y_ticks"] = [{"y": y_of(v), "label": _number(v)} for v in ticks]
    count = min(5, max(2, int((t1 - t0) / step)))
    result["x_ticks"] = [
        {
            "x": round(_LEFT + i / (count - 1) * plot_w, 1),
            "label": _clock(t0 + i / (count - 1) * (t1 - t0), t1 - t0),
            "anchor": "start" if i == 0 else "end" if i == count - 1 else "middle",
        }
        for i in range(count)
    ]
    for index, one in enumerate(series):
        color = PALETTE[index % len(PALETTE)]
        coordinates = [(x_of(t), y_of(v)) for t, v in one["points"]]
        result["lines"].append(
            {
                "color": color,
                "label": one["label"],
                "points": " ".join(f"{x},{y}" for x, y in coordinates),
                "dots": [
                    {
                        "x": x,
                        "y": y,
                        "title": f"{one['label']}: {_number(v)}{' ' + unit if unit else ''} "
                        f"({aggregate}, {_when(t)})",
                    }
                    for (x, y), (t, v) in zip(coordinates, one["points"])
                ][-MAX_BUCKETS:],
            }
        )
    return result


def nice_ticks(low: float, high: float, count: int = 4) -> list[float]:
    """Round tick values from at or below `low` to at or above `high`."""
    if high <= low:
        high = low + (abs(low) or 1.0)
    raw = (high - low) / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    start = math.floor(low / step) * step
    ticks = [start]
    while ticks[-1] < high - step * 1e-9:
        ticks.append(round(ticks[-1] + step, 10))
    return ticks


def _number(value: float) -> str:
    if value == int(value) and abs(value) < 1e15:
        return f"{int(value):,}"
    return f"{value:,.4g}" if abs(value) < 1e6 else f"{value:.3g}"


def _duration(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def _clock(ts: float, span: float) -> str:
    moment = datetime.fromtimestamp(ts, timezone.utc)
    if span >= 2 * 86400:
        return moment.strftime("%m-%d %H:%M")
    return moment.strftime("%H:%M:%S" if span < 600 else "%H:%M")


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def page(
    store: Store,
    project_id: Optional[int] = None,
    name: Optional[str] = None,
    group: Optional[str] = None,
    received: int = 200,
) -> dict[str, Any]:
    """What the metrics page and ``/api/0/metrics/series/`` show.

    ``metrics`` (see `metrics`), ``names`` (every metric name seen, for the filter),
    ``received`` (the newest values as sent), ``generated`` (now).
    """
    values = load_values(store, project_id)
    names = sorted({v["name"] for v in values})
    if name:
        values = [v for v in values if v["name"] == name]
    return {
        "metrics": metrics(values, group or None),
        "names": names,
        "received": values[:received],
        "generated": time.time(),
    }
