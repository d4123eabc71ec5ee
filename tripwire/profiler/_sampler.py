"""The stack sampler shared by transaction profiles and the continuous profiler.

One daemon thread ("tripwire.profiler") wakes ~101 times a second, reads
`sys._current_frames()` and turns each thread's stack into a small integer: the
index of that stack in an interning table (`Epoch`). A tick is then a tuple
`(perf_counter_ns, epoch, (tid, stack, tid, stack, ...))`, built once and shared by
every profile and chunk running at that moment, which keep a reference to it.

What keeps a tick cheap:

- A stack is keyed by the `id()`s of its code objects (ints hash in nanoseconds; a
  code object's own hash walks its bytecode). The code objects are kept by the
  epoch, so an id is never reused while it is a key.
- A thread whose innermost frame is the very frame object it was in at the
  previous tick (a thread blocked in a lock, a socket, a sleep) has the same stack:
  its callers cannot change while that frame lives. Its stack is not walked again.
  Generator and coroutine frames are walked anyway: they resume under new callers.
- Nothing is formatted while sampling. Frame dicts (file, module, function) are
  built at send time, once per code object (`frame_dicts`).

Bounds: an epoch holds at most `MAX_STACKS` stacks and `MAX_CODES` code objects;
past that the sampler starts a new one, and old epochs live only as long as the
ticks that refer to them. Profiles bound how many ticks they keep.

Concurrency: the application's threads never take a lock here. A new sink is put on
a deque (atomic under the GIL) and the sampler woken through an Event (its own
lock); only the sampler thread reads or changes the list of running sinks. The
sampler sleeps on that Event while nothing is being profiled (no CPU when idle).
After `fork` the child has no sampler thread: the at-fork hook forgets the parent's
sinks and thread, and the next profile starts a new thread in the child.

Under gevent's monkey-patching `threading.Thread` makes a greenlet and `time.sleep`
yields to the hub: a sampler built on them would run only when the application
yields, and sample itself. So when gevent has patched the thread modules (or for
profiler_mode "gevent") the sampler is a real OS thread started, put to sleep and
woken with the primitives gevent saved (`gevent.monkey.get_original`), and thread
ids are native ones (`native_ident`): those `sys._current_frames()` reports, the
hub's thread for every greenlet of it (as sentry_sdk reports them).
"""

from __future__ import annotations

import _thread
import gc
import os
import sys
import threading
import time
from collections import deque
from types import CodeType, FrameType
from typing import Any, Optional, Protocol

from tripwire._log import logger
from tripwire._threads import start_own
from tripwire._wake import Wake
from tripwire.event import frames as frames_mod

DEFAULT_SAMPLING_FREQUENCY = 101
MAX_STACK_DEPTH = 128
# Interning bounds per epoch (see the module docstring).
MAX_STACKS = 20_000
MAX_CODES = 20_000
# At most this many profiles/chunks are sampled at once; more are not recorded.
MAX_SINKS = 128

# Code flags of frames that may resume under different callers.
_RESUMABLE = 0x20 | 0x80 | 0x100 | 0x200  # GENERATOR, COROUTINE, ITERABLE_COROUTINE, ASYNC_GEN


if sys.version_info < (3, 12):
    _gc_isenabled, _gc_disable, _gc_enable = gc.isenabled, gc.disable, gc.enable
    _all_frames = sys._current_frames

    def _current_frames() -> dict[int, FrameType]:
        """`sys._current_frames()` with the cyclic collector paused.

        Before CPython 3.12 any allocation may start a collection, and
        `sys._current_frames()` allocates frame objects while it holds the runtime's
        thread-list lock: a finalizer that takes that lock (a `threading.local`'s does)
        then waits for it forever, GIL held, and the whole process hangs (CPython
        gh-106883; sentry_sdk's sampler calls it unguarded). A paused collector starts
        none; one the application paused stays paused. (A `gc.disable()` another
        thread makes in the microseconds between our pause and resume is undone: the
        price of not hanging.)
        """
        global _collector_paused
        if not _gc_isenabled():
            return _all_frames()
        _collector_paused = True
        _gc_disable()
        try:
            return _all_frames()
        finally:
            _gc_enable()
            _collector_paused = False

