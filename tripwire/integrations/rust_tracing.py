"""Rust `tracing` data from native extensions: events, breadcrumbs and spans.

As sentry_sdk 2.75's ``rust_tracing`` integration. A Rust extension registers a
`RustTracingLayer` with its `tracing` subscriber (through the
``pyo3-python-tracing-subscriber`` crate's ``PythonCallbackLayerBridge``); the
`initializer` given to `RustTracingIntegration` receives the layer. The bridge then
calls the layer with JSON strings:

- `on_event`: a `tracing` event; ``event_type_mapping(metadata)`` decides what it
  becomes: nothing, a breadcrumb (level and message), or an event (``logger`` the
  target, the level, the message, and contexts ``rust_tracing_location``: module
  path, file, line, and ``rust_tracing_fields``: the event's fields). The default
  mapping: ERROR an event, WARN and INFO breadcrumbs, DEBUG and TRACE nothing;
- `on_new_span` / `on_close`: a `tracing` span kept by ``span_filter(metadata)``
  (default: INFO and above) becomes a span ``op="function"``, origin
  ``auto.function.rust_tracing.<identifier>``, named after its message, else
  ``module_path::name``, else its name; it is the active span until it closes;
- `on_record`: values recorded later go to the span's data.

Span field values are PII: they are sent as ``[Filtered]`` unless
``include_tracing_fields=True`` or (left at None) ``send_default_pii=True``. Event
fields are sent as they are, as sentry_sdk does.

Differences from sentry_sdk 2.75: a malformed payload or a failing mapping/filter is
logged and ignored instead of raising back into the extension; with
``trace_lifecycle="stream"`` spans are still the classic ones (tripwire has no span
streaming yet).
"""

from __future__ import annotations

import json
from enum import Enum, auto
from typing import TYPE_CHECKING, Any, Callable, Optional, cast

from tripwire._log import logger
from tripwire.api import add_breadcrumb, capture_event
from tripwire.integrations import Integration
from tripwire.scope._current import should_send_default_pii
from tripwire.tracing._api import sdk_start_span
from tripwire.utils import SENSITIVE_DATA_SUBSTITUTE

if TYPE_CHECKING:
    from tripwire.tracing import Span
    from tripwire.types import Event

ORIGIN_PREFIX = "auto.function.rust_tracing."


class RustTracingLevel(Enum):
    """The level of a `tracing` event or span, as the bridge spells it."""

    Trace = "TRACE"
    Debug = "DEBUG"
    Info = "INFO"
    Warn = "WARN"
    Error = "ERROR"


class EventTypeMapping(Enum):
    """What a `tracing` event becomes."""

    Ignore = auto()
    Exc = auto()
    Breadcrumb = auto()
    Event = auto()


_SENTRY_LEVELS = {
    RustTracingLevel.Trace: "debug",
    RustTracingLevel.Debug: "debug",
    RustTracingLevel.Info: "info",
    RustTracingLevel.Warn: "warning",
    RustTracingLevel.Error: "error",
}


def tracing_level_to_sentry_level(level: str) -> str:
    """The event/breadcrumb level for a `tracing` level (``"WARN"`` -> ``"warning"``).

    Raises:
        ValueError: `level` is not a `tracing` level.
    """
    return _SENTRY_LEVELS[RustTracingLevel(level)]


def extract_contexts(event: dict[str, Any]) -> dict[str, Any]:
    """The ``rust_tracing_location`` and ``rust_tracing_fields`` contexts of an event."""
    metadata = event.get("metadata", {})
    contexts: dict[str, Any] = {}
    location = {key: metadata[key] for key in ("module_path", "file", "line") if key in metadata}
    if location:
        contexts["rust_tracing_location"] = location
    fields = {field: event.get(field) for field in metadata.get("fields", [])}
    if fields:
        contexts["rust_tracing_fields"] = fields
    return contexts


def process_event(event: dict[str, Any]) -> None:
    """Capture a `tracing` event as an event."""
    metadata = event.get("metadata", {})
    sentry_event = {
        "logger": metadata.get("target"),
        "level": tracing_level_to_sentry_level(metadata.get("level")),
        "message": event.get("message"),
        "contexts": extract_contexts(event),
    }
    capture_event(cast("Event", sentry_event))


def process_exception(event: dict[str, Any]) -> None:
    """Capture a `tracing` event mapped to `EventTypeMapping.Exc` (as an event)."""
    process_event(event)


def process_breadcrumb(event: dict[str, Any]) -> None:
    """Record a `tracing` event as a breadcrumb."""
    level = tracing_level_to_sentry_level(event.get("metadata", {}).get("level"))
    add_breadcrumb(level=level, message=event.get("message"))


def default_span_filter(metadata: dict[str, Any]) -> bool:
    """Keep spans of level INFO and above."""
    return RustTracingLevel(metadata.get("level")) in (
        RustTracingLevel.Error,
        RustTracingLevel.Warn,
        RustTracingLevel.Info,
    )


def default_event_type_mapping(metadata: dict[str, Any]) -> EventTypeMapping:
    """ERROR: an event; WARN and INFO: a breadcrumb; DEBUG and TRACE: nothing."""
    level = RustTracingLevel(metadata.get("level"))
    if level is RustTracingLevel.Error:
        return EventTypeMapping.Exc
    if level in (RustTracingLevel.Warn, RustTracingLevel.Info):
        return EventTypeMapping.Breadcrumb
    return EventTypeMapping.Ignore


