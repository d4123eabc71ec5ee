"""Profiling under gevent's monkey-patching, in a fresh interpreter that patches.

Patched, `threading.Thread` makes a greenlet and `time.sleep` yields to the hub: a
sampler built on them would run only when the application yields, and sample
itself. tripwire's sampler is then an OS thread started with gevent's saved
primitives (profiler_mode "gevent", the default when gevent has patched, and
"thread" too), as sentry_sdk 2.75's is: the profile that reaches a loopback
receiver names the hub's OS thread (whichever greenlet runs on it), the functions
that ran there, and never the sampler itself.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

import pytest

pytest.importorskip("gevent", reason="gevent is not installed")

ROOT = Path(__file__).resolve().parent.parent

SCRIPT = """\
from gevent import monkey
monkey.patch_all()
import json, sys, threading, time, warnings
warnings.simplefilter("ignore")
import gevent
import tripwire
from tripwire import profiler

dsn, mode, kind = sys.argv[1], sys.argv[2] or None, sys.argv[3]

def gevent_hot(n):
    total = 0
    for i in range(n):
        total += i * i
    return total

def gevent_io():
    for _ in range(20):
        gevent.sleep(0.01)

options = dict(dsn=dsn, traces_sample_rate=1.0, profiler_mode=mode)
if kind == "transaction":
    options["profiles_sample_rate"] = 1.0
else:
    options.update(profile_session_sample_rate=1.0, profile_lifecycle="manual")
tripwire.init(**options)
if kind != "transaction":
    profiler.start_profiler()
with tripwire.start_transaction(name="gevent work", op="task"):
    io = gevent.spawn(gevent_io)
    began = time.perf_counter()
    with tripwire.start_span(op="hot"):
        while time.perf_counter() - began < 0.6:  # enough samples at ~101 Hz
            gevent_hot(20_000)
            gevent.sleep(0)  # let the other greenlet run
    io.join()
if kind != "transaction":
    profiler.stop_profiler()
greenlets = [t.name for t in threading.enumerate()]
tripwire.flush(10)
print(json.dumps({"hub": gevent.get_hub().thread_ident, "threads": greenlets}))
"""


def run(rx: Any, mode: Optional[str], kind: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTRY_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, rx.dsn(), mode or "", kind],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    found: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return found


def functions(profile: dict[str, Any], thread_id: str) -> list[list[str]]:
    frames, stacks = profile["frames"], profile["stacks"]
    return [
        [frames[i]["function"] for i in stacks[s["stack_id"]]]
        for s in profile["samples"]
        if s["thread_id"] == thread_id
    ]


@pytest.mark.parametrize("mode", [None, "gevent", "thread"])
def test_transaction_profile_under_gevent_samples_the_hub_thread(rx, mode):
    out = run(rx, mode, "transaction")
    rx.wait_for(1)
    (item,) = rx.items("profile")
    payload = json.loads(item.get_bytes())
    hub = str(out["hub"])

    assert payload["transactions"][0]["active_thread_id"] == hub
    profile = payload["profile"]
    assert {s["thread_id"] for s in profile["samples"]} == {hub}  # the only OS thread
    assert hub in profile["thread_metadata"]
    stacks = functions(profile, hub)
    assert len(stacks) >= 10
    hot = sum(1 for names in stacks if "gevent_hot" in names)
    assert hot >= len(stacks) / 4  # the main greenlet is busy most of the time
    # Spans name the OS thread too (a greenlet's id would match no sample).
    (tx,) = [json.loads(i.get_bytes()) for i in rx.items("transaction")]
    assert tx["contexts"]["trace"]["data"]["thread.id"] == hub
    assert [s["data"]["thread.id"] for s in tx["spans"]] == [hub]
    assert not any("Sampler" in name for names in stacks for name in names)
    # The sampler is no greenlet: gevent's threading does not list it.
    assert not any("profiler" in name for name in out["threads"])


def test_continuous_profile_under_gevent(rx):
    out = run(rx, None, "continuous")
    rx.wait_for(2)
    (chunk,) = [json.loads(i.get_bytes()) for i in rx.items("profile_chunk")]
    (tx,) = [json.loads(i.get_bytes()) for i in rx.items("transaction")]
    hub = str(out["hub"])

    assert tx["contexts"]["profile"]["profiler_id"] == chunk["profiler_id"]
    stacks = functions(chunk["profile"], hub)
    assert len(stacks) >= 10
    assert sum(1 for names in stacks if "gevent_hot" in names) >= len(stacks) / 4
