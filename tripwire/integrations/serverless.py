"""`serverless_function`: one function call as a serverless invocation.

As sentry_sdk 2.75's ``serverless`` module (a decorator, not an integration):

- each call runs in a fork of the isolation scope with the breadcrumbs cleared, so
  what one invocation records never reaches the next;
- an `Exception` escaping the function is captured (mechanism
  ``{"type": "serverless", "handled": false}``) when a client is active, then
  re-raised unchanged; `BaseException`s such as `SystemExit` pass through;
- with ``flush=True`` (the default) the client is flushed at the end of every call,
  returned or raised, since the platform may freeze the process right after.

Usable bare (``@serverless_function``) or with its option
(``@serverless_function(flush=False)``). Only plain functions are covered: as in
sentry_sdk, a coroutine function's exceptions surface when its coroutine is
awaited, outside the wrapper.
"""

from __future__ import annotations

import functools
import sys
from typing import Any, Callable, Optional, TypeVar, Union, overload

from tripwire.integrations._common.unhandled import capture_unhandled
from tripwire.scope._current import get_client, isolation_scope

F = TypeVar("F", bound=Callable[..., Any])


@overload
def serverless_function(f: F, flush: bool = True) -> F: ...


@overload
def serverless_function(f: None = None, flush: bool = True) -> Callable[[F], F]: ...


def serverless_function(f: Optional[F] = None, flush: bool = True) -> Union[F, Callable[[F], F]]:
    """Capture what escapes `f` and flush the client after every call.

    Args:
        f: The function (when used bare as ``@serverless_function``).
        flush: Flush the client when each call ends.

    Returns:
        The wrapped function, or a decorator when `f` is not given.
    """

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def invocation(*args: Any, **kwargs: Any) -> Any:
            with isolation_scope() as scope:
                scope.clear_breadcrumbs()
                try:
                    return func(*args, **kwargs)
                except Exception:
                    _capture(sys.exc_info())
                    raise
                finally:
                    if flush:
                        _flush()

        return invocation  # type: ignore[return-value]

    if f is None:
        return decorate
    return decorate(f)


def _capture(exc_info: Any) -> None:
    try:
        client = get_client()
        if client.is_active():
            capture_unhandled(client, exc_info, "serverless")
    except Exception:  # reporting must not replace the function's own exception
        pass


def _flush() -> None:
    try:
        get_client().flush()
    except Exception:  # the invocation's own outcome wins
        pass


__all__ = ["serverless_function"]
