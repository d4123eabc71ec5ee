"""The helpers sentry_sdk exposes as `sentry_sdk.utils`, with its signatures and results.

Integrations and libraries written for sentry_sdk import these; most are thin adapters
over tripwire's own implementations (`tripwire.event.*`, `tripwire.dsn`, `_release`,
`_json`, `_clock`). Deliberate differences from sentry_sdk 2.75 are noted per helper.
"""

from __future__ import annotations

import contextlib
import functools
import json
import linecache
import os
import re
import sys
import threading
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar as ContextVar
from datetime import datetime, timezone
from types import FrameType, TracebackType
from typing import (
    TYPE_CHECKING,
    Any,
    Callable,
    NamedTuple,
    NoReturn,
    Optional,
    TypeVar,
    Union,
    cast,
)
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

from tripwire import _json
from tripwire._clock import format_timestamp as _format
from tripwire._enums import EndpointType as EndpointType
from tripwire._log import logger as logger
from tripwire._release import detect_release, git_head
from tripwire._timeout_thread import ServerlessTimeoutWarning as ServerlessTimeoutWarning
from tripwire._timeout_thread import TimeoutThread as TimeoutThread
from tripwire.consts import DEFAULT_ADD_FULL_STACK as DEFAULT_ADD_FULL_STACK
from tripwire.consts import DEFAULT_MAX_STACK_FRAMES as DEFAULT_MAX_STACK_FRAMES
from tripwire.consts import USER_AGENT
from tripwire.dsn import BadDsn as BadDsn
from tripwire.dsn import Dsn as _Dsn
from tripwire.event import frames as _frames
from tripwire.event.annotated import SENSITIVE_DATA_SUBSTITUTE as SENSITIVE_DATA_SUBSTITUTE
from tripwire.event.annotated import AnnotatedValue as AnnotatedValue
from tripwire.event.exceptions import event_from_exception as _event_from_exception
from tripwire.event.exceptions import exc_info_from_error as _exc_info_from_error
from tripwire.event.exceptions import exceptions_from_exc_info
from tripwire.event.serializer import Serializer
from tripwire.event.serializer import safe_repr as safe_repr
from tripwire.logger import _typed as _typed_attribute
from tripwire.logger import format_attribute as _format_attribute
from tripwire.scope._current import get_client
from tripwire.tracing._propagation import match_regex_list as match_regex_list
from tripwire.tracing._sampling import is_valid_sample_rate as is_valid_sample_rate
from tripwire.transport._tasks import is_internal_task as is_internal_task
from tripwire.transport._tasks import mark_sentry_task_internal as mark_sentry_task_internal

if TYPE_CHECKING:
    from tripwire._client_base import BaseClient
    from tripwire.integrations import Integration
    from tripwire.types import Event, ExcInfo, Hint

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")

# --------------------------------------------------------------------------- constants

FALSY_ENV_VALUES = frozenset(("false", "f", "n", "no", "off", "0"))
TRUTHY_ENV_VALUES = frozenset(("true", "t", "y", "yes", "on", "1"))
# Upper bound on frames kept by `add_full_stack` when max_stack_frames is not set.
MAX_STACK_FRAMES = 2000
ISO_TZ_SEPARATORS = frozenset(("+", "-"))
PY37 = True
HAS_CHAINED_EXCEPTIONS = True
# tripwire relies on the interpreter's contextvars (no gevent/eventlet thread-local fallback).
HAS_REAL_CONTEXTVARS = True

# Set while the SDK serializes an event, so that logging integrations leave it alone.
disable_capture_event: ContextVar[bool] = ContextVar("disable_capture_event", default=False)


# --------------------------------------------------------------------------- values


def env_to_bool(value: Any, *, strict: Optional[bool] = False) -> Optional[bool]:
    """Read an environment variable's value as a bool.

    Known spellings (`TRUTHY_ENV_VALUES`, `FALSY_ENV_VALUES`, any case) decide; anything
    else is None with ``strict=True`` and its truth value otherwise.
    """
    if isinstance(value, bool):
        return value
    text = str(value).lower() if value is not None else None
    if text in FALSY_ENV_VALUES:
        return False
    if text in TRUTHY_ENV_VALUES:
        return True
    return None if strict else bool(value)


def json_dumps(data: Any) -> bytes:
    """Compact JSON as UTF-8 bytes.

    Unlike sentry_sdk, non-ASCII text is written as UTF-8 rather than ``\\u`` escapes and
    non-finite floats become ``null`` (both decode to the same data).
    """
    return _json.dumps(data)


def safe_str(value: Any) -> str:
    """``str(value)``, or its safe repr when ``str`` raises."""
    try:
        return str(value)
    except Exception:
        return safe_repr(value)


def to_string(value: Any) -> str:
    """``str(value)``; a value that cannot be decoded gives its escaped repr."""
    try:
        return str(value)
    except UnicodeDecodeError:
        return repr(value)[1:-1]


