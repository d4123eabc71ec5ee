"""boto3, pymongo, clickhouse-driver, AWS Lambda: the SDK's added CPU per operation.

Run from the repository root with the dev virtualenv::

    .venv/bin/python bench/cloud_db.py            # 5 rounds
    .venv/bin/python bench/cloud_db.py --quick    # 3 rounds, fewer operations
    .venv/bin/python bench/cloud_db.py --only boto3 --json cloud.json

Both SDKs patch these libraries for the whole process, so each case runs in a fresh
interpreter: no SDK, tripwire, sentry-sdk (default integrations plus the workload's
integration, in-memory transport that serializes every envelope,
``traces_sample_rate=1.0``). The servers are the test suite's loopback stand-ins
(``tests/fakes``: an S3 endpoint, a MongoDB OP_MSG server, a Lambda runtime API) or
the real ClickHouse server when installed; they run in this process, so their CPU is
not the child's. Operations run 50 to a transaction (a Lambda invocation is its own
transaction). The child measures its main thread's CPU time per operation
(`time.thread_time`); an SDK's added cost is the difference to the no-SDK case.
Rounds alternate the order of the three cases; medians are reported.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable, Optional

from _harness import (
    DSN,
    ROOT,
    fmt_ratio,
    fmt_time,
    machine_facts,
    machine_line,
    median,
    render_table,
    run_child,
    write_json,
)

sys.path.insert(0, str(ROOT / "tests"))

PRELUDE = """\
import json, time
{pre}
module = {module!r}
sdk = None
if module:
    sdk = __import__(module)
    base = __import__(module + ".transport", fromlist=["Transport"]).Transport
    integration = getattr(
        __import__(module + ".integrations.{int_module}", fromlist=["x"]), {int_class!r}
    )
    class Memory(base):
        def capture_envelope(self, envelope):
            envelope.serialize()
    sdk.init(dsn={dsn!r}, transport=Memory(), traces_sample_rate=1.0,
             integrations=[integration()])
