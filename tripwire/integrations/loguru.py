"""loguru integration: breadcrumbs, events and structured logs from loguru's messages.

As sentry_sdk 2.75's ``loguru`` integration, set-up adds three sinks to loguru's
global ``logger`` (each only if its level is not None):

- ``level`` (INFO): a ``log`` breadcrumb per message, its text formatted with
  ``breadcrumb_format`` (loguru's default format);
- ``event_level`` (ERROR): an event per message (``event_format``), with the
  exception of ``logger.exception`` and mechanism ``logging``;
- ``sentry_logs_level`` (INFO): a structured log (origin ``auto.log.loguru``) when
  ``enable_logs`` is on or ``capture_sentry_logs=True``; the message's ``bind()`` /
  keyword values become ``sentry.message.parameter.<name>`` attributes.

loguru's own levels map to the SDK's: TRACE -> debug, SUCCESS -> info. As in sentry_sdk
the options are class attributes: the integration constructed last decides. The sinks
stay quiet for a client without this integration; `tripwire.testing.reset()` removes
them.

loguru is not imported by set-up: the sinks are added when the application imports it
(at once if it has). A format of None (the default) is loguru's default format.
"""

from __future__ import annotations

import enum
import logging
from datetime import datetime, timezone
from types import ModuleType
from typing import Any, Callable, Optional, Union

from tripwire._log import suppress, suppressed
from tripwire.integrations import DidNotEnable, Integration
from tripwire.integrations._common._hooks import when_imported
from tripwire.integrations.logging import (
    _EVENT_LEVELS,
    _IGNORED_LOGGERS,
    BreadcrumbHandler,
    EventHandler,
    _extras,
)
from tripwire.logger import capture_log, logs_enabled, parameter_value
from tripwire.scope._breadcrumbs import record_breadcrumb
from tripwire.scope._current import get_client, get_current_scope, get_isolation_scope

ORIGIN = "auto.log.loguru"
_UNSET: Any = object()


class LoggingLevels(enum.IntEnum):
    """loguru's built-in levels."""

    TRACE = 5
    DEBUG = 10
    INFO = 20
    SUCCESS = 25
    WARNING = 30
    ERROR = 40
    CRITICAL = 50


DEFAULT_LEVEL = LoggingLevels.INFO.value
DEFAULT_EVENT_LEVEL = LoggingLevels.ERROR.value

SENTRY_LEVEL_FROM_LOGURU_LEVEL = {
    "TRACE": "DEBUG",
    "DEBUG": "DEBUG",
    "INFO": "INFO",
    "SUCCESS": "INFO",
    "WARNING": "WARNING",
    "ERROR": "ERROR",
    "CRITICAL": "CRITICAL",
}

# Lowest loguru level number -> OpenTelemetry severity number (a custom level falls in
# the range of the built-in level below it).
SEVERITY_TO_OTEL_SEVERITY = {
    LoggingLevels.CRITICAL: 21,
    LoggingLevels.ERROR: 17,
    LoggingLevels.WARNING: 13,
    LoggingLevels.SUCCESS: 11,
    LoggingLevels.INFO: 9,
    LoggingLevels.DEBUG: 5,
    LoggingLevels.TRACE: 1,
}
_SEVERITY_STEPS = sorted(SEVERITY_TO_OTEL_SEVERITY.items(), reverse=True)
_SEVERITY_TEXT = {
    21: "fatal",
    17: "error",
    13: "warn",
    11: "info",
    9: "info",
    5: "debug",
    1: "trace",
}

Format = Union[str, Callable[..., str], None]


