"""The transaction-model API (start_transaction, start_span, start_child) under span streaming.

With ``trace_lifecycle="stream"`` sentry_sdk 2.75 gives each integration a second
code path that calls `sentry_sdk.traces.start_span`; its own `start_transaction` /
`start_span` return no-op spans there (and so do tripwire's public ones). tripwire's
integrations have one path: the SDK's own calls (`tracing._api.sdk_start_transaction`
/ `sdk_start_span`) give streamed spans instead, so every integration streams
without a branch of its own. A transaction becomes a segment (sampled as one),
a child span a child of the active streamed span; the old span methods map onto
attributes as sentry_sdk's streaming integrations write them:

- ``op`` -> ``sentry.op``, ``origin`` -> ``sentry.origin``, the name (or
  ``description``) -> the span's name, a transaction's ``source`` ->
  ``sentry.segment.name.source``;
- ``set_data`` and ``set_tag`` -> attributes (``http.method`` under its streaming
  name, ``http.request.method``);
- ``set_status``: ``ok`` stays ``ok``, any other status is ``error``;
  ``set_http_status(code)`` -> ``http.response.status_code``, ``error`` from 400.

Unlike `traces.start_span`, a span from these calls becomes the scope's active span
only when entered (``with`` / ``__enter__``), as a transaction-model span does.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any, Optional, Union

from tripwire.scope._current import get_isolation_scope
from tripwire.tracing._consts import SPANDATA
from tripwire.tracing._span import _thread_data
from tripwire.tracing._streamed import (
    NoOpStreamedSpan,
    StreamedSpan,
    _is_error,
    _start_segment,
    is_ignored_span,
)

if TYPE_CHECKING:
    from tripwire.scope._scope import Scope
    from tripwire.tracing._propagation import PropagationContext

_HTTP_STATUS = "http.response.status_code"
# Span data keys whose streaming attribute has another name (sentry_sdk 2.75's
# streaming integrations write the new one).
_RENAMED = {"http.method": "http.request.method"}


class CompatSpan(StreamedSpan):
    """A streamed span made by the transaction-model API, with its methods."""

    __slots__ = ()

    # -- names -------------------------------------------------------------------------------

    @property
    def op(self) -> Optional[str]:
        """``sentry.op``."""
        found = self._attributes.get("sentry.op")
        return str(found) if found is not None else None

    @op.setter
    def op(self, value: Optional[str]) -> None:
        if value is not None:
            self.set_attribute("sentry.op", value)

    @property
    def description(self) -> Optional[str]:
        """The span's name."""
        return self._name

    @description.setter
    def description(self, value: Optional[str]) -> None:
        if value is not None:
            self._name = value

    @property
    def origin(self) -> str:
        """``sentry.origin``."""
        return str(self._attributes.get("sentry.origin", "manual"))

    @origin.setter
    def origin(self, value: str) -> None:
        self.set_attribute("sentry.origin", value)

    @property
    def parent_span_id(self) -> Optional[str]:
        """The parent's span id (None for a segment heading its trace)."""
        return self._parent_span_id

    @property
    def timestamp(self) -> Optional[datetime]:
        """When the span ended (None while it runs)."""
        return self.end_timestamp

    @property
    def status(self) -> str:
        """``"ok"`` or ``"error"``; any status but ``ok`` set here becomes ``error``."""
        return self._status

    @status.setter
    def status(self, value: Any) -> None:
        if value is None:
            return
        value = getattr(value, "value", value)
        self._status = "ok" if value == "ok" else "error"

    # -- data --------------------------------------------------------------------------------

    def set_data(self, key: str, value: Any) -> None:
        """An attribute."""
        self.set_attribute(_RENAMED.get(key, key), value)

    def update_data(self, data: Mapping[str, Any]) -> None:
        """Attributes."""
        for key, value in data.items():
            self.set_attribute(_RENAMED.get(key, key), value)

    def set_tag(self, key: str, value: Any) -> None:
        """An attribute (streamed spans have no tags)."""
        self.set_attribute(key, value)

    @property
    def _tags(self) -> dict[str, Any]:
        return {}

    @_tags.setter
    def _tags(self, tags: Optional[Mapping[str, Any]]) -> None:
        for key, value in (tags or {}).items():
            self.set_attribute(key, value)

    def set_status(self, value: Any) -> None:
        """``ok``, or ``error`` for any other status."""
        self.status = value

    def set_http_status(self, http_status: int) -> None:
        """``http.response.status_code``; the status is ``error`` from 400 on."""
        self.set_attribute(_HTTP_STATUS, http_status)
        try:
            self._status = "error" if int(http_status) >= 400 else "ok"
        except (TypeError, ValueError):
            pass

    def set_measurement(self, name: str, value: float, unit: str = "") -> None:
        """Measurements belong to transactions: ignored."""

    def set_context(self, key: str, value: dict[str, Any]) -> None:
        """Contexts belong to transactions: ignored."""

    def set_flag(self, flag: str, result: bool) -> None:
        """A feature flag evaluation, as the attribute ``flag.evaluation.<flag>``."""
        self.set_attribute(f"flag.evaluation.{flag}", result)

    def update_active_thread(self) -> None:
        """The thread the span now runs on."""
        for key, value in _thread_data().items():
            self.set_attribute(key, value)

    def set_profiler_id(self, profiler_id: Optional[str]) -> None:
        """Link the span to a continuous profiler session."""
        if profiler_id is not None:
            self.set_attribute(SPANDATA.PROFILER_ID, profiler_id)

    def get_profile_context(self) -> Optional[dict[str, Any]]:
        """None: streamed spans carry ``sentry.profiler_id`` instead."""
        return None

    def is_success(self) -> bool:
        """Whether the status is ``ok``."""
        return self._status == "ok"

    # -- lifecycle ---------------------------------------------------------------------------

    def start_child(self, instrumenter: str = "sentry", **kwargs: Any) -> StreamedSpan:
        """A child of this span (entered by its ``with`` block)."""
        return child_span(self._scope, self, kwargs)

    def __enter__(self) -> Any:
        self._activate()
        return self

    def __exit__(self, ty: Any, value: Any, tb: Any) -> None:
        if value is not None and _is_error(value):
            self._status = "error"
        self._end()

    def finish(  # type: ignore[override]
        self,
        scope: Any = None,
        end_timestamp: Optional[Union[float, datetime]] = None,
        *,
        hub: Any = None,
    ) -> None:
        """End the span (and queue it for sending)."""
        self._end(end_timestamp)

    def to_json(self) -> dict[str, Any]:
        """The span as queued for sending (without the SDK's attributes)."""
        return self._to_json()


