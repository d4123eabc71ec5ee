"""Flame graphs in the local backend, from profiles real SDKs send over loopback HTTP.

tripwire and sentry_sdk 2.75 each run a CPU-bound workload in a transaction in a
fresh interpreter (the profilers are process-wide), once with transaction profiles
(``profile`` items) and once with the continuous profiler (``profile_chunk`` items
linked by profiler id and time); the server's JSON API must then give the
transaction's flame graph naming the functions that ran, in plausible proportions,
and the aggregate of a transaction name over a time range. Chromium renders the
page (frame names from the profile are text, never markup).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("starlette", reason="the server extra is not installed")
pytest.importorskip("uvicorn", reason="the server extra is not installed")
pytest.importorskip("jinja2", reason="the server extra is not installed")

from tripwire.envelope import Envelope
from tripwire.server import flamegraph
from tripwire.server.app import ServerThread

ROOT = Path(__file__).resolve().parent.parent

WORKLOAD = """\
import sys, time, warnings
warnings.simplefilter("ignore")
module, dsn, mode, name = sys.argv[1:5]
sdk = __import__(module)
profiler = __import__(module + ".profiler", fromlist=["start_profiler"])

def flame_hot(n):
    total = 0
    for i in range(n):
        total += i * i
    return total

def flame_cold(n):
    total = 0
    for i in range(n):
        total += i ^ 7
    return total

def flame_outer():
    for _ in range(3):
        flame_hot(20_000)
    flame_cold(20_000)

options = dict(dsn=dsn, traces_sample_rate=1.0)
if mode == "transaction":
    options["profiles_sample_rate"] = 1.0
else:
    options.update(profile_session_sample_rate=1.0, profile_lifecycle="manual")
sdk.init(**options)
if mode != "transaction":
    profiler.start_profiler()
for _ in range(int(sys.argv[5]) if len(sys.argv) > 5 else 1):
    with sdk.start_transaction(name=name, op="task"):
        began = time.perf_counter()
        while time.perf_counter() - began < 0.6:  # enough samples at ~101 Hz
            flame_outer()
if mode != "transaction":
    profiler.stop_profiler()
sdk.flush(10)
"""


def run_workload(
    server: ServerThread, module: str, mode: str, name: str, transactions: int = 1
) -> None:
    key = server.store.default_project()["public_key"]
    dsn = f"http://{key}@127.0.0.1:{server.port}/1"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTRY_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    proc = subprocess.run(
        [sys.executable, "-c", WORKLOAD, module, dsn, mode, name, str(transactions)],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]


def get(server: ServerThread, path: str, status: int = 200) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        data = response.read()
        assert response.status == status, (path, data[:500])
        if response.getheader("content-type", "").startswith("application/json"):
            return json.loads(data)
        return data.decode()
    finally:
        conn.close()


def wait_for(server: ServerThread, sql: str, args: tuple[Any, ...], count: int) -> list[Any]:
    """Rows once `count` of them are stored (the SDK's flush returns once they are sent)."""
    end = time.monotonic() + 30
    while True:
        rows = server.store.connection().execute(sql, args).fetchall()
        if len(rows) >= count or time.monotonic() > end:
            return rows
        time.sleep(0.05)


def transaction_ids(server: ServerThread, name: str, count: int = 1) -> list[str]:
    rows = wait_for(
        server,
        "SELECT event_id FROM transactions WHERE name = ? ORDER BY start_time",
        (name,),
        count,
    )
    assert len(rows) == count
    return [row[0] for row in rows]


def find(node: dict[str, Any], function: str) -> list[dict[str, Any]]:
    """Every node of the tree whose function ends with `function`."""
    found = [node] if node["function"].endswith(function) else []
    for child in node["children"]:
        found.extend(find(child, function))
    return found


def total(node: dict[str, Any], function: str) -> int:
    return sum(n["value"] for n in find(node, function))


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerThread]:
    with ServerThread(db=tmp_path / "flame.db") as s:
        yield s


