"""What `Scope` calls: starting transactions and spans, continuing traces, trace headers.

Tracing off (no traces_sample_rate / traces_sampler / enable_tracing) costs almost
nothing here: start_transaction returns an unsampled transaction without calling
any sampler, generating ids or building dicts, and its children record nothing.
"""

from __future__ import annotations

import os
import sys
import warnings
from collections.abc import Iterator, Mapping
from types import FrameType
from typing import TYPE_CHECKING, Any

from tripwire._deprecation import deprecated
from tripwire.consts import FALSE_VALUES
from tripwire.profiler import _state as _profiler_state
from tripwire.profiler._hooks import on_sampled_transaction
from tripwire.scope._current import (
    _current_scope,
    active_propagation_context,
    get_client,
    get_current_scope,
    get_global_scope,
    get_isolation_scope,
)
from tripwire.tracing._consts import (
    BAGGAGE_HEADER_NAME,
    INSTRUMENTER,
    MAX_SPANS,
    SENTRY_TRACE_HEADER_NAME,
    SPANDATA,
)
from tripwire.tracing._propagation import Baggage, PropagationContext
from tripwire.tracing._sampling import (
    configured_rate,
    decide,
    downsample_factor,
    has_span_streaming_enabled,
    has_tracing_enabled,
)
from tripwire.tracing._span import (
    _FAST_CHILD_KWARGS,
    NoOpSpan,
    Span,
    _instrumenter_mismatch,
    _thread_data,
    new_child,
)
from tripwire.tracing._stream_compat import child_span, segment_span
from tripwire.tracing._streamed import DEFAULT_PARENT, start_streamed_span
from tripwire.tracing._transaction import Transaction, transaction_from_context

if TYPE_CHECKING:
    from tripwire._client_base import BaseClient
    from tripwire.scope._scope import Scope


# start_transaction keyword arguments handled without going through Transaction.__init__.
_ROOT_KWARGS = frozenset({"name", "op", "source", "origin", "description"})
_new_span = object.__new__


def _max_spans(options: Mapping[str, Any]) -> int:
    """`_experiments={"max_spans": N}`: children a transaction records (falsy: MAX_SPANS)."""
    experiments = options.get("_experiments")
    limit = experiments.get("max_spans") if experiments else None
    if not limit or isinstance(limit, bool) or not isinstance(limit, int):
        return MAX_SPANS
    return max(limit, 0)


def start_transaction(
    scope: Scope,
    transaction: Any = None,
    custom_sampling_context: Mapping[str, Any] | None = None,
    instrumenter: str = INSTRUMENTER.SENTRY,
    **kwargs: Any,
) -> Any:
    """`Scope.start_transaction`: start `transaction` (or one from `kwargs`) and sample it.

    Under span streaming a DeprecationWarning and a NoOpSpan, as sentry_sdk 2.75
    (integrations call `sdk_start_transaction`).
    """
    client = get_client()
    options = client.options
    if has_span_streaming_enabled(options):
        return _unavailable("Scope.start_transaction")
    return _start_transaction(
        client, options, scope, transaction, custom_sampling_context, instrumenter, kwargs
    )


def sdk_start_transaction(
    transaction: Any = None,
    *,
    scope: Scope | None = None,
    custom_sampling_context: Mapping[str, Any] | None = None,
    instrumenter: str = INSTRUMENTER.SENTRY,
    **kwargs: Any,
) -> Any:
    """What integrations start a transaction with: under span streaming a segment.

    `start_transaction`'s arguments (`scope`: where it starts, default the current
    scope); under the option a `_stream_compat` segment (sampled now, active once
    entered, the transaction-model methods mapped onto attributes), so an integration
    streams without a branch of its own. Otherwise `start_transaction`.
    """
    if scope is None:
        scope = get_current_scope()
    client = get_client()
    options = client.options
    if has_span_streaming_enabled(options) and instrumenter == INSTRUMENTER.SENTRY:
        return segment_span(scope, transaction, custom_sampling_context, kwargs)
    return _start_transaction(
        client, options, scope, transaction, custom_sampling_context, instrumenter, kwargs
    )


