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
