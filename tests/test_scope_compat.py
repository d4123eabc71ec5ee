"""sentry_sdk.scope / sentry_sdk.sessions names and their behaviour, next to sentry-sdk 2.75."""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest
import sentry_sdk
import sentry_sdk.scope
import sentry_sdk.sessions
from _sentry_side import SentryCapture, payloads, reset_sentry

import tripwire
import tripwire.scope
import tripwire.sessions
from tripwire.client import NonRecordingClient
from tripwire.session import Session
from tripwire.testing import MemoryTransport

# -- the non-recording client ------------------------------------------------------------


@pytest.mark.parametrize("sdk", [sentry_sdk, tripwire], ids=["sentry_sdk", "tripwire"])
def test_bare_scope_has_a_non_recording_client(sdk: Any) -> None:
    scope = sdk.Scope()
    assert scope.client is not None
    assert scope.client.is_active() is False
    assert scope.client.get_integration("dedupe") is None
    scope.set_client(None)
    assert scope.client.is_active() is False


def test_non_recording_client_is_one_class() -> None:
    assert tripwire.scope.NonRecordingClient is NonRecordingClient
    assert isinstance(tripwire.Scope().client, NonRecordingClient)


def test_scope_with_non_recording_client_defers_outward(transport: MemoryTransport) -> None:
    # As sentry_sdk: a scope holding a NonRecordingClient does not hide the global client.
    scope = tripwire.Scope(client=NonRecordingClient())
    with tripwire.scope.use_scope(scope):
        tripwire.capture_message("reaches the global client")
    assert [e["message"] for e in transport.events] == ["reaches the global client"]


# -- conversation id, pii ----------------------------------------------------------------


@pytest.mark.parametrize("sdk", [sentry_sdk, tripwire], ids=["sentry_sdk", "tripwire"])
def test_conversation_id(sdk: Any) -> None:
    scope = sdk.Scope()
    assert scope.get_conversation_id() is None
    scope.set_conversation_id("conv-1")
    fork = scope.fork()
    fork.set_conversation_id("conv-2")
    assert (scope.get_conversation_id(), fork.get_conversation_id()) == ("conv-1", "conv-2")
    target = sdk.Scope()
    target.update_from_scope(scope)
    assert target.get_conversation_id() == "conv-1"
    scope.remove_conversation_id()
    assert scope.get_conversation_id() is None
    assert fork.get_conversation_id() == "conv-2"


def test_should_send_default_pii() -> None:
    assert tripwire.scope.should_send_default_pii() is False
    tripwire.init(send_default_pii=True, transport=MemoryTransport())
    assert tripwire.scope.should_send_default_pii() is True


# -- external propagation context -------------------------------------------------------


def _external_scenario(sdk: Any) -> tuple[bool, list[tuple[str, str]]]:
    module = sdk.scope
    module.register_external_propagation_context(lambda: ("a" * 32, "b" * 16))
    try:
        registered = module.has_external_propagation_context()
        assert module.get_external_propagation_context() == ("a" * 32, "b" * 16)
        sdk.capture_message("inside an external trace")
        headers = list(sdk.get_current_scope().iter_trace_propagation_headers())
    finally:
        module.remove_external_propagation_context()
    assert module.has_external_propagation_context() is False
    assert module.get_external_propagation_context() is None
    return registered, headers


def test_external_propagation_context_matches_sentry() -> None:
    theirs = SentryCapture(dsn=None)
    sentry_sdk.init(transport=theirs, default_integrations=False)
    try:
        their_result = _external_scenario(sentry_sdk)
    finally:
        reset_sentry()
    ours = MemoryTransport()
    tripwire.init(transport=ours, default_integrations=False)
    our_result = _external_scenario(tripwire)

    assert our_result == their_result == (True, [])
    their_trace = payloads(theirs.raw)[0]["contexts"]["trace"]
    our_trace = ours.events[0]["contexts"]["trace"]
    assert our_trace == their_trace == {"trace_id": "a" * 32, "span_id": "b" * 16}
    # Unregistered again: events get the SDK's own trace.
    tripwire.capture_message("after")
    assert ours.events[1]["contexts"]["trace"]["trace_id"] != "a" * 32


def test_external_context_yields_to_an_active_span(init_memory: Any) -> None:
    memory = init_memory(traces_sample_rate=1.0)
    tripwire.scope.register_external_propagation_context(lambda: ("a" * 32, "b" * 16))
    try:
        with tripwire.start_transaction(name="ours") as tx:
            tripwire.capture_message("in our transaction")
            headers = dict(tripwire.get_current_scope().iter_trace_propagation_headers())
    finally:
        tripwire.scope.remove_external_propagation_context()
    assert memory.events[0]["contexts"]["trace"]["trace_id"] == tx.trace_id
    assert headers["sentry-trace"].startswith(tx.trace_id)


def test_scope_module_names() -> None:
    for name in (
        "Attachment",
        "Session",
        "DEFAULT_MAX_BREADCRUMBS",
        "SPANDATA",
        "PropagationContext",
        "Span",
        "Transaction",
        "NoOpSpan",
        "Baggage",
        "capture_internal_exceptions",
    ):
        assert hasattr(tripwire.scope, name), name
    assert tripwire.scope.DEFAULT_MAX_BREADCRUMBS == getattr(
        sentry_sdk.scope, "DEFAULT_MAX_BREADCRUMBS"
    )
    with pytest.raises(AttributeError):
        tripwire.scope.no_such_name


# -- sessions ------------------------------------------------------------------------------


