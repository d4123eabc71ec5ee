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


def guarded(fallback: Any = None) -> Callable[[F], F]:
    """Wrap `func` so that any exception is logged and `fallback` returned instead."""

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            try:
                return func(*args, **kwargs)
            except Exception:
                logger.debug("tripwire.%s failed; ignored", func.__name__, exc_info=True)
                return fallback

        return wrapper  # type: ignore[return-value]

    return decorate
