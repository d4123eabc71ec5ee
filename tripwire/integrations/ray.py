"""Ray integration: task transactions, submit spans, failures and trace propagation.

As sentry_sdk 2.75's ``ray`` integration (Ray tasks; actors are left alone):

- `ray.remote` is replaced: the function it turns into a task is wrapped, and the
  wrapper's signature gains a keyword-only ``_sentry_tracing=None`` (Ray checks a
  call's arguments against the signature);
- **driver**: ``task.remote(...)`` runs in a ``queue.submit.ray`` span (origin
  ``auto.queue.ray``, named by the function's qualified name, status ``ok`` or
  ``internal_error``) and passes the trace headers (``sentry-trace``, ``baggage``) as
  ``_sentry_tracing``;
- **worker**: the task runs as a ``queue.task.ray`` transaction of that name (source
  ``task``) continuing the driver's trace, status ``ok``, or ``internal_error`` when
  it raises; the exception is an event (mechanism ``ray``, handled false), re-raised
  for Ray to hand to the driver.

A worker process reports only if the SDK is initialised there with this integration
(Ray's ``runtime_env={"worker_process_setup_hook": ...}``); the wrapper travels with
the pickled function. Difference, on purpose: each task runs in its own isolation
scope (sentry_sdk lets one task's breadcrumbs and tags reach the next task's events).
"""

from __future__ import annotations

import functools
import inspect
import sys
from types import ModuleType
from typing import Any, Callable, Optional

from tripwire.api import capture_event, continue_trace
from tripwire.consts import OP, SPANSTATUS
from tripwire.integrations import DidNotEnable, Integration, _check_minimum_version
from tripwire.integrations._common._hooks import when_imported
from tripwire.integrations._patch import patch
from tripwire.scope._current import get_client, get_current_scope, isolation_scope
from tripwire.tracing._api import sdk_start_span, sdk_start_transaction
from tripwire.tracing._consts import TransactionSource
from tripwire.utils import (
    capture_internal_exceptions,
    event_from_exception,
    logger,
    package_version,
    qualname_from_function,
)

ORIGIN = "auto.queue.ray"
_TRACING = "_sentry_tracing"  # the keyword sentry_sdk adds: workers of either SDK accept it
_MARK = "__tripwire_ray__"


class RayIntegration(Integration):
    """Transactions, spans and errors of Ray tasks."""

    identifier = "ray"
    origin = ORIGIN

    @staticmethod
    def setup_once() -> None:
        """Replace `ray.remote` (when the application imports Ray).

        Raises:
            DidNotEnable: Ray is not installed, or older than 2.7.
        """
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            raise DidNotEnable("Ray not installed.")
        _check_minimum_version(RayIntegration, package_version("ray"))
        when_imported("ray", _patch_ray)


def _patch_ray(ray: ModuleType) -> None:
    if not getattr(ray.remote, _MARK, False):
        patch(ray, "remote", _make_remote(ray.remote))


def _make_remote(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def remote(function: Any = None, *args: Any, **kwargs: Any) -> Any:
        if inspect.isclass(function):  # an actor
            return original(function, *args, **kwargs)

        def decorate(user_function: Any) -> Any:
            if inspect.isclass(user_function):
                return original(*args, **kwargs)(user_function)
            task = _task_function(user_function)
            if function is not None:
                remote_function = original(task)
            else:
                remote_function = original(*args, **kwargs)(task)
            remote_function.remote = _submitter(remote_function.remote, user_function)
            return remote_function

        return decorate(function) if function is not None else decorate

    setattr(remote, _MARK, True)
    return remote


# -- worker --------------------------------------------------------------------------------


def _task_function(user_function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(user_function)
    def task(*args: Any, _sentry_tracing: Optional[dict[str, Any]] = None, **kwargs: Any) -> Any:
        return _run_task(user_function, args, kwargs, _sentry_tracing)

    with capture_internal_exceptions():
        _accept_tracing_keyword(task)
    return task


def _accept_tracing_keyword(function: Callable[..., Any]) -> None:
    """Give `function` the user's signature plus ``_sentry_tracing`` (Ray checks calls)."""
    signature = inspect.signature(function)  # follows __wrapped__: the user's parameters
    parameters = list(signature.parameters.values())
    extra = inspect.Parameter(_TRACING, inspect.Parameter.KEYWORD_ONLY, default=None)
    if parameters and parameters[-1].kind is inspect.Parameter.VAR_KEYWORD:
        parameters.insert(-1, extra)
    else:
        parameters.append(extra)
    function.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]


def _run_task(
    user_function: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    tracing: Optional[dict[str, Any]],
) -> Any:
    client = get_client()
    if client.get_integration(RayIntegration) is None:
        if not client.is_active():
            logger.debug(
                "[Tracing] Sentry not initialized in ray cluster worker, "
                "performance data will be discarded."
            )
        return user_function(*args, **kwargs)
    with isolation_scope():
        transaction = continue_trace(
            tracing or {},
            op=OP.QUEUE_TASK_RAY,
            name=qualname_from_function(user_function),
            source=TransactionSource.TASK,
            origin=ORIGIN,
        )
        with sdk_start_transaction(transaction) as started:
            try:
                result = user_function(*args, **kwargs)
            except Exception:
                started.set_status(SPANSTATUS.INTERNAL_ERROR)
                _capture(sys.exc_info())
                raise
            started.set_status(SPANSTATUS.OK)
            return result


# -- driver --------------------------------------------------------------------------------


def _submitter(submit: Callable[..., Any], user_function: Any) -> Callable[..., Any]:
    def remote(*args: Any, **kwargs: Any) -> Any:
        if get_client().get_integration(RayIntegration) is None:
            return submit(*args, **kwargs)
        with sdk_start_span(
            op=OP.QUEUE_SUBMIT_RAY, name=qualname_from_function(user_function), origin=ORIGIN
        ) as span:
            headers = dict(get_current_scope().iter_trace_propagation_headers())
            try:
                result = submit(*args, **kwargs, _sentry_tracing=headers)
            except Exception:
                span.set_status(SPANSTATUS.INTERNAL_ERROR)
                _capture(sys.exc_info())
                raise
            span.set_status(SPANSTATUS.OK)
            return result

    return remote


def _capture(exc_info: Any) -> None:
    with capture_internal_exceptions():
        client = get_client()
        event, hint = event_from_exception(
            exc_info,
            client_options=client.options,
            mechanism={"handled": False, "type": RayIntegration.identifier},
        )
        capture_event(event, hint=hint)
