"""The batchers of a client (logs, metrics, streamed spans): one registry, fork-safe."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_a_fork_while_a_thread_is_in_the_registry_leaves_the_child_working() -> None:
    # A thread holds the registry's lock at the fork (as one making a client's first
    # batcher would): the child's first log, metric and span must not wait for it.
    script = textwrap.dedent(
        """
        import json, os, signal, threading, warnings
        warnings.simplefilter("ignore")  # fork() with threads: the case under test
        import tripwire
        from tripwire import _batcher, metrics, traces
        from tripwire.testing import MemoryTransport

        held, release = threading.Event(), threading.Event()

        def hold():
            with _batcher._registry_lock:
                held.set()
                release.wait()

        thread = threading.Thread(target=hold)
        thread.start()
        held.wait()
        pid = os.fork()
        if pid == 0:
            signal.alarm(50)  # a hung child (the regression) must not outlive the test
            memory = MemoryTransport()
            tripwire.init(
                transport=memory,
                enable_logs=True,
                default_integrations=False,
                traces_sample_rate=1.0,
                trace_lifecycle="stream",
            )
            tripwire.logger.info("child log")
            metrics.count("child.metric", 1)
            with traces.start_span(name="child span"):
                pass
            tripwire.flush()
            kinds = sorted({item.type for envelope in memory.envelopes for item in envelope.items})
            os.write(1, (json.dumps(kinds) + "\\n").encode())
            os._exit(0)
        release.set()
        thread.join()
        _, status = os.waitpid(pid, 0)
        print("STATUS", status)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    first, status = out.strip().splitlines()
    assert json.loads(first) == ["log", "span", "trace_metric"]
    assert status == "STATUS 0"
