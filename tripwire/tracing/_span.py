"""`Span`: timing of one block of code, and `NoOpSpan`, which records nothing.

Spans are cheap when nobody will read them: ids are generated on first read (an
unsampled span that nobody asks for headers never makes one), tags and data dicts
are created on first write, and thread data is captured only when tracing is on.
Timestamps are epoch floats from the SDK clock; the `datetime` views are built on
demand.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from threading import Thread, current_thread, local
from typing import TYPE_CHECKING, Any

from tripwire._clock import clock, format_timestamp, to_epoch
from tripwire._deprecation import deprecated
from tripwire._ids import ids
from tripwire.options import span_streaming_enabled
from tripwire.profiler import _state as _profiler_state
from tripwire.profiler._sampler import native_ident
from tripwire.scope._current import get_client, get_current_scope
from tripwire.scope._scope import Scope
from tripwire.tracing._consts import (
    BAGGAGE_HEADER_NAME,
    INSTRUMENTER,
    SENTRY_TRACE_HEADER_NAME,
    SPANDATA,
    SPANSTATUS,
    get_span_status_from_http_code,
)
from tripwire.tracing._propagation import EnvironHeaders, extract_sentrytrace_data

if TYPE_CHECKING:
    from tripwire.scope._scope import Scope
    from tripwire.tracing._propagation import Baggage
    from tripwire.tracing._transaction import Transaction

# start_child keyword arguments handled without going through Span.__init__ (not
# `description`: it is deprecated, and the slow path warns about it).
_FAST_CHILD_KWARGS = frozenset({"op", "name", "origin", "scope"})
# Feature flags kept per span (as sentry_sdk 2.x).
_MAX_FLAGS = 10


_AI_OPS = ("ai.", "gen_ai.")
_GEN_AI_OPERATION = "gen_ai.operation.name"


def _is_error(exc: BaseException) -> bool:
    """Whether an exception leaving a `with span:` block marks the span as failed."""
    return not (isinstance(exc, SystemExit) and exc.code in (0, None))


# (second, "YYYY-MM-DDTHH:MM:SS") of the last timestamp formatted: the spans of one
# transaction mostly fall within the same second. Replaced as a whole (thread-safe).
_last_second: tuple[int, str] = (-1, "")


def iso_timestamp(value: float) -> str:
    """`format_timestamp` for epoch floats, reusing the date-time part within a second."""
    global _last_second
    seconds = int(value)
    micros = round((value - seconds) * 1_000_000)
    if micros >= 1_000_000:
        seconds, micros = seconds + 1, micros - 1_000_000
    last = _last_second
    if last[0] == seconds:
        head = last[1]
    else:
        head = format_timestamp(seconds)[:19]
        _last_second = (seconds, head)
    return f"{head}.{micros:06d}Z"


def _as_datetime(value: float) -> datetime:
    return datetime.fromtimestamp(value, timezone.utc)


# Per thread: (its id as text, its Thread object, whether its name is the stdlib's
# `_name`), made on the thread's first span. The name is read each time (a thread may
# be renamed).
_this_thread = local()
_THREAD_ID = SPANDATA.THREAD_ID
_THREAD_NAME = SPANDATA.THREAD_NAME


def _thread_data() -> dict[str, Any]:
    try:
        ident, thread, plain = _this_thread.meta
    except AttributeError:
        # The OS thread's id, also under gevent (where get_ident names the greenlet):
        # the profiler samples OS threads, and spans are matched to its samples by it.
        thread = current_thread()
        # `plain`: the class keeps the stdlib `name` property, so `_name` is what it
        # returns (read directly: a property call less for every span).
        plain = type(thread).name is Thread.name and isinstance(getattr(thread, "_name", None), str)
        ident, thread, plain = _this_thread.meta = (str(native_ident()), thread, plain)
    data = {_THREAD_ID: ident, _THREAD_NAME: thread._name if plain else thread.name}
    profiler_id = _profiler_state.profiler_id
    if profiler_id is not None:  # the continuous profiler runs: link the span to it
        data[SPANDATA.PROFILER_ID] = profiler_id
    return data


class Span:
    """A span: timing information of a block of code, possibly with child spans.

    Use `start_child` (or `tripwire.start_span`) rather than the constructor; as a
    context manager a span becomes the scope's active span and is finished on exit,
    with status "internal_error" if an exception leaves the block.
    """

    # Attributes every span sets live in slots. Rarely set ones are class-level
    # defaults, overridden in the instance `__dict__` when set: a span that never
    # gets tags or a status pays nothing for them (span creation is the hot path).
    __slots__ = (
        "__dict__",
        "_cm",
        "_containing_transaction",
        "_data",
        "_end",
        "_parent",
        "_parent_span_id",
        "_span_id",
        "_start",
        "_trace_id",
        "description",
        "op",
        "sampled",
        "scope",
    )

    hub: Any = None
    status: str | None = None
    origin: str = "manual"
    same_process_as_parent: bool = True
    _tags: dict[str, Any] | None = None
    _measurements: dict[str, Any] | None = None
    _flags: dict[str, bool] | None = None
    # Not a span of span streaming (`StreamedSpan` says True): one test for either kind.
    _streamed: bool = False

    def __init__(
        self,
        trace_id: str | None = None,
        span_id: str | None = None,
        parent_span_id: str | None = None,
        same_process_as_parent: bool = True,
        sampled: bool | None = None,
        op: str | None = None,
        description: str | None = None,
        hub: Any = None,
        status: str | None = None,
        containing_transaction: Transaction | None = None,
        start_timestamp: datetime | float | None = None,
        scope: Scope | None = None,
        origin: str = "manual",
        name: str | None = None,
    ) -> None:
        # Unknown keyword arguments raise TypeError, as in sentry_sdk 2.x.
        self._trace_id = trace_id
        self._span_id = span_id
        self._parent_span_id = parent_span_id
        self._parent: Span | None = None
        if same_process_as_parent is not type(self).same_process_as_parent:
            self.same_process_as_parent = same_process_as_parent
        self.sampled = sampled
        self.op = op
        self.description = name or description
        if hub is not None:
            deprecated("Span(hub=...) is deprecated: pass scope= instead")
            self.hub = hub
        if status is not None:
            self.status = status
        self._containing_transaction = containing_transaction
        start = to_epoch(start_timestamp) if start_timestamp is not None else None
        self._start: float = start if start is not None else clock.now()
        self._end: float | None = None
        self.scope = scope
        if origin != "manual":
            self.origin = origin
        self._data: dict[str, Any] | None = _thread_data()
        self._cm: tuple[Scope, Any] | None = None

    # -- identity ------------------------------------------------------------------------

    @property
    def trace_id(self) -> str:
        """The trace id (the parent's; a new one for a root span), made on first read."""
        trace_id = self._trace_id
        if trace_id is None:
            parent = self._parent
            trace_id = self._trace_id = parent.trace_id if parent is not None else ids.trace_id()
        return trace_id

    @trace_id.setter
    def trace_id(self, value: str) -> None:
        self._trace_id = value

    @property
    def span_id(self) -> str:
        """This span's id, made on first read."""
        span_id = self._span_id
        if span_id is None:
            span_id = self._span_id = ids.span_id()
        return span_id

    @span_id.setter
    def span_id(self, value: str) -> None:
        self._span_id = value

    @property
    def parent_span_id(self) -> str | None:
        """The parent span's id (None for a root span)."""
        parent_span_id = self._parent_span_id
        if parent_span_id is None and self._parent is not None:
            parent_span_id = self._parent_span_id = self._parent.span_id
        return parent_span_id

    @parent_span_id.setter
    def parent_span_id(self, value: str | None) -> None:
        self._parent_span_id = value
        self._parent = None

    @property
    def name(self) -> str | None:
        """The span's name (its description)."""
        return self.description

    @name.setter
    def name(self, value: str | None) -> None:
        self.description = value

    @property
    def containing_transaction(self) -> Transaction | None:
        """The transaction this span belongs to (None for a span started outside one)."""
        return self._containing_transaction

    # -- time --------------------------------------------------------------------------

    @property
    def start_timestamp(self) -> datetime:
        """When the span started (UTC)."""
        return _as_datetime(self._start)

    @start_timestamp.setter
    def start_timestamp(self, value: datetime | float) -> None:
        epoch = to_epoch(value)
        if epoch is not None:
            self._start = epoch

    @property
    def timestamp(self) -> datetime | None:
        """When the span finished (UTC), None while it runs."""
        end = self._end
        return None if end is None else _as_datetime(end)

    @timestamp.setter
    def timestamp(self, value: datetime | float | None) -> None:
        self._end = to_epoch(value) if value is not None else None

    # -- context manager ----------------------------------------------------------------

    def __enter__(self) -> Span:
        if self.sampled is None and self._containing_transaction is not None and _streaming():
            # A child of a transaction the user made and never started, under span
            # streaming: never the scope's span, as sentry_sdk 2.75's; finished on exit.
            return self
        scope = self.scope
        if scope is None:
            scope = get_current_scope()
        # The scope's record (`_d`) is read and written directly: this is the hot path.
        self._cm = (scope, scope._d.span)
        (scope._d if scope._mine else scope._w()).span = self
        return self

    def __exit__(self, ty: Any, value: Any, tb: Any) -> None:
        if value is not None and _is_error(value):
            self.status = SPANSTATUS.INTERNAL_ERROR
        cm = self._cm
        if cm is None:
            self.finish()
            return
        scope, old_span = cm
        self._cm = None
        if type(self) is Span:
            if self._end is None:  # Span.finish, inlined: this runs for every span
                end = clock.now()
                self._end = end if end >= self._start else self._start
                if Scope.conversations_used:
                    self._add_conversation_id(scope)
        else:
            self.finish(scope)
        (scope._d if scope._mine else scope._w()).span = old_span

    # -- children ----------------------------------------------------------------------

    def start_child(self, instrumenter: str = INSTRUMENTER.SENTRY, **kwargs: Any) -> Span:
        """Start a child span; it inherits the trace, the sampling decision and the transaction.

        Takes the keyword arguments of `Span` (op, name, origin, ...; `description` is
        deprecated). With the `instrumenter` option set to something else than
        `instrumenter` ("sentry" by default), returns a NoOpSpan, as sentry_sdk 2.x.
        """
        transaction = self._containing_transaction
        if (
            instrumenter != INSTRUMENTER.SENTRY or transaction is None or not transaction._native
        ) and _instrumenter_mismatch(instrumenter):
            return NoOpSpan()
        if _FAST_CHILD_KWARGS.issuperset(kwargs):
            return new_child(
                self,
                transaction,
                kwargs.get("scope", self.scope),
                kwargs.get("op"),
                kwargs.get("name"),
                kwargs.get("origin", "manual"),
            )
        if kwargs.get("description") is not None:
            deprecated("the `description` argument of start_child is deprecated: use `name`")
        kwargs.setdefault("scope", self.scope)
        kwargs.setdefault("sampled", self.sampled)
        kwargs["containing_transaction"] = transaction
        child = Span(**kwargs)
        if child._trace_id is None:
            child._parent = self
        elif child._parent_span_id is None:
            child._parent_span_id = self.span_id
        if transaction is not None and transaction._spans is not None:
            transaction._record(child)
        return child

    def new_span(self, **kwargs: Any) -> Span:
        """Deprecated: use `start_child`."""
        return self.start_child(**kwargs)

    # -- data --------------------------------------------------------------------------

    def set_tag(self, key: str, value: Any) -> None:
        """Set a tag on the span."""
        tags = self._tags
        if tags is None:
            tags = self._tags = {}
        tags[key] = value

    def set_data(self, key: str, value: Any) -> None:
        """Set a data attribute on the span."""
        data = self._data
        if data is None:
            data = self._data = {}
        data[key] = value

    def update_data(self, data: Mapping[str, Any]) -> None:
        """Set several data attributes."""
        own = self._data
        if own is None:
            own = self._data = {}
        own.update(data)

    def set_flag(self, flag: str, result: bool) -> None:
        """Record a feature flag evaluation (the first 10 flags are kept)."""
        flags = self._flags
        if flags is None:
            flags = self._flags = {}
        if flag in flags or len(flags) < _MAX_FLAGS:
            flags[flag] = result

    def set_status(self, value: str) -> None:
        """Set the span's status (see `SPANSTATUS`)."""
        self.status = value

    def set_measurement(self, name: str, value: float, unit: str = "") -> None:
        """Deprecated (as in sentry_sdk 2.28+; use `set_data`): record a measurement."""
        deprecated("set_measurement() is deprecated: use set_data() instead")
        measurements = self._measurements
        if measurements is None:
            measurements = self._measurements = {}
        measurements[name] = {"value": value, "unit": unit}

    def set_thread(self, thread_id: int | None, thread_name: str | None) -> None:
        """Record the thread the span ran on."""
        if thread_id is not None:
            self.set_data(SPANDATA.THREAD_ID, str(thread_id))
            if thread_name is not None:
                self.set_data(SPANDATA.THREAD_NAME, thread_name)

    def update_active_thread(self) -> None:
        """Record the calling thread as the span's thread."""
        self.set_thread(native_ident(), current_thread().name)

    def set_profiler_id(self, profiler_id: str | None) -> None:
        """Record the continuous profiler's id."""
        if profiler_id is not None:
            self.set_data(SPANDATA.PROFILER_ID, profiler_id)

    def get_profile_context(self) -> dict[str, Any] | None:
        """The profile context of a span with a continuous profiler id."""
        profiler_id = (self._data or {}).get(SPANDATA.PROFILER_ID)
        return {"profiler_id": profiler_id} if profiler_id is not None else None

    def set_http_status(self, http_status: int) -> None:
        """Record an HTTP status code and set the matching span status."""
        self.set_tag("http.status_code", str(http_status))
        self.set_data(SPANDATA.HTTP_STATUS_CODE, http_status)
        self.status = get_span_status_from_http_code(http_status)

    def is_success(self) -> bool:
        """Whether the status is "ok"."""
        return self.status == SPANSTATUS.OK

    # -- finish ------------------------------------------------------------------------

    def finish(
        self,
        scope: Any = None,
        end_timestamp: datetime | float | None = None,
        *,
        hub: Any = None,
    ) -> str | None:
        """Set the end timestamp (now unless given); a finished span stays as it is.

        Returns:
            None (the type matches `Transaction.finish`, which returns the event id).
        """
        if self._end is not None:
            return None
        end = to_epoch(end_timestamp) if end_timestamp is not None else None
        if end is None:
            end = clock.now()
            if end < self._start:  # the wall clock went back: keep durations >= 0
                end = self._start
        self._end = end
        if Scope.conversations_used:
            self._add_conversation_id(scope)
        return None

    def _add_conversation_id(self, scope: Any) -> None:
        # As sentry_sdk: an AI span carries the conversation id of the scope it ends in.
        op = self.op
        if (op is not None and op.startswith(_AI_OPS)) or _GEN_AI_OPERATION in (self._data or ()):
            conversation_id = (scope or get_current_scope()).get_conversation_id()
            if conversation_id:
                self.set_data("gen_ai.conversation.id", conversation_id)

    # -- propagation -------------------------------------------------------------------

    def to_traceparent(self) -> str:
        """The `sentry-trace` header value for requests made inside this span."""
        sampled = self.sampled
        if sampled is True:
            return f"{self.trace_id}-{self.span_id}-1"
        if sampled is False:
            return f"{self.trace_id}-{self.span_id}-0"
        return f"{self.trace_id}-{self.span_id}"

    def to_baggage(self) -> Baggage | None:
        """The baggage of the containing transaction, if any."""
        transaction = self._containing_transaction
        return transaction.get_baggage() if transaction is not None else None

    def iter_headers(self) -> Iterator[tuple[str, str]]:
        """The `sentry-trace` and `baggage` headers of this span.

        A span outside any transaction yields nothing (as sentry_sdk 2.x): it would
        become the root of a trace that is never sent.
        """
        if self._containing_transaction is None:
            return
        yield SENTRY_TRACE_HEADER_NAME, self.to_traceparent()
        baggage = self.to_baggage()
        if baggage is not None:
            value = baggage.serialize()
            if value:
                yield BAGGAGE_HEADER_NAME, value

    @classmethod
    def continue_from_environ(cls, environ: Mapping[str, Any], **kwargs: Any) -> Transaction:
        """A transaction continuing the trace in a WSGI/ASGI environ's headers."""
        return cls.continue_from_headers(EnvironHeaders(environ), **kwargs)

    @classmethod
    def continue_from_headers(cls, headers: Mapping[str, Any], **kwargs: Any) -> Transaction:
        """A transaction continuing the trace in `sentry-trace`/`traceparent` and `baggage`."""
        # Intra-package: Transaction subclasses Span, so its module imports this one.
        from tripwire.tracing._transaction import transaction_from_headers

        return transaction_from_headers(headers, **kwargs)

    @classmethod
    def from_traceparent(cls, traceparent: str | None, **kwargs: Any) -> Transaction | None:
        """Deprecated: a transaction continuing a `sentry-trace` value (None if invalid)."""
        if extract_sentrytrace_data(traceparent) is None:
            return None
        return cls.continue_from_headers({SENTRY_TRACE_HEADER_NAME: traceparent}, **kwargs)

    # -- serialization -----------------------------------------------------------------

    def get_trace_context(self) -> dict[str, Any]:
        """The `contexts.trace` of an error captured while this span is active."""
        rv: dict[str, Any] = {
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "parent_span_id": self.parent_span_id,
            "op": self.op,
            "description": self.description,
            "origin": self.origin,
        }
        if self.status:
            rv["status"] = self.status
        transaction = self._containing_transaction
        if transaction is not None:
            rv["dynamic_sampling_context"] = transaction.get_baggage().dynamic_sampling_context()
        data = self._data
        if data:
            thread = {k: data[k] for k in (SPANDATA.THREAD_ID, SPANDATA.THREAD_NAME) if k in data}
            if thread:
                rv["data"] = thread
        return rv

    def to_json(self) -> dict[str, Any]:
        """The span as a dict (timestamps as datetimes, as sentry_sdk returns them)."""
        rv = self._json_head()
        rv["start_timestamp"] = self.start_timestamp
        rv["timestamp"] = self.timestamp
        self._json_tail(rv)
        return rv

    def _wire(self) -> dict[str, Any]:
        """The span as it goes into a transaction event (timestamps as strings)."""
        rv = self._json_head()
        rv["start_timestamp"] = iso_timestamp(self._start)
        end = self._end
        rv["timestamp"] = iso_timestamp(end) if end is not None else None
        self._json_tail(rv)
        return rv

    def _json_head(self) -> dict[str, Any]:
        return {
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "parent_span_id": self.parent_span_id,
            "same_process_as_parent": self.same_process_as_parent,
            "op": self.op,
            "description": self.description,
        }

    def _json_tail(self, rv: dict[str, Any]) -> None:
        rv["origin"] = self.origin
        status = self.status
        if status:
            rv["status"] = status
        if self._measurements:
            rv["measurements"] = dict(self._measurements)
        tags = self._tags
        if status:
            tags = {**tags, "status": status} if tags else {"status": status}
        if tags:
            rv["tags"] = dict(tags)
        data = self._data
        flags = self._flags
        if flags:
            data = {**flags, **data} if data else dict(flags)
        if data:
            rv["data"] = dict(data)

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__}(op={self.op!r}, description:{self.description!r},"
            f" trace_id={self.trace_id!r}, span_id={self.span_id!r},"
            f" parent_span_id={self.parent_span_id!r}, sampled={self.sampled!r},"
            f" origin={self.origin!r})>"
        )


