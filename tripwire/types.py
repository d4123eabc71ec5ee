"""Public types for user-visible payloads, as sentry_sdk.types exports them.

`Event` is a TypedDict for type checkers (as in sentry_sdk 2.x, so a `before_send`
annotated with it gets its keys checked) and a plain dict at run time: events are dicts
on the wire and in user hooks. tripwire's own code passes events around as `EventDict`.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from types import TracebackType
from typing import TYPE_CHECKING, Any, Callable, Literal, Optional, Union

LogLevelStr = Literal["fatal", "critical", "error", "warning", "info", "debug"]

EventDict = dict[str, Any]

if TYPE_CHECKING:
    from datetime import datetime

    from typing_extensions import TypedDict

    class Event(TypedDict, total=False):
        """An error, message, transaction or check-in event (the protocol's keys)."""

        breadcrumbs: dict[Literal["values"], list[dict[str, Any]]]
        check_in_id: str
        contexts: dict[str, dict[str, object]]
        dist: str
        duration: Optional[float]
        environment: Optional[str]
        errors: list[dict[str, Any]]
        event_id: str
        exception: dict[Literal["values"], list[dict[str, Any]]]
        extra: MutableMapping[str, object]
        fingerprint: list[str]
        level: LogLevelStr
        logentry: Mapping[str, object]
        logger: str
        measurements: dict[str, dict[str, Any]]
        message: str
        modules: dict[str, str]
        monitor_config: Mapping[str, object]
        monitor_slug: Optional[str]
        platform: Literal["python"]
        profile: object
        release: Optional[str]
        request: dict[str, object]
        sdk: Mapping[str, object]
        server_name: str
        spans: list[dict[str, object]]
        stacktrace: dict[str, object]
        start_timestamp: Union[datetime, str, float]
        status: Optional[str]
        tags: MutableMapping[str, str]
        threads: dict[Literal["values"], list[dict[str, Any]]]
        timestamp: Union[datetime, str, float, None]
        transaction: str
        transaction_info: Mapping[str, Any]
        type: Literal["check_in", "transaction"]
        user: dict[str, object]

else:
    Event = EventDict

Hint = dict[str, Any]
Breadcrumb = dict[str, Any]
BreadcrumbHint = dict[str, Any]
Log = dict[str, Any]
Metric = dict[str, Any]
MonitorConfig = dict[str, Any]
SamplingContext = dict[str, Any]
# Span JSON as it appears in a transaction's `spans` (and streamed `span` items).
SpanJSON = dict[str, Any]
# Attribute values of logs, metrics and streamed spans: str, bool, int, float or a list.
Attributes = dict[str, Any]
# sentry_sdk 2.75's `data_collection` option, as the user writes it.
DataCollectionUserOptions = dict[str, Any]

EventDataCategory = Literal[
    "default",
    "error",
    "crash",
    "transaction",
    "security",
    "attachment",
    "session",
    "internal",
    "profile",
    "profile_chunk",
    "monitor",
    "span",
    "log_item",
    "log_byte",
    "trace_metric",
    "trace_metric_byte",
]

ExcInfo = tuple[Optional[type[BaseException]], Optional[BaseException], Optional[TracebackType]]

EventProcessor = Callable[[EventDict, Hint], Optional[EventDict]]
ErrorProcessor = Callable[[EventDict, ExcInfo], Optional[EventDict]]
BreadcrumbProcessor = Callable[[Breadcrumb, BreadcrumbHint], Optional[Breadcrumb]]

ExceptionLike = Union[BaseException, ExcInfo]

__all__ = [
    "Attributes",
    "Breadcrumb",
    "BreadcrumbHint",
    "BreadcrumbProcessor",
    "DataCollectionUserOptions",
    "ErrorProcessor",
    "Event",
    "EventDataCategory",
    "EventProcessor",
    "ExcInfo",
    "ExceptionLike",
    "Hint",
    "Log",
    "LogLevelStr",
    "Metric",
    "MonitorConfig",
    "SamplingContext",
    "SpanJSON",
]
