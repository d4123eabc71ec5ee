"""The sentry_sdk 1.x calls: Hub, configure_scope, push_scope, last_event_id.

Each of them warns (DeprecationWarning, as sentry_sdk 2.75 does): the tests expect it.
"""

from __future__ import annotations

from typing import Any

import pytest

import tripwire
from tripwire.hub import SentryHubDeprecationWarning
from tripwire.testing import MemoryTransport


def test_configure_scope_callback_and_with(transport: MemoryTransport) -> None:
    with pytest.warns(DeprecationWarning):
        tripwire.configure_scope(lambda scope: scope.set_tag("cb", "1"))
    with pytest.warns(DeprecationWarning), tripwire.configure_scope() as scope:
        scope.set_tag("with", "1")
    tripwire.capture_message("x")
    assert transport.events[0]["tags"] == {"cb": "1", "with": "1"}


def test_push_scope_callback_and_with(transport: MemoryTransport) -> None:
    with pytest.warns(DeprecationWarning), tripwire.push_scope() as scope:
        scope.set_tag("pushed", "1")
        tripwire.capture_message("inside")
    with pytest.warns(DeprecationWarning):
        tripwire.push_scope(lambda scope: scope.set_tag("cb", "1"))
    tripwire.capture_message("outside")
    inside, outside = transport.events
    assert inside["tags"] == {"pushed": "1"}
    assert "tags" not in outside


def test_hub_current_and_methods(transport: MemoryTransport) -> None:
    with pytest.warns(SentryHubDeprecationWarning):
        hub = tripwire.Hub.current
    assert hub.client is tripwire.get_client()
    event_id = hub.capture_message("via hub")
    assert hub.last_event_id() == event_id
    hub.add_breadcrumb(message="crumb")
    with hub.configure_scope() as scope:
        scope.set_tag("h", "1")
    hub.capture_message("second")
    second = transport.events[1]
    assert second["tags"] == {"h": "1"}
    assert second["breadcrumbs"]["values"][0]["message"] == "crumb"


def test_hub_current_is_the_main_hub_until_one_is_entered(transport: MemoryTransport) -> None:
    with pytest.warns(SentryHubDeprecationWarning):
        assert tripwire.Hub.current is tripwire.Hub.main  # as sentry_sdk's
        first = tripwire.Hub.current
        tripwire.set_tag("set", "after the hub was asked for")
        with tripwire.Hub.current as entered:
            tripwire.capture_message("inside")
            assert tripwire.Hub.current is entered
    assert first is entered
    # Entering it activates the scopes in force then, with what was set since.
    assert transport.events[0]["tags"] == {"set": "after the hub was asked for"}


def test_threads_entering_the_main_hub_exit_what_they_entered(transport: MemoryTransport) -> None:
    import threading
    import warnings

    a_entered, b_entered, a_exited = threading.Event(), threading.Event(), threading.Event()
    failures: list[BaseException] = []
    seen: dict[str, list[object]] = {}

    def run(name: str, before: threading.Event | None, signal: threading.Event, after: Any) -> None:
        try:
            if before is not None:
                before.wait(10)
            with tripwire.Hub.current as hub:
                tripwire.set_tag("thread", name)
                signal.set()
                if after is not None:
                    after.wait(10)
                tripwire.capture_message(name)
            seen[name] = [hub is tripwire.Hub.main, tripwire.Hub.current is hub]
            tripwire.capture_message(name + " after")  # in this thread's own scopes again
        except BaseException as exc:
            failures.append(exc)
        finally:
            signal.set()

    # A enters, B enters, A exits (B's entry stays B's), B exits.
    a = threading.Thread(target=run, args=("a", None, a_entered, b_entered))
    b = threading.Thread(target=run, args=("b", a_entered, b_entered, a_exited))
    with warnings.catch_warnings():  # (the filters are the process's: set around both)
        warnings.simplefilter("ignore", SentryHubDeprecationWarning)
        a.start()
        b.start()
        a.join(10)
        a_exited.set()
        b.join(10)
    assert failures == []
    assert seen == {"a": [True, True], "b": [True, True]}
    tagged = sorted((e["message"], e["tags"]["thread"]) for e in transport.events)
    assert tagged == [("a", "a"), ("a after", "a"), ("b", "b"), ("b after", "b")]


def test_hub_with_new_client() -> None:
    memory = MemoryTransport()
    client = tripwire.Client(transport=memory)
    with pytest.warns(SentryHubDeprecationWarning), tripwire.Hub(client) as hub:
        tripwire.capture_message("inside hub")
        assert hub.client is client
    assert memory.events[0]["message"] == "inside hub"


def test_hub_push_and_pop_scope_unsafe(transport: MemoryTransport) -> None:
    with pytest.warns(SentryHubDeprecationWarning):
        hub = tripwire.Hub.current
    manager = hub.push_scope()
    assert manager is not None
    with manager as scope:
        scope.set_tag("tmp", "1")
        tripwire.capture_message("x")
    assert transport.events[0]["tags"] == {"tmp": "1"}


def test_hub_get_integration(transport: MemoryTransport) -> None:
    from tripwire.integrations.dedupe import DedupeIntegration

    with pytest.warns(SentryHubDeprecationWarning):
        hub = tripwire.Hub.current
    assert hub.get_integration(DedupeIntegration) is not None
    assert hub.get_integration("dedupe") is not None
    assert hub.get_integration("nope") is None