_new_span = object.__new__


def new_child(
    parent: Span,
    transaction: Transaction | None,
    scope: Scope | None,
    op: str | None,
    description: str | None,
    origin: str,
) -> Span:
    """A child of `parent`, recorded by `transaction` (the one place children are made).

    What `Span.__init__` does for a child, without its keyword handling: this runs for
    every span (`Span.start_child` and `tripwire.start_span` both come here).
    """
    span = _new_span(Span)
    span._trace_id = None
    span._span_id = None
    span._parent_span_id = None
    span._parent = parent
    span.sampled = parent.sampled
    span.op = op
    span.description = description
    span._containing_transaction = transaction
    span._start = clock.now()
    span._end = None
    span.scope = scope
    if origin != "manual":
        span.origin = origin
    span._cm = None
    if transaction is None:
        span._data = None
    else:
        # Thread data only under a transaction started with tracing on (it has data).
        span._data = None if transaction._data is None else _thread_data()
        if transaction._spans is not None:
            transaction._record(span)
    return span


def _streaming() -> bool:
    """Whether the client streams spans (`trace_lifecycle="stream"`)."""
    return span_streaming_enabled(get_client().options)


def _instrumenter_mismatch(instrumenter: str) -> bool:
    """Whether `instrumenter` is not the one configured (the `instrumenter` option)."""
    return instrumenter != (get_client().options.get("instrumenter") or INSTRUMENTER.SENTRY)


