"""Ray integration: a real local Ray cluster, tasks run in Ray's worker processes.

One script runs on sentry_sdk 2.75 and on tripwire (one interpreter and one
``ray.init(num_cpus=1)`` each): inside a driver transaction it runs a task that
succeeds and one that raises. The workers initialise the same SDK through Ray's
``worker_process_setup_hook``; driver and workers send over HTTP to one receiver on
127.0.0.1, and each run is told apart by its release. Both SDKs must send the same
transactions, spans and events, and the workers' transactions must continue the
driver's trace. Every Ray process the test started is gone afterwards.
"""

from __future__ import annotations

import inspect
import json
import logging
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _lazy import lazy
from _owned_processes import scratch_folder
from _receiver import Receiver
from _side_by_side import dumps, event_shape, run_each

import tripwire
from tripwire.integrations.ray import RayIntegration
from tripwire.testing import reset

# Importing ray replaces logging's record factory for the whole process (every record
# then carries a `_ray_timestamp_ns`): imported by the test that uses it, not when
# every xdist worker collects this module, and the factory is put back afterwards.
ray = lazy("ray")


@pytest.fixture(autouse=True, scope="module")
def _logging_as_it_was() -> Iterator[None]:
    factory = logging.getLogRecordFactory()
    yield
    logging.setLogRecordFactory(factory)


SCRIPT = """
import os

import ray
from sentry_sdk.integrations.ray import RayIntegration

DSN = os.environ["TRIPWIRE_TEST_DSN"]
SDK = sys.argv[1]
OPTIONS = dict(
    dsn=DSN, integrations=[RayIntegration()], traces_sample_rate=1.0, release=SDK
)


def setup_worker():
    if SDK == "tripwire":
        import tripwire.alias

        tripwire.alias.install()
    import sentry_sdk

    sentry_sdk.init(environment="worker", **OPTIONS)


plain_remote = ray.remote  # before init(): a task the integration does not wrap
sentry_sdk.init(environment="driver", **OPTIONS)
ray.init(
    num_cpus=1,
    include_dashboard=False,
    _node_ip_address="127.0.0.1",
    log_to_driver=False,
    _temp_dir=os.environ["TRIPWIRE_TEST_RAY_DIR"],
    runtime_env={"worker_process_setup_hook": setup_worker},
)


@ray.remote
def add(a, b):
    return a + b


@ray.remote(max_retries=0)
def fail(x):
    raise ValueError(f"task failed with {x}")


@plain_remote
def flush_worker():
    import sentry_sdk

    sentry_sdk.flush()


try:
    with sentry_sdk.start_transaction(name="driver", op="function"):
        NOTES.append(ray.get(add.remote(1, b=2)))
        try:
            ray.get(fail.remote(7))
        except ray.exceptions.RayTaskError as exc:
            NOTES.append([type(exc.cause).__name__, str(exc.cause)])
    ray.get(flush_worker.remote())
finally:
    ray.shutdown()
finish()
"""


@pytest.fixture
def ray_dir() -> Iterator[str]:
    """Ray's session folder (short: it holds unix sockets); no Ray process outlives it."""
    with scratch_folder("tw-ray-", "Ray") as folder:
        yield folder


def _summary(items: list[tuple[str, dict[str, Any]]]) -> list[str]:
    """What both SDKs must agree on, without ids, times, and host facts; sorted."""
    out = []
    for kind, payload in items:
        trace = {
            k: v
            for k, v in payload["contexts"]["trace"].items()
            if k not in ("trace_id", "span_id", "parent_span_id", "data")
        }
        spans = [
            (s["op"], s["description"], s["origin"], s.get("status"), s.get("tags"))
            for s in payload.get("spans", [])
        ]
        shape = event_shape(payload) if kind == "event" else None
        facts = [kind, payload.get("transaction"), payload.get("environment"), trace]
        facts += [payload.get("transaction_info"), spans, shape]
        out.append(json.dumps(facts, sort_keys=True))
    return sorted(out)