class LoguruIntegration(Integration):
    """Sends loguru's messages as breadcrumbs, events and structured logs.

    Args:
        level: Messages at this loguru level or above become breadcrumbs (None: none).
        event_level: ... become events (None: none).
        breadcrumb_format: loguru format of a breadcrumb's message (None: loguru's default).
        event_format: loguru format of an event's message (None: loguru's default).
        sentry_logs_level: ... become structured logs (None: none).
        capture_sentry_logs: True sends structured logs even without ``enable_logs``;
            False never does.
    """

    identifier = "loguru"

    level: Optional[int] = DEFAULT_LEVEL
    event_level: Optional[int] = DEFAULT_EVENT_LEVEL
    breadcrumb_format: Format = None
    event_format: Format = None
    sentry_logs_level: Optional[int] = DEFAULT_LEVEL
    capture_sentry_logs: Any = _UNSET

    def __init__(
        self,
        level: Optional[int] = DEFAULT_LEVEL,
        event_level: Optional[int] = DEFAULT_EVENT_LEVEL,
        breadcrumb_format: Format = None,
        event_format: Format = None,
        sentry_logs_level: Optional[int] = DEFAULT_LEVEL,
        capture_sentry_logs: Any = _UNSET,
    ) -> None:
        LoguruIntegration.level = level
        LoguruIntegration.event_level = event_level
        LoguruIntegration.breadcrumb_format = breadcrumb_format
        LoguruIntegration.event_format = event_format
        LoguruIntegration.sentry_logs_level = sentry_logs_level
        LoguruIntegration.capture_sentry_logs = capture_sentry_logs

    @staticmethod
    def setup_once() -> None:
        """Add the sinks to loguru's logger once loguru is imported.

        Raises:
            DidNotEnable: loguru is not installed.
        """
        import importlib.util

        if importlib.util.find_spec("loguru") is None:
            raise DidNotEnable("loguru is not installed")
        when_imported("loguru", _add_sinks)


def _add_sinks(module: ModuleType) -> None:
    """The integration's sinks (with the options of the last integration made)."""
    from tripwire.integrations._patch import on_undo

    loguru_logger = module.logger
    default_format = _default_format()
    ids: list[int] = []
    cls = LoguruIntegration
    if cls.level is not None:
        crumbs = LoguruBreadcrumbHandler(level=cls.level)
        crumbs._gated = True
        crumbs_format = cls.breadcrumb_format or default_format
        ids.append(loguru_logger.add(crumbs, level=cls.level, format=crumbs_format))
    if cls.event_level is not None:
        events = LoguruEventHandler(level=cls.event_level)
        events._gated = True
        events_format = cls.event_format or default_format
        ids.append(loguru_logger.add(events, level=cls.event_level, format=events_format))
    if cls.sentry_logs_level is not None:
        ids.append(loguru_logger.add(_logs_sink, level=cls.sentry_logs_level))

    def remove() -> None:
        for sink_id in ids:
            try:
                loguru_logger.remove(sink_id)
            except ValueError:  # the user removed it already
                pass

    on_undo(remove)


def _default_format() -> Any:
    from loguru._defaults import LOGURU_FORMAT

    return LOGURU_FORMAT


def __getattr__(name: str) -> Any:
    # sentry_sdk's module exports loguru's default format; read from loguru on demand.
    if name == "DEFAULT_FORMAT":
        return _default_format()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _enabled() -> bool:
    return get_client().get_integration(LoguruIntegration) is not None


def _event_level(record: logging.LogRecord) -> str:
    """The SDK's level of a loguru message: its built-in levels by name, others lowercased."""
    try:
        return SENTRY_LEVEL_FROM_LOGURU_LEVEL[LoggingLevels(record.levelno).name].lower()
    except (ValueError, KeyError):
        return record.levelname.lower() if record.levelname else ""


class _LoguruBaseHandler(logging.Handler):
    # True for the sinks the integration adds: they follow the client's integrations.
    # A handler a user adds to loguru by hand always records.
    _gated = False

    def __init__(self, level: Any = logging.NOTSET) -> None:
        # loguru filters by level itself and calls `handle` directly; the handler's
        # own level stays at INFO as in sentry_sdk.
        super().__init__(level=logging.INFO if level else logging.NOTSET)

    def _logging_to_event_level(self, record: logging.LogRecord) -> str:
        return _event_level(record)

    def _can_record(self, record: logging.LogRecord) -> bool:
        return not _IGNORED_LOGGERS.ignores(record.name.strip())

    def emit(self, record: logging.LogRecord) -> None:
        if suppressed():
            return
        with suppress:
            try:
                if self._gated and not _enabled():
                    return
                if self._can_record(record):
                    record.message = record.getMessage()
                    self._record(record)
            except Exception:
                pass

    def _record(self, record: logging.LogRecord) -> None:
        raise NotImplementedError


