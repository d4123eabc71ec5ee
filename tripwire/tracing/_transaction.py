"""`Transaction`: the root span, which records its children and is sent when finished.

Only a sampled transaction records children, and at most `MAX_SPANS` of them; the
rest are counted and reported as lost (`buffer_overflow`), as are children still
running when the transaction finishes.
"""

from __future__ import annotations

import enum
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tripwire._clock import clock
from tripwire._deprecation import deprecated
from tripwire._ids import random as _random
from tripwire._log import logger
from tripwire.capture.layers import capture_event
from tripwire.capture.markers import PlainSpans
from tripwire.consts import DEFAULT_MAX_VALUE_LENGTH, SPANDATA
from tripwire.outcomes import DataCategory, DropReason
from tripwire.profiler._hooks import on_finish as profiler_on_finish
from tripwire.scope._current import get_client, get_current_scope
from tripwire.scope._scope import Scope
from tripwire.tracing._consts import MAX_SPANS, UNLABELED_TRANSACTION, TransactionSource
from tripwire.tracing._propagation import Baggage, PropagationContext, sample_rand_from_trace_id
from tripwire.tracing._sampling import downsample_factor, has_tracing_enabled
from tripwire.tracing._span import Span, _streaming, iso_timestamp

if TYPE_CHECKING:
    from datetime import datetime

    from tripwire._client_base import BaseClient


