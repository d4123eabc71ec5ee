"""Processes a test's runtime starts outside its control (Ray's daemons, Spark's JVM),
found by a scratch folder named on their command lines.

`scratch_folder(prefix, what)` yields a new folder to hand the runtime; afterwards
every process still naming it is killed and the test fails saying so.
"""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager


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
