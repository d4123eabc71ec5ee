"""Span streaming (``trace_lifecycle="stream"``): spans sent one by one as they end.

`StreamedSpan` is sentry_sdk 2.75's span of the streaming model: a name, attributes
(typed values, see `format_attribute`), a status (``ok`` / ``error``), and a segment
(the root span of this service's part of the trace, which carries the SDK's segment
attributes and decides sampling for all its children). A span ends with `end()` (or
its ``with`` block) and is queued right away on the client's span batcher
(`_span_stream`), whatever its segment is doing. Spans are kept in the scope's one
span slot, as sentry_sdk does, so events, logs, metrics and outgoing requests made
inside a streamed span see it as the active span.

Unsampled and ignored spans are `NoOpStreamedSpan`s: they keep the trace (ids,
propagation) and record an outcome when they end, but send nothing.
"""

from __future__ import annotations

import re
import sys
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from datetime import datetime, timezone
from enum import Enum
from typing import TYPE_CHECKING, Any, Optional, Union

from tripwire._clock import clock
from tripwire._ids import ids
from tripwire._log import logger
from tripwire.logger import format_attribute
from tripwire.profiler import _state as _profiler_state
from tripwire.profiler import continuous_profiler as _cp
from tripwire.scope._current import get_client, get_current_scope, get_isolation_scope
from tripwire.tracing._consts import BAGGAGE_HEADER_NAME, SENTRY_TRACE_HEADER_NAME
from tripwire.tracing._propagation import (
    Baggage,
    PropagationContext,
    _options_into,
    format_sample_rand,
    sample_rand_from_trace_id,
)
from tripwire.tracing._sampling import (
    downsample_factor,
    has_span_streaming_enabled,
    has_tracing_enabled,
    to_rate,
)
from tripwire.tracing._span_stream import capture as _capture

if TYPE_CHECKING:
    from tripwire.scope._scope import Scope

Attributes = dict[str, Any]


class SpanStatus(str, Enum):
    """The status of a streamed span."""

    OK = "ok"
    ERROR = "error"

    def __str__(self) -> str:
        return self.value


_VALID_STATUSES = frozenset(status.value for status in SpanStatus)


class SegmentNameSource(str, Enum):
    """Where a segment's name comes from (``sentry.segment.name.source``)."""

    COMPONENT = "component"
    CUSTOM = "custom"
    ROUTE = "route"
    TASK = "task"
    URL = "url"
    VIEW = "view"

    def __str__(self) -> str:
        return self.value


# URLs are high-cardinality: a segment named by one stays out of the DSC.
LOW_QUALITY_SEGMENT_SOURCES = [SegmentNameSource.URL]

SOURCE_FOR_STYLE = {
    "endpoint": SegmentNameSource.COMPONENT,
    "function_name": SegmentNameSource.COMPONENT,
    "handler_name": SegmentNameSource.COMPONENT,
    "method_and_path_pattern": SegmentNameSource.ROUTE,
    "path": SegmentNameSource.URL,
    "route_name": SegmentNameSource.COMPONENT,
    "route_pattern": SegmentNameSource.ROUTE,
    "uri_template": SegmentNameSource.ROUTE,
    "url": SegmentNameSource.ROUTE,
}

# `parent_span` left out (None means "a new segment", so it cannot be the default).
DEFAULT_PARENT: Any = object()

_SOURCE_KEY = "sentry.segment.name.source"


# -- ignore_spans -----------------------------------------------------------------------------


def _ignore_rules(options: Mapping[str, Any]) -> Any:
    rules = options.get("ignore_spans")
    if rules is None:
        rules = (options.get("_experiments") or {}).get("ignore_spans")
    return rules


def _matches(rule: Any, value: Any) -> bool:
    if isinstance(rule, re.Pattern):
        return isinstance(value, str) and rule.fullmatch(value) is not None
    return bool(rule == value)


