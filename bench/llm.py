"""LLM calls: an OpenAI chat completion and a streamed one, through the real `openai` client.

Run from the repository root with the dev virtualenv::

    .venv/bin/python bench/llm.py            # 5 rounds of 1,000 calls per kind
    .venv/bin/python bench/llm.py --quick    # 3 rounds of 300
    .venv/bin/python bench/llm.py --json llm.json
    .venv/bin/python bench/llm.py --mock     # no server, no socket: steadier numbers

The server is `tests/fakes/llm_server.py` in another process (loopback, HTTP/1.1
keep-alive; a streamed answer is 6 server-sent events, each its own chunked write).
Each case runs in a fresh interpreter: no SDK, tripwire, sentry-sdk, with
`OpenAIIntegration()` only (``auto_enabling_integrations=False``: no httpx spans),
in-memory transport, ``traces_sample_rate=1.0``, default options otherwise (no
prompts sent). Each call is made inside a transaction holding 100 calls, so the
transaction's own cost is spread over them. The child measures its main thread's
CPU time per call (`time.thread_time`; a streamed call is iterated to its last
chunk) and the wall time from `create()` to the first chunk of each stream. An SDK's
added cost is measured inside its child: blocks of 100 calls alternate between the
SDK with `OpenAIIntegration` and the same SDK without it (re-initialised between
blocks, outside the timing), so load from elsewhere on the machine hits both alike;
the difference of their lower quartiles is the integration's cost (span, request and
answer data, stream wrapping; other processes only ever add CPU time, so the least
disturbed blocks show it best). Rounds alternate the three cases; medians over rounds
are reported.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from typing import Any, Optional

from _harness import (
    BENCH_DIR,
    DSN,
    ROOT,
    child_env,
    fmt_ratio,
    fmt_time,
    machine_facts,
    machine_line,
    median,
    render_table,
    write_json,
)

SERVER = ROOT / "tests" / "fakes" / "llm_server.py"

CHILD = """\
import json, statistics, time
import openai
module = {module!r}
kind = {kind!r}
sdk = None
if module:
    sdk = __import__(module)
    base = __import__(module + ".transport", fromlist=["Transport"]).Transport
    integration = __import__(module + ".integrations.openai", fromlist=["x"]).OpenAIIntegration
    class Memory(base):
        def capture_envelope(self, envelope):
            envelope.serialize()
def setup(on):
    if sdk is None:
        return
    sdk.get_client().close()
    sdk.init(dsn={dsn!r}, transport=Memory(), traces_sample_rate=1.0,
             auto_enabling_integrations=False, enable_backpressure_handling=False,
             integrations=[integration()] if on else [])
if {url!r} == "mock":
    # No socket, no server: httpx's MockTransport answers with the fake's bodies, so
    # only the openai client's own work (and the SDK's) is left to measure.
    import sys, httpx
    sys.path.insert(0, {tests!r})
    from fakes import llm_server as fake
    def answer(request):
        body = json.loads(request.content)
        if not body.get("stream"):
            return httpx.Response(200, json=fake.chat_completion(body))
        text = "".join(
            "data: " + (p if isinstance(p, str) else json.dumps(p)) + "\\n\\n"
            for _, p in fake.chat_chunks(body)
        )
        return httpx.Response(200, content=text.encode(),
                              headers={{"content-type": "text/event-stream"}})
    http = httpx.Client(transport=httpx.MockTransport(answer))
    client = openai.OpenAI(api_key="k", base_url="http://fake/v1", max_retries=0,
                           http_client=http)
else:
    client = openai.OpenAI(api_key="k", base_url={url!r} + "/v1", max_retries=0)
messages = [{{"role": "user", "content": "hello"}}]
firsts = {{True: [], False: []}}
def one(on):
    if kind == "chat":
        client.chat.completions.create(model="gpt-4o", messages=messages)
        return
    t0 = time.perf_counter()
    stream = client.chat.completions.create(
        model="gpt-4o", messages=messages, stream=True, stream_options={{"include_usage": True}}
    )
    it = iter(stream)
    next(it)
    firsts[on].append(time.perf_counter() - t0)
    for _ in it:
        pass
