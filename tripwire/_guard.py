"""The never-raise guard at the API boundary.

Every public capture and scope function runs inside `guarded`: an error inside the
SDK, or a call with bad arguments, is logged (visible with debug=True) and the
caller gets the fallback value. Monitoring must never take the host down.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

from tripwire._log import logger

F = TypeVar("F", bound=Callable[..., Any])


def log_ignored(name: str) -> None:
    """Log (debug) that the API function `name` failed; this never raises either."""
    try:
        logger.debug("tripwire.%s failed; ignored", name, exc_info=True)
    except Exception:  # the guard must not raise (a broken log handler)
        pass


def guarded(fallback: Any = None) -> Callable[[F], F]:
    """Wrap `func` so that any exception is logged and `fallback` returned instead."""

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except Exception:
                log_ignored(func.__name__)
                return fallback

        return wrapper  # type: ignore[return-value]

    return decorate
