"""Continuous profiling, as sentry_sdk.profiler.continuous_profiler (2.75).

With `profile_session_sample_rate` (rolled once per process), the profiler samples
every thread ~101 times a second and sends a `profile_chunk` item (sample format
v2, wall-clock timestamps) every `PROFILE_BUFFER_SECONDS` (60) and when it stops.
`profile_lifecycle="manual"` runs it between `start_profiler()` and
`stop_profiler()`; `"trace"` runs it while any sampled root span (transaction) is
running, and stops it, sending the last chunk, when the last one finishes. While it
runs, spans carry `thread.id`/`thread.name` and `profiler_id` data and transactions
a `profile` context `{"profiler_id": ...}`, which link them to the chunks. Each
start gets a new profiler id, as in sentry_sdk.

Unlike sentry_sdk, a transaction ends its claim on the "trace" profiler at
`finish()` whether or not it was used as a context manager.
"""

from __future__ import annotations

import atexit
import importlib
import os
import time
import warnings
from collections import deque
from typing import Any, Callable

from tripwire._ids import getrandbits, random
from tripwire._late import hooks
from tripwire._log import logger
from tripwire.consts import SDK_NAME, VERSION
from tripwire.envelope import Envelope
from tripwire.profiler import _sampler, _state, transaction_profiler
from tripwire.profiler.transaction_profiler import (
    _append_ticks,
    _frame_options,
    _is_gevent,
    _thread_metadata,
    has_profiling_enabled,
    setup_profiler,
)
from tripwire.profiler.utils import DEFAULT_SAMPLING_FREQUENCY
from tripwire.scope._current import get_client

_scheduler: ContinuousScheduler | None = None

# Seconds of samples per profile_chunk (tests may lower it before the profiler starts).
PROFILE_BUFFER_SECONDS = 60


def setup_continuous_profiler(
    options: dict[str, Any],
    sdk_info: dict[str, Any],
    capture_func: Callable[[Envelope], None],
) -> bool:
    """Create the continuous profiler for these options (replacing one set up before).

    Raises:
        ValueError: an unknown `profiler_mode`, or "gevent" without gevent.
    """
    global _scheduler
    if _scheduler is not None:
        teardown_continuous_profiler()
    mode = options.get("profiler_mode")
    if mode is None:
        mode = (options.get("_experiments") or {}).get("continuous_profiling_mode")
    if mode is None:
        mode = GeventContinuousScheduler.mode if _is_gevent() else ThreadContinuousScheduler.mode
    if mode == ThreadContinuousScheduler.mode:
        cls: type[ContinuousScheduler] = ThreadContinuousScheduler
    elif mode == GeventContinuousScheduler.mode:
        cls = GeventContinuousScheduler
    else:
        raise ValueError(f"Unknown continuous profiler mode: {mode}")
    _scheduler = cls(DEFAULT_SAMPLING_FREQUENCY, options, sdk_info, capture_func)
    _register_teardown()
    return True


_teardown_registered = False


def _register_teardown() -> None:
    global _teardown_registered
    if not _teardown_registered:
        _teardown_registered = True
        atexit.register(teardown_continuous_profiler)
    if hooks.on_undo is not None:
        hooks.on_undo(teardown_continuous_profiler)


def is_profile_session_sampled() -> bool:
    """Whether this process's profile session was sampled."""
    return _scheduler is not None and _scheduler.sampled


def try_autostart_continuous_profiler() -> None:
    """Start a manual profiler when `_experiments["continuous_profiling_auto_start"]`."""
    scheduler = _scheduler
    if scheduler is not None and scheduler.is_auto_start_enabled():
        scheduler.manual_start()


def try_profile_lifecycle_trace_start() -> ContinuousProfile | None:
    """For a starting root span: a claim on the "trace" profiler (None otherwise)."""
    scheduler = _scheduler
    if scheduler is None:
        return None
    return scheduler.auto_start()


def start_profiler() -> None:
    """Start the continuous profiler ("manual" lifecycle, sampled session)."""
    scheduler = _scheduler if _scheduler is not None else _configure_from_client()
    if scheduler is not None:
        scheduler.manual_start()


def start_profile_session() -> None:
    """Deprecated name of `start_profiler`."""
    warnings.warn(
        "The `start_profile_session` function is deprecated. Please use `start_profiler` instead.",
        DeprecationWarning,
        stacklevel=2,
    )
    start_profiler()


def stop_profiler() -> None:
    """Stop the continuous profiler ("manual" lifecycle); its last chunk is sent."""
    scheduler = _scheduler
    if scheduler is not None:
        scheduler.manual_stop()


