"""Zero loss at interpreter exit, and no hang when the server does not answer.

Each test runs a real interpreter that queues events and simply returns: the
atexit integration must deliver everything (on Python 3.12+ no thread can be
started during shutdown, so the worker must already be running) and must give up
after ``shutdown_timeout`` when the server is unreachable.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from _receiver import Receiver

ROOT = Path(__file__).resolve().parent.parent


def _interpreters() -> list[str]:
    """This interpreter, plus Python 3.12+ ones found on the machine (the shutdown rules differ)."""
    found = [sys.executable]
    candidates = [shutil.which(f"python3.{minor}") for minor in range(12, 16)]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.1[2-9]*/bin/python3")))
    seen = {os.path.realpath(sys.executable)}
    for path in candidates:
        if not path or os.path.realpath(path) in seen:
            continue
        probe = subprocess.run(
            [path, "-c", "import sys; print(sys.version_info >= (3, 12))"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() == "True":
            seen.add(os.path.realpath(path))
            found.append(path)
            break  # one is enough to exercise the 3.12+ shutdown path
    return found


INTERPRETERS = _interpreters()

SCRIPT = """
import sys
import tripwire

tripwire.init(dsn=sys.argv[1], shutdown_timeout=float(sys.argv[3]), default_integrations=True)
for i in range(int(sys.argv[2])):
    tripwire.capture_message("exit-%d" % i)
# Return without flushing: the atexit integration has to deliver.
"""


def run_script(python: str, dsn: str, count: int, shutdown_timeout: float) -> tuple[str, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTRY_")}
    env["PYTHONPATH"] = str(ROOT)
    started = time.monotonic()
    proc = subprocess.run(
        [python, "-c", SCRIPT, dsn, str(count), str(shutdown_timeout)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    return proc.stderr, elapsed


@pytest.mark.parametrize("python", INTERPRETERS)
def test_a_thousand_events_queued_at_exit_all_arrive(rx: Receiver, python: str) -> None:
    stderr, _ = run_script(python, rx.dsn(), 1000, 10.0)
    messages = [e["message"] for e in rx.events()]
    assert len(messages) == 1000, stderr
    assert sorted(messages) == sorted("exit-%d" % i for i in range(1000))
    assert rx.discarded() == {}


@pytest.mark.parametrize("python", INTERPRETERS)
def test_exit_gives_up_after_shutdown_timeout_when_the_server_never_answers(
    rx: Receiver, python: str
) -> None:
    rx.hold()  # requests are read but never answered
    stderr, elapsed = run_script(python, rx.dsn(), 50, 1.0)
    rx.release()
    assert len(rx.requests) >= 1
    # A hang check, not a benchmark: shutdown_timeout plus interpreter start-up.
    assert elapsed < 1.0 + 8.0, (elapsed, stderr)
    assert "pending events" in stderr  # the default callback told the user why


@pytest.mark.parametrize("python", INTERPRETERS[:1])
def test_exit_with_nothing_listening_is_prompt(python: str) -> None:
    with Receiver() as gone:
        dsn = gone.dsn()
    stderr, elapsed = run_script(python, dsn, 20, 1.0)
    assert elapsed < 1.0 + 8.0, (elapsed, stderr)
