"""RQ integration: job transactions in the worker, failures as events, trace propagation.

As sentry_sdk 2.75's ``rq`` integration:

- **producer**: `Queue.enqueue_job` (so `enqueue`, `enqueue_call`...) stores the trace
  headers (``sentry-trace``, ``baggage``) in ``job.meta["_sentry_trace_headers"]``
  when a span is active; RQ has no submit span;
- **worker**: `BaseWorker.perform_job` (`Worker` before rq 2.7) runs each job as a
  transaction ``queue.task.rq`` named by the job's function (source ``task``, origin
  ``auto.queue.rq``, ``messaging.destination.name`` = the queue), continuing the
  producer's trace; a forked work horse flushes before RQ's ``os._exit``;
- **failures**: `BaseWorker.handle_exception` reports the job's exception (mechanism
  ``rq``, handled false) once the job has failed for good: an attempt that RQ will
  retry is not reported. ``extra["rq-job"]`` holds the id, function, description,
  enqueue and start times, and args / kwargs only with ``send_default_pii`` (or
  ``data_collection``'s ``queues``), else ``[Filtered]``; a `JobTimeoutException`
  is grouped per function;
- **crons** (``monitor_cron_jobs=True``): jobs that rq-scheduler re-enqueues
  (``cron_string`` or ``interval`` in the meta) send check-ins, for schedules that
  Sentry reads as rq-scheduler does.

Differences, on purpose: each job runs in its own isolation scope (sentry_sdk forks
only the current scope, so a job's breadcrumbs reach the next jobs' events), and the
transaction's status follows the outcome (``ok``, ``internal_error`` for a failed
job), where sentry_sdk's carries none (under span streaming too, where its segment
stays ``ok``). A streamed segment also carries ``messaging.message.id`` and
``code.function.name``, as sentry_sdk 2.75's.

RQ's modules are patched when the application imports them; every patch goes through
`_patch.py` and falls through when the active client lacks this integration.
"""

from __future__ import annotations

import functools
import re
import time
from contextvars import ContextVar
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable, Optional

from tripwire.api import capture_event, continue_trace
from tripwire.consts import OP, SPANDATA, SPANSTATUS
from tripwire.integrations import DidNotEnable, Integration, _check_minimum_version
from tripwire.integrations._common._hooks import when_imported
from tripwire.integrations._common.start_attributes import segment_start
from tripwire.integrations._common.web import streamed
from tripwire.integrations._patch import patch_once
from tripwire.scope._current import (
    get_client,
    get_current_scope,
    isolation_scope,
    should_send_default_pii,
)
from tripwire.tracing._api import sdk_start_transaction
from tripwire.utils import (
    SENSITIVE_DATA_SUBSTITUTE,
    event_from_exception,
    format_timestamp,
    has_data_collection_enabled,
    logger,
    match_regex_list,
)

if TYPE_CHECKING:
    from tripwire.types import MonitorConfig

ORIGIN = "auto.queue.rq"
_MARK = "__tripwire_rq__"
_META_KEY = "_sentry_trace_headers"
_UNKNOWN = "unknown RQ task"

# The isolation scope of the job `perform_job` is running, for its failure's event.
_job_scope: ContextVar[Any] = ContextVar("tripwire_rq_job_scope", default=None)

# Bound when RQ's modules are imported (nothing here imports rq).
_FAILED: Any = None
_timeout_exception: Any = None

# rq names a job without an explicit id ``str(uuid4())``.
_GENERATED_JOB_ID = re.compile(r"[0-9a-f]{8}-(?:[0-9a-f]{4}-){3}[0-9a-f]{12}")
# One crontab list item: ``*``, ``*/n``, ``n``, ``n/n``, ``n-n`` or ``n-n/n``.
_CRONTAB_ITEM = re.compile(r"\*(?:/\d+)?|(\d+)(?:-(\d+)(?:/\d+)?|/\d+)?")


class RqIntegration(Integration):
    """Job transactions, failures and trace propagation for RQ.

    Args:
        monitor_cron_jobs: Jobs scheduled by rq-scheduler (``cron()``, ``interval=``)
            send cron check-ins.
        exclude_cron_jobs: Regular expressions of monitor slugs not monitored.
    """

    identifier = "rq"
    origin = ORIGIN

    def __init__(
        self, monitor_cron_jobs: bool = False, exclude_cron_jobs: Optional[list[str]] = None
    ) -> None:
        self.monitor_cron_jobs = monitor_cron_jobs
        self.exclude_cron_jobs = exclude_cron_jobs

    @staticmethod
    def setup_once() -> None:
        """Patch RQ's worker and queue as they are imported.

        Raises:
            DidNotEnable: RQ is not installed, or older than 0.6.
        """
        import importlib.util

        from tripwire.integrations.logging import ignore_logger
        from tripwire.utils import package_version

        if importlib.util.find_spec("rq") is None:
            raise DidNotEnable("RQ not installed")
        _check_minimum_version(RqIntegration, package_version("rq"), "RQ")
        when_imported("rq.job", _bind_job)
        when_imported("rq.timeouts", _bind_timeouts)
        when_imported("rq.queue", _patch_queue)
        when_imported("rq.worker", _patch_worker)
        # The worker logs every failure; the job's exception is the event.
        ignore_logger("rq.worker")


