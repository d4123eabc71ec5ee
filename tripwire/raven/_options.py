"""raven 6.x client options: validated once, then mapped onto a tripwire client.

Values that cannot work (``sample_rate="abc"``, ``tags="x"``) raise a clear
TypeError / ValueError at construction; raven accepted them and failed on every
capture. Options raven knows but tripwire has no use for, and options nobody knows,
are logged and ignored, as raven ignored unknown options.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable, Mapping
from typing import Any, Optional
from urllib.parse import parse_qsl

from tripwire._log import logger

DEFAULT_PROCESSORS = ("raven.processors.SanitizePasswordsProcessor",)
DEFAULT_STRING_MAX_LENGTH = 400
DEFAULT_LIST_MAX_LENGTH = 50

# raven options that tripwire accepts and ignores (transport tuning it does itself).
IGNORED_OPTIONS = frozenset(
    {"timeout", "verify_ssl", "repos", "transaction", "http_proxy", "https_proxy", "dsn_options"}
)
# Pre-6.0 ways of giving the DSN, in pieces.
LEGACY_DSN_OPTIONS = frozenset({"servers", "public_key", "secret_key", "project"})


class Settings:
    """The validated raven options of one client."""

    __slots__ = (
        "auto_log_stacks",
        "ca_certs",
        "capture_locals",
        "environment",
        "exclude_paths",
        "extra",
        "ignore_exceptions",
        "include_paths",
        "include_versions",
        "list_max_length",
        "name",
        "processors",
        "release",
        "sample_rate",
        "sanitize_keys",
        "site",
        "string_max_length",
        "tags",
    )

    def __init__(self) -> None:
        self.name: str = ""
        self.release: Optional[str] = None
        self.environment: Optional[str] = None
        self.site: Optional[str] = None
        self.tags: dict[str, Any] = {}
        self.extra: dict[str, Any] = {}
        self.include_paths: set[str] = set()
        self.exclude_paths: set[str] = set()
        self.sample_rate: float = 1.0
        self.string_max_length = DEFAULT_STRING_MAX_LENGTH
        self.list_max_length = DEFAULT_LIST_MAX_LENGTH
        self.auto_log_stacks = False
        self.capture_locals = True
        self.include_versions = True
        self.processors: tuple[Any, ...] = DEFAULT_PROCESSORS
        self.sanitize_keys: Optional[list[str]] = None
        self.ignore_exceptions: set[Any] = set()
        self.ca_certs: Optional[str] = None


def _describe(value: Any) -> str:
    text = repr(value)
    return f"{type(value).__name__} {text[:57] + '...' if len(text) > 60 else text}"


def _opt_str(name: str, value: Any) -> Optional[str]:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # release=2 is a version, not a mistake
    raise TypeError(f"raven option {name!r} must be a string, got {_describe(value)}")


def _mapping(name: str, value: Any) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise TypeError(f"raven option {name!r} must be a dict, got {_describe(value)}")
    return dict(value)


def _items(name: str, value: Any, ok: Any, expected: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str):
        value = [value]  # raven would have iterated its characters
    if isinstance(value, (bytes, Mapping)) or not isinstance(value, Iterable):
        raise TypeError(f"raven option {name!r} must be {expected}, got {_describe(value)}")
    items = list(value)
    for item in items:
        if not ok(item):
            raise TypeError(
                f"raven option {name!r} must be {expected}, got an item {_describe(item)}"
            )
    return items


def _number(name: str, value: Any, low: float, high: Optional[float], integer: bool) -> Any:
    if isinstance(value, str):
        try:
            value = int(value) if integer else float(value)
        except ValueError:
            raise ValueError(f"raven option {name!r} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"raven option {name!r} must be a number, got {_describe(value)}")
    if integer and not isinstance(value, int):
        if not float(value).is_integer():
            raise ValueError(f"raven option {name!r} must be a whole number, got {value!r}")
        value = int(value)
    if value != value or value < low or (high is not None and value > high):
        bounds = f"between {low:g} and {high:g}" if high is not None else f">= {low:g}"
        raise ValueError(f"raven option {name!r} must be {bounds}, got {value!r}")
    return value


def _flag(name: str, value: Any, default: bool) -> bool:
    if value is None:
        return default
    if isinstance(value, (bool, int)):
        return bool(value)
    raise TypeError(f"raven option {name!r} must be a bool, got {_describe(value)}")


def _is_processor(item: Any) -> bool:
    return isinstance(item, str) or callable(getattr(item, "process", None))


def _is_ignorable(item: Any) -> bool:
    return isinstance(item, str) or (isinstance(item, type) and issubclass(item, BaseException))


def _hostname() -> str:
    import socket

    try:
        return socket.gethostname()
    except Exception:
        return ""


def read_options(options: dict[str, Any]) -> Settings:
    """Validate raven's keyword options (consumed from `options`) into `Settings`.

    Raises:
        TypeError: A value of the wrong type.
        ValueError: A value out of range.
    """
    environ = os.environ
    s = Settings()
    pop = options.pop
    s.name = _opt_str("name", pop("name", None)) or environ.get("SENTRY_NAME") or _hostname()
    s.release = _opt_str("release", pop("release", None)) or environ.get("SENTRY_RELEASE")
    s.environment = _opt_str("environment", pop("environment", None)) or environ.get(
        "SENTRY_ENVIRONMENT"
    )
    s.site = _opt_str("site", pop("site", None))
    s.tags = _mapping("tags", pop("tags", None))
    context = pop("context", None)
    s.extra = (
        _mapping("context", context)
        if context is not None
        else {"sys.argv": list(getattr(sys, "argv", []))}
    )
    s.include_paths = set(
        _items("include_paths", pop("include_paths", None), _is_str, "a list of module names")
    )
    s.exclude_paths = set(
        _items("exclude_paths", pop("exclude_paths", None), _is_str, "a list of module names")
    )
    rate = pop("sample_rate", None)
    s.sample_rate = 1.0 if rate is None else float(_number("sample_rate", rate, 0.0, 1.0, False))
    length = pop("string_max_length", None)
    if length is not None:
        s.string_max_length = _number("string_max_length", length, 0, None, True)
    length = pop("list_max_length", None)
    if length is not None:
        s.list_max_length = _number("list_max_length", length, 0, None, True)
    s.auto_log_stacks = _flag("auto_log_stacks", pop("auto_log_stacks", None), False)
    s.capture_locals = _flag("capture_locals", pop("capture_locals", None), True)
    s.include_versions = _flag("include_versions", pop("include_versions", None), True)
    processors = pop("processors", None)
    if processors is not None:
        s.processors = tuple(
            _items(
                "processors",
                processors,
                _is_processor,
                "a list of processor paths, classes or instances",
            )
        )
    keys = pop("sanitize_keys", None)
    if keys is not None:
        s.sanitize_keys = [
            str(k) for k in _items("sanitize_keys", keys, _is_str, "a list of key names")
        ]
    s.ignore_exceptions = set(
        _items(
            "ignore_exceptions",
            pop("ignore_exceptions", None),
            _is_ignorable,
            "a list of exception classes or names",
        )
    )
    ca_certs = pop("ca_certs", None)
    if ca_certs is not None:
        s.ca_certs = os.fspath(ca_certs) if isinstance(ca_certs, os.PathLike) else str(ca_certs)
    if options.get("verify_ssl", True) in (False, 0, "0", "false", "False"):
        _warn_verify_ssl()
    for name in sorted(options):
        if name in IGNORED_OPTIONS:
            logger.debug("raven option %r is not needed by tripwire; ignored", name)
        elif name in LEGACY_DSN_OPTIONS:
            logger.warning("raven option %r is no longer supported: pass dsn=...; ignored", name)
        else:
            logger.warning("unknown raven option %r; ignored", name)
    return s


def _warn_verify_ssl() -> None:
    logger.warning(
        "raven verify_ssl=False is not supported: certificates are always verified "
        "(pass ca_certs= to trust a private CA)"
    )


def _is_str(item: Any) -> bool:
    return isinstance(item, str)


# DSN schemes like "threaded+https": raven picked a transport by the prefix (deprecated).
def split_dsn(dsn: Optional[str]) -> tuple[Optional[str], dict[str, str]]:
    """The DSN without a ``transport+`` scheme prefix, and its query-string options."""
    if not dsn:
        return None, {}
    text = dsn.strip()
    scheme, sep, rest = text.partition("://")
    if sep and "+" in scheme:
        prefix, _, scheme = scheme.rpartition("+")
        logger.debug("raven DSN transport prefix %r ignored: tripwire picks the transport", prefix)
        text = f"{scheme}{sep}{rest}"
    query: dict[str, str] = {}
    head, mark, tail = text.partition("?")
    if mark:
        query = dict(parse_qsl(tail.partition("#")[0]))
        text = head
    return text, query


def import_path(path: str) -> Any:
    """The object at dotted `path`; ``raven.*`` paths resolve to ``tripwire.raven.*``.

    Raises:
        ImportError: Nothing importable there.
    """
    import importlib

    candidates = [path]
    if path.startswith("raven."):
        candidates.insert(0, "tripwire." + path)
    last_error: Optional[BaseException] = None
    for candidate in candidates:
        module_name, _, attr = candidate.rpartition(".")
        try:
            return getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError, ValueError) as exc:
            last_error = exc
    raise ImportError(f"cannot import {path!r}: {last_error}")
