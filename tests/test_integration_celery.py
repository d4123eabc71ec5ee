"""Celery integration: eager tasks in-process, real workers on a real redis broker.

The fine-grained shape (transaction, spans, events, headers, Beat check-ins) is tested
with ``task_always_eager`` and with Celery Beat's own `Scheduler`. Real workers
(``celery worker``, prefork and solo) run `tests/celery_app/tasks.py` against the
session's redis-server, initialised with tripwire (or sentry_sdk 2.75, for the
differential and interoperability tests) and sending to the test's loopback receiver.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Optional

import pytest
from _receiver import Receiver
from _redis_server import RedisServer, redis_server_fixture  # noqa: F401
from _side_by_side import run_both

import tripwire
from tripwire.integrations.celery import CeleryIntegration
from tripwire.testing import MemoryTransport

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
DSN = "http://key@example.com/1"

if TYPE_CHECKING:
    from celery import Celery
    from celery.app.task import Task
    from celery.beat import Scheduler
    from celery.schedules import crontab, schedule
    from celery_app import tasks

    eager: Celery
    add: Task
    boom: Task
    soft_limit: Task
    ignore: Task
    reject: Task
    retry_once: Task
    declared: Task
    headers_seen: Task


@pytest.fixture(autouse=True, scope="module")
def _celery() -> None:
    """Celery is imported when the module's tests start, not at collection (every xdist
    worker collects every module; tests/_lazy.py); the eager app and its tasks are made here."""
    global Scheduler, crontab, schedule, tasks, eager, add, boom, soft_limit, ignore, reject
    global retry_once, declared, headers_seen
    from celery import Celery
    from celery.beat import Scheduler
    from celery.exceptions import Ignore, Reject, SoftTimeLimitExceeded
    from celery.schedules import crontab, schedule
    from celery_app import tasks

    eager = Celery("eager", broker="memory://")
    eager.conf.task_always_eager = True

    @eager.task
    def add(x: int, y: int) -> int:
        return x + y

    @eager.task
    def boom(x: int) -> None:
        raise ValueError(f"boom {x}")

    @eager.task
    def soft_limit() -> None:
        raise SoftTimeLimitExceeded()

    @eager.task
    def ignore() -> None:
        raise Ignore()

    @eager.task
    def reject() -> None:
        raise Reject("no", requeue=False)

    @eager.task(bind=True, max_retries=1, default_retry_delay=0)
    def retry_once(self: Any) -> str:
        if self.request.retries == 0:
            raise self.retry(exc=RuntimeError("again"), countdown=0)
        return "done"

    @eager.task(throws=(KeyError,))
    def declared() -> None:
        raise KeyError("declared")

    @eager.task(bind=True)
    def headers_seen(self: Any) -> dict[str, Any]:
        return dict(self.request.headers or {})


def init(**options: Any) -> MemoryTransport:
    memory = MemoryTransport()
    integration = options.pop("integration", None) or CeleryIntegration()
    tripwire.init(
        dsn=DSN,
        transport=memory,
        integrations=[integration],
        default_integrations=False,
        **options,
    )
    return memory


def spans(transaction: dict[str, Any], op: str) -> list[dict[str, Any]]:
    return [span for span in transaction["spans"] if span["op"] == op]


def by_name(transactions: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {t["transaction"]: t for t in transactions}


# -- eager: the worker side ----------------------------------------------------------------


def test_task_transaction_and_process_span_continue_the_producers_trace() -> None:
    memory = init(traces_sample_rate=1.0)
    with tripwire.start_transaction(name="producer", op="test"):
        assert add.delay(2, 3).get() == 5
    tripwire.flush()

    found = by_name(memory.transactions)
    task, producer = found[f"{__name__}.add"], found["producer"]
    trace = task["contexts"]["trace"]
    assert trace["op"] == "queue.task.celery"
    assert trace["origin"] == "auto.queue.celery"
    assert trace["status"] == "ok"
    assert task["transaction_info"] == {"source": "task"}
    (submit,) = spans(producer, "queue.submit.celery")
    assert submit["description"] == f"{__name__}.add"
    assert submit["origin"] == "auto.queue.celery"
    # The task continues the trace under the submit span.
    assert trace["trace_id"] == producer["contexts"]["trace"]["trace_id"]
    assert trace["parent_span_id"] == submit["span_id"]
    (process,) = task["spans"]
    assert process["op"] == "queue.process"
    assert process["description"] == f"{__name__}.add"
    data = process["data"]
    assert data["messaging.message.id"] == task["tags"]["celery_task_id"]
    assert data["messaging.message.retry.count"] == 0
    assert data["messaging.system"] == "memory"
    assert data["messaging.message.receive.latency"] >= 0
    assert task["extra"]["celery-job"] == {
        "task_name": f"{__name__}.add",
        "args": "[Filtered]",
        "kwargs": "[Filtered]",
    }


def test_failure_is_an_unhandled_event_with_the_task() -> None:
    memory = init(traces_sample_rate=1.0)
    with pytest.raises(ValueError, match="boom 7"):
        boom.apply(args=(7,), throw=True)
    tripwire.flush()

    (event,) = memory.events
    (value,) = event["exception"]["values"]
    assert value["type"] == "ValueError"
    assert value["mechanism"] == {"type": "celery", "handled": False}
    assert value["stacktrace"]["frames"][-1]["function"] == "boom"
    assert event["extra"]["celery-job"] == {
        "task_name": f"{__name__}.boom",
        "args": "[Filtered]",
        "kwargs": "[Filtered]",
    }
    assert event["transaction"] == f"{__name__}.boom"
    (transaction,) = memory.transactions
    assert event["tags"]["celery_task_id"] == transaction["tags"]["celery_task_id"]
    assert event["contexts"]["trace"]["trace_id"] == transaction["contexts"]["trace"]["trace_id"]
    assert transaction["contexts"]["trace"]["status"] == "internal_error"
    assert transaction["spans"][0]["status"] == "internal_error"


def test_args_only_with_send_default_pii() -> None:
    memory = init(send_default_pii=True)
    boom.apply(args=(7,), kwargs={}, throw=False)
    tripwire.flush()
    (event,) = memory.events
    assert event["extra"]["celery-job"] == {
        "task_name": f"{__name__}.boom",
        "args": [7],
        "kwargs": {},
    }


def test_soft_time_limit_is_grouped_per_task() -> None:
    memory = init()
    soft_limit.apply()
    tripwire.flush()
    (event,) = memory.events
    assert event["fingerprint"] == [
        "celery",
        "SoftTimeLimitExceeded",
        f"{__name__}.soft_limit",
    ]


def test_control_flow_and_declared_exceptions_are_not_errors() -> None:
    memory = init(traces_sample_rate=1.0)
    ignore.apply()
    reject.apply()
    assert retry_once.apply().get() == "done"
    declared.apply()
    tripwire.flush()

    assert memory.events == []
    statuses = [
        (t["transaction"].rsplit(".", 1)[1], t["contexts"]["trace"]["status"])
        for t in memory.transactions
    ]
    assert statuses == [
        ("ignore", "aborted"),
        ("reject", "aborted"),
        ("retry_once", "aborted"),
        ("retry_once", "ok"),
        ("declared", "internal_error"),
    ]


def test_breadcrumbs_of_the_producer_stay_out_of_the_task() -> None:
    memory = init()

    @eager.task(name="crumbs")
    def crumbs() -> None:
        tripwire.add_breadcrumb(message="inside")
        raise ValueError("x")

    tripwire.add_breadcrumb(message="outside")
    crumbs.apply()
    tripwire.capture_message("after")
    tripwire.flush()
    task_event, after = memory.events
    assert [c["message"] for c in task_event["breadcrumbs"]["values"]] == ["inside"]
    assert [c["message"] for c in after["breadcrumbs"]["values"]] == ["outside"]
    assert "celery-job" not in after.get("extra", {})


def test_a_task_sending_a_task_continues_the_trace() -> None:
    memory = init(traces_sample_rate=1.0)

    @eager.task(name="parent")
    def parent() -> None:
        add.delay(1, 1)

    with tripwire.start_transaction(name="producer", op="test"):
        parent.delay()
    tripwire.flush()
    found = by_name(memory.transactions)
    child, outer = found[f"{__name__}.add"], found["parent"]
    (submit,) = spans(outer, "queue.submit.celery")
    assert submit["description"] == f"{__name__}.add"
    assert child["contexts"]["trace"]["parent_span_id"] == submit["span_id"]
    trace_ids = {t["contexts"]["trace"]["trace_id"] for t in memory.transactions}
    assert len(trace_ids) == 1


def test_errors_only_the_task_event_joins_the_producers_trace() -> None:
    memory = init()
    boom.delay(1)
    tripwire.flush()
    (event,) = memory.events
    producer_trace = tripwire.get_current_scope().get_active_propagation_context().trace_id
    assert event["contexts"]["trace"]["trace_id"] == producer_trace
    assert memory.transactions == []


def test_traces_sampler_sees_the_task() -> None:
    contexts: list[dict[str, Any]] = []

    def sampler(context: dict[str, Any]) -> float:
        contexts.append(context)
        return 1.0

    memory = init(traces_sampler=sampler)
    add.apply_async((2, 3), {})
    tripwire.flush()
    (context,) = contexts
    assert context["celery_job"] == {"task": f"{__name__}.add", "args": [2, 3], "kwargs": {}}
    assert context["transaction_context"]["op"] == "queue.task.celery"
    assert len(memory.transactions) == 1


# -- eager: the producer side --------------------------------------------------------------


def test_headers_carry_the_trace_in_sentry_sdks_shape() -> None:
    init(traces_sample_rate=1.0)
    with tripwire.start_transaction(name="producer", op="test") as transaction:
        seen = headers_seen.apply_async(
            headers={"custom": "c", "baggage": "other=1,sentry-trace_id=ignored"}
        ).get()
        trace_id = transaction.trace_id

    trace = seen["sentry-trace"]
    assert trace.startswith(trace_id + "-")
    assert trace.endswith("-1")
    # Third-party baggage kept; sentry items of the existing header win (sentry_sdk).
    baggage = dict(part.split("=", 1) for part in seen["baggage"].split(","))
    assert baggage["other"] == "1"
    assert baggage["sentry-trace_id"] == "ignored"
    assert baggage["sentry-sampled"] == "true"
    inner = seen["headers"]
    assert inner["sentry-trace"] == trace
    assert inner["baggage"] == seen["baggage"]
    assert inner["custom"] == "c"  # celery#4875
    assert seen["custom"] == "c"
    # Popped by the worker to measure the receive latency.
    assert "sentry-task-enqueued-time" not in seen


def test_propagate_traces_off_by_option_and_per_call() -> None:
    memory = init(traces_sample_rate=1.0, integration=CeleryIntegration(propagate_traces=False))
    with tripwire.start_transaction(name="producer", op="test"):
        seen = headers_seen.delay().get()
    assert "sentry-trace" not in seen
    tripwire.get_client().close()

    memory = init(traces_sample_rate=1.0)
    with tripwire.start_transaction(name="producer", op="test"):
        seen = headers_seen.apply_async(headers={"sentry-propagate-traces": False}).get()
        kept = headers_seen.apply_async(headers={"sentry-propagate-traces": True}).get()
    assert "sentry-trace" not in seen
    assert "sentry-propagate-traces" not in seen
    assert "sentry-trace" in kept
    tripwire.flush()
    producer = by_name(memory.transactions)["producer"]
    assert len(spans(producer, "queue.submit.celery")) == 1


def test_headers_given_as_pairs_go_as_they_are() -> None:
    # Celery takes them (eager); sentry_sdk 2.75 raises TypeError into the caller.
    init(traces_sample_rate=1.0)
    with tripwire.start_transaction(name="producer", op="test"):
        seen = headers_seen.apply_async(headers=[("a", "b")]).get()
    assert "sentry-trace" not in seen


def test_without_the_integration_nothing_happens_and_reset_undoes_the_patches() -> None:
    from celery.app import trace
    from celery.app.task import Task

    memory = MemoryTransport()
    tripwire.init(dsn=DSN, transport=memory, default_integrations=False, traces_sample_rate=1.0)
    with tripwire.start_transaction(name="producer", op="test"):
        seen = headers_seen.delay().get()
    boom.apply(args=(1,))
    tripwire.flush()
    assert "sentry-trace" not in seen
    assert memory.events == []
    assert [t["transaction"] for t in memory.transactions] == ["producer"]
    assert memory.transactions[0]["spans"] == []

    tripwire.get_client().close()
    init()
    assert getattr(Task.apply_async, "__tripwire_celery__", False)
    tripwire.testing.reset()
    assert not getattr(Task.apply_async, "__tripwire_celery__", False)
    assert not getattr(trace.build_tracer, "__tripwire_celery__", False)
    assert not getattr(boom.run, "__tripwire_celery__", False)


# -- Celery Beat ---------------------------------------------------------------------------


def test_beat_entries_become_check_ins() -> None:
    memory = init(
        integration=CeleryIntegration(monitor_beat_tasks=True, exclude_beat_tasks=["skip-.*"])
    )
    eager.conf.beat_schedule = {
        "every-5": {
            "task": f"{__name__}.add",
            "schedule": crontab(minute="*/5", hour="1-3"),
            "args": (1, 2),
        },
        "hourly": {
            "task": f"{__name__}.boom",
            "schedule": schedule(3600),
            "args": (1,),
        },
        "skip-me": {"task": f"{__name__}.add", "schedule": crontab(), "args": (1, 1)},
        "too-fast": {"task": f"{__name__}.add", "schedule": 30.0, "args": (1, 1)},
    }
    try:
        scheduler = Scheduler(eager)
        for name in ("every-5", "hourly", "skip-me", "too-fast"):
            scheduler.apply_entry(scheduler.schedule[name], producer=None)
    finally:
        eager.conf.beat_schedule = {}
    tripwire.flush()

    payloads = [json.loads(item.get_bytes()) for item in memory.items("check_in")]
    found = [(c["monitor_slug"], c["status"], c["monitor_config"]) for c in payloads]
    every_5 = {"schedule": {"type": "crontab", "value": "*/5 1-3 * * *"}, "timezone": "UTC"}
    hourly = {"schedule": {"type": "interval", "value": 1, "unit": "hour"}, "timezone": "UTC"}
    assert found == [
        ("every-5", "in_progress", every_5),
        ("every-5", "ok", every_5),
        ("hourly", "in_progress", hourly),
        ("hourly", "error", hourly),
    ]
    assert payloads[0]["check_in_id"] == payloads[1]["check_in_id"]
    assert payloads[2]["check_in_id"] == payloads[3]["check_in_id"]
    assert payloads[1]["duration"] >= 0
    # Each entry starts a new trace.
    assert (
        payloads[0]["contexts"]["trace"]["trace_id"] != payloads[2]["contexts"]["trace"]["trace_id"]
    )


def test_beat_without_monitoring_sends_no_check_in() -> None:
    memory = init()
    eager.conf.beat_schedule = {
        "every-5": {"task": f"{__name__}.add", "schedule": crontab(), "args": (1, 1)}
    }
    try:
        scheduler = Scheduler(eager)
        scheduler.apply_entry(scheduler.schedule["every-5"], producer=None)
    finally:
        eager.conf.beat_schedule = {}
    tripwire.flush()
    assert memory.items("check_in") == []
    assert len(memory.items("transaction")) == 0  # tracing off


# -- the same as sentry_sdk 2.75 (eager, one interpreter per SDK) --------------------------

EAGER_SCRIPT = """
import warnings