def is_ignored_span(name: str, attributes: Optional[Mapping[str, Any]]) -> bool:
    """Whether a span with `name` and (initial) `attributes` matches an ``ignore_spans`` rule.

    A rule is a string (the name, exactly), a compiled regex (the whole name), or a
    dict with ``name`` and/or ``attributes`` (each attribute matched the same way).
    """
    options = get_client().options
    if options.get("ignore_spans") is None and not options.get("_experiments"):
        return False
    rules = _ignore_rules(options)
    if not rules:
        return False
    for rule in rules:
        if isinstance(rule, (str, re.Pattern)):
            if _matches(rule, name):
                return True
        elif isinstance(rule, dict) and ("name" in rule or "attributes" in rule):
            if "name" in rule and not _matches(rule["name"], name):
                continue
            wanted = rule.get("attributes")
            if wanted:
                found = attributes or {}
                if not all(
                    key in found and _matches(value, found[key]) for key, value in wanted.items()
                ):
                    continue
            return True
    return False


# -- sampling ----------------------------------------------------------------------------------


def _sample(
    name: str,
    attributes: Optional[Mapping[str, Any]],
    scope: Scope,
    custom: Optional[Mapping[str, Any]] = None,
    context: Optional[PropagationContext] = None,
) -> tuple[Optional[bool], Optional[float], Optional[float], Optional[str]]:
    """(sampled, sample rate, sample_rand, reason if not sampled) for a new segment.

    `context`: the trace continued (by default the one in force for `scope`).
    """
    client = get_client()
    options = client.options
    if context is None:
        context = scope.get_active_propagation_context()
    if not has_tracing_enabled(options):
        return context.parent_sampled, None, None, None
    rand = context.baggage._sample_rand() if context.baggage is not None else None
    if rand is None:
        rand = sample_rand_from_trace_id(context.trace_id)
    sampler = options.get("traces_sampler")
    if callable(sampler):
        data = dict(attributes) if attributes else {}
        sampling_context: dict[str, Any] = {
            "transaction_context": {
                "trace_id": context.trace_id,
                "span_id": None,
                "parent_span_id": context.parent_span_id,
                "op": data.get("sentry.op"),
                "name": name,
                "description": name,
                "start_timestamp": None,
                "timestamp": None,
                "source": data.get(_SOURCE_KEY),
                "sampled": None,
                "data": data,
            },
            "parent_sampled": context.parent_sampled,
        }
        if context.custom_sampling_context:
            sampling_context.update(context.custom_sampling_context)
        if custom:
            sampling_context.update(custom)
        raised: Any = object()
        rate: Any = client._run_user_hook(sampler, sampling_context, on_error=raised)
        if rate is raised:
            return False, None, None, "callback_error"
    elif context.parent_sampled is not None:
        rate = context.parent_sampled
    else:
        rate = options.get("traces_sample_rate")
        if rate is None and options.get("enable_tracing") is True:
            rate = 1.0
    valid = to_rate(rate)
    if valid is None:
        # An invalid traces_sample_rate was reported at init(): not again for every segment.
        reported = sampler is None and context.parent_sampled is None
        log = logger.debug if reported else logger.warning
        log("[Tracing] Discarding %s because of invalid sample rate.", name)
        return False, None, None, "sample_rate"
    if not valid:
        return False, 0.0, rand, "sample_rate"
    before = valid
    factor = downsample_factor(client)
    if factor:
        valid = valid / (2**factor)
        if not valid:
            return False, 0.0, None, "backpressure"
    if rand < valid:
        return True, valid, rand, None
    return False, valid, rand, "backpressure" if rand < before else "sample_rate"


# -- spans -------------------------------------------------------------------------------------


def _epoch(value: Any) -> Optional[float]:
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, (int, float)):
        return float(value)
    logger.debug("[Tracing] Failed to set end_timestamp. Using current time instead.")
    return None


_this_thread = threading.local()


def _thread_meta() -> tuple[str, str]:
    # The name as it is when the thread first makes a span (as `_span._thread_data`).
    return str(threading.get_ident()), threading.current_thread().name