def stop_profile_session() -> None:
    """Deprecated name of `stop_profiler`."""
    warnings.warn(
        "The `stop_profile_session` function is deprecated. Please use `stop_profiler` instead.",
        DeprecationWarning,
        stacklevel=2,
    )
    stop_profiler()


def teardown_continuous_profiler() -> None:
    """Stop the profiler (sending what it holds) and forget it."""
    global _scheduler
    scheduler, _scheduler = _scheduler, None
    if scheduler is not None:
        scheduler.teardown()


def get_profiler_id() -> str | None:
    """The running profiler's id (None when it is not running)."""
    return _state.profiler_id


def determine_profile_session_sampling_decision(sample_rate: Any) -> bool:
    """Roll the session dice (None and 0 mean never).

    As sentry_sdk: any value `float()` reads is a rate ("0.5" from an environment
    variable too); what it cannot read turns profiling off (sentry_sdk's init() raises).
    """
    if not sample_rate:
        return False
    try:
        rate = float(sample_rate)
    except (TypeError, ValueError, OverflowError):
        logger.warning("[Profiling] invalid profile_session_sample_rate %r: off", sample_rate)
        return False
    return random() < rate


def _configure_from_client() -> ContinuousScheduler | None:
    configure(None)
    return _scheduler


# The options the profilers were last set up for, and what a sampled transaction does.
_configured_for: dict[str, Any] | None = None
MODE_OFF, MODE_TRANSACTION, MODE_TRACE = 0, 1, 2
mode = MODE_OFF


def configure(client: Any) -> None:
    """Set the profilers up for `client` (default: the active one), as sentry_sdk's init.

    Transaction profiling when profiles_sample_rate / profiles_sampler is set, else
    the continuous profiler. Runs on first use (a sampled transaction,
    `start_profiler()`), not at `init()`: no thread starts before it is needed.
    """
    global _configured_for, mode
    if client is None:
        client = get_client()
    options = client.options
    _configured_for = options
    mode = MODE_OFF
    if hooks.on_undo is not None:
        hooks.on_undo(_forget)  # tripwire.testing.reset(): set up again next time
    if not client.is_active():
        return
    try:
        if has_profiling_enabled(options):
            setup_profiler(options)
            if transaction_profiler._scheduler is not None:
                mode = MODE_TRANSACTION
            return
        setup_continuous_profiler(options, {"name": SDK_NAME}, _capture_with(client))
        if options.get("profile_lifecycle") == "trace":
            mode = MODE_TRACE
        try_autostart_continuous_profiler()
    except Exception as exc:
        logger.debug("[Profiling] cannot set up the profiler (%s)", exc)


def _capture_with(client: Any) -> Callable[[Envelope], None]:
    def capture(envelope: Envelope) -> None:
        transport = client.transport
        if transport is not None:
            transport.capture_envelope(envelope)

    return capture


def _forget() -> None:
    global _configured_for, mode
    _configured_for = None
    mode = MODE_OFF


def _after_fork_in_child() -> None:
    # The child has no sampler thread: its spans must not claim the parent's profiler
    # id. "trace" starts a new session with the next root span; "manual" needs
    # start_profiler() again in the child (as sentry_sdk).
    _state.profiler_id = None
    scheduler = _scheduler
    if scheduler is not None:
        # Another thread of the parent may have held it (a root span starting): the
        # child's first root span would wait for it forever.
        scheduler._lock = _sampler.originals()[1]()


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_after_fork_in_child)


class ContinuousProfile:
    """A root span's claim on the "trace" profiler; `stop()` releases it."""

    __slots__ = ("active",)

    def __init__(self) -> None:
        self.active = True

    def stop(self) -> None:
        """Release the claim."""
        self.active = False


