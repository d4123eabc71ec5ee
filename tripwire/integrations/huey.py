"""Huey integration: submit spans, task transactions, failures and trace propagation.

As sentry_sdk 2.75's ``huey`` integration:

- **producer**: `Huey.enqueue` gets a ``queue.submit.huey`` span (origin
  ``auto.queue.huey``) named by the task (``Huey Task Group`` / ``Huey Chord``), with
  ``messaging.destination.name`` = the Huey instance's name; a task's kwargs carry the
  trace (``kwargs["sentry_headers"]``: ``sentry-trace`` and ``baggage``), not those of
  periodic tasks, groups and chords (their tasks get their own);
- **worker**: `Huey._execute` runs each task in its own isolation scope (breadcrumbs
  cleared) as a transaction ``queue.task.huey`` named by the task (source ``task``,
  status ``ok``, with the ``status`` tag sentry_sdk sends), continuing the producer's
  trace; the tags ``huey_task_id`` and ``huey_task_retry`` and ``extra["huey-job"]``
  (task, retry number; args and kwargs only with ``send_default_pii`` or
  ``data_collection``'s ``queues``, else ``[Filtered]``) go on its events;
- **failures**: each failed attempt's exception is an event (mechanism ``huey``,
  handled false; the transaction's status becomes ``internal_error``);
  `CancelExecution`, `RetryTask` and `TaskLockedException` are not reported and mark
  the transaction ``aborted``;
- **periodic tasks** (``monitor_periodic_tasks=True``): a periodic task whose
  `crontab` Sentry can express (Huey's ``utc=True``) sends check-ins, its name as slug.

Under span streaming the task's segment also carries ``messaging.message.id``,
``messaging.message.system`` (``huey``) and ``messaging.message.retry.count``, and a
retried task's segment stays ``ok`` (sentry_sdk 2.75).

Difference, on purpose: the ``sentry_headers`` kwarg is taken off a task even when no
client has the integration (sentry_sdk then passes it to the task function).

Huey's modules are patched when the application imports them; every patch goes through
`_patch.py` and falls through when the active client lacks this integration.
"""

from __future__ import annotations

import functools
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable, Optional

from tripwire.api import (
    capture_event,
    continue_trace,
    get_baggage,
    get_traceparent,
)
from tripwire.consts import OP, SPANDATA, SPANSTATUS
from tripwire.integrations import DidNotEnable, Integration
from tripwire.integrations._common._hooks import when_imported
from tripwire.integrations._common.start_attributes import child_start, segment_start
from tripwire.integrations._common.web import streamed
from tripwire.integrations._patch import patch_once
from tripwire.scope._current import (
    get_client,
    get_current_scope,
    isolation_scope,
    should_send_default_pii,
)
from tripwire.tracing._api import sdk_start_span, sdk_start_transaction
from tripwire.tracing._consts import BAGGAGE_HEADER_NAME, SENTRY_TRACE_HEADER_NAME
from tripwire.utils import (
    SENSITIVE_DATA_SUBSTITUTE,
    event_from_exception,
    has_data_collection_enabled,
    logger,
    match_regex_list,
)

if TYPE_CHECKING:
    from tripwire.types import MonitorConfig

ORIGIN = "auto.queue.huey"
_MARK = "__tripwire_huey__"
_PATCHED = "_sentry_is_patched"  # sentry_sdk's mark on a task whose execute is wrapped
_HEADERS = "sentry_headers"

# Bound when huey.api is imported (nothing here imports huey).
HUEY_CONTROL_FLOW_EXCEPTIONS: tuple[type[BaseException], ...] = ()
_group: Any = None
_chord: Any = None
_no_headers: tuple[type, ...] = ()
_PeriodicTask: Any = None
_crontab_code: Any = None


class HueyIntegration(Integration):
    """Submit spans, task transactions, failures and trace propagation for Huey.

    Args:
        monitor_periodic_tasks: Periodic tasks send cron check-ins.
        exclude_periodic_tasks: Regular expressions of task names not monitored.
    """

    identifier = "huey"
    origin = ORIGIN

    def __init__(
        self,
        monitor_periodic_tasks: bool = False,
        exclude_periodic_tasks: Optional[list[str]] = None,
    ) -> None:
        self.monitor_periodic_tasks = monitor_periodic_tasks
        self.exclude_periodic_tasks = exclude_periodic_tasks

    @staticmethod
    def setup_once() -> None:
        """Patch `Huey.enqueue` and `Huey._execute` once huey is imported.

        Raises:
            DidNotEnable: Huey is not installed.
        """
        import importlib.util

        if importlib.util.find_spec("huey") is None:
            raise DidNotEnable("Huey is not installed")
        when_imported("huey.api", _patch_api)


