"""Delivery benchmark: events/s delivered to a loopback server, tripwire vs sentry-sdk.

Run from the repository root with the dev virtualenv::

    .venv/bin/python bench/delivery.py            # full run (~2 minutes)
    .venv/bin/python bench/delivery.py --quick    # smoke run (~20 s)
    .venv/bin/python bench/delivery.py --json delivery.json

Each SDK runs in its own fresh interpreter per sample with its real HTTP transport,
sending to a receiver on 127.0.0.1 that runs in a third process. See
bench/README.md for what every number means.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time
from typing import Any, Optional

from _harness import (
    BENCH_DIR,
    SDK_MODULES,
    SENTRY,
    TRIPWIRE,
    add_sdk_option,
    child_env,
    fmt_ratio,
    fmt_time,
    machine_facts,
    machine_line,
    median,
    ratio,
    render_table,
    selected_labels,
    spread_pct,
    write_json,
)

# The receiver stops by itself after this long or this many requests, whatever happens.
SERVER_MAX_SECONDS = 30 * 60
SERVER_MAX_REQUESTS = 2_000_000


# --------------------------------------------------------------------------- receiver


class _Counts:
    def __init__(self) -> None:
        self.requests = 0
        self.events = 0
        self.discarded: dict[str, int] = {}

    def as_dict(self) -> dict[str, Any]:
        return {"requests": self.requests, "events": self.events, "discarded": self.discarded}


def _decode(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        import gzip

        return gzip.decompress(body)
    if encoding == "br":
        import brotli

        return brotli.decompress(body)  # type: ignore[no-any-return]
    return body


def _count_envelope(data: bytes, counts: _Counts) -> None:
    """Count event items and client-report losses in one envelope."""
    pos = data.find(b"\n") + 1
    end = len(data)
    while 0 < pos < end:
        newline = data.find(b"\n", pos)
        if newline < 0:
            return
        header = json.loads(data[pos:newline] or b"{}")
        pos = newline + 1
        length = header.get("length")
        if length is None:
            stop = data.find(b"\n", pos)
            stop = end if stop < 0 else stop
        else:
            stop = pos + int(length)
        payload = data[pos:stop]
        pos = stop + 1
        kind = header.get("type")
        if kind == "event":
            counts.events += 1
        elif kind == "client_report":
            for d in json.loads(payload).get("discarded_events", ()):
                key = f"{d['reason']}/{d['category']}"
                counts.discarded[key] = counts.discarded.get(key, 0) + int(d["quantity"])


async def _serve() -> None:
    counts = _Counts()
    # Bodies are kept and counted when the counts are asked for, outside the timed
    # part of a sample: answering fast is what a real server (Relay) does, and the
    # receiver's own speed should not be what the benchmark measures.
    pending: list[tuple[bytes, str]] = []
    loop = asyncio.get_running_loop()

    def count_pending() -> None:
        for body, encoding in pending:
            try:
                _count_envelope(_decode(body, encoding), counts)
            except Exception as exc:  # count what we can; never stop serving
                print(f"receiver: bad envelope: {exc}", file=sys.stderr)
        pending.clear()

    class Protocol(asyncio.Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport
            self.buffer = b""

        def data_received(self, data: bytes) -> None:
            self.buffer += data
            while True:
                head_end = self.buffer.find(b"\r\n\r\n")
                if head_end < 0:
                    return
                length, encoding = 0, ""
                for line in self.buffer[:head_end].split(b"\r\n")[1:]:
                    name, _, value = line.partition(b":")
                    name = name.strip().lower()
                    if name == b"content-length":
                        length = int(value)
                    elif name == b"content-encoding":
                        encoding = value.strip().decode()
                if len(self.buffer) < head_end + 4 + length:
                    return
                body = self.buffer[head_end + 4 : head_end + 4 + length]
                self.buffer = self.buffer[head_end + 4 + length :]
                counts.requests += 1
                pending.append((body, encoding))
                self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                if counts.requests >= SERVER_MAX_REQUESTS:
                    os._exit(0)

    server = await loop.create_server(Protocol, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    loop.call_later(SERVER_MAX_SECONDS, os._exit, 0)
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = await reader.readline()
        if not line:  # the parent went away
            os._exit(0)
        count_pending()
        print(json.dumps(counts.as_dict()), flush=True)


class Receiver:
    """The receiver process, queried over its stdin/stdout."""

    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self.proc.stdout is not None
        self.port = int(self.proc.stdout.readline())

    def stats(self) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write("\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())  # type: ignore[no-any-return]

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(10)


# --------------------------------------------------------------------------- workloads

BREADCRUMBS = 100
EXC_DEPTH = 10


# Per-capture latency of the burst: the quantiles reported.
LATENCY_QUANTILES = {"p50": 0.5, "p99": 0.99, "p99.9": 0.999, "max": 1.0}


def _quantile(ordered: list[int], q: float) -> float:
    """The `q` quantile of sorted values (nearest rank)."""
    return float(ordered[min(int(q * len(ordered)), len(ordered) - 1)])


def _child(sdk_label: str, scenario: str, port: int, n: int) -> None:
    """Run one workload in this fresh interpreter and print its timings as JSON."""
    import importlib

    sdk: Any = importlib.import_module(SDK_MODULES[sdk_label][0])
    options: dict[str, Any] = {"dsn": f"http://bench@127.0.0.1:{port}/1"}
    if scenario != "burst":
        # Throughput: a queue that never overflows, so every event has to be delivered.
        options["transport_queue_size"] = 1_000_000
    sdk.init(**options)
    if scenario == "exception":
        sdk.set_tag("bench.tag", "value")
        sdk.set_user({"id": "42", "email": "jane@example.com"})
        for _ in range(BREADCRUMBS):
            sdk.add_breadcrumb(category="bench", message="step", level="info")

    def recurse(depth: int) -> None:
        if depth == 0:
            raise ValueError("bench")
        recurse(depth - 1)

    def capture_exception() -> None:
        try:
            recurse(EXC_DEPTH)
        except ValueError:
            sdk.capture_exception()

    capture = capture_exception if scenario == "exception" else lambda: sdk.capture_message("bench")
    latencies: list[int] = []
    started = time.perf_counter()
    if scenario == "burst":
        # Each capture timed on its own (~0.1 us of clock reads added): the tail, not
        # only the mean, is what an overloaded application feels.
        clock = time.perf_counter_ns
        record = latencies.append
        for _ in range(n):
            t0 = clock()
            capture()
            record(clock() - t0)
    else:
        for _ in range(n):
            capture()
    captured = time.perf_counter()
    sdk.flush(timeout=120)
    flushed = time.perf_counter()
    result: dict[str, Any] = {"capture": captured - started, "total": flushed - started}
    if latencies:
        latencies.sort()
        result["latency"] = {
            name: _quantile(latencies, q) / 1e9 for name, q in LATENCY_QUANTILES.items()
        }
    print("RESULT " + json.dumps(result), flush=True)
    if scenario == "burst":
        # The parent reads the receiver's counts now, then lets us flush once more.
        sys.stdin.readline()
        sdk.flush(timeout=30)
        print("FLUSHED2", flush=True)


def run_sample(receiver: Receiver, sdk: str, scenario: str, n: int) -> dict[str, Any]:
    """One child run; returns its timings and the receiver's counts for it."""
    before = receiver.stats()
    proc = subprocess.Popen(
        [sys.executable, __file__, "--child", sdk, scenario, str(receiver.port), str(n)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=child_env(),
        cwd=str(BENCH_DIR),
    )
    assert proc.stdout is not None and proc.stdin is not None
    result: Optional[dict[str, Any]] = None
    for line in proc.stdout:
        if line.startswith("RESULT "):
            result = json.loads(line[len("RESULT ") :])
            break
    if result is None:
        _, err = proc.communicate(timeout=120)
        raise RuntimeError((err.strip().splitlines() or ["child failed"])[-1][:120])
    first = receiver.stats()
    if scenario == "burst":
        proc.stdin.write("go\n")
        proc.stdin.flush()
        for line in proc.stdout:
            if line.startswith("FLUSHED2"):
                break
    proc.communicate(timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"child exited with {proc.returncode}")
    second = receiver.stats()
    result["delivered"] = first["events"] - before["events"]
    result["reported_first"] = _delta(first["discarded"], before["discarded"])
    result["reported_second"] = _delta(second["discarded"], before["discarded"])
    result["n"] = n
    return result


def _delta(now: dict[str, int], then: dict[str, int]) -> int:
    return sum(now.values()) - sum(then.values())


# --------------------------------------------------------------------------- report


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="one round, smaller workloads")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument(
        "--scenario",
        choices=("all", "message", "exception", "burst"),
        default="all",
        help="run one workload only",
    )
    parser.add_argument("--rounds", type=int, help="rounds (default 3, 1 with --quick)")
    add_sdk_option(parser)
    args = parser.parse_args(argv)
    rounds = args.rounds or (1 if args.quick else 3)
    sizes = (
        {"message": 1000, "exception": 300, "burst": 20_000}
        if args.quick
        else {"message": 5000, "exception": 1500, "burst": 20_000}
    )
    if args.scenario != "all":
        sizes = {args.scenario: sizes[args.scenario]}
    labels = selected_labels(args.sdk)
    facts = machine_facts()
    print("tripwire vs sentry-sdk: delivery to a loopback HTTP server")
    print(machine_line(facts))
    print(f"{rounds} round(s), SDK order alternating; each sample is a fresh interpreter")
    print()

    receiver = Receiver()
    samples: dict[tuple[str, str], list[dict[str, Any]]] = {}
    errors: dict[tuple[str, str], str] = {}
    started = time.perf_counter()
    try:
        for rnd in range(rounds):
            for scenario, n in sizes.items():
                order = labels if rnd % 2 == 0 else list(reversed(labels))
                for sdk in order:
                    key = (sdk, scenario)
                    if key in errors:
                        continue
                    try:
                        samples.setdefault(key, []).append(run_sample(receiver, sdk, scenario, n))
                    except Exception as exc:
                        errors[key] = str(exc)
    finally:
        receiver.close()

    def values(sdk: str, scenario: str, fn: Any) -> list[float]:
        return [fn(s) for s in samples.get((sdk, scenario), [])]

    def med(sdk: str, scenario: str, fn: Any) -> Optional[float]:
        return median(values(sdk, scenario, fn))

    rows: list[list[str]] = []
    data: dict[str, Any] = {"facts": facts, "sizes": sizes, "rounds": rounds, "rows": []}

    def add(name: str, scenario: str, fn: Any, fmt: Any, higher_is_better: Optional[bool]) -> None:
        """One row; `higher_is_better` None: no ratio (counts whose ratio means nothing)."""
        if scenario not in sizes:
            return
        s, t = med(SENTRY, scenario, fn), med(TRIPWIRE, scenario, fn)
        r = ratio(t, s) if higher_is_better is not None else None
        spread = [spread_pct(values(sdk, scenario, fn)) for sdk in (SENTRY, TRIPWIRE)]
        noise = max((p for p in spread if p is not None), default=None)
        rows.append(
            [
                name,
                _cell(SENTRY, scenario, s, fmt, errors),
                _cell(TRIPWIRE, scenario, t, fmt, errors),
                fmt_ratio(r) + (" (higher is better)" if higher_is_better and r else ""),
                "" if noise is None else f"±{noise:.0f}%",
            ]
        )
        data["rows"].append({"name": name, "sentry": s, "tripwire": t, "ratio": r})

    def rate(s: dict[str, Any]) -> float:
        return float(s["delivered"]) / float(s["total"])

    def per_capture(s: dict[str, Any]) -> float:
        return float(s["capture"]) / float(s["n"])

    def count(field: str) -> Any:
        return lambda s: float(s[field])

    def lost(s: dict[str, Any]) -> float:
        return float(s["n"] - s["delivered"])

    def latency(name: str) -> Any:
        return lambda s: float(s["latency"][name])

    fmt_rate = lambda v: "-" if v is None else f"{v:,.0f}/s"  # noqa: E731
    fmt_count = lambda v: "-" if v is None else f"{v:,.0f}"  # noqa: E731
    burst = sizes.get("burst", 20_000)
    add("capture_message: events/s delivered", "message", rate, fmt_rate, True)
    add("capture_message: calling-thread time/capture", "message", per_capture, fmt_time, False)
    add(
        f"capture_exception ({BREADCRUMBS} crumbs): events/s delivered",
        "exception",
        rate,
        fmt_rate,
        True,
    )
    add("capture_exception: calling-thread time/capture", "exception", per_capture, fmt_time, False)
    add(f"burst of {burst:,} (defaults): delivered", "burst", count("delivered"), fmt_count, True)
    add(f"burst of {burst:,}: lost", "burst", lost, fmt_count, None)
    add("burst: losses reported after 1st flush", "burst", count("reported_first"), fmt_count, None)
    add(
        "burst: losses reported after 2nd flush", "burst", count("reported_second"), fmt_count, None
    )
    add("burst: calling-thread time/capture", "burst", per_capture, fmt_time, False)
    for name in LATENCY_QUANTILES:
        add(f"burst: one capture, {name}", "burst", latency(name), fmt_time, False)

    print(render_table(["", SENTRY, TRIPWIRE, "tripwire/sentry", "noise"], rows, {1, 2, 3, 4}))
    for (sdk, scenario), message in errors.items():
        print(f"error: {sdk} {scenario}: {message}")
    print()
    print(f"total run time {time.perf_counter() - started:.0f} s")
    if args.json:
        data["samples"] = {f"{k[0]}/{k[1]}": v for k, v in samples.items()}
        data["errors"] = {f"{k[0]}/{k[1]}": v for k, v in errors.items()}
        write_json(args.json, data)
    return 0


def _cell(sdk: str, scenario: str, value: Optional[float], fmt: Any, errors: dict[Any, str]) -> str:
    if (sdk, scenario) in errors:
        return "error"
    return str(fmt(value))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--serve":
        asyncio.run(_serve())
    elif len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]))
    else:
        sys.exit(main())