def _datetime(value: float) -> datetime:
    return datetime.fromtimestamp(value, timezone.utc)


class StreamedSpan:
    """A span of the streaming model: timing, a name, attributes and a status.

    Started by `tripwire.traces.start_span` (never directly); a ``with`` block or
    `end()` ends it and queues it for sending. Spans started while an active span
    runs become its children; a span without a parent starts a segment.
    """

    __slots__ = (
        "_active",
        "_attributes",
        "_baggage",
        "_continuous_profile",
        "_end_timestamp",
        "_name",
        "_parent_sampled",
        "_parent_span_id",
        "_previous_span_on_scope",
        "_sample_rand",
        "_sample_rate",
        "_scope",
        "_segment",
        "_span_id",
        "_start_ns",
        "_start_timestamp",
        "_status",
        "_trace_id",
    )

    # Tells the scope (below tracing: no isinstance) that this is a streamed span.
    _streamed = True
    # An unsampled or ignored span (logs and metrics leave its span_id out).
    _noop = False

    def __init__(
        self,
        *,
        name: str,
        attributes: Optional[Attributes] = None,
        active: bool = True,
        scope: Scope,
        segment: Optional[StreamedSpan] = None,
        trace_id: Optional[str] = None,
        parent_span_id: Optional[str] = None,
        parent_sampled: Optional[bool] = None,
        baggage: Optional[Baggage] = None,
        sample_rate: Optional[float] = None,
        sample_rand: Optional[float] = None,
    ) -> None:
        self._name = name
        self._active = active
        attrs: Attributes = {"sentry.origin": "manual", "sentry.trace_lifecycle": "stream"}
        if attributes:
            for key, value in attributes.items():
                attrs[key] = value if value.__class__ in _PLAIN else format_attribute(value)
        try:
            ident, name_ = _this_thread.meta
        except AttributeError:
            ident, name_ = _this_thread.meta = _thread_meta()
        attrs["thread.id"] = ident
        attrs["thread.name"] = name_
        profiler_id = _profiler_state.profiler_id
        if profiler_id is not None:
            attrs["sentry.profiler_id"] = profiler_id
        self._attributes = attrs
        self._scope = scope
        self._segment = segment or self
        self._trace_id = trace_id
        self._span_id: Optional[str] = None
        self._parent_span_id = parent_span_id
        self._parent_sampled = parent_sampled
        self._baggage = baggage
        self._sample_rate = sample_rate
        self._sample_rand = sample_rand
        self._status = "ok"
        self._end_timestamp: Optional[float] = None
        self._continuous_profile: Any = None
        self._start_timestamp = clock.now()
        self._start_ns = time.perf_counter_ns()
        if segment is None:
            self._set_segment_attributes()
        if active:
            self._activate()

    def _set_segment_attributes(self) -> None:
        client = get_client()
        attrs = self._attributes
        attrs["sentry.platform"] = "python"
        attrs["process.command_args"] = format_attribute(sys.argv)
        attrs["sentry.sdk.integrations"] = sorted(getattr(client, "integrations", None) or ())
        if not attrs.get(_SOURCE_KEY):
            attrs[_SOURCE_KEY] = SegmentNameSource.CUSTOM.value
        dist = client.options.get("dist")
        if dist and "sentry.dist" not in attrs:
            attrs["sentry.dist"] = str(dist).strip()

    def __repr__(self) -> str:
        return (
            f"<{self.__class__.__name__}(name={self._name}, trace_id={self.trace_id},"
            f" span_id={self.span_id}, parent_span_id={self._parent_span_id},"
            f" active={self._active})>"
        )

    # -- lifecycle -------------------------------------------------------------------------------

    def __enter__(self) -> StreamedSpan:
        return self

    def __exit__(self, ty: Any, value: Any, tb: Any) -> None:
        if self._end_timestamp is not None:
            return
        if value is not None and _is_error(value):
            self._status = "error"
        self._end()

    def end(self, end_timestamp: Optional[Union[float, datetime]] = None) -> None:
        """End the span (now, or at `end_timestamp`) and queue it for sending."""
        self._end(end_timestamp)

    def finish(self, end_timestamp: Optional[Union[float, datetime]] = None) -> None:
        """Deprecated: use `end()`."""
        warnings.warn(
            "span.finish() is deprecated. Use span.end() instead.",
            DeprecationWarning,
            stacklevel=2,
        )
        self.end(end_timestamp)

    def _activate(self) -> None:
        scope = self._scope
        self._previous_span_on_scope = scope._d.span
        if self._segment is self:
            scope.streamed_span = self  # also names the scope's events after the segment
        else:
            scope._w().span = self

    def _detach(self) -> None:
        try:
            previous = self._previous_span_on_scope
        except AttributeError:
            return
        del self._previous_span_on_scope
        try:
            self._scope._w().span = previous
        except Exception:
            logger.debug("could not restore the scope's span", exc_info=True)

    def _end(self, end_timestamp: Optional[Union[float, datetime]] = None) -> None:
        if self._end_timestamp is not None:
            return
        claim = self._continuous_profile
        if claim is not None:  # a segment's hold on the "trace" lifecycle profiler
            self._continuous_profile = None
            claim.stop()
        self._detach()
        segment = self._segment
        attrs = self._attributes
        attrs["sentry.segment.id"] = segment._span_id or segment.span_id
        attrs["sentry.segment.name"] = segment._name
        if self._scope.conversations_used:
            self._add_conversation_id()
        end = _epoch(end_timestamp) if end_timestamp is not None else None
        if end is None:
            end = self._start_timestamp + (time.perf_counter_ns() - self._start_ns) / 1e9
        self._end_timestamp = end
        _capture(self)

    def _add_conversation_id(self) -> None:
        conversation = self._scope.get_conversation_id()
        if not conversation:
            return
        attrs = self._attributes
        op = attrs.get("sentry.op")
        if "gen_ai.operation.name" in attrs or (
            isinstance(op, str) and (op.startswith("ai.") or op.startswith("gen_ai."))
        ):
            attrs["gen_ai.conversation.id"] = conversation

    # -- attributes ------------------------------------------------------------------------------

    def get_attributes(self) -> Attributes:
        """The span's attributes (the dict itself)."""
        return self._attributes

    def set_attribute(self, key: str, value: Any) -> None:
        """Set one attribute (a str, bool, int, float or homogeneous list; else its repr)."""
        self._attributes[key] = value if value.__class__ in _PLAIN else format_attribute(value)

    def set_attributes(self, attributes: Attributes) -> None:
        """Set several attributes."""
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def remove_attribute(self, key: str) -> None:
        """Remove an attribute, if set."""
        self._attributes.pop(key, None)

    @property
    def status(self) -> str:
        """``"ok"`` or ``"error"``."""
        return self._status

    @status.setter
    def status(self, status: Union[SpanStatus, str]) -> None:
        if isinstance(status, Enum):
            status = status.value
        if status not in _VALID_STATUSES:
            logger.debug(
                '[Tracing] Unsupported span status %s. Expected one of: "ok", "error"', status
            )
            return
        self._status = status

    @property
    def name(self) -> str:
        """The span's name (a segment's name names the whole segment)."""
        return self._name

    @name.setter
    def name(self, name: str) -> None:
        self._name = name

    @property
    def active(self) -> bool:
        """Whether spans started inside this one become its children."""
        return self._active

    @property
    def span_id(self) -> str:
        """The span id (made on first use)."""
        span_id = self._span_id
        if span_id is None:
            span_id = self._span_id = ids.span_id()
        return span_id

    @property
    def trace_id(self) -> str:
        """The trace id."""
        trace_id = self._trace_id
        if trace_id is None:
            trace_id = self._trace_id = ids.trace_id()
        return trace_id

    @property
    def sampled(self) -> Optional[bool]:
        """A started StreamedSpan is always sampled."""
        return True

    @property
    def start_timestamp(self) -> Optional[datetime]:
        """When the span started."""
        return _datetime(self._start_timestamp)

    @property
    def end_timestamp(self) -> Optional[datetime]:
        """When the span ended (None while it runs)."""
        end = self._end_timestamp
        return _datetime(end) if end is not None else None

    def _is_segment(self) -> bool:
        return self._segment is self

    # -- trace propagation (what the scope asks its active span) ----------------------------------

    @property
    def containing_transaction(self) -> StreamedSpan:
        """The segment: what the scope names events after (sentry_sdk's transaction)."""
        return self._segment

    @property
    def source(self) -> Optional[str]:
        """The segment name's source (``sentry.segment.name.source``)."""
        found = self._attributes.get(_SOURCE_KEY)
        return str(found) if found is not None else None

    @source.setter
    def source(self, value: Optional[str]) -> None:
        if value is not None:
            self.set_attribute(_SOURCE_KEY, str(value))

    def _get_baggage(self) -> Baggage:
        baggage = self._baggage
        if baggage is None or baggage.mutable:
            baggage = self._baggage = _segment_baggage(self)
        return baggage

    def _dynamic_sampling_context(self) -> dict[str, str]:
        return self._segment._get_baggage().dynamic_sampling_context()

    def _to_traceparent(self) -> str:
        sampled = self._segment.sampled
        traceparent = f"{self.trace_id}-{self.span_id}"
        if sampled is True:
            return traceparent + "-1"
        if sampled is False:
            return traceparent + "-0"
        return traceparent

    def _to_baggage(self) -> Optional[Baggage]:
        return self._segment._get_baggage()

    def _iter_headers(self) -> Iterator[tuple[str, str]]:
        yield SENTRY_TRACE_HEADER_NAME, self._to_traceparent()
        baggage = self._segment._get_baggage().serialize()
        if baggage:
            yield BAGGAGE_HEADER_NAME, baggage

    # The names the scope's trace helpers use for the span of the transaction model.
    to_traceparent = _to_traceparent
    to_baggage = _to_baggage
    iter_headers = _iter_headers

    def _get_trace_context(self) -> dict[str, Any]:
        context: dict[str, Any] = {
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "parent_span_id": self._parent_span_id,
            "dynamic_sampling_context": self._dynamic_sampling_context(),
        }
        attrs = self._attributes
        if "sentry.op" in attrs:
            context["op"] = attrs["sentry.op"]
        if "sentry.origin" in attrs:
            context["origin"] = attrs["sentry.origin"]
        return context

    def get_trace_context(self) -> dict[str, Any]:
        """The ``contexts.trace`` of events captured inside this span."""
        return self._get_trace_context()

    def _to_json(self) -> dict[str, Any]:
        name: Optional[str] = self._name
        out: dict[str, Any] = {
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "name": name if name is not None else "<unlabeled span>",
            "status": self._status,
            "is_segment": self._segment is self,
            "start_timestamp": self._start_timestamp,
        }
        if self._end_timestamp is not None:
            out["end_timestamp"] = self._end_timestamp
        if self._parent_span_id:
            out["parent_span_id"] = self._parent_span_id
        out["attributes"] = dict(self._attributes)
        return out


