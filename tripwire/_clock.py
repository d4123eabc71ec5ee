"""Wall clock and timestamp formatting: the time seam for tests (see `tripwire.testing`)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:
    from datetime import datetime


class _Clock:
    __slots__ = ("now",)

    def __init__(self) -> None:
        self.now: Callable[[], float] = time.time

    def reset(self) -> None:
        self.now = time.time


clock = _Clock()
_gmtime = time.gmtime


def format_timestamp(value: float | datetime) -> str:
    """RFC 3339 in UTC with microseconds, as the protocol and sentry_sdk write it."""
    if not isinstance(value, (int, float)):
        from datetime import timezone  # lazy: no datetime at `import tripwire` (pinned)

        if value.tzinfo is not None:
            value = value.astimezone(timezone.utc)
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    seconds = int(value)
    micros = round((value - seconds) * 1_000_000)
    if micros >= 1_000_000:
        seconds, micros = seconds + 1, micros - 1_000_000
    t = _gmtime(seconds)
    return "%04d-%02d-%02dT%02d:%02d:%02d.%06dZ" % (
        t.tm_year,
        t.tm_mon,
        t.tm_mday,
        t.tm_hour,
        t.tm_min,
        t.tm_sec,
        micros,
    )


def to_epoch(value: object) -> float | None:
    """A float timestamp from a float, int or datetime (naive datetimes are taken as UTC)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    from datetime import datetime, timezone  # lazy: no datetime at `import tripwire` (pinned)

    if isinstance(value, datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=timezone.utc)
        return value.timestamp()
    return None
