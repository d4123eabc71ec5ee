"""arq integration: submit spans, job transactions in the worker, failures as events.

As sentry_sdk 2.75's ``arq`` integration:

- **producer**: `ArqRedis.enqueue_job` gets a ``queue.submit.arq`` span named by the
  function (origin ``auto.queue.arq``); arq jobs carry no trace headers, so a job
  starts a trace of its own;
- **worker**: `Worker.run_job` runs each job in its own isolation scope (breadcrumbs
  cleared) as a transaction ``queue.task.arq`` (source ``task``, status ``ok``, with
  the ``status`` tag sentry_sdk sends, ``messaging.destination.name`` = the queue),
  named by the job's function once the function runs (``unknown arq task`` for a job
  that never reaches it: expired, unknown function, too many tries);
- **failures**: an exception leaving the job function is an event (mechanism ``arq``,
  handled false; the transaction's status becomes ``internal_error``) with the tags
  ``arq_task_id`` and ``arq_task_retry`` and ``extra["arq-job"]`` (function, try;
  args and kwargs only with ``send_default_pii`` or ``data_collection``'s ``queues``,
  else ``[Filtered]``); arq's `Retry`, `RetryJob` and `JobExecutionFailed` are not
  reported and mark the transaction ``aborted``;
- **cron jobs** (``monitor_cron_jobs=True``): arq cron jobs whose schedule Sentry can
  express send check-ins (slug: the cron job's name without ``cron:``).

Under span streaming the job's segment also carries ``messaging.message.id`` (the job
id), as sentry_sdk 2.75's; its status follows the outcome as in transaction mode
(sentry_sdk's stays ``ok``: it sets the status through the scope's transaction).

Difference, on purpose: the job functions are wrapped when a `Worker` is built, not
only through `arq.worker.create_worker` (sentry_sdk leaves a `Worker(functions=...)`
built by hand with nameless transactions and no events).

arq's modules are patched when the application imports them; every patch goes through
`_patch.py` and falls through when the active client lacks this integration.
"""

from __future__ import annotations

import functools
import sys
import time
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable, Optional

from tripwire.api import capture_event
from tripwire.consts import OP, SPANDATA, SPANSTATUS
from tripwire.integrations import DidNotEnable, Integration, _check_minimum_version
from tripwire.integrations._common._hooks import when_imported
from tripwire.integrations._common.start_attributes import segment_start
from tripwire.integrations._patch import patch_once
from tripwire.scope._current import (
    get_client,
    get_current_scope,
    get_isolation_scope,
    isolation_scope,
    should_send_default_pii,
)
from tripwire.tracing._api import sdk_start_span, sdk_start_transaction
from tripwire.utils import (
    SENSITIVE_DATA_SUBSTITUTE,
    event_from_exception,
    has_data_collection_enabled,
    logger,
    match_regex_list,
)

if TYPE_CHECKING:
    from tripwire.types import MonitorConfig

ORIGIN = "auto.queue.arq"
_MARK = "__tripwire_arq__"
_WRAPPED = "__tripwire_arq_job__"
_MONITORED = "__tripwire_arq_monitored__"
_UNKNOWN = "unknown arq task"

# arq's control-flow exceptions (bound when arq.worker is imported).
ARQ_CONTROL_FLOW_EXCEPTIONS: tuple[type[BaseException], ...] = ()
_WEEKDAYS: tuple[str, ...] = ("mon", "tues", "wed", "thurs", "fri", "sat", "sun")


class ArqIntegration(Integration):
    """Submit spans, job transactions and failures for arq.

    Args:
        monitor_cron_jobs: arq cron jobs send cron check-ins.
        exclude_cron_jobs: Regular expressions of monitor slugs not monitored.
    """

    identifier = "arq"
    origin = ORIGIN

    def __init__(
        self, monitor_cron_jobs: bool = False, exclude_cron_jobs: Optional[list[str]] = None
    ) -> None:
        self.monitor_cron_jobs = monitor_cron_jobs
        self.exclude_cron_jobs = exclude_cron_jobs

    @staticmethod
    def setup_once() -> None:
        """Patch arq's connections and worker as they are imported.

        Raises:
            DidNotEnable: arq is not installed, or older than 0.23.
        """
        import importlib.util

        from tripwire.integrations.logging import ignore_logger
        from tripwire.utils import package_version

        if importlib.util.find_spec("arq") is None:
            raise DidNotEnable("Arq is not installed")
        _check_minimum_version(ArqIntegration, package_version("arq"), "arq")
        when_imported("arq.connections", _patch_connections)
        when_imported("arq.worker", _patch_worker)
        # The worker logs every failure; the job's exception is the event.
        ignore_logger("arq.worker")


