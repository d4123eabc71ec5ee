"""Transaction profiles, as sentry_sdk.profiler.transaction_profiler (2.75).

With `profiles_sample_rate` or `profiles_sampler` (or the deprecated
`_experiments={"profiles_sample_rate": ...}`, which logs a warning), each sampled
transaction also rolls the profile dice; a profiled one records the stacks of every
thread ~101 times a second (`_sampler.Sampler`, one thread for all profiles) until
it finishes, for at most 30 s, and a `profile` item (sample format v1) goes in the
transaction's envelope. As in sentry_sdk, a profile with fewer than two samples is
dropped (outcome `insufficient_data`).

Differences from sentry_sdk: a transaction is profiled from `start_transaction` to
`finish` whether or not it is used as a context manager (sentry_sdk only profiles
inside `with`); a frame is one per code object, its `lineno` the function's first
line; the sampler thread itself is left out of the samples; the thread sleeps while
nothing is profiled.
"""

from __future__ import annotations

import atexit
import importlib
import os
import threading
import warnings
from typing import Any, Callable

from tripwire._ids import getrandbits, random
from tripwire._late import hooks
from tripwire._log import logger
from tripwire.event.frames import FrameOptions
from tripwire.options import to_rate
from tripwire.profiler import _sampler
from tripwire.profiler.utils import DEFAULT_SAMPLING_FREQUENCY, platform_info
from tripwire.scope._current import get_client, get_isolation_scope

_scheduler: Scheduler | None = None

# The minimum number of samples a profile needs to be sent (as sentry_sdk).
PROFILE_MINIMUM_SAMPLES = 2

# A profile stops recording after this long (30 s, as sentry_sdk).
MAX_PROFILE_DURATION_NS = int(3e10)


def has_profiling_enabled(options: dict[str, Any]) -> bool:
    """Whether transaction-based profiling is configured (as sentry_sdk)."""
    if options.get("profiles_sampler") is not None:
        return True
    # Not a rate (a string): off, where sentry_sdk's init() raises TypeError.
    rate = options.get("profiles_sample_rate")
    if rate is not None and (to_rate(rate) or 0) > 0:
        return True
    rate = (options.get("_experiments") or {}).get("profiles_sample_rate")
    if rate is not None:
        logger.warning(
            "_experiments['profiles_sample_rate'] is deprecated: use profiles_sample_rate"
        )
        if (to_rate(rate) or 0) > 0:
            return True
    return False


def _is_gevent() -> bool:
    return _sampler.gevent_patched()


def setup_profiler(options: dict[str, Any]) -> bool:
    """Create the process's profile scheduler (once); False if one exists already.

    Raises:
        ValueError: an unknown `profiler_mode`, or "gevent" without gevent.
    """
    global _scheduler
    if _scheduler is not None:
        logger.debug("[Profiling] Profiler is already setup")
        return False
    mode = options.get("profiler_mode")
    if mode is None:
        mode = (options.get("_experiments") or {}).get("profiler_mode")
        if mode is not None:
            logger.warning(
                "_experiments['profiler_mode'] is deprecated: use the profiler_mode option"
            )
    if mode is None:
        mode = GeventScheduler.mode if _is_gevent() else ThreadScheduler.mode
    if mode in (ThreadScheduler.mode, "sleep"):
        scheduler: Scheduler = ThreadScheduler(frequency=DEFAULT_SAMPLING_FREQUENCY)
    elif mode == GeventScheduler.mode:
        scheduler = GeventScheduler(frequency=DEFAULT_SAMPLING_FREQUENCY)
    else:
        raise ValueError(f"Unknown profiler mode: {mode}")
    scheduler.setup()
    _scheduler = scheduler
    _register_teardown()
    return True


_teardown_registered = False


def _register_teardown() -> None:
    global _teardown_registered
    if not _teardown_registered:
        _teardown_registered = True
        atexit.register(teardown_profiler)
    # tripwire.testing.reset() stops the sampler thread too.
    if hooks.on_undo is not None:
        hooks.on_undo(teardown_profiler)


def teardown_profiler() -> None:
    """Stop the scheduler's thread and forget it."""
    global _scheduler
    scheduler, _scheduler = _scheduler, None
    if scheduler is not None:
        scheduler.teardown()


