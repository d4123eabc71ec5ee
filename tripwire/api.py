"""The top-level API: one-line delegations behind the never-raise guard.

Only `init` may raise (bad options are a programming error to surface at start-up).
"""

from __future__ import annotations

import warnings
from contextlib import AbstractContextManager as ContextManager
from typing import TYPE_CHECKING, Any, Callable, TypeVar, overload

from tripwire._clock import clock as _clock
from tripwire._deprecation import deprecated
from tripwire._guard import guarded
from tripwire._guard import log_ignored as _log_ignored
from tripwire._log import logger
from tripwire.scope._breadcrumbs import record_breadcrumb
from tripwire.scope._current import (
    _current_scope,
    _global,
    _isolation_scope,
    _PushedScope,
    get_client,
    get_current_scope,
    get_global_scope,
    get_isolation_scope,
    isolation_scope,
    new_scope,
)
from tripwire.scope._scope import Scope

if TYPE_CHECKING:
    from tripwire.client import Client
    from tripwire.tracing import NoOpSpan, Span, Transaction
    from tripwire.types import Breadcrumb, BreadcrumbHint, Event, ExceptionLike, Hint


_isolation_get = _isolation_scope.get


class _InitGuard:
    """What `init()` returns: a context manager closing the client on exit."""

    __slots__ = ("_client",)

    def __init__(self, client: Client) -> None:
        self._client = client

    def __enter__(self) -> _InitGuard:
        deprecated(
            "`with init(...)` is deprecated (as in sentry_sdk 2.x): call init() and"
            " close the client with get_client().close() when done"
        )
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.close()


def init(*args: Any, **kwargs: Any) -> _InitGuard:
    """Initialise the SDK with sentry_sdk 2.x's options (the DSN may be positional).

    Raises:
        TypeError: an unknown option or one of the wrong type.
        ValueError: an option out of range, or a malformed DSN.
    """
    from tripwire.client import Client  # lazy: the client loads the whole SDK; init() does

    client = Client(*args, **kwargs)
    get_global_scope().set_client(client)
    # As sentry_sdk: the caller's context gets its scopes now. Made lazily instead, the
    # first use inside `asyncio.run()` would create them in the run's copied context,
    # and what it recorded (breadcrumbs, the trace) would be gone when the run ends.
    get_isolation_scope()
    get_current_scope()
    return _InitGuard(client)


def is_initialized() -> bool:
    """Whether a client that records events is active."""
    return get_client().is_active()


# -- capture ---------------------------------------------------------------------------------


@guarded()
def capture_event(
    event: Event, hint: Hint | None = None, scope: Any | None = None, **scope_kwargs: Any
) -> str | None:
    """Capture a ready-made event dict; returns its id or None if dropped."""
    return get_current_scope().capture_event(event, hint, scope=scope, **scope_kwargs)


@guarded()
def capture_message(
    message: str, level: str | None = None, scope: Any | None = None, **scope_kwargs: Any
) -> str | None:
    """Capture a message (level "info" by default); returns the event id or None."""
    return get_current_scope().capture_message(message, level, scope=scope, **scope_kwargs)


@guarded()
def capture_exception(
    error: ExceptionLike | None = None, scope: Any | None = None, **scope_kwargs: Any
) -> str | None:
    """Capture `error` (default: the exception being handled); returns the event id or None."""
    return get_current_scope().capture_exception(error, scope=scope, **scope_kwargs)


@guarded()
def last_event_id() -> str | None:
    """Id of the last event captured in this isolation scope (deprecated in sentry_sdk)."""
    return get_isolation_scope()._d.last_event_id


# -- enriching -----------------------------------------------------------------------------


def add_breadcrumb(
    crumb: Breadcrumb | None = None, hint: BreadcrumbHint | None = None, **kwargs: Any
) -> None:
    """Record a breadcrumb on the isolation scope."""
    # Hot path, kept flat: this runs for every log line and HTTP call. The common
    # case (keyword fields, no before_breadcrumb, the global client) is done inline;
    # everything else goes through record_breadcrumb.
    try:
        scope = _isolation_get()
        if scope is None:
            scope = get_isolation_scope()
        client = _global.breadcrumb_client
        if client is None or crumb is not None or not kwargs:
            record_breadcrumb(scope, crumb, hint, kwargs)
            return
        if kwargs.get("timestamp") is None:
            kwargs["timestamp"] = _clock.now()
        scope.append_breadcrumb(kwargs, client._max_breadcrumbs)
    except Exception:
        _log_ignored("add_breadcrumb")


