"""Breadcrumbs the raven 6.x way (`raven.breadcrumbs`).

Each raven `Context` keeps a bounded `BreadcrumbBuffer` per thread. `record()` writes
to every context active on the calling thread; the logging hook
(`install_logging_hook`, installed by each `Client` unless told otherwise) turns every
log record handled on such a thread into a breadcrumb.

Deliberate difference from raven 6.10: the hook sees the records a logger actually
handles (at or above its level); raven also recorded disabled debug calls.
"""

from __future__ import annotations

import logging
import threading
from collections import deque
from typing import Any, Callable, Optional, Union

from tripwire._clock import clock, to_epoch
from tripwire._log import logger, suppressed

# Special handlers: callback(logger, level, msg, args, kwargs) -> True to skip the crumb.
SpecialHandler = Callable[[logging.Logger, int, Any, Any, dict[str, Any]], Any]

_MESSAGE_MAX_LENGTH = 1024

# Per thread, the raven contexts active there (`.contexts`, a WeakSet); see context.py.
_active = threading.local()


class BreadcrumbBuffer:
    """The last `limit` breadcrumbs of one thread of one context.

    Args:
        limit: How many breadcrumbs are kept (older ones fall off).
        message_max_length: Longer messages are cut when the buffer is read.
    """

    __slots__ = ("_crumbs", "limit", "message_max_length")

    def __init__(self, limit: int = 100, message_max_length: int = _MESSAGE_MAX_LENGTH) -> None:
        self.limit = limit
        self.message_max_length = message_max_length
        # deque.append is atomic: no lock even if another thread records here.
        self._crumbs: deque[tuple[dict[str, Any], Optional[Callable[..., Any]]]] = deque(
            maxlen=max(int(limit), 0)
        )

    def record(
        self,
        timestamp: Any = None,
        level: Optional[str] = None,
        message: Optional[str] = None,
        category: Optional[str] = None,
        data: Optional[dict[str, Any]] = None,
        type: Optional[str] = None,
        processor: Optional[Callable[[dict[str, Any]], Any]] = None,
    ) -> None:
        """Add a breadcrumb; `processor` may edit it (in place) when it is read."""
        epoch = to_epoch(timestamp) if timestamp is not None else None
        crumb = {
            "type": type or "default",
            "timestamp": epoch if epoch is not None else clock.now(),
            "level": level,
            "message": message,
            "category": category,
            "data": data,
        }
        self._crumbs.append((crumb, processor))

    def clear(self) -> None:
        """Forget all breadcrumbs."""
        self._crumbs.clear()

    def get_buffer(self) -> list[dict[str, Any]]:
        """The breadcrumbs, oldest first, with their processors applied."""
        out = []
        for crumb, processor in list(self._crumbs):
            item = dict(crumb)
            if processor is not None:
                try:
                    processor(item)
                except Exception:
                    logger.debug("breadcrumb processor %r failed", processor, exc_info=True)
            message = item.get("message")
            if message is not None and not isinstance(message, str):
                message = item["message"] = _safe_str(message)
            if message is not None and len(message) > self.message_max_length:
                item["message"] = message[: self.message_max_length]
            out.append(item)
        return out


class BlackholeBreadcrumbBuffer(BreadcrumbBuffer):
    """A buffer that keeps nothing (``enable_breadcrumbs=False``)."""

    __slots__ = ()

    def record(self, *args: Any, **kwargs: Any) -> None:
        """Drop the breadcrumb."""


def make_buffer(enabled: bool = True) -> BreadcrumbBuffer:
    """A buffer, or one that drops everything when `enabled` is False."""
    return BreadcrumbBuffer() if enabled else BlackholeBreadcrumbBuffer()


def record(
    message: Optional[str] = None,
    timestamp: Any = None,
    level: Optional[str] = None,
    category: Optional[str] = None,
    data: Optional[dict[str, Any]] = None,
    type: Optional[str] = None,
    processor: Optional[Callable[[dict[str, Any]], Any]] = None,
) -> None:
    """Record a breadcrumb in every context active on this thread (never raises)."""
    try:
        contexts = getattr(_active, "contexts", None)
        if not contexts:
            return
        if timestamp is None:
            timestamp = clock.now()
        for context in list(contexts):
            context.breadcrumbs.record(
                timestamp=timestamp,
                level=level,
                message=message,
                category=category,
                data=data,
                type=type,
                processor=processor,
            )
    except Exception:
        logger.debug("raven breadcrumbs.record failed", exc_info=True)


