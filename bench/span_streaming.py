"""Span streaming: the CPU of one streamed span through the batcher, tripwire vs sentry-sdk.

Run from the repository root with the dev virtualenv::

    .venv/bin/python bench/span_streaming.py            # 5 rounds of 30,000 spans
    .venv/bin/python bench/span_streaming.py --quick    # 3 rounds of 10,000
    .venv/bin/python bench/span_streaming.py --json spans.json

Each case runs in a fresh interpreter: no SDK (the same loop with no-op spans),
tripwire, sentry-sdk (``trace_lifecycle="stream"``, ``traces_sample_rate=1.0``,
``release``/``environment`` set, an in-memory transport that serializes every
envelope). The application makes 10,000 spans per second: every millisecond a segment
with nine children (``traces.start_span`` as context managers), paced by sleeping
until the next millisecond, so the batcher works as in production (a flush asked for
by each segment, timed flushes). Two measures per span: the main thread's CPU
(`time.thread_time`: what the application pays) and the whole process's
(`time.process_time`: the flusher that encodes and serializes included; the measured
block ends with `flush()`, so every span is sent inside it). An SDK's added cost is
the difference to the no-SDK case. Rounds alternate the case order; medians reported.
"""

from __future__ import annotations

import sys
from typing import Optional

from _harness import BENCH_DIR, DSN, added_cpu_bench, run_child

CHILD = """\
import contextlib, json, time, sys, warnings
sys.path.insert(0, {bench!r})
from _harness import make_memory_transport
module = {module!r}
with_attributes = {with_attributes!r}
attributes = {{"route": "/checkout", "status": 200, "cached": False}} if with_attributes else None
if module:
    sdk = __import__(module)
    traces = __import__(module + ".traces", fromlist=["start_span"])
    base = __import__(module + ".transport", fromlist=["Transport"]).Transport
    transport = make_memory_transport(base)
    sdk.init(
        dsn={dsn!r}, transport=transport, traces_sample_rate=1.0,
        release="shop@1.0", environment="bench", trace_lifecycle="stream",
    )
    start_span = traces.start_span
    flush = sdk.flush
else:
    def start_span(name, attributes=None):
        return contextlib.nullcontext()
    def flush():
        pass

def segment():
    with start_span(name="segment", attributes=attributes):
        for _ in range(9):
            with start_span(name="child", attributes=attributes):
                pass

def run(segments):
    # 10,000 spans a second: a segment of ten every millisecond.
    start = time.monotonic()
    for index in range(segments):
        segment()
        delay = start + (index + 1) / 1000 - time.monotonic()
        if delay > 0:
            time.sleep(delay)

run(200)
flush()
c0, p0 = time.thread_time(), time.process_time()
run({n} // 10)
c1 = time.thread_time()
flush()
p1 = time.process_time()
sent = transport.envelopes if module else 0
print(json.dumps({{"thread": (c1 - c0) / {n}, "process": (p1 - p0) / {n}, "envelopes": sent}}))
"""

VARIANTS = [("span", False), ("span + 3 attributes", True)]


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
        (10_000, 30_000),
        "streamed spans at 10,000/s (segments of 10), {rounds} x {n} spans",
        "span",
    )


if __name__ == "__main__":
    sys.exit(main())
