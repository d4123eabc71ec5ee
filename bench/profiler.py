"""Profiler overhead: a CPU-bound workload with the transaction profiler on minus off.

Run from the repository root with the dev virtualenv::

    .venv/bin/python bench/profiler.py            # 5 rounds, ~1.5 s of work per case
    .venv/bin/python bench/profiler.py --quick    # 3 rounds, ~0.5 s
    .venv/bin/python bench/profiler.py --json profiler.json

Each case runs in a fresh interpreter: tripwire or sentry-sdk, initialised with an
in-memory transport and ``traces_sample_rate=1.0``, profiler off, or on with
``profiles_sample_rate=1.0`` (both sample at their default 101 Hz). The workload is a
fixed amount of pure-Python arithmetic inside one transaction (under the 30 s a
profile may last), finished and serialized inside the measurement. The child reports
the process's CPU time (`time.process_time`: the workload plus the sampler thread
plus sending the profile) and wall time; the profiler's cost is on minus off for the
same SDK; the sampling thread's own CPU (its per-thread CPU clock) is a second,
less noisy measure, beside the wake-up floor (a thread that wakes at 101 Hz and does
nothing: what any Python sampling thread pays for the wake-up and the GIL hand-over;
"above it" compares what each sampler adds to that). The same again with 50 idle
threads (blocked on an Event), whose stacks the sampler reads at every tick.
Rounds alternate the cases and their order; medians.
On a loaded machine the on-minus-off difference is mostly noise for the thread-less
case (the profiler's ~1-3% is within run-to-run spread); the last table times one
sampler tick of each SDK in one process, interleaved, which is what the profiler
adds per tick beyond the thread wake-up both pay alike.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Any, Optional

from _harness import (
    BENCH_DIR,
    DSN,
    child_env,
    fmt_ratio,
    fmt_time,
    machine_facts,
    machine_line,
    median,
    render_table,
    run_child,
    write_json,
)

CHILD = """\
import json, threading, time, warnings
warnings.simplefilter("ignore")
floor = {floor!r}
sdk = __import__({module!r})
base = __import__({module!r} + ".transport", fromlist=["Transport"]).Transport
class Memory(base):
    def capture_envelope(self, envelope):
        envelope.serialize()
options = dict(dsn={dsn!r}, transport=Memory(), traces_sample_rate=1.0)
if {on!r} and not floor:
    options["profiles_sample_rate"] = 1.0
sdk.init(**options)
stop = threading.Event()
if floor and {on!r}:
    # The floor: a thread that only wakes ~101 times a second, as a sampler does.
    def wake(interval=1 / 101, perf=time.perf_counter, sleep=time.sleep):
        while not stop.is_set():
            start = perf()
            elapsed = perf() - start
            if elapsed < interval:
                sleep(interval - elapsed)
    threading.Thread(target=wake, name="floor-profiler", daemon=True).start()
idle = [threading.Thread(target=stop.wait, daemon=True) for _ in range({idle!r})]
for t in idle:
    t.start()
def work(n):
    total = 0
    for i in range(n):
        total += i * i
    return total
# warm-up (a short transaction: imports, first profile, sampler thread)
with sdk.start_transaction(name="warm", op="bench"):
    work(200_000)
sdk.flush()
def sampler_cpu():
    # The sampling thread's own CPU seconds (a per-thread CPU clock; None if unavailable).
    for t in threading.enumerate():
        if "profiler" in t.name:
            try:
                return time.clock_gettime(time.pthread_getcpuclockid(t.ident))
            except (AttributeError, OSError):
                return None
    return 0.0
s0 = sampler_cpu()
c0, t0 = time.process_time(), time.perf_counter()
with sdk.start_transaction(name="tx", op="bench"):
    for _ in range({chunks!r}):
        work(100_000)
    s1 = sampler_cpu()
