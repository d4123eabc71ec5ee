"""The asyncio integration: real event loops and tasks, spans, scopes and task errors."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import _side_by_side as side

import tripwire
from tripwire.integrations.asyncio import AsyncioIntegration, enable_asyncio_integration
from tripwire.testing import MemoryTransport, reset


def init(**options: Any) -> MemoryTransport:
    memory = MemoryTransport()
    options.setdefault("integrations", [AsyncioIntegration()])
    options.setdefault("default_integrations", False)
    tripwire.init(transport=memory, traces_sample_rate=1.0, **options)
    return memory


async def boom() -> None:
    raise ValueError("in task")


async def settle(task: asyncio.Task[Any]) -> None:
    """Wait for the task and retrieve its exception (asyncio logs one never retrieved)."""
    await asyncio.wait([task])
    if not task.cancelled():
        task.exception()


class Worker:
    async def run(self, n: int) -> int:
        await asyncio.sleep(0)
        return n


def test_tasks_get_spans_and_their_exceptions_are_captured() -> None:
    async def main() -> MemoryTransport:
        memory = init()
        with tripwire.start_transaction(name="tx", op="test"):
            assert await asyncio.gather(Worker().run(1), Worker().run(2)) == [1, 2]
            task = asyncio.get_running_loop().create_task(boom())
            try:
                await task
            except ValueError:
                pass
            else:  # pragma: no cover
                raise AssertionError("the task's exception must reach its awaiter")
        return memory

    memory = asyncio.run(main())
    (event,) = memory.events
    (value,) = event["exception"]["values"]
    assert value["type"] == "ValueError"
    assert value["mechanism"] == {"type": "asyncio", "handled": False}
    assert [frame["function"] for frame in value["stacktrace"]["frames"]] == ["boom"]
    assert event["level"] == "error"
    (transaction,) = memory.transactions
    spans = transaction["spans"]
    assert [(s["op"], s["description"], s["origin"]) for s in spans] == [
        ("function", "Worker.run", "auto.function.asyncio"),
        ("function", "Worker.run", "auto.function.asyncio"),
        ("function", "boom", "auto.function.asyncio"),
    ]
    root = transaction["contexts"]["trace"]["span_id"]
    assert all(span["parent_span_id"] == root for span in spans)
    assert spans[2]["status"] == "internal_error"
    assert "status" not in spans[0]
    # The error happened inside the task's span.
    assert event["contexts"]["trace"]["span_id"] == spans[2]["span_id"]


def test_a_task_runs_in_a_fork_of_the_creating_scope() -> None:
    seen: list[dict[str, Any]] = []

    async def child(n: int) -> None:
        tripwire.set_tag("child", n)
        seen.append(dict(tripwire.get_isolation_scope()._tags))

    async def main() -> dict[str, Any]:
        init()
        tripwire.set_tag("parent", "yes")
        await asyncio.create_task(child(1))
        await asyncio.create_task(child(2))
        return dict(tripwire.get_isolation_scope()._tags)

    parent = asyncio.run(main())
    assert seen == [{"parent": "yes", "child": 1}, {"parent": "yes", "child": 2}]
    assert parent == {"parent": "yes"}


def test_task_spans_false_keeps_capture_without_spans() -> None:
    async def main() -> MemoryTransport:
        memory = init(integrations=[AsyncioIntegration(task_spans=False)])
        with tripwire.start_transaction(name="tx", op="test"):
            task = asyncio.create_task(boom())
            await asyncio.wait([task])
            assert isinstance(task.exception(), ValueError)
        return memory

    memory = asyncio.run(main())
    (event,) = memory.events
    assert event["exception"]["values"][0]["mechanism"]["type"] == "asyncio"
    assert memory.transactions[0]["spans"] == []


def test_cancellation_is_not_an_error_and_names_are_kept() -> None:
    async def main() -> tuple[MemoryTransport, str, str]:
        memory = init()
        stop = asyncio.Event()
        waiter = asyncio.create_task(stop.wait(), name="waiter")
        await asyncio.sleep(0)
        waiter.cancel()
        try:
            await waiter
        except asyncio.CancelledError:
            pass
        coro = waiter.get_coro()
        assert coro is not None
        return memory, waiter.get_name(), getattr(coro, "__qualname__", "")

    memory, name, qualname = asyncio.run(main())
    assert memory.events == []
    assert name == "waiter"
    assert qualname == "Event.wait"


def test_set_up_outside_a_loop_patches_nothing_until_enabled() -> None:
    memory = init()

    async def main() -> list[str]:
        found = []
        task = asyncio.create_task(boom())
        await settle(task)
        found.append(str(len(memory.events)))
        enable_asyncio_integration()
        enable_asyncio_integration()  # the second call changes nothing
        task = asyncio.create_task(boom())
        await settle(task)
        found.append(str(len(memory.events)))
        return found

    assert asyncio.run(main()) == ["0", "1"]


def test_enable_asyncio_integration_adds_it_to_the_client() -> None:
    memory = MemoryTransport()
    tripwire.init(transport=memory, traces_sample_rate=1.0)

    async def main() -> bool:
        assert tripwire.get_client().get_integration(AsyncioIntegration) is None
        enable_asyncio_integration(task_spans=False)
        integration = tripwire.get_client().get_integration(AsyncioIntegration)
        assert isinstance(integration, AsyncioIntegration)
        return integration.task_spans

    assert asyncio.run(main()) is False


def test_an_existing_task_factory_keeps_making_the_tasks() -> None:
    made: list[str] = []

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> Any:
        made.append(getattr(coro, "__qualname__", "?"))
        return asyncio.Task(coro, loop=loop, **kwargs)

    async def main() -> MemoryTransport:
        asyncio.get_running_loop().set_task_factory(factory)
        memory = init()
        task = asyncio.create_task(boom())
        await settle(task)
        return memory

    memory = asyncio.run(main())
    assert made[0] == "boom"
    assert len(memory.events) == 1


def test_reset_restores_the_loop_and_no_client_costs_nothing() -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        init()
        assert loop.get_task_factory() is not None
        assert "close" in vars(loop)
        reset()
        assert loop.get_task_factory() is None
        task = asyncio.create_task(boom())
        await settle(task)
        assert getattr(task.get_coro(), "cr_code", None) is boom.__code__

    asyncio.run(main())


def test_no_active_client_leaves_coroutines_alone() -> None:
    async def main() -> None:
        init()
        tripwire.get_client().close()
        tripwire.init(transport=MemoryTransport(), default_integrations=False)
        task = asyncio.create_task(boom())
        await settle(task)
        assert getattr(task.get_coro(), "cr_code", None) is boom.__code__

    asyncio.run(main())


def test_loop_close_flushes_the_client() -> None:
    flushed: list[bool] = []

    async def main() -> None:
        init()
        client = tripwire.get_client()
        original = client.flush

        def flush(*args: Any, **kwargs: Any) -> None:
            flushed.append(True)
            original(*args, **kwargs)

        client.flush = flush  # type: ignore[method-assign]

    asyncio.run(main())
    assert flushed == [True]


_SCRIPT = """
import asyncio
from sentry_sdk.integrations.asyncio import AsyncioIntegration

