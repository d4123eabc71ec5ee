"""The running continuous profiler's id, read by tracing for every span it starts.

A module global (no import, no lock): `tracing._span._thread_data` adds it to a
span's data as `profiler_id`, as sentry_sdk's Span does, while it is not None.
"""

from __future__ import annotations

profiler_id: str | None = None
