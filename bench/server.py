"""Server benchmark: requests/s that ``tripwire server`` answers over keep-alive connections.

Run from the repository root with the dev virtualenv::

    .venv/bin/python bench/server.py            # full run (~20 s)
    .venv/bin/python bench/server.py --quick    # smoke run (~5 s)
    .venv/bin/python bench/server.py --json server.json

The server runs as ``python -m tripwire.cli server`` in its own process on
127.0.0.1 (a fresh database in a temporary folder); this process is the client. To
measure another tree (an older commit, say), put it first on ``PYTHONPATH``: the
server child imports whatever ``tripwire`` comes first. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import re
import subprocess
import sys
import tempfile
import time
from typing import Any, Optional

from _harness import (
    BENCH_DIR,
    child_env,
    fmt_time,
    machine_facts,
    machine_line,
    median,
    render_table,
    spread_pct,
    write_json,
)

# (row label, connections)
SCENARIOS = [("1 keep-alive connection", 1), ("8 keep-alive connections", 8)]

# An error event as an SDK sends it (about 1.3 KB); the event id is unique per request,
# so that every request is stored (a duplicate takes a shorter path).
EVENT = (
    b'{"event_id":"%s","sent_at":"2024-01-01T00:00:00.000Z"}\n'
    b'{"type":"event","content_type":"application/json"}\n'
    b'{"event_id":"%s","timestamp":"2024-01-01T00:00:00.000Z","level":"error",'
    b'"platform":"python","release":"bench@1.0","environment":"bench",'
    b'"exception":{"values":[{"type":"ValueError","value":"bench failure",'
    b'"mechanism":{"type":"generic","handled":true},"stacktrace":{"frames":['
    b'{"filename":"app/views.py","function":"checkout","module":"app.views","lineno":42,'
    b'"in_app":true,"context_line":"    total += prices[item]",'
    b'"pre_context":["def checkout(cart):","    total = 0","    for item in cart:"],'
    b'"post_context":["    return total"],"vars":{"cart":"[\'apple\', \'pear\']","total":"3"}},'
    b'{"filename":"app/pricing.py","function":"price","module":"app.pricing","lineno":7,'
    b'"in_app":true,"context_line":"    raise ValueError(\'bench failure\')"}]}}]},'
    b'"tags":{"region":"eu"},"user":{"id":"42"},'
    b'"contexts":{"trace":{"trace_id":"%s","span_id":"0123456789abcdef"}},'
    b'"sdk":{"name":"sentry.python","version":"2.0.0"}}\n'
)


def _start_server(folder: str) -> tuple[subprocess.Popen[str], int, str]:
    """``tripwire server`` on a free port: (process, port, public key)."""
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tripwire.cli",
            "server",
            "--port",
            "0",
            "--db",
            os.path.join(folder, "bench.db"),
        ],
        cwd=str(BENCH_DIR),
        env=child_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    port = key = None
    deadline = time.monotonic() + 60
    while (port is None or key is None) and time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        found = re.search(r"DSN:\s+https?://([0-9a-f]+)@[^:]+:(\d+)/", line)
        if found:
            key, port = found.group(1), int(found.group(2))
    if port is None or key is None:
        proc.kill()
        proc.wait()
        raise RuntimeError("tripwire server did not start (is the server extra installed?)")
    return proc, port, key


def _request(port: int, key: str, n: int) -> bytes:
    event_id = b"%032x" % n
    body = EVENT % (event_id, event_id, event_id)
    head = (
        f"POST /api/1/envelope/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"X-Sentry-Auth: Sentry sentry_key={key}, sentry_version=7, "
        f"sentry_client=bench/1.0\r\nContent-Type: application/x-sentry-envelope\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


class _Counter:
    def __init__(self, start: int) -> None:
        self.next = start

    def take(self) -> int:
        self.next += 1
        return self.next


async def _connection(
    port: int, key: str, counter: _Counter, until: float, latencies: list[float]
) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    done = 0
    try:
        while time.perf_counter() < until:
            data = _request(port, key, counter.take())
            started = time.perf_counter()
            writer.write(data)
            head = await reader.readuntil(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = re.search(rb"(?i)content-length:\s*(\d+)", head)
            if length is None:
                raise RuntimeError("answer without Content-Length: not kept alive")
            await reader.readexactly(int(length.group(1)))
            latencies.append(time.perf_counter() - started)
            if status != 200:
                raise RuntimeError(f"the server answered {status}")
            done += 1
    finally:
        writer.close()
    return done


async def _sample(
    port: int, key: str, connections: int, seconds: float, counter: _Counter
) -> tuple[float, list[float]]:
    latencies: list[float] = []
    started = time.perf_counter()
    until = started + seconds
    counts = await asyncio.gather(
        *(_connection(port, key, counter, until, latencies) for _ in range(connections))
    )
    elapsed = time.perf_counter() - started
    return sum(counts) / elapsed, latencies


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="1 round of 1 s per row")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    rounds, seconds = (1, 1.0) if args.quick else (3, 3.0)

    facts = machine_facts()
    print("tripwire server: requests/s over keep-alive connections (POST of one event)")
    print(machine_line(facts))
    results: dict[str, Any] = {"machine": facts, "rounds": rounds, "seconds": seconds, "rows": {}}
    with tempfile.TemporaryDirectory(prefix="tripwire-bench-") as folder:
        proc, port, key = _start_server(folder)
        try:
            # The tree the child imports (the same sys.path rules apply here).
            served = importlib.import_module("tripwire.server")
            print(f"server: {os.path.dirname(str(served.__file__))} on 127.0.0.1:{port}")
            counter = _Counter(0)
            asyncio.run(_sample(port, key, 1, 0.3, counter))  # warm-up
            per_row: dict[str, list[tuple[float, list[float]]]] = {
                label: [] for label, _ in SCENARIOS
            }
            for _ in range(rounds):
                for label, connections in SCENARIOS:
                    per_row[label].append(
                        asyncio.run(_sample(port, key, connections, seconds, counter))
                    )
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    print(f"{rounds} round(s) of {seconds:g} s per row")
    print()
    rows = []
    for label, _connections in SCENARIOS:
        rates = [rate for rate, _ in per_row[label]]
        latency = median([median(lat) or 0.0 for _, lat in per_row[label]])
        rate = median(rates)
        spread = spread_pct(rates)
        rows.append(
            [
                label,
                f"{rate:,.0f}" if rate is not None else "-",
                f"{spread:.0f}%" if spread is not None else "-",
                fmt_time(latency),
            ]
        )
        results["rows"][label] = {
            "requests_per_second": rate,
            "per_round": rates,
            "median_latency": latency,
        }
    print(render_table(["row", "requests/s", "±", "median latency"], rows, right={1, 2, 3}))
    if args.json:
        write_json(args.json, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