@guarded()
def add_attachment(
    bytes: bytes | Callable[[], bytes] | None = None,
    filename: str | None = None,
    path: str | None = None,
    content_type: str | None = None,
    add_to_transactions: bool = False,
) -> None:
    """Attach bytes or a file to future events of the isolation scope."""
    get_isolation_scope().add_attachment(bytes, filename, path, content_type, add_to_transactions)


def set_tag(key: str, value: Any) -> None:
    """Set a tag on the isolation scope."""
    # Hot path: a contextvar read and a store into the tags dict the scope may write in
    # place (`Scope._tw`; None until the scope has copied what a fork shares with it).
    try:
        scope = _isolation_get()
        tags = scope._tw  # type: ignore[union-attr]
        if tags is None:
            tags = scope._own_tags()  # type: ignore[union-attr]
        tags[key] = value
    except Exception:
        _set_tag(key, value)  # no scope in this context yet, or a bad key


def _set_tag(key: str, value: Any) -> None:
    try:
        get_isolation_scope().set_tag(key, value)
    except Exception:
        _log_ignored("set_tag")


@guarded()
def set_tags(tags: Any) -> None:
    """Set several tags on the isolation scope."""
    get_isolation_scope().set_tags(tags)


@guarded()
def set_context(key: str, value: dict[str, Any]) -> None:
    """Bind a context on the isolation scope."""
    get_isolation_scope().set_context(key, value)


def set_extra(key: str, value: Any) -> None:
    """Set an extra value on the isolation scope."""
    try:
        scope = _isolation_get()
        if scope is None:
            scope = get_isolation_scope()
        scope.set_extra(key, value)
    except Exception:
        _log_ignored("set_extra")


def set_user(value: dict[str, Any] | None) -> None:
    """Set (or with None clear) the user on the isolation scope."""
    try:
        scope = _isolation_get()
        if scope is None:
            scope = get_isolation_scope()
        scope.set_user(value)
    except Exception:
        _log_ignored("set_user")


@guarded()
def set_level(value: str) -> None:
    """Set the level override on the isolation scope."""
    get_isolation_scope().set_level(value)


@guarded()
def set_attribute(attribute: str, value: Any) -> None:
    """Set an attribute (applied to logs and metrics) on the isolation scope."""
    get_isolation_scope().set_attribute(attribute, value)


@guarded()
def set_attributes(attributes: dict[str, Any]) -> None:
    """Set several attributes on the isolation scope."""
    get_isolation_scope().set_attributes(attributes)


@guarded()
def remove_attribute(attribute: str) -> None:
    """Remove an attribute from the isolation scope."""
    get_isolation_scope().remove_attribute(attribute)


@guarded()
def set_transaction_name(name: str, source: str | None = None) -> None:
    """Name the current transaction (and future events of the current scope)."""
    get_current_scope().set_transaction_name(name, source)


# -- scopes (1.x forms included) ----------------------------------------------------------------


class _ScopeCallbackResult:
    """`configure_scope()` without callback: a context manager yielding the isolation scope."""

    __slots__ = ("_scope",)

    def __init__(self, scope: Scope) -> None:
        self._scope = scope

    def __enter__(self) -> Scope:
        return self._scope

    def __exit__(self, *exc: object) -> None:
        pass


@overload
def configure_scope() -> ContextManager[Scope]: ...


@overload
def configure_scope(callback: Callable[[Scope], None]) -> None: ...


def configure_scope(
    callback: Callable[[Scope], None] | None = None,
) -> ContextManager[Scope] | None:
    """Deprecated (sentry_sdk 1.x): the isolation scope, to `callback` or as a `with` block.

    Emits a DeprecationWarning at the caller's line, as sentry_sdk 2.x does.
    """
    warnings.warn(
        "configure_scope() is deprecated: set data on get_isolation_scope() "
        "(or the top-level set_tag(), set_user(), ...)",
        DeprecationWarning,
        stacklevel=2,
    )
    scope = get_isolation_scope()
    scope.generate_propagation_context()
    if callback is not None:
        guarded()(callback)(scope)
        return None
    return _ScopeCallbackResult(scope)


@overload
def push_scope() -> ContextManager[Scope]: ...


