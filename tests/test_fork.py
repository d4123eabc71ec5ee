"""Fork safety: a child gets its own queue and worker and never re-sends the parent's.

The scenario runs in a subprocess so that a deadlocked child shows up as a
timeout instead of hanging the test run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from _receiver import Receiver

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")

SCRIPT = r"""
import os, sys, threading, warnings
import tripwire

warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork() with threads running
tripwire.init(dsn=sys.argv[1], default_integrations=False)
transport = tripwire.get_client().transport
for i in range(5):
    tripwire.capture_message("parent-%d" % i)
sys.stdout.write("queued\n"); sys.stdout.flush()

# Another thread holds every SDK lock while we fork: the child must not need them.
held, done = threading.Event(), threading.Event()
def holder():
    worker = transport._worker
    with worker._lock, worker._start_lock, transport._delivery.ratelimits._lock, \
            tripwire.get_client().outcomes._lock:
        held.set()
        done.wait()
thread = threading.Thread(target=holder)
thread.start()
held.wait()

pid = os.fork()
if pid == 0:
    tripwire.capture_message("child")
    tripwire.flush(20)
    snapshot = tripwire.get_client().outcomes.snapshot()
    os._exit(0 if not snapshot else 3)
done.set()
thread.join()
sys.stdout.write("forked\n"); sys.stdout.flush()
_, status = os.waitpid(pid, 0)
tripwire.flush(20)
sys.stdout.write("child exit %d\n" % os.waitstatus_to_exitcode(status))
"""


def test_child_sends_its_own_events_and_never_the_parents(rx: Receiver) -> None:
    rx.hold()  # the parent's queue is still full when it forks
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTRY_")}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT, rx.dsn()],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "queued\n"
        assert proc.stdout.readline() == "forked\n"
        rx.release()
        out, err = proc.communicate(timeout=60)
    finally:
        rx.release()
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err
    assert out == "child exit 0\n", err
    messages = sorted(e["message"] for e in rx.events())
    assert messages == ["child", *("parent-%d" % i for i in range(5))]
    assert rx.discarded() == {}


PROFILED = r"""
import os, signal, sys, threading, warnings
import tripwire
from tripwire.profiler import continuous_profiler

warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork() with threads running
tripwire.init(
    dsn=sys.argv[1], default_integrations=False, traces_sample_rate=1.0,
    profile_session_sample_rate=1.0, profile_lifecycle="trace",
)
with tripwire.start_transaction(name="parent"):
    pass

# Another thread is starting a root span (it holds the profiler's lock) as we fork.
held, done = threading.Event(), threading.Event()
def holder():
    with continuous_profiler._scheduler._lock:
        held.set()
        done.wait()
thread = threading.Thread(target=holder)
thread.start()
held.wait()

pid = os.fork()
if pid == 0:
    signal.alarm(50)  # a hung child ends (the default action) even if the test is gone
    with tripwire.start_transaction(name="child"):
        pass
    tripwire.flush(20)
    os._exit(0)
done.set()
thread.join()
_, status = os.waitpid(pid, 0)
tripwire.flush(20)
sys.stdout.write("child exit %d\n" % os.waitstatus_to_exitcode(status))
"""


def test_a_childs_root_span_starts_while_the_parents_profiler_lock_was_held(
    rx: Receiver,
) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTRY_")}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-c", PROFILED, rx.dsn()],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,  # before the fix the child waited for the lock forever
        check=False,
    )
    assert (done.returncode, done.stdout) == (0, "child exit 0\n"), done.stderr
    names = sorted(item.payload.json["transaction"] for item in rx.items("transaction"))
    assert names == ["child", "parent"]


def test_the_json_backend_is_picked_at_init_whatever_the_transport() -> None:
    # Picked lazily, the first pick (an import) could run on an application thread while
    # another forks: the child would find that module half-imported, its lock held.
    script = (
        "import tripwire, tripwire._json as j\n"
        "from tripwire.transport import Transport\n"
        "class Keep(Transport):\n"
        "    def capture_envelope(self, envelope): pass\n"
        "tripwire.init(dsn='http://k@127.0.0.1:9/1', transport=Keep())\n"
        "print(j._dumps_impl is not None)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    )
    assert done.stdout == "True\n"