def strip_string(value: str, max_length: Optional[int] = None) -> Union[AnnotatedValue, str]:
    """Cut `value` to `max_length` UTF-8 bytes (ending in ``...``), annotated for `_meta`.

    Returns `value` itself when it fits or `max_length` is None.
    """
    if not value or max_length is None:
        return value
    try:
        size: Optional[int] = len(value.encode("utf-8"))
    except UnicodeError:
        size = None
    if size is not None and size > max_length:
        cut = value.encode("utf-8")[: max_length - 3].decode("utf-8", errors="ignore") + "..."
    elif len(value) > max_length:
        cut = value[: max_length - 3] + "..."
    else:
        return value
    return AnnotatedValue(
        value=cut,
        metadata={"len": size or len(value), "rem": [["!limit", "x", max_length - 3, max_length]]},
    )


def try_convert(convert_func: Callable[[Any], T], value: Any) -> Optional[T]:
    """``convert_func(value)``, or None if it raises (a value already of that type is kept)."""
    if isinstance(convert_func, type) and isinstance(value, convert_func):
        return value  # type: ignore[return-value]
    try:
        return convert_func(value)
    except Exception:
        return None


def safe_serialize(data: Any) -> str:
    """Readable JSON text for `data`: callables as ``<function module.name>``, objects with
    attributes as ``<Type {public attributes}>``, anything else JSON cannot encode as ``str``.
    """

    def readable(item: Any) -> Any:
        if callable(item):
            try:
                module = getattr(item, "__module__", None)
                name = getattr(item, "__qualname__", None) or getattr(item, "__name__", None)
                if module and name:
                    return f"<function {module}.{name}>"
                return f"<function {getattr(item, '__name__', 'anonymous')}>"
            except Exception:
                return f"<callable {type(item).__name__}>"
        if isinstance(item, dict):
            return {key: readable(value) for key, value in item.items()}
        if isinstance(item, (list, tuple)):
            return [readable(value) for value in item]
        if hasattr(item, "__dict__"):
            try:
                public = {k: readable(v) for k, v in vars(item).items() if not k.startswith("_")}
                return f"<{type(item).__name__} {public}>"
            except Exception:
                return repr(item)
        return item

    try:
        result = readable(data)
        if isinstance(result, str):
            return result

        return json.dumps(result, default=str)
    except Exception:
        return str(data)


# --------------------------------------------------------------------------- time


def format_timestamp(value: Union[datetime, float]) -> str:
    """RFC 3339 in UTC with microseconds; aware datetimes are converted, naive ones are local."""
    if isinstance(value, datetime):
        value = value.astimezone(timezone.utc)
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    return _format(value)


def datetime_from_isoformat(value: str) -> datetime:
    """Parse an ISO 8601 timestamp (``Z`` or an offset allowed) as an aware UTC datetime.

    Raises:
        ValueError: `value` is not an ISO 8601 timestamp.
    """
    text = value
    if sys.version_info < (3, 11):
        # 3.9/3.10 fromisoformat knows neither "Z" nor "+0200" nor odd fraction widths.
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        match = re.match(r"^(.*T\d\d:\d\d:\d\d)(?:\.(\d+))?([+-]\d\d:?\d\d)?$", text)
        if match:
            head, fraction, offset = match.groups()
            text = head
            if fraction:
                text += "." + (fraction + "000000")[:6]
            if offset:
                text += offset if ":" in offset else offset[:3] + ":" + offset[3:]
    result = datetime.fromisoformat(text)
    return result.astimezone(timezone.utc)


def now() -> float:
    """Monotonic seconds, for measuring durations."""
    return time.perf_counter()


def nanosecond_time() -> int:
    """Monotonic nanoseconds, for measuring durations."""
    return time.perf_counter_ns()


# --------------------------------------------------------------------------- SDK identity

_FRAMEWORKS = (
    "django",
    "flask",
    "fastapi",
    "bottle",
    "falcon",
    "quart",
    "sanic",
    "starlette",
    "litestar",
    "starlite",
    "chalice",
    "serverless",
    "pyramid",
    "tornado",
    "aiohttp",
    "aws_lambda",
    "gcp",
    "beam",
    "asgi",
    "wsgi",
)


def get_sdk_name(installed_integrations: Sequence[str]) -> str:
    """The SDK name, with the most specific web framework integration in use appended.

    sentry_sdk names itself ``sentry.python[.<framework>]``; tripwire sends
    ``tripwire.python[.<framework>]``.
    """
    base = USER_AGENT.split("/", 1)[0]
    for framework in _FRAMEWORKS:
        if framework in installed_integrations:
            return f"{base}.{framework}"
    return base


def get_git_revision() -> Optional[str]:
    """The commit checked out in the working directory's git repository, or None.

    Read from the files under ``.git``; sentry_sdk runs ``git rev-parse HEAD``.
    """
    try:
        return git_head(os.getcwd())
    except OSError:
        return None


def get_default_release() -> Optional[str]:
    """The release `init()` uses when none is given (SENTRY_RELEASE, git, CI variables)."""
    return detect_release()


# --------------------------------------------------------------------------- DSN


