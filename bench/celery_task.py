"""Celery: a task sent with `delay()` and run eagerly, inside a sampled transaction.

Run from the repository root with the dev virtualenv::

    .venv/bin/python bench/celery_task.py            # 5 rounds of 2,000 tasks
    .venv/bin/python bench/celery_task.py --quick    # 3 rounds of 500
    .venv/bin/python bench/celery_task.py --json celery.json

Both SDKs patch Celery for the whole process, so each case runs in a fresh interpreter:
no SDK, tripwire, sentry-sdk (default integrations plus ``CeleryIntegration()``;
in-memory transport that serializes every envelope, ``traces_sample_rate=1.0``). The
app runs with ``task_always_eager`` on the in-memory broker, so one `delay()` is the
whole round trip through the integration: the ``queue.submit.celery`` span and trace
headers of the producer, then the worker side (an isolation scope, the continued trace,
the task's own ``queue.task.celery`` transaction with its ``queue.process`` span,
finished and sent). The producer's transaction holds 100 tasks. The child measures its
main thread's CPU time per task (`time.thread_time`): an SDK's added cost is the
difference to the no-SDK case. Rounds alternate the three cases; medians are reported.

``--worker`` adds the real thing: a ``celery worker --pool=solo`` process per case on a
loopback redis-server broker (the Debian package; redis-py from the ``celery[redis]``
extra), the SDK initialised in the app module (in-memory transport, as above). The bench
process sends the tasks (no SDK) and the worker's CPU time (utime + stime from
``/proc``, so Linux only) is read before the batch and once its last task has run; the
added CPU per task is again the difference to the worker without SDK.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

from _harness import (
    DSN,
    child_env,
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
module = {module!r}
sdk = None
if module:
    sdk = __import__(module)
    base = __import__(module + ".transport", fromlist=["Transport"]).Transport
    celery_integration = __import__(module + ".integrations.celery", fromlist=["x"])
    class Memory(base):
        def capture_envelope(self, envelope):
            envelope.serialize()
    sdk.init(
        dsn={dsn!r},
        transport=Memory(),
        traces_sample_rate=1.0,
        integrations=[celery_integration.CeleryIntegration()],
    )
from celery import Celery
app = Celery("bench", broker="memory://")
app.conf.task_always_eager = True
@app.task
def add(x, y):
    return x + y
def run(n):
    for _ in range(n // 100):
        if sdk is None:
            for i in range(100):
                add.delay(i, 1)
        else:
            with sdk.start_transaction(name="tx", op="bench"):
                for i in range(100):
                    add.delay(i, 1)
run(200)
t0, c0 = time.perf_counter(), time.thread_time()
run({n})
c1, t1 = time.thread_time(), time.perf_counter()
if sdk is not None:
    sdk.flush()
print(json.dumps({{"cpu": (c1 - c0) / {n}, "wall": (t1 - t0) / {n}}}))
"""

CASES = [("no SDK", ""), ("tripwire", "tripwire"), ("sentry-sdk", "sentry_sdk")]

# The worker's app module: `BENCH_SDK` selects the SDK, `BENCH_DONE` is the file the
# last task writes.
WORKER_APP = """\
import os
from celery import Celery
module = os.environ.get("BENCH_SDK", "")
if module:
    sdk = __import__(module)
    base = __import__(module + ".transport", fromlist=["Transport"]).Transport
    celery_integration = __import__(module + ".integrations.celery", fromlist=["x"])
    class Memory(base):
        def capture_envelope(self, envelope):
            envelope.serialize()
    sdk.init(
        dsn=os.environ["BENCH_DSN"],
        transport=Memory(),
        traces_sample_rate=1.0,
        integrations=[celery_integration.CeleryIntegration()],
    )
app = Celery("bench_app", broker=os.environ["BENCH_BROKER"])
app.conf.broker_connection_retry_on_startup = True
app.conf.worker_hijack_root_logger = False
@app.task
def add(x, y):
    return x + y
@app.task
def done(path):
    with open(path, "w") as f:
        f.write("done")
"""


