"""The async and HTTP/2 transports: errors captured in sampled transactions, and sent.

Run from the repository root with the dev virtualenv::

    .venv/bin/python bench/async_transport.py            # 7 rounds, both transports
    .venv/bin/python bench/async_transport.py --quick    # 3 rounds
    .venv/bin/python bench/async_transport.py --transport http2 --json h2.json

``--transport async`` (the default includes it):

Each case runs in a fresh interpreter: no SDK, tripwire, sentry-sdk, each with
``_experiments={"transport_async": True}``, ``AsyncioIntegration()``,
``traces_sample_rate=1.0`` and ``transport_queue_size=10000``, initialised inside
the running loop (as both SDKs require), sending to a real HTTP/1.1 server on
127.0.0.1 (a separate process, started and stopped by this script, so its CPU is
not counted). One operation: a transaction in which a ValueError is raised, caught
and captured, then ``await asyncio.sleep(0)``; 1,000 of them, then
``flush_async()``, so both envelopes of every operation (the error and the
transaction) are encoded and POSTed on the loop's thread within the measurement.
The child measures its main thread's CPU time (`time.thread_time`: the loop, where
both SDKs send); an SDK's added cost per operation is the difference to the no-SDK
case. 100 warm-up operations run first. Rounds alternate the three cases; medians
are reported. The server counts the requests, to check every envelope arrived.

``--transport http2``: the same operations in a plain (sync) program with
``_experiments={"transport_http2": True}``, sent over HTTP/2 (TLS, ALPN) to
hypercorn on 127.0.0.1 (another process; certificate made with the ``openssl``
command); the child's whole process CPU (`time.process_time`: the calling thread
and the SDK's worker thread) up to ``flush()`` returning.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
from typing import Any, Optional

from _harness import (
    BENCH_DIR,
    child_env,
    fmt_ratio,
    fmt_time,
    machine_facts,
    machine_line,
    median,
    render_table,
    spread_pct,
    write_json,
)

SERVER = """\
import sys, threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

count = 0
lock = threading.Lock()

class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self):
        global count
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with lock:
            count += 1
        self._answer(b"{}")

    def do_GET(self):
        with lock:
            self._answer(str(count).encode())

    def _answer(self, body):
        # One write: a head and a body sent apart would wait on the client's delayed ACK.
        head = f"HTTP/1.1 200 OK\\r\\nContent-Length: {len(body)}\\r\\n\\r\\n".encode()
        self.wfile.write(head + body)

    def log_message(self, *args):
        pass

server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
print(server.server_address[1], flush=True)
threading.Thread(target=server.serve_forever, daemon=True).start()
sys.stdin.read()  # until the parent closes it
"""

CHILD = """\
import asyncio, json, time, urllib.request
module = {module!r}
port = {port}
sdk = None

async def op():
    with sdk.start_transaction(name="op", op="bench"):
        try:
            raise ValueError("boom")
        except ValueError:
            sdk.capture_exception()
    await asyncio.sleep(0)

async def bare():
    try:
        raise ValueError("boom")
    except ValueError:
        pass
    await asyncio.sleep(0)

async def run(n):
    step = op if sdk else bare
    for _ in range(n):
        await step()
    if sdk:
        await sdk.get_client().flush_async(60)

def received():
    with urllib.request.urlopen(f"http://127.0.0.1:{{port}}/") as answer:
        return int(answer.read())

async def main():
    global sdk
    if module:
        sdk = __import__(module)
        aio = __import__(module + ".integrations.asyncio", fromlist=["x"]).AsyncioIntegration
        sdk.init(
            dsn=f"http://public@127.0.0.1:{{port}}/1",
            traces_sample_rate=1.0,
            integrations=[aio()],
            transport_queue_size=10000,
            _experiments={{"transport_async": True}},
        )
        kind = type(sdk.get_client().transport).__name__
        assert kind == "AsyncHttpTransport", kind
    await run(100)
    before = received()
    c0 = time.thread_time()
    await run({n})
    c1 = time.thread_time()
    sent = received() - before
    if sdk:
        await sdk.get_client().close_async()
    print(json.dumps({{"cpu": c1 - c0, "requests": sent}}))

asyncio.run(main())
"""

H2_SERVER = """\
import asyncio, sys
from hypercorn.asyncio import serve
from hypercorn.config import Config

count = 0

async def app(scope, receive, send):
    global count
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    while (await receive()).get("more_body"):
        pass
    if scope["method"] == "POST":
        count += 1
    body = str(count).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})

async def main():
    config = Config()
    config.certfile, config.keyfile = sys.argv[2], sys.argv[3]
    config.bind = [f"fd://{sys.argv[1]}"]
    config.errorlog = config.accesslog = None
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    loop.add_reader(sys.stdin.fileno(), stop.set)  # the parent closed stdin
    print("ready", flush=True)
    await serve(app, config, shutdown_trigger=stop.wait)

asyncio.run(main())
"""

H2_CHILD = """\
import json, ssl, time, urllib.request
module = {module!r}
port = {port}
cert = {cert!r}
sdk = None

def op():
    with sdk.start_transaction(name="op", op="bench"):
        try:
            raise ValueError("boom")
        except ValueError:
            sdk.capture_exception()

def bare():
    try:
        raise ValueError("boom")
    except ValueError:
        pass

def run(n):
    step = op if sdk else bare
    for _ in range(n):
        step()
    if sdk:
        sdk.flush(60)

