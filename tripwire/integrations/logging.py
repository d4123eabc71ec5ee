"""Standard-library logging: records become breadcrumbs, error events and structured logs.

As sentry_sdk 2.x, by default a record at INFO or above becomes a breadcrumb, one
at ERROR or above also becomes an event (an exception event when it carries
``exc_info``), and with ``enable_logs=True`` one at INFO or above also becomes a
structured log. Records are taken from `logging.Logger.callHandlers`, so loggers
with ``propagate=False`` are seen too, and no handler is added to any logger.

Two kinds of record are never captured: those of the SDK's own logger
(``tripwire.errors``) and any record produced while the SDK itself is running on
that thread (`tripwire._log.suppressed`), e.g. by a ``before_send`` hook or a
``__repr__`` that logs. Capturing those could loop forever.
"""

from __future__ import annotations

import logging
from fnmatch import fnmatch
from typing import TYPE_CHECKING, Any

from tripwire._log import suppress, suppressed
from tripwire.integrations import Integration
from tripwire.logger import capture_log, format_attribute, logs_enabled, parameter_value
from tripwire.scope._current import get_client, get_current_scope, get_isolation_scope

if TYPE_CHECKING:
    from tripwire.client import BaseClient

DEFAULT_LEVEL = logging.INFO
DEFAULT_EVENT_LEVEL = logging.ERROR

LOGGING_TO_EVENT_LEVEL = {
    logging.NOTSET: "notset",
    logging.DEBUG: "debug",
    logging.INFO: "info",
    logging.WARNING: "warning",
    logging.ERROR: "error",
    logging.CRITICAL: "fatal",
}

# Logging level -> OpenTelemetry severity number, for the standard levels.
SEVERITY_TO_OTEL_SEVERITY = {
    logging.CRITICAL: 21,
    logging.ERROR: 17,
    logging.WARNING: 13,
    logging.INFO: 9,
    logging.DEBUG: 5,
}

# Loggers whose records would be produced by sending: capturing them could loop.
_DEFAULT_IGNORED = ("tripwire.errors", "urllib3.connectionpool", "urllib3.connection")


class _Names:
    """A set of logger names and fnmatch patterns, checked cheaply per record."""

    __slots__ = ("names", "patterns")

    def __init__(self, names: tuple[str, ...]) -> None:
        self.names: set[str] = set(names)
        self.patterns: tuple[str, ...] = ()

    def add(self, name: str) -> None:
        self.names.add(name)
        self._refresh()

    def discard(self, name: str) -> None:
        self.names.discard(name)
        self._refresh()

    def _refresh(self) -> None:
        self.patterns = tuple(n for n in self.names if any(c in n for c in "*?["))

    def __contains__(self, name: object) -> bool:
        if name in self.names:
            return True
        return bool(self.patterns) and any(fnmatch(str(name), p) for p in self.patterns)


_ignored = _Names(_DEFAULT_IGNORED)
_ignored_for_logs = _Names(_DEFAULT_IGNORED)


def ignore_logger(name: str) -> None:
    """Never turn records of logger `name` into events or breadcrumbs (fnmatch patterns work).

    Structured logs are controlled separately by `ignore_logger_for_sentry_logs`.
    """
    _ignored.add(name)


def unignore_logger(name: str) -> None:
    """Undo `ignore_logger(name)`."""
    _ignored.discard(name)


def ignore_logger_for_sentry_logs(name: str) -> None:
    """Never turn records of logger `name` into structured logs."""
    _ignored_for_logs.add(name)


def unignore_logger_for_sentry_logs(name: str) -> None:
    """Undo `ignore_logger_for_sentry_logs(name)`."""
    _ignored_for_logs.discard(name)


def _restore_ignored() -> None:
    for names in (_ignored, _ignored_for_logs):
        names.names = set(_DEFAULT_IGNORED)
        names.patterns = ()


_UNSET: Any = object()


