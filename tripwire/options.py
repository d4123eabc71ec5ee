"""Client options: defaults, validation and environment variables.

``build_options`` turns the arguments of ``tripwire.init(...)`` / ``Client(...)``
into the plain ``options`` dict the rest of the SDK reads. It is table-driven:
each option has one small checker that rejects wrong types (``TypeError``) and
out-of-range values (``ValueError``) and returns the normalized value.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterable, Mapping
from typing import Any, Callable, Optional

from tripwire._deprecation import deprecated
from tripwire._log import logger
from tripwire._release import RELEASE_ENV_VARS as RELEASE_ENV_VARS
from tripwire._release import detect_release
from tripwire._release import git_head as git_head
from tripwire.consts import (
    DEFAULT_MAX_BREADCRUMBS,
    DEFAULT_MAX_STACK_FRAMES,
    DEFAULT_QUEUE_SIZE,
    DEFAULT_SHUTDOWN_TIMEOUT,
)
from tripwire.dsn import BadDsn, Dsn

__all__ = ["DEFAULT_OPTIONS", "build_options", "detect_release"]

# Same keys, order and defaults as sentry-sdk 2.75 (plus the tripwire extensions at the end).
DEFAULT_OPTIONS: dict[str, Any] = {
    "dsn": None,
    "max_breadcrumbs": DEFAULT_MAX_BREADCRUMBS,
    "release": None,
    "environment": None,
    "server_name": None,
    "shutdown_timeout": DEFAULT_SHUTDOWN_TIMEOUT,
    "integrations": [],
    "ignore_spans": None,
    "in_app_include": [],
    "in_app_exclude": [],
    "default_integrations": True,
    "dist": None,
    "transport": None,
    "transport_queue_size": DEFAULT_QUEUE_SIZE,
    "sample_rate": 1.0,
    "send_default_pii": None,
    "data_collection": None,
    "http_proxy": None,
    "https_proxy": None,
    "ignore_errors": [],
    "max_request_body_size": "medium",
    "socket_options": None,
    "keep_alive": None,
    "before_send": None,
    "before_breadcrumb": None,
    "debug": None,
    "attach_stacktrace": False,
    "ca_certs": None,
    "propagate_traces": True,
    "traces_sample_rate": None,
    "trace_lifecycle": None,
    "traces_sampler": None,
    "profiles_sample_rate": None,
    "profiles_sampler": None,
    "profiler_mode": None,
    "profile_lifecycle": "manual",
    "profile_session_sample_rate": None,
    "auto_enabling_integrations": True,
    "disabled_integrations": None,
    "auto_session_tracking": True,
    "send_client_reports": True,
    "_experiments": {},
    "proxy_headers": None,
    "instrumenter": "sentry",
    "before_send_transaction": None,
    "project_root": None,
    "enable_tracing": None,
    "include_local_variables": True,
    "include_source_context": True,
    "trace_propagation_targets": [".*"],
    "functions_to_trace": [],
    "event_scrubber": None,
    "max_value_length": None,
    "enable_backpressure_handling": True,
    "error_sampler": None,
    "enable_db_query_source": True,
    "db_query_source_threshold_ms": 100,
    "enable_http_request_source": True,
    "http_request_source_threshold_ms": 100,
    "spotlight": None,
    "cert_file": None,
    "key_file": None,
    "custom_repr": None,
    "add_full_stack": False,
    "max_stack_frames": DEFAULT_MAX_STACK_FRAMES,
    "enable_logs": False,
    "before_send_log": None,
    "trace_ignore_status_codes": frozenset(),
    "enable_metrics": True,
    "before_send_metric": None,
    "before_send_span": None,
    "org_id": None,
    "strict_trace_continuation": False,
    "stream_gen_ai_spans": True,
    # tripwire extension: directory where envelopes that could not be sent are kept.
    "spool_dir": None,
    # tripwire extension: upper bound on the spool directory's size, in bytes.
    "spool_max_bytes": 50 * 1024 * 1024,
    # tripwire extension: spooled envelopes older than this many seconds are dropped.
    "spool_max_age": 24 * 60 * 60.0,
}

# Lists and dicts must not be shared between clients: each build gets fresh copies.
_MUTABLE_DEFAULTS = tuple(k for k, v in DEFAULT_OPTIONS.items() if isinstance(v, (list, dict)))

# Spellings sentry-sdk reads as "on" in SENTRY_DEBUG / SENTRY_KEEP_ALIVE (any case, no stripping).
_TRUTHY = frozenset({"1", "true", "t", "y", "yes", "on"})


# --- checkers -----------------------------------------------------------------------------
# A checker takes (option name, value) and returns the value to store, or raises
# TypeError / ValueError with a message that names the option.

_Checker = Callable[[str, Any], Any]


def _describe(value: Any) -> str:
    text = repr(value)
    if len(text) > 60:
        text = text[:57] + "..."
    return f"{type(value).__name__} {text}"


def _type_error(name: str, expected: str, value: Any) -> TypeError:
    return TypeError(f"option {name!r} must be {expected}, got {_describe(value)}")


def _is_number(value: Any) -> bool:
    kind = type(value)
    if kind is float or kind is int:
        return True
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)):
        return True
    # Decimal is accepted like in sentry-sdk; if decimal was never imported the
    # value cannot be one, so there is no need to import it here.
    decimal = sys.modules.get("decimal")
    return decimal is not None and isinstance(value, decimal.Decimal)


def _anything(name: str, value: Any) -> Any:
    return value


def _nullable(check: _Checker) -> _Checker:
    def checker(name: str, value: Any) -> Any:
        return None if value is None else check(name, value)

    return checker


def _string(name: str, value: Any) -> Any:
    if not isinstance(value, str):
        raise _type_error(name, "a string", value)
    return value


def _path(name: str, value: Any) -> Any:
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise _type_error(name, "a path string", value)
    return value


def _flag(name: str, value: Any) -> Any:
    # None stays None like in sentry-sdk (where it reads as "off" or "automatic");
    # ints are accepted because sentry-sdk only ever tests these for truth.
    if value is not None and not isinstance(value, int):
        raise _type_error(name, "a bool", value)
    return value


def _callable(name: str, value: Any) -> Any:
    if value is not None and not callable(value):
        raise _type_error(name, "callable or None", value)
    return value


def _number(low: float, high: Optional[float] = None, integer: bool = False) -> _Checker:
    if integer:
        expected = "an int"
    elif high is not None:
        expected = f"a number between {low:g} and {high:g}"
    else:
        expected = "a number"

    def checker(name: str, value: Any) -> Any:
        ok = (
            isinstance(value, int) and not isinstance(value, bool) if integer else _is_number(value)
        )
        if not ok:
            raise _type_error(name, expected, value)
        if value != value or value < low or (high is not None and value > high):
            if high is None:
                raise ValueError(f"option {name!r} must be >= {low:g}, got {value!r}")
            raise ValueError(f"option {name!r} must be between {low:g} and {high:g}, got {value!r}")
        return value

    return checker


# What a value that is not a rate does, for each sample-rate option: what sentry_sdk
# 2.75 does with it (it takes any value; the tracing sampler, the capture steps and the
# profilers read it as below).
_NOT_A_RATE = {
    "sample_rate": "errors are sent as sentry_sdk sends them (all of them, unless it is"
    " a number below 1)",
    "traces_sample_rate": "no transaction is sampled",
    "profiles_sample_rate": "no transaction is profiled",
    "profile_session_sample_rate": "a number in a string is read as that number, anything"
    " else turns the continuous profiler off",
}


def to_rate(value: Any) -> Optional[float]:
    """A sample rate as a float in [0, 1]; booleans count as 0 or 1; else None."""
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    # Any real number (int, float, Decimal, Fraction, numpy scalars), but not strings.
    if isinstance(value, (str, bytes)) or not hasattr(type(value), "__float__"):
        return None
    try:
        rate = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    if rate != rate or not 0.0 <= rate <= 1.0:  # NaN fails the comparison too
        return None
    return rate


def _sample_rate(name: str, value: Any) -> Any:
    """Any value, kept as given, as sentry_sdk takes it; a warning if it is not a rate.

    Applications pass these from environment variables (a string), or True: sentry_sdk
    starts and samples as `_NOT_A_RATE` says, so tripwire must not refuse to start.
    """
    if value is None and name != "sample_rate":
        return value  # that sampling is off (sample_rate has no "off")
    if to_rate(value) is None:
        logger.warning(
            "option %r should be a number between 0 and 1, got %s: %s",
            name,
            _describe(value),
            _NOT_A_RATE[name],
        )
    return value


def _choice(*choices: str) -> _Checker:
    def checker(name: str, value: Any) -> Any:
        if not isinstance(value, str):
            raise _type_error(name, f"one of {choices}", value)
        if value not in choices:
            raise ValueError(f"option {name!r} must be one of {choices}, got {value!r}")
        return value

    return checker


def _items(name: str, value: Any, expected: str) -> list[Any]:
    """Materialize a sequence option as a fresh list (None -> [])."""
    if value is None:
        return []
    if isinstance(value, (str, bytes, Mapping)) or not isinstance(value, Iterable):
        raise _type_error(name, expected, value)
    return list(value)


def _sequence(expected: str, item_ok: Optional[Callable[[Any], bool]] = None) -> _Checker:
    def checker(name: str, value: Any) -> Any:
        items = _items(name, value, expected)
        if item_ok is not None:
            for item in items:
                if not item_ok(item):
                    raise TypeError(
                        f"option {name!r} must be {expected}, got an item {_describe(item)}"
                    )
        return items

    return checker


def _string_list(pattern_ok: bool) -> _Checker:
    expected = "a list of strings or regex patterns" if pattern_ok else "a list of strings"

    def item_ok(item: Any) -> bool:
        if isinstance(item, str):
            return True
        re = sys.modules.get("re")
        return pattern_ok and re is not None and isinstance(item, re.Pattern)

    check = _sequence(expected, item_ok)

    def checker(name: str, value: Any) -> Any:
        # A bare string is an easy slip; sentry-sdk would iterate its characters.
        return [value] if isinstance(value, str) else check(name, value)

    return checker


def _is_error_matcher(item: Any) -> bool:
    return isinstance(item, str) or (isinstance(item, type) and issubclass(item, BaseException))


def _mapping(name: str, value: Any) -> Any:
    if not isinstance(value, Mapping):
        raise _type_error(name, "a dict", value)
    return dict(value)


def _experiments(name: str, value: Any) -> Any:
    return {} if value is None else _mapping(name, value)


def _status_codes(name: str, value: Any) -> Any:
    expected = "a set of HTTP status codes (ints or ranges)"
    if isinstance(value, range):
        return frozenset(value)
    codes: set[int] = set()
    for item in _items(name, value, expected):
        if isinstance(item, range):
            codes.update(item)
        elif isinstance(item, int) and not isinstance(item, bool):
            codes.add(item)
        else:
            raise TypeError(f"option {name!r} must be {expected}, got an item {_describe(item)}")
    return frozenset(codes)


def _transport(name: str, value: Any) -> Any:
    # A Transport instance is recognized by its capture_envelope method so that
    # validating options never imports the transport (and urllib3).
    if value is None or callable(value) or callable(getattr(value, "capture_envelope", None)):
        return value
    raise _type_error(
        name,
        "a Transport instance, a Transport subclass or a callable taking an event dict",
        value,
    )


def _dsn(name: str, value: Any) -> Any:
    # Only the type here: the string is parsed once the SENTRY_DSN fallback is known.
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Dsn):
        return str(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise _type_error(name, "a DSN string or None", value)


def _spotlight(name: str, value: Any) -> Any:
    if value is not None and not isinstance(value, (bool, str)):
        raise _type_error(name, "a bool, a URL string or None", value)
    return value


def _org_id(name: str, value: Any) -> Any:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if value is not None and not isinstance(value, str):
        raise _type_error(name, "a string or None", value)
    return value


def _socket_option(item: Any) -> bool:
    return isinstance(item, (tuple, list)) and len(item) == 3


_opt_string = _nullable(_string)
_opt_path = _nullable(_path)
_count = _number(0, integer=True)
_opt_count = _nullable(_count)
_duration = _number(0.0)
_any_list = _sequence("a list")

_CHECKS: dict[str, _Checker] = {
    "dsn": _dsn,
    "max_breadcrumbs": _count,
    "release": _opt_string,
    "environment": _opt_string,
    "server_name": _opt_string,
    "shutdown_timeout": _duration,
    "integrations": _sequence("a list of integrations"),
    "ignore_spans": _nullable(_any_list),
    "in_app_include": _string_list(pattern_ok=False),
    "in_app_exclude": _string_list(pattern_ok=False),
    "default_integrations": _flag,
    "dist": _opt_string,
    "transport": _transport,
    "transport_queue_size": _count,
    "sample_rate": _sample_rate,
    "send_default_pii": _flag,
    "data_collection": _nullable(_mapping),
    "http_proxy": _opt_string,
    "https_proxy": _opt_string,
    "ignore_errors": _sequence("a list of exception classes or strings", _is_error_matcher),
    "max_request_body_size": _choice("never", "small", "medium", "always"),
    "socket_options": _nullable(
        _sequence("a list of (level, option, value) tuples", _socket_option)
    ),
    "keep_alive": _flag,
    "before_send": _callable,
    "before_breadcrumb": _callable,
    "debug": _flag,
    "attach_stacktrace": _flag,
    "ca_certs": _opt_path,
    "propagate_traces": _flag,
    "traces_sample_rate": _sample_rate,
    "trace_lifecycle": _nullable(_choice("static", "stream")),
    "traces_sampler": _callable,
    "profiles_sample_rate": _sample_rate,
    "profiles_sampler": _callable,
    "profiler_mode": _opt_string,
    "profile_lifecycle": _choice("manual", "trace"),
    "profile_session_sample_rate": _sample_rate,
    "auto_enabling_integrations": _flag,
    "disabled_integrations": _nullable(_any_list),
    "auto_session_tracking": _flag,
    "send_client_reports": _flag,
    "_experiments": _experiments,
    "proxy_headers": _nullable(_mapping),
    "instrumenter": _nullable(_choice("sentry", "otel")),
    "before_send_transaction": _callable,
    "project_root": _opt_path,
    "enable_tracing": _flag,
    "include_local_variables": _flag,
    "include_source_context": _flag,
    "trace_propagation_targets": _nullable(_string_list(pattern_ok=True)),
    "functions_to_trace": _sequence(
        "a list of dicts with a 'qualified_name'", lambda item: isinstance(item, Mapping)
    ),
    "event_scrubber": _anything,
    "max_value_length": _opt_count,
    "enable_backpressure_handling": _flag,
    "error_sampler": _callable,
    "enable_db_query_source": _flag,
    "db_query_source_threshold_ms": _duration,
    "enable_http_request_source": _flag,
    "http_request_source_threshold_ms": _duration,
    "spotlight": _spotlight,
    "cert_file": _opt_path,
    "key_file": _opt_path,
    "custom_repr": _callable,
    "add_full_stack": _flag,
    "max_stack_frames": _opt_count,
    "enable_logs": _flag,
    "before_send_log": _callable,
    "trace_ignore_status_codes": _status_codes,
    "enable_metrics": _flag,
    "before_send_metric": _callable,
    "before_send_span": _callable,
    "org_id": _org_id,
    "strict_trace_continuation": _flag,
    "stream_gen_ai_spans": _flag,
    "spool_dir": _opt_path,
    "spool_max_bytes": _count,
    "spool_max_age": _duration,
}


def _unknown_option(name: str) -> TypeError:
    import difflib  # only on the error path: it costs milliseconds to import

    close = difflib.get_close_matches(name, list(DEFAULT_OPTIONS), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return TypeError(f"Unknown option {name!r}{hint}")


def _env_flag(var: str) -> bool:
    return os.environ.get(var, "").lower() in _TRUTHY


def _hostname() -> Optional[str]:
    uname = getattr(os, "uname", None)
    if uname is not None:
        # Same value as socket.gethostname() on POSIX, without importing socket.
        return str(uname().nodename)

    # Lazy: build_options imports nothing heavy (a test pins it); this is the fallback.
    import socket

    return socket.gethostname()


def _warn_deprecated_options(options: dict[str, Any]) -> None:
    """DeprecationWarnings (at the init() caller's line) for deprecated options.

    sentry_sdk 2.x warns about `enable_tracing` at init and about a false
    `propagate_traces` each time trace headers are made; tripwire warns about both
    once, at init.
    """
    if options["enable_tracing"] is not None:
        deprecated("the enable_tracing option is deprecated: use traces_sample_rate")
    if options["propagate_traces"] is False:
        deprecated("the propagate_traces option is deprecated: use trace_propagation_targets")
    if options["send_default_pii"] is not None:
        experiments = options["_experiments"] or {}
        if options["data_collection"] is not None or "data_collection" in experiments:
            deprecated("send_default_pii is ignored when data_collection is set")
        else:
            deprecated("the send_default_pii option is deprecated: use data_collection")


def span_streaming_enabled(options: Optional[Mapping[str, Any]]) -> bool:
    """Whether `options` turn span streaming on (``trace_lifecycle``, or in `_experiments`)."""
    if options is None:
        return False
    lifecycle = options.get("trace_lifecycle")
    if lifecycle is not None:
        return bool(lifecycle == "stream")
    # Called on every transaction start: no empty dict made for the usual no experiments.
    experiments = options.get("_experiments")
    if not experiments:
        return False
    return bool(experiments.get("trace_lifecycle") == "stream")


def _warn_user(message: str) -> None:
    """A UserWarning at the first caller outside tripwire (sentry_sdk warns at init)."""
    frame = sys._getframe(1)
    level = 2
    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    while frame.f_back is not None and frame.f_code.co_filename.startswith(package):
        frame = frame.f_back
        level += 1
    warnings.warn(message, UserWarning, stacklevel=level)


def _warn_streaming_options(options: dict[str, Any]) -> None:
    """sentry_sdk 2.75's warnings about options that depend on span streaming."""
    streaming = span_streaming_enabled(options)
    if options["trace_ignore_status_codes"] and streaming:
        _warn_user("The `trace_ignore_status_codes` parameter is ignored in span streaming mode.")
    if options["ignore_spans"] and not streaming:
        _warn_user(
            "The `ignore_spans` parameter only works when `trace_lifecycle` is set to `stream`."
        )
    if options["before_send_span"] and not streaming:
        _warn_user(
            "The `before_send_span` parameter only works when `trace_lifecycle` is set to `stream`."
        )
    experiments = options["_experiments"] or {}
    if streaming and (
        options["profiles_sample_rate"] is not None
        or options["profiles_sampler"] is not None
        or experiments.get("profiles_sample_rate") is not None
        or experiments.get("profiles_sampler") is not None
    ):
        _warn_user(
            "Transaction-based profiling has no effect when `trace_lifecycle` is set to "
            "`stream`. Please use continuous profiling instead: "
            "https://docs.sentry.io/platforms/python/profiling/"
        )


def build_options(*args: Any, **kwargs: Any) -> dict[str, Any]:
    """Validate init/Client arguments and fill in defaults and environment values.

    Args:
        *args: Optionally one positional argument: the DSN (str or None), or a
            mapping of options (keyword arguments win over it).
        **kwargs: Options by name, see ``DEFAULT_OPTIONS``.

    Returns:
        A new dict with every option of ``DEFAULT_OPTIONS``.

    Raises:
        TypeError: Unknown option, wrong type, or more than one positional argument.
        ValueError: Out-of-range value; ``BadDsn`` for a malformed DSN.
    """
    if args:
        if len(args) > 1:
            raise TypeError(f"expected at most one positional argument (the DSN), got {len(args)}")
        first = args[0]
        if isinstance(first, Mapping):
            kwargs = {**first, **kwargs}
        elif first is None or isinstance(first, (str, bytes, Dsn)):
            # sentry-sdk lets an explicit dsn= keyword win over the positional one.
            kwargs.setdefault("dsn", first)
        else:
            raise TypeError(f"the positional argument must be a DSN string, got {_describe(first)}")

    options = DEFAULT_OPTIONS.copy()
    for key in _MUTABLE_DEFAULTS:
        options[key] = options[key].copy()
    checks = _CHECKS
    for name, value in kwargs.items():
        check = checks.get(name)
        if check is None:
            raise _unknown_option(name)
        options[name] = check(name, value)
    if (
        options["enable_tracing"] is not None
        or options["propagate_traces"] is False
        or options["send_default_pii"] is not None
    ):
        _warn_deprecated_options(options)
    if (
        options["ignore_spans"]
        or options["before_send_span"]
        or options["trace_lifecycle"] is not None
        or options["_experiments"]
    ):
        _warn_streaming_options(options)

    environ = os.environ
    dsn = options["dsn"]
    from_env = dsn is None and "SENTRY_DSN" in environ
    if from_env:
        dsn = options["dsn"] = environ["SENTRY_DSN"]
    if dsn:
        try:
            Dsn.parse(dsn)
        except BadDsn as exc:
            if from_env:
                raise BadDsn(f"{exc} (from the SENTRY_DSN environment variable)") from None
            raise

    if options["release"] is None:
        options["release"] = detect_release()
    if options["environment"] is None:
        options["environment"] = environ.get("SENTRY_ENVIRONMENT") or "production"
    if options["debug"] is None:
        options["debug"] = _env_flag("SENTRY_DEBUG")
    if options["keep_alive"] is None:
        options["keep_alive"] = _env_flag("SENTRY_KEEP_ALIVE")
    if options["spotlight"] is None:
        # Stored raw; turning it into a URL or a flag is the spotlight module's job.
        options["spotlight"] = environ.get("SENTRY_SPOTLIGHT") or None
    if options["server_name"] is None:
        options["server_name"] = _hostname()
    if options["project_root"] is None:
        with contextlib.suppress(OSError):  # the working directory was deleted
            options["project_root"] = os.getcwd()
    if options["send_default_pii"] is None:
        options["send_default_pii"] = False
    return options
