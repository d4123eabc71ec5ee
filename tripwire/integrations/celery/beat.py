"""Celery Beat: schedule entries as cron monitors (``monitor_beat_tasks=True``).

As sentry_sdk 2.75: when Beat applies a schedule entry (`celery.beat.Scheduler.apply_entry`,
or `RedBeatScheduler.apply_async` with celery-redbeat), the entry's task starts a new
trace without a submit span and, unless its name matches ``exclude_beat_tasks``, Beat
sends an ``in_progress`` check-in for the monitor named like the entry, with the
schedule as its config (``crontab``: the five fields as given; ``interval``: whole
minutes, hours or days, a shorter or uneven interval is not monitored) and the
timezone (the schedule's, else the app's, else UTC). The slug, config and check-in id
travel in the task's headers; the worker sends ``ok`` on ``task_success`` and
``error`` on ``task_failure`` / ``task_retry``, with the duration since Beat sent it.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Callable, Optional

from tripwire._log import logger
from tripwire.crons.api import capture_checkin
from tripwire.crons.consts import MonitorStatus
from tripwire.crons.utils import _get_interval_schedule
from tripwire.integrations._patch import on_undo, patch_once
from tripwire.integrations.celery.utils import _now_seconds_since_epoch
from tripwire.scope._current import get_client, get_isolation_scope
from tripwire.tracing._propagation import match_regex_list

_MARK = "__tripwire_celery_beat__"


def _integration() -> Any:
    from tripwire.integrations.celery import CeleryIntegration

    return get_client().get_integration(CeleryIntegration)


def _get_headers(task: Any) -> dict[str, Any]:
    """The task's headers, the nested ``headers`` dict and the message properties flattened."""
    headers: dict[str, Any] = task.request.get("headers") or {}
    if "headers" in headers:
        headers.update(headers["headers"])
        del headers["headers"]
    headers.update(task.request.get("properties") or {})
    return headers


def _get_monitor_config(celery_schedule: Any, app: Any, monitor_name: str) -> dict[str, Any]:
    """The monitor config of a Celery schedule; empty if Sentry Crons cannot express it."""
    from celery.schedules import crontab, schedule

    if isinstance(celery_schedule, crontab):
        fields = (
            celery_schedule._orig_minute,
            celery_schedule._orig_hour,
            celery_schedule._orig_day_of_month,
            celery_schedule._orig_month_of_year,
            celery_schedule._orig_day_of_week,
        )
        config: dict[str, Any] = {
            "schedule": {"type": "crontab", "value": " ".join(str(field) for field in fields)}
        }
    elif isinstance(celery_schedule, schedule):
        seconds = celery_schedule.seconds
        interval = _get_interval_schedule(seconds)
        if interval is None:
            if seconds < 60:
                logger.warning(
                    "Intervals shorter than one minute are not supported by Sentry Crons. "
                    "Monitor '%s' has an interval of %s seconds. Use the "
                    "`exclude_beat_tasks` option in the celery integration to exclude it.",
                    monitor_name,
                    int(seconds),
                )
            else:
                logger.warning(
                    "Sentry Crons only supports intervals of whole minutes. Monitor '%s' "
                    "has an interval of %s seconds. Use the `exclude_beat_tasks` option in "
                    "the celery integration to exclude it.",
                    monitor_name,
                    int(seconds),
                )
            return {}
        config = {
            "schedule": {"type": "interval", "value": interval["value"], "unit": interval["unit"]}
        }
    else:
        logger.warning(
            "Celery schedule type '%s' not supported by Sentry Crons.", type(celery_schedule)
        )
        return {}
    tz = getattr(celery_schedule, "tz", None)
    config["timezone"] = (tz is not None and str(tz)) or app.timezone or "UTC"
    return config


def _apply_crons_data_to_schedule_entry(
    scheduler: Any, schedule_entry: Any, integration: Any
) -> None:
    """Send the ``in_progress`` check-in; put the monitor in the entry's task headers."""
    if not integration.monitor_beat_tasks:
        return
    monitor_name = schedule_entry.name
    if match_regex_list(monitor_name, integration.exclude_beat_tasks):
        return
    monitor_config = _get_monitor_config(schedule_entry.schedule, scheduler.app, monitor_name)
    if not monitor_config:
        return
    headers = schedule_entry.options.pop("headers", {})
    headers.update({"sentry-monitor-slug": monitor_name, "sentry-monitor-config": monitor_config})
    check_in_id = capture_checkin(
        monitor_slug=monitor_name,
        monitor_config=monitor_config,
        status=MonitorStatus.IN_PROGRESS,
    )
    headers["sentry-monitor-check-in-id"] = check_in_id
    # `apply_async` (patched) copies the sentry-* headers where the worker finds them.
    schedule_entry.options["headers"] = headers


