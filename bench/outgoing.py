"""Outgoing HTTP: an `http.client` and an httpx GET to a loopback server in a sampled transaction.

Run from the repository root with the dev virtualenv::

    .venv/bin/python bench/outgoing.py            # 5 rounds of 2,000 requests
    .venv/bin/python bench/outgoing.py --quick    # 3 rounds of 500
    .venv/bin/python bench/outgoing.py --json outgoing.json

Both SDKs patch `http.client` for the whole process, so each case runs in a fresh
interpreter: no SDK, tripwire, sentry-sdk (default integrations, plus the httpx
integration for the httpx rows; in-memory transport, ``traces_sample_rate=1.0``). The
server is another process (HTTP/1.1 keep-alive, empty 200 answers); the client
(`http.client.HTTPConnection`, or one `httpx.Client`) reuses one connection. Each
request is made inside a transaction (a span, a breadcrumb and the trace headers per
request); a transaction holds 100 requests, so its own cost is spread over them. The
child measures its main thread's CPU time per request (`time.thread_time`): an SDK's
added cost is the difference to the no-SDK case. Rounds alternate the three cases;
medians are reported.
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

SERVER = """\
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *a):
        pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
print(srv.server_address[1], flush=True)
srv.serve_forever()
"""

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
    extra = []
    if client == "httpx":
        extra.append(__import__(module + ".integrations.httpx", fromlist=["x"]).HttpxIntegration())
    sdk.init(dsn={dsn!r}, transport=Memory(), traces_sample_rate=1.0, integrations=extra)
if client == "httpx":
    import httpx
    session = httpx.Client(base_url="http://127.0.0.1:{port}")
    def one():
        session.get("/path?q=1").read()
else:
    conn = http.client.HTTPConnection("127.0.0.1", {port})
    def one():
        conn.request("GET", "/path?q=1")
        conn.getresponse().read()
def run(n):
    for _ in range(n // 100):
        if sdk is None:
            for _ in range(100):
                one()
        else:
            with sdk.start_transaction(name="tx", op="bench"):
                for _ in range(100):
                    one()
run(100)
t0, c0 = time.perf_counter(), time.thread_time()
run({n})
c1, t1 = time.thread_time(), time.perf_counter()
print(json.dumps({{"cpu": (c1 - c0) / {n}, "wall": (t1 - t0) / {n}}}))
"""

CASES = [("no SDK", ""), ("tripwire", "tripwire"), ("sentry-sdk", "sentry_sdk")]
CLIENTS = ["http.client", "httpx"]


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
        report[client] = {
            "cpu": cpu,
            "wall": wall,
            "added_cpu": added,
            "added_ratio": added_ratio,
        }
    headers = ["client", "case", "CPU/request", "added CPU", "wall/request", "added vs sentry"]
    print(render_table(headers, rows, {2, 3, 4, 5}))
    if args.json:
        write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
