"""Web frameworks: the per-request cost an SDK adds to a trivial endpoint.

Run from the repository root with the dev virtualenv::

    .venv/bin/python bench/web.py                       # every framework, both ways
    .venv/bin/python bench/web.py --framework flask --quick
    .venv/bin/python bench/web.py --way in-process      # or: server
    .venv/bin/python bench/web.py --json web.json

For each framework, SDK (none, tripwire, sentry-sdk) and mode (errors only: no
tracing options; tracing: ``traces_sample_rate=1.0``) a fresh interpreter builds the
app after ``init()`` (default options and integrations, as a user's app has them;
an in-memory transport that serializes every envelope). Two ways to drive it:

* ``in-process``: the child calls the application object itself N times: a WSGI app
  with a prebuilt environ (the response iterated and closed), an ASGI app with a
  scope/receive/send on one event loop. Only the framework and the SDK run: the
  cleanest view of the SDK's share. CPU per request of the calling thread.
* ``server``: the child serves the app on 127.0.0.1 (waitress for WSGI, uvicorn for
  ASGI); the parent sends N GETs over one keep-alive connection. The server
  process's CPU time per request (all its threads: the server's own work too).

An SDK's *added* cost is its CPU per request minus the no-SDK case's; the ratio is
tripwire's added cost over sentry-sdk's (below 1: tripwire is cheaper). Rounds
alternate the SDK order; medians are reported.

A framework is a `Framework` entry in `FRAMEWORKS`: the code that defines ``app``
(run after ``init()``), its kind (``wsgi``/``asgi``), the path to request.
"""

from __future__ import annotations

import argparse
import http.client
import json
import subprocess
import sys
from typing import Any, NamedTuple, Optional

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
    spread_pct,
    write_json,
)


class Framework(NamedTuple):
    """How to build and call one framework's trivial app."""

    kind: str  # "wsgi" or "asgi"
    app_code: str  # defines `app`; runs after the SDK's init()
    path: str = "/hello"


FLASK_APP = """
from flask import Flask
app = Flask("bench")

@app.route("/hello")
def hello():
    return "hello"
"""

DJANGO_APP = """
import django
from django.conf import settings
from django.http import HttpResponse
from django.urls import path

def hello(request):
    return HttpResponse("hello")

urlpatterns = [path("hello", hello)]
settings.configure(
    DEBUG=False, SECRET_KEY="bench", ALLOWED_HOSTS=["*"], ROOT_URLCONF=__name__,
    MIDDLEWARE=[
        "django.middleware.security.SecurityMiddleware",
        "django.middleware.common.CommonMiddleware",
        "django.middleware.clickjacking.XFrameOptionsMiddleware",
    ],
)
django.setup()
from django.core.wsgi import get_wsgi_application
app = get_wsgi_application()
"""

FASTAPI_APP = """
from fastapi import FastAPI
app = FastAPI()

@app.get("/hello")
async def hello():
    return {"hello": "world"}
"""

FRAMEWORKS: dict[str, Framework] = {
    "django": Framework("wsgi", DJANGO_APP),
    "fastapi": Framework("asgi", FASTAPI_APP),
    "flask": Framework("wsgi", FLASK_APP),
}

MODES = {"errors only": {}, "tracing": {"traces_sample_rate": 1.0}}
CASES = [("no SDK", ""), ("tripwire", "tripwire"), ("sentry-sdk", "sentry_sdk")]

SDK_SETUP = """
import json, sys, time
module, options = {module!r}, {options!r}
if module:
    sdk = __import__(module)
    base = __import__(module + ".transport", fromlist=["Transport"]).Transport
    class Memory(base):
        def capture_envelope(self, envelope):
            envelope.serialize()
    sdk.init(dsn={dsn!r}, transport=Memory(), **options)
"""

