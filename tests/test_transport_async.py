"""The async transport (`_experiments={"transport_async": True}`), on real event loops.

Every envelope goes to a real HTTP server on 127.0.0.1 (`rx`); the loops are real
(`asyncio.run`), and so is their end: `asyncio.run` cancelling the sender task and
closing the loop with envelopes still queued. The differential test runs the same
script through sentry-sdk 2.75 in a fresh interpreter against its own receiver.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from pathlib import Path
from typing import Any

import pytest
from _receiver import Receiver, Reply
from _side_by_side import run

import tripwire
from tripwire.integrations.asyncio import AsyncioIntegration
from tripwire.integrations.socket import SocketIntegration
from tripwire.testing import MemoryTransport
from tripwire.transport import HttpTransport
from tripwire.transport._async import LANES, AsyncHttpTransport
from tripwire.utils import is_internal_task, mark_sentry_task_internal
from tripwire.worker import AsyncWorker

ASYNC = {"transport_async": True}


def init_async(rx: Receiver, **options: Any) -> AsyncHttpTransport:
    """init() inside the running loop with the async transport; returns it."""
    tripwire.init(
        dsn=rx.dsn(),
        integrations=[AsyncioIntegration()],
        _experiments=dict(ASYNC, **options.pop("_experiments", {})),
        **options,
    )
    transport = tripwire.get_client().transport
    assert isinstance(transport, AsyncHttpTransport)
    return transport


def messages(rx: Receiver) -> list[Any]:
    return [event.get("message") for event in rx.events()]


# -- which transport ----------------------------------------------------------------------


def test_chosen_inside_a_running_loop_with_the_asyncio_integration(rx: Receiver) -> None:
    async def main() -> str:
        transport = init_async(rx)
        return type(transport).__name__

    assert asyncio.run(main()) == "AsyncHttpTransport"


def test_without_a_running_loop_the_sync_transport_with_sentrys_warning(
    rx: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="tripwire.errors"):
        tripwire.init(dsn=rx.dsn(), integrations=[AsyncioIntegration()], _experiments=ASYNC)
    transport = tripwire.get_client().transport
    assert type(transport) is HttpTransport
    assert "No event loop running, falling back to sync transport." in caplog.text


def test_without_the_asyncio_integration_the_sync_transport(
    rx: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> type:
        tripwire.init(dsn=rx.dsn(), _experiments=ASYNC)
        return type(tripwire.get_client().transport)

    with caplog.at_level(logging.WARNING, logger="tripwire.errors"):
        assert asyncio.run(main()) is HttpTransport
    assert "the AsyncioIntegration is not enabled" in caplog.text


def test_http2_is_ignored_with_the_async_transport(
    rx: Receiver, caplog: pytest.LogCaptureFixture
) -> None:
    async def main() -> str:
        return type(init_async(rx, _experiments={"transport_http2": True})).__name__

    with caplog.at_level(logging.WARNING, logger="tripwire.errors"):
        assert asyncio.run(main()) == "AsyncHttpTransport"
    assert "Ignoring transport_http2 experiment" in caplog.text


# -- sending ------------------------------------------------------------------------------


def test_envelopes_reach_the_server_from_the_loop_without_a_thread(rx: Receiver) -> None:
    async def main() -> None:
        transport = init_async(rx, traces_sample_rate=1.0)
        tripwire.capture_message("from the loop")
        with tripwire.start_transaction(name="tx", op="task"):
            pass
        await tripwire.get_client().flush_async(5)
        # The loop sent them: the sync transport's worker thread never started.
        assert transport._worker._thread is None
        assert "tripwire.worker" not in [t.name for t in threading.enumerate()]

    asyncio.run(main())
    assert messages(rx) == ["from the loop"]
    assert [i.payload.json["transaction"] for i in rx.items("transaction")] == ["tx"]
    assert rx.requests[0].headers["x-sentry-auth"].startswith("Sentry sentry_key=public")


def test_the_calling_task_never_waits_for_the_server(rx: Receiver) -> None:
    rx.hold()  # the server takes the request but keeps its answer back

    async def main() -> None:
        transport = init_async(rx)
        tripwire.capture_message("held")
        loop = asyncio.get_running_loop()
        # The request reaches the server while this task goes on running.
        await loop.run_in_executor(None, rx.wait_for, 1)
        assert transport.pending() == 1  # still waiting for its answer
        other = await asyncio.gather(asyncio.sleep(0, "the loop is free"))
        assert other == ["the loop is free"]
        rx.release()
        await tripwire.get_client().flush_async(5)
        assert transport.pending() == 0

    asyncio.run(main())
    assert messages(rx) == ["held"]


def test_the_senders_task_is_internal_no_span_for_it(rx: Receiver) -> None:
    async def work() -> None:
        await asyncio.sleep(0)

    async def main() -> None:
        init_async(rx, traces_sample_rate=1.0)
        with tripwire.start_transaction(name="tx", op="task"):
            tripwire.capture_message("inside")  # starts the sender task in the transaction
            await asyncio.create_task(work())
        await tripwire.get_client().flush_async(5)

    asyncio.run(main())
    (transaction,) = [i.payload.json for i in rx.items("transaction")]
    assert [(s["op"], s["description"]) for s in transaction["spans"]] == [
        ("function", "test_the_senders_task_is_internal_no_span_for_it.<locals>.work")
    ]


def test_the_senders_lookups_and_connections_are_no_spans_of_the_users(rx: Receiver) -> None:
    # The sender task, started by a capture inside a transaction, has a context of its
    # own: the socket integration sees no span of the user's around its DNS lookup.
    async def main() -> None:
        tripwire.init(
            dsn=rx.dsn(host="localhost"),
            traces_sample_rate=1.0,
            integrations=[AsyncioIntegration(), SocketIntegration()],
            _experiments=ASYNC,
        )
        with tripwire.start_transaction(name="tx", op="task"):
            tripwire.capture_message("inside")
            await tripwire.get_client().flush_async(5)  # sent while it is open
        await tripwire.get_client().flush_async(5)

    asyncio.run(main())
    (transaction,) = [i.payload.json for i in rx.items("transaction")]
    assert transaction["spans"] == []
    assert messages(rx) == ["inside"]


def test_rate_limits_are_honoured_and_reported(rx: Receiver) -> None:
    rx.reply(Reply(429, {"X-Sentry-Rate-Limits": "60:error:organization"}))

    async def main() -> bool:
        transport = init_async(rx, traces_sample_rate=1.0)
        client = tripwire.get_client()
        tripwire.capture_message("refused")
        await client.flush_async(5)
        healthy = transport.is_healthy()
        tripwire.capture_message("limited")  # never sent
        with tripwire.start_transaction(name="tx"):
            pass
        await client.close_async()
        return healthy

    assert asyncio.run(main()) is False
    assert messages(rx) == ["refused"]
    assert [i.payload.json["transaction"] for i in rx.items("transaction")] == ["tx"]
    assert rx.discarded() == {("ratelimit_backoff", "error"): 1}


def test_a_reset_connection_is_retried(rx: Receiver) -> None:
    rx.reply(Reply(action="reset"))

    async def main() -> str | None:
        init_async(rx)
        event_id = tripwire.capture_message("retried")
        await tripwire.get_client().close_async()
        return event_id

    event_id = asyncio.run(main())
    # The first attempt was read by the server, then reset; the retry was answered.
    assert [e["event_id"] for e in rx.events()] == [event_id, event_id]
    assert rx.discarded() == {}


def test_a_full_queue_drops_and_counts(rx: Receiver) -> None:
    rx.hold()

    async def main() -> None:
        init_async(rx, transport_queue_size=2)
        for i in range(5):
            tripwire.capture_message(f"m{i}")
        rx.release()
        await tripwire.get_client().close_async()

    asyncio.run(main())
    assert sorted(messages(rx)) == ["m0", "m1"]
    assert rx.discarded() == {("queue_overflow", "error"): 3}


# -- the loop going away ------------------------------------------------------------------


def test_envelopes_queued_when_the_loop_closes_are_delivered(rx: Receiver) -> None:
    gate = threading.Event()
    rx.reply(Reply(200, gate=gate))  # the first answer never comes while the loop runs
    ids: list[str | None] = []

    async def main() -> None:
        init_async(rx)
        for i in range(5):
            ids.append(tripwire.capture_message(f"m{i}"))
        # The first request is out, four wait behind it; then the loop ends.
        await asyncio.get_running_loop().run_in_executor(None, rx.wait_for, 1)

    try:
        # asyncio.run cancels the sender task; the asyncio integration's loop.close()
        # flushes: the worker thread took over and delivered everything.
        asyncio.run(main())
        delivered = [e["event_id"] for e in rx.events()]
    finally:
        gate.set()
    # Everything arrived; those in flight at the end (the held one at least) went
    # again from the worker thread, as their answers never came.
    assert sorted(set(delivered)) == sorted(ids)
    # The held answer went to the first request to arrive: m0's, or m1's when the other
    # lane's request got there first.
    held = delivered[0]
    assert ids[0] is not None and held in ids[:LANES] and delivered.count(held) == 2
    assert len(delivered) <= len(ids) + LANES
    assert rx.discarded() == {}


def test_a_capture_after_the_loop_closed_is_sent_by_the_worker_thread(rx: Receiver) -> None:
    async def main() -> None:
        init_async(rx)

    asyncio.run(main())
    tripwire.capture_message("after the loop")  # sentry_sdk drops this one
    tripwire.flush(5)
    assert messages(rx) == ["after the loop"]


# -- flush and close ----------------------------------------------------------------------


def test_async_with_client_sends_on_exit(rx: Receiver) -> None:
    async def main() -> Any:
        async with tripwire.Client(
            dsn=rx.dsn(), integrations=[AsyncioIntegration()], _experiments=ASYNC
        ) as client:
            assert isinstance(client.transport, AsyncHttpTransport)
            client.capture_event({"message": "in the block"})
        return client.transport

    assert asyncio.run(main()) is None
    assert messages(rx) == ["in the block"]


def test_sync_flush_on_the_loop_warns_as_sentry(rx: Receiver) -> None:
    async def main() -> None:
        init_async(rx)
        tripwire.capture_message("x")
        with pytest.warns(UserWarning, match=r"Use flush_async\(\) instead"):
            tripwire.flush()
        await tripwire.get_client().flush_async(5)

    asyncio.run(main())
    assert messages(rx) == ["x"]


def test_sync_close_on_the_loop_warns_and_loses_nothing(rx: Receiver) -> None:
    async def main() -> None:
        init_async(rx)
        for i in range(3):
            tripwire.capture_message(f"m{i}")
        with pytest.warns(UserWarning, match=r"Use close_async\(\) instead"):
            tripwire.get_client().close()  # sentry_sdk drops the queue here
        assert tripwire.get_client().transport is None

    asyncio.run(main())
    assert sorted(messages(rx)) == ["m0", "m1", "m2"]


def test_flush_from_another_thread_waits_for_the_loop(rx: Receiver) -> None:
    async def main() -> None:
        transport = init_async(rx)
        tripwire.capture_message("x")
        await asyncio.get_running_loop().run_in_executor(None, tripwire.flush, 5)
        assert messages(rx) == ["x"]
        assert transport._worker._thread is None  # the loop sent it

    asyncio.run(main())


def test_flush_callback_sees_what_is_pending(rx: Receiver) -> None:
    rx.hold()
    seen: list[tuple[int, float]] = []

    async def main() -> None:
        transport = init_async(rx)
        tripwire.capture_message("slow")
        task = transport.flush(5.0, lambda pending, timeout: seen.append((pending, timeout)))
        assert task is not None
        await asyncio.get_running_loop().run_in_executor(None, rx.wait_for, 1)
        # The callback comes once the first short wait is over; then the answer.
        while not seen:
            await asyncio.sleep(0.01)  # polling the callback, deadline by the flush itself
        rx.release()
        await task

    asyncio.run(main())
    assert seen == [(1, 5.0)]


# -- sentry_sdk's helpers -----------------------------------------------------------------


def test_mark_sentry_task_internal_marks_tasks_made_inside() -> None:
    async def probe() -> bool:
        return is_internal_task()

    async def main() -> tuple[bool, bool, bool]:
        with mark_sentry_task_internal():
            inside = asyncio.get_running_loop().create_task(probe())
        outside = asyncio.get_running_loop().create_task(probe())
        return await inside, await outside, is_internal_task()

    assert asyncio.run(main()) == (True, False, False)


def test_async_worker_runs_jobs_as_tasks_and_flushes() -> None:
    done: list[int] = []

    async def job(n: int) -> None:
        await asyncio.sleep(0)
        done.append(n)

    async def main() -> tuple[bool, bool]:
        worker = AsyncWorker(queue_size=10)
        for n in range(3):
            assert worker.submit(lambda n=n: job(n))
        task = worker.flush(5.0)
        assert task is not None
        await task
        alive = worker.is_alive
        worker.kill()
        return alive, worker.is_alive

    assert asyncio.run(main()) == (True, False)
    assert sorted(done) == [0, 1, 2]


def test_async_worker_jobs_run_outside_the_scope_that_started_it() -> None:
    # Its task starts at the first submit, here inside a transaction: the jobs (sends)
    # must not run in that transaction's scope, nor keep it alive.
    seen: list[object] = []

    async def job() -> None:
        seen.append(tripwire.get_current_span())

    async def main() -> None:
        tripwire.init(traces_sample_rate=1.0, transport=MemoryTransport())
        worker = AsyncWorker(queue_size=10)
        with tripwire.start_transaction(name="the first submit's"):
            assert worker.submit(job)
            task = worker.flush(5.0)
            assert task is not None
            await task
        worker.kill()

    asyncio.run(main())
    assert seen == [None]


def test_async_worker_outside_a_loop_refuses(caplog: pytest.LogCaptureFixture) -> None:
    worker = AsyncWorker()
    with caplog.at_level(logging.WARNING, logger="tripwire.errors"):
        assert worker.submit(lambda: None) is False
    assert "No event loop running" in caplog.text
    assert worker.flush(1.0) is None


# -- against sentry_sdk 2.75 ----------------------------------------------------------------

_SCRIPT = """
import asyncio
from sentry_sdk.integrations.asyncio import AsyncioIntegration

