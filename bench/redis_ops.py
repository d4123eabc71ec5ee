"""redis: a SET and a GET to a loopback redis-server in a sampled transaction.

Run from the repository root with the dev virtualenv::

    .venv/bin/python bench/redis_ops.py            # 5 rounds of 2,000 SET+GET pairs
    .venv/bin/python bench/redis_ops.py --quick    # 3 rounds of 500
    .venv/bin/python bench/redis_ops.py --json redis.json

Both SDKs patch redis-py's classes for the whole process, so each case runs in a fresh
interpreter: no SDK, tripwire, sentry-sdk (default integrations plus
``RedisIntegration``, in-memory transport that serializes every envelope,
``traces_sample_rate=1.0``). redis-server (the Debian package) runs as its own process
on a free loopback port, with no persistence; one `redis.Redis` client keeps one
connection. Each pair is ``SET key value`` then ``GET key`` (two ``db.redis`` spans
and two breadcrumbs); a transaction holds 50 pairs, so its own cost is spread over
them. The ``cache`` rows pass ``cache_prefixes`` matching the key, adding a
``cache.put`` and a ``cache.get`` span per pair. The child measures its main thread's
CPU time per pair (`time.thread_time`); an SDK's added cost is the difference to the
no-SDK case. Rounds alternate the order of the three cases; medians are reported.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from typing import Any, Optional

from _harness import (
    DSN,
    fmt_ratio,
    fmt_time,
    machine_facts,
    machine_line,
    median,
    render_table,
    run_child,
    start_redis,
    write_json,
)

CHILD = """\
import json, time
import redis
module = {module!r}
cache = {cache!r}
sdk = None
if module:
    sdk = __import__(module)
    base = __import__(module + ".transport", fromlist=["Transport"]).Transport
    redis_integration = __import__(
        module + ".integrations.redis", fromlist=["x"]
    ).RedisIntegration
    class Memory(base):
        def capture_envelope(self, envelope):
            envelope.serialize()
    integration = redis_integration(cache_prefixes=["bench:"] if cache else None)
    sdk.init(dsn={dsn!r}, transport=Memory(), traces_sample_rate=1.0, integrations=[integration])
client = redis.Redis(host="127.0.0.1", port={port})
def pairs(n):
    for _ in range(n):
        client.set("bench:key", "value-of-some-length")
        client.get("bench:key")
def run(n):
    for _ in range(n // 50):
        if sdk is None:
            pairs(50)
        else:
            with sdk.start_transaction(name="tx", op="bench"):
                pairs(50)
run(100)
t0, c0 = time.perf_counter(), time.thread_time()
run({n})
c1, t1 = time.thread_time(), time.perf_counter()
print(json.dumps({{"cpu": (c1 - c0) / {n}, "wall": (t1 - t0) / {n}}}))
"""

CASES = [("no SDK", ""), ("tripwire", "tripwire"), ("sentry-sdk", "sentry_sdk")]
WORKLOADS = [("SET+GET", False), ("SET+GET, cache", True)]


def run_case(module: str, cache: bool, port: int, n: int) -> dict[str, float]:
    code = CHILD.format(module=module, cache=cache, dsn=DSN, port=port, n=n)
    return run_child(code)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    rounds, n = (3, 500) if args.quick else (5, 2000)
    samples: dict[str, dict[str, list[dict[str, float]]]] = {
        name: {label: [] for label, _ in CASES} for name, _ in WORKLOADS
    }
    with tempfile.TemporaryDirectory() as data_dir:
        server, port = start_redis(data_dir)
        try:
            for round_no in range(rounds):
                order = CASES if round_no % 2 == 0 else list(reversed(CASES))
                for name, cache in WORKLOADS:
                    for label, module in order:
                        samples[name][label].append(run_case(module, cache, port, n))
        finally:
            server.terminate()
            server.wait()
    facts = machine_facts()
    print(machine_line(facts))
    print(f"redis SET+GET to loopback in a sampled transaction, {rounds} x {n} pairs")
    rows: list[list[str]] = []
    report: dict[str, Any] = {"machine": facts, "rounds": rounds, "pairs": n}
    for name, _ in WORKLOADS:
        runs_of = samples[name]
        cpu = {label: median([s["cpu"] for s in runs]) for label, runs in runs_of.items()}
        wall = {label: median([s["wall"] for s in runs]) for label, runs in runs_of.items()}
        base_cpu = cpu["no SDK"] or 0.0
        added = {label: (value or 0.0) - base_cpu for label, value in cpu.items()}
        added_ratio = added["tripwire"] / added["sentry-sdk"] if added["sentry-sdk"] > 0 else None
        rows.extend(
            [
                name,
                label,
                fmt_time(cpu[label]),
                fmt_time(added[label]) if label != "no SDK" else "-",
                fmt_time(wall[label]),
                fmt_ratio(added_ratio) if label == "tripwire" else "",
            ]
            for label, _ in CASES
        )
        report[name] = {
            "cpu": cpu,
            "wall": wall,
            "added_cpu": added,
            "added_ratio": added_ratio,
            "samples": runs_of,
        }
    headers = ["workload", "case", "CPU/pair", "added CPU", "wall/pair", "added vs sentry"]
    print(render_table(headers, rows, {2, 3, 4, 5}))
    if args.json:
        write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
