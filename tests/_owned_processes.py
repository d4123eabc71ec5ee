"""Processes the tests start, and making sure none outlives them.

`tied_to_us(run_as)` prefixes a server's command line so the server dies with the
test process that started it, even one killed before its teardown; `stop_server` ends
one at teardown (a signal, a bounded wait, then SIGKILL).

`scratch_folder(prefix, what)` is for processes a test's runtime starts outside its
control (Ray's daemons, Spark's JVM), found by a scratch folder named on their command
lines: afterwards every process still naming it is killed and the test fails saying so.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Optional

import pytest


def tied_to_us(run_as: Optional[str] = None) -> list[str]:
    """A command prefix: run as `run_as` (if given), SIGTERM when our thread exits.

    util-linux's `setpriv` sets the parent-death signal after switching users (a
    program's own switch, such as `mariadbd --user`, would clear it) and then execs
    the program, so the pid Popen returns is the server's.
    """
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is missing: it ties the test servers' lives to ours")
    prefix = ["setpriv", "--pdeathsig", "TERM"]
    if run_as is not None:
        prefix += [f"--reuid={run_as}", f"--regid={run_as}", "--init-groups"]
    return [*prefix, "--"]


def processes_naming(text: str) -> list[int]:
    """The pids (but this one) whose command line contains `text`."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except OSError:
            continue
        if text.encode() in cmdline:
            found.append(int(entry))
    return found


def stop_server(
    process: Optional[subprocess.Popen[Any]], timeout: float, sig: int = signal.SIGTERM
) -> None:
    """Ask a server to exit (`sig`), wait up to `timeout` s, then kill it; wait for it."""
    if process is None or process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


@contextmanager
def scratch_folder(prefix: str, what: str) -> Iterator[str]:
    """A new folder; no process naming it outlives the block (`what`: for the message)."""
    folder = tempfile.mkdtemp(prefix=prefix)
    try:
        yield folder
    finally:
        leftovers = processes_naming(folder)
        for pid in leftovers:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        shutil.rmtree(folder, ignore_errors=True)
        assert not leftovers, f"{what} processes left running: {leftovers}"