def test_ray_tasks_match_sentry_sdk(
    tmp_path: Path, rx: Receiver, ray_dir: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TRIPWIRE_TEST_DSN", rx.dsn())
    monkeypatch.setenv("TRIPWIRE_TEST_RAY_DIR", ray_dir)
    monkeypatch.setenv("RAY_USAGE_STATS_ENABLED", "0")  # no report to Ray's servers
    # Ray swaps 127.0.0.1 for the host's address unless told it is not a cluster.
    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    ((sentry, ours),) = run_each(SCRIPT, tmp_path, timeout=240)
    expected = [3, ["ValueError", "task failed with 7"]]
    assert sentry["notes"] == ours["notes"] == expected
    # Per run: the driver's transaction; the worker's two transactions and one event.
    requests = rx.wait_for(8)
    by_sdk: dict[str, list[tuple[str, dict[str, Any]]]] = {"sentry": [], "tripwire": []}
    headers: dict[str, list[dict[str, Any]]] = {"sentry": [], "tripwire": []}
    for request in requests:
        envelope = request.envelope
        for item in envelope.items:
            payload = item.payload.json
            assert isinstance(payload, dict), item
            by_sdk[payload["release"]].append((str(item.type), payload))
            headers[payload["release"]].append(envelope.headers)
    assert _summary(by_sdk["tripwire"]) == _summary(by_sdk["sentry"]), dumps(by_sdk)

    items = by_sdk["tripwire"]
    (driver,) = [p for k, p in items if k == "transaction" and p["environment"] == "driver"]
    tasks = {p["transaction"]: p for k, p in items if k == "transaction" and p is not driver}
    (event,) = [p for k, p in items if k == "event"]
    trace_id = driver["contexts"]["trace"]["trace_id"]
    submits = {s["description"]: s for s in driver["spans"]}
    assert sorted(submits) == sorted(tasks) == ["__main__.add", "__main__.fail"]
    for name, task in tasks.items():
        # The worker continues the driver's trace, under the span that submitted it.
        context = task["contexts"]["trace"]
        assert context["trace_id"] == trace_id
        assert context["parent_span_id"] == submits[name]["span_id"]
        assert (context["op"], context["origin"]) == ("queue.task.ray", "auto.queue.ray")
        assert task["transaction_info"] == {"source": "task"}
        assert submits[name]["op"] == "queue.submit.ray"
    assert tasks["__main__.add"]["contexts"]["trace"]["status"] == "ok"
    assert tasks["__main__.fail"]["contexts"]["trace"]["status"] == "internal_error"
    # The task's exception is an event of the worker, in the failed task's transaction.
    (exception,) = event["exception"]["values"]
    assert (exception["type"], exception["value"]) == ("ValueError", "task failed with 7")
    assert exception["mechanism"] == {"type": "ray", "handled": False}
    assert exception["stacktrace"]["frames"][-1]["function"] == "fail"
    assert event["transaction"] == "__main__.fail"
    assert (
        event["contexts"]["trace"]["span_id"]
        == tasks["__main__.fail"]["contexts"]["trace"]["span_id"]
    )
    # Every envelope's dynamic sampling context names the driver's trace.
    assert {h["trace"]["trace_id"] for h in headers["tripwire"]} == {trace_id}


def test_task_function_in_process_and_reset(init_memory: Any) -> None:
    """The worker side without a cluster: `ray.remote` needs none to wrap a function."""
    original = ray.remote
    memory = init_memory(integrations=[RayIntegration()], traces_sample_rate=1.0)

    def add(a: int, b: int = 0, **extra: Any) -> int:
        return a + b

    task = ray.remote(add)
    function = task._function
    # Ray checks a call's arguments against this signature.
    parameters = inspect.signature(function).parameters
    assert list(parameters) == ["a", "b", "_sentry_tracing", "extra"]
    assert parameters["_sentry_tracing"].kind is inspect.Parameter.KEYWORD_ONLY
    # Called as a worker would: the caller's trace is continued.
    headers = {"sentry-trace": "771a43a4192642f0b136d5159a501700-1234567890abcdef-1"}
    assert function(1, b=2, _sentry_tracing=headers) == 3
    (transaction,) = memory.transactions
    context = transaction["contexts"]["trace"]
    assert transaction["transaction"].endswith("add")
    assert (context["trace_id"], context["parent_span_id"]) == (
        "771a43a4192642f0b136d5159a501700",
        "1234567890abcdef",
    )
    assert (context["op"], context["origin"], context["status"]) == (
        "queue.task.ray",
        "auto.queue.ray",
        "ok",
    )

    tripwire.get_client().close()
    later = init_memory(traces_sample_rate=1.0)  # without the integration: the bare call
    assert function(4) == 4
    assert later.transactions == []

    reset()
    assert ray.remote is original


def test_init_imports_no_ray() -> None:
    code = (
        "import sys, tripwire\n"
        "from tripwire.integrations.ray import RayIntegration\n"
        "tripwire.init(integrations=[RayIntegration()])\n"
        "assert 'ray' not in sys.modules, 'init() imported ray'\n"
    )
    subprocess.run([sys.executable, "-W", "error", "-c", code], check=True, timeout=60)