def _patch_api(module: ModuleType) -> None:
    global HUEY_CONTROL_FLOW_EXCEPTIONS, _group, _chord, _no_headers, _PeriodicTask
    global _crontab_code
    HUEY_CONTROL_FLOW_EXCEPTIONS = (
        module.CancelExecution,
        module.RetryTask,
        module.TaskLockedException,
    )
    _group = getattr(module, "group", None)
    _chord = getattr(module, "chord", None)
    _PeriodicTask = module.PeriodicTask
    _no_headers = (module.PeriodicTask, *(t for t in (_group, _chord) if t is not None))
    _crontab_code = getattr(module.crontab(), "__code__", None)
    patch_once(module.Huey, "enqueue", _wrap_enqueue, _MARK)
    patch_once(module.Huey, "_execute", _wrap_execute, _MARK)


# -- producer ------------------------------------------------------------------------------


def _wrap_enqueue(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def enqueue(self: Any, item: Any) -> Any:
        if get_client().get_integration(HueyIntegration) is None:
            return original(self, item)
        if _chord is not None and isinstance(item, _chord):
            name = "Huey Chord"
        elif _group is not None and isinstance(item, _group):
            name = "Huey Task Group"
        else:
            name = item.name
        at_start = child_start({SPANDATA.MESSAGING_DESTINATION_NAME: self.name})
        with sdk_start_span(op=OP.QUEUE_SUBMIT_HUEY, name=name, origin=ORIGIN, **at_start) as span:
            span.set_data(SPANDATA.MESSAGING_DESTINATION_NAME, self.name)
            if not isinstance(item, _no_headers):
                # A group's or chord's tasks come through here one by one.
                item.kwargs[_HEADERS] = {
                    BAGGAGE_HEADER_NAME: get_baggage(),
                    SENTRY_TRACE_HEADER_NAME: get_traceparent(),
                }
            return original(self, item)

    return enqueue


# -- worker --------------------------------------------------------------------------------


def _job_data(task: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "task": task.name,
        "retry": (task.default_retries or 0) - task.retries,
    }
    options = get_client().options
    if has_data_collection_enabled(options):
        if options["data_collection"].get("queues"):
            data["args"] = task.args
            data["kwargs"] = task.kwargs
    elif should_send_default_pii():
        data["args"] = task.args
        data["kwargs"] = task.kwargs
    else:
        data["args"] = SENSITIVE_DATA_SUBSTITUTE
        data["kwargs"] = SENSITIVE_DATA_SUBSTITUTE
    return data


def _describe_task(scope: Any, task: Any) -> None:
    """The task on its isolation scope: tags and ``extra["huey-job"]``, as it is now.

    Scope data rather than sentry_sdk's event processor, so events keep the
    serializer's fast path; set again when the task ends (Huey has counted the retry
    by then), so the transaction carries what sentry_sdk's processor reads.
    """
    try:
        scope.set_tag("huey_task_id", task.id)
        scope.set_tag("huey_task_retry", task.default_retries > task.retries)
        scope.set_extra("huey-job", _job_data(task))
    except Exception:
        pass


def _capture_exception(exc_info: Any) -> None:
    transaction = getattr(get_current_scope()._d.span, "containing_transaction", None)
    control_flow = exc_info[0] in HUEY_CONTROL_FLOW_EXCEPTIONS
    if transaction is not None:
        if control_flow and streamed(transaction) is not None:
            # sentry_sdk 2.75 under streaming: a retry leaves the segment ``ok``.
            transaction.set_status(SPANSTATUS.OK)
        else:
            transaction.set_status(
                SPANSTATUS.ABORTED if control_flow else SPANSTATUS.INTERNAL_ERROR
            )
    if control_flow:
        return
    event, hint = event_from_exception(exc_info, mechanism={"type": "huey", "handled": False})
    capture_event(event, hint=hint)


def _wrap_task_execute(execute: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(execute)
    def task_execute(*args: Any, **kwargs: Any) -> Any:
        if get_client().get_integration(HueyIntegration) is None:
            return execute(*args, **kwargs)
        try:
            return execute(*args, **kwargs)
        except Exception:
            exc_info = sys.exc_info()
            try:
                _capture_exception(exc_info)
            except Exception:
                pass
            raise

    return task_execute


def _start_transaction(huey: Any, task: Any, headers: Any) -> Any:
    transaction = continue_trace(
        headers or {}, name=task.name, op=OP.QUEUE_TASK_HUEY, source="task", origin=ORIGIN
    )
    transaction.set_status(SPANSTATUS.OK)
    # sentry_sdk's transaction carries the status it was started with as a tag ("ok",
    # whatever the outcome): sent the same.
    transaction.set_tag("status", SPANSTATUS.OK)
    # Under streaming the segment starts with its messaging attributes, as sentry_sdk's
    # (`traces_sampler` and `ignore_spans` see them).
    at_start = segment_start(
        {
            SPANDATA.MESSAGING_DESTINATION_NAME: huey.name,
            SPANDATA.MESSAGING_MESSAGE_ID: task.id,
            "messaging.message.system": "huey",
            SPANDATA.MESSAGING_MESSAGE_RETRY_COUNT: (task.default_retries or 0) - task.retries,
        }
    )
    started = sdk_start_transaction(transaction, **at_start)
    started.set_data(SPANDATA.MESSAGING_DESTINATION_NAME, huey.name)
    return started


def _instrument_task(huey: Any, task: Any) -> None:
    if getattr(task, _PATCHED, False):
        return
    task.execute = _wrap_task_execute(task.execute)
    try:
        task.execute = _monitor_periodic_task(huey, task, task.execute)
    except Exception:
        pass
    setattr(task, _PATCHED, True)


def _wrap_execute(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def _execute(self: Any, task: Any, timestamp: Any = None) -> Any:
        kwargs = task.kwargs
        headers = kwargs.pop(_HEADERS, None) if kwargs and _HEADERS in kwargs else None
        if get_client().get_integration(HueyIntegration) is None:
            return original(self, task, timestamp)
        with isolation_scope() as scope:
            try:
                scope.clear_breadcrumbs()
                _describe_task(scope, task)
                transaction = _start_transaction(self, task, headers)
                _instrument_task(self, task)
            except Exception:  # reporting must never stop the task
                return original(self, task, timestamp)
            with transaction:
                try:
                    return original(self, task, timestamp)
                finally:
                    _describe_task(scope, task)

    return _execute


# -- periodic tasks ------------------------------------------------------------------------


def _closure_var(func: Any, name: str) -> Any:
    code = getattr(func, "__code__", None)
    closure = getattr(func, "__closure__", None)
    if code is None or closure is None or name not in code.co_freevars:
        return None
    return closure[code.co_freevars.index(name)].cell_contents


def _crontab_field(values: list[int], first: int, last: int) -> str:
    """`values` (sorted) as a crontab field: ``*``, ``a-b``, ``*/n``, ``a-b/n`` or a list."""
    every = list(range(first, last + 1))
    if values == every:
        return "*"
    if len(values) > 2:
        step = values[1] - values[0]
        if values == list(range(values[0], values[-1] + 1, step)):
            if step == 1:
                return f"{values[0]}-{values[-1]}"
            if values == every[::step]:
                return f"*/{step}"
            return f"{values[0]}-{values[-1]}/{step}"
    return ",".join(str(v) for v in values)


def _monitor_config(huey: Any, task: Any) -> Optional[MonitorConfig]:
    if not huey.utc:
        return None  # Huey reads crontabs in local time then
    # `periodic_task` keeps the `crontab()` validator in a closure of the task's method.
    validate = _closure_var(type(task).validate_datetime, "validate_datetime")
    if _crontab_code is None or getattr(validate, "__code__", None) is not _crontab_code:
        return None
    settings = _closure_var(validate, "cron_settings")
    if not settings or not all(settings):
        return None
    months, days, weekdays, hours, minutes = settings
    day = _crontab_field(days, 1, 31)
    weekday = _crontab_field(sorted({v % 7 for v in weekdays}), 0, 6)  # 7 is Sunday too
    if day != "*" and weekday != "*":
        return None  # Huey wants both to match, cron either
    fields = (
        _crontab_field(minutes, 0, 59),
        _crontab_field(hours, 0, 23),
        day,
        _crontab_field(months, 1, 12),
        weekday,
    )
    return {"schedule": {"type": "crontab", "value": " ".join(fields)}, "timezone": "UTC"}


def _monitor_periodic_task(huey: Any, task: Any, execute: Callable[..., Any]) -> Callable[..., Any]:
    integration = get_client().get_integration(HueyIntegration)
    if (
        integration is None
        or not integration.monitor_periodic_tasks
        or not isinstance(task, _PeriodicTask)
        or match_regex_list(task.name, integration.exclude_periodic_tasks)
    ):
        return execute
    config = _monitor_config(huey, task)
    if config is None:
        logger.debug("Not monitoring Huey periodic task %r: no Sentry Crons schedule.", task.name)
        return execute
    from tripwire.crons import monitor

    slug = task.name

    @functools.wraps(execute)
    def monitored(*args: Any, **kwargs: Any) -> Any:
        with monitor(monitor_slug=slug, monitor_config=config):
            return execute(*args, **kwargs)

    return monitored


__all__ = ["HueyIntegration"]