else:  # collections start only between bytecodes, never inside the call
    _current_frames = sys._current_frames

# Whether the sampler thread has the collector paused: a fork then (from another thread)
# would leave the child's collector paused for good; its fork hook resumes it.
_collector_paused = False
_perf_ns = time.perf_counter_ns


class Epoch:
    """Interned code objects and stacks; a tick's stack ids index `stacks`."""

    __slots__ = ("code_index", "codes", "modules", "stack_index", "stacks", "stacks_left")

    def __init__(self) -> None:
        self.code_index: dict[int, int] = {}
        self.codes: list[CodeType] = []
        self.modules: list[Any] = []
        self.stack_index: dict[tuple[int, ...], int] = {}
        # Each stack as frame indices (into `codes`), innermost first.
        self.stacks: list[tuple[int, ...]] = []
        # Interning budget: the sampler starts a new epoch when it reaches 0.
        self.stacks_left = min(MAX_STACKS, MAX_CODES)

    def intern(self, key: tuple[int, ...], frame: FrameType) -> int:
        """Add the stack `key`, walked from `frame` outwards, and return its id."""
        code_index = self.code_index
        indices = []
        f: FrameType | None = frame
        while f is not None:
            code = f.f_code
            index = code_index.get(id(code))
            if index is None:
                index = code_index[id(code)] = len(self.codes)
                self.codes.append(code)
                try:
                    self.modules.append(f.f_globals.get("__name__"))
                except Exception:
                    self.modules.append(None)
            indices.append(index)
            f = f.f_back
        if len(self.codes) >= MAX_CODES:
            self.stacks_left = 0
        else:
            self.stacks_left = MAX_STACKS - len(self.stacks) - 1
        stack_id = self.stack_index[key] = len(self.stacks)
        self.stacks.append(tuple(indices))
        return stack_id


# A tick: (perf_counter_ns, epoch, [tid, stack_id, tid, stack_id, ...]); never mutated.
Tick = tuple[int, Epoch, list[int]]


class Sink(Protocol):
    """Something that records ticks: a transaction profile, a continuous chunk buffer."""

    active: bool

    def write(self, tick: Tick) -> bool:
        """Record `tick`; False once the sink has ended (`active` is then False)."""


