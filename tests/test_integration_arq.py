"""arq integration: arq's own `Worker` in burst mode on the session's redis-server.

Jobs are enqueued with `ArqRedis.enqueue_job` and run by a real `Worker` in the test
process (``burst=True``: it returns once the queue is empty). The differential test
runs the same script on sentry_sdk 2.75 and on tripwire, one interpreter each.
"""

from __future__ import annotations

import asyncio
import json
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
from tripwire.integrations.arq import ArqIntegration, _crontab
from tripwire.testing import MemoryTransport

if TYPE_CHECKING:
    from arq import Retry, create_pool, cron
    from arq.connections import ArqRedis, RedisSettings
    from arq.worker import Worker, create_worker, func


@pytest.fixture(autouse=True, scope="module")
def _arq() -> None:
    """arq is imported when the module's tests start, not at collection (every xdist
    worker collects every module; tests/_lazy.py)."""
    global Retry, create_pool, cron, ArqRedis, RedisSettings, Worker, create_worker, func
    from arq import Retry, create_pool, cron
    from arq.connections import ArqRedis, RedisSettings
    from arq.worker import Worker, create_worker, func


DSN = "http://key@example.com/1"


async def add(ctx: dict[str, Any], x: int, y: int) -> int:
    tripwire.add_breadcrumb(message=f"adding {x}")
    return x + y


async def boom(ctx: dict[str, Any], x: int) -> None:
    raise ValueError(f"boom {x}")


async def retry_once(ctx: dict[str, Any]) -> str:
    if ctx["job_try"] == 1:
        raise Retry(defer=0)
    return "done"


async def nightly(ctx: dict[str, Any]) -> None:
    return None


def init(**options: Any) -> MemoryTransport:
    memory = MemoryTransport()
    integration = options.pop("integration", None) or ArqIntegration()
    tripwire.init(
        dsn=DSN,
        transport=memory,
        integrations=[integration],
        default_integrations=False,
        **options,
    )
    return memory


def settings(redis: RedisServer) -> RedisSettings:
    return RedisSettings(host=redis.host, port=redis.port)


async def _run(
    redis: RedisServer,
    queue: str,
    jobs: list[tuple[str, tuple[Any, ...], dict[str, Any]]],
    functions: Optional[list[Any]] = None,
    by_hand: bool = False,
    **worker_options: Any,
) -> None:
    pool: ArqRedis = await create_pool(settings(redis), default_queue_name=queue)
    try:
        for name, args, kwargs in jobs:
            await pool.enqueue_job(name, *args, **kwargs)
        options: dict[str, Any] = {
            "functions": functions or [add, boom, retry_once],
            "redis_pool": pool,
            "queue_name": queue,
            "burst": True,
            "poll_delay": 0,
            "max_jobs": 1,  # one job at a time: the items come in enqueue order
            "handle_signals": False,
            **worker_options,
        }
        if by_hand:
            worker = Worker(**options)
        else:
            worker = create_worker(options)
        # Not `worker.close()`: it closes the pool with redis-py's deprecated `close`.
        await worker.main()
    finally:
        await pool.aclose()


def run_jobs(
    redis: RedisServer,
    queue: str,
    *jobs: tuple[str, tuple[Any, ...], dict[str, Any]],
    producer: bool = False,
    **options: Any,
) -> None:
    if producer:

        async def produce_and_run() -> None:
            with tripwire.start_transaction(name="producer", op="test"):
                await _run(redis, queue, list(jobs), **options)

        asyncio.run(produce_and_run())
    else:
        asyncio.run(_run(redis, queue, list(jobs), **options))
    tripwire.flush()


def by_name(memory: MemoryTransport, name: str) -> list[dict[str, Any]]:
    return [t for t in memory.transactions if t["transaction"] == name]


# -- in-process: arq's Worker --------------------------------------------------------------