class Dsn(_Dsn):
    """A DSN, built from its string as in sentry_sdk: ``Dsn("https://key@host/1")``.

    It is a `tripwire.dsn.Dsn`, so everything of that class works on it too. One
    difference: `path` is ``""`` or ``"/prefix"`` (sentry_sdk: ``"/"`` or ``"/prefix/"``).

    Raises:
        BadDsn: The string is not a valid DSN.
    """

    __slots__ = ("_org",)
    _org: Optional[str]

    def __init__(self, value: Union[str, bytes, _Dsn], org_id: Optional[str] = None) -> None:
        parsed = _Dsn.parse(value)
        for name in _Dsn.__slots__:
            object.__setattr__(self, name, getattr(parsed, name))
        explicit = org_id if not isinstance(value, _Dsn) else getattr(value, "_org", None)
        object.__setattr__(self, "_org", explicit)

    @property
    def org_id(self) -> Optional[str]:
        """The organization id given, else the one in a host like ``o123.ingest.sentry.io``."""
        explicit: Optional[str] = self._org
        return explicit if explicit is not None else super().org_id

    def to_auth(self, client: Optional[Any] = None) -> Auth:
        """The `Auth` for this DSN; `client` is the ``sentry_client`` of the header."""
        return Auth(
            scheme=self.scheme,
            host=self.netloc,
            path=self.path + "/",
            project_id=self.project_id,
            public_key=self.public_key,
            secret_key=self.secret_key,
            client=client,
        )


class Auth:
    """Where to send a project's data and the ``X-Sentry-Auth`` header that goes with it."""

    def __init__(
        self,
        scheme: str,
        host: str,
        project_id: str,
        public_key: str,
        secret_key: Optional[str] = None,
        version: int = 7,
        client: Optional[Any] = None,
        path: str = "/",
    ) -> None:
        self.scheme = scheme
        self.host = host
        self.path = path
        self.project_id = project_id
        self.public_key = public_key
        self.secret_key = secret_key
        self.version = version
        self.client = client

    def get_api_url(self, type: EndpointType = EndpointType.ENVELOPE) -> str:
        """The URL of an ingest endpoint of the project."""
        return f"{self.scheme}://{self.host}{self.path}api/{self.project_id}/{type.value}/"

    def to_header(self) -> str:
        """The value of the ``X-Sentry-Auth`` header."""
        parts = [("sentry_key", self.public_key), ("sentry_version", self.version)]
        if self.client is not None:
            parts.append(("sentry_client", self.client))
        if self.secret_key is not None:
            parts.append(("sentry_secret", self.secret_key))
        return "Sentry " + ", ".join(f"{key}={value}" for key, value in parts)


# --------------------------------------------------------------------------- internal errors


class CaptureInternalException:
    """Context manager that logs and swallows any exception raised inside it."""

    __slots__ = ()

    def __enter__(self) -> CaptureInternalException:
        return self

    def __exit__(
        self,
        exc_type: Optional[type[BaseException]],
        exc: Optional[BaseException],
        tb: Optional[TracebackType],
    ) -> bool:
        if exc_type is not None and exc is not None:
            capture_internal_exception((exc_type, exc, tb))
        return True


_CAPTURE_INTERNAL_EXCEPTION = CaptureInternalException()


def capture_internal_exceptions() -> CaptureInternalException:
    """``with capture_internal_exceptions():`` logs and swallows errors in the block."""
    return _CAPTURE_INTERNAL_EXCEPTION


def capture_internal_exception(exc_info: ExcInfo) -> None:
    """Log an exception caused by the SDK itself (never sent as an event)."""
    if get_client().is_active():
        logger.error("Internal error in tripwire", exc_info=exc_info)


def reraise(
    tp: Optional[type[BaseException]], value: Optional[BaseException], tb: Any = None
) -> NoReturn:
    """Raise `value` again with traceback `tb`."""
    assert value is not None
    if value.__traceback__ is not tb:
        raise value.with_traceback(tb)
    raise value


# --------------------------------------------------------------------------- types and errors


def get_type_name(cls: Optional[type]) -> Optional[str]:
    """The class's qualified name (``Outer.Inner``), or None."""
    return getattr(cls, "__qualname__", None) or getattr(cls, "__name__", None)


def get_type_module(cls: Optional[type]) -> Optional[str]:
    """The class's module, None for builtins."""
    module = getattr(cls, "__module__", None)
    if module in ("builtins", "__builtins__"):
        return None
    return module


def get_errno(exc_value: BaseException) -> Optional[Any]:
    """The ``errno`` of an OSError-like exception, else None."""
    return getattr(exc_value, "errno", None)


def get_error_message(exc_value: Optional[BaseException]) -> str:
    """The exception's message as shown in an event (with its notes, one per line)."""
    message: Any = safe_str(
        getattr(exc_value, "message", "") or getattr(exc_value, "detail", "") or exc_value
    )
    notes = getattr(exc_value, "__notes__", None)
    if isinstance(notes, list) and notes:
        message += "\n" + "\n".join(note for note in notes if isinstance(note, str))
    return str(message)


def exc_info_from_error(error: Union[BaseException, ExcInfo]) -> ExcInfo:
    """``(type, value, traceback)`` for an exception or an exc_info tuple.

    Raises:
        ValueError: `error` is neither.
    """
    info = _exc_info_from_error(error)
    if info is None:
        if isinstance(error, tuple) and len(error) == 3:
            return error  # as sentry_sdk: any 3-tuple, (None, None, None) included
        raise ValueError("Expected Exception object to report, got %s!" % type(error))
    return info