class Profile:
    """One transaction's profile: the ticks recorded while it is active.

    Takes sentry_sdk 2.75's arguments `(sampled, start_ns, hub=None, scheduler=None)`;
    the 1.x form `Profile(transaction, hub=None, scheduler=None)` works too.
    """

    def __init__(
        self,
        sampled: Any,
        start_ns: Any = 0,
        hub: Any = None,
        scheduler: Scheduler | None = None,
    ) -> None:
        if sampled is not None and not isinstance(sampled, bool):
            # sentry_sdk 1.x: Profile(transaction, hub=None, scheduler=None).
            if start_ns is not None and not isinstance(start_ns, int):
                hub, start_ns = start_ns, 0
            sampled = getattr(sampled, "sampled", None)
        self.scheduler: Scheduler | None = _scheduler if scheduler is None else scheduler
        self.event_id: str = "%032x" % getrandbits(128)
        self.sampled: bool | None = sampled
        self._default_active_thread_id: int = _sampler.native_ident()
        self.active_thread_id: int | None = None
        self.start_ns: int = start_ns if isinstance(start_ns, int) else 0
        self.stop_ns: int = 0
        self.active: bool = False
        self.indexed_frames: dict[Any, int] = {}
        self.indexed_stacks: dict[Any, int] = {}
        self.frames: list[dict[str, Any]] = []
        self.stacks: list[list[int]] = []
        self.samples: list[dict[str, Any]] = []
        self.unique_samples = 0
        self._ticks: list[_sampler.Tick] = []
        self._frame_options: FrameOptions | None = None
        self._hub: Any = None
        if hub is not None:
            self._hub = hub
            warnings.warn(
                "The `hub` parameter is deprecated. Please do not use it.",
                DeprecationWarning,
                stacklevel=2,
            )

    def update_active_thread_id(self) -> None:
        """Make the calling thread the profile's active thread."""
        self.active_thread_id = _sampler.native_ident()

    def _set_initial_sampling_decision(self, sampling_context: dict[str, Any]) -> None:
        """Decide whether to profile: the transaction's decision, then the profile rate."""
        if not self.sampled or self.scheduler is None:
            self.sampled = False
            return
        client = get_client()
        if not client.is_active():
            self.sampled = False
            return
        options = client.options
        sampler = options.get("profiles_sampler")
        if callable(sampler):
            try:
                rate_value = sampler(sampling_context)
            except Exception:
                logger.warning("[Profiling] profiles_sampler raised; not profiling", exc_info=True)
                self.sampled = False
                return
        elif options.get("profiles_sample_rate") is not None:
            rate_value = options["profiles_sample_rate"]
        else:
            rate_value = (options.get("_experiments") or {}).get("profiles_sample_rate")
        if rate_value is None:
            self.sampled = False
            return
        rate = to_rate(rate_value)
        if rate is None:
            logger.warning("[Profiling] invalid profiles sample rate %r: not profiling", rate_value)
            self.sampled = False
            return
        self.sampled = random() < rate

    def start(self) -> None:
        """Start recording (a sampled profile only)."""
        if not self.sampled or self.active:
            return
        scheduler = self.scheduler
        if scheduler is None:
            return
        self.active = True
        if not self.start_ns:
            self.start_ns = _sampler._perf_ns()
        scheduler.start_profiling(self)

    def stop(self) -> None:
        """Stop recording."""
        if not self.sampled or not self.active:
            return
        self.active = False
        self.stop_ns = _sampler._perf_ns()

    def __enter__(self) -> Profile:
        scope = get_isolation_scope()
        self._context_manager_state = (scope, scope.profile)
        scope.profile = self
        self.start()
        return self

    def __exit__(self, ty: Any, value: Any, tb: Any) -> None:
        try:
            self.stop()
            state = self.__dict__.pop("_context_manager_state", None)
            if state is not None:
                state[0].profile = state[1]
        except Exception:
            logger.debug("[Profiling] exit failed", exc_info=True)

    # -- recording (the sampler thread) ---------------------------------------------------

    def _tick(self, tick: _sampler.Tick) -> bool:
        if not self.active:
            return False
        ts = tick[0]
        if ts < self.start_ns:
            return True
        if ts - self.start_ns > MAX_PROFILE_DURATION_NS:
            self.stop()
            return False
        self._ticks.append(tick)
        self.unique_samples += 1
        return True

    def write(self, ts: int, sample: Any) -> None:
        """Record a sample in sentry_sdk's extracted form (utils.extract_stack's, per thread)."""
        if not self.active or ts < self.start_ns:
            return
        offset = ts - self.start_ns
        if offset > MAX_PROFILE_DURATION_NS:
            self.stop()
            return
        self.unique_samples += 1
        elapsed = str(offset)
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
            self.samples.append(
                {"elapsed_since_start_ns": elapsed, "thread_id": str(tid), "stack_id": local}
            )

    # -- sending ----------------------------------------------------------------------------

    def process(self) -> dict[str, Any]:
        """frames, stacks, samples and thread_metadata (sample format v1)."""
        ticks, self._ticks = self._ticks, []
        start = self.start_ns
        _append_ticks(self, ticks, lambda ts: str(ts - start), "elapsed_since_start_ns")
        return {
            "frames": self.frames,
            "stacks": self.stacks,
            "samples": self.samples,
            "thread_metadata": _thread_metadata(),
        }

    def to_json(self, event_opt: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
        """The `profile` item's payload for the transaction event `event_opt`."""
        self._frame_options = _frame_options(options)
        profile = self.process()
        trace = (event_opt.get("contexts") or {}).get("trace") or {}
        active = self._default_active_thread_id
        if self.active_thread_id is not None:
            active = self.active_thread_id
        payload: dict[str, Any] = {
            "environment": event_opt.get("environment", options.get("environment")),
            "event_id": self.event_id,
            "platform": "python",
            "profile": profile,
            "release": event_opt.get("release", options.get("release") or ""),
            "timestamp": event_opt.get("start_timestamp"),
            "version": "1",
            **platform_info(),
            "transactions": [
                {
                    "id": event_opt.get("event_id"),
                    "name": event_opt.get("transaction"),
                    "relative_start_ns": "0",
                    "relative_end_ns": str(max(self.stop_ns - self.start_ns, 0)),
                    "trace_id": trace.get("trace_id"),
                    "active_thread_id": str(active),
                }
            ],
        }
        return payload

    def valid(self) -> bool:
        """Whether to send it (records the outcome of a profile that is not sent)."""
        client = get_client()
        if not client.is_active() or not has_profiling_enabled(client.options):
            return False
        transport = client.transport
        if not self.sampled:
            if transport is not None:
                transport.record_lost_event("sample_rate", data_category="profile")
            return False
        if self.unique_samples < PROFILE_MINIMUM_SAMPLES:
            if transport is not None:
                transport.record_lost_event("insufficient_data", data_category="profile")
            logger.debug("[Profiling] Discarding profile because insufficient samples.")
            return False
        return True

    @property
    def hub(self) -> Any:
        """Deprecated, as in sentry_sdk."""
        warnings.warn(
            "The `hub` attribute is deprecated. Please do not access it.",
            DeprecationWarning,
            stacklevel=2,
        )
        return self._hub

    @hub.setter
    def hub(self, value: Any) -> None:
        warnings.warn(
            "The `hub` attribute is deprecated. Please do not set it.",
            DeprecationWarning,
            stacklevel=2,
        )
        self._hub = value


def _frame_options(options: dict[str, Any]) -> FrameOptions:
    root = options.get("project_root")
    return FrameOptions(
        in_app_include=options.get("in_app_include") or (),
        in_app_exclude=options.get("in_app_exclude") or (),
        project_root=root if root is not None else os.getcwd(),
    )


def _thread_metadata() -> dict[str, dict[str, str]]:
    found = {str(thread.ident): {"name": str(thread.name)} for thread in threading.enumerate()}
    if _sampler.gevent_patched():
        # Samples name OS threads; gevent's threads are greenlets: name the caller's.
        found.setdefault(str(_sampler.native_ident()), {"name": threading.current_thread().name})
    return found


def _append_ticks(
    owner: Any, ticks: list[_sampler.Tick], stamp: Callable[[int], Any], stamp_key: str
) -> None:
    """Turn ticks into `owner`'s frames/stacks/samples (indexed per owner, sentry's format)."""
    indexed_stacks = owner.indexed_stacks
    indexed_frames = owner.indexed_frames
    frames = owner.frames
    stacks = owner.stacks
    samples = owner.samples
    frame_options = getattr(owner, "_frame_options", None)
    cwd = os.getcwd()
    thread_ids: dict[int, str] = {}
    frame_dict = _sampler._frame_dict
    for tick in ticks:
        ts, epoch, pairs = tick
        when = stamp(ts)
        epoch_id = id(epoch)
        for i in range(0, len(pairs), 2):
            tid = pairs[i]
            key = (epoch_id, pairs[i + 1])
            local = indexed_stacks.get(key)
            if local is None:
                indices = []
                for code_index in epoch.stacks[pairs[i + 1]]:
                    fkey = (epoch_id, -1 - code_index)
                    index = indexed_frames.get(fkey)
                    if index is None:
                        index = indexed_frames[fkey] = len(frames)
                        frames.append(
                            frame_dict(
                                epoch.codes[code_index],
                                epoch.modules[code_index],
                                frame_options,
                                cwd,
                            )
                        )
                    indices.append(index)
                local = indexed_stacks[key] = len(stacks)
                stacks.append(indices)
            name = thread_ids.get(tid)
            if name is None:
                name = thread_ids[tid] = str(tid)
            samples.append({stamp_key: when, "thread_id": name, "stack_id": local})


class Scheduler:
    """Runs the sampler for transaction profiles (sentry_sdk's Scheduler interface)."""

    mode = "unknown"
    name = "tripwire.profiler"

    def __init__(self, frequency: int) -> None:
        self.interval = 1.0 / frequency
        self._sampler = _sampler.Sampler(frequency, name=self.name, native=self.mode == "gevent")

    def __enter__(self) -> Scheduler:
        self.setup()
        return self

    def __exit__(self, ty: Any, value: Any, tb: Any) -> None:
        self.teardown()

    def setup(self) -> None:
        """Nothing to do: the thread starts with the first profile."""

    def teardown(self) -> None:
        """Stop the sampling thread."""
        self._sampler.stop()

    def ensure_running(self) -> None:
        """Start the sampling thread if it is not running in this process."""
        self._sampler._ensure_running()

    @property
    def running(self) -> bool:
        """Whether the sampling thread runs."""
        return self._sampler.running

    def start_profiling(self, profile: Profile) -> None:
        """Record ticks into `profile` until it stops."""
        if not self._sampler.add(_ProfileSink(profile)):
            profile.active = False

    def make_sampler(self) -> Callable[..., None]:
        """A function taking one tick into every running profile (tests, compatibility)."""
        return lambda *args, **kwargs: None


class _ProfileSink:
    __slots__ = ("profile", "write")

    def __init__(self, profile: Profile) -> None:
        self.profile = profile
        # The profile's own method: no call in between on the sampler's path.
        self.write: Callable[[_sampler.Tick], bool] = profile._tick

    @property
    def active(self) -> bool:
        return self.profile.active

    @active.setter
    def active(self, value: bool) -> None:
        self.profile.active = value


class ThreadScheduler(Scheduler):
    """Samples from a daemon thread (profiler_mode "thread")."""

    mode = "thread"
    name = "tripwire.profiler.ThreadScheduler"


class GeventScheduler(Scheduler):
    """profiler_mode "gevent": needs gevent installed (ValueError otherwise).

    The sampler must be a native thread: tripwire starts it with the thread
    primitives gevent saved before patching.
    """

    mode = "gevent"
    name = "tripwire.profiler.GeventScheduler"

    def __init__(self, frequency: int) -> None:
        try:
            importlib.import_module("gevent.threadpool")  # optional dependency
        except ImportError:
            raise ValueError(f"Profiler mode: {self.mode} is not available") from None
        super().__init__(frequency)


__all__ = [
    "MAX_PROFILE_DURATION_NS",
    "PROFILE_MINIMUM_SAMPLES",
    "GeventScheduler",
    "Profile",
    "Scheduler",
    "ThreadScheduler",
    "has_profiling_enabled",
    "setup_profiler",
    "teardown_profiler",
]
