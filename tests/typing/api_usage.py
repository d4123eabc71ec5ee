"""Type-checked by `mypy --strict` in CI: the documented sentry_sdk usage, through tripwire.

Nothing here runs in the test suite; the point is that user code written against
the reference docs type-checks against tripwire's annotations.
"""

from __future__ import annotations

from typing import Any, Optional

import tripwire as sentry_sdk
from tripwire.scrubber import DEFAULT_DENYLIST, EventScrubber
from tripwire.tracing import NoOpSpan, Span, Transaction
from tripwire.transport import Transport
from tripwire.types import Event, Hint


def before_send(event: Event, hint: Hint) -> Optional[Event]:
    if "exc_info" in hint:
        event.setdefault("tags", {})["had_exception"] = "yes"
    return event


class MyTransport(Transport):
    def capture_envelope(self, envelope: Any) -> None:
        pass


def configure() -> None:
    sentry_sdk.init(
        dsn="https://key@o1.ingest.sentry.io/1",
        release="1.2.3",
        environment="staging",
        sample_rate=1.0,
        traces_sample_rate=0.2,
        before_send=before_send,
        event_scrubber=EventScrubber(denylist=[*DEFAULT_DENYLIST, "card"], recursive=True),
        transport=MyTransport(),
    )


def enrich() -> None:
    sentry_sdk.set_user({"id": "user_123", "email": "user@example.com"})
    sentry_sdk.set_tag("component", "billing")
    sentry_sdk.set_tags({"region": "eu"})
    sentry_sdk.set_extra("payload", {"items": [1, 2]})
    sentry_sdk.set_context("app", {"version": "2.1.4"})
    sentry_sdk.add_breadcrumb(message="Database query executed", category="db", level="info")
    scope = sentry_sdk.get_isolation_scope()
    scope.set_tag("request_id", "req_456")
    with sentry_sdk.new_scope() as current:
        current.set_extra("operation", "process_payment")


def capture() -> list[Optional[str]]:
    ids: list[Optional[str]] = []
    try:
        1 / 0
    except ZeroDivisionError as exc:
        ids.append(sentry_sdk.capture_exception(exc, tags={"a": "b"}))
    ids.append(sentry_sdk.capture_message("Payment failed", level="error"))
    ids.append(sentry_sdk.capture_event({"message": "custom"}, hint={"x": 1}))
    return ids


def trace() -> None:
    with sentry_sdk.start_transaction(op="task", name="job") as transaction:
        assert isinstance(transaction, (Transaction, Span))
        with sentry_sdk.start_span(op="db", name="SELECT 1"):
            pass
    headers = dict(sentry_sdk.get_current_scope().iter_trace_propagation_headers())
    assert isinstance(headers, dict)


def legacy() -> None:
    with sentry_sdk.configure_scope() as scope:
        scope.set_tag("legacy", "1")
    sentry_sdk.Hub.current.capture_message("via hub")
    sentry_sdk.flush(timeout=2.0)


# -- tracing: precise return types (each `return` fails `warn_return_any` if it is Any) --


def typed_start_transaction() -> Transaction | NoOpSpan:
    with sentry_sdk.start_transaction(op="task", name="job") as t:
        t.set_tag("plan", "pro")
        t.set_data("cart.items", 3)
        t.set_status("ok")
        t.no_such_method()  # type: ignore[union-attr]
    return sentry_sdk.start_transaction(name="next")


def typed_start_span() -> Span:
    with sentry_sdk.start_span(op="db", name="SELECT 1") as span:
        span.set_data("db.system", "sqlite")
        child: Span = span.start_child(op="db.fetch", name="fetch")
        child.finish()
    return sentry_sdk.start_span(op="task")


def typed_continue_trace(headers: dict[str, str]) -> Transaction:
    transaction = sentry_sdk.continue_trace(headers, op="http.server", name="GET /")
    with sentry_sdk.start_transaction(transaction) as started:
        started.set_tag("continued", "yes")
    return transaction


def typed_scope_tracing() -> Span | None:
    scope = sentry_sdk.get_current_scope()
    with scope.start_transaction(name="scoped") as tx:
        tx.set_tag("k", "v")
        span: Span = scope.start_span(op="x")
        span.finish()
    return sentry_sdk.get_current_span()


# -- 1.x scope forms: the `with` form yields a Scope, the callback form returns None --


def legacy_scope_forms() -> None:
    with sentry_sdk.push_scope() as pushed:
        pushed.set_tag("pushed", "1")
    with sentry_sdk.configure_scope() as configured:
        configured.set_extra("configured", True)
    sentry_sdk.push_scope(lambda scope: scope.set_tag("cb", "1"))
    nothing: None = sentry_sdk.configure_scope(lambda scope: scope.set_level("warning"))
    assert nothing is None
    hub = sentry_sdk.Hub.current
    with hub.push_scope() as hub_scope, hub.configure_scope() as hub_configured:
        hub_scope.set_tag("hub", "1")
        hub_configured.set_tag("hub_configured", "1")
    client: sentry_sdk.Client | None = None
    assert sentry_sdk.Scope().client.is_active() is False or client is None


@sentry_sdk.monitor(monitor_slug="nightly-report")
def nightly_report() -> int:
    """`@sentry_sdk.monitor(...)` is the crons decorator to a type checker too."""
    return 1


def report_once() -> int:
    return nightly_report() + 1