URL = {url!r}
"""

TIMING = """\
def run(n):
    for _ in range(n // 50):
        if sdk is None:
            for _ in range(50):
                op()
        else:
            with sdk.start_transaction(name="tx", op="bench"):
                for _ in range(50):
                    op()
run(100)
t0, c0 = time.perf_counter(), time.thread_time()
run({n})
c1, t1 = time.thread_time(), time.perf_counter()
print(json.dumps({{"cpu": (c1 - c0) / {n}, "wall": (t1 - t0) / {n}}}))
"""

NO_WRAP_TIMING = """\
def run(n):
    for _ in range(n):
        op()
run(100)
t0, c0 = time.perf_counter(), time.thread_time()
run({n})
c1, t1 = time.thread_time(), time.perf_counter()
print(json.dumps({{"cpu": (c1 - c0) / {n}, "wall": (t1 - t0) / {n}}}))
"""

BOTO3 = """\
import boto3
session = boto3.session.Session(
    aws_access_key_id="a", aws_secret_access_key="b", region_name="us-east-1"
)
s3 = session.client("s3", endpoint_url=URL)
s3.put_object(Bucket="bench", Key="k", Body=b"x" * 100)
def op():
    s3.get_object(Bucket="bench", Key="k")["Body"].read()
"""


PYMONGO = """\
import pymongo
host, port = URL.split(":")
client = pymongo.MongoClient(host, int(port))
client.bench.items.insert_one({"_id": 1, "name": "x"})
def op():
    client.bench.items.find_one({"name": "x"})
"""


CLICKHOUSE = """\
from clickhouse_driver import Client
host, port = URL.split(":")
client = Client(host, port=int(port))
def op():
    client.execute("SELECT 1")
"""

# One invocation through the runtime interface client's own `handle_event_request`,
# answered by an in-process stand-in of its runtime client (no HTTP: the Lambda
# runtime's own cost is not the SDK's). Each invocation is its own transaction.
AWS_LAMBDA_PRE = """\
import os, sys
os.environ.update(AWS_LAMBDA_FUNCTION_NAME="bench", AWS_LAMBDA_FUNCTION_VERSION="1",
                  AWS_LAMBDA_LOG_GROUP_NAME="g", AWS_LAMBDA_LOG_STREAM_NAME="s")
from awslambdaric import bootstrap
from awslambdaric.lambda_runtime_marshaller import LambdaMarshaller
sys.modules["bootstrap"] = bootstrap  # where set-up looks for the runtime
class Runtime:
    marshaller = LambdaMarshaller()
    def post_invocation_result(self, *args): pass
    def post_invocation_error(self, *args): pass
    def post_init_error(self, *args): pass
bootstrap.LambdaRuntimeClient = Runtime
"""

AWS_LAMBDA = """\
runtime = Runtime()
def handler(event, context):
    return {"ok": True}
ARN = "arn:aws:lambda:eu-central-1:1:function:bench"
def op():
    deadline = int(time.time() * 1000) + 60_000
    bootstrap.handle_event_request(runtime, handler, "id", b'{"a": 1}', "application/json",
                                   None, None, ARN, deadline, None, None)
"""
NO_WRAP = {"aws_lambda invocation"}
PRE = {"aws_lambda invocation": AWS_LAMBDA_PRE}


def _no_server() -> tuple[Any, str]:
    class Nothing:
        def __exit__(self, *exc: Any) -> None:
            pass

    return Nothing(), ""


def _clickhouse_server() -> tuple[Any, str]:
    from fakes import clickhouse_server

    server = clickhouse_server.start()

    class Stop:
        def __exit__(self, *exc: Any) -> None:
            server.stop()

    return Stop(), f"127.0.0.1:{server.port}"


def _mongo_server() -> tuple[Any, str]:
    from fakes.mongo import serving

    manager = serving()
    server = manager.__enter__()
    return manager, f"127.0.0.1:{server.port}"


def _aws_server() -> tuple[Any, str]:
    from fakes.aws import serving

    manager = serving()
    server = manager.__enter__()
    return manager, server.url


# name -> (integration module, class, child code, server starter, full n, quick n)
WORKLOADS: dict[str, tuple[str, str, str, Callable[[], tuple[Any, str]], int, int]] = {
    "boto3 S3 GetObject+read": ("boto3", "Boto3Integration", BOTO3, _aws_server, 1000, 300),
    "pymongo find_one": ("pymongo", "PyMongoIntegration", PYMONGO, _mongo_server, 3000, 1000),
    "clickhouse SELECT 1": (
        "clickhouse_driver",
        "ClickhouseDriverIntegration",
        CLICKHOUSE,
        _clickhouse_server,
        2000,
        600,
    ),
    "aws_lambda invocation": (
        "aws_lambda",
        "AwsLambdaIntegration",
        AWS_LAMBDA,
        _no_server,
        3000,
        1000,
    ),
}

CASES = [("no SDK", ""), ("tripwire", "tripwire"), ("sentry-sdk", "sentry_sdk")]


def run_case(module: str, workload: str, url: str, n: int) -> dict[str, float]:
    int_module, int_class, body, _, _, _ = WORKLOADS[workload]
    code = (
        PRELUDE.format(
            pre=PRE.get(workload, ""),
            module=module,
            int_module=int_module,
            int_class=int_class,
            dsn=DSN,
            url=url,
        )
        + body
        + (NO_WRAP_TIMING if workload in NO_WRAP else TIMING).format(n=n)
    )
    return run_child(code)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--only", metavar="PREFIX", help="workloads whose name starts so")
    args = parser.parse_args(argv)
    rounds = 3 if args.quick else 5
    chosen = [name for name in WORKLOADS if not args.only or name.startswith(args.only)]
    samples: dict[str, dict[str, list[dict[str, float]]]] = {
        name: {label: [] for label, _ in CASES} for name in chosen
    }
    for name in chosen:
        _, _, _, start, full_n, quick_n = WORKLOADS[name]
        n = quick_n if args.quick else full_n
        manager, url = start()
        try:
            for round_no in range(rounds):
                order = CASES if round_no % 2 == 0 else list(reversed(CASES))
                for label, module in order:
                    samples[name][label].append(run_case(module, name, url, n))
        finally:
            manager.__exit__(None, None, None)
    facts = machine_facts()
    print(machine_line(facts))
    print(f"one operation to a loopback server in a sampled transaction, {rounds} rounds")
    rows: list[list[str]] = []
    report: dict[str, Any] = {"machine": facts, "rounds": rounds}
    for name in chosen:
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
    headers = ["workload", "case", "CPU/op", "added CPU", "wall/op", "added vs sentry"]
    print(render_table(headers, rows, {2, 3, 4, 5}))
    if args.json:
        write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