warnings.simplefilter("ignore", DeprecationWarning)  # send_default_pii, on both sides
from celery import Celery
from celery.beat import Scheduler
from celery.schedules import crontab, schedule
from sentry_sdk.integrations.celery import CeleryIntegration

sentry_sdk.init(
    dsn="http://key@example.com/1", transport=KEEP, release="r1", traces_sample_rate=1.0,
    default_integrations=False, send_default_pii=True,
    integrations=[CeleryIntegration(monitor_beat_tasks=True)],
)
app = Celery("scenario", broker="memory://")
app.conf.task_always_eager = True

@app.task
def add(x, y):
    sentry_sdk.add_breadcrumb(message="adding")
    return x + y

@app.task
def boom(x):
    raise ValueError("boom %d" % x)

@app.task(bind=True, max_retries=1, default_retry_delay=0)
def again(self):
    if self.request.retries == 0:
        raise self.retry(exc=RuntimeError("again"), countdown=0)

with sentry_sdk.start_transaction(name="producer", op="test"):
    add.delay(1, 2)
    boom.apply_async((3,), headers={"custom": "c"})
    again.delay()
app.conf.beat_schedule = {
    "five": {"task": "scenario.add", "schedule": crontab(minute="*/5"), "args": (1, 1)},
    "hourly": {"task": "scenario.boom", "schedule": schedule(3600), "args": (2,)},
}
scheduler = Scheduler(app)
for name in ("five", "hourly"):
    scheduler.apply_entry(scheduler.schedule[name], producer=None)