def _unavailable(method: str) -> NoOpSpan:
    """The transaction-model API under span streaming, as sentry_sdk 2.75: a warning and a
    NoOpSpan that never becomes the scope's span (nothing is sent or sampled).

    The warning names the caller of the `Scope` method, or `tripwire.api` / `Hub` for
    theirs, as sentry_sdk's does (so the default filters show it only for direct calls).
    """
    level = 1
    frame: FrameType | None = sys._getframe(0)
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        level += 1
        frame = frame.f_back
    if frame is not None and frame.f_globals.get("__name__") == "tripwire.scope._scope_tracing":
        level += 1
    warnings.warn(f"{method} is not available in streaming mode.", DeprecationWarning, level)
    span = NoOpSpan()
    span._inert = True
    return span


def _start_transaction(
    client: BaseClient,
    options: Mapping[str, Any],
    scope: Scope,
    transaction: Any,
    custom_sampling_context: Mapping[str, Any] | None,
    instrumenter: str,
    kwargs: dict[str, Any],
) -> Any:
    """`start_transaction` in the transaction model."""
    configured = options.get("instrumenter")
    if configured is None or configured == INSTRUMENTER.SENTRY:
        if instrumenter != INSTRUMENTER.SENTRY:
            return NoOpSpan()
        native = True
    elif instrumenter != configured:
        return NoOpSpan()
    else:
        native = False  # e.g. "otel": its children started by default are NoOpSpans
    if transaction is None:
        if _ROOT_KWARGS.issuperset(kwargs):
            transaction = _new_span(Transaction)
            transaction._init_root(
                kwargs.get("op"), kwargs.get("name") or "", kwargs.get("origin", "manual")
            )
            transaction.description = kwargs.get("description")
            source = kwargs.get("source")
            if source is not None:
                transaction.source = source
        else:
            transaction = Transaction(**kwargs)
    elif not isinstance(transaction, Transaction):
        return transaction  # a NoOpSpan (or anything else) is returned as it is
    transaction._native = native
    if not has_tracing_enabled(options):
        transaction.sampled = False
        return transaction
    # With tracing on, even unsampled spans carry their thread: errors report it, and
    # traces_sampler sees it in the transaction's data.
    data = transaction._data
    transaction._data = {**_thread_data(), **data} if data else _thread_data()
    _sample(transaction, client, options, custom_sampling_context)
    if transaction.sampled:
        transaction.init_span_recorder(_max_spans(options))
        on_sampled_transaction(transaction, client, custom_sampling_context)
        # A continuous profiler this transaction started (lifecycle "trace") runs now:
        # the transaction links to it, as its thread data would have (taken above).
        profiler_id = _profiler_state.profiler_id
        if profiler_id is not None:
            transaction._data[SPANDATA.PROFILER_ID] = profiler_id
    return transaction


def _sample(
    transaction: Transaction,
    client: BaseClient,
    options: Mapping[str, Any],
    custom_sampling_context: Mapping[str, Any] | None,
) -> None:
    explicit = transaction.sampled
    if explicit is not None:
        transaction.sample_rate = float(explicit)
        if transaction._baggage is not None:
            transaction._baggage.sentry_items["sample_rate"] = str(transaction.sample_rate)
        return
    sampler = options.get("traces_sampler")
    inherited = from_options = False
    if sampler is not None:
        context: dict[str, Any] = {
            "transaction_context": transaction.to_json(),
            "parent_sampled": transaction.parent_sampled,
        }
        if custom_sampling_context:
            context.update(custom_sampling_context)
        rate = client._run_user_hook(sampler, context, on_error=None)
    elif transaction.parent_sampled is not None:
        rate = transaction.parent_sampled
        inherited = True
    else:
        rate = configured_rate(options)
        from_options = True
    rand = transaction._get_sample_rand()
    factor = downsample_factor(client)
    if type(rate) is float and not factor and 0.0 <= rate <= 1.0:
        # `decide` for the usual configuration (a valid float rate, no backpressure).
        transaction.sampled = rand < rate
        sample_rate: float | None = rate
    else:
        result = decide(rate, rand, factor, inherited, reported=from_options)
        transaction.sampled = result.sampled
        sample_rate = result.sample_rate
    transaction.sample_rate = sample_rate
    baggage = transaction._baggage
    if sample_rate is not None and not inherited and baggage is not None:
        # The incoming DSC is forwarded unchanged, except for the rate this service used.
        baggage.sentry_items["sample_rate"] = str(sample_rate)


