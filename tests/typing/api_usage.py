"""Type-checked by `mypy --strict` in CI: the documented sentry_sdk usage, through tripwire.

Nothing here runs in the test suite; the point is that user code written against
the reference docs type-checks against tripwire's annotations.
"""

from __future__ import annotations

from typing import Any, Optional

import tripwire as sentry_sdk
from tripwire.scrubber import DEFAULT_DENYLIST, EventScrubber
from tripwire.tracing import Span, Transaction
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
    with sentry_sdk.configure_scope() as scope:  # type: ignore[union-attr]
        scope.set_tag("legacy", "1")
    sentry_sdk.Hub.current.capture_message("via hub")
    sentry_sdk.flush(timeout=2.0)