finish()
"""

# Differ between runs or SDKs by nature.
_VOLATILE = {
    "event_id", "check_in_id", "timestamp", "start_timestamp", "sent_at", "duration", "sdk",
    "server_name", "platform", "modules", "trace_id", "span_id", "parent_span_id",
    "thread.id", "celery_task_id", "messaging.message.id", "messaging.message.receive.latency",
    "sample_rand", "contexts", "received",
}  # fmt: skip


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "?" if k in _VOLATILE else _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return value


def _trace(value: dict[str, Any]) -> dict[str, Any]:
    trace: dict[str, Any] = value.get("contexts", {}).get("trace", {})
    return _shape({k: v for k, v in trace.items() if k != "dynamic_sampling_context"})


def _dedupe_submit(transaction: dict[str, Any]) -> dict[str, Any]:
    """sentry_sdk nests a second submit span (from `send_task`) inside the first."""
    submits = {
        s["span_id"] for s in transaction.get("spans") or [] if s["op"] == "queue.submit.celery"
    }
    kept = [
        s
        for s in transaction.get("spans") or []
        if not (s["op"] == "queue.submit.celery" and s.get("parent_span_id") in submits)
    ]
    return {**transaction, "spans": kept}


def items_shape(items: list[dict[str, Any]]) -> list[Any]:
    out = []
    for item in items:
        payload = item["payload"]
        if item["type"] == "transaction":
            payload = _dedupe_submit(payload)
        out.append((item["type"], _shape(payload), _trace(payload)))
    return out


def test_eager_tasks_and_beat_same_as_sentry_sdk(tmp_path: Path) -> None:
    sentry, ours = run_both(EAGER_SCRIPT, tmp_path)
    expected, found = items_shape(sentry["items"]), items_shape(ours["items"])
    assert [t for t, _, _ in found] == [t for t, _, _ in expected]
    for (kind, theirs, their_trace), (_, mine, my_trace) in zip(expected, found):
        if kind == "event":
            mine["exception"]["values"][0].pop("module", None)
            theirs["exception"]["values"][0].pop("module", None)
        assert mine == theirs, kind
        assert my_trace == their_trace, kind
    kinds = [t for t, _, _ in found]
    assert kinds.count("check_in") == 4
    assert kinds.count("event") == 2


# -- real workers on the redis broker ------------------------------------------------------


class Worker:
    """A ``celery worker`` subprocess on the test's queue, stopped by the test."""

    def __init__(
        self,
        redis: RedisServer,
        dsn: Optional[str],
        tmp_path: Path,
        sdk: str = "tripwire",
        pool: str = "solo",
        extra: tuple[str, ...] = (),
        env: Optional[dict[str, str]] = None,
    ) -> None:
        self.queue = f"q-{uuid.uuid4().hex[:12]}"
        self.log = tmp_path / f"worker-{self.queue}.log"
        environ = dict(os.environ)
        environ.pop("PYTEST_XDIST_WORKER", None)
        environ.update(
            {
                "CELERY_TEST_BROKER": redis.url(),
                "CELERY_TEST_QUEUE": self.queue,
                "CELERY_TEST_SDK": sdk,
                "PYTHONPATH": os.pathsep.join(
                    [str(TESTS), str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
                ),
                "PYTHONWARNINGS": "ignore::DeprecationWarning",
            }
        )
        if dsn is not None:
            environ["CELERY_TEST_DSN"] = dsn
        environ.update(env or {})
        self.command = [
            sys.executable, "-m", "celery", "-A", "celery_app.tasks", "worker",
            f"--pool={pool}", "--loglevel=INFO", "-Q", self.queue,
            "-n", f"{self.queue}@127.0.0.1",
            "--without-gossip", "--without-mingle", "--without-heartbeat", *extra,
        ]  # fmt: skip
        self.environ = environ
        self.process: Optional[subprocess.Popen[bytes]] = None

    def __enter__(self) -> Worker:
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                self.command,
                cwd=TESTS,
                env=self.environ,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: the pool children too
            )
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop(check=exc[0] is None)

    def stop(self, check: bool = True, timeout: float = 60.0) -> None:
        """SIGTERM (a warm shutdown), then wait; on timeout every process of the worker
        dumps its stacks into the log (SIGUSR1, faulthandler) and is killed, and the
        test fails with that log."""
        process = self.process
        if process is None or process.returncode is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            group = os.getpgid(process.pid)
            os.killpg(group, signal.SIGUSR1)
            try:
                process.wait(timeout=2)  # the dump is written synchronously by the handler
            except subprocess.TimeoutExpired:
                pass
            os.killpg(group, signal.SIGKILL)
            process.wait()
            if check:
                raise AssertionError(f"worker did not stop in {timeout}s:\n{self.output()}")
        if check:
            assert process.returncode == 0, self.output()

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-6000:]