class Sampler:
    """The sampling thread; started on the first sink, asleep while it has none."""

    __slots__ = (
        "_active",
        "_epoch",
        "_native",
        "_new",
        "_own",
        "_pid",
        "_prev",
        "_stopping",
        "_thread",
        "_wake",
        "interval",
        "thread_name",
    )

    def __init__(
        self, frequency: int = DEFAULT_SAMPLING_FREQUENCY, name: str = "", native: bool = False
    ) -> None:
        self.interval = 1.0 / frequency
        self.thread_name = name or "tripwire.profiler"
        self._new: deque[Sink] = deque()
        self._active: list[Sink] = []
        self._wake: threading.Event | Wake = threading.Event()
        self._thread: threading.Thread | _NativeThread | None = None
        self._native = native
        self._pid = os.getpid()
        self._stopping = False
        self._epoch = Epoch()
        # tid -> (innermost frame, stack id) at the previous tick.
        self._prev: dict[int, tuple[FrameType, int]] = {}
        self._own: int | None = None  # the sampling thread's ident (not sampled)
        _forkable.append(self)

    # -- control (any thread) ------------------------------------------------------------

    def add(self, sink: Sink) -> bool:
        """Start recording ticks into `sink`; False if the sampler cannot run."""
        if len(self._new) + len(self._active) >= MAX_SINKS:
            return False
        if not self._ensure_running():
            return False
        self._new.append(sink)
        self._wake.set()
        return True

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive() and self._pid == os.getpid()

    def _ensure_running(self) -> bool:
        if self._stopping:
            return False
        if self._thread is not None and self._pid == os.getpid():
            return True
        with _start_lock:  # our own lock: taken only to start the thread once
            if self._thread is not None and self._pid == os.getpid():
                return True
            self._pid = os.getpid()
            thread: threading.Thread | _NativeThread
            if self._native or gevent_patched():
                start_new_thread, allocate_lock, _ident, _sleep = originals()
                self._wake = Wake(allocate_lock)
                thread = _NativeThread(self._run, start_new_thread, allocate_lock)
            else:
                thread = threading.Thread(target=self._run, name=self.thread_name, daemon=True)
            try:
                start_own(thread)
            except RuntimeError:  # interpreter shutting down: no new threads
                return False
            self._thread = thread
            return True

    def stop(self, timeout: float | None = 2.0) -> None:
        """Stop the thread (the sinks are dropped); safe to call twice and from atexit."""
        self._stopping = True
        self._wake.set()
        thread = self._thread
        if thread is not None and thread.ident != native_ident():
            thread.join(timeout)
        self._thread = None
        self._new.clear()
        self._prev = {}

    def _after_fork(self) -> None:
        # In the child only the forking thread exists: the sampler thread is gone and
        # the Event's lock may have been held by it. Start afresh on the next sink.
        self._thread = None
        self._wake = threading.Event()
        self._new.clear()
        self._active = []
        self._prev = {}
        self._pid = os.getpid()

    # -- the thread ---------------------------------------------------------------------

    def _run(self) -> None:
        _start, _lock, get_ident, sleep = originals()
        self._own = get_ident()
        interval = self.interval
        perf = time.perf_counter
        new = self._new
        active: list[Sink] = []
        self._active = active  # this thread's own list (a stopped one may still be ending)
        while not self._stopping:
            while new:
                active.append(new.popleft())
            if not active:
                self._prev = {}  # drop the frames we held
                wake = self._wake
                wake.clear()
                if not new and not self._stopping:
                    wake.wait()
                continue
            start = perf()
            try:
                tick = self._take()
            except Exception:
                logger.debug("profiler: sampling failed", exc_info=True)
                tick = None
            # One call per sink and tick: a sink says when it has ended (each piece
            # of Python run here is paid for cold, after the wake-up).
            ended = tick is None
            if tick is not None:
                for sink in active:
                    try:
                        if not sink.write(tick):
                            ended = True
                    except Exception:
                        logger.debug("profiler: a sink failed", exc_info=True)
                        sink.active = False
                        ended = True
            if ended:
                active[:] = [sink for sink in active if sink.active]
            elapsed = perf() - start
            if elapsed < interval:
                sleep(interval - elapsed)
        if self._active is active:
            self._active = []
            self._prev = {}

    def _take(self) -> Tick:
        now = _perf_ns()
        epoch = self._epoch
        if epoch.stacks_left <= 0:
            epoch = self._epoch = Epoch()
            self._prev = {}
        stack_index = epoch.stack_index
        prev = self._prev
        seen: dict[int, tuple[FrameType, int]] = {}
        pairs: list[int] = []
        own = self._own
        for tid, frame in _current_frames().items():
            if tid == own:
                continue
            last = prev.get(tid)
            if last is not None and last[0] is frame:
                stack_id = last[1]
            else:
                key: list[int] = []
                append = key.append
                f: Optional[FrameType] = frame
                while f is not None:
                    append(id(f.f_code))
                    f = f.f_back
                start = frame
                if len(key) > MAX_STACK_DEPTH:
                    # Keep the outermost frames, as sentry_sdk: roots stay comparable.
                    drop = len(key) - MAX_STACK_DEPTH
                    key = key[drop:]
                    for _ in range(drop):
                        start = start.f_back  # type: ignore[assignment]
                stack = tuple(key)
                found = stack_index.get(stack)
                stack_id = epoch.intern(stack, start) if found is None else found
            if not frame.f_code.co_flags & _RESUMABLE:
                seen[tid] = (frame, stack_id)
            pairs.append(tid)
            pairs.append(stack_id)
        self._prev = seen
        return (now, epoch, pairs)


