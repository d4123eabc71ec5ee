"""`monitor`: check in around a job, as a decorator or a context manager (sync or async)."""

from __future__ import annotations

import functools
import time
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from tripwire.crons.api import capture_checkin
from tripwire.crons.consts import MonitorStatus

if TYPE_CHECKING:
    from tripwire.types import MonitorConfig

F = TypeVar("F", bound=Callable[..., Any])


class monitor:
    """Sends an ``in_progress`` check-in on entry, then ``ok`` or ``error`` with the duration.

    Usable as ``@monitor(monitor_slug="nightly")`` on functions and coroutine
    functions, and as ``with monitor("nightly"):`` / ``async with``. Exceptions
    propagate unchanged.

    Args:
        monitor_slug: The monitor's slug.
        monitor_config: Creates or updates the monitor (see `capture_checkin`).
    """

    def __init__(
        self, monitor_slug: str | None = None, monitor_config: MonitorConfig | None = None
    ) -> None:
        self.monitor_slug = monitor_slug
        self.monitor_config = monitor_config
        # (check-in id, start) per `with` entered and not yet left: nesting works.
        self._open: list[tuple[str | None, float]] = []

    def _begin(self) -> tuple[str | None, float]:
        check_in_id = capture_checkin(
            monitor_slug=self.monitor_slug,
            status=MonitorStatus.IN_PROGRESS,
            monitor_config=self.monitor_config,
        )
        return check_in_id, time.perf_counter()

    def _end(self, started: tuple[str | None, float], failed: bool) -> None:
        check_in_id, start = started
        capture_checkin(
            monitor_slug=self.monitor_slug,
            check_in_id=check_in_id,
            status=MonitorStatus.ERROR if failed else MonitorStatus.OK,
            duration=time.perf_counter() - start,
            monitor_config=self.monitor_config,
        )

    def __enter__(self) -> None:
        self._open.append(self._begin())

    def __exit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        if self._open:
            self._end(self._open.pop(), exc_type is not None)

    async def __aenter__(self) -> None:
        self.__enter__()

    async def __aexit__(self, exc_type: type[BaseException] | None, *rest: object) -> None:
        self.__exit__(exc_type, *rest)

    def __call__(self, fn: F) -> F:
        # Each call gets its own check-in: the decorated function may run concurrently.
        import inspect  # lazy: inspect costs ~5 ms

        if inspect.iscoroutinefunction(fn):

            @functools.wraps(fn)
            async def async_wrapper(*args: Any, **kwargs: Any) -> Any:
                started = self._begin()
                try:
                    result = await fn(*args, **kwargs)
                except BaseException:
                    self._end(started, True)
                    raise
                self._end(started, False)
                return result

            async_wrapper._sentry_monitored = True  # type: ignore[attr-defined]
            return async_wrapper  # type: ignore[return-value]

        @functools.wraps(fn)
        def sync_wrapper(*args: Any, **kwargs: Any) -> Any:
            started = self._begin()
            try:
                result = fn(*args, **kwargs)
            except BaseException:
                self._end(started, True)
                raise
            self._end(started, False)
            return result

        # As sentry_sdk's: integrations (arq's cron jobs) leave a monitored function be.
        sync_wrapper._sentry_monitored = True  # type: ignore[attr-defined]
        return sync_wrapper  # type: ignore[return-value]


__all__ = ["monitor"]
