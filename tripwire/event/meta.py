"""The `_meta` tree: annotations for values the SDK trimmed or filtered.

`_meta` mirrors the event's shape; the annotation for a node sits under the key "".
Example: ``{"extra": {"big": {"": {"len": 5000}}}}``.
"""

from __future__ import annotations

from typing import Any


def meta_node(event: dict[str, Any], *path: str | int) -> dict[str, Any]:
    """Return the `_meta` node for `path` in `event`, creating it and its parents."""
    node: dict[str, Any] = event.setdefault("_meta", {})
    for key in path:
        node = node.setdefault(str(key), {})
    return node


def annotate(event: dict[str, Any], path: tuple[str | int, ...], entry: dict[str, Any]) -> None:
    """Merge `entry` into the annotation of the value at `path` (rem lists are extended)."""
    node = meta_node(event, *path).setdefault("", {})
    for key, value in entry.items():
        if key == "rem" and "rem" in node:
            node["rem"].extend(value)
        else:
            node[key] = value


def merge_meta(dst: dict[str, Any], src: dict[str, Any]) -> None:
    """Merge the `_meta` tree `src` into `dst` (annotation nodes "" are updated in place)."""
    for key, value in src.items():
        old = dst.get(key)
        if isinstance(old, dict) and isinstance(value, dict):
            if key == "":
                old.update(value)
            else:
                merge_meta(old, value)
        else:
            dst[key] = value
