"""Cron monitoring, as sentry_sdk.crons: `monitor`, `capture_checkin`, `MonitorStatus`."""

from __future__ import annotations

from tripwire.crons.api import capture_checkin
from tripwire.crons.consts import MonitorStatus
from tripwire.crons.decorator import monitor

__all__ = ["MonitorStatus", "capture_checkin", "monitor"]
