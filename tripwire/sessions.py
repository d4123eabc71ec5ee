"""Release health: starting and ending sessions, error updates, batched delivery.

Application-mode sessions are sent as `session` items when they end; request-mode
sessions (one per web request) are counted into per-minute `sessions` aggregates,
as sentry_sdk does. Both go through the client's batcher for "session", drained by
`Client.flush()` and `close()`.
"""

from __future__ import annotations

import os
import sys
import threading
import warnings
import weakref
from typing import TYPE_CHECKING, Any, Callable

from tripwire._batcher import Batcher, batcher_for
from tripwire._clock import format_timestamp
from tripwire._late import hooks
from tripwire._log import logger
from tripwire._threads import start_own
from tripwire.envelope import Envelope
from tripwire.outcomes import DataCategory
from tripwire.scope import _current
from tripwire.session import Session

if TYPE_CHECKING:
    from tripwire._client_base import BaseClient
    from tripwire.scope._scope import Scope
    from tripwire.types import EventDict


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


def _tracking_enabled(scope: Scope) -> bool:
    # The scope's override (stop/resume_auto_session_tracking), else the option.
    forced = scope._d.force_auto_session_tracking
    if forced is not None:
        return bool(forced)
    return bool(scope.get_client().options.get("auto_session_tracking", False))


class track_session:
    """`with track_session(scope, session_mode="request"):` one session for the block.

    Does nothing when automatic session tracking is off for `scope` (the
    `auto_session_tracking` option, or `scope.stop_auto_session_tracking()`).
    """

    __slots__ = ("_mode", "_scope", "_started")

    def __init__(self, scope: Scope, session_mode: str = "application") -> None:
        self._scope = scope
        self._mode = session_mode
        self._started = False

    def __enter__(self) -> None:
        if _tracking_enabled(self._scope):
            self._scope.start_session(session_mode=self._mode)
            self._started = True

    def __exit__(self, *exc: object) -> None:
        if self._started:
            self._scope.end_session()


def auto_session_tracking(scope: Scope, session_mode: str = "request") -> track_session:
    """`track_session` with request mode by default (tripwire's older name)."""
    return track_session(scope, session_mode)


def auto_session_tracking_scope(scope: Scope, session_mode: str = "application") -> track_session:
    """Deprecated alias of `track_session` (as in sentry_sdk 2.x)."""
    warnings.warn(
        "auto_session_tracking_scope() is deprecated: use track_session()",
        DeprecationWarning,
        stacklevel=2,
    )
    return track_session(scope, session_mode)


def is_auto_session_tracking_enabled_scope(scope: Scope) -> bool:
    """Deprecated: whether sessions are tracked automatically for `scope`."""
    warnings.warn(
        "is_auto_session_tracking_enabled_scope() is deprecated, with no replacement",
        DeprecationWarning,
        stacklevel=2,
    )
    return _tracking_enabled(scope)


def is_auto_session_tracking_enabled(hub: Any = None) -> bool:
    """Deprecated: whether sessions are tracked automatically (for `hub`'s scope)."""
    warnings.warn(
        "is_auto_session_tracking_enabled() is deprecated, with no replacement",
        DeprecationWarning,
        stacklevel=2,
    )
    # A Hub's scope is the isolation scope (sentry_sdk 2.x), as is Hub.current's.
    return _tracking_enabled(_current.get_isolation_scope())


def update_session_from_event(session: Session, event: EventDict) -> None:
    """Count an error into the session: "crashed" for unhandled exceptions, else "errored".

    Only events with an exception count, as in sentry_sdk: a message, even at level
    "error", leaves the session as it is (Sentry's session protocol says so too).
    """
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
        lambda c: Batcher(c, _builder_for(c), DataCategory.SESSION, name="sessions"),
    )


# Items per envelope (sessions and aggregates): a longer batch is split.
MAX_ENVELOPE_ITEMS = 100


def make_aggregate_envelope(aggregate_states: Any, attrs: Any) -> dict[str, Any]:
    """The `sessions` item payload for one set of attrs and its per-minute states."""
    return {"attrs": dict(attrs), "aggregates": list(aggregate_states.values())}


def _aggregate(aggregates: dict[Any, dict[Any, dict[str, Any]]], session: Session) -> None:
    # Request-mode sessions: counted per (attrs, minute) as crashed / abnormal /
    # errored / exited.
    key = tuple(sorted(session.get_json_attrs(with_user_info=False).items()))
    minute = session.truncated_started
    state = aggregates.setdefault(key, {}).setdefault(minute, {})
    if "started" not in state:
        state["started"] = format_timestamp(minute)
    if session.status == "crashed":
        outcome = "crashed"
    elif session.status == "abnormal":
        outcome = "abnormal"
    elif session.errors > 0:
        outcome = "errored"
    else:
        outcome = "exited"
    state[outcome] = state.get(outcome, 0) + 1


