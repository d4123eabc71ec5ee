"""Huey integration: ``immediate=True`` for the shapes, a real consumer on redis.

Immediate mode runs each task inside `Huey.enqueue` (Huey's in-memory storage), which
makes the transactions and events deterministic. The consumer test runs Huey's own
`Consumer` (worker threads) in the test process against a `RedisHuey` on the session's
redis-server, started and stopped by the test. The differential test runs the same
script on sentry_sdk 2.75 and on tripwire, one interpreter each.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any, Optional

import pytest
from _redis_server import (
    RedisServer,
    keyspace_fixture,  # noqa: F401
    redis_server_fixture,  # noqa: F401
)
from _side_by_side import run_both, stored_tags

import tripwire
from tripwire.integrations.huey import HueyIntegration, _monitor_config
from tripwire.testing import MemoryTransport

if TYPE_CHECKING:
    from huey import MemoryHuey, RedisHuey, crontab
    from huey.api import Huey
    from huey.exceptions import CancelExecution, RetryTask, TaskException


@pytest.fixture(autouse=True, scope="module")
def _huey() -> None:
    """Huey is imported when the module's tests start, not at collection (every xdist
    worker collects every module; tests/_lazy.py)."""
    global MemoryHuey, RedisHuey, crontab, Huey, CancelExecution, RetryTask, TaskException
    from huey import MemoryHuey, RedisHuey, crontab
    from huey.api import Huey
    from huey.exceptions import CancelExecution, RetryTask, TaskException


DSN = "http://key@example.com/1"


def init(**options: Any) -> MemoryTransport:
    memory = MemoryTransport()
    integration = options.pop("integration", None) or HueyIntegration()
    tripwire.init(
        dsn=DSN,
        transport=memory,
        integrations=[integration],
        default_integrations=False,
        **options,
    )
    return memory


class Tasks:
    """A Huey instance and its tasks."""

    def __init__(self, huey: Huey) -> None:
        self.huey = huey
        self.calls: list[Any] = []

        @huey.task()
        def add(x: int, y: int) -> int:
            tripwire.add_breadcrumb(message=f"adding {x}")
            return x + y

        @huey.task(retries=1)
        def boom(x: int) -> None:
            raise ValueError(f"boom {x}")

        @huey.task()
        def retry_once() -> str:
            self.calls.append("retry_once")
            if self.calls.count("retry_once") == 1:
                raise RetryTask()
            return "done"

        @huey.task()
        def cancelled() -> None:
            raise CancelExecution(retry=False)

        @huey.task()
        def traced(**kwargs: Any) -> Optional[str]:
            self.calls.append(kwargs)  # no sentry_headers kwarg reaches the task
            span = tripwire.get_current_span()
            return span.trace_id if span is not None else None

        self.add, self.boom, self.retry_once = add, boom, retry_once
        self.cancelled, self.traced = cancelled, traced


def immediate() -> Tasks:
    return Tasks(MemoryHuey("tests", immediate=True))


# -- immediate mode ------------------------------------------------------------------------


def test_submit_spans_and_task_transactions_in_one_trace() -> None:
    memory = init(traces_sample_rate=1.0)
    tasks = immediate()
    with tripwire.start_transaction(name="producer", op="test") as producer:
        assert tasks.add(1, 2)() == 3
        assert tasks.traced()() == producer.trace_id
    tripwire.flush()

    assert tasks.calls == [{}]
    (producer_tx,) = [t for t in memory.transactions if t["transaction"] == "producer"]
    submits = producer_tx["spans"]
    assert [(s["op"], s["description"], s["origin"]) for s in submits] == [
        ("queue.submit.huey", "add", "auto.queue.huey"),
        ("queue.submit.huey", "traced", "auto.queue.huey"),
    ]
    assert submits[0]["data"]["messaging.destination.name"] == "tests"
    (add,) = [t for t in memory.transactions if t["transaction"] == "add"]
    trace = add["contexts"]["trace"]
    assert trace["op"] == "queue.task.huey"
    assert trace["origin"] == "auto.queue.huey"
    assert trace["status"] == "ok"
    assert trace["data"]["messaging.destination.name"] == "tests"
    assert trace["trace_id"] == producer.trace_id
    assert trace["parent_span_id"] == submits[0]["span_id"]
    assert add["transaction_info"] == {"source": "task"}
    assert add["tags"]["status"] == "ok"
    assert add["tags"]["huey_task_retry"] == "False"
    assert add["extra"]["huey-job"] == {
        "task": "add",
        "retry": 0,
        "args": "[Filtered]",
        "kwargs": "[Filtered]",
    }


def test_each_failed_attempt_is_an_event() -> None:
    memory = init(traces_sample_rate=1.0)
    tasks = immediate()
    result = tasks.boom(7)
    with pytest.raises(TaskException):
        result()
    tripwire.flush()

    first, second = memory.events
    for event in (first, second):
        (value,) = event["exception"]["values"]
        assert value["type"] == "ValueError"
        assert value["mechanism"] == {"type": "huey", "handled": False}
        assert value["stacktrace"]["frames"][-1]["function"] == "boom"
        assert event["transaction"] == "boom"
        assert event["tags"]["huey_task_id"] == result.id
        assert event["contexts"]["trace"]["status"] == "internal_error"
    assert first["tags"]["huey_task_retry"] == "False"
    assert second["tags"]["huey_task_retry"] == "True"
    assert second["extra"]["huey-job"]["retry"] == 1
    statuses = [t["contexts"]["trace"]["status"] for t in memory.transactions]
    assert statuses == ["internal_error", "internal_error"]


def test_args_only_with_send_default_pii() -> None:
    memory = init(send_default_pii=True)
    tasks = immediate()
    tasks.boom(x=7)
    tripwire.flush()
    assert memory.events[0]["extra"]["huey-job"]["args"] == []
    assert memory.events[0]["extra"]["huey-job"]["kwargs"] == {"x": 7}


def test_control_flow_is_aborted_not_an_error() -> None:
    memory = init(traces_sample_rate=1.0)
    tasks = immediate()
    assert tasks.retry_once()() == "done"
    tasks.cancelled()
    tripwire.flush()
    assert memory.events == []
    statuses = sorted(
        (t["transaction"], t["contexts"]["trace"]["status"]) for t in memory.transactions
    )
    assert statuses == [("cancelled", "aborted"), ("retry_once", "aborted"), ("retry_once", "ok")]


def test_each_task_has_its_own_isolation_scope() -> None:
    memory = init()
    tasks = immediate()
    tripwire.add_breadcrumb(message="before the tasks")
    tasks.add(1, 2)
    tasks.boom(2)
    (event, _) = memory.events
    assert event["breadcrumbs"]["values"] == []
    tripwire.capture_message("after")
    tripwire.flush()
    after = memory.events[-1]
    assert [c["message"] for c in after["breadcrumbs"]["values"]] == ["before the tasks"]
    assert "huey-job" not in after.get("extra", {})


def test_periodic_tasks_send_check_ins() -> None:
    memory = init(integration=HueyIntegration(monitor_periodic_tasks=True))
    huey = MemoryHuey("periodic", immediate=True)

    @huey.periodic_task(crontab(minute="*/15", hour="9-17"))
    def report() -> None:
        return None

    @huey.periodic_task(crontab(minute="0", day="1", day_of_week="1"))
    def both_days() -> None:
        return None

    huey.execute(report.s())
    huey.execute(both_days.s())  # day and weekday: no Sentry schedule
    tripwire.flush()
    check_ins = [json.loads(item.get_bytes()) for item in memory.items("check_in")]
    assert [(c["monitor_slug"], c["status"]) for c in check_ins] == [
        ("report", "in_progress"),
        ("report", "ok"),
    ]
    assert check_ins[0]["monitor_config"] == {
        "schedule": {"type": "crontab", "value": "*/15 9-17 * * *"},
        "timezone": "UTC",
    }


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({}, "* * * * *"),
        ({"minute": "0,30", "day_of_week": "1-5"}, "0,30 * * * 1-5"),
        ({"minute": "5", "day_of_week": "0"}, "5 * * * 0"),
        ({"minute": "5", "day_of_week": "7"}, "5 * * * 0"),
        ({"minute": "*/20", "month": "1-12/3"}, "*/20 * * */3 *"),
    ],
)
def test_crontabs_as_sentry_schedules(options: dict[str, str], expected: str) -> None:
    huey = MemoryHuey("schedules")

    @huey.periodic_task(crontab(**options))
    def job() -> None:
        return None

    config = _monitor_config(huey, job.s())
    assert config is not None
    assert config["schedule"] == {"type": "crontab", "value": expected}


def test_headers_are_taken_off_without_the_integration() -> None:
    init(traces_sample_rate=1.0)
    tasks = Tasks(MemoryHuey("later"))
    with tripwire.start_transaction(name="producer"):
        tasks.traced()
    message = tasks.huey.dequeue()
    assert message is not None
    assert set(message.kwargs["sentry_headers"]) == {"sentry-trace", "baggage"}
    tripwire.testing.reset()
    tripwire.init(dsn=DSN, transport=MemoryTransport(), default_integrations=False)
    HueyIntegration.setup_once()  # patched, but this client lacks the integration
    tasks.huey.execute(message)
    assert tasks.calls == [{}]


def test_reset_undoes_the_patches() -> None:
    original = Huey.enqueue, Huey._execute
    init()
    assert Huey.enqueue is not original[0]
    tripwire.testing.reset()
    assert (Huey.enqueue, Huey._execute) == original


def test_import_tripwire_and_init_do_not_import_huey() -> None:
    code = (
        "import sys, tripwire; "
        "tripwire.init(dsn='http://k@127.0.0.1:9/1', auto_enabling_integrations=True); "
        "from tripwire.integrations.huey import HueyIntegration; "
        "assert tripwire.get_client().get_integration(HueyIntegration) is not None; "
        "assert not [m for m in sys.modules if m.split('.')[0] == 'huey'], 'huey imported'; "
        "import huey.api; "
        "assert getattr(huey.api.Huey._execute, '__tripwire_huey__', False)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr


# -- a real consumer on redis --------------------------------------------------------------


def test_real_consumer(redis_server: RedisServer, keyspace: str) -> None:
    memory = init(traces_sample_rate=1.0)
    huey = RedisHuey(f"{keyspace}huey", host=redis_server.host, port=redis_server.port)
    tasks = Tasks(huey)
    with tripwire.start_transaction(name="producer", op="test") as producer:
        added = tasks.add(1, 2)
        failed = tasks.boom(5)
        traced = tasks.traced()
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    consumer = huey.create_consumer(workers=2, worker_type="thread", periodic=False)
    consumer.start()
    try:
        assert added.get(blocking=True, timeout=30) == 3
        assert traced.get(blocking=True, timeout=30) == producer.trace_id
        with pytest.raises(TaskException):
            failed.get(blocking=True, timeout=30)
    finally:
        consumer.stop(graceful=True)  # the workers are joined: their transactions ended
        for sig, handler in handlers.items():
            signal.signal(sig, handler)
        huey.storage.conn.connection_pool.disconnect()
    tripwire.flush()

    assert tasks.calls == [{}]
    names = sorted(t["transaction"] for t in memory.transactions)
    assert names == ["add", "boom", "boom", "producer", "traced"]
    for transaction in memory.transactions:
        assert transaction["contexts"]["trace"]["trace_id"] == producer.trace_id
    assert len(memory.events) == 2
    for event in memory.events:
        assert event["exception"]["values"][0]["mechanism"] == {"type": "huey", "handled": False}
        assert event["contexts"]["trace"]["trace_id"] == producer.trace_id
        assert event["contexts"]["trace"]["data"]["thread.name"] != "MainThread"


# -- the same as sentry_sdk 2.75 -----------------------------------------------------------

SCRIPT = """
import warnings

