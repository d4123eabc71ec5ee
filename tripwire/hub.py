"""`Hub`: the sentry_sdk 1.x facade, mapped onto the 2.x scopes.

A Hub bound to a client/scope activates them for a `with` block; methods delegate
to the current scopes. `Hub.current` and `Hub.main` exist for 1.x code.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager as ContextManager
from typing import TYPE_CHECKING, Any, Callable, TypeVar

from tripwire import api
from tripwire.scope._current import (
    _ScopeManager,
    get_client,
    get_current_scope,
    get_global_scope,
    get_isolation_scope,
    new_scope,
)
from tripwire.scope._scope import Scope

if TYPE_CHECKING:
    from tripwire.client import BaseClient
    from tripwire.types import Breadcrumb, BreadcrumbHint, Event, ExceptionLike, Hint

T = TypeVar("T")


class _HubMeta(type):
    @property
    def current(cls) -> Hub:
        """The hub of the current context."""
        return Hub(None, get_current_scope())

    @property
    def main(cls) -> Hub:
        """The hub of the process (global scope)."""
        return Hub(None, get_global_scope())


class Hub(metaclass=_HubMeta):
    """Wraps a client and a scope; `with hub:` makes them current."""

    def __init__(self, client_or_hub: Hub | BaseClient | None = None, scope: Any = None) -> None:
        if isinstance(client_or_hub, Hub):
            client = client_or_hub.client
            scope = scope if scope is not None else client_or_hub.scope.fork()
        else:
            client = client_or_hub
        self._scope: Scope = scope if isinstance(scope, Scope) else get_current_scope().fork()
        if client is not None:
            self._scope.set_client(client)
        self._stack: list[ContextManager[Scope]] = []
        self._manager: _ScopeManager | None = None
        self._last_event_id: str | None = None

    @property
    def client(self) -> BaseClient | None:
        """The client of this hub."""
        client = self._scope.client or get_client()
        return client if client.is_active() else None

    @property
    def scope(self) -> Scope:
        """The scope of this hub."""
        return self._scope

    def __enter__(self) -> Hub:
        self._manager = _ScopeManager(self._scope, None, self._scope)
        self._manager.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._manager is not None:
            self._manager.__exit__(*exc)
            self._manager = None

    def run(self, callback: Callable[[], T]) -> T:
        """Run `callback` with this hub active."""
        with self:
            return callback()

    def bind_client(self, new: BaseClient | None) -> None:
        """Bind a new client (None unbinds)."""
        self._scope.set_client(new)
        if new is not None:
            get_global_scope().set_client(new)

    def get_integration(self, name_or_class: Any) -> Any:
        """The integration of the hub's client, by identifier or class."""
        client = self.client
        return client.get_integration(name_or_class) if client is not None else None

    def capture_event(
        self, event: Event, hint: Hint | None = None, scope: Any = None, **scope_kwargs: Any
    ) -> str | None:
        """Capture an event."""
        with self:
            event_id = api.capture_event(event, hint, scope=scope, **scope_kwargs)
        self._last_event_id = event_id or self._last_event_id
        return event_id

    def capture_message(
        self, message: str, level: str | None = None, scope: Any = None, **scope_kwargs: Any
    ) -> str | None:
        """Capture a message."""
        with self:
            event_id = api.capture_message(message, level, scope=scope, **scope_kwargs)
        self._last_event_id = event_id or self._last_event_id
        return event_id

    def capture_exception(
        self, error: ExceptionLike | None = None, scope: Any = None, **scope_kwargs: Any
    ) -> str | None:
        """Capture an exception."""
        with self:
            event_id = api.capture_exception(error, scope=scope, **scope_kwargs)
        self._last_event_id = event_id or self._last_event_id
        return event_id

    def last_event_id(self) -> str | None:
        """The last event id captured through this hub (deprecated)."""
        return self._last_event_id or get_isolation_scope()._last_event_id

    def add_breadcrumb(
        self, crumb: Breadcrumb | None = None, hint: BreadcrumbHint | None = None, **kwargs: Any
    ) -> None:
        """Add a breadcrumb."""
        with self:
            api.add_breadcrumb(crumb, hint, **kwargs)

    def start_span(self, instrumenter: str = "sentry", **kwargs: Any) -> Any:
        """Start a span."""
        with self:
            return api.start_span(**kwargs)

    def start_transaction(
        self,
        transaction: Any = None,
        instrumenter: str = "sentry",
        custom_sampling_context: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> Any:
        """Start a transaction."""
        with self:
            return api.start_transaction(
                transaction, instrumenter, custom_sampling_context, **kwargs
            )

    def continue_trace(
        self,
        environ_or_headers: dict[str, Any],
        op: str | None = None,
        name: str | None = None,
        source: str | None = None,
    ) -> Any:
        """Continue an incoming trace."""
        with self:
            return api.continue_trace(environ_or_headers, op, name, source)

    def push_scope(
        self, callback: Callable[[Scope], None] | None = None, continue_trace: bool = True
    ) -> ContextManager[Scope] | None:
        """Push a scope (callback or `with` form)."""
        if callback is not None:
            with self, new_scope() as scope:
                callback(scope)
            return None
        manager = new_scope()
        self._stack.append(manager)
        return manager

    def pop_scope_unsafe(self) -> tuple[BaseClient | None, Scope]:
        """Pop a scope pushed with `push_scope()` without a `with` block."""
        if self._stack:
            self._stack.pop().__exit__(None, None, None)
        return self.client, get_current_scope()

    def configure_scope(
        self, callback: Callable[[Scope], None] | None = None, continue_trace: bool = True
    ) -> ContextManager[Scope] | None:
        """Configure the scope (callback or `with` form)."""
        return api.configure_scope(callback)

    def start_session(self, session_mode: str = "application") -> None:
        """Start a session."""
        api.start_session(session_mode)

    def end_session(self) -> None:
        """End the session."""
        api.end_session()

    def stop_auto_session_tracking(self) -> None:
        """Stop automatic session tracking."""
        get_isolation_scope().stop_auto_session_tracking()

    def resume_auto_session_tracking(self) -> None:
        """Resume automatic session tracking."""
        get_isolation_scope().resume_auto_session_tracking()

    def flush(
        self, timeout: float | None = None, callback: Callable[[int, float], None] | None = None
    ) -> None:
        """Flush the client."""
        api.flush(timeout, callback)

    def get_traceparent(self) -> str | None:
        """The sentry-trace header value."""
        with self:
            return api.get_traceparent()

    def get_baggage(self) -> str | None:
        """The baggage header value."""
        with self:
            return api.get_baggage()

    def iter_trace_propagation_headers(self, span: Any = None) -> Iterator[tuple[str, str]]:
        """Headers for outgoing requests."""
        with self:
            headers = list(get_current_scope().iter_trace_propagation_headers(span=span))
        yield from headers

    def trace_propagation_meta(self, span: Any = None) -> str:
        """HTML meta tags with the trace headers."""
        with self:
            return get_current_scope().trace_propagation_meta(span=span)


__all__ = ["Hub"]