def start_span(scope: Scope, instrumenter: str = INSTRUMENTER.SENTRY, **kwargs: Any) -> Any:
    """`Scope.start_span`: a child of the scope's active span, or a span outside any
    transaction (under span streaming a DeprecationWarning and a NoOpSpan)."""
    if instrumenter != INSTRUMENTER.SENTRY:
        kwargs["instrumenter"] = instrumenter
    return span_for_scope(scope, kwargs, True)


def sdk_start_span(**kwargs: Any) -> Any:
    """What integrations start a span with: `start_span` in the current scope, whose
    child of a streamed span is a streamed child (a `_stream_compat` span, active once
    entered), so an integration streams without a branch of its own."""
    return span_for_scope(_current_scope.get() or get_current_scope(), kwargs)


def span_for_scope(scope: Scope, kwargs: dict[str, Any], public: bool = False) -> Any:
    """`start_span` with the keyword arguments as one dict (the hot path, unpacked once).

    As sentry_sdk 2.x: `instrumenter` (default "sentry") other than the `instrumenter`
    option gives a NoOpSpan; so does any child started without naming the configured
    instrumenter. `public`: the user's call (`tripwire.start_span`, `Scope.start_span`),
    which under span streaming warns and gives a NoOpSpan, as sentry_sdk 2.75's; the
    SDK's own (false) makes a streamed child of a streamed parent.
    """
    parent = scope._d.span
    if parent is None:
        parent = get_isolation_scope()._d.span
        if parent is None:
            return _free_span(scope, kwargs, public)
    cls = type(parent)
    if (cls is not Span and cls is not Transaction) or not _FAST_CHILD_KWARGS.issuperset(kwargs):
        return _child_span(scope, parent, kwargs, public)
    transaction = parent._containing_transaction
    if (transaction is None or not transaction._native) and _instrumenter_mismatch(
        INSTRUMENTER.SENTRY
    ):
        return NoOpSpan()
    origin = kwargs.get("origin")
    return new_child(
        parent,
        transaction,
        kwargs.get("scope") or scope,
        kwargs.get("op"),
        kwargs.get("name"),
        "manual" if origin is None else origin,
    )


def start_child(
    parent: Any = None, *, scope: Scope | None = None, active: bool | None = None, **kwargs: Any
) -> Any:
    """A child of `parent` (default: the current scope's span), not entered; None without one.

    The one way the SDK starts a child span, whichever model the client uses: the child
    is of its parent's model (a streamed parent exists only under span streaming), and
    `kwargs` are `start_span`'s (``op``, ``name``, ``origin``...; ``attributes``: a
    streamed span's at its start, a span's data).

    `active` says when the child becomes its scope's active span:

    - None (the transaction model's rule): when entered (``with`` / ``__enter__``). A
      streamed child then has the transaction-model methods (`CompatSpan`).
    - True / False (the streaming model's, as `traces.start_span`): from its start, or
      never. The child is a plain `StreamedSpan` whose ``attributes`` (``op`` and
      ``origin`` as ``sentry.op`` / ``sentry.origin``) are given at its start, so
      ``ignore_spans`` sees them; None under a span of a transaction (such a span
      exists only in the streaming model).

    `scope`: where the child is active. By default the current scope for a streamed
    parent; a span of a transaction's own scope (as `Span.start_child`).
    """
    return child_of(parent, scope, active, kwargs)


def child_of(parent: Any, scope: Scope | None, active: bool | None, kwargs: dict[str, Any]) -> Any:
    """`start_child` with its keyword arguments as one dict (left unchanged)."""
    defaulted = parent is None
    if defaulted:
        current = _current_scope.get() or get_current_scope()
        parent = current._d.span
        if parent is None:
            return None
    cls = type(parent)
    if cls is Span or cls is Transaction:
        if active is not None:
            return None
        if _FAST_CHILD_KWARGS.issuperset(kwargs):  # `Span.start_child`, inlined: the hot path
            transaction = parent._containing_transaction
            if (transaction is None or not transaction._native) and _instrumenter_mismatch(
                INSTRUMENTER.SENTRY
            ):
                return NoOpSpan()
            origin = kwargs.get("origin")
            return new_child(
                parent,
                transaction,
                parent.scope if scope is None else scope,
                kwargs.get("op"),
                kwargs.get("name"),
                "manual" if origin is None else origin,
            )
    if getattr(parent, "_streamed", False):
        if scope is None:
            scope = _current_scope.get() or get_current_scope()
        if active is None:
            return child_span(scope, parent, kwargs)
        attributes = kwargs.get("attributes")
        op, origin = kwargs.get("op"), kwargs.get("origin")
        if op is not None or origin is not None:
            attributes = dict(attributes) if attributes else {}
            if op is not None:
                attributes["sentry.op"] = op
            if origin is not None:
                attributes["sentry.origin"] = origin
        return start_streamed_span(
            scope,
            kwargs.get("name") or "",
            attributes,
            DEFAULT_PARENT if defaulted else parent,
            active,
        )
    if active is not None:
        return None
    # Any other span of the transaction model (a NoOpSpan, a subclass): its own method.
    kwargs = dict(kwargs)
    data = kwargs.pop("attributes", None)
    if scope is not None:
        kwargs["scope"] = scope
    child = parent.start_child(**kwargs)
    if data:
        child.update_data(data)
    return child


