"""Celery integration: task transactions in the worker, submit spans and trace propagation.

As sentry_sdk 2.75's ``celery`` integration:

- **producer**: `Task.apply_async` (so `delay`) and `Celery.send_task` get a
  ``queue.submit.celery`` span named by the task, and the message headers carry the
  trace: ``sentry-trace`` and ``baggage`` (an existing ``baggage`` keeps its
  third-party entries), ``sentry-task-enqueued-time``, both at the top level and in
  the nested ``headers`` dict (celery#4875), sentry_sdk's exact shape, so a tripwire
  producer and a sentry_sdk worker (or the reverse) continue each other's traces.
  `kombu.Producer.publish` gets a ``queue.publish`` span with the message id, the
  destination queue, the retry count and the broker (``messaging.system``).
  ``propagate_traces=False`` (or ``headers={"sentry-propagate-traces": False}`` on one
  call) sends the task without span or trace headers;
- **worker**: each task runs in its own isolation scope (breadcrumbs cleared) as a
  transaction ``queue.task.celery`` named by the task (source ``task``, origin
  ``auto.queue.celery``, status ``ok``, ``internal_error`` on failure, ``aborted`` for
  `Retry` / `Ignore` / `Reject`), continuing the producer's trace, with a
  ``queue.process`` child span holding the messaging data and the receive latency;
- **failures**: an exception leaving the task is an event (mechanism ``celery``,
  handled false) with the tag ``celery_task_id`` and ``extra["celery-job"]`` (task
  name; args and kwargs only with ``send_default_pii`` or ``data_collection``'s
  ``queues``, else ``[Filtered]``); `Retry` / `Ignore` / `Reject` and the task's
  ``throws`` are not reported; `SoftTimeLimitExceeded` is grouped per task;
- **Celery Beat** (``monitor_beat_tasks=True``): see `tripwire.integrations.celery.beat`;
- **prefork**: a pool process flushes when its work loop ends (it leaves with
  ``os._exit``); the transport itself is fork-safe (`transport._worker`).

Differences, on purpose: `Task.apply_async` calling `Celery.send_task` gives one submit
span (sentry_sdk nests a second, identical one); the broker's driver type is read
once per app instead of opening a connection object for every task; the task id and
``celery-job`` are set on the task's isolation scope, not by an event processor (the
same events get them), and the `SoftTimeLimitExceeded` fingerprint is set on the
integration's own event; Beat's "no submit span" lasts for its `apply_entry` call
(sentry_sdk renames Beat's isolation scope for good).

Celery's modules are patched when the application imports them; every patch goes
through `_patch.py` and falls through when the active client lacks this integration.
"""

from __future__ import annotations

import sys
import weakref
from collections.abc import Mapping
from contextvars import ContextVar
from types import ModuleType
from typing import Any, Callable, Optional

from tripwire.api import capture_event, continue_trace
from tripwire.consts import OP, SPANDATA, SPANSTATUS
from tripwire.integrations import DidNotEnable, Integration, _check_minimum_version
from tripwire.integrations._common._hooks import when_imported
from tripwire.integrations._patch import patch, patch_once
from tripwire.integrations.celery.utils import _now_seconds_since_epoch
from tripwire.scope._current import (
    get_client,
    get_current_scope,
    get_isolation_scope,
    isolation_scope,
    should_send_default_pii,
)
from tripwire.tracing._api import sdk_start_span, sdk_start_transaction
from tripwire.utils import SENSITIVE_DATA_SUBSTITUTE, event_from_exception

ORIGIN = "auto.queue.celery"
_MARK = "__tripwire_celery__"
_BAGGAGE = "baggage"
_ENQUEUED = "sentry-task-enqueued-time"
_UNKNOWN = "<unknown Celery task>"

# Bound when celery's modules are imported (nothing here imports celery).
_Task: Any = None
_task_has_custom: Any = None
_control_flow: tuple[type[BaseException], ...] = ()
_soft_time_limit: Any = None

# The headers the wrapped `Task.apply_async` is sending: the `Celery.send_task` it calls
# with them adds no second submit span. (Compared by identity: a task run eagerly inside
# that call sends its own tasks with headers of their own, and gets its spans.)
_submitting: ContextVar[Optional[dict[str, Any]]] = ContextVar(
    "tripwire_celery_submitting", default=None
)
# Set while Celery Beat applies a schedule entry: its tasks start a new trace, no span.
_from_beat: ContextVar[bool] = ContextVar("tripwire_celery_beat", default=False)