def _wrap_beat_scheduler(original: Callable[..., Any]) -> Callable[..., Any]:
    """Beat's entry point for one due entry: a new trace and the monitor's check-in."""
    import functools

    from tripwire.integrations.celery import _from_beat

    @functools.wraps(original)
    def apply_entry(*args: Any, **kwargs: Any) -> Any:
        integration = _integration()
        if integration is None:
            return original(*args, **kwargs)
        token = None
        try:
            get_isolation_scope().set_new_propagation_context()
            token = _from_beat.set(True)
            scheduler, schedule_entry = args[0], args[1]
            _apply_crons_data_to_schedule_entry(scheduler, schedule_entry, integration)
        except Exception:
            logger.debug("celery beat: could not prepare the entry", exc_info=True)
        try:
            return original(*args, **kwargs)
        finally:
            if token is not None:
                _from_beat.reset(token)

    return apply_entry


def _patch_beat_apply_entry(module: Optional[ModuleType] = None) -> None:
    """Patch `celery.beat.Scheduler.apply_entry` (Celery Beat's own scheduler)."""
    if module is None:
        import celery.beat

        module = celery.beat
    patch_once(module.Scheduler, "apply_entry", _wrap_beat_scheduler, _MARK)


def _patch_redbeat_apply_async(module: Optional[ModuleType] = None) -> None:
    """Patch `redbeat.schedulers.RedBeatScheduler.apply_async` (celery-redbeat)."""
    if module is None:
        try:
            import redbeat.schedulers
        except ImportError:
            return
        module = redbeat.schedulers
    patch_once(module.RedBeatScheduler, "apply_async", _wrap_beat_scheduler, _MARK)


def _check_in(sender: Any, status: str) -> None:
    integration = _integration()
    if integration is None or not integration.monitor_beat_tasks:
        return
    headers = _get_headers(sender)
    if "sentry-monitor-slug" not in headers:
        return
    start = headers.get("sentry-monitor-start-timestamp-s")
    capture_checkin(
        monitor_slug=headers["sentry-monitor-slug"],
        monitor_config=headers.get("sentry-monitor-config", {}),
        check_in_id=headers["sentry-monitor-check-in-id"],
        duration=_now_seconds_since_epoch() - float(start) if start else None,
        status=status,
    )


def crons_task_success(sender: Any, **kwargs: Any) -> None:
    """``task_success``: the ``ok`` check-in of a monitored Beat task."""
    logger.debug("celery_task_success %s", sender)
    _check_in(sender, MonitorStatus.OK)


def crons_task_failure(sender: Any, **kwargs: Any) -> None:
    """``task_failure``: the ``error`` check-in of a monitored Beat task."""
    logger.debug("celery_task_failure %s", sender)
    _check_in(sender, MonitorStatus.ERROR)


def crons_task_retry(sender: Any, **kwargs: Any) -> None:
    """``task_retry``: the ``error`` check-in of a monitored Beat task."""
    logger.debug("celery_task_retry %s", sender)
    _check_in(sender, MonitorStatus.ERROR)


def _connect_signals(module: ModuleType) -> None:
    """Connect the check-in handlers (they do nothing without ``monitor_beat_tasks``)."""
    pairs = (
        (module.task_success, crons_task_success),
        (module.task_failure, crons_task_failure),
        (module.task_retry, crons_task_retry),
    )
    for signal, handler in pairs:
        signal.connect(handler, weak=False)

    def disconnect() -> None:
        for signal, handler in pairs:
            signal.disconnect(handler)

    on_undo(disconnect)


def _setup_celery_beat_signals(monitor_beat_tasks: bool) -> None:
    """sentry_sdk's entry point: connect the handlers (done by `setup_once` here)."""
    if monitor_beat_tasks:
        import celery.signals

        _connect_signals(celery.signals)


__all__ = ["crons_task_failure", "crons_task_retry", "crons_task_success"]
