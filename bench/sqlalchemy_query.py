"""SQLAlchemy: one query on SQLite (in memory) in a sampled transaction, SDK vs no SDK.

Run from the repository root with the dev virtualenv::

    .venv/bin/python bench/sqlalchemy_query.py            # 5 rounds of 20,000 queries
    .venv/bin/python bench/sqlalchemy_query.py --quick    # 3 rounds of 5,000
    .venv/bin/python bench/sqlalchemy_query.py --json sqlalchemy.json

Both SDKs listen to SQLAlchemy's `Engine` events for the whole process, so each case
runs in a fresh interpreter: no SDK, tripwire, sentry-sdk (default integrations plus
`SqlalchemyIntegration`, auto-enabling off so both load the same set; in-memory
transport, ``traces_sample_rate=1.0``). One connection to ``sqlite://`` runs
``SELECT a, b FROM t WHERE a = :a`` (a 100-row table, one row back, ``fetchall()``);
every query is made inside a transaction (a ``db`` span and a ``query`` breadcrumb
each; the query source is not looked up, the query being faster than the default
100 ms threshold); a transaction holds 100 queries, so its own cost is spread over
them. The child measures its main thread's CPU time per query (`time.thread_time`): an
SDK's added cost is the difference to the no-SDK case. Rounds alternate the three
cases; medians are reported.
"""

from __future__ import annotations

import argparse
import sys
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
    write_json,
)

CHILD = """\
import json, time
from sqlalchemy import create_engine, text
module = {module!r}
sdk = None
if module:
    sdk = __import__(module)
    base = __import__(module + ".transport", fromlist=["Transport"]).Transport
    class Memory(base):
        def capture_envelope(self, envelope):
            envelope.serialize()
    integration = __import__(
        module + ".integrations.sqlalchemy", fromlist=["x"]
    ).SqlalchemyIntegration()
    sdk.init(
        dsn={dsn!r},
        transport=Memory(),
        traces_sample_rate=1.0,
        auto_enabling_integrations=False,
        integrations=[integration],
    )
engine = create_engine("sqlite://")
conn = engine.connect()
conn.execute(text("CREATE TABLE t (a INTEGER PRIMARY KEY, b TEXT)"))
conn.execute(text("INSERT INTO t VALUES (:a, :b)"), [{{"a": i, "b": str(i)}} for i in range(100)])
query = text("SELECT a, b FROM t WHERE a = :a")
def one(i):
    conn.execute(query, {{"a": i}}).fetchall()
def run(n):
    for _ in range(n // 100):
        if sdk is None:
            for i in range(100):
                one(i)
        else:
            with sdk.start_transaction(name="tx", op="bench"):
                for i in range(100):
                    one(i)
run(1000)
t0, c0 = time.perf_counter(), time.thread_time()
run({n})
c1, t1 = time.thread_time(), time.perf_counter()
print(json.dumps({{"cpu": (c1 - c0) / {n}, "wall": (t1 - t0) / {n}}}))
"""

CASES = [("no SDK", ""), ("tripwire", "tripwire"), ("sentry-sdk", "sentry_sdk")]


def run_case(module: str, n: int) -> dict[str, float]:
    code = CHILD.format(module=module, dsn=DSN, n=n)
    return run_child(code)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    rounds, n = (3, 5000) if args.quick else (5, 20000)
    samples: dict[str, list[dict[str, float]]] = {label: [] for label, _ in CASES}
    for round_no in range(rounds):
        order = CASES if round_no % 2 == 0 else list(reversed(CASES))
        for label, module in order:
            samples[label].append(run_case(module, n))
    facts = machine_facts()
    print(machine_line(facts))
    print(f"SQLAlchemy query on SQLite (in memory) in a sampled transaction, {rounds} x {n}")
    cpu = {label: median([s["cpu"] for s in runs]) for label, runs in samples.items()}
    wall = {label: median([s["wall"] for s in runs]) for label, runs in samples.items()}
    base_cpu = cpu["no SDK"] or 0.0
    added = {label: (value or 0.0) - base_cpu for label, value in cpu.items()}
    added_ratio = added["tripwire"] / added["sentry-sdk"] if added["sentry-sdk"] > 0 else None
    rows = [
        [
            label,
            fmt_time(cpu[label]),
            fmt_time(added[label]) if label != "no SDK" else "-",
            fmt_time(wall[label]),
            fmt_ratio(added_ratio) if label == "tripwire" else "",
        ]
        for label, _ in CASES
    ]
    headers = ["case", "CPU/query", "added CPU", "wall/query", "added vs sentry"]
    print(render_table(headers, rows, {1, 2, 3, 4}))
    if args.json:
        report: dict[str, Any] = {
            "machine": facts,
            "cpu": cpu,
            "wall": wall,
            "added_cpu": added,
            "added_ratio": added_ratio,
        }
        write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