_PLAIN = frozenset({str, int, bool})


def _is_error(value: BaseException) -> bool:
    # sentry_sdk: SystemExit with a zero/None code is not an error.
    if isinstance(value, SystemExit):
        return value.code not in (0, None)
    return True


def _segment_baggage(segment: StreamedSpan) -> Baggage:
    """The frozen DSC of a segment heading its trace (or continuing a mutable one)."""
    client = get_client()
    if not client.is_active():
        return Baggage({})
    items: dict[str, str] = {"trace_id": segment.trace_id}
    if segment._sample_rand is not None:
        items["sample_rand"] = format_sample_rand(segment._sample_rand)
    _options_into(items, client)
    source = segment._attributes.get(_SOURCE_KEY)
    if source not in LOW_QUALITY_SEGMENT_SOURCES and segment.name:
        items["transaction"] = segment.name
    if segment._sample_rate is not None:
        items["sample_rate"] = str(segment._sample_rate)
    sampled = segment.sampled
    if sampled is not None:
        items["sampled"] = "true" if sampled else "false"
    previous = segment._baggage
    if previous is not None and previous.sentry_items:
        items.update(previous.sentry_items)
    third_party = previous.third_party_items if previous is not None else ""
    return Baggage(items, third_party, mutable=False)


class NoOpStreamedSpan(StreamedSpan):
    """An unsampled or ignored span: part of the trace, never sent."""

    __slots__ = ("_finished", "_sampled", "_unsampled_reason")

    _noop = True

    def __init__(
        self,
        name: Optional[str] = None,
        attributes: Optional[Attributes] = None,
        segment: Optional[StreamedSpan] = None,
        trace_id: Optional[str] = None,
        parent_span_id: Optional[str] = None,
        parent_sampled: Optional[bool] = None,
        baggage: Optional[Baggage] = None,
        sampled: Optional[bool] = False,
        unsampled_reason: Optional[str] = None,
        scope: Optional[Scope] = None,
        sample_rand: Optional[float] = None,
        sample_rate: Optional[float] = None,
    ) -> None:
        self._name = name  # type: ignore[assignment]
        self._attributes = {}
        if attributes is not None and _SOURCE_KEY in attributes:
            self._attributes[_SOURCE_KEY] = format_attribute(attributes[_SOURCE_KEY])
        self._active = True
        self._span_id = None
        self._sampled = sampled
        self._segment = segment or self
        self._trace_id = trace_id
        self._parent_span_id = parent_span_id
        self._parent_sampled = parent_sampled
        self._baggage = baggage
        self._sample_rand = sample_rand
        self._sample_rate = sample_rate
        self._scope = scope  # type: ignore[assignment]
        self._unsampled_reason = unsampled_reason
        self._status = "ok"
        self._start_timestamp = 0.0
        self._start_ns = 0
        self._end_timestamp = None
        self._finished = False
        if scope is not None:
            self._activate()

    def __repr__(self) -> str:
        return f"<{self.__class__.__name__}(sampled={self.sampled})>"

    def __enter__(self) -> NoOpStreamedSpan:
        return self

    def __exit__(self, ty: Any, value: Any, tb: Any) -> None:
        self._end()

    def _end(self, end_timestamp: Optional[Union[float, datetime]] = None) -> None:
        if self._finished:
            return
        reason = self._unsampled_reason
        if reason is not None:
            _record_unsent(reason)
        if self._scope is not None:
            self._detach()
        self._finished = True

    def end(self, end_timestamp: Optional[Union[float, datetime]] = None) -> None:
        """End the span (nothing is sent)."""
        self._end()

    def finish(self, end_timestamp: Optional[Union[float, datetime]] = None) -> None:
        """Deprecated: use `end()`."""
        warnings.warn(
            "span.finish() is deprecated. Use span.end() instead.",
            DeprecationWarning,
            stacklevel=2,
        )
        self._end()

    def get_attributes(self) -> Attributes:
        """Always empty."""
        return {}

    def set_attribute(self, key: str, value: Any) -> None:
        """Only ``sentry.segment.name.source`` is kept (it names the trace's DSC)."""
        if key == _SOURCE_KEY:
            self._attributes[key] = format_attribute(value)

    def set_attributes(self, attributes: Attributes) -> None:
        """As `set_attribute`, for each."""
        for key, value in attributes.items():
            self.set_attribute(key, value)

    def remove_attribute(self, key: str) -> None:
        """Nothing to remove."""

    @property
    def status(self) -> str:
        """Always ``"ok"``."""
        return SpanStatus.OK.value

    @status.setter
    def status(self, status: Union[SpanStatus, str]) -> None:
        pass

    @property
    def name(self) -> str:
        """The name given, or ``""``."""
        return self._name or ""

    @name.setter
    def name(self, name: str) -> None:
        self._name = name

    @property
    def active(self) -> bool:
        """Always True."""
        return True

    @property
    def sampled(self) -> Optional[bool]:
        """False (or None when no sampling decision could be taken)."""
        return self._sampled

    @property
    def start_timestamp(self) -> Optional[datetime]:
        """None: nothing is timed."""
        return None

    @property
    def end_timestamp(self) -> Optional[datetime]:
        """None: nothing is timed."""
        return None

    def _get_trace_context(self) -> dict[str, Any]:
        return {
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "parent_span_id": self._parent_span_id,
            "dynamic_sampling_context": self._dynamic_sampling_context(),
        }

    def get_trace_context(self) -> dict[str, Any]:
        """The ``contexts.trace`` of events captured inside this span."""
        return self._get_trace_context()