class ContinuousScheduler:
    """The continuous profiler: a sampler thread and the chunk being filled."""

    mode = "unknown"
    name = "tripwire.profiler.ContinuousScheduler"

    def __init__(
        self,
        frequency: int,
        options: dict[str, Any],
        sdk_info: dict[str, Any],
        capture_func: Callable[[Envelope], None],
    ) -> None:
        self.interval = 1.0 / frequency
        self.options = options
        self.sdk_info = sdk_info
        self.capture_func = capture_func
        self.lifecycle = options.get("profile_lifecycle")
        self.sampled = determine_profile_session_sampling_decision(
            options.get("profile_session_sample_rate")
        )
        self.buffer: ProfileBuffer | None = None
        self.pid: int | None = None
        self._sampler = _sampler.Sampler(frequency, name=self.name, native=self.mode == "gevent")
        # Guards starting / stopping the buffer (app threads start, the sampler ends
        # a "trace" buffer): this module's own lock, held for a few instructions; an
        # original lock under gevent (the sampler is then an OS thread, not a greenlet).
        self._lock = _sampler.originals()[1]()

    @property
    def running(self) -> bool:
        """Whether a buffer is being filled (in this process: not after a fork)."""
        buffer = self.buffer
        return buffer is not None and buffer.active and self.pid == os.getpid()

    def is_auto_start_enabled(self) -> bool:
        """`_experiments["continuous_profiling_auto_start"]` (manual lifecycle)."""
        experiments = self.options.get("_experiments") or {}
        return bool(experiments.get("continuous_profiling_auto_start")) and not self.running

    def auto_start(self) -> ContinuousProfile | None:
        """Trace lifecycle: a claim that keeps the profiler running (None if off)."""
        if not self.sampled or self.lifecycle != "trace":
            return None
        claim = ContinuousProfile()
        with self._lock:
            buffer = self.buffer
            if buffer is None or not buffer.active:
                buffer = self._start_buffer()
            if buffer is not None:
                buffer.claims.append(claim)
        return claim

    def manual_start(self) -> None:
        """Manual lifecycle: start (a sampled session only)."""
        if not self.sampled or self.lifecycle != "manual":
            return
        with self._lock:
            if not self.running:
                self._start_buffer()

    def manual_stop(self) -> None:
        """Manual lifecycle: stop and send the last chunk."""
        if self.lifecycle != "manual":
            return
        self.teardown()

    def ensure_running(self) -> None:
        """Start filling a buffer if none is."""
        with self._lock:
            if not self.running:
                self._start_buffer()

    def _start_buffer(self) -> ProfileBuffer | None:
        buffer = ProfileBuffer(
            self.options, self.sdk_info, PROFILE_BUFFER_SECONDS, self.capture_func, self
        )
        if not self._sampler.add(buffer):
            return None
        self.buffer = buffer
        self.pid = os.getpid()
        _state.profiler_id = buffer.profiler_id
        return buffer

    def _ended(self, buffer: ProfileBuffer) -> bool:
        # Called by the sampler when a "trace" buffer has no running claim left.
        with self._lock:
            if buffer.claims_pending():
                return False
            buffer.active = False
            if self.buffer is buffer:
                _state.profiler_id = None
            return True

    def teardown(self) -> None:
        """Stop sampling, join the thread, send the buffer's last chunk."""
        with self._lock:
            buffer, self.buffer = self.buffer, None
            if buffer is not None:
                buffer.active = False
                _state.profiler_id = None
        self._sampler.stop()
        self._sampler._stopping = False  # may start again (stop_profiler, then start)
        if buffer is not None:
            buffer.flush()

    def reset_buffer(self) -> None:
        """Start a new buffer (a new profiler id)."""
        with self._lock:
            self._start_buffer()

    @property
    def profiler_id(self) -> str | None:
        """The running buffer's id."""
        buffer = self.buffer
        return buffer.profiler_id if buffer is not None and buffer.active else None


class ThreadContinuousScheduler(ContinuousScheduler):
    """Samples from a daemon thread (profiler_mode "thread")."""

    mode = "thread"
    name = "tripwire.profiler.ThreadContinuousScheduler"


class GeventContinuousScheduler(ContinuousScheduler):
    """profiler_mode "gevent": needs gevent installed (ValueError otherwise)."""

    mode = "gevent"
    name = "tripwire.profiler.GeventContinuousScheduler"

    def __init__(
        self,
        frequency: int,
        options: dict[str, Any],
        sdk_info: dict[str, Any],
        capture_func: Callable[[Envelope], None],
    ) -> None:
        try:
            importlib.import_module("gevent.threadpool")  # optional dependency
        except ImportError:
            raise ValueError(f"Profiler mode: {self.mode} is not available") from None
        super().__init__(frequency, options, sdk_info, capture_func)