@overload
def push_scope(callback: Callable[[Scope], None]) -> None: ...


def push_scope(callback: Callable[[Scope], None] | None = None) -> ContextManager[Scope] | None:
    """Deprecated (sentry_sdk 1.x): fork the isolation scope for a block or a callback.

    As in sentry_sdk 2.x, what is set inside (on the yielded scope or with the
    top-level functions) stays inside. Emits a DeprecationWarning at the caller's line.
    """
    warnings.warn(
        "push_scope() is deprecated: use `with new_scope()` or `with isolation_scope()`",
        DeprecationWarning,
        stacklevel=2,
    )
    if callback is not None:
        with _PushedScope() as scope:
            guarded()(callback)(scope)
        return None
    return _PushedScope()


# -- lifecycle -----------------------------------------------------------------------------------


@guarded()
def flush(
    timeout: float | None = None, callback: Callable[[int, float], None] | None = None
) -> None:
    """Wait up to `timeout` seconds for queued events to be sent."""
    get_client().flush(timeout=timeout, callback=callback)


async def flush_async(
    timeout: float | None = None, callback: Callable[[int, float], None] | None = None
) -> None:
    """`flush` for async code: waits in a worker thread, not on the event loop."""
    try:
        await get_client().flush_async(timeout=timeout, callback=callback)
    except Exception:
        logger.debug("flush_async failed", exc_info=True)


# -- tracing (see tripwire.tracing) ------------------------------------------------------------


@guarded()
def get_current_span(scope: Scope | None = None) -> Span | None:
    """The active span of `scope` (default: the current scope), or None."""
    # `Scope.span` hides a streamed span, also one an integration started (use
    # `traces.get_current_span`): sentry_sdk 2.75 gives only transaction-model spans here.
    span: Span | None = (scope or get_current_scope()).span
    return span