class NoOpSpan(Span):
    """A span that records nothing: every method is accepted and ignored."""

    __slots__ = ()

    # What the transaction-model API gives under span streaming: it never becomes the
    # scope's span, as sentry_sdk 2.75's spans there (nor do its children).
    _inert: bool = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(sampled=False)

    def __repr__(self) -> str:
        return "<NoOpSpan>"

    def __enter__(self) -> NoOpSpan:
        # It becomes the scope's span for the block, as in sentry_sdk 2.x (so children
        # started inside are no-ops too); it never speaks for the trace (see _api).
        if not self._inert:
            Span.__enter__(self)
        return self

    @property
    def containing_transaction(self) -> Transaction | None:
        """None: a no-op span belongs to no transaction."""
        return None

    def start_child(self, instrumenter: str = INSTRUMENTER.SENTRY, **kwargs: Any) -> NoOpSpan:
        """Another NoOpSpan."""
        child = NoOpSpan()
        if self._inert:
            child._inert = True
        return child

    def to_traceparent(self) -> str:
        """An empty string."""
        return ""

    def to_baggage(self) -> Baggage | None:
        """None."""
        return None

    def get_baggage(self) -> Baggage | None:
        """None."""
        return None

    def iter_headers(self) -> Iterator[tuple[str, str]]:
        """Nothing."""
        return iter(())

    def set_tag(self, key: str, value: Any) -> None:
        """Ignored."""

    def set_data(self, key: str, value: Any) -> None:
        """Ignored."""

    def update_data(self, data: Mapping[str, Any]) -> None:
        """Ignored."""

    def set_flag(self, flag: str, result: bool) -> None:
        """Ignored."""

    def set_status(self, value: str) -> None:
        """Ignored."""

    def set_http_status(self, http_status: int) -> None:
        """Ignored."""

    def set_measurement(self, name: str, value: float, unit: str = "") -> None:
        """Ignored."""

    def set_context(self, key: str, value: dict[str, Any]) -> None:
        """Ignored."""

    def is_success(self) -> bool:
        """True."""
        return True

    def to_json(self) -> dict[str, Any]:
        """An empty dict."""
        return {}

    def get_trace_context(self) -> dict[str, Any]:
        """An empty dict."""
        return {}

    def get_profile_context(self) -> dict[str, Any] | None:
        """None."""
        return None

    def finish(
        self,
        scope: Any = None,
        end_timestamp: datetime | float | None = None,
        *,
        hub: Any = None,
    ) -> str | None:
        """Nothing to finish."""
        return None
