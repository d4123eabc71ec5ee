"""Configurable rate limits the server answers with (``X-Sentry-Rate-Limits``).

They exist so that an SDK's rate-limit handling can be exercised end to end: items
of a limited category are dropped (and counted as ``rate_limited`` outcomes), and
the response carries the header, with 429 and ``Retry-After`` when nothing of the
envelope was kept.

A limit is written as in the header: ``retry_after:categories:scope[:reason_code]``,
categories separated by ``;`` and empty for all, e.g. ``60:error;transaction:key``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Optional

_SCOPES = ("key", "project", "organization")


class RateLimit:
    """One configured limit."""

    __slots__ = ("categories", "reason_code", "retry_after", "scope")

    def __init__(
        self,
        retry_after: int,
        categories: Iterable[str] = (),
        scope: str = "key",
        reason_code: Optional[str] = None,
    ) -> None:
        self.retry_after = retry_after
        self.categories = tuple(categories)
        self.scope = scope
        self.reason_code = reason_code

    @classmethod
    def parse(cls, spec: str) -> RateLimit:
        """Parse ``retry_after:categories:scope[:reason_code]`` (scope defaults to key).

        Raises:
            ValueError: `spec` is not such a string.
        """
        parts = spec.strip().split(":")
        if not parts or not parts[0].strip().isdigit():
            raise ValueError(
                f"bad rate limit {spec!r}: expected retry_after:categories[:scope[:reason]], "
                "e.g. 60:error;transaction:key"
            )
        categories = [c.strip() for c in parts[1].split(";")] if len(parts) > 1 else []
        scope = parts[2].strip() if len(parts) > 2 and parts[2].strip() else "key"
        if scope not in _SCOPES:
            raise ValueError(f"bad rate limit scope {scope!r}: one of {', '.join(_SCOPES)}")
        reason = parts[3].strip() if len(parts) > 3 and parts[3].strip() else None
        return cls(int(parts[0]), [c for c in categories if c], scope, reason)

    def applies_to(self, category: str) -> bool:
        """Whether items of `category` are limited (an empty category list limits all)."""
        return not self.categories or category in self.categories

    def header_value(self) -> str:
        """This limit as it appears in ``X-Sentry-Rate-Limits``."""
        value = f"{self.retry_after}:{';'.join(self.categories)}:{self.scope}"
        return f"{value}:{self.reason_code}" if self.reason_code else value

    def __repr__(self) -> str:
        return f"<RateLimit {self.header_value()}>"


class EnforcedRateLimits:
    """The limits this server enforces and announces (replaced whole, so readers never
    see half an update).

    Not the SDK's `tripwire.transport._ratelimit.RateLimits`, which parses the header
    this class writes and tracks, per category, how long the SDK must hold back.
    """

    __slots__ = ("_limits",)

    def __init__(self, limits: Iterable[RateLimit] = ()) -> None:
        self._limits: tuple[RateLimit, ...] = tuple(limits)

    @classmethod
    def parse(cls, specs: Iterable[str]) -> EnforcedRateLimits:
        """Limits from strings such as ``60:error:key`` (see `RateLimit.parse`)."""
        return cls(RateLimit.parse(spec) for spec in specs if spec.strip())

    def replace(self, limits: Iterable[RateLimit]) -> None:
        """Set new limits (an empty iterable lifts them all)."""
        self._limits = tuple(limits)

    @property
    def limits(self) -> tuple[RateLimit, ...]:
        """The active limits."""
        return self._limits

    def limited(self, category: str) -> Optional[RateLimit]:
        """The limit that applies to `category`, if any."""
        for limit in self._limits:
            if limit.applies_to(category):
                return limit
        return None

    def header(self) -> Optional[str]:
        """The ``X-Sentry-Rate-Limits`` value, or None when nothing is limited."""
        if not self._limits:
            return None
        return ", ".join(limit.header_value() for limit in self._limits)

    def retry_after(self) -> int:
        """The longest retry-after of the active limits."""
        return max((limit.retry_after for limit in self._limits), default=0)