# The broker's driver type ("redis", "amqp", "memory"...) per app: sentry_sdk opens a
# connection object per task to read it.
_driver_types: weakref.WeakKeyDictionary[Any, Optional[str]] = weakref.WeakKeyDictionary()


class CeleryIntegration(Integration):
    """Task transactions, submit/publish spans, trace propagation and Beat check-ins.

    Args:
        propagate_traces: Add the trace headers (and the submit span) to sent tasks;
            ``headers={"sentry-propagate-traces": bool}`` decides for one call.
        monitor_beat_tasks: Celery Beat schedule entries become cron monitors.
        exclude_beat_tasks: Regular expressions of schedule entry names not monitored.
    """

    identifier = "celery"
    origin = ORIGIN

    def __init__(
        self,
        propagate_traces: bool = True,
        monitor_beat_tasks: bool = False,
        exclude_beat_tasks: Optional[list[str]] = None,
    ) -> None:
        self.propagate_traces = propagate_traces
        self.monitor_beat_tasks = monitor_beat_tasks
        self.exclude_beat_tasks = exclude_beat_tasks

    @staticmethod
    def setup_once() -> None:
        """Patch Celery, kombu and billiard as they are imported.

        Raises:
            DidNotEnable: Celery is not installed, or older than 4.4.7.
        """
        import importlib.util

        from tripwire.integrations.logging import ignore_logger
        from tripwire.utils import package_version

        if importlib.util.find_spec("celery") is None:
            raise DidNotEnable("Celery not installed")
        _check_minimum_version(CeleryIntegration, package_version("celery"), "Celery")
        from tripwire.integrations.celery import beat

        when_imported("celery.exceptions", _bind_exceptions)
        when_imported("celery.app.trace", _patch_build_tracer)
        when_imported("celery.app.task", _patch_task_apply_async)
        when_imported("celery.app.base", _patch_send_task)
        when_imported("kombu.messaging", _patch_producer_publish)
        when_imported("billiard.pool", _patch_worker_exit)
        when_imported("celery.beat", beat._patch_beat_apply_entry)
        when_imported("celery.signals", beat._connect_signals)
        when_imported("redbeat.schedulers", beat._patch_redbeat_apply_async)
        # Every task's status is logged by these; the task's own failure is the event.
        ignore_logger("celery.worker.job")
        ignore_logger("celery.app.trace")
        # stdout/stderr redirected to a logger.
        ignore_logger("celery.redirected")


def _active() -> Optional[CeleryIntegration]:
    integration: Optional[CeleryIntegration] = get_client().get_integration(CeleryIntegration)
    return integration


def _bind_exceptions(module: ModuleType) -> None:
    global _control_flow, _soft_time_limit
    _control_flow = (module.Retry, module.Ignore, module.Reject)
    _soft_time_limit = module.SoftTimeLimitExceeded


def __getattr__(name: str) -> Any:
    # sentry_sdk's module-level names that need celery itself.
    if name == "CELERY_CONTROL_FLOW_EXCEPTIONS":
        from celery.exceptions import Ignore, Reject, Retry

        return (Retry, Ignore, Reject)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class NoOpMgr:
    """A context manager doing nothing (sentry_sdk's name)."""

    __slots__ = ()

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type: Any, exc_value: Any, traceback: Any) -> None:
        return None


# -- producer ------------------------------------------------------------------------------


def _merge_baggage(ours: str, existing: str) -> str:
    """sentry_sdk's merge: the existing header's sentry items win, third-party items join."""
    from tripwire.tracing_utils import Baggage

    incoming = Baggage.from_incoming_header(existing)
    combined = Baggage.from_incoming_header(ours)
    combined.sentry_items.update(incoming.sentry_items)
    combined.third_party_items = ",".join(
        item for item in (combined.third_party_items, incoming.third_party_items) if item
    )
    merged: str = combined.serialize(include_third_party=True)
    return merged


