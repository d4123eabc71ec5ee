"""Trace headers on http.client: `requests` and SigV4-signed GETs in a sampled transaction.

Run from the repository root with the dev virtualenv::

    .venv/bin/python bench/outgoing_headers.py            # 5 rounds of 2,000 requests
    .venv/bin/python bench/outgoing_headers.py --quick    # 3 rounds of 500
    .venv/bin/python bench/outgoing_headers.py --json outgoing_headers.json

The stdlib integration writes the trace headers at `endheaders`, after the caller's,
and checks what the caller wrote (an own ``sentry-trace``, a ``baggage`` with
``sentry-*`` members, an AWS SigV4 ``Authorization``). These rows measure that path
where it does the most: `requests` (a `Session`, about eight header lines per
request) and an `http.client` GET carrying a SigV4 ``Authorization`` that signs
``sentry-trace`` (so the header is parsed and ours left out).

As `bench/outgoing.py`: each case runs in a fresh interpreter (no SDK, tripwire,
sentry-sdk with default integrations; in-memory transport, ``traces_sample_rate=1.0``);
the server is another process (HTTP/1.1 keep-alive, empty 200 answers); one
connection is reused; 100 requests per transaction; the child's main-thread CPU per
request (`time.thread_time`, the median over its transactions: a busy machine's
bursts fall out) minus the no-SDK case is the SDK's added cost. Rounds alternate the
three cases; medians are reported.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from typing import Any, Optional

from _harness import (
    BENCH_DIR,
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
from outgoing import SERVER

CHILD = """\
import http.client, json, time
module = {module!r}
client = {client!r}
sdk = None
if module:
    sdk = __import__(module)
    base = __import__(module + ".transport", fromlist=["Transport"]).Transport
    class Memory(base):
        def capture_envelope(self, envelope):
            envelope.serialize()
    sdk.init(dsn={dsn!r}, transport=Memory(), traces_sample_rate=1.0)
if client == "requests":
    import requests
    session = requests.Session()
    url = "http://127.0.0.1:{port}/path?q=1"
    def one():
        session.get(url).content
else:
    conn = http.client.HTTPConnection("127.0.0.1", {port})
    signed = {{
        "X-Amz-Date": "20260101T000000Z",
        "sentry-trace": "0123456789abcdef0123456789abcdef-0123456789abcdef-1",
        "Authorization": "AWS4-HMAC-SHA256 Credential=a/20260101/eu-west-1/s3/aws4_request, "
        "SignedHeaders=host;sentry-trace;x-amz-date, Signature=0123456789abcdef",
    }}
    def one():
        conn.request("GET", "/path?q=1", headers=signed)
        conn.getresponse().read()
def batch():
    if sdk is None:
        for _ in range(100):
            one()
    else:
        with sdk.start_transaction(name="tx", op="bench"):
            for _ in range(100):
                one()
batch()
cpu, wall = [], []
for _ in range({n} // 100):
    t0, c0 = time.perf_counter(), time.thread_time()
    batch()
    c1, t1 = time.thread_time(), time.perf_counter()
    cpu.append((c1 - c0) / 100)
    wall.append((t1 - t0) / 100)
cpu.sort()
wall.sort()
print(json.dumps({{"cpu": cpu[len(cpu) // 2], "wall": wall[len(wall) // 2]}}))
"""

CASES = [("no SDK", ""), ("tripwire", "tripwire"), ("sentry-sdk", "sentry_sdk")]
CLIENTS = ["requests", "http.client signed"]


def run_case(module: str, client: str, port: int, n: int) -> dict[str, float]:
    code = CHILD.format(module=module, client=client, dsn=DSN, port=port, n=n)
    return run_child(code)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    rounds, n = (3, 500) if args.quick else (5, 2000)
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True, cwd=BENCH_DIR
    )
    try:
        assert server.stdout is not None
        port = int(server.stdout.readline())
        samples: dict[str, dict[str, list[dict[str, float]]]] = {
            client: {label: [] for label, _ in CASES} for client in CLIENTS
        }
        for round_no in range(rounds):
            order = CASES if round_no % 2 == 0 else list(reversed(CASES))
            for client in CLIENTS:
                for label, module in order:
                    samples[client][label].append(run_case(module, client, port, n))
    finally:
        server.terminate()
        server.wait()
    facts = machine_facts()
    print(machine_line(facts))
    print(f"GET to loopback in a sampled transaction, {rounds} x {n} requests")
    rows = []
    report: dict[str, Any] = {"machine": facts}
    for client in CLIENTS:
        runs_of = samples[client]
        cpu = {label: median([s["cpu"] for s in runs]) for label, runs in runs_of.items()}
        wall = {label: median([s["wall"] for s in runs]) for label, runs in runs_of.items()}
        base_cpu = cpu["no SDK"] or 0.0
        added = {label: (value or 0.0) - base_cpu for label, value in cpu.items()}
        added_ratio = added["tripwire"] / added["sentry-sdk"] if added["sentry-sdk"] > 0 else None
        rows.extend(
            [
                client,
                label,
                fmt_time(cpu[label]),
                fmt_time(added[label]) if label != "no SDK" else "-",
                fmt_time(wall[label]),
                fmt_ratio(added_ratio) if label == "tripwire" else "",
            ]
            for label, _ in CASES
        )
        report[client] = {"cpu": cpu, "wall": wall, "added_cpu": added, "added_ratio": added_ratio}
    headers = ["client", "case", "CPU/request", "added CPU", "wall/request", "added vs sentry"]
    print(render_table(headers, rows, {2, 3, 4, 5}))
    if args.json:
        write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
