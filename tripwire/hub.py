"""`Hub`: the sentry_sdk 1.x facade, mapped onto the 2.x scopes.

A Hub bound to a client/scope activates them for a `with` block; methods delegate
to the current scopes. `Hub.current` and `Hub.main` exist for 1.x code.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import AbstractContextManager as ContextManager
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, Any, Callable, TypeVar, overload

from tripwire._log import logger
from tripwire.api import _ScopeCallbackResult
from tripwire.consts import INSTRUMENTER
from tripwire.scope._current import (
    _PushedScope,
    _ScopeManager,
    get_client,
    get_current_scope,
    get_global_scope,
    get_isolation_scope,
)
from tripwire.scope._scope import Scope

if TYPE_CHECKING:
    from tripwire._client_base import BaseClient
    from tripwire.types import Breadcrumb, BreadcrumbHint, Event, ExceptionLike, Hint

T = TypeVar("T")


class SentryHubDeprecationWarning(DeprecationWarning):
    """Emitted where code uses `Hub` (deprecated since sentry_sdk 2.0)."""

    _MESSAGE = (
        "Hub is deprecated (sentry_sdk 2.x): use the scope API instead "
        "(get_current_scope(), get_isolation_scope(), new_scope(), isolation_scope())"
    )

    def __init__(self, *_: object) -> None:
        super().__init__(self._MESSAGE)


# The hub entered with `with hub:` in this context (Hub.current).
_local: ContextVar[Hub | None] = ContextVar("tripwire_current_hub", default=None)
# What `with hub:` entered in this context (a thread's, a task's), innermost last: the
# main hub is one object that every thread and task may enter (it is Hub.current until
# another is entered), so each context exits only what it entered itself.
_entered: ContextVar[tuple[tuple[Hub, Token[Hub | None], _ScopeManager], ...]] = ContextVar(
    "tripwire_entered_hubs", default=()
)


class HubMeta(type):
    """Gives `Hub.current` and `Hub.main` (each warns once per call site)."""

    @property
    def current(cls) -> Hub:
        """The hub of this context: the one entered last, else the main hub.

        As sentry_sdk 2.x: the main hub holds no scopes of its own, so entering it
        activates those in force then (a clone made here would hold forks of the
        scopes as they were when first asked for, and miss what was set since).
        """
        warnings.warn(SentryHubDeprecationWarning(), stacklevel=2)
        hub = _local.get()
        return GLOBAL_HUB if hub is None else hub

    @property
    def main(cls) -> Hub:
        """The process's main hub (`GLOBAL_HUB`)."""
        warnings.warn(SentryHubDeprecationWarning(), stacklevel=2)
        return GLOBAL_HUB


_HubMeta = HubMeta