def _active() -> Optional[ArqIntegration]:
    integration: Optional[ArqIntegration] = get_client().get_integration(ArqIntegration)
    return integration


# -- producer ------------------------------------------------------------------------------


def _wrap_enqueue_job(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def enqueue_job(self: Any, function: str, *args: Any, **kwargs: Any) -> Any:
        if get_client().get_integration(ArqIntegration) is None:
            return await original(self, function, *args, **kwargs)
        with sdk_start_span(op=OP.QUEUE_SUBMIT_ARQ, name=function, origin=ORIGIN):
            return await original(self, function, *args, **kwargs)

    # As sentry_sdk's wrapper: `__kwdefaults__` reads as arq's own.
    enqueue_job.__kwdefaults__ = original.__kwdefaults__  # type: ignore[attr-defined]
    return enqueue_job


def _patch_connections(module: ModuleType) -> None:
    patch_once(module.ArqRedis, "enqueue_job", _wrap_enqueue_job, _MARK)


# -- worker --------------------------------------------------------------------------------


def _wrap_run_job(original: Callable[..., Any]) -> Callable[..., Any]:
    from tripwire.tracing._transaction import Transaction

    @functools.wraps(original)
    async def run_job(self: Any, job_id: str, score: int) -> None:
        if get_client().get_integration(ArqIntegration) is None:
            return await original(self, job_id, score)  # type: ignore[no-any-return]
        with isolation_scope() as scope:
            scope.clear_breadcrumbs()
            try:
                transaction: Any = Transaction(
                    name=_UNKNOWN, op=OP.QUEUE_TASK_ARQ, source="task", origin=ORIGIN
                )
                transaction.status = SPANSTATUS.OK
                # sentry_sdk's transaction carries the status it was created with as a
                # tag ("ok", whatever the outcome): sent the same.
                transaction.set_tag("status", SPANSTATUS.OK)
                # Under streaming the segment starts with the job id, as sentry_sdk's
                # (`traces_sampler` and `ignore_spans` see it).
                at_start = segment_start({SPANDATA.MESSAGING_MESSAGE_ID: job_id})
                transaction = sdk_start_transaction(transaction, **at_start)
                if self.queue_name is not None:
                    transaction.set_data(SPANDATA.MESSAGING_DESTINATION_NAME, self.queue_name)
            except Exception:  # reporting must never stop the job
                return await original(self, job_id, score)  # type: ignore[no-any-return]
            with transaction:
                return await original(self, job_id, score)  # type: ignore[no-any-return]

    return run_job


def _job_data(ctx: dict[Any, Any], args: Any, kwargs: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"task": ctx["job_name"], "retry": ctx["job_try"]}
    options = get_client().options
    if has_data_collection_enabled(options):
        if options["data_collection"].get("queues"):
            data["args"] = args
            data["kwargs"] = kwargs
    elif should_send_default_pii():
        data["args"] = args
        data["kwargs"] = kwargs
    else:
        data["args"] = SENSITIVE_DATA_SUBSTITUTE
        data["kwargs"] = SENSITIVE_DATA_SUBSTITUTE
    return data


def _describe_job(name: str, ctx: dict[Any, Any], args: Any, kwargs: Any) -> None:
    """The job on its isolation scope: tags, ``extra["arq-job"]``, the transaction name.

    Scope data rather than sentry_sdk's event processor (same values: they do not change
    while the job runs), so events keep the serializer's fast path.
    """
    scope = get_isolation_scope()
    scope.set_tag("arq_task_id", ctx["job_id"])
    scope.set_tag("arq_task_retry", ctx["job_try"] > 1)
    scope.set_extra("arq-job", _job_data({**ctx, "job_name": name}, args, kwargs))
    get_current_scope().set_transaction_name(name)


def _capture_exception(exc_info: Any) -> None:
    transaction = getattr(get_current_scope()._d.span, "containing_transaction", None)
    control_flow = exc_info[0] in ARQ_CONTROL_FLOW_EXCEPTIONS
    if transaction is not None:
        transaction.set_status(SPANSTATUS.ABORTED if control_flow else SPANSTATUS.INTERNAL_ERROR)
    if control_flow:
        return
    event, hint = event_from_exception(exc_info, mechanism={"type": "arq", "handled": False})
    capture_event(event, hint=hint)


def _wrap_coroutine(name: str, coroutine: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(coroutine)
    async def job(ctx: dict[Any, Any], *args: Any, **kwargs: Any) -> Any:
        if get_client().get_integration(ArqIntegration) is None:
            return await coroutine(ctx, *args, **kwargs)
        try:
            _describe_job(name, ctx, args, kwargs)
        except Exception:
            pass
        try:
            return await coroutine(ctx, *args, **kwargs)
        except Exception:
            exc_info = sys.exc_info()
            try:
                _capture_exception(exc_info)
            except Exception:
                pass
            raise

    setattr(job, _WRAPPED, True)
    return job


def _instrument(function: Any) -> None:
    """Wrap an arq `Function` / `CronJob`'s coroutine (once, whichever worker has it)."""
    coroutine = function.coroutine
    if not getattr(coroutine, _WRAPPED, False):
        function.coroutine = _wrap_coroutine(function.name, coroutine)


def _wrap_worker_init(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        original(self, *args, **kwargs)
        integration = _active()
        if integration is None:
            return
        try:
            for function in self.functions.values():
                _instrument(function)
            if integration.monitor_cron_jobs:
                for cron_job in self.cron_jobs:
                    _monitor_cron_job(integration, cron_job, self)
        except Exception:  # a worker the integration cannot read still runs
            pass

    return __init__


def _patch_worker(module: ModuleType) -> None:
    global ARQ_CONTROL_FLOW_EXCEPTIONS
    ARQ_CONTROL_FLOW_EXCEPTIONS = (module.JobExecutionFailed, module.Retry, module.RetryJob)
    patch_once(module.Worker, "run_job", _wrap_run_job, _MARK)
    patch_once(module.Worker, "__init__", _wrap_worker_init, _MARK)


# -- cron jobs -----------------------------------------------------------------------------


def _crontab_field(value: Any, offset: int = 0) -> Optional[str]:
    if value is None:
        return "*"
    if isinstance(value, int) and not isinstance(value, bool):
        value = [value]
    if not isinstance(value, (set, list, tuple)) or not value:
        return None
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return None
    if offset:
        value = {(v + offset) % 7 for v in value}
    return ",".join(str(v) for v in sorted(value))


def _crontab(cron_job: Any) -> Optional[str]:
    if cron_job.second not in (0, {0}, [0], (0,)):
        return None  # Sentry's crontabs have minute resolution
    weekday = cron_job.weekday
    if isinstance(weekday, str):
        weekday = _WEEKDAYS.index(weekday.lower())
    if cron_job.day is not None and weekday is not None:
        return None  # arq wants both to match, cron either
    fields = [
        _crontab_field(cron_job.minute),
        _crontab_field(cron_job.hour),
        _crontab_field(cron_job.day),
        _crontab_field(cron_job.month),
        _crontab_field(weekday, offset=1),  # arq's Monday is 0, cron's Sunday
    ]
    if any(field is None for field in fields):
        return None
    return " ".join(field for field in fields if field is not None)


def _worker_timezone(worker: Any) -> Optional[str]:
    from tripwire.crons.utils import _get_timezone_name

    tz = getattr(worker, "timezone", None)
    if tz is None:
        # arq before 0.25 ran cron jobs in naive local time.
        if time.timezone == 0 and (not time.daylight or time.altzone == 0):
            return "UTC"
        return None
    return _get_timezone_name(tz)


def _monitor_config(cron_job: Any, worker: Any) -> Optional[MonitorConfig]:
    crontab = _crontab(cron_job)
    timezone = _worker_timezone(worker)
    if crontab is None or timezone is None:
        return None
    return {"schedule": {"type": "crontab", "value": crontab}, "timezone": timezone}


def _monitor_cron_job(integration: ArqIntegration, cron_job: Any, worker: Any) -> None:
    coroutine = cron_job.coroutine
    if (
        getattr(cron_job, _MONITORED, False)
        or getattr(coroutine, _MONITORED, False)
        or getattr(coroutine, "_sentry_monitored", False)  # the user's own @monitor
    ):
        return
    setattr(cron_job, _MONITORED, True)
    slug: str = cron_job.name
    if slug.startswith("cron:"):
        slug = slug[len("cron:") :]
    if match_regex_list(slug, integration.exclude_cron_jobs):
        return
    config = _monitor_config(cron_job, worker)
    if config is None:
        logger.debug("Not monitoring arq cron job %r: no Sentry Crons schedule matches.", slug)
        return
    from tripwire.crons import monitor

    async def monitored(ctx: dict[Any, Any], *args: Any, **kwargs: Any) -> Any:
        with monitor(monitor_slug=slug, monitor_config=config):
            return await coroutine(ctx, *args, **kwargs)

    setattr(monitored, _WRAPPED, True)
    setattr(monitored, _MONITORED, True)
    cron_job.coroutine = monitored


__all__ = ["ArqIntegration"]