sdk.flush()
c1, t1 = time.process_time(), time.perf_counter()
stop.set()
own = None if s0 is None or s1 is None else s1 - s0
print(json.dumps({{"cpu": c1 - c0, "wall": t1 - t0, "sampler": own}}))
"""

SDKS = [("tripwire", "tripwire"), ("sentry-sdk", "sentry_sdk")]
# Not an SDK: tripwire without a profiler, plus a thread that wakes at 101 Hz and
# does nothing. What any Python sampling thread costs; the rest is the sampler's work.
FLOOR = ("wake-up floor", "tripwire")

# One tick of each SDK's sampler, in one process, into one running transaction
# profile. The calling thread plays the sampling thread: sentry-sdk samples its own
# thread too, tripwire leaves it out, as each does in its own thread. The other
# threads block on an Event.
TICK = """\
import json, threading, time, warnings
warnings.simplefilter("ignore")
from sentry_sdk.profiler import transaction_profiler as stp
from sentry_sdk.utils import nanosecond_time
from tripwire.profiler import transaction_profiler as ttp
from tripwire.profiler._sampler import Sampler
stop = threading.Event()
for _ in range({idle!r}):
    threading.Thread(target=stop.wait, daemon=True).start()
def sentry_case():
    scheduler = stp.ThreadScheduler(101)
    profile = stp.Profile(True, nanosecond_time(), scheduler=scheduler)
    profile.active = True
    scheduler.new_profiles.append(profile)
    return scheduler.sampler
def tripwire_case():
    sampler = Sampler()
    sampler._own = threading.get_ident()  # the sampling thread (as in its own thread)
    profile = ttp.Profile(True, time.perf_counter_ns(), scheduler=ttp.ThreadScheduler(101))
    profile.active = True
    take, write = sampler._take, profile._tick
    return lambda: write(take())
def timed(make, n):
    tick = make()
    tick()
    t0 = time.thread_time()
    for _ in range(n):
        tick()
    return (time.thread_time() - t0) / n
out = {{"sentry-sdk": [], "tripwire": []}}
for r in range({rounds!r}):
    order = [("sentry-sdk", sentry_case), ("tripwire", tripwire_case)]
    for label, make in order if r % 2 == 0 else order[::-1]:
        out[label].append(timed(make, {n!r}))
