"""`serverless_function` and `TimeoutThread`: real clients, real threads, sentry_sdk alongside.

The flush at the end of every invocation is seen at a real loopback receiver: the
event is there when the call returns, with nobody else flushing.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from _receiver import Receiver
from _sentry_side import Ids, normalise, run_both

import tripwire
from tripwire.integrations.serverless import serverless_function
from tripwire.testing import MemoryTransport
from tripwire.utils import ServerlessTimeoutWarning, TimeoutThread

MESSAGE = (
    "WARNING : Function is expected to get timed out. Configured timeout duration = {} seconds."
)


class CountingTransport(MemoryTransport):
    def __init__(self) -> None:
        super().__init__()
        self.flushes = 0

    def flush(self, timeout: float, callback: Any = None) -> None:
        self.flushes += 1


def init_counting(**options: Any) -> CountingTransport:
    memory = CountingTransport()
    tripwire.init(transport=memory, default_integrations=False, **options)
    return memory


@pytest.fixture
def thread_errors() -> Iterator[list[threading.ExceptHookArgs]]:
    """What escapes a thread's `run()` (TimeoutThread raises its warning there)."""
    seen: list[threading.ExceptHookArgs] = []
    previous = threading.excepthook
    threading.excepthook = seen.append
    try:
        yield seen
    finally:
        threading.excepthook = previous


# --------------------------------------------------------------------------- serverless_function


def test_escaping_exception_is_captured_reraised_and_flushed(rx: Receiver) -> None:
    tripwire.init(rx.dsn(), default_integrations=False)

    @serverless_function
    def handler(event: dict[str, Any]) -> None:
        tripwire.set_tag("request", event["id"])
        raise KeyError("missing")

    with pytest.raises(KeyError, match="missing"):
        handler({"id": "r1"})
    # No flush by the test: the decorator's flush delivered it before returning.
    (event,) = rx.events()
    (value,) = event["exception"]["values"]
    assert (value["type"], value["mechanism"]) == (
        "KeyError",
        {"type": "serverless", "handled": False},
    )
    assert value["stacktrace"]["frames"][-1]["function"] == "handler"
    assert event["level"] == "error"
    assert event["tags"] == {"request": "r1"}


def test_a_returning_call_is_flushed_too(rx: Receiver) -> None:
    tripwire.init(rx.dsn(), default_integrations=False)

    @serverless_function()
    def handler() -> int:
        tripwire.capture_message("inside")
        return 42

    assert handler() == 42
    assert [event["message"] for event in rx.events()] == ["inside"]


def test_flush_every_call_unless_turned_off() -> None:
    memory = init_counting()

    @serverless_function
    def ok() -> str:
        return "ok"

    @serverless_function(flush=False)
    def quiet() -> None:
        raise ValueError("not flushed")

    assert [ok(), ok()] == ["ok", "ok"]
    assert memory.flushes == 2
    with pytest.raises(ValueError, match="not flushed"):
        quiet()
    assert memory.flushes == 2
    # Captured all the same.
    assert [e["exception"]["values"][0]["type"] for e in memory.events] == ["ValueError"]


def test_each_call_runs_in_its_own_isolation_scope_without_earlier_breadcrumbs() -> None:
    memory = init_counting()
    tripwire.add_breadcrumb(message="before the invocation")
    tripwire.set_tag("outer", "yes")

    @serverless_function
    def handler(n: int) -> None:
        tripwire.add_breadcrumb(message=f"in call {n}")
        tripwire.set_tag("call", n)
        if n == 2:
            raise RuntimeError("second")

    handler(1)
    with pytest.raises(RuntimeError):
        handler(2)
    (event,) = memory.events
    assert [c["message"] for c in event["breadcrumbs"]["values"]] == ["in call 2"]
    assert event["tags"] == {"outer": "yes", "call": "2"}
    # Nothing set inside leaked out, and the outer breadcrumb is still there.
    tripwire.capture_message("after")
    after = memory.events[-1]
    assert after["tags"] == {"outer": "yes"}
    assert [c["message"] for c in after["breadcrumbs"]["values"]] == ["before the invocation"]


def test_base_exceptions_pass_through_uncaptured() -> None:
    memory = init_counting()

    @serverless_function
    def leave() -> None:
        raise SystemExit(3)

    with pytest.raises(SystemExit):
        leave()
    assert memory.events == []
    assert memory.flushes == 1