def _record_unsent(reason: str) -> None:
    client = get_client()
    if not client.is_active() or client.transport is None:
        return
    logger.debug("[Tracing] Discarding span because sampled=False (reason: %s)", reason)
    try:
        client.outcomes.record(reason, "span", 1)
    except Exception:
        logger.debug("could not record a span outcome", exc_info=True)


# -- starting spans ----------------------------------------------------------------------------


def start_streamed_span(
    scope: Scope,
    name: str,
    attributes: Optional[Attributes],
    parent_span: Optional[StreamedSpan],
    active: bool,
) -> StreamedSpan:
    """A span in `scope`: a child of `parent_span` (default: the scope's span) or a segment."""
    if isinstance(parent_span, NoOpStreamedSpan):
        logger.debug(
            "Ignored parent span provided. Span will be parented to the currently active"
            " span instead."
        )
    if parent_span is DEFAULT_PARENT or isinstance(parent_span, NoOpStreamedSpan):
        current = scope._d.span
        parent_span = current if isinstance(current, StreamedSpan) else None
    if parent_span is None:
        return _start_segment(scope, name, attributes, active)
    if is_ignored_span(name, attributes):
        return NoOpStreamedSpan(
            name=name,
            attributes=attributes,
            segment=parent_span._segment,
            trace_id=parent_span.trace_id,
            parent_span_id=parent_span.span_id,
            parent_sampled=parent_span.sampled,
            unsampled_reason="ignored",
        )
    if isinstance(parent_span, NoOpStreamedSpan):
        return NoOpStreamedSpan(
            name=name,
            attributes=attributes,
            segment=parent_span._segment,
            trace_id=parent_span.trace_id,
            parent_span_id=parent_span.span_id,
            parent_sampled=parent_span.sampled,
            unsampled_reason=parent_span._unsampled_reason,
        )
    return StreamedSpan(
        name=name,
        attributes=attributes,
        active=active,
        scope=scope,
        segment=parent_span._segment,
        trace_id=parent_span.trace_id,
        parent_span_id=parent_span.span_id,
        parent_sampled=parent_span.sampled,
    )