async def work():
    await asyncio.sleep(0)

async def main():
    sentry_sdk.init(
        dsn={dsn!r},
        integrations=[AsyncioIntegration()],
        default_integrations=False,
        traces_sample_rate=1.0,
        release="r1",
        _experiments={{"transport_async": True}},
    )
    client = sentry_sdk.get_client()
    NOTES.append(type(client.transport).__name__)
    with sentry_sdk.start_transaction(name="tx", op="task"):
        await asyncio.create_task(work())
    sentry_sdk.capture_message("hello")
    await client.close_async()
    NOTES.append(client.transport is None)

asyncio.run(main())
finish()
"""


def test_same_spans_and_events_as_sentry_sdk(rx: Receiver, tmp_path: Path) -> None:
    with Receiver() as theirs:
        their_run = run(_SCRIPT.format(dsn=theirs.dsn()), "sentry", tmp_path)
        their_items = _summary(theirs)
    our_run = run(_SCRIPT.format(dsn=rx.dsn()), "tripwire", tmp_path)
    assert our_run["notes"] == their_run["notes"] == ["AsyncHttpTransport", True]
    assert _summary(rx) == their_items
    assert their_items["event"] == ["hello"]


def _summary(receiver: Receiver) -> dict[str, Any]:
    transactions = [i.payload.json for i in receiver.items("transaction")]
    return {
        "event": [e.get("message") for e in receiver.events()],
        "transaction": [
            (t["transaction"], [(s["op"], s["description"]) for s in t["spans"]])
            for t in transactions
        ],
    }