def _cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _wait_for(path: Path, what: str, worker: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if worker.poll() is not None:
            raise RuntimeError(f"the worker exited ({worker.returncode}) before {what}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"no {what} within {timeout} s")
        time.sleep(0.01)  # polling interval, bounded by the deadline


def run_worker_case(module: str, producer: Any, workdir: Path, n: int, seq: int) -> float:
    """The solo worker's CPU seconds per task for `n` tasks (after a warm-up batch)."""
    broker = producer.conf.broker_url
    queue = f"bench-{seq}"
    env = child_env()
    env.update(BENCH_SDK=module, BENCH_DSN=DSN, BENCH_BROKER=broker)
    env["PYTHONPATH"] = os.pathsep.join([str(workdir), env["PYTHONPATH"]])
    worker = subprocess.Popen(
        [sys.executable, "-m", "celery", "-A", "bench_app", "worker", "--pool=solo",
         "-Q", queue, "-n", f"{queue}@127.0.0.1", "--loglevel=WARNING",
         "--without-gossip", "--without-mingle", "--without-heartbeat"],
        cwd=workdir, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    add = producer.signature("bench_app.add")
    done = producer.signature("bench_app.done")
    try:
        warm = workdir / f"warm-{seq}"
        for i in range(200):
            add.apply_async((i, 1), queue=queue)
        done.apply_async((str(warm),), queue=queue)
        _wait_for(warm, "warm-up", worker, 120)
        finished = workdir / f"done-{seq}"
        cpu0 = _cpu_seconds(worker.pid)
        for i in range(n):
            add.apply_async((i, 1), queue=queue)
        done.apply_async((str(finished),), queue=queue)
        _wait_for(finished, "last task", worker, 600)
        return (_cpu_seconds(worker.pid) - cpu0) / (n + 1)
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()


def worker_rows(rounds: int, n: int) -> tuple[list[list[str]], dict[str, Any]]:
    samples: dict[str, list[float]] = {label: [] for label, _ in CASES}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        (workdir / "bench_app.py").write_text(WORKER_APP)
        server, port = start_redis(tmp, "--worker needs redis-server (Debian package redis-server)")
        from celery import Celery

        # One producer for the run: kombu's connection pools are per broker URL.
        producer = Celery("bench_app", broker=f"redis://127.0.0.1:{port}/0")
        try:
            seq = 0
            for round_no in range(rounds):
                order = CASES if round_no % 2 == 0 else list(reversed(CASES))
                for label, module in order:
                    seq += 1
                    samples[label].append(run_worker_case(module, producer, workdir, n, seq))
        finally:
            producer.pool.force_close_all()
            server.terminate()
            server.wait()
    cpu = {label: median(values) for label, values in samples.items()}
    base = cpu["no SDK"] or 0.0
    added = {label: (value or 0.0) - base for label, value in cpu.items()}
    ratio = added["tripwire"] / added["sentry-sdk"] if added["sentry-sdk"] > 0 else None
    rows = [
        [
            label,
            fmt_time(cpu[label]),
            fmt_time(added[label]) if label != "no SDK" else "-",
            fmt_ratio(ratio) if label == "tripwire" else "",
        ]
        for label, _ in CASES
    ]
    return rows, {"cpu": cpu, "added_cpu": added, "added_ratio": ratio}


def run_case(module: str, n: int) -> dict[str, float]:
    code = CHILD.format(module=module, dsn=DSN, n=n)
    return run_child(code)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--worker", action="store_true", help="also a real solo worker")
    args = parser.parse_args(argv)
    rounds, n = (3, 500) if args.quick else (5, 2000)
    samples: dict[str, list[dict[str, float]]] = {label: [] for label, _ in CASES}
    for round_no in range(rounds):
        order = CASES if round_no % 2 == 0 else list(reversed(CASES))
        for label, module in order:
            samples[label].append(run_case(module, n))
    facts = machine_facts()
    print(machine_line(facts))
    print(f"Celery task, delay() run eagerly, in a sampled transaction, {rounds} x {n} tasks")
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
    headers = ["case", "CPU/task", "added CPU", "wall/task", "added vs sentry"]
    print(render_table(headers, rows, {1, 2, 3, 4}))
    report: dict[str, Any] = {
        "machine": facts,
        "cpu": cpu,
        "wall": wall,
        "added_cpu": added,
        "added_ratio": added_ratio,
    }
    if args.worker:
        worker_n = 300 if args.quick else 2000
        print()
        print(f"Celery task on a solo worker (redis broker), {rounds} x {worker_n} tasks")
        rows, report["worker"] = worker_rows(rounds, worker_n)
        headers = ["case", "worker CPU/task", "added CPU", "added vs sentry"]
        print(render_table(headers, rows, {1, 2, 3}))
    if args.json:
        write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