def _start_segment(
    scope: Scope,
    name: str,
    attributes: Optional[Attributes],
    active: bool,
    custom: Optional[Mapping[str, Any]] = None,
    cls: type[StreamedSpan] = StreamedSpan,
    noop_cls: type[NoOpStreamedSpan] = NoOpStreamedSpan,
    deferred: bool = False,
    context: Optional[PropagationContext] = None,
) -> StreamedSpan:
    """A new segment in `scope`'s trace (a no-op one if ignored or not sampled).

    `deferred`: the span is made active when entered, not now (the transaction-model
    API); `cls` / `noop_cls`: the classes made; `context`: the trace continued (by
    default the one in force for `scope`).
    """
    if context is None:
        context = scope.get_active_propagation_context()
    baggage = _starting_baggage(context)
    noop: NoOpStreamedSpan
    if is_ignored_span(name, attributes):
        noop = noop_cls(
            name=name,
            attributes=attributes,
            scope=None if deferred else scope,
            trace_id=context.trace_id,
            parent_span_id=context.parent_span_id,
            parent_sampled=context.parent_sampled,
            baggage=baggage,
            unsampled_reason="ignored",
        )
        noop._scope = scope
        return noop
    sampled, rate, rand, reason = _sample(name, attributes, scope, custom, context)
    keep_incoming_rate = context.parent_sampled is not None and not callable(
        get_client().options.get("traces_sampler")
    )
    if (
        rate is not None
        and not keep_incoming_rate
        and baggage is not None
        and baggage.sentry_items.get("sample_rate")
    ):
        baggage.sentry_items["sample_rate"] = str(rate)
    if not sampled:
        noop = noop_cls(
            name=name,
            attributes=attributes,
            scope=None if deferred else scope,
            trace_id=context.trace_id,
            parent_span_id=context.parent_span_id,
            parent_sampled=context.parent_sampled,
            baggage=baggage,
            sampled=sampled,
            unsampled_reason=reason,
            sample_rand=rand,
            sample_rate=rate,
        )
        noop._scope = scope
        return noop
    # Before the span: it takes the id of the profiler its segment may start.
    claim = _start_profile()
    span = cls(
        name=name,
        attributes=attributes,
        active=active and not deferred,
        scope=scope,
        trace_id=context.trace_id,
        parent_span_id=context.parent_span_id,
        parent_sampled=context.parent_sampled,
        baggage=baggage,
        sample_rand=rand,
        sample_rate=rate,
    )
    span._continuous_profile = claim
    if deferred:
        span._active = active
    return span