def test_submit_spans_and_job_transactions(redis_server: RedisServer, keyspace: str) -> None:
    memory = init(traces_sample_rate=1.0)
    queue = f"{keyspace}arq"
    run_jobs(redis_server, queue, ("add", (1, 2), {"_job_id": "job-1"}), producer=True)

    (producer,) = by_name(memory, "producer")
    (submit,) = producer["spans"]
    assert submit["op"] == "queue.submit.arq"
    assert submit["description"] == "add"
    assert submit["origin"] == "auto.queue.arq"
    (job,) = by_name(memory, "add")
    trace = job["contexts"]["trace"]
    assert trace["op"] == "queue.task.arq"
    assert trace["origin"] == "auto.queue.arq"
    assert trace["status"] == "ok"
    assert trace["data"]["messaging.destination.name"] == queue
    assert job["transaction_info"] == {"source": "task"}
    assert job["tags"] == {"status": "ok", "arq_task_id": "job-1", "arq_task_retry": "False"}
    assert job["extra"]["arq-job"] == {
        "task": "add",
        "retry": 1,
        "args": "[Filtered]",
        "kwargs": "[Filtered]",
    }
    # As sentry_sdk: arq jobs carry no trace headers, the job starts its own trace.
    assert trace["trace_id"] != producer["contexts"]["trace"]["trace_id"]


def test_failure_is_an_unhandled_event_with_the_job(
    redis_server: RedisServer, keyspace: str
) -> None:
    memory = init(traces_sample_rate=1.0)
    run_jobs(redis_server, f"{keyspace}arq", ("boom", (7,), {"_job_id": "boom-7"}))

    (event,) = memory.events
    (value,) = event["exception"]["values"]
    assert value["type"] == "ValueError"
    assert value["mechanism"] == {"type": "arq", "handled": False}
    assert value["stacktrace"]["frames"][-1]["function"] == "boom"
    assert event["transaction"] == "boom"
    assert event["tags"] == {"arq_task_id": "boom-7", "arq_task_retry": "False"}
    assert event["extra"]["arq-job"]["args"] == "[Filtered]"
    (transaction,) = memory.transactions
    assert transaction["transaction"] == "boom"
    assert transaction["contexts"]["trace"]["status"] == "internal_error"
    assert event["contexts"]["trace"]["span_id"] == transaction["contexts"]["trace"]["span_id"]


def test_args_only_with_send_default_pii(redis_server: RedisServer, keyspace: str) -> None:
    memory = init(send_default_pii=True)
    run_jobs(redis_server, f"{keyspace}arq", ("boom", (), {"x": 7}))
    (event,) = memory.events
    assert event["extra"]["arq-job"]["args"] == []
    assert event["extra"]["arq-job"]["kwargs"] == {"x": 7}
    assert memory.transactions == []  # tracing off


def test_args_with_data_collection_queues(redis_server: RedisServer, keyspace: str) -> None:
    memory = init(data_collection={"queues": True})
    run_jobs(redis_server, f"{keyspace}arq", ("boom", (8,), {}))
    (event,) = memory.events
    assert event["extra"]["arq-job"]["args"] == [8]


def test_retry_is_aborted_not_an_error(redis_server: RedisServer, keyspace: str) -> None:
    memory = init(traces_sample_rate=1.0)
    run_jobs(redis_server, f"{keyspace}arq", ("retry_once", (), {}))
    assert memory.events == []
    first, second = by_name(memory, "retry_once")
    assert first["contexts"]["trace"]["status"] == "aborted"
    assert first["tags"]["arq_task_retry"] == "False"
    assert second["contexts"]["trace"]["status"] == "ok"
    assert second["tags"]["arq_task_retry"] == "True"
    assert second["extra"]["arq-job"]["retry"] == 2


def test_unknown_function_is_an_unnamed_transaction(
    redis_server: RedisServer, keyspace: str
) -> None:
    memory = init(traces_sample_rate=1.0)
    run_jobs(redis_server, f"{keyspace}arq", ("missing", (), {}))
    assert memory.events == []
    (transaction,) = memory.transactions
    assert transaction["transaction"] == "unknown arq task"
    assert "arq-job" not in transaction.get("extra", {})


