"""Helpers for monitor configs: interval schedules and time zone names."""

from __future__ import annotations

import re
from datetime import timedelta, timezone, tzinfo
from typing import Any, Optional

_UNITS = (("day", 86_400), ("hour", 3_600), ("minute", 60))

# IANA names start with an uppercase letter ("Europe/Vienna", "UTC"); "local" is not one.
_IANA_NAME = re.compile(r"[A-Z][A-Za-z0-9._+-]*(?:/[A-Za-z0-9._+-]+)*")


def _get_interval_schedule(seconds: float) -> Optional[dict[str, Any]]:
    """An ``interval`` schedule in the largest unit that divides `seconds`, or None.

    None when `seconds` is not a whole number of minutes.
    """
    for unit, size in _UNITS:
        if seconds >= size and seconds % size == 0:
            return {"type": "interval", "value": int(seconds // size), "unit": unit}
    return None


def _get_timezone_name(tz: tzinfo) -> Optional[str]:
    """The IANA name of `tz` (``Etc/GMT-2`` for a whole-hour fixed offset), or None."""
    name = getattr(tz, "key", None) or getattr(tz, "zone", None)
    if isinstance(name, str):
        return name if _IANA_NAME.fullmatch(name) else None
    if isinstance(tz, timezone):
        offset = tz.utcoffset(None)
        if offset % timedelta(hours=1):
            return None
        hours = offset // timedelta(hours=1)
        # The Etc zones' signs are inverted: UTC+2 is "Etc/GMT-2".
        return f"Etc/GMT{-hours:+d}" if hours else "UTC"
    return None
