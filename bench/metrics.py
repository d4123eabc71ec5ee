"""Trace metrics: the cost of one `metrics.count` call, tripwire vs sentry-sdk.

Run from the repository root with the dev virtualenv::

    .venv/bin/python bench/metrics.py            # 5 rounds of 50,000 calls
    .venv/bin/python bench/metrics.py --quick    # 3 rounds of 10,000
    .venv/bin/python bench/metrics.py --json metrics.json

Each case runs in a fresh interpreter: no SDK (the same loop calling a no-op
function), tripwire, sentry-sdk (default options, in-memory transport that serializes
every envelope, ``traces_sample_rate=1.0``, ``release``/``environment`` set). Calls are
made inside a sampled transaction with a child span (each metric is linked to it), with
and without three attributes. The child measures two things per call: its main
thread's CPU (`time.thread_time`: what the application's thread pays) and the whole
process's CPU (`time.process_time`, the flusher thread that encodes and serializes the
batches included; the measured block ends with `flush()`, so every metric is encoded
and serialized inside it). An SDK's added cost is the difference to the no-SDK case.
Rounds alternate the case order; medians are reported.
"""

from __future__ import annotations

import sys
from typing import Optional

from _harness import BENCH_DIR, DSN, added_cpu_bench, run_child

CHILD = """\
import json, time, sys
sys.path.insert(0, {bench!r})
from _harness import make_memory_transport
module = {module!r}
with_attributes = {with_attributes!r}
attributes = {{"route": "/checkout", "status": 200, "cached": False}} if with_attributes else None
if module:
    sdk = __import__(module)
    metrics = __import__(module + ".metrics", fromlist=["count"])
    base = __import__(module + ".transport", fromlist=["Transport"]).Transport
    sdk.init(
        dsn={dsn!r}, transport=make_memory_transport(base), traces_sample_rate=1.0,
        release="shop@1.0", environment="bench",
    )
    count = metrics.count
    def scope():
        return sdk.start_transaction(name="tx", op="bench")
    def child():
        return sdk.start_span(op="work")
    flush = sdk.flush
else:
    import contextlib
    def count(name, value, unit=None, attributes=None):
        pass
    scope = child = contextlib.nullcontext
    def flush():
        pass
def run(n):
    with scope(), child():
        for _ in range(n):
            count("orders.placed", 1, attributes=attributes)
    flush()
run(2000)
c0, p0 = time.thread_time(), time.process_time()
with scope(), child():
    for _ in range({n}):
        count("orders.placed", 1, attributes=attributes)
c1 = time.thread_time()
flush()
p1 = time.process_time()
print(json.dumps({{"thread": (c1 - c0) / {n}, "process": (p1 - p0) / {n}}}))
"""

VARIANTS = [("count", False), ("count + 3 attributes", True)]


def run_case(module: str, with_attributes: bool, n: int) -> dict[str, float]:
    code = CHILD.format(
        module=module, with_attributes=with_attributes, dsn=DSN, n=n, bench=str(BENCH_DIR)
    )
    return run_child(code)


def main(argv: Optional[list[str]] = None) -> int:
    return added_cpu_bench(
        argv,
        __doc__.splitlines()[0],
        run_case,
        VARIANTS,
        (10_000, 50_000),
        "metrics.count in a sampled transaction's span, {rounds} x {n} calls",
        "call",
    )


if __name__ == "__main__":
    sys.exit(main())
