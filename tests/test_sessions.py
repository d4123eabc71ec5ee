"""Release health: sessions started, updated by errors, sent on flush."""

from __future__ import annotations

import json
from typing import Any

import tripwire
from tripwire.sessions import auto_session_tracking
from tripwire.testing import MemoryTransport


def _session_payloads(transport: MemoryTransport, item_type: str = "session") -> list[Any]:
    return [json.loads(item.get_bytes()) for item in transport.items(item_type)]


def test_application_session_with_an_error(init_memory) -> None:  # type: ignore[no-untyped-def]
    memory = init_memory(release="r1")
    tripwire.start_session()
    tripwire.set_user({"id": "u1", "ip_address": "1.2.3.4"})
    try:
        1 / 0
    except ZeroDivisionError:
        tripwire.capture_exception()
    tripwire.end_session()
    tripwire.flush()
    (session,) = _session_payloads(memory)
    assert session["status"] == "exited"
    assert session["errors"] == 1
    assert session["init"] is True
    assert session["did"] == "u1"
    assert session["attrs"] == {
        "release": "r1",
        "environment": "production",
        "ip_address": "1.2.3.4",
    }
    assert len(session["sid"]) == 36


def test_unhandled_error_crashes_the_session(init_memory) -> None:  # type: ignore[no-untyped-def]
    memory = init_memory(release="r1")
    tripwire.start_session()
    try:
        raise RuntimeError("boom")
    except RuntimeError as e:
        event, hint = tripwire.get_client()._event_from_exception(
            (type(e), e, e.__traceback__), {"type": "excepthook", "handled": False}
        )
        tripwire.capture_event(event, hint)
    tripwire.end_session()
    tripwire.flush()
    (session,) = _session_payloads(memory)
    assert session["status"] == "crashed"


def test_sessions_without_release_are_not_sent(init_memory) -> None:  # type: ignore[no-untyped-def]
    transport = init_memory(release="")  # "" disables the git/CI release detection
    tripwire.start_session()
    tripwire.end_session()
    tripwire.flush()
    assert transport.items("session") == []


def test_request_mode_sessions_are_aggregated(init_memory) -> None:  # type: ignore[no-untyped-def]
    memory = init_memory(release="r2", environment="prod")
    for fail in (False, False, True):
        with tripwire.isolation_scope() as scope, auto_session_tracking(scope):
            tripwire.capture_message("a message counts as no error", level="error")
            if fail:
                tripwire.capture_exception(ValueError("request failed"))
    tripwire.flush()
    (aggregate,) = _session_payloads(memory, "sessions")
    assert aggregate["attrs"] == {"release": "r2", "environment": "prod"}
    (bucket,) = aggregate["aggregates"]
    assert bucket["exited"] == 2
    assert bucket["errored"] == 1
