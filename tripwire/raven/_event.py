"""raven's event dicts to the modern protocol: legacy interface keys, levels, messages.

raven 6 sent events to the ``store`` endpoint with keys such as
``"sentry.interfaces.Http"`` and integer levels. Events built here go through
tripwire's pipeline into an envelope, so they use the keys Relay documents today
(``request``, ``logentry``, ...) and a string level.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Optional

from tripwire._clock import format_timestamp, to_epoch

# Legacy interface names (short and full dotted forms) and the event key they became.
LEGACY_KEYS = {
    "sentry.interfaces.Message": "logentry",
    "sentry.interfaces.message.Message": "logentry",
    "sentry.interfaces.Exception": "exception",
    "sentry.interfaces.exception.Exception": "exception",
    "sentry.interfaces.Stacktrace": "stacktrace",
    "sentry.interfaces.stacktrace.Stacktrace": "stacktrace",
    "sentry.interfaces.Http": "request",
    "sentry.interfaces.http.Http": "request",
    "sentry.interfaces.User": "user",
    "sentry.interfaces.user.User": "user",
    "sentry.interfaces.Template": "template",
    "sentry.interfaces.template.Template": "template",
    "sentry.interfaces.Breadcrumbs": "breadcrumbs",
    "sentry.interfaces.breadcrumbs.Breadcrumbs": "breadcrumbs",
    "sentry.interfaces.Csp": "csp",
    "sentry.interfaces.Threads": "threads",
    "sentry.interfaces.DebugMeta": "debug_meta",
    "sentry.interfaces.Contexts": "contexts",
    "sentry.interfaces.Sdk": "sdk",
}
_QUERY_KEYS = ("sentry.interfaces.Query", "sentry.interfaces.query.Query")
# raven-only keys with no place in a modern event (the envelope names the project).
_DROPPED_KEYS = ("project", "repos", "public_key")

_INT_LEVELS = ((10, "debug"), (20, "info"), (30, "warning"), (40, "error"))
_LEVEL_NAMES = {
    "debug": "debug",
    "info": "info",
    "warning": "warning",
    "warn": "warning",
    "error": "error",
    "fatal": "fatal",
    "critical": "fatal",
    "notset": "debug",
    "log": "info",
}


def normalize_level(value: Any, default: str = "error") -> str:
    """A protocol level from a logging level number or name (`default` when unknown)."""
    if isinstance(value, bool):
        return default
    if isinstance(value, int):
        for limit, name in _INT_LEVELS:
            if value <= limit:
                return name
        return "fatal"
    if isinstance(value, str):
        text = value.strip().lower()
        if text.isdigit():
            return normalize_level(int(text), default)
        return _LEVEL_NAMES.get(text, default)
    return default


def format_message(message: str, params: Any) -> str:
    """``message % params`` as logging does it; the message itself if that fails."""
    if not params:
        return message
    try:
        if isinstance(params, Mapping):
            return message % params
        return message % tuple(params)
    except Exception:
        return message


def _as_exception(value: Any) -> Any:
    if isinstance(value, list):
        return {"values": value}
    if isinstance(value, dict) and "values" not in value:
        return {"values": [value]}
    return value


def _as_logentry(value: Any) -> Any:
    if isinstance(value, str):
        return {"message": value}
    return dict(value) if isinstance(value, Mapping) else value


def modernize(data: Mapping[Any, Any]) -> dict[str, Any]:
    """A copy of `data` with legacy interface keys moved to their modern names.

    When both forms are present the modern key wins, the legacy dict filling the gaps.
    """
    out: dict[str, Any] = {}
    legacy: list[tuple[str, Any]] = []
    query: Any = None
    for key, value in data.items():
        if not isinstance(key, str):
            continue
        target = LEGACY_KEYS.get(key)
        if target is not None:
            legacy.append((target, value))
        elif key in _QUERY_KEYS:
            query = value
        elif key not in _DROPPED_KEYS:
            out[key] = value
    for target, value in legacy:
        if target == "exception":
            value = _as_exception(value)
        elif target == "logentry":
            value = _as_logentry(value)
        current = out.get(target)
        if current is None:
            out[target] = value
        elif isinstance(current, dict) and isinstance(value, dict):
            out[target] = {**value, **current}
    if "exception" in out:
        out["exception"] = _as_exception(out["exception"])
    if isinstance(query, Mapping):
        # The Query interface is gone: the statement is the message, the rest a context.
        contexts = dict(out.get("contexts") or {})
        contexts.setdefault("query", {k: v for k, v in query.items() if v is not None})
        out["contexts"] = contexts
    return out


def finish(event: dict[str, Any]) -> dict[str, Any]:
    """Make `event` (already modernized) protocol-clean in place; returns it."""
    event["level"] = normalize_level(event.get("level"))
    logentry = event.get("logentry")
    if isinstance(logentry, Mapping):
        logentry = event["logentry"] = dict(logentry)
        template = logentry.get("message")
        params = logentry.get("params")
        if params is not None and not isinstance(params, (list, Mapping)):
            params = logentry["params"] = list(params) if isinstance(params, tuple) else [params]
        if not params:
            logentry.pop("params", None)
        message = event.pop("message", None)
        if not logentry.get("formatted"):
            if isinstance(template, str) and params:
                logentry["formatted"] = format_message(template, params)
            elif isinstance(message, str) and message != template:
                logentry["formatted"] = message
            else:
                logentry.pop("formatted", None)
        # "message" is an alias of "logentry" on the server: only one of them may be sent.
    elif "message" in event and not isinstance(event["message"], str):
        message = event["message"]
        if isinstance(message, Mapping):
            event["logentry"] = dict(message)
            del event["message"]
        elif message is None:
            del event["message"]
        else:
            event["message"] = str(message)
    if "logentry" not in event and "message" not in event:
        # A query event without a message (legacy data): its statement is the message.
        contexts = event.get("contexts")
        query = contexts.get("query") if isinstance(contexts, Mapping) else None
        if isinstance(query, Mapping) and query.get("query"):
            event["message"] = str(query["query"])
    timestamp = event.get("timestamp")
    if timestamp is not None and not isinstance(timestamp, str):
        epoch = to_epoch(timestamp)
        if epoch is not None:
            event["timestamp"] = format_timestamp(epoch)
        else:
            del event["timestamp"]
    for key in ("culprit", "logger", "server_name", "release", "environment", "fingerprint"):
        if key in event and event[key] is None:
            del event[key]
    return event


def stacktraces(event: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every stack trace in `event`: the event's own, its exceptions' and its threads'."""
    top = event.get("stacktrace")
    if isinstance(top, dict):
        yield top
    for key in ("exception", "threads"):
        section = event.get(key)
        values = section.get("values") if isinstance(section, dict) else section
        if not isinstance(values, list):
            continue
        for value in values:
            stacktrace = value.get("stacktrace") if isinstance(value, dict) else None
            if isinstance(stacktrace, dict):
                yield stacktrace


