"""Ended streamed spans -> the client's span batcher -> ``span`` envelope items.

A span that ends gets the scopes' attributes (current over isolation over global),
the user's with ``send_default_pii``, and the SDK's (``sentry.sdk.name``,
``sentry.environment``, ``sentry.release``...), then ``before_send_span`` if set
(it may rename the span and change its attributes, not drop it). It is queued on
the client's batcher (`_batcher.Batcher`, the mechanism logs and metrics use); a
segment that ends asks for a flush soon. The flusher groups the spans by trace: one
envelope per trace, whose ``trace`` header is the segment's dynamic sampling
context, holding one ``span`` item (``application/vnd.sentry.items.span.v2+json``,
``{"version": 2, "items": [...]}``) of at most 1000 spans.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from tripwire import _data_collection, _json
from tripwire._batcher import Batcher, ClientState, PerClient
from tripwire._clock import clock, format_timestamp
from tripwire._log import logger
from tripwire.envelope import Envelope, Item, PayloadRef
from tripwire.logger import _static_attributes, format_attribute
from tripwire.outcomes import DataCategory
from tripwire.scope._current import get_client, get_global_scope, get_isolation_scope
from tripwire.tracing._sampling import has_span_streaming_enabled

if TYPE_CHECKING:
    from tripwire._client_base import BaseClient
    from tripwire.tracing._streamed import StreamedSpan

SPAN_CONTENT_TYPE = "application/vnd.sentry.items.span.v2+json"
# sentry_sdk 2.75's SpanBatcher: at most 1000 spans per item; a flush once 1000 wait.
MAX_PER_ITEM = 1000
FLUSH_SIZE = 1000
MAX_SIZE = 10_000
INTERVAL = 5.0
# A segment's end asks for a flush; segments ending meanwhile wait with it.
MIN_GAP = 0.1

_USER_ATTRIBUTES = (
    ("user.id", "id"),
    ("user.name", "username"),
    ("user.email", "email"),
    ("user.ip_address", "ip_address"),
)


class _ClientState(ClientState):
    """Per client: its span batcher, its ``before_send_span`` and its SDK attributes."""

    __slots__ = ("hook", "static", "streaming", "user")

    def __init__(self, client: BaseClient) -> None:
        options = client.options
        self.streaming = has_span_streaming_enabled(options)
        self.hook = _hook_of(options)
        self.user = _data_collection.user_info(client.options)
        self.static = _static_attributes(client)
        super().__init__(_make_batcher(client))


def _hook_of(options: Any) -> Any:
    hook = options.get("before_send_span")
    if hook is None:
        hook = (options.get("_experiments") or {}).get("before_send_span")
    return hook


# The client's span state (`_batcher.PerClient`: one per client, found by identity).
_state = PerClient("span", _ClientState).get


def capture(span: StreamedSpan) -> None:
    """Queue an ended span for sending (when the active client streams spans)."""
    client = get_client()
    if not client._recording or client.transport is None:
        return
    try:
        state = _state(client)
        if not state.streaming:
            return
        attrs = span._attributes
        scope_data = span._scope._d
        isolation = get_isolation_scope()._d
        global_ = get_global_scope()._d
        if scope_data.attributes or isolation.attributes or global_.attributes:
            merged = dict(global_.attributes)
            merged.update(isolation.attributes)
            merged.update(scope_data.attributes)
            for key, value in merged.items():
                if key not in attrs:
                    attrs[key] = format_attribute(value)
        user = scope_data.user or isolation.user or global_.user
        if user and state.user:
            for attribute, field in _USER_ATTRIBUTES:
                found = user.get(field)
                if found is not None and attribute not in attrs:
                    attrs[attribute] = found
        if state.hook is not None:
            # The hook sees the SDK's attributes; otherwise they join at encoding.
            for key, value in state.static:
                if key not in attrs:
                    attrs[key] = value
            _run_hook(client, state.hook, span)
            attrs = span._attributes
        segment = span._segment
        state.batcher.add(
            (
                span.trace_id,
                span.span_id,
                span._name,
                span._status,
                segment is span,
                span._start_timestamp,
                span._end_timestamp,
                span._parent_span_id,
                attrs,
                segment,
            ),
            segment is span,
        )
    except Exception:  # a span must never fail the caller
        logger.debug("a streamed span was dropped", exc_info=True)


def _run_hook(client: BaseClient, hook: Any, span: StreamedSpan) -> None:
    # Spans cannot be dropped by the hook; only their name and attributes change.
    raised: Any = object()
    result = client._run_user_hook(hook, span._to_json(), {}, on_error=raised)
    if result is raised:
        return
    if isinstance(result, dict) and "name" in result:
        span._name = result["name"]
        span._attributes = {}
        for key, value in (result.get("attributes") or {}).items():
            span.set_attribute(key, value)
    else:
        logger.debug("[Tracing] Invalid return value from before_send_span. Keeping original span.")


# -- the wire form -----------------------------------------------------------------------------


def typed(value: Any) -> dict[str, Any]:
    """An attribute value as sent: ``{"value": ..., "type": ...}``."""
    if value is True or value is False:
        return {"value": value, "type": "boolean"}
    if isinstance(value, int):
        return {"value": value, "type": "integer"}
    if isinstance(value, float):
        return {"value": value, "type": "double"}
    if isinstance(value, str):
        return {"value": value, "type": "string"}
    value = format_attribute(value)
    if isinstance(value, list):
        return {"value": value, "type": "array"}
    return typed(value)


def wire_form(entry: tuple[Any, ...]) -> dict[str, Any]:
    """One queued span as it goes in the ``items`` of a ``span`` item."""
    trace_id, span_id, name, status, is_segment, start, end, parent, attrs, _ = entry
    out: dict[str, Any] = {
        "trace_id": trace_id,
        "span_id": span_id,
        "name": name if name is not None else "<unlabeled span>",
        "status": status,
        "is_segment": is_segment,
        "start_timestamp": start,
    }
    if end is not None:
        out["end_timestamp"] = end
    if parent:
        out["parent_span_id"] = parent
    if attrs:
        out["attributes"] = {str(key): typed(value) for key, value in attrs.items()}
    return out


class _Encoder:
    """Encodes spans, caching the JSON of attributes seen before (most repeat).

    The SDK's attributes (the same for every span of the client) are encoded once and
    added to each span that has none of them (with ``before_send_span`` they were
    added before the hook ran).
    """

    __slots__ = ("_cache", "_fragment", "_static", "_static_keys")

    def __init__(self, client: BaseClient) -> None:
        self._cache: dict[tuple[str, type, Any], bytes] = {}
        # With a before_send_span the SDK's attributes were added before it ran (and
        # the hook may have removed them): none are added here.
        static = [] if _hook_of(client.options) is not None else _static_attributes(client)
        self._static = static
        self._static_keys = frozenset(key for key, _ in static)
        self._fragment = b",".join(_json.dumps({key: typed(value)})[1:-1] for key, value in static)

    def attribute(self, key: str, value: Any) -> bytes:
        cache = self._cache
        try:
            cache_key = (key, value.__class__, value)
            found = cache.get(cache_key)
        except TypeError:  # a list
            return _json.dumps({key: typed(value)})[1:-1]
        if found is None:
            if len(cache) >= 4096:
                cache.clear()
            found = cache[cache_key] = _json.dumps({key: typed(value)})[1:-1]
        return found

    def span(self, entry: tuple[Any, ...]) -> bytes | None:
        trace_id, span_id, name, status, is_segment, start, end, parent, attrs, _ = entry
        try:
            head = _json.dumps(
                {
                    "trace_id": trace_id,
                    "span_id": span_id,
                    "name": name if name is not None else "<unlabeled span>",
                    "status": status,
                    "is_segment": is_segment,
                    "start_timestamp": start,
                    **({"end_timestamp": end} if end is not None else {}),
                    **({"parent_span_id": parent} if parent else {}),
                }
            )
            attribute = self.attribute
            parts = [
                attribute(key if key.__class__ is str else str(key), value)
                for key, value in attrs.items()
            ]
            if self._static_keys.isdisjoint(attrs):
                if self._fragment:
                    parts.append(self._fragment)
            else:
                parts.extend(
                    attribute(key, value) for key, value in self._static if key not in attrs
                )
            if not parts:
                return head
            return head[:-1] + b',"attributes":{' + b",".join(parts) + b"}}"
        except Exception:
            logger.debug("a streamed span could not be encoded; dropped", exc_info=True)
            return None

    def build(self, batch: list[tuple[Any, ...]]) -> list[Envelope]:
        """One envelope per trace (its DSC in the header), up to 1000 spans per item."""
        by_trace: dict[str, list[tuple[Any, ...]]] = {}
        for entry in batch:
            found = by_trace.get(entry[0])
            if found is None:
                by_trace[entry[0]] = [entry]
            else:
                found.append(entry)
        envelopes = []
        for entries in by_trace.values():
            try:
                dsc = entries[0][9]._dynamic_sampling_context()
            except Exception:
                logger.debug("no DSC for a span batch", exc_info=True)
                dsc = None
            for start in range(0, len(entries), MAX_PER_ITEM):
                encoded = [
                    found
                    for found in map(self.span, entries[start : start + MAX_PER_ITEM])
                    if found is not None
                ]
                if not encoded:
                    continue
                headers: dict[str, Any] = {"sent_at": format_timestamp(clock.now())}
                if dsc is not None:
                    headers["trace"] = dsc
                envelope = Envelope(headers=headers)
                envelope.add_item(
                    Item(
                        payload=PayloadRef(
                            bytes=b'{"version":2,"items":[' + b",".join(encoded) + b"]}"
                        ),
                        type="span",
                        content_type=SPAN_CONTENT_TYPE,
                        headers={"item_count": len(encoded)},
                    )
                )
                envelopes.append(envelope)
        return envelopes


def _make_batcher(owner: BaseClient) -> Batcher[Any]:
    return Batcher(
        owner,
        _Encoder(owner).build,
        DataCategory.SPAN,
        name="spans",
        flush_size=FLUSH_SIZE,
        max_size=MAX_SIZE,
        interval=INTERVAL,
        min_gap=MIN_GAP,
    )


__all__ = ["SPAN_CONTENT_TYPE", "capture", "typed", "wire_form"]
