"""RQ integration: real RQ workers on the session's redis-server.

`SimpleWorker(...).work(burst=True)` runs the jobs in the test process (the shape of
transactions, events and check-ins); one ``rq worker --burst`` subprocess (the forking
worker: each job in a work horse that leaves with ``os._exit``) is initialised with
tripwire and sends to the test's loopback receiver. The differential test runs the
same script on sentry_sdk 2.75 and on tripwire, one interpreter each.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import pytest
from _receiver import Receiver
from _redis_server import (
    RedisServer,
    keyspace_fixture,  # noqa: F401
    redis_server_fixture,  # noqa: F401
)
from _side_by_side import run_both

import tripwire
from tripwire.integrations.rq import RqIntegration
from tripwire.testing import MemoryTransport

if TYPE_CHECKING:
    from redis import Redis
    from rq import Queue, Retry, SimpleWorker
    from rq.timeouts import JobTimeoutException


@pytest.fixture(autouse=True, scope="module")
def _rq() -> None:
    """RQ is imported when the module's tests start, not at collection (every xdist
    worker collects every module; tests/_lazy.py)."""
    global Redis, Queue, Retry, SimpleWorker, JobTimeoutException
    from redis import Redis
    from rq import Queue, Retry, SimpleWorker
    from rq.timeouts import JobTimeoutException


TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
DSN = "http://key@example.com/1"
NAME = __name__


def add(x: int, y: int) -> int:
    tripwire.add_breadcrumb(message=f"adding {x}")
    return x + y


def boom(x: int) -> None:
    raise ValueError(f"boom {x}")


def timed_out() -> None:
    raise JobTimeoutException("too slow")


def current_trace() -> str:
    span = tripwire.get_current_span()
    assert span is not None
    return span.trace_id


@pytest.fixture
def redis(redis_server: RedisServer) -> Iterator[Redis]:
    connection = Redis(host=redis_server.host, port=redis_server.port)
    try:
        yield connection
    finally:
        connection.close()
        connection.connection_pool.disconnect()


@pytest.fixture
def queue(redis: Redis, keyspace: str) -> Queue:
    return Queue(f"{keyspace}jobs", connection=redis)


def init(**options: Any) -> MemoryTransport:
    memory = MemoryTransport()
    integration = options.pop("integration", None) or RqIntegration()
    tripwire.init(
        dsn=DSN,
        transport=memory,
        integrations=[integration],
        default_integrations=False,
        **options,
    )
    return memory


def work(queue: Queue) -> None:
    SimpleWorker([queue], connection=queue.connection).work(burst=True)
    tripwire.flush()


def by_name(memory: MemoryTransport, name: str) -> list[dict[str, Any]]:
    return [t for t in memory.transactions if t["transaction"] == name]


# -- in-process: SimpleWorker --------------------------------------------------------------


def test_job_transactions_continue_the_producers_trace(queue: Queue) -> None:
    memory = init(traces_sample_rate=1.0)
    with tripwire.start_transaction(name="producer", op="test") as producer:
        job = queue.enqueue(add, 1, 2)
        traced = queue.enqueue(current_trace)
    queue.enqueue(add, 3, 4)  # no span active: no trace headers
    work(queue)

    assert job.meta["_sentry_trace_headers"]["sentry-trace"].startswith(producer.trace_id)
    first, second = by_name(memory, f"{NAME}.add")
    trace = first["contexts"]["trace"]
    assert trace["op"] == "queue.task.rq"
    assert trace["origin"] == "auto.queue.rq"
    assert trace["status"] == "ok"
    assert trace["data"]["messaging.destination.name"] == queue.name
    assert first["transaction_info"] == {"source": "task"}
    assert trace["trace_id"] == producer.trace_id
    assert trace["parent_span_id"] == producer.span_id
    assert traced.return_value() == producer.trace_id
    # The job enqueued outside a span starts a trace of its own.
    assert second["contexts"]["trace"]["trace_id"] != producer.trace_id
    assert "parent_span_id" not in second["contexts"]["trace"] or (
        second["contexts"]["trace"]["parent_span_id"] is None
    )
    rq_job = first["extra"]["rq-job"]
    assert rq_job["job_id"] == job.id
    assert rq_job["func"] == f"{NAME}.add"
    assert rq_job["description"] == f"{NAME}.add(1, 2)"
    assert rq_job["args"] == rq_job["kwargs"] == "[Filtered]"
    assert rq_job["enqueued_at"].endswith("Z") and rq_job["started_at"].endswith("Z")


def test_failure_is_an_unhandled_event_with_the_job(queue: Queue) -> None:
    memory = init(traces_sample_rate=1.0)
    job = queue.enqueue(boom, 7)
    work(queue)

    (event,) = memory.events
    (value,) = event["exception"]["values"]
    assert value["type"] == "ValueError"
    assert value["value"] == "boom 7"
    assert value["mechanism"] == {"type": "rq", "handled": False}
    assert value["stacktrace"]["frames"][-1]["function"] == "boom"
    assert event["transaction"] == f"{NAME}.boom"
    assert event["extra"]["rq-job"]["job_id"] == job.id
    assert event["extra"]["rq-job"]["args"] == "[Filtered]"
    (transaction,) = memory.transactions
    assert transaction["contexts"]["trace"]["status"] == "internal_error"
    assert event["contexts"]["trace"]["span_id"] == transaction["contexts"]["trace"]["span_id"]
    assert "fingerprint" not in event


def test_args_only_with_send_default_pii(queue: Queue) -> None:
    memory = init(send_default_pii=True)
    queue.enqueue(boom, 7)
    work(queue)
    (event,) = memory.events
    assert event["extra"]["rq-job"]["args"] == [7]
    assert event["extra"]["rq-job"]["kwargs"] == {}
    assert memory.transactions == []  # tracing off


def test_args_with_data_collection_queues(queue: Queue) -> None:
    memory = init(data_collection={"queues": True})
    queue.enqueue(boom, x=8)
    work(queue)
    (event,) = memory.events
    assert event["extra"]["rq-job"]["kwargs"] == {"x": 8}


def test_retried_attempts_are_not_reported(queue: Queue) -> None:
    memory = init(traces_sample_rate=1.0)
    queue.enqueue(boom, 1, retry=Retry(max=2))
    work(queue)
    # Three attempts, one event: the last.
    assert [t["contexts"]["trace"]["status"] for t in memory.transactions] == ["internal_error"] * 3
    (event,) = memory.events
    assert event["exception"]["values"][0]["value"] == "boom 1"


def test_timeouts_are_grouped_per_function(queue: Queue) -> None:
    memory = init()
    queue.enqueue(timed_out)
    work(queue)
    (event,) = memory.events
    assert event["fingerprint"] == ["rq", "JobTimeoutException", f"{NAME}.timed_out"]


def test_each_job_has_its_own_isolation_scope(queue: Queue) -> None:
    memory = init()
    tripwire.add_breadcrumb(message="before the worker")
    queue.enqueue(add, 1, 2)
    queue.enqueue(boom, 2)
    work(queue)
    (event,) = memory.events
    # Neither the worker's breadcrumbs nor the previous job's reach the event.
    assert event["breadcrumbs"]["values"] == []
    tripwire.capture_message("after")
    tripwire.flush()
    after = memory.events[-1]
    assert [c["message"] for c in after["breadcrumbs"]["values"]] == ["before the worker"]
    assert "rq-job" not in after.get("extra", {})


def test_interval_jobs_send_check_ins(queue: Queue) -> None:
    memory = init(integration=RqIntegration(monitor_cron_jobs=True, exclude_cron_jobs=["skip-.*"]))
    queue.enqueue(add, 1, 1, meta={"interval": 300}, job_id="every-five")
    queue.enqueue(boom, 1, meta={"interval": 3600}, job_id="hourly")
    queue.enqueue(add, 3, 3, meta={"interval": 61}, job_id="odd")  # no Sentry schedule
    queue.enqueue(add, 4, 4, meta={"interval": 60, "repeat": 3}, job_id="repeated")
    queue.enqueue(add, 5, 5, meta={"interval": 120}, job_id="skip-me")
    work(queue)
    check_ins = [json.loads(item.get_bytes()) for item in memory.items("check_in")]
    seen = [(c["monitor_slug"], c["status"]) for c in check_ins]
    assert seen == [
        ("every-five", "in_progress"),
        ("every-five", "ok"),
        ("hourly", "in_progress"),
        ("hourly", "error"),
    ]
    assert check_ins[0]["monitor_config"] == {
        "schedule": {"type": "interval", "value": 5, "unit": "minute"}
    }
    assert check_ins[0]["check_in_id"] == check_ins[1]["check_in_id"]
    assert check_ins[1]["duration"] >= 0


def test_generated_ids_monitor_the_function(queue: Queue) -> None:
    memory = init(integration=RqIntegration(monitor_cron_jobs=True))
    queue.enqueue(add, 1, 1, meta={"interval": 120})
    work(queue)
    slugs = {json.loads(item.get_bytes())["monitor_slug"] for item in memory.items("check_in")}
    assert slugs == {f"{NAME}.add"}


def test_without_the_integration_nothing_is_added(queue: Queue) -> None:
    memory = MemoryTransport()
    tripwire.init(dsn=DSN, transport=memory, default_integrations=False, traces_sample_rate=1.0)
    with tripwire.start_transaction(name="producer"):
        job = queue.enqueue(boom, 1)
    work(queue)
    assert "_sentry_trace_headers" not in job.meta
    assert memory.events == []
    assert [t["transaction"] for t in memory.transactions] == ["producer"]


def test_reset_undoes_the_patches() -> None:
    from rq.queue import Queue as RqQueue
    from rq.worker import BaseWorker

    original = BaseWorker.perform_job, BaseWorker.handle_exception, RqQueue.enqueue_job
    init()
    assert BaseWorker.perform_job is not original[0]
    tripwire.testing.reset()
    assert (BaseWorker.perform_job, BaseWorker.handle_exception, RqQueue.enqueue_job) == original


def test_import_tripwire_and_init_do_not_import_rq() -> None:
    code = (
        "import sys, tripwire; "
        "tripwire.init(dsn='http://k@127.0.0.1:9/1', auto_enabling_integrations=True); "
        "from tripwire.integrations.rq import RqIntegration; "
        "assert tripwire.get_client().get_integration(RqIntegration) is not None; "
        "assert not [m for m in sys.modules if m.split('.')[0] == 'rq'], 'rq imported'; "
        "import rq.worker, rq.queue; "
        "assert getattr(rq.worker.BaseWorker.perform_job, '__tripwire_rq__', False)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr


# -- a real forking worker (``rq worker --burst``) -----------------------------------------

SETTINGS = """
import tripwire
from tripwire.integrations.rq import RqIntegration

