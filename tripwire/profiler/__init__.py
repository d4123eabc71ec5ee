"""Profiling (`tripwire.profiler`), as sentry_sdk.profiler 2.75.

Transaction profiles (`transaction_profiler`: `profiles_sample_rate`,
`profiles_sampler`) and continuous profiling (`continuous_profiler`:
`profile_session_sample_rate`, `profile_lifecycle`, `start_profiler()` /
`stop_profiler()`), over one stack sampler (`_sampler`). The names below are
sentry_sdk.profiler's, re-exported as it does.
"""

from __future__ import annotations

from tripwire.profiler.continuous_profiler import (
    start_profile_session,
    start_profiler,
    stop_profile_session,
    stop_profiler,
)
from tripwire.profiler.transaction_profiler import (
    MAX_PROFILE_DURATION_NS,
    PROFILE_MINIMUM_SAMPLES,
    GeventScheduler,
    Profile,
    Scheduler,
    ThreadScheduler,
    has_profiling_enabled,
    setup_profiler,
    teardown_profiler,
)
from tripwire.profiler.utils import (
    DEFAULT_SAMPLING_FREQUENCY,
    MAX_STACK_DEPTH,
    extract_frame,
    extract_stack,
    frame_id,
    get_frame_name,
)

__all__ = [
    "DEFAULT_SAMPLING_FREQUENCY",
    "MAX_PROFILE_DURATION_NS",
    "MAX_STACK_DEPTH",
    "PROFILE_MINIMUM_SAMPLES",
    "GeventScheduler",
    "Profile",
    "Scheduler",
    "ThreadScheduler",
    "extract_frame",
    "extract_stack",
    "frame_id",
    "get_frame_name",
    "has_profiling_enabled",
    "setup_profiler",
    "start_profile_session",
    "start_profiler",
    "stop_profile_session",
    "stop_profiler",
    "teardown_profiler",
]
