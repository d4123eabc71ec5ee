"""Closing a client while its worker is still sending leaves no connection open.

`close()` (and `tripwire.testing.reset()`, which closes with timeout 0) waits only a
moment for the worker thread. On a loaded machine the worker can be between taking
an envelope and sending it when that moment is over: the connection it then opens
must be closed too, not left to the garbage collector (an "unclosed socket"
ResourceWarning, from whatever code happens to run the collection later).
"""

from __future__ import annotations

import asyncio
import gc
import threading
import warnings
from types import FrameType
from typing import Any

import pytest
from _receiver import Receiver, assert_sdk_threads_ended, sdk_threads

import tripwire
from tripwire.testing import reset
from tripwire.transport._http_client import HttpClient


class PostGate:
    """A trace function (`threading.settrace`) that holds the first thread to enter
    `HttpClient.post` there, as a busy scheduler may, until `go` is set. (Only
    threads started while it is installed.)"""

    def __init__(self) -> None:
        self.at_post = threading.Event()
        self.go = threading.Event()

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        if event == "call" and frame.f_code is _POST and not self.at_post.is_set():
            self.at_post.set()
            self.go.wait(30)


_POST = HttpClient.post.__code__


@pytest.mark.parametrize("to", ["dsn", "spotlight"])
def test_a_request_still_to_be_made_at_close_leaves_no_socket_open(to: str) -> None:
    gate = PostGate()
    at_post, go = gate.at_post, gate.go
    before = set(sdk_threads())
    with Receiver() as rx:
        threading.settrace(gate)
        try:
            if to == "dsn":
                tripwire.init(dsn=rx.dsn(), default_integrations=False)
            else:  # the Spotlight sidecar's worker and connection
                tripwire.init(spotlight=f"{rx.url}/stream", default_integrations=False)
            tripwire.capture_message("in flight at close")
            assert at_post.wait(30), "the worker never started its request"
        finally:
            threading.settrace(None)
        tripwire.get_client().close(timeout=0.0)  # the worker is busy: not waited for
        go.set()
        assert_sdk_threads_ended(before, timeout=30)
        assert [r.envelope.items[0].type for r in rx.wait_for(1)] == ["event"]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            reset()  # drops the closed client (its transport is in reference cycles)
            gc.collect()
    unclosed = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert unclosed == []


def test_the_async_transports_executor_request_at_close_leaves_no_socket_open() -> None:
    # Through a proxy (or urllib3) the async transport posts with the sync client on
    # the loop's executor, a thread that `close()` cannot wait for.
    from tripwire.integrations.asyncio import AsyncioIntegration

    gate = PostGate()
    at_post, go = gate.at_post, gate.go

    async def main(rx: Receiver) -> None:
        tripwire.init(
            dsn=rx.dsn(),
            integrations=[AsyncioIntegration()],
            http_proxy=rx.url,  # the receiver answers a proxy-form request as well
            _experiments={"transport_async": True},
        )
        tripwire.capture_message("in flight at close")
        loop = asyncio.get_running_loop()  # waited for off the loop: its task must run
        assert await loop.run_in_executor(None, at_post.wait, 30), "no request started"
        tripwire.get_client().close(timeout=0.0)
        # The SDK's own threads (the worker the close handed the queue to) have ended
        # before the request goes on: nothing of the SDK's but that request is left.
        await loop.run_in_executor(None, assert_sdk_threads_ended, before, 30)
        go.set()

    before = set(sdk_threads())
    with Receiver() as rx:
        threading.settrace(gate)  # the executor's threads start after this
        try:
            asyncio.run(main(rx))  # returns once the executor's threads have ended
        finally:
            threading.settrace(None)
        assert [r.envelope.items[0].type for r in rx.wait_for(1)] == ["event"]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ResourceWarning)
            reset()
            gc.collect()
    unclosed = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert unclosed == []