def walk_exception_chain(exc_info: ExcInfo) -> Iterator[ExcInfo]:
    """The exception, then its cause or context, and so on (each once)."""
    exc_type, exc_value, tb = exc_info
    seen: set[int] = set()
    while exc_type is not None and exc_value is not None and id(exc_value) not in seen:
        yield exc_type, exc_value, tb
        seen.add(id(exc_value))
        # `raise X from Y` (and `from None`) sets __suppress_context__: follow the cause.
        cause = exc_value.__cause__ if exc_value.__suppress_context__ else exc_value.__context__
        if cause is None:
            break
        exc_type, exc_value, tb = type(cause), cause, cause.__traceback__


def event_hint_with_exc_info(exc_info: Optional[ExcInfo] = None) -> dict[str, Optional[ExcInfo]]:
    """``{"exc_info": ...}`` for `exc_info` (default: the exception being handled), or None."""
    info = sys.exc_info() if exc_info is None else exc_info_from_error(exc_info)
    return {"exc_info": info if info[0] is not None else None}


# --------------------------------------------------------------------------- frames


def _frame_options(
    client_options: Optional[Mapping[str, Any]] = None,
    include_local_variables: Optional[bool] = None,
    include_source_context: Optional[bool] = None,
    max_value_length: Optional[int] = None,
    custom_repr: Optional[Callable[..., Optional[str]]] = None,
) -> _frames.FrameOptions:
    """FrameOptions for the given client options (default: the active client's)."""
    if client_options is None:
        client = get_client()
        client_options = client.options if client.is_active() else {}
    opts = client_options
    if include_local_variables is None:
        include_local_variables = bool(opts.get("include_local_variables", True))
    if include_source_context is None:
        include_source_context = bool(opts.get("include_source_context", True))
    serializer = Serializer(
        max_value_length=max_value_length or opts.get("max_value_length"),
        custom_repr=custom_repr or opts.get("custom_repr"),
    )
    return _frames.FrameOptions(
        include_source_context=include_source_context,
        include_local_variables=include_local_variables,
        in_app_include=opts.get("in_app_include") or (),
        in_app_exclude=opts.get("in_app_exclude") or (),
        project_root=opts.get("project_root"),
        max_stack_frames=opts.get("max_stack_frames", DEFAULT_MAX_STACK_FRAMES),
        add_full_stack=bool(opts.get("add_full_stack", DEFAULT_ADD_FULL_STACK)),
        vars_renderer=serializer.frame_vars if include_local_variables else None,
    )


def should_hide_frame(frame: FrameType) -> bool:
    """Whether the frame is left out of stack traces (the SDK's own, or ``__traceback_hide__``)."""
    module = frame.f_globals.get("__name__")
    if isinstance(module, str) and module.startswith(("tripwire.", "sentry_sdk.")):
        return True
    for name in ("__traceback_hide__", "__tracebackhide__"):
        try:
            if frame.f_locals[name]:
                return True
        except Exception:  # noqa: S112 - absent or a broken locals mapping: not hidden
            continue
    return False


def iter_stacks(tb: Optional[TracebackType]) -> Iterator[TracebackType]:
    """The traceback entries whose frames are not hidden."""
    while tb is not None:
        if not should_hide_frame(tb.tb_frame):
            yield tb
        tb = tb.tb_next


def filename_for_module(module: Optional[str], abs_path: Optional[str]) -> Optional[str]:
    """The file name shown for a frame: relative to where its top-level package lives."""
    if not abs_path or not module:
        return abs_path
    try:
        return _frames._short_filename(module, abs_path)
    except Exception:
        return abs_path


def get_lines_from_file(
    filename: str,
    lineno: int,
    max_length: Optional[int] = None,
    loader: Optional[Any] = None,
    module: Optional[str] = None,
) -> tuple[list[str], Optional[str], list[str]]:
    """Five lines of source before `lineno` (1-based), the line itself and five after."""
    module_globals: dict[str, Any] = {}
    if loader is not None and module is not None:
        module_globals = {"__name__": module, "__loader__": loader}
    lines = linecache.getlines(filename, module_globals)
    index = lineno - 1
    if not lines or index < 0 or index >= len(lines):
        return [], None, []

    def fit(line: str) -> str:
        text = line.strip("\r\n")
        cut = strip_string(text, max_length)
        return cut.value if isinstance(cut, AnnotatedValue) else cut

    before = [fit(line) for line in lines[max(0, index - 5) : index]]
    after = [fit(line) for line in lines[index + 1 : index + 6]]
    return before, fit(lines[index]), after


def get_source_context(
    frame: FrameType, tb_lineno: Optional[int], max_value_length: Optional[int] = None
) -> tuple[list[str], Optional[str], list[str]]:
    """`get_lines_from_file` for a frame (its current line unless `tb_lineno` is given)."""
    try:
        path = frame.f_code.co_filename
        module = frame.f_globals.get("__name__")
        loader = frame.f_globals.get("__loader__")
        lineno = tb_lineno if tb_lineno is not None else frame.f_lineno
    except Exception:
        return [], None, []
    if lineno is None or not path:
        return [], None, []
    return get_lines_from_file(path, lineno, max_value_length, loader=loader, module=module)