def _envelopes(
    session_payloads: list[dict[str, Any]], aggregates: dict[Any, dict[Any, dict[str, Any]]]
) -> list[Envelope]:
    envelopes = [Envelope(headers={})]
    for payload in session_payloads:
        if len(envelopes[-1].items) == MAX_ENVELOPE_ITEMS:
            envelopes.append(Envelope(headers={}))
        envelopes[-1].add_session(payload)
    for attrs, states in aggregates.items():
        if len(envelopes[-1].items) == MAX_ENVELOPE_ITEMS:
            envelopes.append(Envelope(headers={}))
        envelopes[-1].add_sessions(make_aggregate_envelope(states, attrs))
    return [envelope for envelope in envelopes if envelope.items]


def _build(sessions: list[Session]) -> list[Envelope]:
    aggregates: dict[Any, dict[Any, dict[str, Any]]] = {}
    payloads = []
    for session in sessions:
        if session.session_mode == "request":
            _aggregate(aggregates, session)
        else:
            payloads.append(session.to_json())
    return _envelopes(payloads, aggregates)


def _builder_for(client: BaseClient) -> Callable[[list[Session]], Envelope | None]:
    ref = weakref.ref(client)

    def build(sessions: list[Session]) -> Envelope | None:
        # The batcher sends one envelope per batch: the others of a long batch go
        # straight to the transport first, in order.
        envelopes = _build(sessions)
        if not envelopes:
            return None
        owner = ref()
        transport = owner.transport if owner is not None else None
        if transport is not None:
            for envelope in envelopes[:-1]:
                transport.capture_envelope(envelope)
        return envelopes[-1]

    return build


class SessionFlusher:
    """Collects session updates and hands them to `capture_func` as envelopes.

    sentry_sdk's stand-alone flusher: application sessions are sent as they are,
    request-mode sessions are aggregated per minute. `flush()` sends now; a daemon
    thread (started on the first session) flushes every `flush_interval` seconds
    until `kill()`. tripwire's client uses its own batcher for the same work.
    """

    def __init__(self, capture_func: Callable[[Envelope], None], flush_interval: int = 60) -> None:
        self.capture_func = capture_func
        self.flush_interval = flush_interval
        self.pending_sessions: list[Any] = []
        self.pending_aggregates: dict[Any, Any] = {}
        # Re-entrant: a signal handler or a finalizer (`__del__`) runs on the thread it
        # interrupts, also inside these blocks, and it may end a session. A nested
        # request-mode count landing inside another's increment may be lost.
        self._lock = threading.RLock()
        self._thread: threading.Thread | None = None
        self._thread_pid: int | None = None
        self._shutdown = threading.Event()

    def add_session(self, session: Session) -> None:
        """Queue a session update (aggregated when in request mode)."""
        with self._lock:
            if session.session_mode == "request":
                _aggregate(self.pending_aggregates, session)
            else:
                self.pending_sessions.append(session.to_json())
        self._ensure_running()

    def add_aggregate_session(self, session: Session) -> None:
        """Count a request-mode session into the aggregates."""
        with self._lock:
            _aggregate(self.pending_aggregates, session)

    def flush(self) -> None:
        """Send everything pending now."""
        with self._lock:
            payloads, self.pending_sessions = self.pending_sessions, []
            aggregates, self.pending_aggregates = self.pending_aggregates, {}
        for envelope in _envelopes(payloads, aggregates):
            self.capture_func(envelope)

    def kill(self) -> None:
        """Stop the flusher thread (pending sessions stay until `flush()`)."""
        self._shutdown.set()

    def _ensure_running(self) -> None:
        pid = os.getpid()
        if self._thread is not None and self._thread_pid == pid:
            return
        # Made and started outside the lock: both run Python code, where a nested
        # `add_session` (a signal handler's) would find no thread yet and start another.
        thread = threading.Thread(target=self._run, name="tripwire.sessions", daemon=True)
        with self._lock:
            if self._thread is not None and self._thread_pid == pid:
                return
            self._thread = thread
            self._thread_pid = pid
        try:
            start_own(thread)
        except RuntimeError:  # interpreter shutting down: no new threads
            self._shutdown.set()
            self._thread = None

    def _run(self) -> None:
        while not self._shutdown.wait(self.flush_interval):
            self.flush()
        self.flush()


def _user_of(scope: Scope) -> dict[str, Any] | None:
    for layer in (scope, _current.get_isolation_scope(), _current.get_global_scope()):
        user = layer._d.user
        if user is not None:
            return user
    return None


def _user_agent(event: EventDict) -> str | None:
    request = event.get("request")
    headers = request.get("headers") if isinstance(request, dict) else None
    if isinstance(headers, dict):
        for name, value in headers.items():
            if str(name).lower() == "user-agent":
                return str(value)
    return None


# Scopes start and end sessions through this hook (`Scope.start_session`).
hooks.sessions = sys.modules[__name__]