def _starting_baggage(context: PropagationContext) -> Optional[Baggage]:
    """The baggage a new segment of `context`'s trace starts with.

    The incoming one; else the DSC already made from the options for this trace (a
    `get_baggage()`, an outgoing request or an error before the segment): it went out
    frozen, so the segment keeps sending it, as sentry_sdk 2.x does. Else None: the
    segment makes its own, with its name and sampling decision.
    """
    baggage = context.baggage
    if baggage is None:
        cached = getattr(context, "_dsc", None)
        if cached is not None:
            baggage = cached[1]
    return baggage


def _start_profile() -> Any:
    """A sampled segment's claim on the ``profile_lifecycle="trace"`` profiler, or None.

    As a sampled transaction's: the profiler runs while a claim is held (transaction
    profiling, `profiles_sample_rate`, has no effect under streaming).
    """
    try:
        if _cp._configured_for is not get_client().options:
            _cp.configure(None)
        if _cp.mode != _cp.MODE_TRACE:
            return None
        return _cp.try_profile_lifecycle_trace_start()
    except Exception:
        logger.debug("[Profiling] could not start profiling a segment", exc_info=True)
        return None


def start_span(
    name: str,
    attributes: Optional[Attributes] = None,
    parent_span: Optional[StreamedSpan] = DEFAULT_PARENT,
    active: bool = True,
) -> StreamedSpan:
    """`tripwire.traces.start_span` (see there)."""
    client = get_client()
    if client.is_active() and not has_span_streaming_enabled(client.options):
        warnings.warn(
            "Using span streaming API in non-span-streaming mode. Use "
            "sentry_sdk.start_transaction() and sentry_sdk.start_span() instead.",
            stacklevel=2,
        )
        return NoOpStreamedSpan()
    return start_streamed_span(get_current_scope(), name, attributes, parent_span, active)


def continue_trace(incoming: dict[str, Any]) -> None:
    """Continue the trace of `incoming` headers in the isolation and current scopes."""
    get_isolation_scope().generate_propagation_context(incoming)
    get_current_scope().generate_propagation_context(incoming)


def new_trace() -> None:
    """Start a new trace in the isolation and current scopes."""
    get_isolation_scope().set_new_propagation_context()
    get_current_scope().set_new_propagation_context()


def get_current_span(scope: Optional[Scope] = None) -> Optional[StreamedSpan]:
    """The scope's active span if it is a streamed span, else None."""
    span = (scope or get_current_scope())._d.span
    return span if isinstance(span, StreamedSpan) else None
