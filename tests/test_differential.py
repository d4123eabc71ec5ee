"""Differential tests: the same code through sentry-sdk 2.x and tripwire gives the same events.

Ids, timestamps, SDK metadata, installed modules and trace ids differ by nature and are
normalised away; everything else (structure and values) must match.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

import pytest

import tripwire
from tripwire.testing import MemoryTransport

sentry_sdk = pytest.importorskip("sentry_sdk")
from _sentry_side import SentryCapture, payloads, reset_sentry  # noqa: E402

_VOLATILE = {"event_id", "timestamp", "sdk", "modules", "server_name", "release"}


def _normalise(event: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in event.items() if k not in _VOLATILE}
    if isinstance(out.get("tags"), dict):
        # sentry_sdk sends tag values as given; tripwire sends the strings Sentry keeps.
        out["tags"] = {
            k: v if isinstance(v, str) else str(v) for k, v in out["tags"].items() if v is not None
        }
    contexts = dict(out.get("contexts", {}))
    trace = contexts.pop("trace", None)
    contexts.pop("os", None)  # tripwire adds the os context; sentry_sdk leaves it to the server
    contexts.pop("runtime", None)  # sentry_sdk adds it from an integration not loaded here
    assert trace is None or set(trace) >= {"trace_id", "span_id"}
    if contexts:
        out["contexts"] = contexts
    else:
        out.pop("contexts", None)
    crumbs = out.get("breadcrumbs", {}).get("values", [])
    for crumb in crumbs:
        crumb.pop("timestamp", None)
    for exc in out.get("exception", {}).get("values", []):
        for frame in exc.get("stacktrace", {}).get("frames", []):
            # Object reprs carry memory addresses.
            frame.get("vars", {}).pop("__loader__", None)
            frame.get("vars", {}).pop("sdk", None)  # the module object itself differs
    return out


def run_both(
    scenario: Callable[[Any], None], **options: Any
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Run `scenario(sdk)` against sentry_sdk and tripwire; return both normalised event lists."""
    theirs = SentryCapture(dsn=None)
    # Only sentry_sdk's integrations that patch nothing: its logging/threading/stdlib
    # patches would stay installed for the rest of the test session.
    from sentry_sdk.integrations.argv import ArgvIntegration
    from sentry_sdk.integrations.dedupe import DedupeIntegration
    from sentry_sdk.integrations.modules import ModulesIntegration

    sentry_sdk.init(
        transport=theirs,
        release="r1",
        default_integrations=False,
        integrations=[ArgvIntegration(), DedupeIntegration(), ModulesIntegration()],
        **options,
    )
    try:
        scenario(sentry_sdk)
    finally:
        reset_sentry()

    ours = MemoryTransport()
    tripwire.init(transport=ours, release="r1", **options)
    scenario(tripwire)
    return (
        [_normalise(e) for e in payloads(theirs.raw)],
        [_normalise(e) for e in ours.events],
    )


def _failing_call(depth: int) -> None:
    if depth == 0:
        local_text = "some text"
        local_list = [1, 2, {"k": None}]
        raise ValueError(f"failed with {local_text} and {local_list}")
    _failing_call(depth - 1)


def test_message_with_scope_data() -> None:
    def scenario(sdk: Any) -> None:
        sdk.set_tag("component", "billing")
        sdk.set_tags({"region": "eu", "n": 3})
        sdk.set_user({"id": "user_123", "email": "user@example.com"})
        sdk.set_extra(
            "request_payload", {"items": [{"product_id": "p1", "quantity": 2}], "total": 9.5}
        )
        sdk.set_context("app", {"name": "payments", "version": "2.1.4"})
        sdk.add_breadcrumb(
            message="Database query executed",
            category="db",
            level="info",
            data={"query": "SELECT 1", "duration_ms": 45},
        )
        sdk.add_breadcrumb(message="Configuration loaded", category="config", config_count=25)
        sdk.capture_message(
            "Payment processing failed",
            level="error",
            tags={"method": "card"},
            extras={"amount": 99.99},
            fingerprint=["payments", "failed"],
        )

    theirs, ours = run_both(scenario)
    assert ours == theirs


def test_exception_with_chain_and_locals() -> None:
    def scenario(sdk: Any) -> None:
        sdk.set_tag("layer", "service")
        try:
            try:
                _failing_call(3)
            except ValueError as e:
                raise RuntimeError("wrapped") from e
        except RuntimeError:
            sdk.capture_exception()

    theirs, ours = run_both(scenario)
    assert ours == theirs


def test_capture_event_dict_and_levels() -> None:
    def scenario(sdk: Any) -> None:
        sdk.get_isolation_scope().set_level("warning")
        sdk.capture_event(
            {
                "message": "Security audit event",
                "level": "info",
                "logger": "security.audit",
                "extra": {"action": "permission_denied"},
            }
        )
        with sdk.new_scope() as scope:
            scope.set_level("debug")
            scope.set_extra("inner", True)
            sdk.capture_message("nested")

    theirs, ours = run_both(scenario)
    assert ours == theirs


def test_scrubbing_defaults() -> None:
    def scenario(sdk: Any) -> None:
        sdk.set_extra("password", "hunter2")
        sdk.set_extra("nested", {"api_key": "k", "ok": 1})
        sdk.set_user({"id": 1, "ip_address": "10.0.0.1", "email": "a@b.c"})
        sdk.add_breadcrumb(message="login", data={"password": "pw", "user": "bob"})
        sdk.capture_message("login failed")

    theirs, ours = run_both(scenario)
    assert ours == theirs


def test_trimming_long_values_and_big_extras() -> None:
    def scenario(sdk: Any) -> None:
        sdk.set_extra("big_list", list(range(500)))
        sdk.set_extra("deep", {"a": {"b": {"c": {"d": {"e": {"f": {"g": 1}}}}}}})
        sdk.set_extra("long", "x" * 5000)
        sdk.capture_message("big")

    theirs, ours = run_both(scenario, max_value_length=1024)
    assert ours == theirs


def test_attach_stacktrace_message() -> None:
    def scenario(sdk: Any) -> None:
        sdk.capture_message("with stack")

    theirs, ours = run_both(scenario, attach_stacktrace=True)

    # sentry's own frames are removed from its stack; compare the user frames we both keep.
    def user_frames(events: list[dict[str, Any]]) -> list[tuple[str, str]]:
        frames = events[0]["threads"]["values"][0]["stacktrace"]["frames"]
        return [(f["function"], f.get("module")) for f in frames if "scenario" in f["function"]]

    assert user_frames(ours) == user_frames(theirs) != []


def test_before_send_and_ignore_errors() -> None:
    def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any] | None:
        if "drop me" in event.get("message", ""):
            return None
        event.setdefault("tags", {})["seen"] = "yes"
        return event

    def scenario(sdk: Any) -> None:
        sdk.capture_message("drop me")
        sdk.capture_message("keep me")
        try:
            raise KeyError("ignored")
        except KeyError:
            sdk.capture_exception()

    theirs, ours = run_both(scenario, before_send=before_send, ignore_errors=[KeyError])
    assert [e["message"] for e in ours] == ["keep me"]
    assert ours == theirs


@pytest.mark.skipif(sys.version_info < (3, 11), reason="ExceptionGroup needs 3.11")
def test_exception_group() -> None:
    def scenario(sdk: Any) -> None:
        try:
            raise ExceptionGroup("many", [ValueError("a"), TypeError("b")])  # noqa: F821
        except Exception:
            sdk.capture_exception()

    theirs, ours = run_both(scenario)
    assert ours == theirs