class ProfileBuffer:
    """Ticks of one profiler session, sent as a chunk every `buffer_size` seconds."""

    def __init__(
        self,
        options: dict[str, Any],
        sdk_info: dict[str, Any],
        buffer_size: float,
        capture_func: Callable[[Envelope], None],
        scheduler: ContinuousScheduler | None = None,
    ) -> None:
        self.options = options
        self.sdk_info = sdk_info
        self.buffer_size = buffer_size
        self.capture_func = capture_func
        self.active = True
        self.profiler_id = "%032x" % getrandbits(128)
        self.chunk = ProfileChunk()
        self.claims: deque[ContinuousProfile] = deque()
        self._claimed: list[ContinuousProfile] = []
        self._scheduler = scheduler
        self._trace = scheduler is not None and scheduler.lifecycle == "trace"
        # perf_counter_ns of a tick -> wall clock: one offset per session (no drift).
        self._wall_offset = time.time() - time.perf_counter_ns() / 1e9
        self.start_monotonic_time = time.perf_counter_ns()

    def claims_pending(self) -> bool:
        """Whether a root span still holds the profiler (sampler thread)."""
        claims = self.claims
        while claims:
            self._claimed.append(claims.popleft())
        self._claimed = [claim for claim in self._claimed if claim.active]
        return bool(self._claimed)

    def write(self, tick: _sampler.Tick) -> bool:
        """Add a tick (sampler thread); sends the chunk when it is full; False once ended."""
        if not self.active:
            return False
        if self._trace and not self.claims_pending():
            scheduler = self._scheduler
            if scheduler is not None and scheduler._ended(self):
                self.flush()
                return False
        ts = tick[0]
        if ts - self.start_monotonic_time >= self.buffer_size * 1e9:
            self.flush()
            self.start_monotonic_time = ts
        self.chunk._ticks.append(tick)
        return True

    def should_flush(self, monotonic_time: float) -> bool:
        """Whether a tick at `monotonic_time` (ns) starts a new chunk."""
        return monotonic_time - self.start_monotonic_time >= self.buffer_size * 1e9

    def flush(self) -> None:
        """Send the current chunk (if it holds samples) and start a new one."""
        chunk, self.chunk = self.chunk, ProfileChunk()
        if not chunk._ticks:
            return
        try:
            payload = chunk.to_json(
                self.profiler_id, self.options, self.sdk_info, self._wall_offset
            )
            envelope = Envelope()
            envelope.add_profile_chunk(payload)
            self.capture_func(envelope)
        except Exception:
            logger.debug("[Profiling] sending a profile chunk failed", exc_info=True)


class ProfileChunk:
    """The samples of one chunk (sample format v2)."""

    def __init__(self) -> None:
        self.chunk_id = "%032x" % getrandbits(128)
        self.indexed_frames: dict[Any, int] = {}
        self.indexed_stacks: dict[Any, int] = {}
        self.frames: list[dict[str, Any]] = []
        self.stacks: list[list[int]] = []
        self.samples: list[dict[str, Any]] = []
        self._ticks: list[_sampler.Tick] = []
        self._frame_options: Any = None

    def write(self, ts: float, sample: Any) -> None:
        """Record a sample in sentry_sdk's extracted form at wall-clock time `ts`."""
        for tid, (stack_id, frame_ids, frames) in sample:
            key = ("x", stack_id)
            local = self.indexed_stacks.get(key)
            if local is None:
                indices = []
                for i, fid in enumerate(frame_ids):
                    index = self.indexed_frames.get(("x", fid))
                    if index is None:
                        index = self.indexed_frames[("x", fid)] = len(self.frames)
                        self.frames.append(frames[i])
                    indices.append(index)
                local = self.indexed_stacks[key] = len(self.stacks)
                self.stacks.append(indices)
            self.samples.append({"timestamp": ts, "thread_id": str(tid), "stack_id": local})

    def to_json(
        self,
        profiler_id: str,
        options: dict[str, Any],
        sdk_info: dict[str, Any],
        wall_offset: float | None = None,
    ) -> dict[str, Any]:
        """The `profile_chunk` item's payload."""
        self._frame_options = _frame_options(options)
        if wall_offset is None:
            wall_offset = time.time() - time.perf_counter_ns() / 1e9
        ticks, self._ticks = self._ticks, []
        _append_ticks(self, ticks, lambda ts: wall_offset + ts / 1e9, "timestamp")
        payload: dict[str, Any] = {
            "chunk_id": self.chunk_id,
            "client_sdk": {"name": sdk_info.get("name", SDK_NAME), "version": VERSION},
            "platform": "python",
            "profile": {
                "frames": self.frames,
                "stacks": self.stacks,
                "samples": self.samples,
                "thread_metadata": _thread_metadata(),
            },
            "profiler_id": profiler_id,
            "version": "2",
        }
        for key in ("release", "environment", "dist"):
            value = options.get(key)
            if value is not None:
                payload[key] = str(value).strip()
        return payload