def start_transaction(
    transaction: Transaction | None = None,
    instrumenter: str = "sentry",
    custom_sampling_context: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Transaction | NoOpSpan:
    """Start a transaction (an unsampled one when tracing is off).

    Under span streaming (``trace_lifecycle="stream"``) a DeprecationWarning and a
    NoOpSpan, as sentry_sdk 2.75: use `tripwire.traces.start_span` there.

    Raises:
        TypeError: An unknown keyword argument (as sentry_sdk 2.x, e.g. `data=`).
    """
    started: Transaction | NoOpSpan = (_tracing or _load_tracing()).start_transaction(
        get_current_scope(), transaction, custom_sampling_context, instrumenter, **kwargs
    )
    return started


def start_span(**kwargs: Any) -> Span:
    """Start a span under the active span (`description=` is deprecated: use `name=`).

    Under span streaming a DeprecationWarning and a NoOpSpan, as `start_transaction`.
    """
    scope = _current_scope.get() or get_current_scope()  # one call fewer on the hot path
    span: Span = (_span_for_scope or _load_tracing().span_for_scope)(scope, kwargs, True)
    return span


_tracing: Any = None  # tripwire.tracing._api, bound on first use (import tripwire stays cheap)
_span_for_scope: Any = None  # its span_for_scope (start_span's hot path)


def _load_tracing() -> Any:
    global _tracing, _span_for_scope
    from tripwire.tracing import _api  # lazy: tracing costs ~25 ms + datetime

    _tracing = _api
    _span_for_scope = _api.span_for_scope
    return _tracing


def continue_trace(
    environ_or_headers: dict[str, Any],
    op: str | None = None,
    name: str | None = None,
    source: str | None = None,
    origin: str = "manual",
) -> Transaction:
    """Continue an incoming trace; returns a transaction to start."""
    transaction: Transaction = (_tracing or _load_tracing()).continue_trace(
        get_isolation_scope(), environ_or_headers, op, name, source, origin
    )
    return transaction


@guarded()
def get_traceparent() -> str | None:
    """The sentry-trace header value for the active span or trace ("" in a NoOpSpan)."""
    traceparent = get_current_scope().get_traceparent()
    return traceparent if traceparent is not None else get_isolation_scope().get_traceparent()


@guarded()
def get_baggage() -> str | None:
    """The baggage header value for the active span or trace (None in a NoOpSpan)."""
    baggage: str | None = (_tracing or _load_tracing()).baggage_header(get_current_scope())
    return baggage


@guarded()
def set_measurement(name: str, value: float, unit: str = "") -> None:
    """Deprecated (as in sentry_sdk 2.28+): set a measurement on the current transaction."""
    # Under a streamed span (no measurements) `Scope.transaction` warns and is None, as
    # sentry_sdk 2.75's, which reads it here too.
    transaction = get_current_scope().transaction
    if transaction is not None:
        transaction.set_measurement(name, value, unit)


@guarded()
def update_current_span(
    op: str | None = None,
    name: str | None = None,
    attributes: dict[str, Any] | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """Update the active span's op, name and data."""
    span = get_current_scope()._d.span
    if span is None:
        return
    if getattr(span, "_streamed", False):  # any streamed span, an integration's too
        deprecated(
            "The `update_current_span` API isn't available in streaming mode. Retrieve the"
            " current span with get_current_span() and use its API directly."
        )
        return
    if data is not None:
        deprecated("the `data` argument of update_current_span is deprecated: use `attributes`")
    if op is not None:
        span.op = op
    if name is not None:
        span.description = name  # a transaction keeps its name, as sentry_sdk
    for bag in (attributes, data):
        for key, value in (bag or {}).items():
            span.set_data(key, value)


_F = TypeVar("_F", bound=Callable[..., Any])


@overload
def trace(
    func: _F,
    *,
    op: str | None = None,
    name: str | None = None,
    attributes: dict[str, Any] | None = None,
    template: Any = "default",
) -> _F: ...


@overload
def trace(
    func: None = None,
    *,
    op: str | None = None,
    name: str | None = None,
    attributes: dict[str, Any] | None = None,
    template: Any = "default",
) -> Callable[[_F], _F]: ...


def trace(
    func: _F | None = None,
    *,
    op: str | None = None,
    name: str | None = None,
    attributes: dict[str, Any] | None = None,
    template: Any = "default",
) -> _F | Callable[[_F], _F]:
    """Decorator: run `func` (sync or async) in a child span of the active span."""
    from tripwire.tracing import trace as _trace  # lazy: tracing costs ~25 ms + datetime

    return _trace(func, op=op, name=name, attributes=attributes, template=template)


# -- sessions ------------------------------------------------------------------------------------


@guarded()
def start_session(session_mode: str = "application") -> None:
    """Start a release-health session on the isolation scope."""
    get_isolation_scope().start_session(session_mode=session_mode)


@guarded()
def end_session() -> None:
    """End the isolation scope's session."""
    get_isolation_scope().end_session()


def _alias_doc(owner: str, f: _F) -> _F:
    target = getattr(_owner_classes()[owner], f.__name__, None)
    doc = getattr(target, "__doc__", None) or ""
    f.__doc__ = f"Alias for `tripwire.{owner}.{f.__name__}`.\n\n{doc}".rstrip()
    return f


def _owner_classes() -> dict[str, type]:
    from tripwire.client import Client  # lazy: the client loads the whole SDK; init() does

    return {"Client": Client, "Scope": Scope}


def clientmethod(f: _F) -> _F:
    """Mark a top-level function as the alias of the Client method of the same name."""
    return _alias_doc("Client", f)


def scopemethod(f: _F) -> _F:
    """Mark a top-level function as the alias of the Scope method of the same name."""
    return _alias_doc("Scope", f)


def __getattr__(name: str) -> Any:
    # `sentry_sdk.api.monitor`: the crons decorator, loaded on first use.
    if name == "monitor":
        from tripwire.crons import monitor  # lazy: feature module, loaded on first use

        return monitor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "add_attachment",
    "add_breadcrumb",
    "capture_event",
    "capture_exception",
    "capture_message",
    "configure_scope",
    "continue_trace",
    "end_session",
    "flush",
    "flush_async",
    "get_baggage",
    "get_client",
    "get_current_scope",
    "get_current_span",
    "get_global_scope",
    "get_isolation_scope",
    "get_traceparent",
    "init",
    "is_initialized",
    "isolation_scope",
    "last_event_id",
    "new_scope",
    "push_scope",
    "remove_attribute",
    "set_attribute",
    "set_attributes",
    "set_context",
    "set_extra",
    "set_level",
    "set_measurement",
    "set_tag",
    "set_tags",
    "set_transaction_name",
    "set_user",
    "start_session",
    "start_span",
    "start_transaction",
    "trace",
    "update_current_span",
]