@pytest.mark.parametrize("module", ["tripwire", "sentry_sdk"])
@pytest.mark.parametrize("mode", ["transaction", "continuous"])
def test_a_profiled_transaction_has_a_flame_graph_of_what_ran(server, module, mode):
    name = f"flame {module} {mode}"
    run_workload(server, module, mode, name)
    (event_id,) = transaction_ids(server, name)
    item = "profile" if mode == "transaction" else "profile_chunk"
    wait_for(server, "SELECT id FROM items WHERE type = ?", (item,), 1)

    graph = get(server, f"/api/0/transactions/{event_id}/flamegraph/")

    assert graph["source"] == item
    assert graph["samples"] >= 2 and not graph["partial"]
    root = graph["root"]
    assert root["value"] == graph["samples"]
    (outer,) = [n for n in find(root, "flame_outer") if n["value"] > 0][:1]
    hot, cold = total(root, "flame_hot"), total(root, "flame_cold")
    # Only the transaction's thread: the workload is most of it, three hot calls per cold.
    assert outer["value"] >= root["value"] / 2
    assert hot > cold > 0
    assert {c["function"].rsplit(".", 1)[-1] for c in outer["children"]} <= {
        "flame_hot",
        "flame_cold",
    }
    # The transaction's page links the flame graph.
    page = get(server, f"/transactions/{event_id}/")
    assert f'href="/transactions/{event_id}/flamegraph/"' in page


def test_aggregate_merges_the_transactions_of_a_name_in_a_range(server):
    run_workload(server, "tripwire", "transaction", "flame agg", transactions=2)
    first, second = transaction_ids(server, "flame agg", 2)
    wait_for(server, "SELECT id FROM items WHERE type = 'profile'", (), 2)
    one = get(server, f"/api/0/transactions/{first}/flamegraph/")["samples"]
    two = get(server, f"/api/0/transactions/{second}/flamegraph/")["samples"]
    now = time.time()

    both = get(server, f"/api/0/flamegraph/?transaction=flame+agg&start={now - 600}&end={now}")
    assert (both["transactions"], both["profiled"], both["samples"]) == (2, 2, one + two)
    assert total(both["root"], "flame_hot") > total(both["root"], "flame_cold") > 0
    # A range without them, and another name, have nothing.
    empty = get(server, f"/api/0/flamegraph/?transaction=flame+agg&end={now - 3600}")
    assert (empty["transactions"], empty["samples"]) == (0, 0)
    assert get(server, "/api/0/flamegraph/?transaction=other")["transactions"] == 0
    get(server, "/api/0/flamegraph/", status=400)

    # The page lists the name, and draws its flame graph.
    assert "flame agg" in get(server, "/flamegraph/")
    page = get(server, "/flamegraph/?transaction=flame+agg&period=1h")
    assert 'id="flamegraph"' in page and "flame_hot" in page


def test_work_is_bounded_by_bytes(server, monkeypatch):
    run_workload(server, "tripwire", "transaction", "flame big", transactions=2)
    first, second = transaction_ids(server, "flame big", 2)
    wait_for(server, "SELECT id FROM items WHERE type = 'profile'", (), 2)
    conn = server.store.connection()
    data = conn.execute("SELECT sum(length(data)) FROM transactions").fetchone()[0]
    sizes = {
        event_id: size
        for event_id, size in conn.execute(
            "SELECT event_id, length(payload) FROM items WHERE type = 'profile'"
        )
    }
    # Room for the transactions and the newest one's profile (read first), not the other.
    monkeypatch.setattr(flamegraph, "MAX_PARSE_BYTES", data + sizes[second])
    graph = get(server, "/api/0/flamegraph/?transaction=flame+big")
    assert graph["partial"] and graph["profiled"] == 1
    # A profile larger than the budget is not read at all.
    monkeypatch.setattr(flamegraph, "MAX_PARSE_BYTES", sizes[first] - 1)
    graph = get(server, f"/api/0/transactions/{first}/flamegraph/")
    assert graph["partial"] and graph["samples"] == 0


SCRIPT = "<script>document.documentElement.setAttribute('data-pwned','1')</script>"
T0 = 1_700_000_000.0


