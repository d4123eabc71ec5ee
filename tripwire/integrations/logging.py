"""Standard-library logging: records become breadcrumbs, error events and structured logs.

As sentry_sdk 2.x, by default a record at INFO or above becomes a breadcrumb and one
at ERROR or above also becomes an event (an exception event when it carries
``exc_info``). Records at ``sentry_logs_level`` or above become structured logs when
``enable_logs=True``, or with ``capture_sentry_logs=True`` whatever ``enable_logs`` says.
Records are taken from `logging.Logger.callHandlers` after the logger's own handlers
ran, so loggers with ``propagate=False`` are seen too, and no handler is added to any
logger.

Levels may be given as numbers or as the level names `logging` knows ("ERROR";
not "error", which raises `ValueError` as it does in `logging.Handler`).

Loggers named in `_IGNORED_LOGGERS` (a plain mutable set, fnmatch patterns allowed,
compared with the record's logger name stripped of surrounding blanks) are never
captured as events or breadcrumbs; `_IGNORED_LOGGERS_SENTRY_LOGS` does the same for
structured logs.

Two kinds of record are never captured: those of the SDK's own logger
(``tripwire.errors``) and any record produced while the SDK itself is running on
that thread (`tripwire._log.suppressed`), e.g. by a ``before_send`` hook or a
``__repr__`` that logs. Capturing those could loop forever.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterable
from collections.abc import Set as AbstractSet
from datetime import datetime, timezone
from fnmatch import fnmatch
from typing import TYPE_CHECKING, Any

from tripwire._log import _state as _suppress_state
from tripwire._log import suppress, suppressed
from tripwire.integrations import Integration
from tripwire.logger import capture_log, format_attribute, logs_enabled, parameter_value
from tripwire.scope._breadcrumbs import record_breadcrumb
from tripwire.scope._current import _global, get_client, get_current_scope, get_isolation_scope

if TYPE_CHECKING:
    from collections.abc import MutableMapping

    from typing_extensions import Self

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

# Event levels the protocol knows; any other level name leaves the event's default.
_EVENT_LEVELS = frozenset({"debug", "info", "warning", "error", "critical", "fatal"})

# Loggers whose records would be produced by sending: capturing them could loop.
_DEFAULT_IGNORED = ("tripwire.errors", "urllib3.connectionpool", "urllib3.connection")

# Where file names are case-insensitive, fnmatch compares names case-insensitively too,
# so every entry has to go through it; elsewhere a name without wildcards is equality.
_FOLD_CASE = os.path.normcase("A") != "A"


def _is_pattern(name: object) -> bool:
    return _FOLD_CASE or not isinstance(name, str) or any(c in name for c in "*?[")


class _LoggerNames(set[Any]):
    """A set of logger names and fnmatch patterns that keeps its patterns apart.

    It is the public mutable set (``_IGNORED_LOGGERS.add(...)``, ``|=``, ``discard``
    all work); each mutation refreshes the pattern tuple, so a record costs one
    hash lookup unless some entry is a pattern.
    """

    __slots__ = ("patterns",)

    def __init__(self, names: Iterable[Any] = ()) -> None:
        super().__init__(names)
        self.patterns: tuple[Any, ...] = ()
        self._refresh()

    def _refresh(self) -> None:
        self.patterns = tuple(n for n in self if _is_pattern(n))

    def ignores(self, name: str) -> bool:
        """Whether `name` (already stripped) is one of the names or matches a pattern."""
        if name in self:
            return True
        # fnmatch raises for a non-str entry, as it does in sentry_sdk's handlers.
        return bool(self.patterns) and any(fnmatch(name, p) for p in self.patterns)

    def add(self, name: Any) -> None:
        super().add(name)
        if _is_pattern(name):
            self._refresh()

    def discard(self, name: Any) -> None:
        super().discard(name)
        self._refresh()

    def remove(self, name: Any) -> None:
        super().remove(name)
        self._refresh()

    def pop(self) -> Any:
        found = super().pop()
        self._refresh()
        return found

    def clear(self) -> None:
        super().clear()
        self._refresh()

    def update(self, *others: Iterable[Any]) -> None:
        super().update(*others)
        self._refresh()

    def difference_update(self, *others: Iterable[Any]) -> None:
        super().difference_update(*others)
        self._refresh()

    def intersection_update(self, *others: Iterable[Any]) -> None:
        super().intersection_update(*others)
        self._refresh()

    def symmetric_difference_update(self, other: Iterable[Any]) -> None:
        super().symmetric_difference_update(other)
        self._refresh()

    # mypy compares these with the inherited binary operators (which return a new
    # set); they keep set's own in-place signatures.
    def __ior__(self, other: AbstractSet[Any]) -> Self:  # type: ignore[misc]
        super().__ior__(other)
        self._refresh()
        return self

    def __iand__(self, other: AbstractSet[Any]) -> Self:  # type: ignore[misc]
        super().__iand__(other)
        self._refresh()
        return self

    def __isub__(self, other: AbstractSet[Any]) -> Self:  # type: ignore[misc]
        super().__isub__(other)
        self._refresh()
        return self

    def __ixor__(self, other: AbstractSet[Any]) -> Self:  # type: ignore[misc]
        super().__ixor__(other)
        self._refresh()
        return self


# The same objects for the life of the process: packages import and mutate them
# (structlog-sentry reads `_IGNORED_LOGGERS`).
_IGNORED_LOGGERS = _LoggerNames(_DEFAULT_IGNORED)
_IGNORED_LOGGERS_SENTRY_LOGS = _LoggerNames(_DEFAULT_IGNORED)


def ignore_logger(name: str) -> None:
    """Never turn records of logger `name` into events or breadcrumbs (fnmatch patterns work).

    `name` is kept as given, while records are matched by their logger's name with
    surrounding blanks stripped (as sentry_sdk 2.x). Structured logs are controlled
    separately by `ignore_logger_for_sentry_logs`.
    """
    _IGNORED_LOGGERS.add(name)


def unignore_logger(name: str) -> None:
    """Undo `ignore_logger(name)`."""
    _IGNORED_LOGGERS.discard(name)


def ignore_logger_for_sentry_logs(name: str) -> None:
    """Never turn records of logger `name` into structured logs."""
    _IGNORED_LOGGERS_SENTRY_LOGS.add(name)


def unignore_logger_for_sentry_logs(name: str) -> None:
    """Undo `ignore_logger_for_sentry_logs(name)`."""
    _IGNORED_LOGGERS_SENTRY_LOGS.discard(name)


def _restore_ignored() -> None:
    global _live_patch
    _live_patch = None
    for names in (_IGNORED_LOGGERS, _IGNORED_LOGGERS_SENTRY_LOGS):
        names.clear()
        names.update(_DEFAULT_IGNORED)
    LoggingIntegration.capture_sentry_logs = _UNSET


_UNSET: Any = object()
_live_patch: object | None = None


class LoggingIntegration(Integration):
    """Captures standard-library log records (see the module docstring).

    Args:
        level: Records at this level or above become breadcrumbs (None: none do).
        event_level: Records at this level or above become events (None: none do).
        sentry_logs_level: Records at this level or above become structured logs
            (None: none do).
        capture_sentry_logs: True sends structured logs from logging even without
            ``enable_logs``; False never does. As in sentry_sdk 2.x this is a class
            attribute: the integration constructed last decides.

    Raises:
        ValueError: A level name `logging` does not know.
        TypeError: A level that is neither a number nor a string.
    """

    identifier = "logging"
    capture_sentry_logs: Any = _UNSET

    def __init__(
        self,
        level: int | str | None = DEFAULT_LEVEL,
        event_level: int | str | None = DEFAULT_EVENT_LEVEL,
        sentry_logs_level: int | str | None = DEFAULT_LEVEL,
        capture_sentry_logs: bool | Any = _UNSET,
    ) -> None:
        LoggingIntegration.capture_sentry_logs = capture_sentry_logs
        # Real handlers, as in sentry_sdk: `logging` checks the levels, and code that
        # reads or changes `integration._handler.level` keeps working.
        self._handler: EventHandler | None = None
        self._breadcrumb_handler: BreadcrumbHandler | None = None
        self._sentry_logs_handler: SentryLogsHandler | None = None
        self._logs_cache: tuple[BaseClient, bool] | None = None
        if level is not None:
            self._breadcrumb_handler = BreadcrumbHandler(level=level)
        if sentry_logs_level is not None:
            self._sentry_logs_handler = SentryLogsHandler(level=sentry_logs_level)
        if event_level is not None:
            self._handler = EventHandler(level=event_level)

    @staticmethod
    def setup_once() -> None:
        """Patch `logging.Logger.callHandlers` (undone by `tripwire.testing.reset`)."""
        import functools

        from tripwire.integrations._patch import on_undo, patch

        global _live_patch
        original = logging.Logger.callHandlers
        token = object()

        @functools.wraps(original)
        def callHandlers(self: logging.Logger, record: logging.LogRecord) -> None:
            try:
                original(self, record)
            finally:
                # Only the live patch captures: an older one that `reset()` could not
                # remove (another library wrapped it) just passes records through.
                if _live_patch is token:
                    try:
                        _dispatch(record)
                    except Exception:
                        # Logging about this failure would come straight back here.
                        pass

        _live_patch = token
        patch(logging.Logger, "callHandlers", callHandlers)
        # `tripwire.testing.reset()` means the just-imported state: default ignore lists.
        on_undo(_restore_ignored)

    def _handle_record(self, record: logging.LogRecord) -> None:
        """Events and breadcrumbs for `record` (its logger is not ignored)."""
        handler = self._handler
        if handler is not None and record.levelno >= handler.level:
            handler.handle(record)
        crumbs = self._breadcrumb_handler
        if crumbs is not None and record.levelno >= crumbs.level:
            crumbs.handle(record)

    def _handle_sentry_logs_record(self, record: logging.LogRecord) -> None:
        """A structured log for `record` (its logger is not ignored for logs)."""
        handler = self._sentry_logs_handler
        if handler is not None and record.levelno >= handler.level:
            handler.handle(record)


def _dispatch(record: logging.LogRecord) -> None:
    """What the patched `callHandlers` does with each record, once its handlers ran.

    The work of the integration's three handlers (`Handler.handle` on each, as in
    sentry_sdk), done inline: one formatting and one ``extra`` pass per record, no
    handler locks. It runs for every record of every logger, so it is kept flat.
    """
    state = _suppress_state
    depth = getattr(state, "depth", 0)
    if depth:
        return  # produced by the SDK itself (a hook, a __repr__): see `suppressed()`
    name = record.name.strip()
    events = name not in _IGNORED_LOGGERS
    logs = name not in _IGNORED_LOGGERS_SENTRY_LOGS
    if not (events or logs):
        return
    client = get_client()
    integration = client.integrations.get("logging")
    if type(integration) is not LoggingIntegration and not isinstance(
        integration, LoggingIntegration
    ):
        return
    levelno = record.levelno
    event_handler = integration._handler
    crumb_handler = integration._breadcrumb_handler
    logs_handler = integration._sentry_logs_handler
    wants_event = events and event_handler is not None and levelno >= event_handler.level
    wants_crumb = events and crumb_handler is not None and levelno >= crumb_handler.level
    wants_log = logs and logs_handler is not None and levelno >= logs_handler.level
    if wants_log:
        capture = LoggingIntegration.capture_sentry_logs
        if capture is _UNSET:
            cached = integration._logs_cache  # a client's options do not change
            if cached is None or cached[0] is not client:
                cached = integration._logs_cache = (client, logs_enabled(client))
            wants_log = cached[1]
        else:
            wants_log = capture is True
    if not (wants_event or wants_crumb or wants_log):
        return
    if (
        (wants_event and (event_handler.filters or event_handler.formatter is not None))  # type: ignore[union-attr]
        or (wants_crumb and (crumb_handler.filters or crumb_handler.formatter is not None))  # type: ignore[union-attr]
        or (wants_log and (logs_handler.filters or logs_handler.formatter is not None))  # type: ignore[union-attr]
    ):
        # Someone gave a handler filters or a formatter: `Handler.handle` honours them.
        if wants_event or wants_crumb:
            integration._handle_record(record)
        if wants_log:
            integration._handle_sentry_logs_record(record)
        return
    if (
        (wants_event or wants_crumb)
        and _IGNORED_LOGGERS.patterns
        and _IGNORED_LOGGERS.ignores(name)
    ):
        wants_event = wants_crumb = False
    if wants_log:
        if _IGNORED_LOGGERS_SENTRY_LOGS.patterns and _IGNORED_LOGGERS_SENTRY_LOGS.ignores(name):
            wants_log = False
        else:
            wants_log = client.transport is not None and client.is_active()
    if not (wants_event or wants_crumb or wants_log):
        return
    # Marked as inside the SDK (`suppress`, inlined): formatting runs the arguments'
    # __str__/__repr__, and a record they log must not come back here.
    state.depth = 1
    try:
        # A record whose arguments do not fit its message is not captured at all:
        # formatting fails before anything is built (as in sentry_sdk's handlers).
        record.message = record.getMessage()
        if record.exc_info and not record.exc_text:
            record.exc_text = _FORMATTER.formatException(record.exc_info)
        extras = _extras(record)
        if wants_event:
            try:
                _emit_event(client, record, extras)
            except Exception:
                pass
        if wants_crumb:
            try:
                _emit_breadcrumb(client, record, extras)
            except Exception:
                pass
        if wants_log:
            _emit_log(client, record, extras)
    finally:
        state.depth = 0


# -- handlers --------------------------------------------------------------------------------


def _format(handler: logging.Handler | None, record: logging.LogRecord) -> None:
    """What `Handler.format` leaves on the record: ``message`` (and ``exc_text``)."""
    if handler is not None and handler.formatter is not None:
        handler.format(record)
        return
    record.message = record.getMessage()
    if record.exc_info and not record.exc_text:
        record.exc_text = _FORMATTER.formatException(record.exc_info)


_FORMATTER = logging.Formatter()


class _BaseHandler(logging.Handler):
    # Attributes every LogRecord has (and a few that formatting adds): not user "extra".
    COMMON_RECORD_ATTRS = frozenset(
        {
            *vars(logging.LogRecord("", 0, "", 0, "", (), None)),
            "message",
            "stack",
            "tags",
            "taskName",
        }
    )

    def _logging_to_event_level(self, record: logging.LogRecord) -> str:
        return _level_name(record)

    def _extra_from_record(self, record: logging.LogRecord) -> MutableMapping[str, object]:
        return _extras(record)


class EventHandler(_BaseHandler):
    """A `logging.Handler` that captures each record it handles as an event.

    For handlers added by hand; the integration does not need one.
    """

    def _can_record(self, record: logging.LogRecord) -> bool:
        return not _IGNORED_LOGGERS.ignores(record.name.strip())

    def emit(self, record: logging.LogRecord) -> None:
        """Capture `record` as an event."""
        if suppressed():
            return
        with suppress:
            try:
                _format(self, record)
                if self._can_record(record):
                    _emit_event(get_client(), record, _extras(record))
            except Exception:
                pass


SentryHandler = EventHandler


class BreadcrumbHandler(_BaseHandler):
    """A `logging.Handler` that records each record it handles as a breadcrumb."""

    def _can_record(self, record: logging.LogRecord) -> bool:
        return not _IGNORED_LOGGERS.ignores(record.name.strip())

    def emit(self, record: logging.LogRecord) -> None:
        """Record `record` as a breadcrumb."""
        if suppressed():
            return
        with suppress:
            try:
                _format(self, record)
                if self._can_record(record):
                    _emit_breadcrumb(get_client(), record, _extras(record))
            except Exception:
                pass

    def _breadcrumb_from_record(self, record: logging.LogRecord) -> dict[str, Any]:
        return _breadcrumb(record, _extras(record))


class SentryLogsHandler(_BaseHandler):
    """A `logging.Handler` that sends each record it handles as a structured log.

    As sentry_sdk 2.x: only with ``enable_logs=True`` (or the ``_experiments`` flag),
    or when the last `LoggingIntegration` was built with ``capture_sentry_logs=True``;
    never when it was built with ``capture_sentry_logs=False``.
    """

    def _can_record(self, record: logging.LogRecord) -> bool:
        return not _IGNORED_LOGGERS_SENTRY_LOGS.ignores(record.name.strip())

    def emit(self, record: logging.LogRecord) -> None:
        """Send `record` as a structured log."""
        if suppressed():
            return
        with suppress:
            try:
                if not self._can_record(record):
                    return
                client = get_client()
                if client.is_active() and _wants_logs(client):
                    _format(self, record)
                    _emit_log(client, record, _extras(record))
            except Exception:
                pass


# -- record -> payload ---------------------------------------------------------------------


def _emit_event(client: BaseClient, record: logging.LogRecord, extras: dict[str, Any]) -> None:
    """Capture the (formatted) `record` as an event."""
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
    level = _level_name(record)
    if level in _EVENT_LEVELS:
        event["level"] = level
    event["logger"] = record.name
    message: Any = record.msg
    params: Any = record.args
    if (
        sys.version_info < (3, 11)
        and record.name == "py.warnings"
        and message == "%s"
        and isinstance(params, tuple)
        and params
    ):
        # `warnings` on Python < 3.11 logs "%s" with the warning text as its argument.
        message, params = params[0], ()
    event["logentry"] = {
        "message": _to_str(message),
        "formatted": record.getMessage(),
        "params": list(params) if isinstance(params, tuple) else params,
    }
    event["extra"] = dict(extras)  # its own: processors may change it
    from tripwire.capture import capture_event

    capture_event(get_current_scope(), event, hint, None, {}, built_by_sdk=True)


def _breadcrumb(record: logging.LogRecord, extras: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "log",
        "level": _level_name(record),
        "category": record.name,
        "message": record.message,
        "timestamp": datetime.fromtimestamp(record.created, timezone.utc),
        "data": dict(extras),
    }


def _emit_breadcrumb(client: BaseClient, record: logging.LogRecord, extras: dict[str, Any]) -> None:
    """Record the (formatted) `record` as a breadcrumb."""
    scope = get_isolation_scope()
    fast = _global.breadcrumb_client  # recording, no before_breadcrumb: see api.add_breadcrumb
    if fast is not None and fast is client:
        crumb = {
            "type": "log",
            "level": LOGGING_TO_EVENT_LEVEL.get(record.levelno) or _level_name(record),
            "category": record.name,
            "message": record.message,
            # A float: with no hook to see it, the datetime would only be converted back.
            "timestamp": record.created,
            "data": dict(extras) if extras else {},
        }
        scope.append_breadcrumb(crumb, fast._max_breadcrumbs)
        return
    # As sentry_sdk: before_breadcrumb sees an aware datetime and the record as hint.
    # `crumb` is new and ours: handed over as the keyword dict, it is not copied again.
    record_breadcrumb(scope, None, {"log_record": record}, _breadcrumb(record, extras))


def _wants_logs(client: BaseClient) -> bool:
    if client.transport is None:
        return False
    capture = LoggingIntegration.capture_sentry_logs
    if capture is True:
        return True
    return capture is _UNSET and logs_enabled(client)


def _emit_log(client: BaseClient, record: logging.LogRecord, extras: dict[str, Any]) -> None:
    """Send the (formatted) `record` as a structured log."""
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
        if isinstance(args, (tuple, dict)) and isinstance(record.msg, str):
            attributes["sentry.message.template"] = record.msg
    if record.lineno:
        attributes["code.line.number"] = record.lineno
    pathname = record.pathname
    if pathname:
        root = client.options.get("project_root")
        if isinstance(root, str) and pathname.startswith(root):
            pathname = pathname[len(root) + 1 :]
        attributes["code.file.path"] = pathname
    attributes.update(
        (attribute, value)
        for attribute, value in (
            ("code.function.name", record.funcName),
            ("thread.id", record.thread),
            ("thread.name", record.threadName),
            ("process.pid", record.process),
            ("process.executable.name", record.processName),
            ("logger.name", record.name),
        )
        if value
    )
    text, number = _severity(record.levelno)
    capture_log(client, text, number, record.message, attributes, timestamp=record.created)


def _level_name(record: logging.LogRecord) -> str:
    found = LOGGING_TO_EVENT_LEVEL.get(record.levelno)
    if found is not None:
        return found
    levelname = record.levelname
    return levelname.lower() if levelname else ""


_RECORD_ATTRS = _BaseHandler.COMMON_RECORD_ATTRS


# Record attribute names (in order) -> the ones that are user "extra". Records from
# one call site have the same attributes in the same order, so this stays small.
_extra_keys: dict[tuple[str, ...], tuple[str, ...]] = {}


def _extras(record: logging.LogRecord) -> dict[str, Any]:
    """The record's attributes that `logging` does not set itself (``extra=...``)."""
    attributes = record.__dict__
    names = tuple(attributes)
    keys = _extra_keys.get(names)
    if keys is None:
        keys = tuple(key for key in names if key not in _RECORD_ATTRS and not _private(key))
        if len(_extra_keys) >= 512:
            _extra_keys.clear()
        _extra_keys[names] = keys
    if not keys:
        return {}
    return {key: attributes[key] for key in keys}


def _private(key: object) -> bool:
    # Non-str keys can only get there through `record.__dict__`; they are kept.
    return isinstance(key, str) and key.startswith("_")


def _to_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    try:
        return str(value)
    except Exception:
        return "<unprintable>"


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
    "DEFAULT_EVENT_LEVEL",
    "DEFAULT_LEVEL",
    "LOGGING_TO_EVENT_LEVEL",
    "SEVERITY_TO_OTEL_SEVERITY",
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