class LoguruEventHandler(_LoguruBaseHandler, EventHandler):
    """`EventHandler` for loguru (``logger.add(LoguruEventHandler())``)."""

    def _record(self, record: logging.LogRecord) -> None:
        client = get_client()
        if not client.is_active():
            return
        exc_info = record.exc_info
        event: dict[str, Any]
        hint: dict[str, Any]
        if exc_info and exc_info[0] is not None:
            event, hint = client._event_from_exception(
                exc_info, mechanism={"type": "logging", "handled": True}
            )
        else:
            event, hint = {}, {}
        hint["log_record"] = record
        level = _event_level(record)
        if level in _EVENT_LEVELS:  # a custom level's name is not a Sentry level: none
            event["level"] = level
        event["logger"] = record.name
        # loguru hands over its formatted text and no arguments.
        event["logentry"] = {"message": record.msg, "formatted": record.message, "params": []}
        event["extra"] = _extras(record)
        from tripwire.capture import capture_event

        capture_event(get_current_scope(), event, hint, None, {}, built_by_sdk=True)


class LoguruBreadcrumbHandler(_LoguruBaseHandler, BreadcrumbHandler):
    """`BreadcrumbHandler` for loguru (``logger.add(LoguruBreadcrumbHandler())``)."""

    def _record(self, record: logging.LogRecord) -> None:
        crumb = self._breadcrumb_from_record(record)
        record_breadcrumb(get_isolation_scope(), None, {"log_record": record}, crumb)

    def _breadcrumb_from_record(self, record: logging.LogRecord) -> dict[str, Any]:
        return {
            "type": "log",
            "level": _event_level(record),
            "category": record.name,
            "message": record.message,
            "timestamp": datetime.fromtimestamp(record.created, timezone.utc),
            "data": _extras(record),
        }


def _severity(levelno: int) -> tuple[str, int]:
    for lowest, number in _SEVERITY_STEPS:
        if levelno >= lowest:
            return _SEVERITY_TEXT[number], number
    return "default", 0


def _logs_sink(message: Any) -> None:
    """loguru sink (a callable, to see ``message.record``): a structured log."""
    if suppressed():
        return
    try:
        _send_log(message.record)
    except Exception:
        pass


def _send_log(record: dict[str, Any]) -> None:
    client = get_client()
    if not client.is_active() or client.transport is None:
        return
    if client.get_integration(LoguruIntegration) is None:
        return
    wanted = LoguruIntegration.capture_sentry_logs
    if not (wanted is True or (wanted is _UNSET and logs_enabled(client))):
        return
    minimum = LoguruIntegration.sentry_logs_level
    levelno = record["level"].no
    if minimum is None or levelno < minimum:
        return
    attributes: dict[str, Any] = {"sentry.origin": ORIGIN}
    file = record.get("file")
    if file:
        path = file.path
        root = client.options.get("project_root")
        if isinstance(root, str) and path.startswith(root):
            path = path[len(root) + 1 :]
        attributes["code.file.path"] = path
    if record.get("line") is not None:
        attributes["code.line.number"] = record["line"]
    if record.get("function"):
        attributes["code.function.name"] = record["function"]
    thread = record.get("thread")
    if thread:
        attributes["thread.name"] = thread.name
        attributes["thread.id"] = thread.id
    process = record.get("process")
    if process:
        attributes["process.pid"] = process.id
        attributes["process.executable.name"] = process.name
    if record.get("name"):
        attributes["logger.name"] = record["name"]
    extra = record.get("extra")
    if isinstance(extra, dict):
        for key, value in extra.items():
            attributes[f"sentry.message.parameter.{key}"] = parameter_value(value)
    text, number = _severity(levelno)
    timestamp = record["time"].timestamp()
    capture_log(client, text, number, record["message"], attributes, timestamp=timestamp)


__all__ = [
    "DEFAULT_EVENT_LEVEL",
    "DEFAULT_LEVEL",
    "LoggingLevels",
    "LoguruBreadcrumbHandler",
    "LoguruEventHandler",
    "LoguruIntegration",
]