def _warn_description(kwargs: Mapping[str, Any]) -> None:
    if kwargs.get("description") is not None:
        deprecated("the `description` argument of start_span is deprecated: use `name`")


def _child_span(scope: Scope, parent: Any, kwargs: dict[str, Any], public: bool) -> Any:
    """`span_for_scope` off the fast path: unusual arguments or parent."""
    if getattr(parent, "_streamed", False):
        # A streamed parent exists only under span streaming, where the user's call
        # does nothing (as sentry_sdk 2.75's) and the SDK's makes a streamed child.
        if public:
            return _unavailable("Scope.start_span")
        return child_span(scope, parent, kwargs)
    _warn_description(kwargs)
    instrumenter = kwargs.pop("instrumenter", INSTRUMENTER.SENTRY)
    if _instrumenter_mismatch(instrumenter):
        return NoOpSpan()
    kwargs.setdefault("scope", scope)
    description = kwargs.pop("description", None)
    if description is not None and not kwargs.get("name"):
        kwargs["name"] = description  # warned above: the child gets it as its name
    # The child is started with the default instrumenter, as sentry_sdk's scopes do.
    return parent.start_child(**kwargs)


def _free_span(scope: Scope, kwargs: dict[str, Any], public: bool) -> Span:
    """A span outside any transaction: part of the scope's trace, never sent."""
    options = get_client().options
    if public and has_span_streaming_enabled(options):
        return _unavailable("Scope.start_span")
    _warn_description(kwargs)
    instrumenter = kwargs.pop("instrumenter", INSTRUMENTER.SENTRY)
    if instrumenter != (options.get("instrumenter") or INSTRUMENTER.SENTRY):
        return NoOpSpan()
    context = active_propagation_context(scope)
    kwargs.setdefault("scope", scope)
    kwargs.setdefault("trace_id", context.trace_id)
    kwargs.setdefault("parent_span_id", context.parent_span_id)
    return Span(**kwargs)


def continue_trace(
    scope: Scope,
    environ_or_headers: Mapping[str, Any] | None,
    op: str | None = None,
    name: str | None = None,
    source: str | None = None,
    origin: str = "manual",
) -> Transaction:
    """Make the incoming trace (or a new one) the scope's; returns a transaction to start.

    None (not even empty headers) keeps the trace in force, as sentry_sdk.
    """
    if environ_or_headers is None:
        kept = active_propagation_context(scope)
        return transaction_from_context(kept, op=op, name=name, source=source, origin=origin)
    context = None
    if environ_or_headers:
        context = PropagationContext.from_incoming_data(environ_or_headers, get_client())
    if context is None:
        context = PropagationContext()
    scope._w().propagation_context = context
    return transaction_from_context(context, op=op, name=name, source=source, origin=origin)


def propagation_context_from_headers(
    headers: Mapping[str, Any],
) -> PropagationContext | None:
    """A propagation context continued from sentry-trace/traceparent and baggage, if present."""
    return PropagationContext.from_incoming_data(headers)


def _active_span(scope: Scope, client: BaseClient) -> Span | None:
    """The scope's span, if it should speak for the trace (tracing enabled)."""
    span = scope._d.span
    if span is None or type(span) is NoOpSpan or not has_tracing_enabled(client.options):
        return None
    return span  # type: ignore[no-any-return]


def trace_context_for_scope(scope: Scope) -> dict[str, Any]:
    """The `contexts.trace` of an event captured in `scope` (DSC included for the envelope)."""
    client = get_client()
    span = _active_span(scope, client)
    if span is not None:
        return span.get_trace_context()
    context = active_propagation_context(scope)
    out = context.to_trace_context()
    out["dynamic_sampling_context"] = dict(context.dsc_for(client))
    return out


