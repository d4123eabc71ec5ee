"""Capture entry points shared by `Scope`, `Hub`, the top-level API and tracing.

They collect the scope layers for the call (global, isolation, current, the scope
the method was called on, then the per-call `scope=` or keyword arguments) and
hand the event to the client (`Client._capture`, which runs the steps of
`capture/steps.py`). Nothing is merged into a new Scope object.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

from tripwire._client_base import capture_guard
from tripwire._log import logger, suppress
from tripwire.event._repr import safe_repr
from tripwire.scope import _current
from tripwire.scope._scope import SCOPE_KWARGS, Scope

if TYPE_CHECKING:
    from tripwire.types import EventDict, Hint


def collect_layers(
    scope: Scope, extra_scope: Any, scope_kwargs: dict[str, Any]
) -> tuple[Scope, ...] | None:
    """The scopes to apply, oldest first; None when the arguments are invalid."""
    if extra_scope is not None and scope_kwargs:
        logger.debug("capture: cannot provide scope and kwargs; event dropped")
        return None
    layers: list[Scope] = [_current.get_global_scope()]
    isolation = _current._isolation_scope.get()
    current = _current._current_scope.get()
    if isolation is not None:
        layers.append(isolation)
    if current is not None:
        layers.append(current)
    if scope is not current and scope is not isolation and scope is not layers[0]:
        layers.append(scope)
    if extra_scope is not None:
        if isinstance(extra_scope, Scope):
            layers.append(extra_scope)
        elif callable(extra_scope):
            temp = Scope()
            extra_scope(temp)
            layers.append(temp)
        else:
            logger.debug("capture: scope= must be a Scope or a callable; ignored")
    elif scope_kwargs:
        unknown = set(scope_kwargs) - SCOPE_KWARGS
        if unknown:
            logger.debug("capture: unknown scope keyword(s) %s ignored", sorted(unknown))
            scope_kwargs = {k: v for k, v in scope_kwargs.items() if k in SCOPE_KWARGS}
        temp = Scope()
        temp.update_from_kwargs(**scope_kwargs)
        layers.append(temp)
    return tuple(layers)


def capture_event(
    scope: Scope,
    event: Any,
    hint: Hint | None,
    extra_scope: Any,
    scope_kwargs: dict[str, Any],
    *,
    built_by_sdk: bool = False,
) -> str | None:
    """Capture a ready-made event dict."""
    client = scope.get_client()
    if not client.is_active() or capture_guard.active:
        # Inactive, or called by user code the SDK runs while capturing (no recursion).
        return None
    layers = collect_layers(scope, extra_scope, scope_kwargs)
    if layers is None:
        return None
    if not isinstance(event, dict):
        logger.debug("capture_event: event must be a dict, got %s", type(event).__name__)
        return None
    if not built_by_sdk:
        event = dict(event)  # the caller's dict is never mutated
    # Inside the SDK: user code we run (repr, hooks) may log, and the logging
    # integration must not turn that into another capture (recursion).
    with suppress:
        event_id = client._capture(event, hint if hint is not None else {}, layers, built_by_sdk)
    if event_id is not None and event.get("type") != "transaction":  # as sentry_sdk
        isolation = _current._isolation_scope.get() or layers[0]
        isolation._w().last_event_id = event_id
    return event_id


def capture_message(
    scope: Scope,
    message: Any,
    level: str | None,
    extra_scope: Any,
    scope_kwargs: dict[str, Any],
) -> str | None:
    """Capture a message at `level` (default "info")."""
    client = scope.get_client()
    if not client.is_active():
        return None
    if not isinstance(message, str):
        try:
            message = str(message)
        except Exception:
            # A message whose __str__ raises is still sent (as its repr, or
            # "<broken repr>"), never lost unseen.
            message = safe_repr(message)
    event: EventDict = {"message": message, "level": level or "info"}
    return capture_event(scope, event, None, extra_scope, scope_kwargs, built_by_sdk=True)


def capture_exception(
    scope: Scope,
    error: Any,
    extra_scope: Any,
    scope_kwargs: dict[str, Any],
) -> str | None:
    """Capture `error`, or the exception being handled when it is None."""
    client = scope.get_client()
    if not client.is_active() or capture_guard.active:
        return None
    if error is None:
        exc_info: Any = sys.exc_info()
    elif isinstance(error, BaseException):
        exc_info = (type(error), error, error.__traceback__)
    elif isinstance(error, tuple) and len(error) == 3:
        exc_info = error
    else:
        logger.debug("capture_exception: not an exception: %r", type(error))
        return None
    if exc_info[1] is None:
        logger.debug("capture_exception: no exception to capture")
        return None
    with suppress:  # building frames calls user __repr__s (see capture_event)
        event, hint = client._event_from_exception(exc_info)
    return capture_event(scope, event, hint, extra_scope, scope_kwargs, built_by_sdk=True)