def gevent_patched() -> bool:
    """Whether gevent has monkey-patched the thread modules."""
    monkey = sys.modules.get("gevent.monkey")
    if monkey is None:
        return False
    try:
        return bool(monkey.is_module_patched("threading") or monkey.is_module_patched("_thread"))
    except Exception:
        return False


_Originals = tuple[Any, Any, Any, Any]
_saved: _Originals | None = None


def originals() -> _Originals:
    """start_new_thread, allocate_lock, get_ident and sleep as before any patching."""
    global _saved
    if _saved is not None:
        return _saved
    if gevent_patched():
        try:
            get = sys.modules["gevent.monkey"].get_original
            _saved = (
                get("_thread", "start_new_thread"),
                get("_thread", "allocate_lock"),
                get("_thread", "get_ident"),
                get("time", "sleep"),
            )
            return _saved  # patching is for good: keep them
        except Exception:
            logger.debug("profiler: gevent's saved primitives are unavailable", exc_info=True)
    return (_thread.start_new_thread, _thread.allocate_lock, _thread.get_ident, time.sleep)


def native_ident() -> int:
    """The calling OS thread's id (under gevent: its hub's thread, not the greenlet)."""
    ident: int = originals()[2]()
    return ident


class _NativeThread:
    """An OS thread from the original `start_new_thread` (what threading.Thread was)."""

    __slots__ = ("_done", "_start_new_thread", "_target", "ident")

    def __init__(self, target: Any, start_new_thread: Any, allocate_lock: Any) -> None:
        self._target = target
        self._start_new_thread = start_new_thread
        self._done = allocate_lock()  # held while the thread runs
        self.ident: int | None = None

    def start(self) -> None:
        self._done.acquire()
        try:
            self.ident = self._start_new_thread(self._bootstrap, ())
        except BaseException:
            self._done.release()
            raise RuntimeError("cannot start the sampler thread") from None

    def _bootstrap(self) -> None:
        try:
            self._target()
        finally:
            self._done.release()

    def is_alive(self) -> bool:
        return bool(self._done.locked())

    def join(self, timeout: float | None = None) -> None:
        if self._done.acquire(True, -1 if timeout is None else timeout):
            self._done.release()


_start_lock = threading.Lock()
_forkable: list[Sampler] = []


def _after_fork_in_child() -> None:
    global _start_lock, _collector_paused
    _start_lock = threading.Lock()
    if _collector_paused:  # the parent's sampler thread was inside `_current_frames`
        _collector_paused = False
        gc.enable()
    for sampler in _forkable:
        sampler._after_fork()


if hasattr(os, "register_at_fork"):  # not on Windows
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _frame_dict(code: CodeType, module: Any, frame_options: Any, cwd: str) -> dict[str, Any]:
    raw_path = code.co_filename
    abs_path = os.path.join(cwd, raw_path) if raw_path else raw_path
    name = getattr(code, "co_qualname", None) or code.co_name
    frame: dict[str, Any] = {
        "abs_path": abs_path,
        "module": module if isinstance(module, str) else None,
        "filename": _short_filename(module, raw_path) or None,
        "function": name,
        "lineno": code.co_firstlineno,
    }
    if frame_options is not None:
        in_app = _in_app(frame_options, module, abs_path)
        if in_app is not None:
            frame["in_app"] = in_app
    return frame


def _short_filename(module: Any, raw_path: str) -> str | None:
    try:
        return frames_mod._short_filename(module, raw_path)
    except Exception:
        return raw_path


def _in_app(frame_options: Any, module: Any, abs_path: str) -> bool | None:
    try:
        return frames_mod._in_app(frame_options, module, abs_path)
    except Exception:
        return None