def received(
    rx: Receiver,
    done: Callable[[list[tuple[str, Any]]], bool],
    worker: Optional[Worker] = None,
    timeout: float = 60.0,
) -> list[tuple[str, Any]]:
    """Wait (on the receiver's condition) until `done(items)`; items as (type, payload)."""
    items: list[tuple[str, Any]] = []
    seen = 0
    deadline = time.monotonic() + timeout
    with rx._cond:
        while True:
            for request in rx.requests[seen:]:
                for item in request.envelope.items:
                    items.append((item.type or "", json.loads(item.get_bytes())))
            seen = len(rx.requests)
            if done(items):
                return items
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                log = worker.output() if worker is not None else ""
                raise AssertionError(f"timed out; {len(items)} items received\n{log}")
            rx._cond.wait(remaining)


def transactions_named(items: list[tuple[str, Any]], name: str) -> list[dict[str, Any]]:
    return [p for t, p in items if t == "transaction" and p["transaction"] == name]


def count(items: list[tuple[str, Any]], kind: str) -> int:
    return sum(1 for t, _ in items if t == kind)


@pytest.fixture(scope="session")
def producer_app(redis_server: RedisServer) -> Iterator[Celery]:
    """The test process as producer, for the session.

    Its broker connection is opened here, before any test's leak check looks at the
    open descriptors, and is reused by every send (kombu's producer pool).
    """
    from celery_app import tasks  # a session's fixture: set up before the module's `_celery`

    tasks.app.conf.broker_url = redis_server.url()
    tasks.add.apply_async((0, 0), queue="warm-up")
    yield tasks.app
    tasks.app.pool.force_close_all()