IN_PROCESS = {
    "wsgi": """
import io
template = {{
    "REQUEST_METHOD": "GET", "SCRIPT_NAME": "", "PATH_INFO": {path!r}, "QUERY_STRING": "",
    "SERVER_NAME": "127.0.0.1", "SERVER_PORT": "8000", "SERVER_PROTOCOL": "HTTP/1.1",
    "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "127.0.0.1:8000", "HTTP_USER_AGENT": "bench",
    "HTTP_ACCEPT": "*/*", "wsgi.version": (1, 0), "wsgi.url_scheme": "http",
    "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": False,
    "wsgi.run_once": False,
}}
statuses = []
def start_response(status, headers, exc_info=None):
    statuses.append(status)
def run(n):
    for _ in range(n):
        environ = dict(template)
        environ["wsgi.input"] = io.BytesIO(b"")
        body = app(environ, start_response)
        for _chunk in body:
            pass
        close = getattr(body, "close", None)
        if close is not None:
            close()
run(200)
assert statuses[-1].startswith("200"), statuses[-1]
c0 = time.thread_time()
run({n})
c1 = time.thread_time()
print(json.dumps({{"cpu": (c1 - c0) / {n}}}))
""",
    "asgi": """
import asyncio
scope = {{
    "type": "http", "asgi": {{"version": "3.0"}}, "http_version": "1.1", "method": "GET",
    "scheme": "http", "path": {path!r}, "raw_path": {path!r}.encode(), "query_string": b"",
    "root_path": "", "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"bench")],
    "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
}}
statuses = []
async def receive():
    return {{"type": "http.request", "body": b"", "more_body": False}}
async def send(message):
    if message["type"] == "http.response.start":
        statuses.append(message["status"])
async def run(n):
    for _ in range(n):
        await app(dict(scope), receive, send)
async def main():
    await run(200)
    assert statuses[-1] == 200, statuses[-1]
    c0 = time.thread_time()
    await run({n})
    c1 = time.thread_time()
    print(json.dumps({{"cpu": (c1 - c0) / {n}}}))
asyncio.run(main())
""",
}

# The server child prints its port, then answers stdin lines: "mark" notes its CPU
# time, "report" prints the CPU used since the mark and exits.
SERVER = {
    "wsgi": """
import logging, threading, waitress
# waitress warns "Task queue depth is 1" when a keep-alive request arrives while its
# worker is still closing the last one: a log record (an SDK breadcrumb) per request.
logging.getLogger("waitress.queue").setLevel(logging.ERROR)
server = waitress.create_server(app, host="127.0.0.1", port=0, threads=1)
threading.Thread(target=server.run, daemon=True).start()
""",
    "asgi": """
import threading, uvicorn
config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="error", access_log=False)
server = uvicorn.Server(config)
threading.Thread(target=server.run, daemon=True).start()
while not server.started:
    time.sleep(0.01)
server.effective_port = server.servers[0].sockets[0].getsockname()[1]
""",
}
SERVER_LOOP = """
print(server.effective_port, flush=True)
mark = time.process_time()
for line in sys.stdin:
    if line.strip() == "mark":
        mark = time.process_time()
        print("ok", flush=True)
    elif line.strip() == "report":
        print(json.dumps({"cpu": time.process_time() - mark}), flush=True)
        break
"""


def child_code(framework: Framework, module: str, options: dict[str, Any], way: str, n: int) -> str:
    setup = SDK_SETUP.format(module=module, options=options, dsn=DSN)
    if way == "in-process":
        return (
            setup + framework.app_code + IN_PROCESS[framework.kind].format(path=framework.path, n=n)
        )
    return setup + framework.app_code + SERVER[framework.kind] + SERVER_LOOP


def run_in_process(framework: Framework, module: str, options: dict[str, Any], n: int) -> float:
    out = subprocess.run(
        [sys.executable, "-c", child_code(framework, module, options, "in-process", n)],
        capture_output=True,
        text=True,
        check=False,
        cwd=BENCH_DIR,
        env=child_env(),
        timeout=600,
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip().splitlines()[-1] if out.stderr else "failed")
    cpu: float = json.loads(out.stdout.strip().splitlines()[-1])["cpu"]
    return cpu


