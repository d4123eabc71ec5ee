"""Dramatiq integration: a real `dramatiq.Worker` on a `RedisBroker` (the session's redis).

Each test builds its broker after `tripwire.init` (the integration adds its middleware
to brokers created afterwards), declares its actors on it, sends messages, runs a
worker in the test process until the queue is joined, then stops it. The
differential test runs the same script on sentry_sdk 2.75 and on tripwire.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import pytest
from _redis_server import (
    RedisServer,
    keyspace_fixture,  # noqa: F401
    redis_server_fixture,  # noqa: F401
)
from _side_by_side import run

import tripwire
from tripwire.integrations.dramatiq import DramatiqIntegration, SentryMiddleware
from tripwire.testing import MemoryTransport

if TYPE_CHECKING:
    import dramatiq
    from dramatiq.brokers.redis import RedisBroker
    from dramatiq.brokers.stub import StubBroker
    from dramatiq.errors import Retry


@pytest.fixture(autouse=True, scope="module")
def _dramatiq() -> None:
    """Dramatiq is imported when the module's tests start, not at collection (every xdist
    worker collects every module; tests/_lazy.py)."""
    global dramatiq, RedisBroker, StubBroker, Retry
    import dramatiq
    from dramatiq.brokers.redis import RedisBroker
    from dramatiq.brokers.stub import StubBroker
    from dramatiq.errors import Retry


DSN = "http://key@example.com/1"


def init(**options: Any) -> MemoryTransport:
    memory = MemoryTransport()
    tripwire.init(
        dsn=DSN,
        transport=memory,
        integrations=[DramatiqIntegration()],
        default_integrations=False,
        **options,
    )
    return memory


class Queue:
    """A RedisBroker on the test's namespace, its actors, and a worker run to completion."""

    def __init__(self, redis: RedisServer, namespace: str) -> None:
        self.broker = RedisBroker(url=redis.url(), namespace=namespace)  # type: ignore[no-untyped-call]
        self.calls: list[str] = []

        def add(x: int, y: int) -> None:
            tripwire.add_breadcrumb(message=f"adding {x}")
            self.calls.append("add")

        def boom(x: int) -> None:
            self.calls.append("boom")
            raise ValueError(f"boom {x}")

        def retry_once() -> None:
            self.calls.append("retry_once")
            if self.calls.count("retry_once") == 1:
                raise Retry(delay=1)

        def declared() -> None:
            raise KeyError("declared")

        def traced() -> None:
            span = tripwire.get_current_span()
            self.calls.append(span.trace_id if span is not None else "")

        options: dict[str, Any] = {"broker": self.broker, "min_backoff": 1, "max_backoff": 1}
        self.add = dramatiq.actor(max_retries=0, **options)(add)
        self.boom = dramatiq.actor(max_retries=1, **options)(boom)
        self.retry_once = dramatiq.actor(max_retries=3, **options)(retry_once)
        self.declared = dramatiq.actor(max_retries=0, throws=(KeyError,), **options)(declared)
        self.traced = dramatiq.actor(max_retries=0, **options)(traced)

    def work(self) -> None:
        worker = dramatiq.Worker(self.broker, worker_threads=1, worker_timeout=50)
        worker.start()
        try:
            self.broker.join("default", timeout=30_000)
            worker.join()
        finally:
            worker.stop()
        tripwire.flush()

    def close(self) -> None:
        self.broker.close()


@pytest.fixture
def make_queue(redis_server: RedisServer, keyspace: str) -> Iterator[Callable[[], Queue]]:
    made: list[Queue] = []

    def make() -> Queue:
        queue = Queue(redis_server, f"{keyspace}dq{len(made)}")
        made.append(queue)
        return queue

    yield make
    for queue in made:
        queue.close()


def test_message_transactions_continue_the_producers_trace(
    make_queue: Callable[[], Queue],
) -> None:
    memory = init(traces_sample_rate=1.0)
    queue = make_queue()
    assert isinstance(queue.broker.middleware[0], SentryMiddleware)
    with tripwire.start_transaction(name="producer", op="test") as producer:
        message = queue.add.send(1, 2)
        queue.traced.send()
    queue.work()

    headers = message.options["_sentry_headers"]
    assert headers["sentry-trace"].startswith(f"{producer.trace_id}-{producer.span_id}")
    assert f"sentry-trace_id={producer.trace_id}" in headers["baggage"]
    (add,) = [t for t in memory.transactions if t["transaction"] == "add"]
    trace = add["contexts"]["trace"]
    assert trace["op"] == "queue.task.dramatiq"
    assert trace["origin"] == "auto.queue.dramatiq"
    assert trace["status"] == "ok"
    assert trace["data"]["messaging.destination.name"] == "default"
    assert trace["trace_id"] == producer.trace_id
    assert trace["parent_span_id"] == producer.span_id
    assert add["transaction_info"] == {"source": "task"}
    assert add["tags"] == {"status": "ok"}
    assert add["extra"] == {"dramatiq_message_id": message.message_id}
    assert queue.calls[-1] == producer.trace_id  # the actor runs inside the trace


