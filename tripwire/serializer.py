"""sentry_sdk's `sentry_sdk.serializer` API over tripwire's bounded serializer.

`serialize(event)` gives a JSON-safe copy of an event with Sentry's databag limits and
`_meta` annotations; `add_global_repr_processor` hooks into how databag values and frame
variables are rendered (tripwire applies it when it builds events, too).
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import contextmanager
from typing import Any, Callable, Optional

from tripwire.consts import MAX_DATABAG_BREADTH as MAX_DATABAG_BREADTH
from tripwire.consts import MAX_DATABAG_DEPTH as MAX_DATABAG_DEPTH
from tripwire.event import serializer as _impl
from tripwire.event.serializer import CYCLIC, Serializer
from tripwire.event.serializer import global_repr_processors as global_repr_processors
from tripwire.utils import AnnotatedValue as AnnotatedValue
from tripwire.utils import capture_internal_exception as capture_internal_exception
from tripwire.utils import disable_capture_event as disable_capture_event
from tripwire.utils import format_timestamp as format_timestamp
from tripwire.utils import safe_repr as safe_repr
from tripwire.utils import strip_string as strip_string

ReprProcessor = Callable[[Any, dict[str, Any]], Any]

# Events over this many bytes of JSON are trimmed before sending.
MAX_EVENT_BYTES = 10**6
CYCLE_MARKER = CYCLIC

serializable_str_types = (str, bytes, bytearray, memoryview)
# Types serialized as lists; `add_repr_sequence_type` adds to it.
sequence_types: list[type] = [tuple, list, set, frozenset]


def add_global_repr_processor(processor: ReprProcessor) -> None:
    """Render some values yourself: ``processor(value, hint)`` returns the value to send,
    or NotImplemented to leave `value` to the serializer.

    Called for the values of databags (extra, request data, breadcrumb data) and frame
    variables; `hint` has ``remaining_depth``.
    """
    global_repr_processors.append(processor)


def add_repr_sequence_type(ty: type) -> None:
    """Serialize instances of `ty` (an iterable) as lists instead of their repr."""
    sequence_types.append(ty)
    _impl.add_sequence_type(ty)


class Memo:
    """Tracks the containers on the path being serialized, to spot cycles."""

    __slots__ = ("_ids", "_objs")

    def __init__(self) -> None:
        self._ids: dict[int, object] = {}
        self._objs: list[object] = []

    @contextmanager
    def memoize(self, obj: object) -> Any:
        """``with memo.memoize(obj) as seen:`` `seen` is True if `obj` is already on the path."""
        key = id(obj)
        if key in self._ids:
            yield True
            return
        self._ids[key] = obj
        self._objs.append(obj)
        try:
            yield False
        finally:
            self._objs.pop()
            self._ids.pop(key, None)


def serialize(event: Any, **kwargs: Any) -> Any:
    """A JSON-safe copy of an event (or of any value), as sentry_sdk's `serialize`.

    Keyword Args:
        max_value_length: Cut longer strings (default: tripwire's limit).
        custom_repr: Called before ``repr()`` for objects; None falls back to ``repr()``.
        is_vars: Serialize a mapping of frame variables (leaves become reprs).
        max_request_body_size: ``"always"`` keeps request bodies whole.

    Annotations of what was trimmed go into ``result["_meta"]`` (except with `is_vars`).
    """
    serializer = Serializer(
        max_value_length=kwargs.get("max_value_length"),
        custom_repr=kwargs.get("custom_repr"),
    )
    token = disable_capture_event.set(True)
    try:
        if kwargs.get("is_vars"):
            return serializer.frame_vars(event) if isinstance(event, Mapping) else {}
        if isinstance(event, Mapping):
            result = serializer.event(event)
            if kwargs.get("max_request_body_size") == "always":
                body = (event.get("request") or {}).get("data")
                if body is not None and isinstance(result.get("request"), dict):
                    result["request"]["data"] = serializer.value(body, {})
                    _drop_request_meta(result)
            return result
        return serializer.value(event, {})
    finally:
        disable_capture_event.reset(token)


def _drop_request_meta(result: dict[str, Any]) -> None:
    meta: Optional[dict[str, Any]] = result.get("_meta")
    request_meta = (meta or {}).get("request")
    if isinstance(request_meta, dict):
        request_meta.pop("data", None)
        if not request_meta and meta is not None:
            meta.pop("request", None)
            if not meta:
                result.pop("_meta", None)


__all__ = [
    "CYCLE_MARKER",
    "MAX_DATABAG_BREADTH",
    "MAX_DATABAG_DEPTH",
    "MAX_EVENT_BYTES",
    "AnnotatedValue",
    "Memo",
    "add_global_repr_processor",
    "add_repr_sequence_type",
    "global_repr_processors",
    "safe_repr",
    "sequence_types",
    "serialize",
]