class Hub(metaclass=HubMeta):
    """The sentry_sdk 1.x facade over the 2.x scopes; `with hub:` activates its scopes.

    As in sentry_sdk 2.x: `hub.scope` is the isolation scope and `hub.client` the
    active client; `Hub(client)` binds `client` to the global scope; `Hub(hub)` (the
    1.x way to hand context to a thread) forks the isolation and current scopes.
    Constructing one, or reading `Hub.current` / `Hub.main`, emits a
    `SentryHubDeprecationWarning`.
    """

    if TYPE_CHECKING:
        current: Hub
        main: Hub

    def __init__(self, client_or_hub: Hub | BaseClient | None = None, scope: Any = None) -> None:
        warnings.warn(SentryHubDeprecationWarning(), stacklevel=2)
        self._setup(client_or_hub, scope)

    def _setup(self, client_or_hub: Hub | BaseClient | None, scope: Any) -> None:
        current: Scope | None = None
        if isinstance(client_or_hub, Hub):
            if scope is None:  # a clone: forks of the scopes in force now
                scope = get_isolation_scope().fork()
                current = get_current_scope().fork()
        else:
            get_global_scope().set_client(client_or_hub)
        # The scopes `with hub:` activates (None, for the main hub: those in force then).
        self._scope: Scope | None = scope if isinstance(scope, Scope) else get_isolation_scope()
        self._current_scope: Scope | None = current or get_current_scope()
        self._stack: list[ContextManager[Scope]] = []
        self._last_event_id: str | None = None

    @property
    def client(self) -> BaseClient | None:
        """The active client, or None if it records nothing."""
        client = get_client()
        return client if client.is_active() else None

    @property
    def scope(self) -> Scope:
        """The isolation scope (sentry_sdk 2.x: not a scope of the hub's own)."""
        return get_isolation_scope()

    def __enter__(self) -> Hub:
        current = self._current_scope or get_current_scope()
        isolation = self._scope or get_isolation_scope()
        manager = _ScopeManager(current, isolation, isolation)
        manager.__enter__()
        _entered.set((*_entered.get(), (self, _local.set(self), manager)))
        return self

    def __exit__(self, *exc: object) -> None:
        stack = _entered.get()
        for index in range(len(stack) - 1, -1, -1):
            if stack[index][0] is self:
                break
        else:
            return  # not entered in this context
        _, token, manager = stack[index]
        _entered.set(stack[:index] + stack[index + 1 :])
        manager.__exit__(*exc)
        try:
            _local.reset(token)
        except ValueError:  # exited in another context than entered
            _local.set(None if token.old_value is Token.MISSING else token.old_value)

    def run(self, callback: Callable[[], T]) -> T:
        """Run `callback` with this hub active."""
        with self:
            return callback()

    def bind_client(self, new: BaseClient | None) -> None:
        """Bind `new` to the global scope (None unbinds)."""
        get_global_scope().set_client(new)

    def get_integration(self, name_or_class: Any) -> Any:
        """The active client's integration, by identifier or class."""
        return get_client().get_integration(name_or_class)

    def capture_event(
        self, event: Event, hint: Hint | None = None, scope: Any = None, **scope_kwargs: Any
    ) -> str | None:
        """Capture an event in the current scope."""
        event_id = get_current_scope().capture_event(event, hint, scope=scope, **scope_kwargs)
        if event_id is not None and event.get("type") != "transaction":
            self._last_event_id = event_id
        return event_id

    def capture_message(
        self, message: str, level: str | None = None, scope: Any = None, **scope_kwargs: Any
    ) -> str | None:
        """Capture a message in the current scope."""
        event_id = get_current_scope().capture_message(
            message, level=level, scope=scope, **scope_kwargs
        )
        if event_id is not None:
            self._last_event_id = event_id
        return event_id

    def capture_exception(
        self, error: ExceptionLike | None = None, scope: Any = None, **scope_kwargs: Any
    ) -> str | None:
        """Capture an exception in the current scope."""
        event_id = get_current_scope().capture_exception(error, scope=scope, **scope_kwargs)
        if event_id is not None:
            self._last_event_id = event_id
        return event_id

    def last_event_id(self) -> str | None:
        """Deprecated: the last error event id captured through this hub."""
        logger.warning(
            "Hub.last_event_id() is deprecated: the capture functions return the event id"
        )
        return self._last_event_id

    def add_breadcrumb(
        self, crumb: Breadcrumb | None = None, hint: BreadcrumbHint | None = None, **kwargs: Any
    ) -> None:
        """Add a breadcrumb to the isolation scope."""
        get_isolation_scope().add_breadcrumb(crumb, hint, **kwargs)

    def start_span(self, instrumenter: str = "sentry", **kwargs: Any) -> Any:
        """Start a span under the current scope's span."""
        return get_current_scope().start_span(instrumenter=instrumenter, **kwargs)

    def start_transaction(
        self,
        transaction: Any = None,
        instrumenter: str = "sentry",
        custom_sampling_context: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Start a transaction in the current scope."""
        return get_current_scope().start_transaction(
            transaction, instrumenter, custom_sampling_context, **kwargs
        )

    def continue_trace(
        self,
        environ_or_headers: dict[str, Any],
        op: str | None = None,
        name: str | None = None,
        source: str | None = None,
    ) -> Any:
        """Continue an incoming trace in the isolation scope."""
        return get_isolation_scope().continue_trace(environ_or_headers, op, name, source)

    @overload
    def push_scope(self, callback: None = None) -> ContextManager[Scope]: ...

    @overload
    def push_scope(self, callback: Callable[[Scope], None]) -> None: ...

    def push_scope(
        self, callback: Callable[[Scope], None] | None = None, continue_trace: bool = True
    ) -> ContextManager[Scope] | None:
        """Fork the isolation scope for a block (callback or `with` form)."""
        if callback is not None:
            with _PushedScope() as scope:
                callback(scope)
            return None
        manager = _PushedScope()
        self._stack.append(manager)
        return manager

    def pop_scope_unsafe(self) -> tuple[BaseClient | None, Scope]:
        """Pop a scope pushed with `push_scope()` outside a `with` block."""
        if self._stack:
            self._stack.pop().__exit__(None, None, None)
        return self.client, get_isolation_scope()

    @overload
    def configure_scope(self, callback: None = None) -> ContextManager[Scope]: ...

    @overload
    def configure_scope(self, callback: Callable[[Scope], None]) -> None: ...

    def configure_scope(
        self, callback: Callable[[Scope], None] | None = None, continue_trace: bool = True
    ) -> ContextManager[Scope] | None:
        """The isolation scope, to a callback or as a `with` block."""
        scope = get_isolation_scope()
        if continue_trace:
            scope.generate_propagation_context()
        if callback is not None:
            callback(scope)
            return None
        return _ScopeCallbackResult(scope)

    def start_session(self, session_mode: str = "application") -> None:
        """Start a session on the isolation scope."""
        get_isolation_scope().start_session(session_mode=session_mode)

    def end_session(self) -> None:
        """End the isolation scope's session."""
        get_isolation_scope().end_session()

    def stop_auto_session_tracking(self) -> None:
        """Stop automatic session tracking."""
        get_isolation_scope().stop_auto_session_tracking()

    def resume_auto_session_tracking(self) -> None:
        """Resume automatic session tracking."""
        get_isolation_scope().resume_auto_session_tracking()

    def flush(
        self, timeout: float | None = None, callback: Callable[[int, float], None] | None = None
    ) -> None:
        """Flush the active client."""
        get_client().flush(timeout=timeout, callback=callback)

    def get_traceparent(self) -> str | None:
        """The sentry-trace header value (current scope, else isolation scope)."""
        traceparent = get_current_scope().get_traceparent()
        if traceparent is None:
            traceparent = get_isolation_scope().get_traceparent()
        return traceparent

    def get_baggage(self) -> str | None:
        """The baggage header value (current scope, else isolation scope)."""
        baggage = get_current_scope().get_baggage()
        if baggage is None:
            baggage = get_isolation_scope().get_baggage()
        if baggage is None:
            return None
        return baggage.serialize() if hasattr(baggage, "serialize") else str(baggage)

    def iter_trace_propagation_headers(self, span: Any = None) -> Iterator[tuple[str, str]]:
        """Headers for outgoing requests."""
        return get_current_scope().iter_trace_propagation_headers(span=span)

    def trace_propagation_meta(self, span: Any = None) -> str:
        """HTML meta tags with the trace headers."""
        return get_current_scope().trace_propagation_meta(span=span)


def _make_hub(client_or_hub: Hub | BaseClient | None, scope: Any = None) -> Hub:
    # A Hub built by the SDK itself: no deprecation warning.
    hub = Hub.__new__(Hub)
    hub._setup(client_or_hub, scope)
    return hub


def _make_main_hub() -> Hub:
    # Entering the main hub activates the scopes in force then: it holds none of its
    # own, so it stays valid across `tripwire.testing.reset()`.
    hub = Hub.__new__(Hub)
    hub._scope = hub._current_scope = None
    hub._stack = []
    hub._last_event_id = None
    return hub


GLOBAL_HUB: Hub = _make_main_hub()


def __getattr__(name: str) -> Any:
    # Names sentry_sdk.hub re-exports, loaded on first access.
    if name == "Client":
        from tripwire.client import Client  # lazy: see api.init

        return Client
    if name == "INSTRUMENTER":
        return INSTRUMENTER
    if name in ("Span", "Transaction", "NoOpSpan"):
        from tripwire.tracing import _span, _transaction  # lazy: see api._load_tracing

        return getattr(_transaction if name == "Transaction" else _span, name)
    raise AttributeError(f"module 'tripwire.hub' has no attribute {name!r}")


__all__ = ["GLOBAL_HUB", "Hub", "HubMeta", "SentryHubDeprecationWarning"]
