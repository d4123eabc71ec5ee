"""Trace metrics (`tripwire.metrics.count/gauge/distribution`), as sentry_sdk.metrics.

Not implemented yet: the calls are accepted and do nothing, which is what
sentry_sdk does with `enable_metrics=False`.
"""

from __future__ import annotations

from typing import Any, Optional


def count(
    name: str, value: float, unit: Optional[str] = None, attributes: Optional[dict[str, Any]] = None
) -> None:
    """Count `value` occurrences of `name` (not sent yet)."""


def gauge(
    name: str, value: float, unit: Optional[str] = None, attributes: Optional[dict[str, Any]] = None
) -> None:
    """Record the current value of `name` (not sent yet)."""


def distribution(
    name: str, value: float, unit: Optional[str] = None, attributes: Optional[dict[str, Any]] = None
) -> None:
    """Record one sample of `name`'s distribution (not sent yet)."""


__all__ = ["count", "distribution", "gauge"]
