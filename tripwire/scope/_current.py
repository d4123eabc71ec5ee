"""The three scopes of sentry_sdk 2.x, on contextvars.

- global scope: one per process (release, environment, process-wide tags).
- isolation scope: one per request / task / thread; `isolation_scope()` forks it.
  Top-level setters (`tripwire.set_tag`, `add_breadcrumb`, ...) write here.
- current scope: the innermost `new_scope()`; it holds the active span.

Events merge global -> isolation -> current, later layers winning. A context
that never set a scope gets fresh ones on first access, so a new thread or an
asyncio task started outside any scope starts clean rather than sharing state.
"""

from __future__ import annotations

import threading
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING

from tripwire._client_base import NON_RECORDING_CLIENT, NonRecordingClient
from tripwire.scope._scope import Scope, ScopeType

if TYPE_CHECKING:
    from tripwire._client_base import BaseClient
    from tripwire.tracing._propagation import PropagationContext

_current_scope: ContextVar[Scope | None] = ContextVar("tripwire_current_scope", default=None)
_isolation_scope: ContextVar[Scope | None] = ContextVar("tripwire_isolation_scope", default=None)


class _Global:
    __slots__ = ("breadcrumb_client", "scope", "scoped_clients")

    def __init__(self) -> None:
        self.scope: Scope | None = None
        # Whether any scope but the global one ever had a client bound (Hub(client),
        # scope.set_client). Until then get_client() is a single attribute read.
        self.scoped_clients = False
        # The client add_breadcrumb may use without further checks: the global one,
        # recording, with no before_breadcrumb, and no scope-bound clients around.
        self.breadcrumb_client: BaseClient | None = None


_global = _Global()


def note_scoped_client() -> None:
    """A client was bound to a non-global scope: get_client() must look at all three."""
    _global.scoped_clients = True
    _global.breadcrumb_client = None


def note_global_client(client: BaseClient | None) -> None:
    """The global scope's client changed: refresh the breadcrumb fast path."""
    fast = (
        client is not None
        and client._recording
        and client._before_breadcrumb is None
        and not _global.scoped_clients
    )
    _global.breadcrumb_client = client if fast else None


def get_global_scope() -> Scope:
    """The process-wide global scope."""
    scope = _global.scope
    if scope is None:
        scope = _global.scope = Scope(ty=ScopeType.GLOBAL)
    return scope


def get_isolation_scope() -> Scope:
    """The isolation scope of this context (created on first use)."""
    scope = _isolation_scope.get()
    if scope is None:
        scope = Scope(ty=ScopeType.ISOLATION)
        _isolation_scope.set(scope)
    return scope


def get_current_scope() -> Scope:
    """The current scope of this context (created on first use)."""
    scope = _current_scope.get()
    if scope is None:
        scope = Scope(ty=ScopeType.CURRENT)
        _current_scope.set(scope)
    return scope


def get_client() -> BaseClient:
    """The client bound to the current, isolation or global scope, else a no-op client."""
    if not _global.scoped_clients:
        scope = _global.scope
        if scope is not None and scope._client is not None:
            return scope._client
        return NON_RECORDING_CLIENT
    scope = _current_scope.get()
    if scope is not None and scope._client is not None:
        return scope._client
    scope = _isolation_scope.get()
    if scope is not None and scope._client is not None:
        return scope._client
    scope = _global.scope
    if scope is not None and scope._client is not None:
        return scope._client
    return NON_RECORDING_CLIENT


class _Capturing(threading.local):
    client: BaseClient | None = None


_capturing = _Capturing()


def capturing_client() -> BaseClient:
    """The client whose event the processors on this thread are processing, else get_client().

    Processors of integrations ask it whether they are enabled: an event captured by a
    client that is not the current one (``Client(...).capture_event``) is judged by its
    own integrations, not by the global client's.
    """
    client = _capturing.client
    return client if client is not None else get_client()


def active_propagation_context(scope: Scope | None = None) -> PropagationContext:
    """The propagation context in force: `scope`'s, else isolation's, else global's."""
    if scope is not None and scope._d.propagation_context is not None:
        return scope._d.propagation_context  # type: ignore[no-any-return]
    isolation = get_isolation_scope()
    if isolation._d.propagation_context is None:
        global_scope = get_global_scope()
        if global_scope._d.propagation_context is not None:
            return global_scope._d.propagation_context  # type: ignore[no-any-return]
        isolation.set_new_propagation_context()
    return isolation._d.propagation_context  # type: ignore[no-any-return]


