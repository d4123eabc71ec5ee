"""Task queues: enqueue and run jobs of RQ, arq, Dramatiq and Huey on a loopback redis.

Run from the repository root with the dev virtualenv::

    .venv/bin/python bench/task_queues.py              # 5 rounds of 1,000 jobs per queue
    .venv/bin/python bench/task_queues.py --quick      # 3 rounds of 300
    .venv/bin/python bench/task_queues.py --queue rq   # one library (also arq, dramatiq, huey)
    .venv/bin/python bench/task_queues.py --json queues.json

The integrations patch the libraries' classes for the whole process, so each case runs
in a fresh interpreter: no SDK, tripwire, sentry-sdk (default integrations plus the
library's integration, in-memory transport that serializes every envelope,
``traces_sample_rate=1.0``). ``auto_enabling_integrations=False``: the redis
integration would otherwise add a span or breadcrumb to every command the libraries
send (`bench/redis_ops.py` measures that). redis-server (the Debian package) runs as its own
process on a free loopback port, with no persistence.

Each job is enqueued inside a producer transaction (50 jobs per transaction: a submit
span or trace headers per job where the SDK adds them), then the library's own worker
runs them in the benchmark's process: RQ's `SimpleWorker` in burst mode, arq's `Worker`
in burst mode, Dramatiq's `Worker` (one worker thread) until the queue is joined, and
what a Huey consumer's worker does (`huey.execute` on each dequeued task). Every job
becomes a transaction. The process's user-mode CPU time (`os.times().user`, all
threads: Dramatiq runs jobs on worker threads; the kernel's share of the socket calls
to redis-server varies more between runs than the SDK's whole cost) is divided by the
number of jobs; an SDK's added cost is the difference to the no-SDK case. Rounds
alternate the order of the three cases; medians are reported.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
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
    start_redis,
    write_json,
)

PRELUDE = """\
import json, os, sys, time
module = {module!r}
sdk = None
url = "redis://127.0.0.1:{port}/0"
n = {n}
def integration_class(name, cls):
    return getattr(__import__(module + ".integrations." + name, fromlist=["x"]), cls)
def init(integration):
    global sdk
    if not module:
        return
    sdk = __import__(module)
    base = __import__(module + ".transport", fromlist=["Transport"]).Transport
    class Memory(base):
        def capture_envelope(self, envelope):
            envelope.serialize()
    sdk.init(
        dsn={dsn!r}, transport=Memory(), traces_sample_rate=1.0, integrations=[integration],
        auto_enabling_integrations=False,
    )
class producer:
    def __enter__(self):
        self.tx = sdk.start_transaction(name="producer", op="bench") if sdk else None
        if self.tx is not None:
            self.tx.__enter__()
    def __exit__(self, *exc):
        if self.tx is not None:
            self.tx.__exit__(*exc)
def cpu():
    # User-mode CPU of every thread: the kernel's time in socket calls to redis-server
    # varies more from run to run than the SDK's whole cost.
    return os.times().user
def report(c0, t0):
    c1, t1 = cpu(), time.perf_counter()
    if sdk is not None:
        sdk.flush()
    print(json.dumps({{"cpu": (c1 - c0) / n, "wall": (t1 - t0) / n}}))
"""

RQ = """
init(integration_class("rq", "RqIntegration")() if module else None)
from redis import Redis
from rq import Queue, SimpleWorker
connection = Redis.from_url(url)
queue = Queue("bench-rq", connection=connection)
def run(count):
    for start in range(0, count, 50):
        with producer():
            for _ in range(50):
                queue.enqueue(len, "job")
    SimpleWorker([queue], connection=connection).work(burst=True, logging_level="WARNING")
run(100)
c0, t0 = cpu(), time.perf_counter()
run(n)
report(c0, t0)
"""

ARQ = """
init(integration_class("arq", "ArqIntegration")() if module else None)
import asyncio
from arq import create_pool
from arq.connections import RedisSettings
from arq.worker import create_worker
async def job(ctx, value):
    return len(value)
async def run(count):
    pool = await create_pool(RedisSettings(port={port}), default_queue_name="bench-arq")
    for start in range(0, count, 50):
        with producer():
            for _ in range(50):
                await pool.enqueue_job("job", "value")
    worker = create_worker({{
        "functions": [job], "redis_pool": pool, "queue_name": "bench-arq", "burst": True,
        "poll_delay": 0, "keep_result": 0, "handle_signals": False, "max_jobs": 50,
    }})
    await worker.main()
    await pool.aclose()