def received():
    context = ssl.create_default_context(cafile=cert)
    with urllib.request.urlopen(f"https://127.0.0.1:{{port}}/", context=context) as answer:
        return int(answer.read())

if module:
    sdk = __import__(module)
    sdk.init(
        dsn=f"https://public@127.0.0.1:{{port}}/1",
        ca_certs=cert,
        traces_sample_rate=1.0,
        transport_queue_size=10000,
        _experiments={{"transport_http2": True}},
    )
    kind = type(sdk.get_client().transport).__name__
    assert kind == "Http2Transport", kind
run(100)
before = received()
c0 = time.process_time()
run({n})
c1 = time.process_time()
sent = received() - before
print(json.dumps({{"cpu": c1 - c0, "requests": sent}}))
"""

CASES = [("no SDK", ""), ("tripwire", "tripwire"), ("sentry-sdk", "sentry_sdk")]
OPS = 1_000


def run_case(module: str, port: int, cert: Optional[str] = None) -> dict[str, float]:
    if cert is None:
        code = CHILD.format(module=module, port=port, n=OPS)
    else:
        code = H2_CHILD.format(module=module, port=port, n=OPS, cert=cert)
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=BENCH_DIR,
        env=child_env(),
        timeout=600,
    )
    found: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    # The error and the transaction of every operation (client reports may add some).
    # tripwire must deliver all; sentry-sdk sometimes loses one or two (not checked).
    if module == "tripwire" and found["requests"] < 2 * OPS:
        raise SystemExit(f"{module}: {found['requests']} requests arrived, expected {2 * OPS}")
    return found


def measure(rounds: int, port: int, cert: Optional[str]) -> dict[str, list[dict[str, float]]]:
    """Rounds alternating the three cases against the server on `port`."""
    samples: dict[str, list[dict[str, float]]] = {label: [] for label, _ in CASES}
    for round_no in range(rounds):
        order = CASES if round_no % 2 == 0 else list(reversed(CASES))
        for label, module in order:
            samples[label].append(run_case(module, port, cert))
    return samples


def measure_async(rounds: int) -> dict[str, list[dict[str, float]]]:
    server = subprocess.Popen(
        [sys.executable, "-c", SERVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        return measure(rounds, int(server.stdout.readline()), None)
    finally:
        assert server.stdin is not None
        server.stdin.close()
        server.wait(30)


def measure_http2(rounds: int) -> dict[str, list[dict[str, float]]]:
    with tempfile.TemporaryDirectory(prefix="tripwire-bench-") as tmp:
        cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
        openssl = [
            *("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"),
            *("-nodes", "-keyout", key, "-out", cert, "-days", "1", "-subj", "/CN=localhost"),
            *("-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"),
        ]
        subprocess.run(
            openssl,
            check=True,
            capture_output=True,
        )
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        port = listener.getsockname()[1]
        fd = listener.fileno()
        server = subprocess.Popen(
            [sys.executable, "-c", H2_SERVER, str(fd), cert, key],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # hypercorn's shutdown noise
            text=True,
            pass_fds=(fd,),
        )
        try:
            assert server.stdout is not None
            assert server.stdout.readline().strip() == "ready"
            return measure(rounds, port, cert)
        finally:
            assert server.stdin is not None
            server.stdin.close()
            server.wait(30)
            listener.close()


def report(title: str, samples: dict[str, list[dict[str, float]]]) -> dict[str, Any]:
    print(title)
    cpu = {label: median([s["cpu"] for s in runs]) or 0.0 for label, runs in samples.items()}
    noise = {label: spread_pct([s["cpu"] for s in runs]) for label, runs in samples.items()}
    added = {label: value - cpu["no SDK"] for label, value in cpu.items()}
    added_ratio = added["tripwire"] / added["sentry-sdk"] if added["sentry-sdk"] > 0 else None
    rows = [
        [
            label,
            fmt_time(cpu[label]),
            "-" if noise[label] is None else f"{noise[label]:.0f}%",
            fmt_time(added[label]) if label != "no SDK" else "-",
            fmt_time(added[label] / OPS) if label != "no SDK" else "-",
            fmt_ratio(added_ratio) if label == "tripwire" else "",
        ]
        for label, _ in CASES
    ]
    headers = ["case", "CPU", "±", "added CPU", "added/op", "added vs sentry"]
    print(render_table(headers, rows, {1, 2, 3, 4, 5}))
    return {"cpu": cpu, "added_cpu": added, "added_ratio": added_ratio, "samples": samples}


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--transport", choices=("both", "async", "http2"), default="both")
    args = parser.parse_args(argv)
    rounds = 3 if args.quick else 7
    results: dict[str, dict[str, list[dict[str, float]]]] = {}
    if args.transport in ("both", "async"):
        results["async"] = measure_async(rounds)
    if args.transport in ("both", "http2"):
        results["http2"] = measure_http2(rounds)
    facts = machine_facts()
    print(machine_line(facts))
    titles = {
        "async": "async transport (event loop's thread CPU)",
        "http2": "HTTP/2 transport (process CPU)",
    }
    out: dict[str, Any] = {"machine": facts, "ops": OPS, "rounds": rounds}
    for name, samples in results.items():
        out[name] = report(
            f"{OPS:,} captured errors in sampled transactions, {titles[name]}, {rounds} rounds",
            samples,
        )
    if args.json:
        write_json(args.json, out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