_PROCESS: dict[EventTypeMapping, Callable[[dict[str, Any]], None]] = {
    EventTypeMapping.Exc: process_exception,
    EventTypeMapping.Breadcrumb: process_breadcrumb,
    EventTypeMapping.Event: process_event,
}


class RustTracingLayer:
    """The object a Rust extension's `tracing` subscriber calls back (one per extension).

    Args:
        origin: The origin of the spans it starts.
        event_type_mapping: ``metadata -> EventTypeMapping`` for each event.
        span_filter: ``metadata -> bool``: which spans to record.
        include_tracing_fields: Send span field values (None: as ``send_default_pii``).
    """

    __slots__ = ("event_type_mapping", "include_tracing_fields", "origin", "span_filter")

    def __init__(
        self,
        origin: str,
        event_type_mapping: Callable[
            [dict[str, Any]], EventTypeMapping
        ] = default_event_type_mapping,
        span_filter: Callable[[dict[str, Any]], bool] = default_span_filter,
        include_tracing_fields: Optional[bool] = None,
    ) -> None:
        self.origin = origin
        self.event_type_mapping = event_type_mapping
        self.span_filter = span_filter
        self.include_tracing_fields = include_tracing_fields

    def _include_tracing_fields(self) -> bool:
        if self.include_tracing_fields is None:
            return should_send_default_pii()
        return self.include_tracing_fields

    def on_event(self, event: str, sentry_span: Any = None) -> None:
        """A `tracing` event (JSON): an event, a breadcrumb or nothing."""
        try:
            deserialized = json.loads(event)
            process = _PROCESS.get(self.event_type_mapping(deserialized.get("metadata", {})))
            if process is not None:
                process(deserialized)
        except Exception:  # never raise back into the extension
            logger.debug("rust_tracing: event not recorded", exc_info=True)

    def on_new_span(self, attrs: str, span_id: str) -> Optional[Span]:
        """A `tracing` span opens (JSON attributes): the span started, or None if filtered."""
        try:
            attributes = json.loads(attrs)
            metadata = attributes.get("metadata", {})
            if not self.span_filter(metadata):
                return None
            span: Span = sdk_start_span(
                op="function", name=_span_name(attributes), origin=self.origin
            )
            include = self._include_tracing_fields()
            for field in metadata.get("fields", []):
                span.set_data(
                    field, attributes.get(field) if include else SENSITIVE_DATA_SUBSTITUTE
                )
            span.__enter__()
        except Exception:  # never raise back into the extension
            logger.debug("rust_tracing: span not started", exc_info=True)
            return None
        return span

    def on_close(self, span_id: str, sentry_span: Optional[Span]) -> None:
        """A `tracing` span closes: its span finishes."""
        if sentry_span is None:
            return
        try:
            sentry_span.__exit__(None, None, None)
        except Exception:  # never raise back into the extension
            logger.debug("rust_tracing: span not finished", exc_info=True)

    def on_record(self, span_id: str, values: str, sentry_span: Optional[Span]) -> None:
        """Values recorded on an open `tracing` span (JSON) go to its data."""
        if sentry_span is None:
            return
        try:
            include = self._include_tracing_fields()
            for key, value in json.loads(values).items():
                sentry_span.set_data(key, value if include else SENSITIVE_DATA_SUBSTITUTE)
        except Exception:  # never raise back into the extension
            logger.debug("rust_tracing: values not recorded", exc_info=True)


def _span_name(attributes: dict[str, Any]) -> Any:
    metadata = attributes.get("metadata", {})
    message = attributes.get("message")
    if message is not None:
        return message
    module_path = metadata.get("module_path")
    name = metadata.get("name")
    if module_path is not None and name is not None:
        return f"{module_path}::{name}"
    if name is not None:
        return name
    return "<unknown>"


class RustTracingIntegration(Integration):
    """Ingests a Rust native extension's `tracing` data (one instance per extension).

    The set-up needs the instance's arguments, so it happens here, not in `setup_once`:
    `initializer` is called at once with the extension's `RustTracingLayer`.

    Args:
        identifier: The extension's name (the integration's identifier, and the
            spans' origin ``auto.function.rust_tracing.<identifier>``).
        initializer: The extension's function that registers the layer.
        event_type_mapping: ``metadata -> EventTypeMapping`` for each event.
        span_filter: ``metadata -> bool``: which spans to record.
        include_tracing_fields: Send span field values (None: as ``send_default_pii``).
    """

    def __init__(
        self,
        identifier: str,
        initializer: Callable[[RustTracingLayer], None],
        event_type_mapping: Callable[
            [dict[str, Any]], EventTypeMapping
        ] = default_event_type_mapping,
        span_filter: Callable[[dict[str, Any]], bool] = default_span_filter,
        include_tracing_fields: Optional[bool] = None,
    ) -> None:
        self.identifier = identifier  # type: ignore[misc]  # per instance, as sentry_sdk
        self.tracing_layer = RustTracingLayer(
            ORIGIN_PREFIX + identifier, event_type_mapping, span_filter, include_tracing_fields
        )
        initializer(self.tracing_layer)

    @staticmethod
    def setup_once() -> None:
        """Nothing process-wide: the layer is registered in `__init__`."""


__all__ = [
    "EventTypeMapping",
    "RustTracingIntegration",
    "RustTracingLayer",
    "RustTracingLevel",
    "default_event_type_mapping",
    "default_span_filter",
    "extract_contexts",
    "process_breadcrumb",
    "process_event",
    "process_exception",
    "tracing_level_to_sentry_level",
]
