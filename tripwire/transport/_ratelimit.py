"""Rate limits the server asked for: `X-Sentry-Rate-Limits`, `Retry-After` and bare 429s.

Pure policy with an injectable clock; no I/O. The header grammar is::

    X-Sentry-Rate-Limits: <limit>, <limit>, ...
    <limit> = retry_after:categories:scope[:reason_code[:namespaces]]

`retry_after` is seconds (int or float), `categories` a ``;``-separated list where
an empty list means every category. Categories this SDK does not know are ignored
(a limit naming only unknown ones limits nothing), and when several limits cover
the same category the longest one wins.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping
from typing import Callable, Optional

from tripwire.outcomes import DataCategory

# Categories the server may name that map onto items this SDK sends.
KNOWN_CATEGORIES = frozenset(c.value for c in DataCategory) | {"security", "feedback"}

# None stands for "every category" (an empty category list, a bare 429 or Retry-After).
ALL: Optional[str] = None

DEFAULT_RETRY_AFTER = 60.0


def parse_rate_limits(header: str) -> list[tuple[Optional[str], float]]:
    """Parse an `X-Sentry-Rate-Limits` value into (category or None for all, seconds).

    Malformed entries are skipped; unknown categories are left out.
    """
    limits: list[tuple[Optional[str], float]] = []
    for raw in header.split(","):
        fields = raw.strip().split(":")
        if not fields[0]:
            continue
        try:
            seconds = float(fields[0])
        except ValueError:
            continue
        if seconds != seconds or seconds < 0:  # NaN or negative: meaningless
            continue
        categories = fields[1].strip() if len(fields) > 1 else ""
        namespaces = fields[4].strip() if len(fields) > 4 else ""
        if not categories:
            limits.append((ALL, seconds))
            continue
        for category in categories.split(";"):
            category = category.strip()
            if category not in KNOWN_CATEGORIES:
                continue
            # A metric limit scoped to namespaces only applies to ours if "custom" is named.
            if (
                category == "metric_bucket"
                and namespaces
                and "custom" not in {n.strip() for n in namespaces.split(";")}
            ):
                continue
            limits.append((category, seconds))
    return limits


def parse_retry_after(value: Optional[str]) -> float:
    """Seconds from a `Retry-After` header (delta-seconds or HTTP date); 60 if unusable."""
    if not value:
        return DEFAULT_RETRY_AFTER
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        when = _http_date(value)
        if when is None:
            return DEFAULT_RETRY_AFTER
        seconds = when - time.time()
    if seconds != seconds:
        return DEFAULT_RETRY_AFTER
    return max(seconds, 0.0)


_MONTH_NAMES = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_MONTHS = {name: number for number, name in enumerate(_MONTH_NAMES, 1)}


def _http_date(value: str) -> Optional[float]:
    """Unix time of an IMF-fixdate (``Sun, 06 Nov 1994 08:49:37 GMT``), or None.

    Parsed by hand: the worker thread must not import (email.utils) at run time.
    """
    parts = value.replace(",", " ").split()
    if len(parts) != 6 or parts[5].upper() != "GMT":
        return None
    _, day, month_name, year, clock, _ = parts
    month = _MONTHS.get(month_name.lower())
    hms = clock.split(":")
    if month is None or len(hms) != 3 or not all(p.isdigit() for p in (day, year, *hms)):
        return None
    # Days since 1970-01-01 in the proleptic Gregorian calendar (Howard Hinnant's
    # days_from_civil), so no calendar/datetime import is needed either.
    y = int(year) - (month <= 2)
    era = y // 400
    yoe = y - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + int(day) - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    days = era * 146097 + doe - 719468
    h, m, s = (int(p) for p in hms)
    return float(days * 86400 + h * 3600 + m * 60 + s)


class RateLimits:
    """The limits the server asked this SDK to obey: category (None = all) -> monotonic
    deadline. Thread-safe.

    Not the local server's `tripwire.server.ratelimits.EnforcedRateLimits`, which
    decides what to refuse and writes the header this class parses.

    Args:
        clock: Monotonic seconds; a seam for tests.
    """

    __slots__ = ("_clock", "_lock", "_until")

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._until: dict[Optional[str], float] = {}

    def update(self, status: int, headers: Mapping[str, str]) -> None:
        """Apply the limits carried by a response (any status: they may come on a 200)."""
        header = headers.get("x-sentry-rate-limits")
        if header:
            limits = parse_rate_limits(header)
        elif status == 429:
            limits = [(ALL, parse_retry_after(headers.get("retry-after")))]
        else:
            return
        now = self._clock()
        with self._lock:
            until = self._until
            for category, seconds in limits:
                deadline = now + seconds
                if until.get(category, 0.0) < deadline:  # the longest limit wins
                    until[category] = deadline

    def is_limited(self, category: str) -> bool:
        """True while `category` (or every category) is rate-limited."""
        until = self._until
        if not until:
            return False
        now = self._clock()
        return until.get(category, 0.0) > now or until.get(ALL, 0.0) > now

    def limited(self, categories: Iterable[str]) -> set[str]:
        """The subset of `categories` that is rate-limited now."""
        if not self._until:
            return set()
        return {c for c in categories if self.is_limited(c)}

    def any_active(self) -> bool:
        """True while any limit is in force (the transport is then "unhealthy")."""
        until = self._until
        if not until:
            return False
        now = self._clock()
        # Never waits: the lock may be held by the code a signal handler or a finalizer
        # interrupted on this thread (`is_healthy()` is public). Then answer without
        # pruning (`list()` copies in one C call).
        lock = self._lock
        if not lock.acquire(False):
            return any(deadline > now for deadline in list(until.values()))
        try:
            expired = [c for c, deadline in until.items() if deadline <= now]
            for category in expired:
                del until[category]
            return bool(until)
        finally:
            lock.release()

    def snapshot(self) -> dict[Optional[str], float]:
        """{category or None: seconds left} for the limits still in force."""
        now = self._clock()
        # No lock (see any_active): `list()` copies in one C call.
        return {c: d - now for c, d in list(self._until.items()) if d > now}

    def reset_after_fork(self) -> None:
        """A fresh lock in a forked child (another thread may have held the parent's)."""
        self._lock = threading.Lock()
        self._until = dict(self._until)