async def child(n):
    sentry_sdk.set_tag("child", n)
    await asyncio.sleep(0)
    return n

async def boom():
    raise ValueError("in task")

class K:
    async def meth(self):
        return 1

async def main():
    sentry_sdk.init(
        transport=KEEP,
        traces_sample_rate=1.0,
        integrations=[AsyncioIntegration()],
        default_integrations=False,
    )
    sentry_sdk.set_tag("parent", "yes")
    with sentry_sdk.start_transaction(name="tx", op="test"):
        await asyncio.create_task(child(1))
        await asyncio.gather(child(2), K().meth())
        task = asyncio.get_running_loop().create_task(boom())
        try:
            await task
        except ValueError:
            NOTES.append("reraised")
        stop = asyncio.Event()
        waiter = asyncio.create_task(stop.wait())
        await asyncio.sleep(0)
        waiter.cancel()
        await asyncio.wait([waiter])
    NOTES.append(dict(sentry_sdk.get_isolation_scope()._tags))

asyncio.run(main())
finish()
"""


def _spans(found: dict[str, Any]) -> list[Any]:
    (transaction,) = side.of_type(found, "transaction")
    root = transaction["contexts"]["trace"]["span_id"]
    return [
        {
            "op": span["op"],
            "description": span["description"],
            "origin": span["origin"],
            "status": span.get("status"),
            "tags": span.get("tags"),
            "data": sorted(span.get("data", {})),
            "child_of_root": span["parent_span_id"] == root,
        }
        for span in transaction["spans"]
    ]


def test_same_as_sentry_sdk(tmp_path: Path) -> None:
    sentry, ours = side.run_both(_SCRIPT, tmp_path)
    assert ours["notes"] == sentry["notes"] == ["reraised", {"parent": "yes"}]
    assert side.events(ours) == side.events(sentry), side.dumps([ours, sentry])
    assert _spans(ours) == _spans(sentry), side.dumps([_spans(ours), _spans(sentry)])
    (event,) = side.of_type(ours, "event")
    (theirs,) = side.of_type(sentry, "event")
    for key in ("op", "description", "origin"):
        assert event["contexts"]["trace"][key] == theirs["contexts"]["trace"][key]