def serialize_frame(
    frame: FrameType,
    tb_lineno: Optional[int] = None,
    include_local_variables: bool = True,
    include_source_context: bool = True,
    max_value_length: Optional[int] = None,
    custom_repr: Optional[Callable[..., Optional[str]]] = None,
) -> dict[str, Any]:
    """One event frame dict for `frame` (file, function, module, line, source, vars)."""
    opts = _frame_options(
        {},
        include_local_variables=include_local_variables,
        include_source_context=include_source_context,
        max_value_length=max_value_length,
        custom_repr=custom_repr,
    )
    static = _frames._static_for(opts, frame)
    lineno = frame.f_lineno if tb_lineno is None else tb_lineno
    item = _frames._render([(frame, lineno, static)], opts)[0]
    item.pop("in_app", None)  # decided later, with the client's rules
    return item


def current_stacktrace(
    include_local_variables: bool = True,
    include_source_context: bool = True,
    max_value_length: Optional[int] = None,
) -> dict[str, Any]:
    """``{"frames": [...]}`` for the caller's stack, oldest frame first."""
    opts = _frame_options(
        {},
        include_local_variables=include_local_variables,
        include_source_context=include_source_context,
        max_value_length=max_value_length,
    )
    frame = sys._getframe(1)
    return {"frames": _frames.frames_from_stack(frame, opts)}


def _module_in_list(name: Optional[str], items: Optional[Sequence[str]]) -> bool:
    if name is None or not items:
        return False
    return any(name == item or name.startswith(item + ".") for item in items)


def set_in_app_in_frames(
    frames: Any,
    in_app_exclude: Optional[Sequence[str]],
    in_app_include: Optional[Sequence[str]],
    project_root: Optional[str] = None,
) -> Optional[Any]:
    """Set ``in_app`` on frames that have none yet, by module lists, then by path."""
    if not frames:
        return None
    for frame in frames:
        if frame.get("in_app") is not None:
            continue
        module = frame.get("module")
        if _module_in_list(module, in_app_include):
            frame["in_app"] = True
            continue
        if _module_in_list(module, in_app_exclude):
            frame["in_app"] = False
            continue
        abs_path = frame.get("abs_path")
        if abs_path is None:
            continue
        if _frames._is_external(abs_path):
            frame["in_app"] = False
        elif project_root is not None and abs_path.startswith(project_root):
            frame["in_app"] = True
    return frames


def iter_event_stacktraces(event: Mapping[str, Any]) -> Iterator[Any]:
    """The event's stack traces: its own, its threads', its exceptions'."""
    if "stacktrace" in event:
        yield event["stacktrace"]
    if "threads" in event:
        for thread in event["threads"].get("values") or ():
            if "stacktrace" in thread:
                yield thread["stacktrace"]
    if "exception" in event:
        for exception in event["exception"].get("values") or ():
            if isinstance(exception, dict) and "stacktrace" in exception:
                yield exception["stacktrace"]


