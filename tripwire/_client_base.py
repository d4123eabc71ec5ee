"""The client interface, and the client in force before `init()` (records nothing).

Below the scopes: a scope holds a client without importing the real one
(`tripwire.client.Client`, which builds the capture steps and the transport).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Callable

from tripwire._log import logger, suppress
from tripwire.outcomes import Outcomes

if TYPE_CHECKING:
    from tripwire.capture.breadcrumbs import CrumbCache
    from tripwire.dsn import Dsn
    from tripwire.integrations import Integration
    from tripwire.scope._scope import Scope
    from tripwire.transport import Transport
    from tripwire.types import Event, EventDict, ExcInfo, Hint

_FIRST_ARG: Any = object()


class _CaptureGuard(threading.local):
    """Set while this thread builds or processes an event.

    User code runs in there (`__repr__` of frame locals and extras, a Mapping's
    `__iter__`, hooks, processors, a transport); a capture it makes is a no-op, so
    capture never recurses, let alone without bound (as sentry_sdk 2.x, one event).
    """

    active = False


capture_guard = _CaptureGuard()


class BaseClient:
    """The client interface; on its own it records nothing (no SDK initialised)."""

    _max_breadcrumbs = 100
    _before_breadcrumb: Callable[..., Any] | None = None
    # Read on hot paths instead of calling is_active().
    _recording = False
    if TYPE_CHECKING:
        _crumb_wire: CrumbCache

    def __init__(self, options: dict[str, Any] | None = None) -> None:
        self.options: dict[str, Any] = options if options is not None else _default_options()
        self.transport: Transport | None = None
        self.integrations: dict[str, Integration] = {}
        self.outcomes = Outcomes()
        # Backpressure monitor and Spotlight sender (tripwire.monitor, tripwire.spotlight).
        self.monitor: Any = None
        self.spotlight: Any = None

    def is_active(self) -> bool:
        """False: nothing is captured until `init()`."""
        return False

    @property
    def dsn(self) -> str | None:
        """The configured DSN, if any."""
        dsn = self.options.get("dsn")
        return str(dsn) if dsn else None

    @property
    def parsed_dsn(self) -> Dsn | None:
        """The parsed DSN, if any."""
        return None

    def should_send_default_pii(self) -> bool:
        """Whether send_default_pii is on."""
        return bool(self.options.get("send_default_pii"))

    def capture_event(
        self, event: Event, hint: Hint | None = None, scope: Scope | None = None
    ) -> str | None:
        """Capture an event; this client drops everything."""
        return None

    def _capture(
        self, event: EventDict, hint: Hint, layers: Sequence[Scope], built_by_sdk: bool
    ) -> str | None:
        return None

    def _event_from_exception(
        self, exc_info: ExcInfo, mechanism: dict[str, Any] | None = None
    ) -> tuple[EventDict, Hint]:
        raise RuntimeError("no client: nothing is captured before init()")

    def capture_session(self, session: Any) -> None:
        """Send a release-health session update (this client drops it)."""

    def get_integration(self, name_or_class: str | type[Any]) -> Any:
        """The installed integration with that identifier or class, else None."""
        key = name_or_class if isinstance(name_or_class, str) else name_or_class.identifier
        return self.integrations.get(key)

    def flush(
        self, timeout: float | None = None, callback: Callable[[int, float], None] | None = None
    ) -> None:
        """Wait up to `timeout` seconds for queued events to be sent."""

    async def flush_async(
        self, timeout: float | None = None, callback: Callable[[int, float], None] | None = None
    ) -> None:
        """`flush` without blocking the event loop."""
        import asyncio  # lazy: `import tripwire` loads no asyncio (pinned by a test)

        await asyncio.get_running_loop().run_in_executor(None, self.flush, timeout, callback)

    def close(
        self, timeout: float | None = None, callback: Callable[[int, float], None] | None = None
    ) -> None:
        """Flush and shut the transport down."""

    async def close_async(
        self, timeout: float | None = None, callback: Callable[[int, float], None] | None = None
    ) -> None:
        """`close` without blocking the event loop."""
        import asyncio  # lazy: `import tripwire` loads no asyncio (pinned by a test)

        await asyncio.get_running_loop().run_in_executor(None, self.close, timeout, callback)

    def _run_user_hook(self, fn: Callable[..., Any], *args: Any, on_error: Any = _FIRST_ARG) -> Any:
        """Run user code (hooks, processors): its errors are logged, never raised.

        While it runs, the SDK's logging integration ignores records (no recursion if
        the hook logs), and an error returns `on_error` (default: the first argument,
        i.e. the event passes through unchanged).
        """
        with suppress:
            try:
                return fn(*args)
            except Exception:
                logger.warning("%r raised; see the traceback below", fn, exc_info=True)
                return args[0] if on_error is _FIRST_ARG else on_error

    def __enter__(self) -> BaseClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class NonRecordingClient(BaseClient):
    """The client in force before `init()` and after `tripwire.testing.reset()`."""


def _default_options() -> dict[str, Any]:
    from tripwire.options import DEFAULT_OPTIONS  # lazy: ~0.7 ms, kept off `import tripwire`

    return dict(DEFAULT_OPTIONS)


class _LazyDefaultOptions(dict):  # type: ignore[type-arg]
    """DEFAULT_OPTIONS, built on first read so `import tripwire` stays cheap."""

    def __missing__(self, key: str) -> Any:
        if not self:
            self.update(_default_options())
            if key in self:
                return self[key]
        raise KeyError(key)

    def get(self, key: str, default: Any = None) -> Any:
        if not self:
            self.update(_default_options())
        return super().get(key, default)


NON_RECORDING_CLIENT = NonRecordingClient(_LazyDefaultOptions())