def test_without_a_client_the_function_behaves_as_undecorated() -> None:
    @serverless_function
    def handler(a: int, *, b: int) -> int:
        """Docs."""
        if a < 0:
            raise ValueError(a)
        return a + b

    assert handler(1, b=2) == 3
    with pytest.raises(ValueError):
        handler(-1, b=0)
    assert (handler.__name__, handler.__doc__) == ("handler", "Docs.")


def _serverless_scenario(sdk: Any) -> None:
    module = importlib.import_module(sdk.__name__ + ".integrations.serverless")
    sdk.add_breadcrumb(message="dropped by the invocation's scope")

    @module.serverless_function
    def handler(order: int) -> None:
        sdk.set_tag("order", str(order))
        sdk.add_breadcrumb(category="step", message="charging")
        raise ZeroDivisionError("no stock")

    try:
        handler(7)
    except ZeroDivisionError:
        pass


def test_same_event_as_sentry_sdk() -> None:
    (theirs, _), (ours, _) = run_both(_serverless_scenario)
    assert _events(ours) == _events(theirs)
    (event,) = _events(ours)
    assert event["exception"]["values"][0]["mechanism"] == {"type": "serverless", "handled": False}


# --------------------------------------------------------------------------- TimeoutThread


def test_a_stopped_timeout_thread_ends_without_a_warning(
    thread_errors: list[threading.ExceptHookArgs],
) -> None:
    memory = init_counting()
    watcher = TimeoutThread(3600, 900, tripwire.get_isolation_scope(), tripwire.get_current_scope())
    watcher.start()
    watcher.stop()
    watcher.join()
    assert not watcher.is_alive()
    assert (memory.events, thread_errors) == ([], [])


def test_the_warning_is_captured_in_the_given_scopes(
    thread_errors: list[threading.ExceptHookArgs],
) -> None:
    memory = init_counting()
    with tripwire.isolation_scope() as invocation:
        tripwire.set_tag("function", "checkout")
        watcher = TimeoutThread(0, 1.5, invocation, tripwire.get_current_scope())
    watcher.start()
    watcher.join()
    (event,) = memory.events
    (value,) = event["exception"]["values"]
    assert value["type"] == "ServerlessTimeoutWarning"
    assert value["value"] == MESSAGE.format(2)
    assert value["mechanism"] == {"type": "threading", "handled": False}
    assert event["tags"] == {"function": "checkout"}
    # The warning still escapes run(), as with sentry_sdk.
    (escaped,) = thread_errors
    assert escaped.exc_type is ServerlessTimeoutWarning
    assert escaped.thread is watcher


def test_without_scopes_the_warning_only_escapes_run(
    thread_errors: list[threading.ExceptHookArgs],
) -> None:
    memory = init_counting()
    watcher = TimeoutThread(0, 30)
    watcher.start()
    watcher.join()
    assert memory.events == []
    (escaped,) = thread_errors
    assert str(escaped.exc_value) == MESSAGE.format(30)


def test_an_unstopped_timeout_thread_never_holds_up_exit() -> None:
    code = (
        "from tripwire.utils import TimeoutThread\n"
        "TimeoutThread(3600, 3600).start()\n"
        "print('done')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "done\n", "")


def _timeout_scenario(sdk: Any) -> None:
    module = importlib.import_module(sdk.__name__ + ".utils")
    previous = threading.excepthook
    threading.excepthook = lambda args: None
    try:
        with sdk.isolation_scope() as scope:
            sdk.set_tag("function", "f")
            watcher = module.TimeoutThread(0, 2.25, scope, sdk.get_current_scope())
        watcher.start()
        watcher.join()
    finally:
        threading.excepthook = previous


def test_timeout_warning_event_same_as_sentry_sdk() -> None:
    (theirs, _), (ours, _) = run_both(_timeout_scenario)
    mask_module = frozenset({"module"})
    assert _events(ours, mask_module) == _events(theirs, mask_module)
    (event,) = _events(ours)
    assert event["exception"]["values"][0]["value"] == MESSAGE.format(3)


def _events(envelopes: list[Any], drop: frozenset[str] = frozenset()) -> list[Any]:
    """The events, normalised; the machine's contexts and the SDK's own names left out."""
    from _sentry_side import VOLATILE

    found = []
    for _, items in envelopes:
        for item_type, payload in items:
            if item_type != "event":
                continue
            contexts = dict(payload.get("contexts") or {})
            for key in ("os", "runtime", "device"):
                contexts.pop(key, None)
            payload = {**payload, "contexts": contexts}
            found.append(normalise(payload, Ids(), drop=VOLATILE | drop))
    return found