def _shorten(value: Any, strings: int, lists: int, depth: int) -> Any:
    if isinstance(value, str):
        return value[:strings] if len(value) > strings else value
    if depth >= 8:
        return value
    if isinstance(value, (list, tuple)):
        return [_shorten(item, strings, lists, depth + 1) for item in value[:lists]]
    if isinstance(value, dict):
        return {k: _shorten(v, strings, lists, depth + 1) for k, v in value.items()}
    return value


def shorten(event: dict[str, Any], strings: int, lists: int) -> None:
    """Apply raven's ``string_max_length`` / ``list_max_length`` in place.

    As raven, only the data that is rendered from user values is cut: ``extra``,
    message parameters and frame variables (messages and exception values are not).
    """
    extra = event.get("extra")
    if isinstance(extra, dict):
        event["extra"] = _shorten(extra, strings, lists, 0)
    logentry = event.get("logentry")
    if isinstance(logentry, dict) and isinstance(logentry.get("params"), (list, tuple, dict)):
        logentry["params"] = _shorten(logentry["params"], strings, lists, 0)
    for stacktrace in stacktraces(event):
        frames = stacktrace.get("frames")
        for frame in frames if isinstance(frames, list) else ():
            if isinstance(frame, dict) and isinstance(frame.get("vars"), dict):
                frame["vars"] = _shorten(frame["vars"], strings, lists, 0)


def wire_breadcrumb(crumb: Mapping[str, Any]) -> dict[str, Any]:
    """A raven buffer breadcrumb (epoch timestamp, None fields) in the protocol's form."""
    out: dict[str, Any] = {}
    for key, value in crumb.items():
        if value is None:
            continue
        if key == "timestamp":
            epoch = to_epoch(value)
            if epoch is None:
                continue
            value = format_timestamp(epoch)
        elif key == "level":
            value = normalize_level(value, "info")
        out[key] = value
    return out


def resolve_exc_info(exc_info: Any) -> Optional[tuple[Any, Any, Any]]:
    """A complete exc_info tuple from what raven accepts (also an exception); else None."""
    import sys

    if exc_info is None or exc_info is True:
        exc_info = sys.exc_info()
    elif isinstance(exc_info, BaseException):
        exc_info = (type(exc_info), exc_info, exc_info.__traceback__)
    if not isinstance(exc_info, tuple) or len(exc_info) != 3:
        return None
    exc_type, value, tb = exc_info
    if value is None and isinstance(exc_type, type) and issubclass(exc_type, BaseException):
        try:
            value = exc_type()
        except Exception:
            return None
    if not isinstance(value, BaseException):
        return None
    return (type(value) if exc_type is None else exc_type, value, tb)