class Transaction(Span):
    """The root of a span tree: finishing it sends it, with its finished children."""

    __slots__ = (
        "_baggage",
        "_native",
        "_sample_rand",
        "_spans",
        "name",
        "parent_sampled",
        "sample_rate",
        "source",
    )

    # Rarely set: class-level defaults (see `Span`). A transaction continuing an
    # incoming trace is not in its parent's process (`transaction_from_context`).
    _contexts: dict[str, Any] | None = None
    _dropped: int = 0
    # How many children are recorded (`_experiments={"max_spans": N}`, else MAX_SPANS).
    _max_spans: int = MAX_SPANS
    _profile: Any = None
    _continuous_profile: Any = None

    def __init__(
        self,
        name: str = "",
        parent_sampled: bool | None = None,
        baggage: Baggage | None = None,
        source: str = TransactionSource.CUSTOM,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self._containing_transaction = self
        # Thread data is added by start_transaction, and only with tracing on: its
        # children look at it to know whether to record theirs.
        self._data = None
        self.name = name
        self.source = source
        self.parent_sampled = parent_sampled
        self.sample_rate: float | None = None
        self._baggage = baggage
        self._sample_rand: float | None = None
        # Started by start_transaction with the "sentry" instrumenter configured: its
        # children need not look at the `instrumenter` option (see Span.start_child).
        self._native = False
        # Recorded children: a list only once the transaction is sampled.
        self._spans: list[Span] | None = None

    def _init_root(self, op: str | None, name: str, origin: str) -> None:
        """Set every slot as `__init__` does with defaults (hot-path constructor)."""
        self._trace_id = None
        self._span_id = None
        self._parent_span_id = None
        self._parent = None
        self.sampled = None
        self.op = op
        self.description = None
        self._containing_transaction = self
        self._start = clock.now()
        self._end = None
        self.scope = None
        if origin != "manual":
            self.origin = origin
        self._data = None
        self._cm = None
        self.name = name
        self.source = TransactionSource.CUSTOM
        self.parent_sampled = None
        self.sample_rate = None
        self._baggage = None
        self._sample_rand = None
        self._native = False
        self._spans = None

    # -- recording ----------------------------------------------------------------------

    def init_span_recorder(self, maxlen: int = MAX_SPANS) -> None:
        """Start recording children, at most `maxlen` of them (start_transaction does it).

        Children beyond the limit are counted; the transaction reports them as lost
        and its `spans` get a `_meta` length annotation, as sentry_sdk 2.x.
        """
        if self._spans is None:
            self._spans = []
            if maxlen != MAX_SPANS:
                self._max_spans = maxlen

    def _record(self, span: Span) -> None:
        spans = self._spans
        if spans is None:
            return
        if len(spans) < self._max_spans:
            spans.append(span)
        else:
            self._dropped += 1

    # -- context manager ------------------------------------------------------------------

    def __enter__(self) -> Transaction:
        if self.sampled is None and _streaming():
            # Not started (by start_transaction) under span streaming: never the scope's
            # span, as sentry_sdk 2.75's; discarded on exit.
            return self
        scope = self.scope
        if scope is None:
            scope = get_current_scope()
        data = scope._d if scope._mine else scope._w()
        self._cm = (scope, data.span)
        # What the `Scope.span` setter does: the scope's events are named after us.
        data.span = self
        name = self.name
        if name:
            data.transaction = name
            source = self.source
            if source:
                data.transaction_info = {"source": source}
        return self

    # -- identity and sampling ------------------------------------------------------------

    @property
    def containing_transaction(self) -> Transaction:
        """The transaction itself."""
        return self

    def _get_sample_rand(self) -> float:
        rand = self._sample_rand
        if rand is None:
            baggage = self._baggage
            if baggage is not None:
                # The trace's own sample_rand, when the baggage carries a valid one.
                rand = baggage._sample_rand()
                if rand is not None:
                    self._sample_rand = rand
                    return rand
            if (
                baggage is None
                and self.parent_sampled is None
                and self._parent_span_id is None
                and self._trace_id is None
            ):
                # A trace this service heads: any uniform number will do, and it travels
                # with the trace from here on.
                rand = self._sample_rand = int(_random() * 1_000_000) / 1_000_000
                return rand
            # Derived from the trace id, as sentry_sdk does, so that every service that
            # continues the trace without a sample_rand picks the same one.
            rand = self._sample_rand = sample_rand_from_trace_id(self.trace_id)
        return rand

    def get_baggage(self) -> Baggage:
        """The trace's baggage; the first time this service makes its entries, they freeze."""
        baggage = self._baggage
        if baggage is None or baggage.mutable:
            baggage = self._baggage = Baggage.populate_from_transaction(self)
        return baggage

    # -- data -------------------------------------------------------------------------------

    def set_context(self, key: str, value: dict[str, Any]) -> None:
        """Set a context sent with this transaction (under `contexts.<key>`)."""
        contexts = self._contexts
        if contexts is None:
            contexts = self._contexts = {}
        contexts[key] = value

    def get_trace_context(self) -> dict[str, Any]:
        """The `contexts.trace` of an error captured in this transaction: with all of its
        data (a response status, say), not only the thread, as sentry_sdk."""
        rv = super().get_trace_context()
        data = self._data
        if data:
            rv["data"] = dict(data)
        return rv

    def set_http_status(self, http_status: int) -> None:
        """Record an HTTP status code: span status, data, tag and the `response` context."""
        super().set_http_status(http_status)
        self.set_context("response", {"status_code": http_status})

    # -- finish ---------------------------------------------------------------------------

    def finish(
        self,
        scope: Any = None,
        end_timestamp: datetime | float | None = None,
        *,
        hub: Any = None,
    ) -> str | None:
        """Finish the transaction and send it with its finished children.

        Args:
            scope: The scope whose data goes with it (default: the current scope); a
                Hub is accepted as in sentry_sdk 1.x.
            end_timestamp: When it ended (default: now).
            hub: Accepted for sentry_sdk 1.x compatibility.

        Returns:
            The event id if the transaction was handed to the transport, else None.
        """
        if self._end is not None:
            return None
        if hub is not None:
            deprecated("Transaction.finish(hub=...) is deprecated: pass scope= instead")
            scope = hub
        if scope is not None and type(scope) is not Scope and _is_hub(scope):
            deprecated("passing a Hub to Transaction.finish is deprecated: pass a Scope")
            scope = getattr(scope, "scope", None)
        Span.finish(self, scope, end_timestamp)
        try:
            return self._send(scope)
        except Exception:
            logger.debug("sending the transaction failed", exc_info=True)
            return None

    def _send(self, scope: Any) -> str | None:
        profile_item = None
        if self._profile is not None or self._continuous_profile is not None:
            profile_item = profiler_on_finish(self)
        if not self.sampled:
            client = get_client()
            if client.is_active():
                _record_unsampled(client, self)
            return None
        if not isinstance(scope, Scope):
            scope = self.scope if self.scope is not None else get_current_scope()
        client = scope.get_client()
        if not client.is_active():
            return None
        event = self._event(client)
        hint = None
        if profile_item is not None:  # the `profile` item goes in the same envelope
            profile_item.event, profile_item.options = event, client.options
            hint = {"attachments": [profile_item]}
        return capture_event(scope, event, hint, None, {}, built_by_sdk=True)

    def _event(self, client: BaseClient) -> dict[str, Any]:
        if not self.name:
            self.name = UNLABELED_TRANSACTION
        recorded = self._spans or []
        finished = [span._wire() for span in recorded if span._end is not None]
        lost = len(recorded) - len(finished) + self._dropped
        limit = getattr(client, "_max_value_length", None)
        max_chars = (DEFAULT_MAX_VALUE_LENGTH if limit is None else max(limit, 0)) // 4
        if all(_span_is_plain(span, max_chars) for span in recorded if span._end is not None):
            finished = PlainSpans(finished)
        trace = self.get_trace_context()
        data = self._data
        if data:
            trace["data"] = dict(data)
        contexts = dict(self._contexts) if self._contexts else {}
        contexts["trace"] = trace
        if data and SPANDATA.PROFILER_ID in data:
            contexts["profile"] = {"profiler_id": data[SPANDATA.PROFILER_ID]}
        source = self.source
        end = self._end
        event: dict[str, Any] = {
            "type": "transaction",
            "transaction": self.name,
            "transaction_info": {
                "source": source.value if isinstance(source, enum.Enum) else source
            },
            "contexts": contexts,
            "tags": dict(self._tags) if self._tags else {},
            "timestamp": iso_timestamp(end if end is not None else self._start),
            "start_timestamp": iso_timestamp(self._start),
            "spans": finished,
            "measurements": dict(self._measurements) if self._measurements else {},
        }
        if lost:
            client.outcomes.record(DropReason.BUFFER_OVERFLOW, DataCategory.SPAN, lost)
            event["_meta"] = {"spans": {"": {"len": len(recorded) + self._dropped}}}
        return event

    # -- serialization ----------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """The transaction as a dict (what traces_sampler sees as `transaction_context`)."""
        rv = super().to_json()
        rv["name"] = self.name
        rv["source"] = self.source
        rv["sampled"] = self.sampled
        return rv

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__}(name={self.name!r}, op={self.op!r},"
            f" trace_id={self.trace_id!r}, span_id={self.span_id!r},"
            f" parent_span_id={self.parent_span_id!r}, sampled={self.sampled!r},"
            f" source={self.source!r}, origin={self.origin!r})>"
        )


