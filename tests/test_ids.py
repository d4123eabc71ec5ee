"""Ids and sampling draws come from the SDK's own generator, not the `random` module's."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from pathlib import Path

import pytest

import tripwire
from tripwire.testing import MemoryTransport

ROOT = Path(__file__).resolve().parent.parent


def test_an_application_seeding_random_gets_new_ids_and_keeps_its_sequence() -> None:
    memory = MemoryTransport()
    tripwire.init(
        dsn="https://k@example.com/1",
        transport=memory,
        default_integrations=False,
        traces_sample_rate=0.5,
        sample_rate=0.99,
    )
    random.seed(42)
    expected = [random.random() for _ in range(3)]
    seen = []
    for _ in range(20):
        random.seed(42)  # as a request handler that wants reproducible output might
        first = random.random()
        with tripwire.start_transaction(name="tx") as tx, tx.start_child(op="work") as span:
            tripwire.capture_message("hello")
        seen.append([first, random.random(), random.random()])
        assert span.span_id != tx.span_id
    tripwire.flush()
    assert all(drawn == expected for drawn in seen)  # the SDK drew from its own
    event_ids = [e["event_id"] for e in memory.events + memory.transactions]
    trace_ids = {e["contexts"]["trace"]["trace_id"] for e in memory.events}
    assert len(memory.events) >= 15 and len(trace_ids) == len(memory.events)
    assert len(set(event_ids)) == len(event_ids)
    assert 0 < len(memory.transactions) < 20  # sampled at 0.5, not all or none


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
def test_a_forked_child_draws_other_ids_than_its_parent() -> None:
    script = """
import os
from tripwire._ids import ids
ids.event_id()
pid = os.fork()
if pid == 0:
    print(ids.event_id(), ids.span_id(), flush=True)
    os._exit(0)
os.waitpid(pid, 0)
print(ids.event_id(), ids.span_id(), flush=True)
"""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=60
    )
    assert out.returncode == 0, out.stderr
    child, parent = out.stdout.split("\n")[:2]
    assert len(child) == len(parent) == 49
    assert child.split()[0] != parent.split()[0] and child.split()[1] != parent.split()[1]
