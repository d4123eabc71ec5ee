"""Structured logs, as `sentry_sdk.logger`: ``tripwire.logger.info("Hi {name}", name="Ada")``.

As sentry_sdk 2.75, these calls record a log whenever the SDK is initialised,
whatever ``enable_logs`` says (that option only concerns logs taken from `logging`).
Each call builds one log (body, severity, attributes, trace id), runs the
``before_send_log`` hook and queues the log on the client's batcher, which sends
logs in ``log`` envelope items of up to a few hundred at a time.

The template is formatted with `str.format_map`: keyword arguments become
``sentry.message.parameter.<name>`` attributes and the template itself
``sentry.message.template``; a placeholder without an argument stays as written.
Positional arguments (a tripwire extension) become
``sentry.message.parameter.<index>``. ``attributes={...}`` adds attributes as they are.
"""

from __future__ import annotations

import platform
import sys
import weakref
from typing import TYPE_CHECKING, Any

from tripwire import _data_collection
from tripwire._batcher import Batcher, ClientState, PerClient
from tripwire._clock import clock, format_timestamp
from tripwire._log import logger as _sdk_logger
from tripwire.consts import SDK_NAME, VERSION
from tripwire.envelope import Envelope, Item, PayloadRef
from tripwire.outcomes import DataCategory, DropReason
from tripwire.scope._current import (
    get_client,
    get_current_scope,
    get_global_scope,
    get_isolation_scope,
)

if TYPE_CHECKING:
    from tripwire._client_base import BaseClient
    from tripwire.types import Log

LOG_CONTENT_TYPE = "application/vnd.sentry.items.log+json"

# OpenTelemetry severity numbers: the first of each range (TRACE=1, DEBUG=5, ...).
SEVERITY_NUMBERS = {"trace": 1, "debug": 5, "info": 9, "warn": 13, "error": 17, "fatal": 21}

# OpenTelemetry severity number ranges and the severity text of each.
OTEL_RANGES = [
    ((1, 4), "trace"),
    ((5, 8), "debug"),
    ((9, 12), "info"),
    ((13, 16), "warn"),
    ((17, 20), "error"),
    ((21, 24), "fatal"),
]


def trace(template: str, *args: Any, **kwargs: Any) -> None:
    """Record a log at level ``trace`` (see the module docstring for the arguments)."""
    _capture_template("trace", template, args, kwargs)


def debug(template: str, *args: Any, **kwargs: Any) -> None:
    """Record a log at level ``debug``."""
    _capture_template("debug", template, args, kwargs)


def info(template: str, *args: Any, **kwargs: Any) -> None:
    """Record a log at level ``info``."""
    _capture_template("info", template, args, kwargs)


def warning(template: str, *args: Any, **kwargs: Any) -> None:
    """Record a log at level ``warn`` (the protocol's name for warning)."""
    _capture_template("warn", template, args, kwargs)


def error(template: str, *args: Any, **kwargs: Any) -> None:
    """Record a log at level ``error``."""
    _capture_template("error", template, args, kwargs)


def fatal(template: str, *args: Any, **kwargs: Any) -> None:
    """Record a log at level ``fatal``."""
    _capture_template("fatal", template, args, kwargs)


# -- capture -------------------------------------------------------------------------------


def logs_enabled(client: BaseClient) -> bool:
    """Whether `client` has ``enable_logs`` (or the older ``_experiments`` flag) on.

    It decides whether records of `logging` become logs; the functions of this
    module record logs either way (as sentry_sdk 2.75).
    """
    options = client.options
    if options.get("enable_logs"):
        return True
    experiments = options.get("_experiments")
    return bool(isinstance(experiments, dict) and experiments.get("enable_logs"))


