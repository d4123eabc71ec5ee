"""Release health: starting and ending sessions, error updates, batched delivery.

Application-mode sessions are sent as `session` items when they end; request-mode
sessions (one per web request) are counted into per-minute `sessions` aggregates,
as sentry_sdk does. Both go through the client's batcher for "session", drained by
`Client.flush()` and `close()`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tripwire._batcher import Batcher, batcher_for
from tripwire._clock import format_timestamp
from tripwire._log import logger
from tripwire.outcomes import DataCategory
from tripwire.session import Session

if TYPE_CHECKING:
    from tripwire.client import BaseClient
    from tripwire.envelope import Envelope
    from tripwire.scope._scope import Scope
    from tripwire.types import Event


def start_session(scope: Scope, session_mode: str = "application", **_: Any) -> None:
    """Start a session on `scope`, ending the one already there."""
    client = scope.get_client()
    if not client.is_active():
        return
    end_session(scope)
    opts = client.options
    user = _user_of(scope)
    scope._w().session = Session(
        release=opts.get("release"),
        environment=opts.get("environment"),
        user=user,
        session_mode=session_mode,
    )


def end_session(scope: Scope) -> None:
    """End `scope`'s session (status "exited" unless it crashed) and queue it for sending."""
    session = scope._d.session
    if session is None:
        return
    scope._w().session = None
    session.close()
    scope.get_client().capture_session(session)


class auto_session_tracking:
    """`with auto_session_tracking(scope, session_mode="request"):` one session for the block."""

    __slots__ = ("_mode", "_scope", "_started")

    def __init__(self, scope: Scope, session_mode: str = "request") -> None:
        self._scope = scope
        self._mode = session_mode
        self._started = False

    def __enter__(self) -> None:
        client = self._scope.get_client()
        if (
            client.options.get("auto_session_tracking")
            and self._scope._d.force_auto_session_tracking is not False
        ):
            start_session(self._scope, self._mode)
            self._started = True

    def __exit__(self, *exc: object) -> None:
        if self._started:
            end_session(self._scope)


def update_session_from_event(session: Session, event: Event) -> None:
    """Count an error into the session: "crashed" for unhandled exceptions, else "errored"."""
    if session.status != "ok":
        return
    crashed = False
    errored = False
    exception = event.get("exception")
    values = exception.get("values") if isinstance(exception, dict) else None
    if values:
        errored = True
        for value in values:
            mechanism = value.get("mechanism") if isinstance(value, dict) else None
            if isinstance(mechanism, dict) and mechanism.get("handled") is False:
                crashed = True
                break
    elif event.get("level") in ("error", "fatal"):
        errored = True
    if not errored:
        return
    user = event.get("user")
    session.update(
        status="crashed" if crashed else None,
        user=user if isinstance(user, dict) else None,
        user_agent=_user_agent(event),
        errors=session.errors + 1,
    )


def queue_session(client: BaseClient, session: Session) -> None:
    """Hand a finished (or updated) session to the client's session batcher."""
    if not session.release:
        logger.info("session without a release: not sent (release health needs one)")
        return
    _batcher(client).add(session)


def _batcher(client: BaseClient) -> Batcher[Session]:
    return batcher_for(
        client,
        "session",
        lambda c: Batcher(c, _build_envelope, DataCategory.SESSION, name="sessions"),
    )


def _build_envelope(sessions: list[Session]) -> Envelope | None:
    from tripwire.envelope import Envelope, Item, PayloadRef

    envelope = Envelope(headers={})
    aggregates: dict[tuple[Any, ...], dict[str, dict[str, Any]]] = {}
    for session in sessions:
        if session.session_mode == "request":
            attrs = session.get_json_attrs(with_user_info=False)
            key = tuple(sorted(attrs.items()))
            bucket = aggregates.setdefault(key, {})
            started = format_timestamp(session.truncated_started)
            counts = bucket.setdefault(started, {"started": started})
            status = {"ok": "exited", "exited": "exited"}.get(session.status, session.status)
            if status == "exited" and session.errors:
                status = "errored"
            counts[status] = counts.get(status, 0) + 1
        else:
            envelope.add_session(session)
    for key, buckets in aggregates.items():
        payload = {"attrs": dict(key), "aggregates": list(buckets.values())}
        envelope.add_item(Item(payload=PayloadRef(json=payload), type="sessions"))
    return envelope if envelope.items else None


def _user_of(scope: Scope) -> dict[str, Any] | None:
    from tripwire.scope import _current

    for layer in (scope, _current.get_isolation_scope(), _current.get_global_scope()):
        user = layer._d.user
        if user is not None:
            return user
    return None


def _user_agent(event: Event) -> str | None:
    request = event.get("request")
    headers = request.get("headers") if isinstance(request, dict) else None
    if isinstance(headers, dict):
        for name, value in headers.items():
            if str(name).lower() == "user-agent":
                return str(value)
    return None