class LoggingIntegration(Integration):
    """Captures standard-library log records (see the module docstring).

    Args:
        level: Records at this level or above become breadcrumbs (None: none do).
        event_level: Records at this level or above become events (None: none do).
        sentry_logs_level: Records at this level or above become structured logs
            when ``enable_logs=True`` (None: none do).
        capture_sentry_logs: False turns structured logs from logging off.
    """

    identifier = "logging"

    def __init__(
        self,
        level: int | None = DEFAULT_LEVEL,
        event_level: int | None = DEFAULT_EVENT_LEVEL,
        sentry_logs_level: int | None = DEFAULT_LEVEL,
        capture_sentry_logs: bool | Any = _UNSET,
    ) -> None:
        self._breadcrumb_level = level
        self._event_level = event_level
        self._logs_level = sentry_logs_level if capture_sentry_logs is not False else None

    @staticmethod
    def setup_once() -> None:
        """Patch `logging.Logger.callHandlers` (undone by `tripwire.testing.reset`)."""
        import functools

        from tripwire.integrations._patch import on_undo, patch

        original = logging.Logger.callHandlers

        @functools.wraps(original)
        def callHandlers(self: logging.Logger, record: logging.LogRecord) -> None:
            # A record is handled once even if this patch ended up installed twice
            # (another library wrapped ours, so `reset()` could not remove it).
            if not suppressed() and not getattr(record, "_tripwire_seen", False):
                try:
                    record._tripwire_seen = True
                    client = get_client()
                    integration = client.get_integration(LoggingIntegration)
                    if integration is not None:
                        integration._handle(client, record)
                except Exception:
                    # Logging about this failure would come straight back here; stay quiet.
                    pass
            original(self, record)

        patch(logging.Logger, "callHandlers", callHandlers)
        # `tripwire.testing.reset()` means the just-imported state: default ignore lists.
        on_undo(_restore_ignored)

    def _handle(self, client: BaseClient, record: logging.LogRecord) -> None:
        levelno = record.levelno
        event_level = self._event_level
        crumb_level = self._breadcrumb_level
        logs_level = self._logs_level
        wants_event = event_level is not None and levelno >= event_level
        wants_crumb = crumb_level is not None and levelno >= crumb_level
        wants_log = logs_level is not None and levelno >= logs_level and logs_enabled(client)
        if not (wants_event or wants_crumb or wants_log):
            return
        with suppress:
            message = _message(record)
            extras = _extras(record)
            if (wants_event or wants_crumb) and record.name not in _ignored:
                # The event first: its own record is not among its breadcrumbs.
                if wants_event:
                    _capture_event(client, record, message, extras)
                if wants_crumb:
                    _add_breadcrumb(record, message, extras)
            if wants_log and record.name not in _ignored_for_logs:
                _capture_log(client, record, message, extras)


class _BaseHandler(logging.Handler):
    def _ready(self, record: logging.LogRecord, ignored: _Names) -> BaseClient | None:
        if suppressed() or record.name in ignored:
            return None
        client = get_client()
        return client if client.is_active() else None


class EventHandler(_BaseHandler):
    """A `logging.Handler` that captures each record it handles as an event.

    For handlers added by hand; the integration does not need one.
    """

    def emit(self, record: logging.LogRecord) -> None:
        """Capture `record` as an event."""
        client = self._ready(record, _ignored)
        if client is not None:
            with suppress:
                try:
                    _capture_event(client, record, _message(record), _extras(record))
                except Exception:
                    pass


SentryHandler = EventHandler


class BreadcrumbHandler(_BaseHandler):
    """A `logging.Handler` that records each record it handles as a breadcrumb."""

    def emit(self, record: logging.LogRecord) -> None:
        """Record `record` as a breadcrumb."""
        client = self._ready(record, _ignored)
        if client is not None:
            with suppress:
                try:
                    _add_breadcrumb(record, _message(record), _extras(record))
                except Exception:
                    pass


class SentryLogsHandler(_BaseHandler):
    """A `logging.Handler` that sends each record it handles as a structured log."""

    def emit(self, record: logging.LogRecord) -> None:
        """Send `record` as a structured log (when ``enable_logs=True``)."""
        client = self._ready(record, _ignored_for_logs)
        if client is not None:
            with suppress:
                try:
                    _capture_log(client, record, _message(record), _extras(record))
                except Exception:
                    pass


# -- record -> payload ---------------------------------------------------------------------

# Attributes every LogRecord has (and a few that formatting adds): not user "extra".
_RECORD_ATTRS = frozenset(
    {
        *vars(logging.LogRecord("", 0, "", 0, "", (), None)),
        "message",
        "stack",
        "tags",
        "taskName",
    }
)


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    return {
        key: value
        for key, value in vars(record).items()
        if key not in _RECORD_ATTRS and not str(key).startswith("_")
    }