def record_breadcrumb(type: str, *args: Any, **kwargs: Any) -> None:
    """Deprecated raven spelling of `record(type=...)`."""
    kwargs["type"] = type
    record(*args, **kwargs)


# -- the logging hook -----------------------------------------------------------------------

_lock = threading.Lock()
_state: dict[str, Any] = {"installed": False}
_ignored: dict[str, Optional[int]] = {}
_special: dict[str, SpecialHandler] = {}
_generic: list[SpecialHandler] = []
# LogRecord attributes that are not user data (anything else came in through `extra=`).
_RECORD_KEYS = frozenset(
    (
        *vars(logging.LogRecord("", 0, "", 0, "", (), None)),
        "message",
        "asctime",
        "taskName",
    )
)
_OWN_LOGGERS = ("tripwire", "sentry.errors")


def _logger_name(name_or_logger: Union[str, logging.Logger]) -> str:
    return name_or_logger if isinstance(name_or_logger, str) else name_or_logger.name


def ignore_logger(
    name_or_logger: Union[str, logging.Logger], allow_level: Optional[int] = None
) -> None:
    """Record no breadcrumbs for this logger (unless the level is at least `allow_level`)."""
    _ignored[_logger_name(name_or_logger)] = allow_level


def register_special_log_handler(
    name_or_logger: Union[str, logging.Logger], callback: SpecialHandler
) -> None:
    """Route this logger's records to `callback(logger, level, msg, args, kwargs)`.

    A truthy return value means the callback handled the record: no default breadcrumb.
    """
    _special[_logger_name(name_or_logger)] = callback


def register_logging_handler(callback: SpecialHandler) -> None:
    """Like `register_special_log_handler`, for the records of every logger."""
    _generic.append(callback)


def install_logging_hook() -> None:
    """Turn handled log records into breadcrumbs (once per process; undone by testing.reset)."""
    with _lock:
        if _state["installed"]:
            return
        from tripwire.integrations._patch import on_undo, patch

        original = logging.Logger.callHandlers

        def callHandlers(self: logging.Logger, record: logging.LogRecord) -> None:
            if getattr(_active, "contexts", None):
                _record_log(self, record)
            original(self, record)

        patch(logging.Logger, "callHandlers", callHandlers)
        on_undo(_uninstalled)
        _state["installed"] = True


def _uninstalled() -> None:
    _state["installed"] = False


def hook_libraries(libraries: Any) -> None:
    """Not supported: raven's HTTP-library breadcrumb patches are not provided (logged)."""
    if libraries:
        logger.info("raven hook_libraries(%r) is not supported by tripwire; ignored", libraries)


def _safe_str(value: object) -> str:
    try:
        return str(value)
    except Exception:
        return "<unprintable>"


def _record_log(log: logging.Logger, log_record: logging.LogRecord) -> None:
    try:
        name = log_record.name
        if suppressed() or name.startswith(_OWN_LOGGERS):
            return
        if name in _ignored:
            allow = _ignored[name]
            if allow is None or log_record.levelno < allow:
                return
        extra = {k: v for k, v in vars(log_record).items() if k not in _RECORD_KEYS}
        level, msg, args = log_record.levelno, log_record.msg, log_record.args
        kwargs = {"exc_info": log_record.exc_info, "extra": extra}
        special = _special.get(name)
        if special is not None and special(log, level, msg, args, kwargs):
            return
        for callback in _generic:
            if callback(log, level, msg, args, kwargs):
                return
        try:
            message = log_record.getMessage()
        except Exception:
            message = _safe_str(msg)
        record(
            message=message,
            level=log_record.levelname.lower(),
            category=name,
            data=extra,
            timestamp=log_record.created,
        )
    except Exception:
        pass  # a breadcrumb is never worth breaking the application's logging


__all__ = [
    "BlackholeBreadcrumbBuffer",
    "BreadcrumbBuffer",
    "hook_libraries",
    "ignore_logger",
    "install_logging_hook",
    "make_buffer",
    "record",
    "record_breadcrumb",
    "register_logging_handler",
    "register_special_log_handler",
]
