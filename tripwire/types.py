"""Public types for user-visible payloads, as sentry_sdk.types exports them."""

from __future__ import annotations

from types import TracebackType
from typing import Any, Callable, Literal, Optional, Union

# Events are plain dicts on the wire and in user hooks (before_send receives a dict).
# TypedDict would forbid the arbitrary keys users and integrations add, so these are aliases.
Event = dict[str, Any]
Hint = dict[str, Any]
Breadcrumb = dict[str, Any]
BreadcrumbHint = dict[str, Any]
Log = dict[str, Any]
Metric = dict[str, Any]
MonitorConfig = dict[str, Any]
SamplingContext = dict[str, Any]

ExcInfo = tuple[Optional[type[BaseException]], Optional[BaseException], Optional[TracebackType]]

LogLevelStr = Literal["fatal", "critical", "error", "warning", "info", "debug"]

EventProcessor = Callable[[Event, Hint], Optional[Event]]
ErrorProcessor = Callable[[Event, ExcInfo], Optional[Event]]
BreadcrumbProcessor = Callable[[Breadcrumb, BreadcrumbHint], Optional[Breadcrumb]]

ExceptionLike = Union[BaseException, ExcInfo]

__all__ = [
    "Breadcrumb",
    "BreadcrumbHint",
    "BreadcrumbProcessor",
    "ErrorProcessor",
    "Event",
    "EventProcessor",
    "ExcInfo",
    "ExceptionLike",
    "Hint",
    "Log",
    "LogLevelStr",
    "Metric",
    "MonitorConfig",
    "SamplingContext",
]