@pytest.mark.parametrize("by_hand", [False, True])
def test_each_job_has_its_own_isolation_scope(
    by_hand: bool, redis_server: RedisServer, keyspace: str
) -> None:
    memory = init()
    tripwire.add_breadcrumb(message="before the worker")
    run_jobs(
        redis_server,
        f"{keyspace}arq",
        ("add", (1, 2), {}),
        ("boom", (2,), {}),
        by_hand=by_hand,  # a Worker built by hand is instrumented too
    )
    (event,) = memory.events
    assert event["breadcrumbs"]["values"] == []
    assert event["transaction"] == "boom"
    tripwire.capture_message("after")
    tripwire.flush()
    after = memory.events[-1]
    assert [c["message"] for c in after["breadcrumbs"]["values"]] == ["before the worker"]
    assert "arq-job" not in after.get("extra", {})


def test_cron_jobs_send_check_ins(redis_server: RedisServer, keyspace: str) -> None:
    integration = ArqIntegration(monitor_cron_jobs=True, exclude_cron_jobs=["skip.*"])
    memory = init(integration=integration)
    cron_jobs = [
        cron(nightly, hour=3, minute=0, run_at_startup=True),
        cron(nightly, name="skipped", minute=5, run_at_startup=True),
    ]
    run_jobs(redis_server, f"{keyspace}arq", cron_jobs=cron_jobs, functions=[add])
    check_ins = [json.loads(item.get_bytes()) for item in memory.items("check_in")]
    assert [(c["monitor_slug"], c["status"]) for c in check_ins] == [
        ("nightly", "in_progress"),
        ("nightly", "ok"),
    ]
    assert check_ins[0]["monitor_config"]["schedule"] == {"type": "crontab", "value": "0 3 * * *"}
    assert check_ins[0]["check_in_id"] == check_ins[1]["check_in_id"]


def test_a_cron_job_the_user_monitors_is_left_to_that_monitor() -> None:
    memory = init(integration=ArqIntegration(monitor_cron_jobs=True))

    @tripwire.monitor(monitor_slug="mine")
    async def job(ctx: dict[str, Any]) -> int:
        return 1

    async def main() -> Any:  # the worker takes the running loop (no loop of its own)
        worker = Worker(functions=[], cron_jobs=[cron(job, minute=5)], redis_settings=None)
        return await worker.cron_jobs[0].coroutine({})

    assert asyncio.run(main()) == 1
    check_ins = [json.loads(item.get_bytes()) for item in memory.items("check_in")]
    # One monitor, the user's (it was also wrapped under the job's name: two monitors).
    assert [(c["monitor_slug"], c["status"]) for c in check_ins] == [
        ("mine", "in_progress"),
        ("mine", "ok"),
    ]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"minute": 0}, "0 * * * *"),
        ({"minute": {0, 30}, "hour": 9, "weekday": "mon"}, "0,30 9 * * 1"),
        ({"minute": 0, "weekday": 6}, "0 * * * 0"),
        ({"minute": 0, "day": 1, "month": {1, 7}}, "0 * 1 1,7 *"),
        ({"minute": 0, "second": 30}, None),  # seconds: not a crontab
        ({"minute": 0, "day": 1, "weekday": 1}, None),  # both: cron matches either
    ],
)
def test_schedules_as_crontabs(options: dict[str, Any], expected: Optional[str]) -> None:
    assert _crontab(cron(nightly, **options)) == expected


def test_without_the_integration_nothing_is_added(redis_server: RedisServer, keyspace: str) -> None:
    memory = MemoryTransport()
    tripwire.init(dsn=DSN, transport=memory, default_integrations=False, traces_sample_rate=1.0)
    run_jobs(redis_server, f"{keyspace}arq", ("boom", (1,), {}), producer=True)
    assert memory.events == []
    (producer,) = memory.transactions
    assert producer["spans"] == []


def test_reset_undoes_the_patches() -> None:
    original = Worker.__init__, Worker.run_job, ArqRedis.enqueue_job
    init()
    assert Worker.run_job is not original[1]
    tripwire.testing.reset()
    assert (Worker.__init__, Worker.run_job, ArqRedis.enqueue_job) == original
    # A function already given to arq keeps working without the SDK.
    assert func(add).coroutine is add


