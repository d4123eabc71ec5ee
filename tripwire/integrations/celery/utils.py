"""Time helpers shared by the producer, the worker and Celery Beat (as sentry_sdk 2.75)."""

from __future__ import annotations

import time


def _now_seconds_since_epoch() -> float:
    """Wall-clock seconds: a task is enqueued and run in different processes."""
    return time.time()


__all__: list[str] = []
