"""Capturing messages, exceptions and events: what reaches the transport."""

from __future__ import annotations

import sys

import pytest

import tripwire
from tripwire.testing import MemoryTransport


def test_capture_message_defaults(transport: MemoryTransport) -> None:
    event_id = tripwire.capture_message("hello")
    (event,) = transport.events
    assert event["event_id"] == event_id
    assert event["message"] == "hello"
    assert event["level"] == "info"
    assert event["platform"] == "python"
    assert event["environment"] == "production"
    assert event["sdk"]["name"] == "tripwire.python"
    assert "runtime" in event["contexts"]
    assert event["contexts"]["trace"]["trace_id"]
    assert event["timestamp"].endswith("Z")
    # extra is a data bag: lists keep their first 10 items, as in sentry_sdk
    assert event["extra"]["sys.argv"] == [str(a) for a in sys.argv][:10]


def test_capture_message_level_and_kwargs(transport: MemoryTransport) -> None:
    tripwire.capture_message(
        "Payment processing failed",
        level="error",
        tags={"payment_method": "credit_card"},
        extra={"user_id": "user_123", "amount": 99.99},
        fingerprint=["payments"],
        user={"id": "u1"},
        contexts={"billing": {"plan": "pro"}},
    )
    (event,) = transport.events
    assert event["level"] == "error"
    assert event["tags"] == {"payment_method": "credit_card"}
    assert event["extra"]["user_id"] == "user_123"
    assert event["extra"]["amount"] == 99.99
    assert event["fingerprint"] == ["payments"]
    assert event["user"] == {"id": "u1"}
    assert event["contexts"]["billing"] == {"plan": "pro"}


def test_extras_kwarg_also_works(transport: MemoryTransport) -> None:
    tripwire.capture_message("m", extras={"a": 1})
    assert transport.events[0]["extra"]["a"] == 1


def test_scope_and_kwargs_together_are_dropped_not_raised(transport: MemoryTransport) -> None:
    assert tripwire.capture_message("m", scope=tripwire.Scope(), tags={"a": 1}) is None
    assert transport.events == []


def test_scope_callable_and_scope_object(transport: MemoryTransport) -> None:
    tripwire.capture_message("cb", scope=lambda s: s.set_tag("from", "callback"))
    extra = tripwire.Scope()
    extra.set_tag("from", "scope")
    tripwire.capture_message("obj", scope=extra)
    assert [e["tags"]["from"] for e in transport.events] == ["callback", "scope"]


def _raise_value_error() -> None:
    raise ValueError("bad input")


def test_capture_exception_in_except_block(transport: MemoryTransport) -> None:
    try:
        _raise_value_error()
    except ValueError:
        event_id = tripwire.capture_exception()
    (event,) = transport.events
    assert event["event_id"] == event_id
    assert event["level"] == "error"
    (exc,) = event["exception"]["values"]
    assert exc["type"] == "ValueError"
    assert exc["value"] == "bad input"
    assert exc["mechanism"] == {"type": "generic", "handled": True}
    functions = [f["function"] for f in exc["stacktrace"]["frames"]]
    assert functions[-1] == "_raise_value_error"
    assert (
        exc["stacktrace"]["frames"][-1]["context_line"].strip() == 'raise ValueError("bad input")'
    )


def test_capture_exception_instance_and_exc_info(transport: MemoryTransport) -> None:
    try:
        _raise_value_error()
    except ValueError as e:
        error = e
        info = sys.exc_info()
    tripwire.capture_exception(error)
    from tripwire.integrations.dedupe import DedupeIntegration

    DedupeIntegration.reset_last_seen()
    tripwire.capture_exception(info)
    assert len(transport.events) == 2
    assert transport.events[1]["exception"]["values"][0]["type"] == "ValueError"


def test_capture_exception_without_exception_returns_none(transport: MemoryTransport) -> None:
    assert tripwire.capture_exception() is None
    assert tripwire.capture_exception("not an exception") is None  # type: ignore[arg-type]
    assert transport.events == []


def test_chained_exceptions(transport: MemoryTransport) -> None:
    try:
        try:
            _raise_value_error()
        except ValueError as e:
            raise KeyError("k") from e
    except KeyError:
        tripwire.capture_exception()
    values = transport.events[0]["exception"]["values"]
    assert [v["type"] for v in values] == ["ValueError", "KeyError"]


def test_dedupe_same_exception_object(transport: MemoryTransport) -> None:
    try:
        _raise_value_error()
    except ValueError as e:
        assert tripwire.capture_exception(e) is not None
        assert tripwire.capture_exception(e) is None
    assert len(transport.events) == 1
    assert tripwire.get_client().outcomes.snapshot() == {("event_processor", "error"): 1}


def test_capture_event_custom(transport: MemoryTransport) -> None:
    event = {
        "message": "Custom business logic event",
        "level": "info",
        "extra": {"step": "inventory_check", "processing_time_ms": 145},
        "tags": {"service": "inventory"},
        "logger": "security.audit",
    }
    event_id = tripwire.capture_event(event, hint={"security_event": True})
    (sent,) = transport.events
    assert sent["event_id"] == event_id
    assert sent["extra"]["step"] == "inventory_check"
    assert sent["tags"] == {"service": "inventory"}
    assert sent["logger"] == "security.audit"
    assert "event_id" not in event  # the caller's dict is not mutated