class _KeepMissing(dict):  # type: ignore[type-arg]
    """Arguments for `str.format_map`: a placeholder without a value stays ``{name}``."""

    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def _capture_template(
    severity_text: str, template: Any, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    client = get_client()
    if not client.is_active() or client.transport is None:
        return
    try:
        attributes: dict[str, Any] = {}
        if "attributes" in kwargs:
            user_attributes = kwargs.pop("attributes")
            if isinstance(user_attributes, dict):
                for key, value in user_attributes.items():
                    attributes[str(key)] = format_attribute(value)
        if not isinstance(template, str):
            template = _safe_str(template)
        body = template
        if args or kwargs:
            # The call's parameters win over same-named `attributes` (as sentry_sdk).
            for index, value in enumerate(args):
                attributes[f"sentry.message.parameter.{index}"] = format_attribute(value)
            for key, value in kwargs.items():
                attributes[f"sentry.message.parameter.{key}"] = format_attribute(value)
            attributes["sentry.message.template"] = template
            try:
                if args:
                    body = template.format(*args, **kwargs)
                else:
                    body = template.format_map(_KeepMissing(kwargs))
            except Exception:  # a template that does not fit its arguments is sent as is
                body = template
        capture_log(client, severity_text, SEVERITY_NUMBERS[severity_text], body, attributes)
    except Exception:
        _sdk_logger.debug("tripwire.logger: log dropped", exc_info=True)


def capture_log(
    client: BaseClient,
    severity_text: str,
    severity_number: int,
    body: str,
    attributes: dict[str, Any],
    timestamp: float | None = None,
) -> None:
    """Complete a log with the SDK's attributes, run ``before_send_log`` and queue it.

    Shared by `tripwire.logger` and the logging integration. `attributes` are
    already formatted (see `format_attribute`); the SDK's own attributes never
    replace the caller's.
    """
    setdefault = attributes.setdefault
    for key, value in _static_attributes(client):
        setdefault(key, value)
    scope_attributes: dict[str, Any] = {}
    user: Any = None
    for scope in (get_global_scope(), get_isolation_scope(), get_current_scope()):
        found = getattr(scope, "_attributes", None)
        if found:
            scope_attributes.update(found)
        scope_user = getattr(scope, "_user", None)
        if scope_user is not None:
            user = scope_user
    for key, value in scope_attributes.items():
        setdefault(str(key), format_attribute(value))
    if isinstance(user, dict) and _data_collection.user_info(client.options):
        for attribute, field in (
            ("user.id", "id"),
            ("user.name", "username"),
            ("user.email", "email"),
            ("user.ip_address", "ip_address"),
        ):
            value = user.get(field)
            if value is not None:
                setdefault(attribute, format_attribute(value))

    trace_id, span_id = _trace_ids()
    if timestamp is None:
        timestamp = clock.now()
    log: Log = {
        "severity_text": severity_text,
        "severity_number": severity_number,
        "attributes": attributes,
        "body": body,
        "time_unix_nano": int(timestamp * 1_000_000_000),
        "trace_id": trace_id,
        "span_id": span_id,
    }
    options = client.options
    hook = options.get("before_send_log")
    if hook is None:
        experiments = options.get("_experiments")
        hook = experiments.get("before_send_log") if isinstance(experiments, dict) else None
    if hook is not None:
        # A hook that raises drops the log: it may have been the one removing PII.
        result = client._run_user_hook(hook, log, {}, on_error=_RAISED)
        if result is _RAISED:
            client.outcomes.record(DropReason.CALLBACK_ERROR, DataCategory.LOG_ITEM)
            return
        if not isinstance(result, dict):
            client.outcomes.record(DropReason.BEFORE_SEND, DataCategory.LOG_ITEM)
            return
        log = result
    _batcher(client).add(log)


_RAISED: Any = object()


def _trace_ids() -> tuple[str, str | None]:
    scope = get_current_scope()
    try:
        # As sentry_sdk 2.75's: a log freezes the trace's dynamic sampling context.
        scope._fix_dynamic_sampling_context()
    except Exception:
        pass
    span = scope._d.span
    trace_id = getattr(span, "trace_id", None) if span is not None else None
    if isinstance(trace_id, str):
        span_id = getattr(span, "span_id", None)
        if getattr(span, "_noop", False):  # an unsampled streamed span (as sentry_sdk)
            span_id = None
        return trace_id, span_id if isinstance(span_id, str) else None
    return scope.get_active_propagation_context().trace_id, None


_static_cache: weakref.WeakKeyDictionary[Any, list[tuple[str, Any]]] = weakref.WeakKeyDictionary()


def _static_attributes(client: BaseClient) -> list[tuple[str, Any]]:
    """The attributes every log of this client carries (computed once per client)."""
    found = _static_cache.get(client)
    if found is None:
        options = client.options
        found = [
            ("sentry.sdk.name", SDK_NAME),
            ("sentry.sdk.version", VERSION),
            # As the stdlib integration's `runtime` context.
            ("process.runtime.name", platform.python_implementation()),
            ("process.runtime.version", "%d.%d.%d" % sys.version_info[:3]),
        ]
        for attribute, option in (
            ("server.address", "server_name"),
            ("sentry.environment", "environment"),
            ("sentry.release", "release"),
        ):
            value = options.get(option)
            if value is not None:
                found.append((attribute, str(value)))
        _static_cache[client] = found
    return found


# -- attribute values ------------------------------------------------------------------------

_SCALAR_TYPES = (str, bool, int, float)
_INFINITIES = (float("inf"), float("-inf"))


def format_attribute(value: Any, tuples: bool = True) -> Any:
    """A log attribute value: a str, bool, int, float or homogeneous list; else its repr.

    Args:
        value: Any object.
        tuples: Whether a tuple counts as a list (it does for `tripwire.logger`;
            sentry_sdk's logging integration writes ``extra`` tuples as their repr).
    """
    if isinstance(value, _SCALAR_TYPES):
        if isinstance(value, float) and (value != value or value in _INFINITIES):
            return str(value)  # JSON has no NaN or infinity
        return value
    if isinstance(value, list) or (tuples and isinstance(value, tuple)):
        if not value:
            return []
        first = type(value[0])
        # Arrays must be homogeneous on the wire; [1, True] and [1, 2.0] are not.
        if first in _SCALAR_TYPES and all(type(item) is first for item in value):
            return list(value)
    return _safe_repr(value)


def parameter_value(value: Any) -> Any:
    """A logging-integration message parameter: scalars as they are, anything else as repr."""
    if isinstance(value, _SCALAR_TYPES):
        return value
    return _safe_repr(value)


def _typed(value: Any) -> dict[str, Any]:
    value = format_attribute(value)
    if isinstance(value, bool):
        kind = "boolean"
    elif isinstance(value, int):
        kind = "integer"
    elif isinstance(value, float):
        kind = "double"
    elif isinstance(value, str):
        kind = "string"
    else:
        kind = "array"
    return {"value": value, "type": kind}


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception:  # also a __repr__ returning a non-str (TypeError)
        return "<broken repr>"


def _safe_str(value: Any) -> str:
    try:
        return str(value)
    except Exception:
        return _safe_repr(value)


# -- batching and the wire form ------------------------------------------------------------


def _logs_state(owner: BaseClient) -> ClientState:
    return ClientState(Batcher(owner, build_envelope, DataCategory.LOG_ITEM, name="logs"))


_logs = PerClient("log", _logs_state)


def _batcher(client: BaseClient) -> Batcher[Log]:
    return _logs.get(client).batcher


def wire_form(log: Log) -> dict[str, Any] | None:
    """One log as it goes in the ``items`` list of a ``log`` envelope item (None if unusable)."""
    try:
        severity_text = str(log.get("severity_text") or "info")
        severity_number = log.get("severity_number")
        if not isinstance(severity_number, int) or isinstance(severity_number, bool):
            severity_number = SEVERITY_NUMBERS.get(severity_text, 0)
        attributes = {}
        raw = log.get("attributes")
        if isinstance(raw, dict):
            for key, value in raw.items():
                attributes[str(key)] = _typed(value)
        attributes["sentry.severity_number"] = {"value": severity_number, "type": "integer"}
        attributes["sentry.severity_text"] = {"value": severity_text, "type": "string"}
        nanos = log.get("time_unix_nano")
        timestamp = nanos / 1_000_000_000 if isinstance(nanos, int) else clock.now()
        body = log.get("body")
        out: dict[str, Any] = {
            "timestamp": timestamp,
            "level": severity_text,
            "body": body if isinstance(body, str) else _safe_str(body),
            "attributes": attributes,
            "trace_id": log.get("trace_id"),
        }
        span_id = log.get("span_id")
        if span_id is not None:
            out["span_id"] = span_id
        return out
    except Exception:
        _sdk_logger.debug("a log could not be encoded; dropped", exc_info=True)
        return None


def build_envelope(logs: list[Log]) -> Envelope | None:
    """The envelope carrying `logs` as one ``log`` item (None when none is usable)."""
    items = [wired for wired in map(wire_form, logs) if wired is not None]
    if not items:
        return None
    envelope = Envelope(headers={"sent_at": format_timestamp(clock.now())})
    envelope.add_item(
        Item(
            payload=PayloadRef(json={"version": 2, "items": items}),
            type="log",
            content_type=LOG_CONTENT_TYPE,
            headers={"item_count": len(items)},
        )
    )
    return envelope


__all__ = ["OTEL_RANGES", "debug", "error", "fatal", "info", "trace", "warning"]