class CompatNoOpSpan(CompatSpan, NoOpStreamedSpan):  # type: ignore[misc]
    """An unsampled or ignored span made by the transaction-model API."""

    __slots__ = ()

    def __enter__(self) -> Any:
        if self._scope is not None:
            self._activate()
        return self

    def __exit__(self, ty: Any, value: Any, tb: Any) -> None:
        self._end()

    def set_attribute(self, key: str, value: Any) -> None:
        NoOpStreamedSpan.set_attribute(self, key, value)

    def set_http_status(self, http_status: int) -> None:
        """Nothing is recorded."""

    @property
    def status(self) -> str:
        """Always ``ok``."""
        return "ok"

    @status.setter
    def status(self, value: Any) -> None:
        pass


def _attributes_from(kwargs: Mapping[str, Any]) -> dict[str, Any]:
    attrs: dict[str, Any] = {}
    op = kwargs.get("op")
    if op is not None:
        attrs["sentry.op"] = op
    origin = kwargs.get("origin")
    if origin is not None:
        attrs["sentry.origin"] = origin
    # tripwire's integrations pass sentry_sdk's start attributes (only under streaming),
    # so `traces_sampler` and `ignore_spans` see them, as sentry_sdk's `traces.start_span`.
    given = kwargs.get("attributes")
    if given:
        attrs.update(given)
    return attrs


def _name_from(kwargs: Mapping[str, Any]) -> str:
    return str(kwargs.get("name") or kwargs.get("description") or "")


def segment_span(
    scope: Scope,
    transaction: Any,
    custom_sampling_context: Optional[Mapping[str, Any]],
    kwargs: Mapping[str, Any],
) -> StreamedSpan:
    """`start_transaction` under streaming: a segment, sampled now, entered by ``with``."""
    if transaction is not None:
        # A Transaction from continue_trace: its trace is already the scope's.
        fields = {
            "name": getattr(transaction, "name", None),
            "op": getattr(transaction, "op", None),
            "origin": getattr(transaction, "origin", None),
            "source": getattr(transaction, "source", None),
            "attributes": kwargs.get("attributes"),
        }
    else:
        fields = dict(kwargs)
    name = _name_from(fields)
    attrs = _attributes_from(fields)
    source = fields.get("source")
    if source:
        attrs["sentry.segment.name.source"] = str(getattr(source, "value", source))
    return _start_segment(
        scope,
        name,
        attrs,
        True,
        custom_sampling_context,
        CompatSpan,
        CompatNoOpSpan,
        deferred=True,
        context=_continued_context(scope, transaction) if transaction is not None else None,
    )


def _continued_context(scope: Scope, transaction: Any) -> Optional[PropagationContext]:
    """The trace `transaction` continues, when `scope` has another trace of its own.

    `continue_trace` puts the incoming trace in the isolation scope; a trace the current
    scope has (a `new_trace()` before the request) would otherwise win. sentry_sdk's
    integrations continue the trace in both scopes, so the incoming one is the
    segment's. None: the scope's trace is the transaction's already.
    """
    own = scope._d.propagation_context
    trace_id = getattr(transaction, "trace_id", None)
    if own is None or own.trace_id == trace_id:
        return None
    isolation = get_isolation_scope()._d.propagation_context
    if isolation is not None and isolation.trace_id == trace_id:
        return isolation  # type: ignore[no-any-return]
    return None


def child_span(scope: Scope, parent: StreamedSpan, kwargs: Mapping[str, Any]) -> StreamedSpan:
    """`start_span` / `start_child` under streaming: a child of `parent`, entered by ``with``."""
    name = _name_from(kwargs)
    attrs = _attributes_from(kwargs)
    if isinstance(parent, NoOpStreamedSpan) or is_ignored_span(name, attrs):
        reason = parent._unsampled_reason if isinstance(parent, NoOpStreamedSpan) else "ignored"
        return CompatNoOpSpan(
            name=name,
            attributes=attrs,
            segment=parent._segment,
            trace_id=parent.trace_id,
            parent_span_id=parent.span_id,
            parent_sampled=parent.sampled,
            unsampled_reason=reason,
            scope=None,
        )
    span = CompatSpan(
        name=name,
        attributes=attrs,
        active=False,
        scope=kwargs.get("scope") or scope,
        segment=parent._segment,
        trace_id=parent.trace_id,
        parent_span_id=parent.span_id,
        parent_sampled=parent.sampled,
    )
    span._active = True
    return span


__all__ = ["CompatNoOpSpan", "CompatSpan", "child_span", "segment_span"]