def _update_celery_task_headers(
    original_headers: dict[str, Any], span: Any, monitor_beat_tasks: bool
) -> dict[str, Any]:
    """The task's headers with the trace (and Beat's start time), in sentry_sdk's shape."""
    updated = original_headers.copy()
    try:
        headers = dict(get_isolation_scope().iter_trace_propagation_headers(span=span))
        now = _now_seconds_since_epoch()
        if monitor_beat_tasks:
            headers["sentry-monitor-start-timestamp-s"] = "%.9f" % now
        # The worker's receive latency is measured from here.
        updated[_ENQUEUED] = now
        if headers:
            existing = updated.get(_BAGGAGE)
            ours = headers.get(_BAGGAGE)
            combined = ours or existing
            if ours and existing:
                combined = _merge_baggage(ours, existing)
            updated.update(headers)
            if combined:
                updated[_BAGGAGE] = combined
            # celery#4875: custom headers reach `task.request.headers` only from the
            # nested dict. Other tracers (dd-trace-py) use the same place: update it.
            inner = updated.setdefault("headers", {})
            inner.update(headers)
            if combined:
                inner[_BAGGAGE] = combined
            for key, value in updated.items():
                if key.startswith("sentry-"):
                    inner[key] = value
            for key, value in original_headers.items():
                if key != "headers" and key not in inner:
                    inner[key] = value
    except Exception:  # a broken header must not stop the task from being sent
        pass
    return updated


def _wrap_task_run(original: Callable[..., Any]) -> Callable[..., Any]:
    """`Task.apply_async` / `Celery.send_task`: a submit span and the trace headers."""
    import functools

    @functools.wraps(original)
    def apply_async(*args: Any, **kwargs: Any) -> Any:
        # `headers=None` may be passed explicitly: no setdefault.
        integration = get_client().get_integration(CeleryIntegration)
        if integration is None:
            return original(*args, **kwargs)
        kwarg_headers = kwargs.get("headers") or {}
        if kwarg_headers is _submitting.get() or not isinstance(kwarg_headers, dict):
            # (Headers given as something else, pairs say, go as they are, untraced.)
            return original(*args, **kwargs)
        if not kwarg_headers.pop("sentry-propagate-traces", integration.propagate_traces):
            return original(*args, **kwargs)
        first = args[0] if args else None
        if _Task is not None and isinstance(first, _Task):
            task_name = first.name
        elif len(args) > 1 and isinstance(args[1], str):
            task_name = args[1]
        else:
            task_name = _UNKNOWN
        monitor = integration.monitor_beat_tasks
        if _from_beat.get():
            headers = _update_celery_task_headers(kwarg_headers, None, monitor)
            kwargs["headers"] = headers
            token = _submitting.set(headers)
            try:
                return original(*args, **kwargs)
            finally:
                _submitting.reset(token)
        with sdk_start_span(op=OP.QUEUE_SUBMIT_CELERY, name=task_name, origin=ORIGIN) as span:
            headers = _update_celery_task_headers(kwarg_headers, span, monitor)
            kwargs["headers"] = headers
            token = _submitting.set(headers)
            try:
                return original(*args, **kwargs)
            finally:
                _submitting.reset(token)

    return apply_async


def _patch_task_apply_async(module: ModuleType) -> None:
    global _Task
    _Task = module.Task
    patch_once(module.Task, "apply_async", _wrap_task_run, _MARK)


def _patch_send_task(module: ModuleType) -> None:
    patch_once(module.Celery, "send_task", _wrap_task_run, _MARK)


def _wrap_publish(original: Callable[..., Any]) -> Callable[..., Any]:
    import functools

    @functools.wraps(original)
    def publish(self: Any, *args: Any, **kwargs: Any) -> Any:
        if get_client().get_integration(CeleryIntegration) is None:
            return original(self, *args, **kwargs)
        headers = kwargs.get("headers")
        if not isinstance(headers, Mapping):
            headers = {}  # only the span's data suffers; publish gets its arguments as given
        with sdk_start_span(
            op=OP.QUEUE_PUBLISH, name=headers.get("task") or _UNKNOWN, origin=ORIGIN
        ) as span:
            try:
                task_id = headers.get("id")
                if task_id is not None:
                    span.set_data(SPANDATA.MESSAGING_MESSAGE_ID, task_id)
                routing_key = kwargs.get("routing_key")
                if kwargs.get("exchange") == "" and routing_key is not None:
                    # The default exchange routes to the queue named by the routing key.
                    span.set_data(SPANDATA.MESSAGING_DESTINATION_NAME, routing_key)
                retries = headers.get("retries")
                if retries is not None:
                    span.set_data(SPANDATA.MESSAGING_MESSAGE_RETRY_COUNT, retries)
                span.set_data(SPANDATA.MESSAGING_SYSTEM, self.connection.transport.driver_type)
            except Exception:
                pass
            return original(self, *args, **kwargs)

    return publish