def send_all(queue: str) -> str:
    """The scenario's tasks, sent inside a transaction; returns its trace id."""
    with tripwire.start_transaction(name="producer", op="test") as transaction:
        tasks.add.apply_async((1, 2), queue=queue)
        tasks.boom.apply_async((5,), queue=queue)
        tasks.fan_out.apply_async((2,), queue=queue)
        tasks.flaky.apply_async(queue=queue)
        tasks.ignored.apply_async(queue=queue)
        tasks.expected_failure.apply_async(queue=queue)
    tripwire.flush()
    return transaction.trace_id


def _scenario_done(items: list[tuple[str, Any]]) -> bool:
    # 1 producer + add, boom, fan_out, 2 adds, flaky x2, ignored, expected_failure; 1 error.
    return count(items, "transaction") >= 10 and count(items, "event") >= 1


@pytest.mark.parametrize("pool", ["solo", "prefork"])
def test_real_worker(
    pool: str, rx: Receiver, producer_app: Celery, redis_server: RedisServer, tmp_path: Path
) -> None:
    extra = ("--concurrency=2",) if pool == "prefork" else ()
    tripwire.init(
        dsn=rx.dsn(),
        traces_sample_rate=1.0,
        integrations=[CeleryIntegration()],
        default_integrations=False,
    )
    with Worker(redis_server, rx.dsn(), tmp_path, pool=pool, extra=extra) as worker:
        trace_id = send_all(worker.queue)
        items = received(rx, _scenario_done, worker)
    (event,) = [p for t, p in items if t == "event"]
    assert event["exception"]["values"][-1]["mechanism"] == {"type": "celery", "handled": False}
    assert event["extra"]["celery-job"]["task_name"] == "celery_app.tasks.boom"
    assert event["server_name"] == "worker"
    assert event["contexts"]["trace"]["trace_id"] == trace_id

    name = "celery_app.tasks."
    statuses = sorted(
        (p["transaction"][len(name) :], p["contexts"]["trace"]["status"])
        for t, p in items
        if t == "transaction" and p["transaction"].startswith(name)
    )
    assert statuses == [
        ("add", "ok"),
        ("add", "ok"),
        ("add", "ok"),
        ("boom", "internal_error"),
        ("expected_failure", "internal_error"),
        ("fan_out", "ok"),
        ("flaky", "aborted"),
        ("flaky", "ok"),
        ("ignored", "aborted"),
    ]
    for t, p in items:
        if t == "transaction":
            assert p["contexts"]["trace"]["trace_id"] == trace_id  # one trace, end to end
    (task,) = transactions_named(items, name + "boom")
    (process,) = spans(task, "queue.process")
    assert process["data"]["messaging.system"] == "redis"
    assert process["data"]["messaging.destination.name"] == worker.queue
    assert process["data"]["messaging.message.receive.latency"] >= 0
    (producer,) = transactions_named(items, "producer")
    publish = spans(producer, "queue.publish")
    assert len(publish) == 6
    assert {s["data"]["messaging.destination.name"] for s in publish} == {worker.queue}
    (fan_out,) = transactions_named(items, name + "fan_out")
    assert len(spans(fan_out, "queue.submit.celery")) == 2  # a worker is a producer too