stop.set()
print(json.dumps(out))
"""


def run_case(
    module: str, on: bool, idle: int, chunks: int, floor: bool = False
) -> dict[str, float]:
    code = CHILD.format(module=module, dsn=DSN, on=on, idle=idle, chunks=chunks, floor=floor)
    return run_child(code)


def run_ticks(idle: int, rounds: int, n: int) -> dict[str, list[float]]:
    code = TICK.format(idle=idle, rounds=rounds, n=n)
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=BENCH_DIR,
        env=child_env(),
        timeout=600,
    )
    found: dict[str, list[float]] = json.loads(out.stdout.strip().splitlines()[-1])
    return found


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    rounds, chunks = (3, 100) if args.quick else (5, 300)
    scenarios = [("no threads", 0), ("50 idle threads", 50)]
    cases = [(label, module, on) for label, module in SDKS for on in (False, True)]
    samples: dict[tuple[str, str, bool], list[dict[str, float]]] = {}
    for round_no in range(rounds):
        order = cases if round_no % 2 == 0 else list(reversed(cases))
        for scenario, idle in scenarios:
            for label, module, on in order:
                key = (scenario, label, on)
                samples.setdefault(key, []).append(run_case(module, on, idle, chunks))
            floor = run_case(FLOOR[1], True, idle, chunks, floor=True)
            samples.setdefault((scenario, FLOOR[0], True), []).append(floor)
    facts = machine_facts()
    print(machine_line(facts))
    print(f"CPU-bound workload in one transaction, {rounds} rounds, 101 Hz sampling")
    rows = []
    report: dict[str, Any] = {"machine": facts}
    for scenario, _ in scenarios:
        added: dict[str, float] = {}
        for label, _module in SDKS:
            cpu_off = median([s["cpu"] for s in samples[(scenario, label, False)]]) or 0.0
            cpu_on = median([s["cpu"] for s in samples[(scenario, label, True)]]) or 0.0
            wall_off = median([s["wall"] for s in samples[(scenario, label, False)]]) or 0.0
            wall_on = median([s["wall"] for s in samples[(scenario, label, True)]]) or 0.0
            added[label] = cpu_on - cpu_off
            own = [s["sampler"] for s in samples[(scenario, label, True)]]
            report.setdefault(scenario, {})[label] = {
                "sampler_thread": median([v for v in own if v is not None])
                if None not in own
                else None,
                "cpu_off": cpu_off,
                "cpu_on": cpu_on,
                "wall_off": wall_off,
                "wall_on": wall_on,
            }
        ratio = added["tripwire"] / added["sentry-sdk"] if added["sentry-sdk"] > 0 else None
        report[scenario]["added_ratio"] = ratio
        own_t = report[scenario]["tripwire"]["sampler_thread"]
        own_s = report[scenario]["sentry-sdk"]["sampler_thread"]
        own_ratio = own_t / own_s if own_t is not None and own_s else None
        report[scenario]["sampler_ratio"] = own_ratio
        # The floor's thread CPU, and each sampler's above it (its own work per tick).
        floor_runs = samples[(scenario, FLOOR[0], True)]
        own_f = median([s["sampler"] for s in floor_runs if s["sampler"] is not None])
        cpu_f = (median([s["cpu"] for s in floor_runs]) or 0.0) - report[scenario]["tripwire"][
            "cpu_off"
        ]
        above = None
        if own_f is not None and own_t is not None and own_s is not None and own_s > own_f:
            above = max(own_t - own_f, 0.0) / (own_s - own_f)
        report[scenario]["floor"] = {"sampler_thread": own_f, "added": cpu_f}
        report[scenario]["above_floor_ratio"] = above
        for label, _module in SDKS:
            r = report[scenario][label]
            pct = 100.0 * added[label] / r["cpu_off"] if r["cpu_off"] else 0.0
            rows.append(
                [
                    scenario,
                    label,
                    fmt_time(r["cpu_off"]),
                    fmt_time(r["cpu_on"]),
                    f"{fmt_time(added[label])} ({pct:.1f}%)"
                    if added[label] >= 0
                    else "< 0 (noise)",
                    fmt_ratio(ratio) if label == "tripwire" else "",
                    fmt_time(r["sampler_thread"]),
                    fmt_ratio(own_ratio) if label == "tripwire" else "",
                ]
            )
        rows.append(
            [
                scenario,
                FLOOR[0],
                "",
                "",
                f"{fmt_time(cpu_f)}" if cpu_f >= 0 else "< 0 (noise)",
                "",
                fmt_time(own_f),
                f"above it: {fmt_ratio(above)}",
            ]
        )
    headers = [
        "threads",
        "SDK",
        "CPU off",
        "CPU on",
        "on - off",
        "vs sentry",
        "sampler thread",
        "vs sentry",
    ]
    print(render_table(headers, rows, {2, 3, 4, 5, 6, 7}))
    print()
    print("One sampler tick into one running profile (in-process, CPU per tick)")
    rows = []
    for scenario, idle in scenarios:
        per = run_ticks(max(idle, 1), rounds * 2, 200 if args.quick else 1000)
        tick = {label: median(values) or 0.0 for label, values in per.items()}
        ratio = tick["tripwire"] / tick["sentry-sdk"] if tick["sentry-sdk"] else None
        report.setdefault("tick", {})[scenario] = {**tick, "ratio": ratio}
        rows.append(
            [
                scenario,
                fmt_time(tick["sentry-sdk"]),
                fmt_time(tick["tripwire"]),
                fmt_ratio(ratio),
            ]
        )
    print(render_table(["threads", "sentry-sdk", "tripwire", "ratio"], rows, {1, 2, 3}))
    if args.json:
        write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