def test_failures_are_events_for_every_attempt(make_queue: Callable[[], Queue]) -> None:
    memory = init(traces_sample_rate=1.0)
    queue = make_queue()
    with tripwire.start_transaction(name="producer", op="test") as producer:
        message = queue.boom.send(7)
    queue.work()

    assert queue.calls == ["boom", "boom"]
    first, second = memory.events
    for event in (first, second):
        (value,) = event["exception"]["values"]
        assert value["type"] == "ValueError"
        assert value["mechanism"] == {"type": "dramatiq", "handled": False}
        assert value["stacktrace"]["frames"][-1]["function"] == "boom"
        assert event["transaction"] == "boom"
        assert event["extra"] == {"dramatiq_message_id": message.message_id}
        context = event["contexts"]["dramatiq"]
        assert context["type"] == "dramatiq"
        assert context["data"]["actor_name"] == "boom"
        assert context["data"]["args"] == [7]  # the message, whatever send_default_pii
        assert context["data"]["message_id"] == message.message_id
    # The first attempt continues the producer's trace, the retry starts its own.
    assert first["contexts"]["trace"]["trace_id"] == producer.trace_id
    assert second["contexts"]["trace"]["trace_id"] != producer.trace_id
    assert second["contexts"]["dramatiq"]["data"]["options"]["retries"] == 2
    attempts = [t for t in memory.transactions if t["transaction"] == "boom"]
    assert [t["contexts"]["trace"]["status"] for t in attempts] == ["internal_error"] * 2


def test_retry_and_declared_exceptions_are_not_reported(
    make_queue: Callable[[], Queue],
) -> None:
    memory = init(traces_sample_rate=1.0)
    queue = make_queue()
    queue.retry_once.send()
    queue.declared.send()
    queue.work()
    assert memory.events == []
    assert queue.calls == ["retry_once", "retry_once"]
    statuses = sorted(
        (t["transaction"], t["contexts"]["trace"]["status"]) for t in memory.transactions
    )
    assert statuses == [("declared", "ok"), ("retry_once", "ok"), ("retry_once", "ok")]


@pytest.mark.parametrize(
    ("options", "data"),
    [
        ({"max_request_body_size": "never"}, "removed"),
        ({"max_request_body_size": "always"}, "kept"),
        ({"data_collection": {"http_bodies": []}}, "absent"),
    ],
)
def test_message_data_is_bounded(
    options: dict[str, Any], data: str, make_queue: Callable[[], Queue]
) -> None:
    memory = init(**options)
    queue = make_queue()
    queue.boom.send_with_options(args=(1,), max_retries=0)
    queue.work()
    (event,) = memory.events
    context = event["contexts"]["dramatiq"]
    assert context["type"] == "dramatiq"
    if data == "removed":
        assert context["data"] == ""
        assert event["_meta"]["contexts"]["dramatiq"]["data"][""]["rem"] == [["!config", "x"]]
    elif data == "kept":
        assert context["data"]["args"] == [1]
    else:
        assert "data" not in context


def test_each_message_has_its_own_isolation_scope(make_queue: Callable[[], Queue]) -> None:
    memory = init()
    queue = make_queue()
    tripwire.add_breadcrumb(message="before the worker")
    queue.add.send(1, 2)
    queue.boom.send_with_options(args=(2,), max_retries=0)
    queue.work()
    (event,) = memory.events
    assert event["breadcrumbs"]["values"] == []
    tripwire.capture_message("after")
    tripwire.flush()
    after = memory.events[-1]
    assert [c["message"] for c in after["breadcrumbs"]["values"]] == ["before the worker"]
    assert "dramatiq" not in after.get("contexts", {})


def test_the_middleware_goes_first_and_only_once() -> None:
    init()
    mine = SentryMiddleware()
    broker = StubBroker([mine])  # positionally, as StubBroker allows
    assert [type(m) for m in broker.middleware].count(SentryMiddleware) == 1
    assert isinstance(broker.middleware[0], SentryMiddleware)
    assert len(StubBroker().middleware) == len(dramatiq.middleware.default_middleware) + 1
    broker.close()