def test_prefork_children_fork_under_load_and_lose_nothing(
    rx: Receiver, producer_app: Celery, redis_server: RedisServer, tmp_path: Path
) -> None:
    """Every task runs in a freshly forked pool process (``--max-tasks-per-child=1``)
    while the worker's main process keeps sending; each task's event must arrive."""
    n = 40
    worker = Worker(
        redis_server,
        rx.dsn(),
        tmp_path,
        pool="prefork",
        extra=("--concurrency=2", "--max-tasks-per-child=1"),
        env={"CELERY_TEST_PARENT_LOAD": "1"},
    )
    with worker:
        # The main process is sending before any task is sent.
        received(rx, lambda items: count(items, "event") >= 20, worker)
        for i in range(n):
            tasks.capture.apply_async((i,), queue=worker.queue)

        def all_tasks(items: list[tuple[str, Any]]) -> bool:
            return len(task_events(items)) >= n

        items = received(rx, all_tasks, worker, timeout=120)
    found = task_events(items)
    assert sorted(p["message"] for p in found) == sorted(f"task-{i}" for i in range(n))
    # One pool process per task: every event came from a child forked during the run.
    assert len({p["tags"]["pid"] for p in found}) == n
    # ... while the main process went on sending.
    first = min(p["timestamp"] for p in found)
    last = max(p["timestamp"] for p in found)
    parent = [p for t, p in items if t == "event" and p["message"].startswith("parent-load")]
    assert any(first < p["timestamp"] < last for p in parent)