def block(on):
    # One transaction of 100 calls (none without an SDK); its main-thread CPU per call.
    c0 = time.thread_time()
    if sdk is None:
        for _ in range(100):
            one(on)
    else:
        with sdk.start_transaction(name="tx", op="bench"):
            for _ in range(100):
                one(on)
    return (time.thread_time() - c0) / 100
cpu = {{True: [], False: []}}
for on in (True, False):
    setup(on)
    block(on)
firsts[True].clear(), firsts[False].clear()
# The integration on and off alternate block by block in this one process, so load
# from elsewhere on the machine hits both alike; off = the SDK without the integration.
for i in range({n} // 100 * 2):
    on = i % 2 == 0 or sdk is None
    setup(on)
    cpu[on].append(block(on))
def med(values):
    return statistics.median(values) if values else None
def low(values):
    # The lower quartile of the blocks: other processes only ever add CPU time
    # (cache and core contention on a shared machine), so the least disturbed blocks
    # show the cost best.
    return statistics.quantiles(values, n=4)[0] if len(values) > 1 else med(values)
print(json.dumps({{"on": low(cpu[True]), "off": low(cpu[False]),
                  "first_on": med(firsts[True]), "first_off": med(firsts[False])}}))
"""

CASES = [("no SDK", ""), ("tripwire", "tripwire"), ("sentry-sdk", "sentry_sdk")]
KINDS = ["chat", "stream"]


def run_case(module: str, kind: str, url: str, n: int) -> dict[str, Any]:
    code = CHILD.format(module=module, kind=kind, dsn=DSN, url=url, n=n, tests=str(ROOT / "tests"))
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=BENCH_DIR,
        env=child_env(),
        timeout=900,
    )
    found: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return found


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument(
        "--mock", action="store_true", help="no server: httpx.MockTransport answers (less noise)"
    )
    args = parser.parse_args(argv)
    rounds, n = (3, 300) if args.quick else (5, 1000)
    server = None
    if not args.mock:
        server = subprocess.Popen(
            [sys.executable, str(SERVER)], stdout=subprocess.PIPE, text=True, cwd=BENCH_DIR
        )
    try:
        url = "mock"
        if server is not None:
            assert server.stdout is not None
            url = server.stdout.readline().strip()
        samples: dict[str, dict[str, list[dict[str, Any]]]] = {
            kind: {label: [] for label, _ in CASES} for kind in KINDS
        }
        for round_no in range(rounds):
            order = CASES if round_no % 2 == 0 else list(reversed(CASES))
            for kind in KINDS:
                for label, module in order:
                    samples[kind][label].append(run_case(module, kind, url, n))
    finally:
        if server is not None:
            server.terminate()
            server.wait()
    facts = machine_facts()
    print(machine_line(facts))
    where = "httpx.MockTransport (no server)" if args.mock else "a loopback fake"
    print(f"openai chat completion to {where}, {rounds} x {n} calls per case")
    rows = []
    report: dict[str, Any] = {"machine": facts}
    for kind in KINDS:
        runs_of = samples[kind]

        def med(label: str, key: str, runs_of: dict[str, list[dict[str, Any]]] = runs_of) -> float:
            return median([r[key] for r in runs_of[label] if r[key] is not None]) or 0.0

        added = {label: med(label, "on") - med(label, "off") for label, _ in CASES[1:]}
        ratio = added["tripwire"] / added["sentry-sdk"] if added["sentry-sdk"] > 0 else None
        for label, _ in CASES:
            first = med(label, "first_on") if kind == "stream" else None
            rows.append(
                [
                    kind,
                    label,
                    fmt_time(med(label, "on")),
                    fmt_time(added[label]) if label in added else "-",
                    fmt_time(first) if first is not None else "-",
                    fmt_ratio(ratio) if label == "tripwire" else "",
                ]
            )
        report[kind] = {
            "cpu_on": {label: med(label, "on") for label, _ in CASES},
            "cpu_off": {label: med(label, "off") for label, _ in CASES[1:]},
            "first_chunk": {label: med(label, "first_on") for label, _ in CASES},
            "added_cpu": added,
            "added_ratio": ratio,
        }
    headers = ["call", "case", "CPU/call", "added CPU", "first chunk", "added vs sentry"]
    print(render_table(headers, rows, {2, 3, 4, 5}))
    if args.json:
        write_json(args.json, report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