warnings.simplefilter("ignore", DeprecationWarning)  # send_default_pii, on both sides
from huey import MemoryHuey
from huey.exceptions import RetryTask
from sentry_sdk.integrations.huey import HueyIntegration

sentry_sdk.init(
    dsn="http://key@example.com/1", transport=KEEP, release="r1", traces_sample_rate=1.0,
    default_integrations=False, send_default_pii=True, integrations=[HueyIntegration()],
)
huey = MemoryHuey("scenario", immediate=True)
calls = []


@huey.task()
def add(x, y):
    return x + y


@huey.task(retries=1)
def boom(x):
    raise ValueError("boom %d" % x)


@huey.task()
def retry_once():
    calls.append(1)
    if len(calls) == 1:
        raise RetryTask()


with sentry_sdk.start_transaction(name="producer", op="test"):
    add(1, y=2)
    boom(3)
    retry_once()
finish()
"""

_VOLATILE = {
    "event_id", "timestamp", "start_timestamp", "sent_at", "sdk", "server_name", "platform",
    "modules", "trace_id", "span_id", "parent_span_id", "thread.id", "sample_rand", "vars",
    "received", "huey_task_id",
}  # fmt: skip


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "?" if k in _VOLATILE else _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return value


def test_same_as_sentry_sdk(tmp_path: Path) -> None:
    sentry, ours = run_both(textwrap.dedent(SCRIPT), tmp_path)
    theirs, mine = sentry["items"], ours["items"]
    # producer; add; boom twice (an event each); retry_once twice.
    assert [i["type"] for i in mine] == [i["type"] for i in theirs]
    assert len(mine) == 8
    for their_item, my_item in zip(theirs, mine):
        a, b = _shape(my_item["payload"]), _shape(their_item["payload"])
        for side in (a, b):
            # Tags as Sentry stores them (sentry_sdk sends the bool, tripwire its string).
            side["tags"] = stored_tags(side.get("tags"))
        if my_item["type"] == "event":
            for side in (a, b):
                # tripwire's event trace context has the transaction's thread data only
                # (sentry_sdk adds the transaction's data: messaging.destination.name).
                side["contexts"]["trace"].pop("data")
                for value in side["exception"]["values"]:
                    value.pop("module", None)
        assert a == b, my_item["type"]
