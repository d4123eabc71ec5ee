"""`capture_checkin`: one cron monitor check-in, sent as a ``check_in`` envelope item.

The payload has the shape sentry_sdk 2.x sends: the check-in fields, the client's
environment, release, server name and dist, the trace context of the scope, the
SDK info and a timestamp. Scope data (tags, user, breadcrumbs) and event
processors do not apply to check-ins; ``before_send`` does, as in sentry_sdk.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tripwire._clock import clock, format_timestamp
from tripwire._ids import ids
from tripwire._log import logger
from tripwire.envelope import Envelope
from tripwire.outcomes import DataCategory, DropReason
from tripwire.scope._current import get_client, get_current_scope

if TYPE_CHECKING:
    from tripwire.types import EventDict, MonitorConfig


def capture_checkin(
    monitor_slug: str | None = None,
    check_in_id: str | None = None,
    status: str | None = None,
    duration: float | None = None,
    monitor_config: MonitorConfig | None = None,
) -> str | None:
    """Send a check-in for the monitor `monitor_slug`.

    Args:
        monitor_slug: The monitor's slug.
        check_in_id: The id of the check-in to update (a new one when None).
        status: ``"in_progress"``, ``"ok"`` or ``"error"`` (see `MonitorStatus`).
        duration: How long the job ran, in seconds.
        monitor_config: Creates or updates the monitor (schedule, margins, timezone...).

    Returns:
        The check-in id when the check-in was sent, None when it was not (no
        client, no transport, or ``before_send`` dropped it), as sentry_sdk does.
    """
    try:
        return _capture(monitor_slug, check_in_id, status, duration, monitor_config)
    except Exception:
        logger.debug("capture_checkin failed", exc_info=True)
        return None


def _capture(
    monitor_slug: str | None,
    check_in_id: str | None,
    status: str | None,
    duration: float | None,
    monitor_config: MonitorConfig | None,
) -> str | None:
    client = get_client()
    transport = client.transport
    if not client.is_active() or transport is None:
        return None
    options = client.options
    check_in_id = check_in_id or ids.event_id()
    event_id = ids.event_id()
    scope = get_current_scope()
    trace_context = scope.get_trace_context()
    dsc = trace_context.pop("dynamic_sampling_context", None)
    if dsc is None:
        dsc = scope.get_dynamic_sampling_context()
    check_in: EventDict = {
        "type": "check_in",
        "monitor_slug": monitor_slug,
        "check_in_id": check_in_id,
        "status": status,
        "duration": duration,
        "environment": options.get("environment"),
        "release": options.get("release"),
    }
    if monitor_config:
        check_in["monitor_config"] = monitor_config
    check_in["event_id"] = event_id
    check_in["timestamp"] = format_timestamp(clock.now())
    check_in["contexts"] = {"trace": trace_context}
    for key in ("server_name", "dist"):
        value = options.get(key)
        if value is not None:
            check_in[key] = value
    check_in["sdk"] = getattr(client, "_sdk_info", None) or {"name": "tripwire.python"}
    check_in["platform"] = "python"

    hook = options.get("before_send")
    if hook is not None:
        result = client._run_user_hook(hook, check_in, {}, on_error=None)
        if not isinstance(result, dict):
            client.outcomes.record(DropReason.BEFORE_SEND, DataCategory.MONITOR)
            return None
        check_in = result

    headers: dict[str, Any] = {"event_id": event_id, "sent_at": format_timestamp(clock.now())}
    if dsc:
        headers["trace"] = dsc
    envelope = Envelope(headers=headers)
    envelope.add_checkin(check_in)
    transport.capture_envelope(envelope)
    return check_in_id


__all__ = ["capture_checkin"]
