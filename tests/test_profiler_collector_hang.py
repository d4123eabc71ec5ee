"""The sampler's frame reader cannot hang the process in the cyclic collector.

Before CPython 3.12 an allocation may start a collection, and `sys._current_frames()`
allocates frame objects while holding the runtime's thread-list lock; a finalizer that
takes that lock (a `threading.local`'s) then waits forever with the GIL held: every
thread of the application stops (CPython gh-106883). It hung one of this suite's
workers in a profiler test. The scenario below arms that trap: threads parked in fresh
frames (not yet frame objects), a collection due at the third allocation of the call,
and, in the lethal run, garbage that holds thread-locals.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.skipif(
    sys.version_info >= (3, 12), reason="collections start between bytecodes from 3.12"
)

TRAP = """
import gc, json, sys, threading

from tripwire.profiler import _sampler

READ = {read}
stop = threading.Event()


def park():
    stop.wait()


threads = [threading.Thread(target=park, daemon=True) for _ in range(20)]
for thread in threads:
    thread.start()


class Holder:
    pass


inside = False
started_inside = []


def note(phase, info):
    # Inside the C call READ is: the running Python frame is this module's.
    if phase == "start" and inside and sys._getframe(1).f_globals is globals():
        started_inside.append(True)


gc.callbacks.append(note)
gc.disable()
gc.collect()
for _ in range({lethal} * 10):  # cycles whose collection frees a thread-local
    holder = Holder()
    holder.me = holder
    holder.local = threading.local()
holder = None
gc.set_threshold(gc.get_count()[0] + 4)
gc.enable()
inside = True
frames = READ()
inside = False
gc.collect()
stop.set()
print(json.dumps({{"threads": len(frames), "started_inside": started_inside}}))
"""


def run_trap(read: str, lethal: bool) -> dict[str, object]:
    script = textwrap.dedent(TRAP.format(read=read, lethal=int(lethal)))
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_the_trap_starts_a_collection_inside_the_interpreters_frame_reader() -> None:
    # Without thread-locals in the garbage, so that this run cannot hang.
    result = run_trap("sys._current_frames", lethal=False)
    assert result["started_inside"], "the trap is not armed: no collection inside the call"
    assert result["threads"] == 21


def test_the_samplers_frame_reader_returns_with_thread_locals_in_the_garbage() -> None:
    # Unguarded, this run hangs for good (the subprocess would time out).
    result = run_trap("_sampler._current_frames", lethal=True)
    assert result["threads"] == 21


def test_an_application_that_had_paused_the_collector_keeps_it_paused() -> None:
    script = (
        "import gc\n"
        "from tripwire.profiler import _sampler\n"
        "gc.disable()\n"
        "_sampler._current_frames()\n"
        "print(gc.isenabled())\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout.strip() == "False"


def test_a_fork_while_the_sampler_has_the_collector_paused_leaves_the_childs_running() -> None:
    # Another thread may fork between the sampler's pause and resume (the GIL can change
    # hands there): the child has no sampler thread to resume its collector.
    script = textwrap.dedent(
        """
        import gc, os, sys, threading
        from tripwire.profiler import _sampler

        inside, leave = threading.Event(), threading.Event()

        def held_read():  # stands for the interpreter's call, interrupted by a switch
            inside.set()
            leave.wait(30)
            return {}

        _sampler._all_frames = held_read
        sampler = threading.Thread(target=_sampler._current_frames)
        sampler.start()
        inside.wait(30)
        paused_in_parent = not gc.isenabled()
        pid = os.fork()
        if pid == 0:
            os._exit(0 if gc.isenabled() else 1)
        _, status = os.waitpid(pid, 0)
        leave.set()
        sampler.join(30)
        print(paused_in_parent, os.waitstatus_to_exitcode(status) == 0, gc.isenabled())
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "True", "True"]