def _bind_job(module: ModuleType) -> None:
    global _FAILED
    _FAILED = module.JobStatus.FAILED


def _bind_timeouts(module: ModuleType) -> None:
    global _timeout_exception
    _timeout_exception = module.JobTimeoutException


# -- producer ------------------------------------------------------------------------------


def _wrap_enqueue_job(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def enqueue_job(self: Any, job: Any, *args: Any, **kwargs: Any) -> Any:
        if get_client().get_integration(RqIntegration) is not None:
            scope = get_current_scope()
            if scope._d.span is not None:
                try:
                    job.meta[_META_KEY] = dict(scope.iter_trace_propagation_headers())
                except Exception:  # a job that cannot carry the trace is still enqueued
                    pass
        return original(self, job, *args, **kwargs)

    return enqueue_job


def _patch_queue(module: ModuleType) -> None:
    patch_once(module.Queue, "enqueue_job", _wrap_enqueue_job, _MARK)


# -- worker --------------------------------------------------------------------------------


def _job_data(job: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "job_id": job.id,
        "func": job.func_name,
        "description": job.description,
    }
    options = get_client().options
    if has_data_collection_enabled(options):
        if options["data_collection"].get("queues"):
            data["args"] = job.args
            data["kwargs"] = job.kwargs
    elif should_send_default_pii():
        data["args"] = job.args
        data["kwargs"] = job.kwargs
    else:
        data["args"] = SENSITIVE_DATA_SUBSTITUTE
        data["kwargs"] = SENSITIVE_DATA_SUBSTITUTE
    if job.enqueued_at:
        data["enqueued_at"] = format_timestamp(job.enqueued_at)
    if job.started_at:
        data["started_at"] = format_timestamp(job.started_at)
    return data


def _set_job_extra(scope: Any, job: Any) -> None:
    """``extra["rq-job"]`` on the job's isolation scope, as the job is now.

    Scope data rather than an event processor (sentry_sdk's way), so events keep the
    serializer's fast path; set again before each event the integration sends, so the
    values are those sentry_sdk's processor reads at that moment.
    """
    try:
        scope.set_extra("rq-job", _job_data(job))
    except Exception:  # a job that cannot be read (deserialization) adds nothing
        pass


def _start_transaction(job: Any, queue: Any) -> Any:
    headers = job.meta.get(_META_KEY) or {}
    transaction = continue_trace(
        headers, op=OP.QUEUE_TASK_RQ, name=_UNKNOWN, source="task", origin=ORIGIN
    )
    func_name: Optional[str] = None
    try:
        func_name = job.func_name
        transaction.name = func_name
    except Exception:  # the job's function cannot be deserialized
        pass
    # Under streaming the segment starts with these, as sentry_sdk's (`traces_sampler`
    # and `ignore_spans` see them).
    at_start = segment_start(
        {SPANDATA.MESSAGING_MESSAGE_ID: job.id, SPANDATA.MESSAGING_DESTINATION_NAME: queue.name}
    )
    started = sdk_start_transaction(
        transaction, custom_sampling_context={"rq_job": job}, **at_start
    )
    if (segment := streamed(started)) is not None:
        # sentry_sdk 2.75's streaming segment: the job id and function as attributes.
        segment.set_attribute(SPANDATA.MESSAGING_MESSAGE_ID, job.id)
        if func_name is not None:
            segment.set_attribute(SPANDATA.CODE_FUNCTION_NAME, func_name)
    started.set_data(SPANDATA.MESSAGING_DESTINATION_NAME, queue.name)
    return started


def _wrap_perform_job(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def perform_job(self: Any, job: Any, queue: Any, *args: Any, **kwargs: Any) -> Any:
        client = get_client()
        integration = client.get_integration(RqIntegration)
        if integration is None:
            return original(self, job, queue, *args, **kwargs)
        check_in = None
        if integration.monitor_cron_jobs:
            try:
                check_in = _start_check_in(integration, job)
            except Exception:
                pass
        succeeded = False
        try:
            with isolation_scope() as scope:
                scope.clear_breadcrumbs()
                _set_job_extra(scope, job)
                try:
                    transaction = _start_transaction(job, queue)
                except Exception:  # reporting must never stop the job
                    transaction = None
                token = _job_scope.set(scope)
                try:
                    if transaction is None:
                        succeeded = original(self, job, queue, *args, **kwargs)
                    else:
                        with transaction:
                            succeeded = original(self, job, queue, *args, **kwargs)
                            transaction.set_status(
                                SPANSTATUS.OK if succeeded else SPANSTATUS.INTERNAL_ERROR
                            )
                            _set_job_extra(scope, job)
                finally:
                    _job_scope.reset(token)
        finally:
            if check_in is not None:
                _finish_check_in(check_in, succeeded)
            if self.is_horse:
                # A forked work horse leaves with os._exit: no atexit flush happens.
                try:
                    client.flush()
                except Exception:
                    pass
        return succeeded

    return perform_job


def _wrap_handle_exception(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def handle_exception(self: Any, job: Any, *exc_info: Any, **kwargs: Any) -> Any:
        if get_client().get_integration(RqIntegration) is not None:
            try:
                _capture_failure(job, exc_info)
            except Exception:
                pass
        return original(self, job, *exc_info, **kwargs)

    return handle_exception


def _capture_failure(job: Any, exc_info: Any) -> None:
    retries_left = getattr(job, "retries_left", None)
    if retries_left and retries_left > 0:
        return  # RQ runs the job again: only its last failure is reported
    if not (job._status == _FAILED or job.is_failed):
        return
    scope = _job_scope.get()
    if scope is not None:  # the job's own scope (not the worker's, outside perform_job)
        _set_job_extra(scope, job)
    event, hint = event_from_exception(tuple(exc_info), mechanism={"type": "rq", "handled": False})
    if _timeout_exception is not None and isinstance(exc_info[1], _timeout_exception):
        event["fingerprint"] = ["rq", "JobTimeoutException", job.func_name]
    capture_event(event, hint=hint)


def _patch_worker(module: ModuleType) -> None:
    # rq 2.7+'s SimpleWorker derives from BaseWorker, not Worker: patch where the
    # method is defined.
    base = getattr(module, "BaseWorker", None)
    worker_cls = base if base is not None and hasattr(base, "perform_job") else module.Worker
    patch_once(worker_cls, "perform_job", _wrap_perform_job, _MARK)
    patch_once(worker_cls, "handle_exception", _wrap_handle_exception, _MARK)


# -- crons ---------------------------------------------------------------------------------


def _portable_crontab_field(field: str, weekday: bool) -> bool:
    """Whether rq-scheduler's crontab parser and Sentry read `field` the same way."""
    for item in field.split(","):
        match = _CRONTAB_ITEM.fullmatch(item)
        if match is None:
            return False
        low, high = match.groups()
        if high is not None and int(high) <= int(low):
            return False  # wrapping ranges
        if weekday and low is not None and high is None and "/" in item:
            return False  # "n/m" of weekdays
    return True


def _crontab_config(cron_string: str) -> Optional[MonitorConfig]:
    fields = cron_string.split()
    if len(fields) != 5:
        return None
    if not all(_portable_crontab_field(field, index == 4) for index, field in enumerate(fields)):
        return None
    if fields[2] != "*" and fields[4] != "*":
        return None  # day of month and day of week together: parsers disagree
    if time.timezone != 0 or (time.daylight and time.altzone != 0):
        return None  # rq-scheduler reads crontabs in local time
    return {"schedule": {"type": "crontab", "value": " ".join(fields)}, "timezone": "UTC"}


def _monitor_config(job: Any) -> Optional[MonitorConfig]:
    from tripwire.crons.utils import _get_interval_schedule

    meta = job.meta
    if meta.get("repeat") is not None:
        return None  # a job repeated n times stops: not a monitor
    cron_string = meta.get("cron_string")
    if isinstance(cron_string, str):
        return _crontab_config(cron_string)
    interval = meta.get("interval")
    if isinstance(interval, int):
        schedule = _get_interval_schedule(interval)
        if schedule is not None:
            config: MonitorConfig = {"schedule": schedule}
            return config
    return None


_CheckIn = tuple[str, "MonitorConfig", Optional[str], float]


def _start_check_in(integration: RqIntegration, job: Any) -> Optional[_CheckIn]:
    meta = job.meta
    if "cron_string" not in meta and "interval" not in meta:
        return None
    # Imported here: only scheduled jobs of a monitoring integration come this far.
    from tripwire.crons.api import capture_checkin
    from tripwire.crons.consts import MonitorStatus

    slug: str = job.func_name if _GENERATED_JOB_ID.fullmatch(job.id) else job.id
    if match_regex_list(slug, integration.exclude_cron_jobs):
        return None
    config = _monitor_config(job)
    if config is None:
        logger.debug("Not monitoring RQ job %r: no Sentry Crons schedule matches.", slug)
        return None
    check_in_id = capture_checkin(
        monitor_slug=slug, monitor_config=config, status=MonitorStatus.IN_PROGRESS
    )
    return slug, config, check_in_id, time.perf_counter()


def _finish_check_in(check_in: _CheckIn, succeeded: bool) -> None:
    from tripwire.crons.api import capture_checkin
    from tripwire.crons.consts import MonitorStatus

    slug, config, check_in_id, started = check_in
    capture_checkin(
        monitor_slug=slug,
        monitor_config=config,
        check_in_id=check_in_id,
        duration=time.perf_counter() - started,
        status=MonitorStatus.OK if succeeded else MonitorStatus.ERROR,
    )


__all__ = ["RqIntegration"]
