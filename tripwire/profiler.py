"""Profiling (`tripwire.profiler`), as sentry_sdk.profiler with profiling disabled.

Not implemented yet: starting and stopping the profiler does nothing, which is
what sentry_sdk does when no profiles sample rate is configured.
"""

from __future__ import annotations

from typing import Any


def start_profiler() -> None:
    """Start the continuous profiler (profiling is not available yet: no-op)."""


def stop_profiler() -> None:
    """Stop the continuous profiler (no-op)."""


start_profile_session = start_profiler
stop_profile_session = stop_profiler


def has_profiling_enabled(options: dict[str, Any]) -> bool:
    """False: tripwire does not profile yet."""
    return False


class Profile:
    """A transaction profile; records nothing until profiling lands."""

    def __init__(self, transaction: Any = None, hub: Any = None, scheduler: Any = None) -> None:
        self.transaction = transaction
        self.sampled = False

    def __enter__(self) -> Profile:
        return self

    def __exit__(self, *exc: object) -> None:
        pass


__all__ = [
    "Profile",
    "has_profiling_enabled",
    "start_profile_session",
    "start_profiler",
    "stop_profile_session",
    "stop_profiler",
]