tripwire.init(
    dsn={dsn!r}, traces_sample_rate=1.0, release="r1", server_name="rq-worker",
    default_integrations=False, integrations=[RqIntegration()],
)
"""


def received(
    rx: Receiver, done: Callable[[list[tuple[str, Any]]], bool], timeout: float = 60.0
) -> list[tuple[str, Any]]:
    """Wait (on the receiver's condition) until `done(items)`; items as (type, payload)."""
    deadline = time.monotonic() + timeout
    with rx._cond:
        while True:
            items = [
                (item.type or "", json.loads(item.get_bytes()))
                for request in rx.requests
                for item in request.envelope.items
            ]
            if done(items):
                return items
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"timed out; {len(items)} items received")
            rx._cond.wait(remaining)


def test_real_forking_worker(
    rx: Receiver, redis_server: RedisServer, keyspace: str, tmp_path: Path
) -> None:
    (tmp_path / "rq_settings.py").write_text(SETTINGS.format(dsn=rx.dsn()))
    tripwire.init(
        dsn=rx.dsn(),
        traces_sample_rate=1.0,
        integrations=[RqIntegration()],
        default_integrations=False,
    )
    name = f"{keyspace}forked"
    connection = Redis(host=redis_server.host, port=redis_server.port)
    try:
        queue = Queue(name, connection=connection)
        with tripwire.start_transaction(name="producer", op="test") as producer:
            queue.enqueue(add, 1, 2)
            queue.enqueue(boom, 5)
    finally:
        connection.close()
        connection.connection_pool.disconnect()
    environ = dict(os.environ)
    environ["PYTHONPATH"] = os.pathsep.join([str(tmp_path), str(TESTS), str(ROOT)])
    environ["PYTHONWARNINGS"] = "ignore::DeprecationWarning"
    command = [sys.executable, "-m", "rq.cli", "worker", "--burst", "-c", "rq_settings"]
    result = subprocess.run(
        [*command, "--url", redis_server.url(), name],
        cwd=tmp_path,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert "Worker" in result.stderr and "boom 5" in result.stderr  # it ran in the horse

    def done(items: list[tuple[str, Any]]) -> bool:
        names = [p["transaction"] for t, p in items if t == "transaction"]
        return len(names) >= 3 and any(t == "event" for t, _ in items)

    items = received(rx, done)
    (event,) = [p for t, p in items if t == "event"]
    assert event["server_name"] == "rq-worker"
    assert event["exception"]["values"][-1]["mechanism"] == {"type": "rq", "handled": False}
    assert event["extra"]["rq-job"]["func"] == f"{NAME}.boom"
    assert event["contexts"]["trace"]["trace_id"] == producer.trace_id
    jobs = sorted(
        (p["transaction"], p["contexts"]["trace"]["status"], p["contexts"]["trace"]["trace_id"])
        for t, p in items
        if t == "transaction" and p["transaction"] != "producer"
    )
    assert jobs == [
        (f"{NAME}.add", "ok", producer.trace_id),
        (f"{NAME}.boom", "internal_error", producer.trace_id),
    ]


# -- the same as sentry_sdk 2.75 -----------------------------------------------------------

SCRIPT = """
import warnings

warnings.simplefilter("ignore", DeprecationWarning)  # send_default_pii, on both sides
from redis import Redis
from rq import Queue, Retry, SimpleWorker
from rq_diff_jobs import add, boom
from sentry_sdk.integrations.rq import RqIntegration

sentry_sdk.init(
    dsn="http://key@example.com/1", transport=KEEP, release="r1", traces_sample_rate=1.0,
    default_integrations=False, send_default_pii=True, integrations=[RqIntegration()],
)

connection = Redis.from_url(REDIS_URL)
queue = Queue(QUEUE, connection=connection)
with sentry_sdk.start_transaction(name="producer", op="test"):
    queue.enqueue(add, 1, 2, job_id="add-1")
    queue.enqueue(boom, 3, job_id="boom-3")
    queue.enqueue(boom, 4, retry=Retry(max=1), job_id="boom-4")
queue.enqueue(add, 5, y=6, job_id="add-5")
SimpleWorker([queue], connection=connection).work(burst=True)
connection.close()
finish()
"""

JOBS = """
def add(x, y):
    return x + y


def boom(x):
    raise ValueError("boom %d" % x)
"""

# Differ between runs or SDKs by nature.
_VOLATILE = {
    "event_id", "timestamp", "start_timestamp", "sent_at", "sdk", "server_name", "platform",
    "modules", "trace_id", "span_id", "parent_span_id", "thread.id", "sample_rand",
    "enqueued_at", "started_at", "vars", "received",
}  # fmt: skip


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "?" if k in _VOLATILE else _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return value


def test_same_as_sentry_sdk(redis_server: RedisServer, keyspace: str, tmp_path: Path) -> None:
    (tmp_path / "rq_diff_jobs.py").write_text(JOBS)
    prelude = f"REDIS_URL = {redis_server.url()!r}\nQUEUE = {keyspace + 'diff'!r}\n"
    sentry, ours = run_both(prelude + textwrap.dedent(SCRIPT), tmp_path)
    theirs, mine = sentry["items"], ours["items"]
    assert [i["type"] for i in mine] == [i["type"] for i in theirs]
    assert [i["type"] for i in mine].count("event") == 2
    assert [i["type"] for i in mine].count("transaction") == 6
    for their_item, my_item in zip(theirs, mine):
        a, b = _shape(my_item["payload"]), _shape(their_item["payload"])
        if my_item["type"] == "transaction" and a["transaction"] != "producer":
            # On purpose: tripwire's job transaction has the outcome as its status.
            status = a["contexts"]["trace"].pop("status")
            assert status == ("ok" if a["transaction"].endswith("add") else "internal_error")
        if my_item["type"] == "event":
            for side in (a, b):
                # tripwire's event trace context has the transaction's thread data only
                # (sentry_sdk adds the transaction's data: messaging.destination.name).
                side["contexts"]["trace"].pop("data")
                for value in side["exception"]["values"]:
                    value.pop("module", None)
        assert a == b, my_item["type"]
