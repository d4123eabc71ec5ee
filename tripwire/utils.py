"""The helpers users commonly import from sentry_sdk.utils (re-exports, not a grab-bag)."""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from tripwire._clock import format_timestamp
from tripwire._log import logger
from tripwire.dsn import BadDsn, Dsn
from tripwire.event.exceptions import exc_info_from_error
from tripwire.event.serializer import safe_repr

if TYPE_CHECKING:
    from tripwire.integrations import Integration
    from tripwire.types import Event, ExcInfo, Hint

F = TypeVar("F", bound=Callable[..., Any])


class capture_internal_exceptions:
    """`with capture_internal_exceptions():` logs and swallows any exception in the block."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> bool:
        if exc_type is not None and issubclass(exc_type, Exception):
            logger.debug("internal error ignored", exc_info=(exc_type, exc, tb))
            return True
        return False


def event_from_exception(
    exc_info: BaseException | ExcInfo,
    client_options: dict[str, Any] | None = None,
    mechanism: dict[str, Any] | None = None,
) -> tuple[Event, Hint]:
    """Build an error event (and its hint) from an exception, with the active client's options."""
    from tripwire.scope._current import get_client

    client = get_client()
    info = exc_info_from_error(exc_info)
    if client.is_active() and info is not None:
        return client._event_from_exception(info, mechanism)
    from tripwire.event.exceptions import event_from_exception as build
    from tripwire.event.frames import FrameOptions

    return build(exc_info, FrameOptions(), mechanism)


def qualname_from_function(func: Callable[..., Any]) -> str | None:
    """`module.qualname` of a function, or None."""
    name = getattr(func, "__qualname__", None) or getattr(func, "__name__", None)
    if name is None:
        return None
    module = getattr(func, "__module__", None)
    return f"{module}.{name}" if module else str(name)


def parse_version(version: str) -> tuple[int, ...] | None:
    """(1, 2, 3) from "1.2.3rc1"; None if it does not start with a number."""
    parts: list[int] = []
    for piece in version.split("."):
        digits = ""
        for ch in piece:
            if not ch.isdigit():
                break
            digits += ch
        if not digits:
            break
        parts.append(int(digits))
        if len(digits) != len(piece):
            break
    return tuple(parts) or None


def ensure_integration_enabled(
    integration: type[Integration], original_function: Callable[..., Any] | None = None
) -> Callable[[F], F]:
    """Decorator for patched functions: call the original when the integration is off."""

    def decorate(sentry_function: F) -> F:
        @functools.wraps(sentry_function)
        def runner(*args: Any, **kwargs: Any) -> Any:
            from tripwire.scope._current import get_client

            if get_client().get_integration(integration) is None and original_function:
                return original_function(*args, **kwargs)
            return sentry_function(*args, **kwargs)

        return runner  # type: ignore[return-value]

    return decorate


__all__ = [
    "BadDsn",
    "Dsn",
    "capture_internal_exceptions",
    "ensure_integration_enabled",
    "event_from_exception",
    "exc_info_from_error",
    "format_timestamp",
    "logger",
    "parse_version",
    "qualname_from_function",
    "safe_repr",
]