def _patch_producer_publish(module: ModuleType) -> None:
    patch_once(module.Producer, "publish", _wrap_publish, _MARK)


# -- worker --------------------------------------------------------------------------------


def _set_status(status: str) -> None:
    span = get_current_scope()._d.span
    if span is not None:
        span.set_status(status)


def _capture_exception(task: Any, exc_info: Any) -> None:
    client = get_client()
    if client.get_integration(CeleryIntegration) is None:
        return
    exc = exc_info[1]
    if isinstance(exc, _control_flow):
        _set_status(SPANSTATUS.ABORTED)
        return
    _set_status(SPANSTATUS.INTERNAL_ERROR)
    throws = getattr(task, "throws", None)
    if throws and isinstance(exc, throws):
        return
    event, hint = event_from_exception(exc_info, mechanism={"type": "celery", "handled": False})
    if _soft_time_limit is not None and isinstance(exc, _soft_time_limit):
        # Grouped per task, not by the (always different) place the limit hit.
        event["fingerprint"] = ["celery", "SoftTimeLimitExceeded", getattr(task, "name", task)]
    capture_event(event, hint=hint)


def _job_data(task: Any, uuid: Any, args: Any, kwargs: Any) -> dict[str, Any]:
    """``extra["celery-job"]``: args and kwargs only as the PII settings allow."""
    job: dict[str, Any] = {"task_name": task.name}
    options = get_client().options
    collection = options.get("data_collection")
    if collection is not None and collection.get("provided_by_user", False):
        if collection.get("queues"):
            job["args"] = args
            job["kwargs"] = kwargs
    elif should_send_default_pii():
        job["args"] = args
        job["kwargs"] = kwargs
    else:
        job["args"] = SENSITIVE_DATA_SUBSTITUTE
        job["kwargs"] = SENSITIVE_DATA_SUBSTITUTE
    return job


def _wrap_tracer(task: Any, tracer: Callable[..., Any]) -> Callable[..., Any]:
    """The function Celery calls per task: an isolation scope and the task's transaction.

    Wrapped around the tracer rather than hooked on signals so the scope is in place
    before ``task_prerun`` and after ``task_postrun``.
    """

    # No functools.wraps: Celery builds a tracer (so this wrapper) for every eager call.
    def _inner(*args: Any, **kwargs: Any) -> Any:
        client = get_client()
        if client.get_integration(CeleryIntegration) is None:
            return tracer(*args, **kwargs)
        with isolation_scope() as scope:
            scope.clear_breadcrumbs()
            task_name = getattr(task, "name", _UNKNOWN)
            # sentry_sdk adds these with an event processor; set on the task's isolation
            # scope they reach the same events (and the transaction) without making every
            # event take the serializer's full pass (a processor's output is not trusted).
            try:
                scope.set_tag("celery_task_id", args[0])
                scope.set_extra("celery-job", _job_data(task, *args[:3]))
            except Exception:
                pass
            transaction: Any = None
            try:
                sampling: Optional[dict[str, Any]] = None
                if client.options.get("traces_sampler") is not None:
                    sampling = {
                        "celery_job": {"task": task_name, "args": list(args[1]), "kwargs": args[2]}
                    }
                headers = args[3].get("headers") or {}
                transaction = continue_trace(
                    headers,
                    op=OP.QUEUE_TASK_CELERY,
                    name=task_name,
                    source="task",
                    origin=ORIGIN,
                )
                transaction.status = SPANSTATUS.OK
                # sentry_sdk's transaction carries the status it had when sampled as a
                # tag ("ok", whatever the outcome): sent the same.
                transaction.set_tag("status", SPANSTATUS.OK)
                transaction = sdk_start_transaction(transaction, custom_sampling_context=sampling)
            except Exception:  # Celery task objects are not to be trusted
                transaction = None
            if transaction is None:
                return tracer(*args, **kwargs)
            with transaction:
                return tracer(*args, **kwargs)

    return _inner