def test_capture_event_with_odd_objects_never_raises(transport: MemoryTransport) -> None:
    class Hostile:
        def __repr__(self) -> str:
            raise RuntimeError("no repr for you")

    recursive: list[object] = []
    recursive.append(recursive)
    event_id = tripwire.capture_event(
        {"message": "odd", "extra": {"h": Hostile(), "r": recursive, "b": b"\xff\x00", "s": {1, 2}}}
    )
    assert event_id is not None
    (sent,) = transport.events
    assert isinstance(sent["extra"]["h"], str)


def test_capture_before_init_and_after_close() -> None:
    assert tripwire.capture_message("nobody listens") is None
    assert tripwire.capture_exception(ValueError("x")) is None
    tripwire.add_breadcrumb(message="ignored")
    tripwire.set_tag("a", "b")
    memory = MemoryTransport()
    tripwire.init(transport=memory)
    tripwire.get_client().close()
    assert tripwire.capture_message("after close") is None
    assert memory.events == []


def test_no_dsn_no_transport_drops() -> None:
    tripwire.init()
    assert tripwire.is_initialized()
    assert tripwire.capture_message("x") is None


def test_callable_transport() -> None:
    got: list[dict[str, object]] = []
    with pytest.warns(DeprecationWarning, match="function as `transport`"):
        tripwire.init(transport=got.append)
    tripwire.capture_message("via callable")
    assert got[0]["message"] == "via callable"


def test_last_event_id(transport: MemoryTransport) -> None:
    event_id = tripwire.capture_message("x")
    assert tripwire.last_event_id() == event_id


def test_a_hand_built_transaction_gets_its_scopes_trace(init_memory) -> None:  # type: ignore[no-untyped-def]
    # Relay refuses a transaction without contexts.trace; sentry_sdk adds the scope's.
    memory = init_memory(traces_sample_rate=1.0)
    tripwire.capture_event(
        {"type": "transaction", "transaction": "x", "start_timestamp": 1.0, "timestamp": 2.0}
    )
    (event,) = memory.transactions
    trace = event["contexts"]["trace"]
    assert trace["trace_id"] == tripwire.get_current_scope().get_trace_context()["trace_id"]
    assert len(trace["span_id"]) == 16
    assert event["transaction_info"] == {}


def test_last_event_id_is_not_a_transaction(init_memory) -> None:  # type: ignore[no-untyped-def]
    # What a user-feedback form asks for: the error's id, which a transaction that
    # finished since (the request's own, say) does not replace.
    memory = init_memory(traces_sample_rate=1.0)
    event_id = tripwire.capture_message("x")
    with tripwire.start_transaction(name="request"):
        pass
    assert len(memory.transactions) == 1
    assert tripwire.last_event_id() == event_id


def test_attach_stacktrace_on_messages(init_memory) -> None:  # type: ignore[no-untyped-def]
    memory = init_memory(attach_stacktrace=True)
    tripwire.capture_message("with stack")
    (thread,) = memory.events[0]["threads"]["values"]
    frames = thread["stacktrace"]["frames"]
    assert frames[-1]["function"] == "test_attach_stacktrace_on_messages"
    assert not any(f.get("module", "").startswith("tripwire.") for f in frames)


def test_release_environment_server_name_dist(init_memory) -> None:  # type: ignore[no-untyped-def]
    memory = init_memory(release="1.2.3", environment="staging", server_name="web-1", dist="7")
    tripwire.capture_message("x")
    event = memory.events[0]
    assert (event["release"], event["environment"], event["server_name"], event["dist"]) == (
        "1.2.3",
        "staging",
        "web-1",
        "7",
    )


@pytest.mark.parametrize("bad", [object(), 5, None])
def test_capture_event_rejects_non_dict(transport: MemoryTransport, bad: object) -> None:
    assert tripwire.capture_event(bad) is None  # type: ignore[arg-type]


def test_a_second_client_uses_its_own_integrations(transport: MemoryTransport) -> None:
    # The global client has the default integrations; this one has none.
    other_transport = MemoryTransport()
    other = tripwire.Client(transport=other_transport, default_integrations=False)
    try:
        raise ValueError("same object twice")
    except ValueError as exc:
        assert tripwire.capture_exception(exc) is not None
        event, hint = other._event_from_exception((type(exc), exc, exc.__traceback__))
        assert other.capture_event(event, hint) is not None  # no dedupe on this client
    (theirs,) = other_transport.events
    assert "sys.argv" not in theirs.get("extra", {})  # no argv integration here
    assert "modules" not in theirs
    assert "runtime" not in theirs.get("contexts", {})
    (ours,) = transport.events
    assert "sys.argv" in ours["extra"]
    assert "runtime" in ours["contexts"]
