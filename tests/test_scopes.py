"""Global, isolation and current scopes: merging, forking, isolation across threads and tasks."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest

import tripwire
from tripwire.scope import Scope
from tripwire.testing import MemoryTransport


def test_merge_order_global_isolation_current(transport: MemoryTransport) -> None:
    tripwire.get_global_scope().set_tag("layer", "global")
    tripwire.get_global_scope().set_tag("g", 1)
    tripwire.get_isolation_scope().set_tag("layer", "isolation")
    tripwire.get_isolation_scope().set_tag("i", 1)
    with tripwire.new_scope() as scope:
        scope.set_tag("layer", "current")
        tripwire.capture_message("x")
    assert transport.events[0]["tags"] == {"layer": "current", "g": "1", "i": "1"}


def test_scope_values_override_event_values_but_event_user_wins(transport: MemoryTransport) -> None:
    tripwire.set_extra("k", "iso")
    tripwire.set_user({"id": "scope"})
    tripwire.capture_event(
        {"message": "m", "extra": {"k": "event"}, "tags": {"t": "event"}, "user": {"id": "ev"}},
        tags={"t": "kw"},
    )
    event = transport.events[0]
    assert event["extra"]["k"] == "iso"
    assert event["tags"] == {"t": "kw"}
    assert event["user"] == {"id": "ev"}


def test_level_override_innermost_wins(transport: MemoryTransport) -> None:
    tripwire.get_isolation_scope().set_level("warning")
    with tripwire.new_scope() as scope:
        scope.set_level("debug")
        tripwire.capture_message("z", level="fatal")
    assert transport.events[0]["level"] == "debug"


def test_new_scope_does_not_leak(transport: MemoryTransport) -> None:
    with tripwire.new_scope() as scope:
        scope.set_tag("inner", "yes")
        scope.set_extra("e", 1)
    tripwire.capture_message("after")
    event = transport.events[0]
    assert "inner" not in event.get("tags", {})
    assert "e" not in event.get("extra", {})


def test_fork_is_a_snapshot_both_ways() -> None:
    parent = Scope()
    parent.set_tag("a", 1)
    child = parent.fork()
    parent.set_tag("b", 2)
    child.set_tag("c", 3)
    assert parent._tags == {"a": 1, "b": 2}
    assert child._tags == {"a": 1, "c": 3}


def test_fork_shares_containers_until_write() -> None:
    parent = Scope()
    for i in range(50):
        parent.set_extra(f"k{i}", i)
    child = parent.fork()
    assert child._extras is parent._extras  # no eager copy
    child.set_extra("new", 1)
    assert child._extras is not parent._extras
    assert "new" not in parent._extras


def test_isolation_scope_forks_isolation(transport: MemoryTransport) -> None:
    tripwire.set_tag("outer", "1")
    with tripwire.isolation_scope() as iso:
        assert iso is tripwire.get_isolation_scope()
        tripwire.set_tag("request", "abc")
        tripwire.capture_message("inside")
    tripwire.capture_message("outside")
    inside, outside = transport.events
    assert inside["tags"] == {"outer": "1", "request": "abc"}
    assert outside["tags"] == {"outer": "1"}


def test_threads_do_not_share_isolation_scope(transport: MemoryTransport) -> None:
    barrier = threading.Barrier(2)

    def work(name: str) -> None:
        with tripwire.isolation_scope():
            tripwire.set_tag("worker", name)
            barrier.wait()
            tripwire.capture_message(name)

    threads = [threading.Thread(target=work, args=(n,)) for n in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    tags = sorted((e["message"], e["tags"]["worker"]) for e in transport.events)
    assert tags == [("a", "a"), ("b", "b")]


def test_asyncio_tasks_are_isolated(transport: MemoryTransport) -> None:
    async def handler(name: str) -> None:
        with tripwire.isolation_scope():
            tripwire.set_user({"id": name})
            await asyncio.sleep(0)
            tripwire.capture_message(name)

    async def main() -> None:
        await asyncio.gather(*(handler(f"u{i}") for i in range(5)))

    asyncio.run(main())
    pairs = sorted((e["message"], e["user"]["id"]) for e in transport.events)
    assert pairs == [(f"u{i}", f"u{i}") for i in range(5)]


def test_breadcrumbs_recorded_and_capped(init_memory) -> None:  # type: ignore[no-untyped-def]
    memory = init_memory(max_breadcrumbs=3)
    for i in range(5):
        tripwire.add_breadcrumb(message=f"b{i}", category="c", level="info", data={"i": i})
    tripwire.capture_message("x")
    values = memory.events[0]["breadcrumbs"]["values"]
    assert [v["message"] for v in values] == ["b2", "b3", "b4"]
    assert values[0]["category"] == "c"
    assert values[0]["data"] == {"i": 2}
    assert values[0]["type"] == "default"
    assert values[0]["timestamp"].endswith("Z")


def test_breadcrumb_kwargs_become_fields(transport: MemoryTransport) -> None:
    tripwire.add_breadcrumb(
        message="Configuration loaded",
        category="config",
        level="debug",
        config_source="environment_variables",
        config_count=25,
    )
    tripwire.capture_message("x")
    crumb = transport.events[0]["breadcrumbs"]["values"][0]
    assert crumb["config_source"] == "environment_variables"
    assert crumb["config_count"] == 25


def test_before_breadcrumb_with_hint(init_memory) -> None:  # type: ignore[no-untyped-def]
    seen = []

    def before_breadcrumb(crumb, hint):  # type: ignore[no-untyped-def]
        seen.append(hint)
        if crumb.get("category") == "drop":
            return None
        crumb["message"] = crumb["message"].upper()
        return crumb

    memory = init_memory(before_breadcrumb=before_breadcrumb)
    tripwire.add_breadcrumb(message="keep", hint={"h": 1})
    tripwire.add_breadcrumb(message="gone", category="drop")
    tripwire.capture_message("x")
    assert [c["message"] for c in memory.events[0]["breadcrumbs"]["values"]] == ["KEEP"]
    assert seen[0] == {"h": 1}


def test_clear_breadcrumbs_and_clear(transport: MemoryTransport) -> None:
    tripwire.add_breadcrumb(message="a")
    scope = tripwire.get_isolation_scope()
    scope.clear_breadcrumbs()
    scope.set_tag("t", 1)
    scope.clear()
    tripwire.capture_message("x")
    event = transport.events[0]
    assert event["breadcrumbs"] == {"values": []}
    assert "t" not in event.get("tags", {})


def test_clear_keeps_the_scopes_processors_as_sentry_sdk(transport: MemoryTransport) -> None:
    scope = tripwire.get_isolation_scope()
    scope.add_event_processor(lambda event, hint: {**event, "extra": {"seen": True}})
    scope.add_error_processor(lambda event, exc_info: {**event, "tags": {"error": "yes"}})
    scope.set_tag("t", 1)
    fork = scope.fork()  # shares the processor lists until either side writes
    scope.clear()
    scope.add_event_processor(lambda event, hint: {**event, "dist": "after"})
    try:
        raise ValueError("x")
    except ValueError:
        tripwire.capture_exception()
    (event,) = transport.events
    assert event["extra"] == {"seen": True}
    assert event["tags"] == {"error": "yes"}
    assert event["dist"] == "after"
    assert len(fork._d.event_processors) == 1  # the clear scope's new processor is its own


def test_remove_tag_extra_context(transport: MemoryTransport) -> None:
    scope = tripwire.get_isolation_scope()
    scope.set_tag("t", 1)
    scope.set_extra("e", 1)
    scope.set_context("c", {"a": 1})
    scope.remove_tag("t")
    scope.remove_extra("e")
    scope.remove_context("c")
    tripwire.capture_message("x")
    event = transport.events[0]
    assert "t" not in event.get("tags", {})
    assert "e" not in event.get("extra", {})
    assert "c" not in event["contexts"]


def test_set_user_none_clears(transport: MemoryTransport) -> None:
    tripwire.set_user({"id": 1})
    tripwire.set_user(None)
    tripwire.capture_message("x")
    assert "user" not in transport.events[0]


def test_event_and_error_processors(transport: MemoryTransport) -> None:
    scope = tripwire.get_isolation_scope()

    def add_tag(event, hint):  # type: ignore[no-untyped-def]
        event.setdefault("tags", {})["processed"] = "yes"
        return event

    def drop_key_errors(event, exc_info):  # type: ignore[no-untyped-def]
        return None

    scope.add_event_processor(add_tag)
    scope.add_error_processor(drop_key_errors, KeyError)
    try:
        raise KeyError("x")
    except KeyError:
        assert tripwire.capture_exception() is None
    try:
        raise ValueError("y")
    except ValueError:
        assert tripwire.capture_exception() is not None
    (event,) = transport.events
    assert event["tags"]["processed"] == "yes"
    assert tripwire.get_client().outcomes.snapshot() == {("event_processor", "error"): 1}


def test_processor_raising_keeps_event(transport: MemoryTransport) -> None:
    def broken(event, hint):  # type: ignore[no-untyped-def]
        raise RuntimeError("processor bug")

    tripwire.get_isolation_scope().add_event_processor(broken)
    assert tripwire.capture_message("still sent") is not None
    assert transport.events[0]["message"] == "still sent"


def test_update_from_scope_and_kwargs() -> None:
    a = Scope()
    a.set_tag("x", 1)
    a.set_level("warning")
    b = Scope()
    b.update_from_scope(a)
    b.update_from_kwargs(tags={"y": 2}, extras={"e": 1}, extra={"f": 2}, fingerprint=["fp"])
    assert b._tags == {"x": 1, "y": 2}
    assert b._extras == {"e": 1, "f": 2}
    assert b._level == "warning"
    assert b.fingerprint == ["fp"]


def test_transaction_name_on_events(transport: MemoryTransport) -> None:
    tripwire.set_transaction_name("/checkout", source="route")
    tripwire.capture_message("x")
    event = transport.events[0]
    assert event["transaction"] == "/checkout"
    assert event["transaction_info"] == {"source": "route"}


def test_apply_to_event() -> None:
    tripwire.init(transport=MemoryTransport())
    scope = Scope()
    scope.set_tag("a", "b")
    event = scope.apply_to_event({"message": "m"}, {})
    assert event is not None and event["tags"] == {"a": "b"}


def test_processor_mutating_breadcrumbs_does_not_leak_into_later_events(
    transport: MemoryTransport,
) -> None:
    tripwire.add_breadcrumb(message="original", data={"k": "v"})

    def vandal(event, hint):  # type: ignore[no-untyped-def]
        for crumb in event["breadcrumbs"]["values"]:
            crumb["message"] = "changed"
            crumb.pop("data", None)
        return event

    with tripwire.new_scope() as scope:
        scope.add_event_processor(vandal)
        tripwire.capture_message("first")
    tripwire.capture_message("second")
    first, second = transport.events
    assert first["breadcrumbs"]["values"][0]["message"] == "changed"
    assert second["breadcrumbs"]["values"][0] == {
        "message": "original",
        "data": {"k": "v"},
        "timestamp": second["breadcrumbs"]["values"][0]["timestamp"],
        "type": "default",
    }


def test_new_breadcrumbs_between_events_are_seen(transport: MemoryTransport) -> None:
    for i in range(3):
        tripwire.add_breadcrumb(message=f"b{i}")
        tripwire.capture_message(f"e{i}")
    counts = [len(e["breadcrumbs"]["values"]) for e in transport.events]
    assert counts == [1, 2, 3]


def test_spliced_breadcrumbs_encode_to_the_same_json(transport: MemoryTransport) -> None:
    import json

    from tripwire._json import dumps

    for i in range(30):
        tripwire.add_breadcrumb(message=f"step {i}", category="c", data={"i": i, "password": "x"})
    for _ in range(3):
        tripwire.capture_message("storm")
    envelopes = transport.envelopes
    for envelope in envelopes:
        (item,) = [i for i in envelope.items if i.type == "event"]
        wire = json.loads(item.get_bytes())
        assert wire == json.loads(dumps(wire))  # valid, stable JSON
        assert len(wire["breadcrumbs"]["values"]) == 30
        assert wire["breadcrumbs"]["values"][5]["data"] == {"i": 5, "password": "[Filtered]"}
        assert wire["_meta"]["breadcrumbs"]["values"]["5"]["data"]["password"] == {
            "": {"rem": [["!config", "s"]]}
        }
    assert transport.events[0]["breadcrumbs"] == transport.events[2]["breadcrumbs"]


def test_breadcrumbs_from_several_scopes_are_merged_in_time_order(
    transport: MemoryTransport,
) -> None:
    from tripwire.testing import frozen_clock

    frozen_clock(at=1_700_000_000.0, step=1.0)
    tripwire.get_global_scope().add_breadcrumb(message="global first")
    tripwire.add_breadcrumb(message="isolation second")
    with tripwire.new_scope() as scope:
        scope.add_breadcrumb(message="current third")
        tripwire.get_global_scope().add_breadcrumb(message="global fourth")
        tripwire.capture_message("x")
    messages = [c["message"] for c in transport.events[0]["breadcrumbs"]["values"]]
    assert messages == ["global first", "isolation second", "current third", "global fourth"]


def test_assigning_scope_transaction_names_events_and_logs_the_deprecation(
    transport: MemoryTransport, caplog: pytest.LogCaptureFixture
) -> None:
    # As sentry_sdk 2.x: the name goes to the events; the SDK's logger (shown with
    # debug=True) says to call set_transaction_name instead.
    with caplog.at_level(logging.WARNING, logger="tripwire.errors"):
        tripwire.get_current_scope().transaction = "assigned"
    tripwire.capture_message("named")
    tripwire.flush()
    assert [event["transaction"] for event in transport.events] == ["assigned"]
    assert [record.getMessage() for record in caplog.records] == [
        "scope.transaction = name is deprecated: call scope.set_transaction_name(name)"
    ]