def run_server(framework: Framework, module: str, options: dict[str, Any], n: int) -> float:
    child = subprocess.Popen(
        [sys.executable, "-c", child_code(framework, module, options, "server", n)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=BENCH_DIR,
        env=child_env(),
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        line = child.stdout.readline()
        if not line:
            raise RuntimeError("the server child failed to start (its error is above)")
        port = int(line)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)

        def get(count: int) -> None:
            for _ in range(count):
                conn.request("GET", framework.path)
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    raise RuntimeError(f"status {response.status}")

        get(200)
        child.stdin.write("mark\n")
        child.stdin.flush()
        child.stdout.readline()
        get(n)
        child.stdin.write("report\n")
        child.stdin.flush()
        cpu: float = json.loads(child.stdout.readline())["cpu"] / n
        conn.close()
        return cpu
    finally:
        child.stdin.close()
        try:
            child.wait(10)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()


def _attempt(run: Any, framework: Framework, module: str, options: Any, n: int) -> float:
    """One sample; a child that failed is run again (twice at most) before giving up."""
    for attempt in range(3):
        try:
            sample: float = run(framework, module, options, n)
            return sample
        except (RuntimeError, ValueError, OSError, subprocess.SubprocessError) as exc:
            if attempt == 2:
                raise
            print(f"sample failed ({exc}); running it again", file=sys.stderr)
    raise AssertionError("unreachable")


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--framework", choices=sorted(FRAMEWORKS), action="append")
    parser.add_argument("--way", choices=("in-process", "server"), action="append")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    frameworks = args.framework or sorted(FRAMEWORKS)
    ways = args.way or ["in-process", "server"]
    rounds = args.rounds or (3 if args.quick else 5)
    counts = {"in-process": 2000 if args.quick else 10000, "server": 500 if args.quick else 3000}
    runners = {"in-process": run_in_process, "server": run_server}

    samples: dict[tuple[str, str, str, str], list[float]] = {}
    for round_no in range(rounds):
        order = CASES if round_no % 2 == 0 else list(reversed(CASES))
        for name in frameworks:
            for way in ways:
                for mode, options in MODES.items():
                    for label, module in order:
                        sample = _attempt(
                            runners[way], FRAMEWORKS[name], module, options, counts[way]
                        )
                        samples.setdefault((name, way, mode, label), []).append(sample)

    facts = machine_facts()
    print(machine_line(facts))
    print(f"CPU per request of a trivial endpoint, median of {rounds} rounds")
    rows = []
    report: dict[str, Any] = {"machine": facts, "rounds": rounds, "counts": counts, "rows": []}
    for name in frameworks:
        for way in ways:
            for mode in MODES:
                runs = {label: samples[(name, way, mode, label)] for label, _ in CASES}
                cpu = {label: median(values) or 0.0 for label, values in runs.items()}
                added = {label: cpu[label] - cpu["no SDK"] for label, _ in CASES}
                ratio = added["tripwire"] / added["sentry-sdk"] if added["sentry-sdk"] > 0 else None
                rows.append(
                    [
                        name,
                        way,
                        mode,
                        fmt_time(cpu["no SDK"]),
                        fmt_time(added["tripwire"]),
                        fmt_time(added["sentry-sdk"]),
                        fmt_ratio(ratio),
                        f"{max(spread_pct(v) or 0.0 for v in runs.values()):.0f}%",
                    ]
                )
                report["rows"].append(
                    {
                        "framework": name,
                        "way": way,
                        "mode": mode,
                        "cpu": cpu,
                        "added": added,
                        "ratio": ratio,
                        "samples": runs,
                    }
                )
    headers = ["framework", "way", "mode", "no SDK", "+tripwire", "+sentry-sdk", "ratio", "±"]
    print(render_table(headers, rows, {3, 4, 5, 6, 7}))
    print("±: the largest half-range of the three cases' rounds, as % of their median")
    if args.json:
        write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