def hand_made_profile(server: ServerThread) -> str:
    """A transaction and its v1 profile whose frame names are markup."""
    event_id = "c" * 32
    env = Envelope(headers={"event_id": event_id})
    env.add_transaction(
        {
            "event_id": event_id,
            "type": "transaction",
            "transaction": "GET /flame",
            "start_timestamp": T0,
            "timestamp": T0 + 1.0,
            "contexts": {"trace": {"trace_id": "d" * 32, "span_id": "1" * 16, "op": "http"}},
        }
    )
    frames = [
        {"function": "main", "module": "app", "filename": "app.py", "in_app": True},
        {"function": f"render{SCRIPT}", "module": "app.views", "filename": "app/views.py"},
        {"function": "query", "module": "db", "filename": "db.py"},
    ]
    stacks = [[1, 0], [2, 0]]  # innermost first
    samples = [
        {"elapsed_since_start_ns": str(i * 10_000_000), "thread_id": "7", "stack_id": i % 4 // 3}
        for i in range(40)
    ]
    samples.append({"elapsed_since_start_ns": "5", "thread_id": "8", "stack_id": 1})  # other thread
    env.add_profile(
        {
            "event_id": "e" * 32,
            "platform": "python",
            "version": "1",
            "profile": {"frames": frames, "stacks": stacks, "samples": samples},
            "transactions": [{"id": event_id, "name": "GET /flame", "active_thread_id": "7"}],
        }
    )
    key = server.store.default_project()["public_key"]
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request(
            "POST",
            "/api/1/envelope/",
            body=env.serialize(),
            headers={"X-Sentry-Auth": f"Sentry sentry_key={key}, sentry_version=7"},
        )
        assert conn.getresponse().status == 200
    finally:
        conn.close()
    return event_id


def test_a_hand_made_profile_counts_the_active_thread_only(server):
    event_id = hand_made_profile(server)
    graph = get(server, f"/api/0/transactions/{event_id}/flamegraph/")
    assert graph["samples"] == 40
    (main,) = graph["root"]["children"]
    assert (main["function"], main["value"]) == ("main", 40)
    values = {c["function"]: c["value"] for c in main["children"]}
    assert values == {f"render{SCRIPT}": 30, "query": 10}
    # Zooming into a frame makes it the full width; its parents stay on top.
    page = get(server, f"/transactions/{event_id}/flamegraph/?focus=0.0")
    assert 'id="flamegraph-reset"' in page
    assert get(server, f"/api/0/transactions/{'0' * 32}/flamegraph/", status=404)


CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None
)


def dump_dom(url: str, profile: Path) -> str:
    assert CHROMIUM is not None
    proc = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-dev-shm-usage",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.mark.skipif(CHROMIUM is None, reason="headless Chromium is not installed")
def test_chromium_draws_the_flame_graph_and_runs_nothing_from_the_profile(server, tmp_path):
    event_id = hand_made_profile(server)
    dom = dump_dom(f"{server.url}/transactions/{event_id}/flamegraph/", tmp_path / "chromium")

    body = dom.split('id="flamegraph"', 1)[1].split("</svg>", 1)[0]
    assert body.count("<rect") == 4  # all, main, render..., query
    assert "main (app) · 40 samples (100.0%), 0 self" in body
    assert "query (db) · 10 samples (25.0%), 10 self" in body
    assert 'id="flamegraph-top"' in dom
    # The markup in a frame name is text: no element made, nothing ran.
    assert "data-pwned" not in dom.split(">", 2)[1]
    assert "render&lt;script&gt;" in dom
    assert dom.count("<script") == 0


def test_a_chunk_sampled_on_one_thread_is_the_transactions_whatever_its_thread_id(server):
    # Under gevent a span's thread id is a greenlet's, the samples' the hub's OS thread.
    event_id, profiler_id = "f" * 32, "1" * 32
    now = time.time()
    env = Envelope(headers={"event_id": event_id})
    env.add_transaction(
        {
            "event_id": event_id,
            "type": "transaction",
            "transaction": "greenlet work",
            "start_timestamp": now - 1.0,
            "timestamp": now,
            "contexts": {
                "trace": {"trace_id": "d" * 32, "span_id": "1" * 16, "data": {"thread.id": "5"}},
                "profile": {"profiler_id": profiler_id},
            },
        }
    )
    chunk = Envelope()
    chunk.add_profile_chunk(
        {
            "chunk_id": "2" * 32,
            "profiler_id": profiler_id,
            "platform": "python",
            "version": "2",
            "profile": {
                "frames": [{"function": "spin", "module": "app"}],
                "stacks": [[0]],
                # Ten samples in the transaction, two before it.
                "samples": [
                    {"timestamp": now - 1.0 + i / 10, "thread_id": "77", "stack_id": 0}
                    for i in range(10)
                ]
                + [{"timestamp": now - 5.0, "thread_id": "77", "stack_id": 0}] * 2,
            },
        }
    )
    key = server.store.default_project()["public_key"]
    for envelope in (env, chunk):
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        try:
            conn.request(
                "POST",
                "/api/1/envelope/",
                body=envelope.serialize(),
                headers={"X-Sentry-Auth": f"Sentry sentry_key={key}, sentry_version=7"},
            )
            assert conn.getresponse().status == 200
        finally:
            conn.close()

    graph = get(server, f"/api/0/transactions/{event_id}/flamegraph/")
    assert (graph["source"], graph["samples"]) == ("profile_chunk", 10)
    assert [c["function"] for c in graph["root"]["children"]] == ["spin"]