def iter_event_frames(event: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every frame of every stack trace of the event."""
    for stacktrace in iter_event_stacktraces(event):
        if isinstance(stacktrace, AnnotatedValue):
            stacktrace = stacktrace.value or {}
        yield from stacktrace.get("frames") or ()


def handle_in_app(
    event: Event,
    in_app_exclude: Optional[Sequence[str]] = None,
    in_app_include: Optional[Sequence[str]] = None,
    project_root: Optional[str] = None,
) -> Event:
    """`set_in_app_in_frames` on every stack trace of the event; returns the event."""
    for stacktrace in iter_event_stacktraces(event):
        if isinstance(stacktrace, AnnotatedValue):
            stacktrace = stacktrace.value or {}
        set_in_app_in_frames(
            stacktrace.get("frames"),
            in_app_exclude=in_app_exclude,
            in_app_include=in_app_include,
            project_root=project_root,
        )
    return event


def merge_stack_frames(
    frames: list[dict[str, Any]],
    full_stack: list[dict[str, Any]],
    client_options: Optional[Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """Prepend the frames of `full_stack` missing from `frames` (same file, line and function).

    Keeps the newest ``max_stack_frames`` (option) frames of the result.
    """
    seen = {(f.get("abs_path"), f.get("lineno"), f.get("function")) for f in frames}
    merged = [
        f for f in full_stack if (f.get("abs_path"), f.get("lineno"), f.get("function")) not in seen
    ]
    merged.extend(frames)
    limit = (client_options or {}).get("max_stack_frames", DEFAULT_MAX_STACK_FRAMES)
    if limit is not None and len(merged) > limit:
        merged = merged[len(merged) - limit :]
    return merged


# --------------------------------------------------------------------------- exceptions


def single_exception_from_error_tuple(
    exc_type: Optional[type],
    exc_value: Optional[BaseException],
    tb: Optional[TracebackType],
    client_options: Optional[Mapping[str, Any]] = None,
    mechanism: Optional[dict[str, Any]] = None,
    exception_id: Optional[int] = None,
    parent_id: Optional[int] = None,
    source: Optional[str] = None,
    full_stack: Optional[list[dict[str, Any]]] = None,
) -> dict[str, Any]:
    """One entry of ``exception.values`` for this exception alone (its chain is not followed)."""
    mech = dict(mechanism) if mechanism else {"type": "generic", "handled": True}
    if exception_id is not None:
        mech["exception_id"] = exception_id
    if parent_id is not None:
        mech["parent_id"] = parent_id
    if source is not None:
        mech["source"] = source
    if exception_id is not None and exception_id > 0:
        mech["type"] = "chained"
    opts = _frame_options(client_options)
    frames = _frames.frames_from_traceback(tb, opts)
    if full_stack:
        frames = merge_stack_frames(frames, full_stack, client_options)
    value = get_error_message(exc_value) if exc_value is not None else None
    entry: dict[str, Any] = {
        "mechanism": mech,
        "module": get_type_module(exc_type),
        "type": get_type_name(exc_type),
        "value": value,
    }
    if frames:
        entry["stacktrace"] = {"frames": frames}
    return entry


def exceptions_from_error_tuple(
    exc_info: ExcInfo,
    client_options: Optional[Mapping[str, Any]] = None,
    mechanism: Optional[dict[str, Any]] = None,
    full_stack: Optional[list[dict[str, Any]]] = None,
) -> list[dict[str, Any]]:
    """The event's ``exception.values`` for `exc_info`: the chain, innermost cause first."""
    values = exceptions_from_exc_info(exc_info, _frame_options(client_options), mechanism)
    if full_stack:
        for entry in values:
            stack = entry.get("stacktrace")
            if stack:
                stack["frames"] = merge_stack_frames(stack["frames"], full_stack, client_options)
    return values


def exceptions_from_error(
    exc_type: Optional[type],
    exc_value: Optional[BaseException],
    tb: Optional[TracebackType],
    client_options: Optional[Mapping[str, Any]] = None,
    mechanism: Optional[dict[str, Any]] = None,
    exception_id: int = 0,
    parent_id: int = 0,
    source: Optional[str] = None,
    full_stack: Optional[list[dict[str, Any]]] = None,
) -> tuple[int, list[dict[str, Any]]]:
    """``(next exception id, values)`` for the exception and its chain, outermost first."""
    if exc_value is None or exc_type is None:
        return exception_id, []
    values = exceptions_from_error_tuple(
        (exc_type, exc_value, tb), client_options, mechanism, full_stack
    )
    values.reverse()
    return exception_id + len(values), values


def event_from_exception(
    exc_info: Union[BaseException, ExcInfo],
    client_options: Optional[dict[str, Any]] = None,
    mechanism: Optional[dict[str, Any]] = None,
) -> tuple[Event, Hint]:
    """``(event, hint)`` for an exception, built with the active client's frame settings.

    The event is ``{"level": "error", "exception": {"values": [...]}}`` and the hint
    ``{"exc_info": exc_info}``.
    """
    info = exc_info_from_error(exc_info)
    client = get_client()
    if client_options is None and client.is_active():
        event, hint = client._event_from_exception(info, mechanism)
    else:
        event, hint = _event_from_exception(info, _frame_options(client_options or {}), mechanism)
    return cast("Event", event), hint


# --------------------------------------------------------------------------- functions


def qualname_from_function(func: Callable[..., Any]) -> Optional[str]:
    """``module.qualname`` of a function or method (``partial(<function ...>)`` for partials)."""
    func_qualname: Optional[str] = None
    prefix, suffix = "", ""
    if isinstance(func, functools.partial):
        prefix, suffix = "partial(<function ", ">)"
        func = func.func
    if getattr(func, "__qualname__", None) is not None:
        func_qualname = func.__qualname__
    elif getattr(func, "__name__", None) is not None:
        func_qualname = func.__name__
    if func_qualname is None:
        return None
    module = getattr(func, "__module__", None)
    if module is not None:
        func_qualname = f"{module}.{func_qualname}"
    return prefix + func_qualname + suffix


def transaction_from_function(func: Callable[..., Any]) -> Optional[str]:
    """The transaction name for a view or handler function (its qualified name)."""
    return qualname_from_function(func)


def ensure_integration_enabled(
    integration: type[Integration], original_function: Optional[Callable[..., Any]] = None
) -> Callable[[F], F]:
    """Decorator for patched functions: while the active client lacks `integration`, call
    `original_function` instead (without one, do nothing and return None).

    The wrapper takes the name and docstring of `original_function` when given.
    """

    def decorate(sentry_function: F) -> F:
        def runner(*args: Any, **kwargs: Any) -> Any:
            if get_client().get_integration(integration) is None:
                if original_function is None:
                    return None
                return original_function(*args, **kwargs)
            return sentry_function(*args, **kwargs)

        return functools.wraps(original_function or sentry_function)(runner)  # type: ignore[return-value]

    return decorate


# --------------------------------------------------------------------------- URLs


class Components(NamedTuple):
    """The parts of a URL (as `urllib.parse.SplitResult`)."""

    scheme: str
    netloc: str
    path: str
    query: str
    fragment: str


class ParsedUrl(NamedTuple):
    """A URL without query and fragment, plus those two."""

    url: str
    query: str
    fragment: str


def sanitize_url(
    url: str,
    remove_authority: bool = True,
    remove_query_values: bool = True,
    split: bool = False,
) -> Union[str, Components]:
    """The URL with credentials and query values replaced by ``[Filtered]``."""
    parsed = urlsplit(url)
    netloc = parsed.netloc
    if remove_authority and "@" in netloc:
        auth, host = netloc.rsplit("@", 1)
        filtered = ":".join(SENSITIVE_DATA_SUBSTITUTE for _ in auth.split(":", 1))
        netloc = f"{filtered}@{host}"
    query = parsed.query
    if remove_query_values:
        pairs = parse_qsl(query, keep_blank_values=True)
        query = unquote_filtered(urlencode({key: SENSITIVE_DATA_SUBSTITUTE for key, _ in pairs}))
    components = Components(parsed.scheme, netloc, parsed.path, query, parsed.fragment)
    return components if split else urlunsplit(components)


def unquote_filtered(query: str) -> str:
    """Undo the percent-encoding of the ``[Filtered]`` marker in a query string."""
    return query.replace(quote(SENSITIVE_DATA_SUBSTITUTE, safe=""), SENSITIVE_DATA_SUBSTITUTE)


def parse_url(url: str, sanitize: bool = True) -> ParsedUrl:
    """Split a URL into the URL without query and fragment, the query and the fragment.

    Credentials are always ``[Filtered]``; query values too with `sanitize`.
    """
    parts: Any = sanitize_url(url, remove_authority=True, remove_query_values=sanitize, split=True)
    base = urlunsplit(Components(parts.scheme, parts.netloc, parts.path, "", ""))
    return ParsedUrl(url=base, query=parts.query, fragment=parts.fragment)


def is_sentry_url(client: Optional[BaseClient], url: str) -> bool:
    """Whether `url` goes to the client's own DSN host (requests the SDK must not trace)."""
    if client is None:
        return False
    dsn = getattr(client, "_parsed_dsn", None)
    if dsn is None:
        options = getattr(client, "options", None) or {}
        raw = options.get("dsn") if isinstance(options, Mapping) else None
        if not raw:
            return False
        try:
            dsn = _Dsn.parse(raw)
        except (BadDsn, TypeError):
            return False
    return bool(url) and dsn.netloc in url


# --------------------------------------------------------------------------- versions


# PEP 440 versions (the specification's own grammar), with a leading "v" allowed.
_PEP440 = re.compile(
    r"""^\s*v?(?:[0-9]+!)?(?P<release>[0-9]+(?:\.[0-9]+)*)
    (?:[-_.]?(?:a|b|c|rc|alpha|beta|pre|preview)[-_.]?[0-9]*)?
    (?:-[0-9]+|[-_.]?(?:post|rev|r)[-_.]?[0-9]*)?
    (?:[-_.]?dev[-_.]?[0-9]*)?
    (?:\+[a-z0-9]+(?:[-_.][a-z0-9]+)*)?\s*$""",
    re.VERBOSE | re.IGNORECASE,
)


def parse_version(version: str) -> Optional[tuple[int, ...]]:
    """The release numbers of a PEP 440 version, at most three: "1.2.3rc1" -> (1, 2, 3).

    None if `version` is not a PEP 440 version.
    """
    try:
        match = _PEP440.match(version)
    except TypeError:
        return None
    if match is None:
        return None
    return tuple(int(part) for part in match.group("release").split(".")[:3])


def package_version(package: str) -> Optional[tuple[int, ...]]:
    """The installed version of a distribution as a tuple, or None if it is not installed."""
    found = _dist_info_versions().get(_dist_key(package))
    if found is None:
        # Not installed as a wheel (an egg, a develop install...): ask importlib, whose
        # first use costs ~10 ms and each call a scan of sys.path.
        from importlib.metadata import PackageNotFoundError, version

        try:
            found = version(package)
        except (PackageNotFoundError, ValueError):
            return None
    return parse_version(found)


def _dist_key(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


_dist_info_cache: tuple[tuple[str, ...], dict[str, str]] = ((), {})


def _dist_info_versions() -> dict[str, str]:
    """{distribution: version} from the names of the ``*.dist-info`` directories on
    sys.path (one directory listing per entry, no file read); the first entry wins, as
    for imports. Integrations check versions at init: importlib.metadata would read a
    METADATA file per question."""
    global _dist_info_cache
    path = tuple(sys.path)
    cached_path, versions = _dist_info_cache
    if cached_path == path:
        return versions
    versions = {}
    for entry in path:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue
        for name in names:
            if not name.endswith(".dist-info"):
                continue
            dist, _, version = name[: -len(".dist-info")].rpartition("-")
            if dist and version:
                versions.setdefault(_dist_key(dist), version)
    _dist_info_cache = (path, versions)
    return versions


def has_data_collection_enabled(options: Optional[Mapping[str, Any]]) -> bool:
    """Whether the user configured the ``data_collection`` option (it then replaces
    ``send_default_pii`` and the older switches)."""
    if options is None:
        return False
    collection = options.get("data_collection")
    return bool(collection is not None and collection.get("provided_by_user", False))


# --------------------------------------------------------------------------- gevent


def get_gevent_hub() -> Any:
    """gevent's hub when gevent is in use, else None."""
    hub = sys.modules.get("gevent.hub")
    return None if hub is None else hub.get_hub()


def is_module_patched(mod_name: str) -> bool:
    """Whether gevent monkey-patched the stdlib module `mod_name`."""
    monkey = sys.modules.get("gevent.monkey")
    return bool(monkey is not None and monkey.is_module_patched(mod_name))


def is_gevent() -> bool:
    """Whether gevent patched threading or `_thread`."""
    return is_module_patched("threading") or is_module_patched("_thread")


@contextlib.contextmanager
def nullcontext() -> Iterator[None]:
    """A context manager that does nothing."""
    yield


def should_be_treated_as_error(ty: Any, value: Any) -> bool:
    """Whether an exception of type `ty` is an error (`sys.exit(0)` and `sys.exit()` are not)."""
    return not (ty is SystemExit and getattr(value, "code", 1) in (0, None))


def _option_or_experiment(options: Optional[Mapping[str, Any]], name: str) -> Any:
    if options is None:
        return None
    return options.get(name) or (options.get("_experiments") or {}).get(name)


def get_before_send_log(options: Optional[Mapping[str, Any]]) -> Optional[Callable[..., Any]]:
    """The `before_send_log` hook, also where it used to live (`_experiments`)."""
    return _option_or_experiment(options, "before_send_log")  # type: ignore[no-any-return]


def get_before_send_metric(options: Optional[Mapping[str, Any]]) -> Optional[Callable[..., Any]]:
    """The `before_send_metric` hook, also where it used to live (`_experiments`)."""
    return _option_or_experiment(options, "before_send_metric")  # type: ignore[no-any-return]


def get_before_send_span(options: Optional[Mapping[str, Any]]) -> Optional[Callable[..., Any]]:
    """The `before_send_span` hook, also where it used to live (`_experiments`)."""
    return _option_or_experiment(options, "before_send_span")  # type: ignore[no-any-return]


def get_current_thread_meta(
    thread: Optional[threading.Thread] = None,
) -> tuple[Optional[int], Optional[str]]:
    """``(id, name)`` of `thread`, else of the running thread (gevent: the hub's id)."""
    if thread is not None and thread.ident is not None:
        return thread.ident, thread.name
    if is_gevent():
        hub = get_gevent_hub()
        ident = getattr(hub, "thread_ident", None)
        if ident is not None:
            return ident, None
    current = threading.current_thread()
    if current.ident is not None:
        return current.ident, current.name
    main = threading.main_thread()
    return main.ident, main.name


def format_attribute(val: Any) -> Any:
    """An attribute value (logs, metrics, spans): a scalar or homogeneous list, else a repr."""
    return _format_attribute(val)


def serialize_attribute(val: Any) -> dict[str, Any]:
    """An attribute value in the protocol's ``{"value": ..., "type": ...}`` form."""
    return _typed_attribute(val)


def deprecation_warning(msg: str) -> None:
    """Emit a DeprecationWarning attributed to the caller of the deprecated API."""
    warnings.warn(msg, DeprecationWarning, stacklevel=3)


__all__ = [
    "FALSY_ENV_VALUES",
    "HAS_CHAINED_EXCEPTIONS",
    "HAS_REAL_CONTEXTVARS",
    "ISO_TZ_SEPARATORS",
    "MAX_STACK_FRAMES",
    "SENSITIVE_DATA_SUBSTITUTE",
    "TRUTHY_ENV_VALUES",
    "AnnotatedValue",
    "Auth",
    "BadDsn",
    "CaptureInternalException",
    "Components",
    "ContextVar",
    "Dsn",
    "ParsedUrl",
    "ServerlessTimeoutWarning",
    "TimeoutThread",
    "capture_internal_exception",
    "capture_internal_exceptions",
    "current_stacktrace",
    "datetime_from_isoformat",
    "deprecation_warning",
    "disable_capture_event",
    "ensure_integration_enabled",
    "env_to_bool",
    "event_from_exception",
    "event_hint_with_exc_info",
    "exc_info_from_error",
    "exceptions_from_error",
    "exceptions_from_error_tuple",
    "filename_for_module",
    "format_timestamp",
    "get_default_release",
    "get_errno",
    "get_error_message",
    "get_git_revision",
    "get_lines_from_file",
    "get_sdk_name",
    "get_source_context",
    "get_type_module",
    "get_type_name",
    "handle_in_app",
    "has_data_collection_enabled",
    "is_gevent",
    "is_internal_task",
    "is_sentry_url",
    "is_valid_sample_rate",
    "iter_event_frames",
    "iter_event_stacktraces",
    "iter_stacks",
    "json_dumps",
    "logger",
    "mark_sentry_task_internal",
    "match_regex_list",
    "merge_stack_frames",
    "nanosecond_time",
    "now",
    "package_version",
    "parse_url",
    "parse_version",
    "qualname_from_function",
    "reraise",
    "safe_repr",
    "safe_serialize",
    "safe_str",
    "sanitize_url",
    "serialize_frame",
    "set_in_app_in_frames",
    "should_hide_frame",
    "single_exception_from_error_tuple",
    "strip_string",
    "to_string",
    "transaction_from_function",
    "try_convert",
    "walk_exception_chain",
]