def _message(record: logging.LogRecord) -> str:
    try:
        return record.getMessage()
    except Exception:  # arguments that do not fit the format: keep the template
        return _to_str(record.msg)


def _to_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return str(value)
    except Exception:
        return "<unprintable>"


def _capture_event(
    client: BaseClient, record: logging.LogRecord, message: str, extras: dict[str, Any]
) -> None:
    if not client.is_active():
        return
    exc_info = record.exc_info
    hint: dict[str, Any]
    if exc_info and exc_info[0] is not None:
        event, hint = client._event_from_exception(
            exc_info, mechanism={"type": "logging", "handled": True}
        )
    else:
        event, hint = {}, {}
        if exc_info or record.stack_info:
            # No exception to report, but the caller asked for the stack.
            from tripwire.event.frames import stacktrace_for_current_thread

            opts = getattr(client, "_frame_options", None)
            if opts is not None:
                event["threads"] = {
                    "values": [
                        {
                            "stacktrace": stacktrace_for_current_thread(opts),
                            "crashed": False,
                            "current": True,
                        }
                    ]
                }
    hint["log_record"] = record
    level = LOGGING_TO_EVENT_LEVEL.get(record.levelno)
    if level is not None:
        event["level"] = level
    else:
        event.pop("level", None)
    event["logger"] = record.name
    args = record.args
    event["logentry"] = {
        "message": _to_str(record.msg),
        "formatted": message,
        "params": list(args) if isinstance(args, tuple) else args,
    }
    event["extra"] = dict(extras)  # processors add to it; `extras` is shared with the log
    from tripwire.scope._capture import capture_event

    capture_event(get_current_scope(), event, hint, None, {}, built_by_sdk=True)


def _add_breadcrumb(record: logging.LogRecord, message: str, extras: dict[str, Any]) -> None:
    level = LOGGING_TO_EVENT_LEVEL.get(record.levelno) or _to_str(record.levelname).lower()
    get_isolation_scope().add_breadcrumb(
        {
            "type": "log",
            "level": level,
            "category": record.name,
            "message": message,
            "timestamp": record.created,
            "data": dict(extras),  # its own: before_breadcrumb may change it
        },
        {"log_record": record},
    )


def _capture_log(
    client: BaseClient, record: logging.LogRecord, message: str, extras: dict[str, Any]
) -> None:
    if client.transport is None or not logs_enabled(client):
        return
    attributes: dict[str, Any] = {}
    for key, value in extras.items():
        attributes[str(key)] = format_attribute(value, tuples=False)
    attributes["sentry.origin"] = "auto.log.stdlib"
    args = record.args
    if args:
        if isinstance(args, tuple):
            for index, value in enumerate(args):
                attributes[f"sentry.message.parameter.{index}"] = parameter_value(value)
        elif isinstance(args, dict):
            for key, value in args.items():
                attributes[f"sentry.message.parameter.{key}"] = parameter_value(value)
        attributes["sentry.message.template"] = _to_str(record.msg)
    attributes.update(
        (attribute, value)
        for attribute, value in (
            ("code.line.number", record.lineno),
            ("code.file.path", record.pathname),
            ("code.function.name", record.funcName),
            ("thread.id", record.thread),
            ("thread.name", record.threadName),
            ("process.pid", record.process),
            ("process.executable.name", record.processName),
            ("logger.name", record.name),
        )
        if value is not None
    )
    text, number = _severity(record.levelno)
    capture_log(client, text, number, message, attributes, timestamp=record.created)


def _severity(levelno: int) -> tuple[str, int]:
    """The OpenTelemetry severity of a logging level (custom levels fall in a range)."""
    if levelno >= logging.CRITICAL:
        return "fatal", 21
    if levelno >= logging.ERROR:
        return "error", 17
    if levelno >= logging.WARNING:
        return "warn", 13
    if levelno >= logging.INFO:
        return "info", 9
    if levelno >= logging.DEBUG:
        return "debug", 5
    return "default", 0


__all__ = [
    "BreadcrumbHandler",
    "EventHandler",
    "LoggingIntegration",
    "SentryHandler",
    "SentryLogsHandler",
    "ignore_logger",
    "ignore_logger_for_sentry_logs",
    "unignore_logger",
    "unignore_logger_for_sentry_logs",
]