def dynamic_sampling_context_for_scope(scope: Scope) -> dict[str, str] | None:
    """The dynamic sampling context of the scope's trace."""
    client = get_client()
    span = _active_span(scope, client)
    if span is not None:
        baggage = span.to_baggage()
        return baggage.dynamic_sampling_context() if baggage is not None else None
    return dict(active_propagation_context(scope).dsc_for(client))


def traceparent_for_scope(scope: Scope) -> str | None:
    """The `sentry-trace` header value for the scope's span or trace ("" in a NoOpSpan)."""
    if type(scope._d.span) is NoOpSpan:
        return ""
    span = _active_span(scope, get_client())
    if span is not None:
        return span.to_traceparent()
    return active_propagation_context(scope).to_traceparent()


def baggage_header(scope: Scope) -> str | None:
    """`tripwire.get_baggage`: the scope's baggage, else the isolation scope's.

    None inside a NoOpSpan, as sentry_sdk 2.x.
    """
    if type(scope._d.span) is NoOpSpan:
        return None
    baggage = baggage_for_scope(scope) or baggage_for_scope(get_isolation_scope())
    return baggage.serialize() if baggage is not None else None


def baggage_for_scope(scope: Scope) -> Baggage | None:
    """The baggage for the scope's span or trace (None in a NoOpSpan)."""
    client = get_client()
    if type(scope._d.span) is NoOpSpan:
        return None
    span = _active_span(scope, client)
    if span is not None:
        return span.to_baggage()
    context = active_propagation_context(scope)
    third_party = context.baggage.third_party_items if context.baggage is not None else ""
    return Baggage(dict(context.dsc_for(client)), third_party, mutable=False)


def iter_propagation_headers(scope: Scope, span: Any = None) -> Iterator[tuple[str, str]]:
    """sentry-trace and baggage for an outgoing request from `scope` (or inside `span`).

    A span that belongs to no transaction (or tracing off) propagates the scope's
    trace instead, so downstream services still join the same trace.
    """
    client = get_client()
    if not client.options.get("propagate_traces", True):
        return
    if span is None:
        span = _active_span(scope, client)
    elif not has_tracing_enabled(client.options):
        span = None
    if span is not None and span.containing_transaction is not None:
        yield from span.iter_headers()
        return
    context = active_propagation_context(scope)
    yield SENTRY_TRACE_HEADER_NAME, context.to_traceparent()
    baggage = context.sentry_baggage(client).serialize()
    if baggage:
        yield BAGGAGE_HEADER_NAME, baggage


def continue_trace_from_environment() -> None:
    """Continue the trace a parent process handed down through the environment.

    As sentry_sdk 2.75: ``SENTRY_TRACE`` / ``SENTRY_BAGGAGE`` (a ``sentry-trace`` value
    and a baggage), unless ``SENTRY_USE_ENVIRONMENT`` is false. Beyond sentry_sdk: when
    neither is set, ``SUBPROCESS_SENTRY_TRACE`` / ``SUBPROCESS_BAGGAGE``, the names its
    subprocess integration (and tripwire's) puts in a child's environment, so a child
    started by an instrumented parent joins its trace. The context becomes the global
    and the isolation scope's.
    """
    environ = os.environ
    if not any(
        key in environ
        for key in (
            "SENTRY_TRACE",
            "SENTRY_BAGGAGE",
            "SUBPROCESS_SENTRY_TRACE",
            "SUBPROCESS_BAGGAGE",
        )
    ):
        return
    if (environ.get("SENTRY_USE_ENVIRONMENT") or "").lower() in FALSE_VALUES:
        return
    trace, baggage = environ.get("SENTRY_TRACE"), environ.get("SENTRY_BAGGAGE")
    if not trace and not baggage:
        trace, baggage = environ.get("SUBPROCESS_SENTRY_TRACE"), environ.get("SUBPROCESS_BAGGAGE")
    incoming = {
        key: value for key, value in (("sentry-trace", trace), ("baggage", baggage)) if value
    }
    if not incoming:
        return
    context = propagation_context_from_headers(incoming)
    if context is None:
        return
    get_global_scope()._w().propagation_context = context
    get_isolation_scope()._w().propagation_context = context