class _ScopeManager:
    """Sets scopes on the contextvars for a `with` block and restores them after.

    A class rather than @contextmanager: entering a generator-based manager costs
    more than the whole fork.
    """

    __slots__ = ("_current", "_current_token", "_isolation", "_isolation_token", "_yield")

    def __init__(self, current: Scope | None, isolation: Scope | None, yields: Scope) -> None:
        self._current = current
        self._isolation = isolation
        self._yield = yields
        self._current_token: Token[Scope | None] | None = None
        self._isolation_token: Token[Scope | None] | None = None

    def __enter__(self) -> Scope:
        if self._current is not None:
            self._current_token = _current_scope.set(self._current)
        if self._isolation is not None:
            self._isolation_token = _isolation_scope.set(self._isolation)
        return self._yield

    def __exit__(self, *exc: object) -> None:
        # Resetting with a token from another context raises ValueError (a scope
        # manager entered in one task and exited in another): fall back to a plain set.
        for var, token in (
            (_isolation_scope, self._isolation_token),
            (_current_scope, self._current_token),
        ):
            if token is None:
                continue
            try:
                var.reset(token)
            except ValueError:
                var.set(token.old_value if token.old_value is not Token.MISSING else None)


class _NewScope:
    """`with new_scope() as scope:` forks the current scope for the block, restores it after."""

    __slots__ = ("_token",)

    def __enter__(self) -> Scope:
        current = _current_scope.get()
        if current is None:
            current = get_current_scope()
        forked = current.fork()
        self._token = _current_scope.set(forked)
        return forked

    def __exit__(self, *exc: object) -> None:
        try:
            _current_scope.reset(self._token)
        except ValueError:
            # Entered in one context, exited in another (e.g. across asyncio tasks).
            old = self._token.old_value
            _current_scope.set(None if old is Token.MISSING else old)


class _IsolationScope(_ScopeManager):
    """`with isolation_scope()`: fork both the isolation and the current scope."""

    __slots__ = ()

    def __init__(self) -> None:
        pass

    def __enter__(self) -> Scope:
        self._current_token = _current_scope.set(get_current_scope().fork())
        isolation = get_isolation_scope().fork()
        self._isolation_token = _isolation_scope.set(isolation)
        return isolation


class _PushedScope:
    """sentry_sdk 2.x's `push_scope()`: fork the isolation scope for a block, yield the fork.

    The current scope is not forked: what is set on it inside the block stays.
    """

    __slots__ = ("_token",)

    def __enter__(self) -> Scope:
        forked = get_isolation_scope().fork()
        self._token = _isolation_scope.set(forked)
        return forked

    def __exit__(self, *exc: object) -> None:
        try:
            _isolation_scope.reset(self._token)
        except ValueError:
            old = self._token.old_value
            _isolation_scope.set(None if old is Token.MISSING else old)


# `new_scope()` is the manager class itself: calling a class skips a Python frame.
new_scope = _NewScope


def isolation_scope() -> _ScopeManager:
    """Fork the isolation scope (and the current scope) for a `with` block; yields the fork."""
    return _IsolationScope()


def use_scope(scope: Scope) -> _ScopeManager:
    """Make `scope` the current scope for a `with` block."""
    return _ScopeManager(scope, None, scope)


def use_isolation_scope(isolation_scope: Scope) -> _ScopeManager:
    """Make `isolation_scope` the isolation scope for a `with` block (current is forked)."""
    return _ScopeManager(get_current_scope().fork(), isolation_scope, isolation_scope)


def reset_scopes() -> None:
    """Back to the just-imported state (used by `tripwire.testing.reset`)."""
    _global.scope = None
    _global.scoped_clients = False
    _global.breadcrumb_client = None
    _current_scope.set(None)
    _isolation_scope.set(None)


def should_send_default_pii() -> bool:
    """Whether the active client may send personal data (`send_default_pii`)."""
    return get_client().should_send_default_pii()


__all__ = [
    "NON_RECORDING_CLIENT",
    "NonRecordingClient",
    "get_client",
    "get_current_scope",
    "get_global_scope",
    "get_isolation_scope",
    "isolation_scope",
    "new_scope",
    "should_send_default_pii",
    "use_isolation_scope",
    "use_scope",
]
