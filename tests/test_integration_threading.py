"""The threading integration: real threads, scope propagation and uncaught exceptions."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest

import tripwire
from tripwire.integrations.threading import ThreadingIntegration
from tripwire.testing import MemoryTransport, reset


@pytest.fixture(autouse=True)
def _reset_sdk() -> Iterator[None]:
    yield
    reset()


@pytest.fixture
def thread_errors(monkeypatch: pytest.MonkeyPatch) -> list[threading.ExceptHookArgs]:
    """What reaches `threading.excepthook` (instead of stderr and pytest's warning)."""
    seen: list[threading.ExceptHookArgs] = []
    monkeypatch.setattr(threading, "excepthook", seen.append)
    return seen


def init(**options: Any) -> MemoryTransport:
    memory = MemoryTransport()
    tripwire.init(transport=memory, **options)
    return memory


def run_thread(target: Any, **kwargs: Any) -> None:
    thread = threading.Thread(target=target, **kwargs)
    thread.start()
    thread.join()


def test_exception_escaping_a_thread_is_captured_and_reraised(
    thread_errors: list[threading.ExceptHookArgs],
) -> None:
    memory = init()

    def work() -> None:
        raise ValueError("in thread")

    run_thread(work, name="worker-1")

    (event,) = memory.events
    assert event["level"] == "error"
    (value,) = event["exception"]["values"]
    assert value["type"] == "ValueError"
    assert value["value"] == "in thread"
    assert value["mechanism"] == {"type": "threading", "handled": False}
    functions = [frame["function"] for frame in value["stacktrace"]["frames"]]
    assert functions[-1] == "work"
    assert not any("run_in_scopes" in f for f in functions)  # the SDK's wrapper is hidden
    # Re-raised: Python's own thread excepthook still sees it.
    (reported,) = thread_errors
    assert reported.exc_type is ValueError
    assert reported.thread is not None and reported.thread.name == "worker-1"


def test_subclass_overriding_run_is_covered(
    thread_errors: list[threading.ExceptHookArgs],
) -> None:
    memory = init()

    class Worker(threading.Thread):
        def run(self) -> None:
            raise TypeError("from run")

    worker = Worker()
    worker.start()
    worker.join()

    (event,) = memory.events
    assert event["exception"]["values"][0]["type"] == "TypeError"
    assert event["exception"]["values"][0]["stacktrace"]["frames"][-1]["function"] == "run"
    assert len(thread_errors) == 1


def test_system_exit_in_a_thread_is_not_captured(
    thread_errors: list[threading.ExceptHookArgs],
) -> None:
    memory = init()

    def work() -> None:
        raise SystemExit(3)

    run_thread(work)
    assert memory.events == []


def test_thread_runs_in_forks_of_the_starting_scopes(
    thread_errors: list[threading.ExceptHookArgs],
) -> None:
    memory = init()
    tripwire.set_tag("set_before_start", "yes")
    started = threading.Event()
    parent_changed = threading.Event()

    def work() -> None:
        started.set()
        parent_changed.wait(timeout=10)
        tripwire.set_tag("set_in_thread", "yes")
        tripwire.capture_message("from thread")

    thread = threading.Thread(target=work)
    thread.start()
    started.wait(timeout=10)
    tripwire.set_tag("set_after_start", "yes")
    parent_changed.set()
    thread.join()
    tripwire.capture_message("from parent")

    from_thread, from_parent = memory.events
    assert from_thread["tags"] == {"set_before_start": "yes", "set_in_thread": "yes"}
    assert from_parent["tags"] == {"set_before_start": "yes", "set_after_start": "yes"}
    assert thread_errors == []


def test_exception_event_carries_the_threads_scope(
    thread_errors: list[threading.ExceptHookArgs],
) -> None:
    memory = init()
    tripwire.set_user({"id": "parent-user"})

    def work() -> None:
        tripwire.set_tag("job", "import")
        raise RuntimeError("failed")

    run_thread(work)
    (event,) = memory.events
    assert event["tags"] == {"job": "import"}
    assert event["user"] == {"id": "parent-user"}


def test_without_propagation_threads_start_from_fresh_scopes() -> None:
    memory = init(integrations=[ThreadingIntegration(propagate_scope=False)])
    tripwire.set_tag("isolation", "parent")
    tripwire.get_global_scope().set_tag("global", "yes")

    run_thread(lambda: tripwire.capture_message("m"))

    (event,) = memory.events
    assert event["tags"] == {"global": "yes"}


def test_propagate_hub_is_the_old_name() -> None:
    assert ThreadingIntegration(propagate_hub=False).propagate_scope is False
    assert ThreadingIntegration().propagate_scope is True


def test_disabled_integration_leaves_threads_alone(
    thread_errors: list[threading.ExceptHookArgs],
) -> None:
    memory = init(disabled_integrations=[ThreadingIntegration])
    tripwire.set_tag("parent", "yes")
    seen: list[Any] = []

    def work() -> None:
        seen.append(threading.current_thread().run)
        raise ValueError("not captured")

    run_thread(work)
    assert memory.events == []
    assert len(thread_errors) == 1


def test_reset_restores_thread_start() -> None:
    original = threading.Thread.start
    init()
    assert threading.Thread.start is not original
    reset()
    assert threading.Thread.start is original


def test_many_threads_each_capture_once(
    thread_errors: list[threading.ExceptHookArgs],
) -> None:
    memory = init()

    def work(n: int) -> None:
        tripwire.set_tag("n", n)
        raise ValueError(str(n))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    events = memory.events
    assert sorted(int(e["tags"]["n"]) for e in events) == list(range(20))
    assert all(e["exception"]["values"][0]["value"] == str(e["tags"]["n"]) for e in events)
    assert len(thread_errors) == 20


# -- ThreadPoolExecutor ---------------------------------------------------------------------


def _pool_with_worker() -> Any:
    from concurrent.futures import ThreadPoolExecutor

    pool = ThreadPoolExecutor(max_workers=1)
    pool.submit(lambda: None).result()  # the worker thread exists before anything is set
    return pool


def test_pool_task_runs_in_the_scopes_of_submit() -> None:
    memory = init()
    pool = _pool_with_worker()
    try:
        tripwire.set_tag("before", "yes")

        def task(n: int) -> None:
            tripwire.set_tag("inside", n)
            tripwire.capture_message(f"task {n}")

        pool.submit(task, 1).result()
        list(pool.map(task, [2]))
        tripwire.capture_message("main")
    finally:
        pool.shutdown()
    tags = [(event["message"], event.get("tags", {})) for event in memory.events]
    assert tags == [
        ("task 1", {"before": "yes", "inside": "1"}),
        ("task 2", {"before": "yes", "inside": "2"}),
        ("main", {"before": "yes"}),
    ]


def test_pool_task_spans_are_children_of_the_submitting_span() -> None:
    memory = init(traces_sample_rate=1.0)
    pool = _pool_with_worker()

    def task() -> str:
        with tripwire.start_span(op="task", name="work"):
            return threading.current_thread().name

    try:
        with tripwire.start_transaction(name="tx") as transaction:
            with tripwire.start_span(op="outer") as outer:
                worker = pool.submit(task).result()
            pool.submit(task).result()
    finally:
        pool.shutdown()
    (event,) = memory.transactions
    tasks = [span for span in event["spans"] if span["op"] == "task"]
    assert [span["parent_span_id"] for span in tasks] == [outer.span_id, transaction.span_id]
    assert {span["data"]["thread.name"] for span in tasks} == {worker}
    assert worker != threading.current_thread().name


def test_pool_without_propagation_runs_each_task_in_fresh_scopes() -> None:
    memory = init(integrations=[ThreadingIntegration(propagate_scope=False)])
    pool = _pool_with_worker()
    try:
        tripwire.set_tag("before", "yes")

        def task(n: int) -> None:
            tripwire.set_tag("inside", n)
            tripwire.capture_message(f"task {n}")

        pool.submit(task, 1).result()
        pool.submit(task, 2).result()
    finally:
        pool.shutdown()
    assert [event.get("tags") for event in memory.events] == [{"inside": "1"}, {"inside": "2"}]


def test_pool_task_exception_stays_in_its_future() -> None:
    memory = init()
    pool = _pool_with_worker()

    def boom() -> None:
        raise ValueError("in task")

    try:
        assert isinstance(pool.submit(boom).exception(), ValueError)
    finally:
        pool.shutdown()
    assert memory.events == []


def test_reset_restores_pool_submit_and_setup_is_idempotent() -> None:
    from concurrent.futures import ThreadPoolExecutor

    original = ThreadPoolExecutor.submit
    init()
    patched = ThreadPoolExecutor.submit
    assert patched is not original
    start = threading.Thread.start
    ThreadingIntegration.setup_once()
    assert ThreadPoolExecutor.submit is patched
    assert threading.Thread.start is start
    reset()
    assert ThreadPoolExecutor.submit is original


_POOL_SCRIPT = """
import threading
from concurrent.futures import ThreadPoolExecutor
from sentry_sdk.integrations.threading import ThreadingIntegration

sentry_sdk.init(transport=KEEP, traces_sample_rate=1.0,
                integrations=[ThreadingIntegration(propagate_scope=PROPAGATE)])
pool = ThreadPoolExecutor(1)
pool.submit(lambda: None).result()

def task(n):
    sentry_sdk.set_tag("inside", n)
    with sentry_sdk.start_span(op="task", name="t%d" % n):
        sentry_sdk.capture_message("m%d" % n)

with sentry_sdk.start_transaction(name="tx", op="test"):
    sentry_sdk.set_tag("before", "yes")
    with sentry_sdk.start_span(op="outer", name="o"):
        pool.submit(task, 1).result()
    list(pool.map(task, [2]))
    sentry_sdk.capture_message("main")
pool.shutdown()
finish()
"""


@pytest.mark.parametrize("propagate", [True, False])
def test_pool_same_as_sentry_sdk(tmp_path: Any, propagate: bool) -> None:
    pytest.importorskip("sentry_sdk")
    from _side_by_side import of_type, run_both, stored_tags

    script = _POOL_SCRIPT.replace("PROPAGATE", str(propagate))
    shapes = []
    for found in run_both(script, tmp_path):
        events = [(e["message"], stored_tags(e.get("tags"))) for e in of_type(found, "event")]
        spans = []
        for transaction in of_type(found, "transaction"):
            names = {s["span_id"]: s["op"] for s in transaction["spans"]}
            names[transaction["contexts"]["trace"]["span_id"]] = "tx"
            spans += [(s["op"], names.get(s["parent_span_id"])) for s in transaction["spans"]]
        shapes.append((events, spans))
    assert shapes[1] == shapes[0]