def _driver_type(app: Any) -> Optional[str]:
    try:
        return _driver_types[app]
    except KeyError:
        pass
    except TypeError:  # not weak-referenceable
        with app.connection() as conn:
            found: Optional[str] = conn.transport.driver_type
        return found
    with app.connection() as conn:
        driver: Optional[str] = conn.transport.driver_type
    _driver_types[app] = driver
    return driver


def _set_process_data(task: Any, span: Any) -> None:
    """The ``queue.process`` span's data, in sentry_sdk's order."""
    request = task.request
    try:
        delivery_info = request.delivery_info
        if delivery_info:
            routing_key = delivery_info.get("routing_key")
            if delivery_info.get("exchange") == "" and routing_key is not None:
                span.set_data(SPANDATA.MESSAGING_DESTINATION_NAME, routing_key)
    except Exception:
        pass
    try:
        headers = request.headers
        if headers is not None and _ENQUEUED in headers:
            # Popped: a retry sends these headers again and measures anew.
            latency = _now_seconds_since_epoch() - headers.pop(_ENQUEUED)
            span.set_data(SPANDATA.MESSAGING_MESSAGE_RECEIVE_LATENCY, latency * 1000)
    except Exception:
        pass
    try:
        span.set_data(SPANDATA.MESSAGING_MESSAGE_ID, request.id)
    except Exception:
        pass
    try:
        span.set_data(SPANDATA.MESSAGING_MESSAGE_RETRY_COUNT, request.retries)
    except Exception:
        pass
    try:
        span.set_data(SPANDATA.MESSAGING_SYSTEM, _driver_type(task.app))
    except Exception:
        pass


def _wrap_task_call(task: Any, run: Callable[..., Any]) -> Callable[..., Any]:
    """The task's own code: a ``queue.process`` span, and its exception as an event.

    Celery catches the exception before any hook sees it (and its stack trace is not
    the task's), hence the wrapper around ``run`` / ``__call__``.
    """
    import functools

    @functools.wraps(run)
    def _inner(*args: Any, **kwargs: Any) -> Any:
        if get_client().get_integration(CeleryIntegration) is None:
            return run(*args, **kwargs)
        try:
            with sdk_start_span(op=OP.QUEUE_PROCESS, name=task.name, origin=ORIGIN) as span:
                _set_process_data(task, span)
                return run(*args, **kwargs)
        except Exception:
            exc_info = sys.exc_info()
            try:
                _capture_exception(task, exc_info)
            except Exception:
                pass
            raise

    setattr(_inner, _MARK, True)
    return _inner


def _instrument_task(task: Any) -> None:
    """Wrap the method Celery calls for `task` (``__call__`` if the class has its own)."""
    if _task_has_custom(task, "__call__"):
        cls = type(task)
        if not getattr(cls.__call__, _MARK, False):
            patch(cls, "__call__", _wrap_task_call(task, cls.__call__))
    elif not getattr(task.run, _MARK, False):
        patch(task, "run", _wrap_task_call(task, task.run))


def _wrap_build_tracer(original: Callable[..., Any]) -> Callable[..., Any]:
    import functools

    @functools.wraps(original)
    def build_tracer(name: Any, task: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            # Before the tracer is built: it keeps the method it will call. Celery
            # builds a tracer for every eager call; the task is wrapped once.
            _instrument_task(task)
        except Exception:
            pass
        tracer = original(name, task, *args, **kwargs)
        try:
            return _wrap_tracer(task, tracer)
        except Exception:
            return tracer

    return build_tracer


def _patch_build_tracer(module: ModuleType) -> None:
    global _task_has_custom
    _task_has_custom = module.task_has_custom
    patch_once(module, "build_tracer", _wrap_build_tracer, _MARK)


def _wrap_workloop(original: Callable[..., Any]) -> Callable[..., Any]:
    import functools

    @functools.wraps(original)
    def workloop(*args: Any, **kwargs: Any) -> Any:
        try:
            return original(*args, **kwargs)
        finally:
            # The pool process leaves with os._exit: no atexit flush happens.
            try:
                client = get_client()
                if client.get_integration(CeleryIntegration) is not None:
                    client.flush()
            except Exception:
                pass

    return workloop


def _patch_worker_exit(module: ModuleType) -> None:
    patch_once(module.Worker, "workloop", _wrap_workloop, _MARK)


__all__ = ["CeleryIntegration"]