def test_without_the_integration_nothing_is_added(make_queue: Callable[[], Queue]) -> None:
    memory = MemoryTransport()
    tripwire.init(dsn=DSN, transport=memory, default_integrations=False, traces_sample_rate=1.0)
    queue = make_queue()
    assert not any(isinstance(m, SentryMiddleware) for m in queue.broker.middleware)
    with tripwire.start_transaction(name="producer"):
        message = queue.boom.send_with_options(args=(1,), max_retries=0)
    queue.work()
    assert "_sentry_headers" not in message.options
    assert memory.events == []
    assert [t["transaction"] for t in memory.transactions] == ["producer"]


def test_reset_undoes_the_patch_and_it_is_not_auto_enabled() -> None:
    from dramatiq.broker import Broker

    original = Broker.__init__
    init()
    assert Broker.__init__ is not original
    tripwire.testing.reset()
    assert Broker.__init__ is original
    code = (
        "import tripwire; "
        "tripwire.init(dsn='http://k@127.0.0.1:9/1', auto_enabling_integrations=True); "
        "from tripwire.integrations.dramatiq import DramatiqIntegration; "
        "assert tripwire.get_client().get_integration(DramatiqIntegration) is None"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr


# -- the same as sentry_sdk 2.75 -----------------------------------------------------------

SCRIPT = """
import warnings

warnings.simplefilter("ignore", DeprecationWarning)  # send_default_pii, on both sides
import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.errors import Retry
from sentry_sdk.integrations.dramatiq import DramatiqIntegration

sentry_sdk.init(
    dsn="http://key@example.com/1", transport=KEEP, release="r1", traces_sample_rate=1.0,
    default_integrations=False, integrations=[DramatiqIntegration()],
)
broker = RedisBroker(url=REDIS_URL, namespace=NAMESPACE)
calls = []


@dramatiq.actor(broker=broker, max_retries=0)
def add(x, y):
    calls.append("add")


@dramatiq.actor(broker=broker, max_retries=1, min_backoff=1, max_backoff=1)
def boom(x):
    raise ValueError("boom %d" % x)


@dramatiq.actor(broker=broker, max_retries=2, min_backoff=1, max_backoff=1)
def retry_once():
    calls.append("retry")
    if calls.count("retry") == 1:
        raise Retry(delay=1)


with sentry_sdk.start_transaction(name="producer", op="test"):
    add.send(1, 2)
    boom.send(3)
    retry_once.send()
worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=50)
worker.start()
broker.join("default", timeout=30000)
worker.join()
worker.stop()
broker.close()
finish()
"""

# Differ between runs or SDKs by nature.
_VOLATILE = {
    "event_id", "timestamp", "start_timestamp", "sent_at", "sdk", "server_name", "platform",
    "modules", "trace_id", "span_id", "parent_span_id", "thread.id", "sample_rand", "vars",
    "received", "dramatiq_message_id", "message_id", "redis_message_id", "message_timestamp",
    "requeue_timestamp", "_sentry_headers", "eta",
}  # fmt: skip


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: "?" if k in _VOLATILE else _shape(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_shape(v) for v in value]
    return value


def _item_shape(item: dict[str, Any]) -> str:
    payload = _shape(item["payload"])
    if item["type"] == "event":
        # tripwire's event trace context has the transaction's thread data only
        # (sentry_sdk adds the transaction's data: messaging.destination.name).
        payload["contexts"]["trace"].pop("data")
        for value in payload["exception"]["values"]:
            value.pop("module", None)
    return json.dumps([item["type"], payload], sort_keys=True)


def test_same_as_sentry_sdk(redis_server: RedisServer, keyspace: str, tmp_path: Path) -> None:
    prelude = f"REDIS_URL = {redis_server.url()!r}\n"
    # A namespace per SDK: nothing one run leaves in redis reaches the other.
    script = textwrap.dedent(SCRIPT)
    sentry = run(prelude + f"NAMESPACE = {keyspace + 's'!r}\n" + script, "sentry", tmp_path)
    ours = run(prelude + f"NAMESPACE = {keyspace + 't'!r}\n" + script, "tripwire", tmp_path)
    theirs = sorted(_item_shape(item) for item in sentry["items"])
    mine = sorted(_item_shape(item) for item in ours["items"])
    # producer, add, boom twice (an event each), retry_once twice
    assert len(mine) == 8
    assert len(theirs) == len(mine)
    for a, b in zip(mine, theirs):
        assert json.loads(a) == json.loads(b)
