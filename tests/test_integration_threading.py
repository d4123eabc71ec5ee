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