def _is_hub(value: Any) -> bool:
    hub_module = sys.modules.get("tripwire.hub")
    hub_class = getattr(hub_module, "Hub", None)
    return hub_class is not None and isinstance(value, hub_class)


# Ints well inside what the serializer keeps as numbers.
_INT_BOUND = 1 << 256


def _span_is_plain(span: Span, max_chars: int) -> bool:
    """Whether the serializer would leave `span._wire()` exactly as it is (cheap, safe)."""
    for value in (span.op, span.description, span.origin, span.status, span._span_id):
        if value is not None and (type(value) is not str or len(value) > max_chars):
            return False
    for bag in (span._tags, span._data, span._measurements, span._flags):
        if bag and not _plain_dict(bag, max_chars, 0):
            return False
    return type(span._trace_id) is str or span._trace_id is None


def _plain_dict(bag: dict[Any, Any], max_chars: int, depth: int) -> bool:
    for key, value in bag.items():
        if type(key) is not str or len(key) > max_chars:
            return False
        t = type(value)
        if t is str:
            if len(value) > max_chars:
                return False
        elif t is int:
            if not -_INT_BOUND < value < _INT_BOUND:
                return False
        elif t is float:
            if value - value != 0.0:  # inf or nan
                return False
        elif t is dict:
            if depth >= 2 or not _plain_dict(value, max_chars, depth + 1):
                return False
        elif t is list:
            # Short lists of plain scalars (redis `cache.key`, `redis.commands`): the
            # serializer keeps them as they are. Not tuples: it turns those into lists,
            # which a before_send_transaction hook would see.
            if len(value) > _MAX_PLAIN_ITEMS or not _plain_items(value, max_chars):
                return False
        elif t is not bool and value is not None:
            return False
    return True


# Sequences longer than this go through the serializer (it bounds them).
_MAX_PLAIN_ITEMS = 16


def _plain_items(items: list[Any], max_chars: int) -> bool:
    for value in items:
        t = type(value)
        if t is str:
            if len(value) > max_chars:
                return False
        elif t is int:
            if not -_INT_BOUND < value < _INT_BOUND:
                return False
        elif t is float:
            if value - value != 0.0:
                return False
        elif t is not bool and value is not None:
            return False
    return True


def _record_unsampled(client: BaseClient, transaction: Transaction) -> None:
    """An unsampled transaction is a loss the server hears about (if tracing is on)."""
    if transaction.sampled is None:
        logger.debug("transaction discarded: not started with start_transaction")
        return
    if not has_tracing_enabled(client.options):
        return
    reason = _BACKPRESSURE if downsample_factor(client) > 0 else _SAMPLE_RATE
    outcomes = client.outcomes
    outcomes.record(reason, _TRANSACTION)
    outcomes.record(reason, _SPAN)


# Enum members read once (a member lookup on the class is a slow path of `enum`).
_BACKPRESSURE = DropReason.BACKPRESSURE
_SAMPLE_RATE = DropReason.SAMPLE_RATE
_TRANSACTION = DataCategory.TRANSACTION
_SPAN = DataCategory.SPAN


def transaction_from_context(
    context: PropagationContext,
    op: str | None = None,
    name: str | None = None,
    source: str | None = None,
    origin: str = "manual",
    **kwargs: Any,
) -> Transaction:
    """An unstarted transaction continuing `context`'s trace."""
    if kwargs:
        transaction = Transaction(op=op, name=name or "", origin=origin, **kwargs)
    else:
        # What Transaction(...) would do, without its keyword handling: this runs
        # for every incoming request.
        transaction = Transaction.__new__(Transaction)
        transaction._init_root(op, name or "", origin)
    transaction.same_process_as_parent = False
    transaction._trace_id = context.trace_id
    transaction._parent_span_id = context.parent_span_id
    transaction.parent_sampled = context.parent_sampled
    transaction._baggage = context.baggage
    transaction.source = source or TransactionSource.CUSTOM
    transaction._sample_rand = context.sample_rand
    return transaction


def transaction_from_headers(headers: Mapping[str, Any], **kwargs: Any) -> Transaction:
    """An unstarted transaction continuing the trace in `headers` (or a new trace)."""
    context = PropagationContext.from_incoming_data(headers) or PropagationContext()
    return transaction_from_context(context, **kwargs)