def _session_items(memory: MemoryTransport, item_type: str) -> list[dict[str, Any]]:
    return [json.loads(item.get_bytes()) for item in memory.items(item_type)]


def test_track_session_sends_one_session(init_memory: Any) -> None:
    memory = init_memory(release="r1")
    with tripwire.isolation_scope() as scope, tripwire.sessions.track_session(scope):
        tripwire.capture_exception(ValueError("failed"))
    tripwire.flush()
    (session,) = _session_items(memory, "session")
    assert session["status"] == "exited"
    assert session["errors"] == 1
    assert session["attrs"] == {"release": "r1", "environment": "production"}


def test_track_session_is_off_when_stopped(init_memory: Any) -> None:
    memory = init_memory(release="r1")
    with tripwire.isolation_scope() as scope:
        scope.stop_auto_session_tracking()
        with tripwire.sessions.track_session(scope):
            pass
    tripwire.flush()
    assert _session_items(memory, "session") == []


def test_deprecated_session_helpers_warn_at_the_caller(init_memory: Any) -> None:
    memory = init_memory(release="r1")
    scope = tripwire.get_isolation_scope()
    with pytest.warns(DeprecationWarning) as caught:
        assert tripwire.sessions.is_auto_session_tracking_enabled_scope(scope) is True
        assert tripwire.sessions.is_auto_session_tracking_enabled() is True
        with tripwire.sessions.auto_session_tracking_scope(scope, session_mode="request"):
            pass
    assert [w.filename for w in caught] == [__file__] * 3
    tripwire.flush()
    (aggregate,) = _session_items(memory, "sessions")
    assert aggregate["aggregates"][0]["exited"] == 1


def test_make_aggregate_envelope_matches_sentry() -> None:
    states = {60.0: {"started": "x", "exited": 2}}
    attrs = (("release", "r"),)
    assert tripwire.sessions.make_aggregate_envelope(
        states, attrs
    ) == sentry_sdk.sessions.make_aggregate_envelope(states, attrs)
    assert tripwire.sessions.MAX_ENVELOPE_ITEMS == sentry_sdk.sessions.MAX_ENVELOPE_ITEMS


def test_many_sessions_are_split_into_envelopes(init_memory: Any) -> None:
    memory = init_memory(release="r1")
    count = tripwire.sessions.MAX_ENVELOPE_ITEMS + 5
    for _ in range(count):
        tripwire.start_session()
        tripwire.end_session()
    tripwire.flush()
    sizes = [len(e.items) for e in memory.envelopes if e.items and e.items[0].type == "session"]
    assert sum(sizes) == count
    assert max(sizes) <= tripwire.sessions.MAX_ENVELOPE_ITEMS


def _flusher_payloads(sdk_sessions: Any, session_cls: Any) -> list[tuple[str | None, Any]]:
    sent: list[Any] = []
    flusher = sdk_sessions.SessionFlusher(sent.append, flush_interval=3600)
    try:
        for status, errors in (("exited", 0), ("exited", 2), ("crashed", 1)):
            session = session_cls(release="r", environment="e", session_mode="request")
            session.update(status=status, errors=errors)
            flusher.add_session(session)
        app = session_cls(release="r", environment="e", sid="0" * 32)
        app.close()
        flusher.add_session(app)
        flusher.flush()
    finally:
        flusher.kill()
    out = []
    for envelope in sent:
        for item in envelope.items:
            payload = item.payload.json
            if item.type == "sessions":
                payload = {
                    **payload,
                    "aggregates": [
                        {k: v for k, v in a.items() if k != "started"}
                        for a in payload["aggregates"]
                    ],
                }
            else:
                payload = {k: payload[k] for k in ("sid", "status", "attrs")}
            out.append((item.type, payload))
    return out


def test_session_flusher_matches_sentry() -> None:
    from sentry_sdk.session import Session as SentrySession

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        theirs = _flusher_payloads(sentry_sdk.sessions, SentrySession)
        ours = _flusher_payloads(tripwire.sessions, Session)
    assert ours == theirs
    assert (
        "sessions",
        {
            "attrs": {"release": "r", "environment": "e"},
            "aggregates": [{"exited": 1, "errored": 1, "crashed": 1}],
        },
    ) in ours


def test_custom_sampling_context_lands_on_the_active_propagation_context() -> None:
    for sdk in (sentry_sdk, tripwire):
        with sdk.isolation_scope():
            sdk.Scope.set_custom_sampling_context({"tenant": "acme"})
            context = sdk.get_current_scope().get_active_propagation_context()
            assert context.custom_sampling_context == {"tenant": "acme"}, sdk
        with sdk.isolation_scope():
            context = sdk.get_current_scope().get_active_propagation_context()
            assert context.custom_sampling_context is None, sdk


def test_init_gives_the_callers_context_its_scopes_as_sentry_sdk() -> None:
    """Scopes first used inside `asyncio.run` live in the caller's context after init."""
    import asyncio

    for sdk in (sentry_sdk, tripwire):
        sdk.init(
            transport=SentryCapture(dsn=None) if sdk is sentry_sdk else None,
            default_integrations=False,
        )
        try:

            async def crumb() -> None:
                sdk.add_breadcrumb(message="in-task")

            asyncio.run(crumb())
            crumbs = list(sdk.get_isolation_scope()._breadcrumbs)
            assert [c["message"] for c in crumbs] == ["in-task"], sdk
        finally:
            if sdk is sentry_sdk:
                reset_sentry()