import logging
logging.getLogger("arq").setLevel(logging.WARNING)
asyncio.run(run(100))
c0, t0 = cpu(), time.perf_counter()
asyncio.run(run(n))
report(c0, t0)
"""

DRAMATIQ = """
init(integration_class("dramatiq", "DramatiqIntegration")() if module else None)
import logging
import dramatiq
from dramatiq.brokers.redis import RedisBroker
logging.getLogger("dramatiq").setLevel(logging.WARNING)
broker = RedisBroker(url=url, namespace="bench-dramatiq")
@dramatiq.actor(broker=broker, max_retries=0)
def job(value):
    len(value)
worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=10)
worker.start()
def run(count):
    for start in range(0, count, 50):
        with producer():
            for _ in range(50):
                job.send("value")
    broker.join("default")
    worker.join()
run(100)
c0, t0 = cpu(), time.perf_counter()
run(n)
report(c0, t0)
worker.stop()
broker.close()
"""

HUEY = """
init(integration_class("huey", "HueyIntegration")() if module else None)
import logging
from huey import RedisHuey
logging.getLogger("huey").setLevel(logging.WARNING)
huey = RedisHuey("bench-huey", port={port}, results=False, blocking=False)
@huey.task()
def job(value):
    len(value)
def run(count):
    for start in range(0, count, 50):
        with producer():
            for _ in range(50):
                job("value")
    # What a consumer's worker does with each message.
    while True:
        task = huey.dequeue()
        if task is None:
            break
        huey.execute(task)
run(100)
c0, t0 = cpu(), time.perf_counter()
run(n)
report(c0, t0)
"""

CASES = [("no SDK", ""), ("tripwire", "tripwire"), ("sentry-sdk", "sentry_sdk")]
QUEUES = {"rq": RQ, "arq": ARQ, "dramatiq": DRAMATIQ, "huey": HUEY}


def run_case(queue: str, module: str, port: int, n: int) -> dict[str, float]:
    code = PRELUDE.format(module=module, dsn=DSN, port=port, n=n) + QUEUES[queue].format(port=port)
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=BENCH_DIR,
        env=child_env(),
        timeout=900,
        check=False,
    )
    if out.returncode != 0:
        raise SystemExit(f"{queue} / {module or 'no SDK'} failed:\n{out.stderr[-3000:]}")
    found: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return found


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--queue", choices=sorted(QUEUES), action="append")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    rounds, n = (3, 300) if args.quick else (5, 1000)
    queues = args.queue or list(QUEUES)
    samples: dict[str, dict[str, list[dict[str, float]]]] = {
        queue: {label: [] for label, _ in CASES} for queue in queues
    }
    with tempfile.TemporaryDirectory() as data_dir:
        server, port = start_redis(data_dir)
        try:
            for round_no in range(rounds):
                order = CASES if round_no % 2 == 0 else list(reversed(CASES))
                for queue in queues:
                    for label, module in order:
                        samples[queue][label].append(run_case(queue, module, port, n))
        finally:
            server.terminate()
            server.wait()
    facts = machine_facts()
    print(machine_line(facts))
    print(f"jobs enqueued in transactions and run by the library's worker, {rounds} x {n} jobs")
    rows: list[list[str]] = []
    report: dict[str, Any] = {"machine": facts, "rounds": rounds, "jobs": n}
    for queue in queues:
        runs_of = samples[queue]
        cpu = {label: median([s["cpu"] for s in runs]) for label, runs in runs_of.items()}
        wall = {label: median([s["wall"] for s in runs]) for label, runs in runs_of.items()}
        base_cpu = cpu["no SDK"] or 0.0
        added = {label: (value or 0.0) - base_cpu for label, value in cpu.items()}
        added_ratio = added["tripwire"] / added["sentry-sdk"] if added["sentry-sdk"] > 0 else None
        rows.extend(
            [
                queue,
                label,
                fmt_time(cpu[label]),
                fmt_time(added[label]) if label != "no SDK" else "-",
                fmt_time(wall[label]),
                fmt_ratio(added_ratio) if label == "tripwire" else "",
            ]
            for label, _ in CASES
        )
        report[queue] = {
            "cpu": cpu,
            "wall": wall,
            "added_cpu": added,
            "added_ratio": added_ratio,
            "samples": runs_of,
        }
    headers = ["queue", "case", "CPU/job", "added CPU", "wall/job", "added vs sentry"]
    print(render_table(headers, rows, {2, 3, 4, 5}))
    if args.json:
        write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