def test_import_tripwire_and_init_do_not_import_arq() -> None:
    code = (
        "import sys, tripwire; "
        "tripwire.init(dsn='http://k@127.0.0.1:9/1', auto_enabling_integrations=True); "
        "from tripwire.integrations.arq import ArqIntegration; "
        "assert tripwire.get_client().get_integration(ArqIntegration) is not None; "
        "assert not [m for m in sys.modules if m.split('.')[0] == 'arq'], 'arq imported'; "
        "import arq.worker, arq.connections; "
        "assert getattr(arq.worker.Worker.run_job, '__tripwire_arq__', False); "
        "assert getattr(arq.connections.ArqRedis.enqueue_job, '__tripwire_arq__', False)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr


# -- the same as sentry_sdk 2.75 -----------------------------------------------------------

SCRIPT = """
import asyncio
import warnings

warnings.simplefilter("ignore", DeprecationWarning)  # send_default_pii, on both sides
from arq import Retry, create_pool
from arq.connections import RedisSettings
from sentry_sdk.integrations.arq import ArqIntegration

sentry_sdk.init(
    dsn="http://key@example.com/1", transport=KEEP, release="r1", traces_sample_rate=1.0,
    default_integrations=False, send_default_pii=True, integrations=[ArqIntegration()],
)
# After init: sentry_sdk replaces the module's `create_worker` (a name imported before
# stays unpatched there); tripwire wraps the functions in `Worker.__init__`.
from arq.worker import create_worker


async def add(ctx, x, y):
    return x + y


async def boom(ctx, x):
    raise ValueError("boom %d" % x)


async def retry_once(ctx):
    if ctx["job_try"] == 1:
        raise Retry(defer=0)
    return "done"


async def main():
    settings = RedisSettings(host=HOST, port=PORT)
    pool = await create_pool(settings, default_queue_name=QUEUE)
    with sentry_sdk.start_transaction(name="producer", op="test"):
        await pool.enqueue_job("add", 1, y=2, _job_id="add-1")
        await pool.enqueue_job("boom", 3, _job_id="boom-3")
        await pool.enqueue_job("retry_once", _job_id="retry-1")
    worker = create_worker(
        {"functions": [add, boom, retry_once], "redis_pool": pool, "queue_name": QUEUE,
         "burst": True, "poll_delay": 0, "max_jobs": 1, "handle_signals": False,
         "keep_result": 0}  # the second run enqueues the same job ids
    )
    await worker.main()
    await pool.aclose()


asyncio.run(main())
finish()
"""

_VOLATILE = {
    "event_id", "timestamp", "start_timestamp", "sent_at", "sdk", "server_name", "platform",
    "modules", "trace_id", "span_id", "parent_span_id", "thread.id", "sample_rand", "vars",
    "received",
}  # fmt: skip


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "?" if k in _VOLATILE else _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return value


def _item_shape(item: dict[str, Any]) -> str:
    payload = _shape(item["payload"])
    if item["type"] in ("event", "transaction"):
        # Tags as Sentry stores them (sentry_sdk sends the bool, tripwire its string).
        payload["tags"] = stored_tags(payload.get("tags"))
    if item["type"] == "event":
        # tripwire's event trace context has the transaction's thread data only
        # (sentry_sdk adds the transaction's data: messaging.destination.name).
        payload["contexts"]["trace"].pop("data")
        for value in payload["exception"]["values"]:
            value.pop("module", None)
    return json.dumps([item["type"], payload], sort_keys=True)


def test_same_as_sentry_sdk(redis_server: RedisServer, keyspace: str, tmp_path: Path) -> None:
    prelude = (
        f"HOST = {redis_server.host!r}\nPORT = {redis_server.port}\nQUEUE = {keyspace + 'diff'!r}\n"
    )
    sentry, ours = run_both(prelude + textwrap.dedent(SCRIPT), tmp_path)
    # Sorted: a job's event and transaction may come in either order.
    theirs = sorted(_item_shape(item) for item in sentry["items"])
    mine = sorted(_item_shape(item) for item in ours["items"])
    assert len(mine) == 6  # producer, add, boom (+ event), retry_once twice
    assert len(theirs) == len(mine)
    for a, b in zip(mine, theirs):
        assert json.loads(a) == json.loads(b)
