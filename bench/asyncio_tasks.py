"""asyncio: a program spawning 10,000 tasks inside a sampled transaction.

Run from the repository root with the dev virtualenv::

    .venv/bin/python bench/asyncio_tasks.py            # 7 rounds
    .venv/bin/python bench/asyncio_tasks.py --quick    # 3 rounds
    .venv/bin/python bench/asyncio_tasks.py --json asyncio.json

Both SDKs install a task factory on the running loop, so each case runs in a fresh
interpreter: no SDK, tripwire, sentry-sdk (default integrations plus
``AsyncioIntegration()``, initialised inside the running loop as both SDKs require;
in-memory transport that serializes every envelope, ``traces_sample_rate=1.0``). The
program: inside one transaction, ``create_task`` 10,000 times a coroutine that awaits
``asyncio.sleep(0)``, then ``gather`` them all; the transaction ends (its spans are
built, processed and serialized: both SDKs keep the first 1,000). One warm-up
program of 1,000 tasks runs first. The child measures its main thread's CPU time
(`time.thread_time`) from the first task created to the transaction sent; an SDK's
added cost is the difference to the no-SDK case. Rounds alternate the three cases;
medians are reported.
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
    spread_pct,
    write_json,
)

CHILD = """\
import asyncio, contextlib, json, time
module = {module!r}
sdk = None
sent = []

async def leaf():
    await asyncio.sleep(0)

async def program(n):
    scope = sdk.start_transaction(name="tx", op="bench") if sdk else contextlib.nullcontext()
    with scope:
        tasks = [asyncio.create_task(leaf()) for _ in range(n)]
        await asyncio.gather(*tasks)

async def main():
    global sdk
    if module:
        sdk = __import__(module)
        base = __import__(module + ".transport", fromlist=["Transport"]).Transport
        aio = __import__(module + ".integrations.asyncio", fromlist=["x"]).AsyncioIntegration
        class Memory(base):
            def capture_envelope(self, envelope):
                sent.append(len(envelope.serialize()))
        sdk.init(dsn={dsn!r}, transport=Memory(), traces_sample_rate=1.0, integrations=[aio()])
    await program(1000)
    t0, c0 = time.perf_counter(), time.thread_time()
    await program({n})
    c1, t1 = time.thread_time(), time.perf_counter()
    if sdk:
        sdk.flush()
    print(json.dumps({{"cpu": c1 - c0, "wall": t1 - t0, "envelopes": len(sent)}}))

asyncio.run(main())
"""

CASES = [("no SDK", ""), ("tripwire", "tripwire"), ("sentry-sdk", "sentry_sdk")]
TASKS = 10_000


def run_case(module: str) -> dict[str, float]:
    code = CHILD.format(module=module, dsn=DSN, n=TASKS)
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=BENCH_DIR,
        env=child_env(),
        timeout=600,
    )
    found: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    if module and found["envelopes"] != 2:  # the warm-up's transaction and the timed one
        raise SystemExit(f"{module}: {found['envelopes']} envelopes sent, expected 2")
    return found


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    rounds = 3 if args.quick else 7
    samples: dict[str, list[dict[str, float]]] = {label: [] for label, _ in CASES}
    for round_no in range(rounds):
        order = CASES if round_no % 2 == 0 else list(reversed(CASES))
        for label, module in order:
            samples[label].append(run_case(module))
    facts = machine_facts()
    print(machine_line(facts))
    print(f"{TASKS:,} asyncio tasks in a sampled transaction, {rounds} rounds")
    cpu = {label: median([s["cpu"] for s in runs]) or 0.0 for label, runs in samples.items()}
    wall = {label: median([s["wall"] for s in runs]) or 0.0 for label, runs in samples.items()}
    noise = {label: spread_pct([s["cpu"] for s in runs]) for label, runs in samples.items()}
    added = {label: value - cpu["no SDK"] for label, value in cpu.items()}
    added_ratio = added["tripwire"] / added["sentry-sdk"] if added["sentry-sdk"] > 0 else None
    rows = [
        [
            label,
            fmt_time(cpu[label]),
            "-" if noise[label] is None else f"{noise[label]:.0f}%",
            fmt_time(added[label]) if label != "no SDK" else "-",
            fmt_time(added[label] / TASKS) if label != "no SDK" else "-",
            fmt_time(wall[label]),
            fmt_ratio(added_ratio) if label == "tripwire" else "",
        ]
        for label, _ in CASES
    ]
    headers = ["case", "CPU", "±", "added CPU", "added/task", "wall", "added vs sentry"]
    print(render_table(headers, rows, {1, 2, 3, 4, 5, 6}))
    if args.json:
        report: dict[str, Any] = {
            "machine": facts,
            "tasks": TASKS,
            "rounds": rounds,
            "cpu": cpu,
            "wall": wall,
            "added_cpu": added,
            "added_ratio": added_ratio,
            "samples": samples,
        }
        write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