def task_events(items: list[tuple[str, Any]]) -> list[dict[str, Any]]:
    return [p for t, p in items if t == "event" and (p.get("message") or "").startswith("task-")]


PRODUCER = """
import os, sys
sys.path[:0] = [os.environ["TESTS"]]
if os.environ["CELERY_TEST_SDK"] == "sentry":
    import sentry_sdk as sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
else:
    import tripwire as sdk
    from tripwire.integrations.celery import CeleryIntegration
sdk.init(dsn=os.environ["PRODUCER_DSN"], traces_sample_rate=1.0, release="r1",
         server_name="producer", default_integrations=False,
         integrations=[CeleryIntegration()])
from celery_app import tasks
queue = os.environ["CELERY_TEST_QUEUE"]
with sdk.start_transaction(name="producer", op="test") as transaction:
    tasks.add.apply_async((1, 2), queue=queue)
    tasks.boom.apply_async((5,), queue=queue)
    tasks.fan_out.apply_async((2,), queue=queue)
    tasks.flaky.apply_async(queue=queue)
    tasks.ignored.apply_async(queue=queue)
    tasks.expected_failure.apply_async(queue=queue)
sdk.flush()
print(transaction.trace_id)
"""


def run_pair(
    producer_sdk: str, worker_sdk: str, redis: RedisServer, tmp_path: Path
) -> tuple[str, list[tuple[str, Any]]]:
    """The scenario sent by a `producer_sdk` process to a `worker_sdk` solo worker."""
    with Receiver() as rx, Worker(redis, rx.dsn(), tmp_path, sdk=worker_sdk) as worker:
        env = dict(worker.environ)
        env.pop("CELERY_TEST_DSN")
        env.update(TESTS=str(TESTS), PRODUCER_DSN=rx.dsn(), CELERY_TEST_SDK=producer_sdk)
        result = subprocess.run(
            [sys.executable, "-c", PRODUCER],
            env=env,
            cwd=TESTS,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode == 0, result.stderr
        items = received(rx, _scenario_done, worker)
        worker.stop()
    # The queue is the worker's own: named alike for comparisons.
    renamed = json.loads(json.dumps(items).replace(worker.queue, "<queue>"))
    return result.stdout.strip().splitlines()[-1], [(kind, payload) for kind, payload in renamed]


def worker_shape(items: list[tuple[str, Any]]) -> list[Any]:
    """Items sorted by what they are (arrival order differs), without volatile values."""
    out = []
    for kind, payload in items:
        if kind == "transaction":
            payload = _dedupe_submit(payload)
        out.append(json.dumps([kind, _shape(payload), _trace(payload)], sort_keys=True))
    return sorted(out)


def test_real_worker_same_as_sentry_sdk(redis_server: RedisServer, tmp_path: Path) -> None:
    _, theirs = run_pair("sentry", "sentry", redis_server, tmp_path)
    _, ours = run_pair("tripwire", "tripwire", redis_server, tmp_path)
    expected, found = worker_shape(theirs), worker_shape(ours)
    assert len(found) == len(expected) == 11
    for mine, their in zip(found, expected):
        a, b = json.loads(mine), json.loads(their)
        if a[0] == "event":
            for side in (a, b):
                for value in side[1]["exception"]["values"]:
                    value.pop("module", None)
                    # Local variables' reprs hold ids and addresses.
                    for frame in value["stacktrace"]["frames"]:
                        frame["vars"] = sorted(frame.get("vars", {}))
        assert a == b


@pytest.mark.parametrize(("producer", "worker"), [("tripwire", "sentry"), ("sentry", "tripwire")])
def test_traces_cross_between_sdks(
    producer: str, worker: str, redis_server: RedisServer, tmp_path: Path
) -> None:
    trace_id, items = run_pair(producer, worker, redis_server, tmp_path)
    tasks_seen = [p for t, p in items if t == "transaction" and p["transaction"] != "producer"]
    assert len(tasks_seen) == 9
    assert {p["contexts"]["trace"]["trace_id"] for p in tasks_seen} == {trace_id}
    (producer_tx,) = transactions_named(items, "producer")
    submits = {s["span_id"] for s in spans(producer_tx, "queue.submit.celery")}
    # The six tasks the producer sent are children of its submit spans.
    assert sum(p["contexts"]["trace"]["parent_span_id"] in submits for p in tasks_seen) == 6
    (event,) = [p for t, p in items if t == "event"]
    assert event["contexts"]["trace"]["trace_id"] == trace_id


def test_import_tripwire_and_init_do_not_import_celery() -> None:
    code = (
        "import sys, tripwire; "
        "tripwire.init(dsn='http://k@127.0.0.1:9/1', auto_enabling_integrations=True); "
        "from tripwire.integrations.celery import CeleryIntegration; "
        "assert tripwire.get_client().get_integration(CeleryIntegration) is not None; "
        "assert not [m for m in sys.modules if m.split('.')[0] in ('celery', 'kombu', 'billiard')]"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr


def test_a_thread_sending_tasks_keeps_its_own_spans() -> None:
    memory = init(traces_sample_rate=1.0)
    errors: list[BaseException] = []

    def work(i: int) -> None:
        try:
            with tripwire.start_transaction(name=f"t{i}", op="test"):
                add.delay(i, i)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    tripwire.flush()
    assert errors == []
    found = by_name(memory.transactions)
    for i in range(4):
        (submit,) = spans(found[f"t{i}"], "queue.submit.celery")
        children = [
            t
            for t in memory.transactions
            if t["contexts"]["trace"].get("parent_span_id") == submit["span_id"]
        ]
        assert len(children) == 1
