"""Trace metrics, as sentry_sdk 2.75's `sentry_sdk.metrics`: `count`, `gauge`, `distribution`.

Each call records one metric: ``{"timestamp", "trace_id", "span_id", "name", "type"
("counter" | "gauge" | "distribution"), "value" (a float), "unit", "attributes"}``,
linked to the current trace (the active span's trace and span ids; else the scope's
propagation context, no span id). Attributes are, in order of precedence: the call's
``attributes`` (each value a str, bool, int, float or homogeneous list, else its
repr), the scopes' attributes (`Scope.set_attribute`; current over isolation over
global), the SDK's (``sentry.sdk.name``, ``sentry.sdk.version``,
``process.runtime.*``, ``server.address``, ``sentry.environment``,
``sentry.release``), and with the user's consent (`data_collection`'s ``user_info``,
else ``send_default_pii``) the user's (``user.id``, ``user.name``, ``user.email``,
``user.ip_address``).

``before_send_metric(metric, hint)`` (or ``_experiments["before_send_metric"]``) may
change a metric or drop it (None: outcome ``before_send``; a hook that raises drops
it: ``callback_error``). Metrics are queued on the client's batcher (`_batcher.py`,
the mechanism logs use): sent as one ``trace_metric`` envelope item of up to 1000
metrics, every 5 s or once 1000 wait, on `flush()` and at `close()` / exit; beyond
10,000 waiting, new ones are dropped (``queue_overflow``).

As sentry_sdk 2.75, ``enable_metrics=False`` changes nothing (sentry_sdk warns that
the option has no effect; tripwire logs the same warning when the client's first
metric is recorded). Unlike sentry_sdk a value that is not a number is dropped (with
a debug message) instead of raising `TypeError` into the caller.
"""

from __future__ import annotations

import sys
import weakref
from math import isfinite
from typing import TYPE_CHECKING, Any, Optional

from tripwire import _data_collection, _json
from tripwire._batcher import Batcher, ClientState, PerClient
from tripwire._clock import clock, format_timestamp
from tripwire._log import logger as _sdk_logger
from tripwire.envelope import Envelope, Item, PayloadRef
from tripwire.logger import _static_attributes, format_attribute
from tripwire.outcomes import DataCategory, DropReason
from tripwire.scope._current import (
    get_client,
    get_current_scope,
    get_global_scope,
    get_isolation_scope,
)
from tripwire.scope._external import get_external_propagation_context

if TYPE_CHECKING:
    from tripwire._client_base import BaseClient
    from tripwire.types import Metric

METRIC_CONTENT_TYPE = "application/vnd.sentry.items.trace-metric+json"
# sentry_sdk 2.75's MetricsBatcher: flush at 1000 waiting, drop beyond 10,000, every 5 s.
FLUSH_SIZE = 1000
MAX_SIZE = 10_000
INTERVAL = 5.0

_USER_ATTRIBUTES = (
    ("user.id", "id"),
    ("user.name", "username"),
    ("user.email", "email"),
    ("user.ip_address", "ip_address"),
)


def count(
    name: str, value: float, unit: Optional[str] = None, attributes: Optional[dict[str, Any]] = None
) -> None:
    """Count `value` occurrences of `name` (a ``counter`` metric).

    Args:
        name: The metric's name.
        value: How many (a number).
        unit: The unit (``"byte"``, ``"millisecond"``...), if any.
        attributes: Attributes of this data point.
    """
    _capture(name, "counter", value, unit, attributes)


def gauge(
    name: str, value: float, unit: Optional[str] = None, attributes: Optional[dict[str, Any]] = None
) -> None:
    """Record the current value of `name` (a ``gauge`` metric); arguments as `count`."""
    _capture(name, "gauge", value, unit, attributes)


def distribution(
    name: str, value: float, unit: Optional[str] = None, attributes: Optional[dict[str, Any]] = None
) -> None:
    """Record one sample of `name`'s distribution; arguments as `count`."""
    _capture(name, "distribution", value, unit, attributes)


# -- capture ---------------------------------------------------------------------------------


class _ClientState(ClientState):
    """What every metric of one client needs: its batcher and its ``before_send_metric``."""

    __slots__ = ("hook",)

    def __init__(self, client: BaseClient) -> None:
        options = client.options
        hook = options.get("before_send_metric")
        if hook is None:
            experiments = options.get("_experiments")
            hook = experiments.get("before_send_metric") if isinstance(experiments, dict) else None
        self.hook = hook
        if options.get("enable_metrics", True) is False:
            _sdk_logger.warning(
                "The enable_metrics option has no effect and will be removed in the next major."
            )
        super().__init__(_make_batcher(client))


# The client's metrics state (`_batcher.PerClient`: one per client, found by identity).
_state = PerClient("metric", _ClientState).get


def _capture(
    name: str, kind: str, value: Any, unit: Optional[str], attributes: Optional[dict[str, Any]]
) -> None:
    client = get_client()
    if not client._recording or client.transport is None:
        return
    try:
        value = float(value)
    except (TypeError, ValueError):
        _sdk_logger.debug("metric %r dropped: %r is not a number", name, value)
        return
    try:
        attrs: dict[str, Any] = {}
        if attributes:
            for key, item in attributes.items():
                # str, int and bool stay as they are (format_attribute's answer, sooner).
                attrs[key] = item if item.__class__ in _PLAIN else format_attribute(item)
        current = get_current_scope()
        data = current._d
        span = data.span
        if span is not None and not _is_noop(span):
            trace_id: str | None = span.trace_id
            # An unsampled streamed span: no span_id (as sentry_sdk).
            span_id: str | None = None if getattr(span, "_noop", False) else span.span_id
        else:
            trace_id = current.get_active_propagation_context().trace_id
            external = get_external_propagation_context()
            span_id = external[1] if external is not None else None
        # As sentry_sdk 2.75's: a metric freezes the trace's dynamic sampling context.
        current._fix_dynamic_sampling_context(client)
        isolation = get_isolation_scope()._d
        global_ = get_global_scope()._d
        if data.attributes or isolation.attributes or global_.attributes:
            merged = dict(global_.attributes)
            merged.update(isolation.attributes)
            merged.update(data.attributes)
            for key, item in merged.items():
                if key not in attrs:
                    attrs[key] = format_attribute(item)
        user = data.user or isolation.user or global_.user
        if user and _data_collection.user_info(client.options):
            _add_user(attrs, user)
        timestamp = clock.now()
        state = _state(client)
        hook = state.hook
        if hook is None:
            # Nobody sees the metric before it is encoded: a tuple, and the SDK's
            # attributes (the same for every metric of the client) join it then.
            state.batcher.add((timestamp, trace_id, span_id, name, kind, value, unit, attrs))
            return
        _add_static(client, attrs)
        metric: Metric = {
            "timestamp": timestamp,
            "trace_id": trace_id,
            "span_id": span_id,
            "name": name,
            "type": kind,
            "value": value,
            "unit": unit,
            "attributes": attrs,
        }
        result = client._run_user_hook(hook, metric, {}, on_error=_RAISED)
        if result is _RAISED:
            client.outcomes.record(DropReason.CALLBACK_ERROR, DataCategory.TRACE_METRIC)
        elif not isinstance(result, dict):
            client.outcomes.record(DropReason.BEFORE_SEND, DataCategory.TRACE_METRIC)
        else:
            state.batcher.add(result)
    except Exception:  # a metric must never fail the caller
        _sdk_logger.debug("metric %r dropped", name, exc_info=True)


_RAISED: Any = object()
_PLAIN = frozenset({str, int, bool})


def _is_noop(span: Any) -> bool:
    # A NoOpSpan can exist only once tracing is loaded; metrics do not load it.
    module = sys.modules.get("tripwire.tracing._span")
    return module is not None and isinstance(span, module.NoOpSpan)


def _add_user(attrs: dict[str, Any], user: Any) -> None:
    if isinstance(user, dict):
        for attribute, field in _USER_ATTRIBUTES:
            found = user.get(field)
            if found is not None and attribute not in attrs:
                attrs[attribute] = found


def _add_static(client: BaseClient, attrs: dict[str, Any]) -> None:
    for key, item in _static_attributes(client):
        if key not in attrs:
            attrs[key] = item


# -- batching and the wire form --------------------------------------------------------------

# Entries of an encoder's caches of encoded names, ids and attributes; the caches are
# emptied when they reach it (metric names and attribute values are mostly few).
_CACHE_SIZE = 2048


class _Encoder:
    """Builds one client's ``trace_metric`` envelopes.

    A metric nobody saw before it is encoded (no ``before_send_metric``: a tuple) is
    written straight to JSON from fragments: the SDK's attributes, the same for every
    metric of the client, are encoded once, and names, ids and attributes come from
    bounded caches (encoding them is most of a metric's cost). Anything else (a
    metric a hook returned, a scope attribute shadowing one of the SDK's, a value
    JSON cannot hold) takes the generic path, `wire_form` then `_json.dumps`.
    """

    __slots__ = ("_attributes", "_strings", "client", "fragment", "static_keys")

    def __init__(self, client: BaseClient) -> None:
        self.client = weakref.ref(client)
        static = _static_attributes(client)
        self.static_keys = frozenset(key for key, _ in static)
        self.fragment = _json.dumps({key: _typed(item) for key, item in static})[1:-1]
        self._strings: dict[str, bytes] = {}
        self._attributes: dict[tuple[str, type, Any], bytes] = {}

    def _string(self, value: str) -> bytes:
        found = self._strings.get(value)
        if found is None:
            if len(self._strings) >= _CACHE_SIZE:
                self._strings.clear()
            found = self._strings[value] = _json.dumps(value)
        return found

    def _attribute(self, key: str, value: Any) -> bytes:
        try:
            cache_key = (key, value.__class__, value)
            found = self._attributes.get(cache_key)
        except TypeError:  # a list: not cached
            return _json.dumps({key: _typed(value)})[1:-1]
        if found is None:
            if len(self._attributes) >= _CACHE_SIZE:
                self._attributes.clear()
            found = self._attributes[cache_key] = _json.dumps({key: _typed(value)})[1:-1]
        return found

    def encode(self, item: Any) -> bytes | None:
        """One metric's JSON (None if it cannot be sent)."""
        if isinstance(item, tuple):
            timestamp, trace_id, span_id, name, kind, value, unit, attrs = item
            if (
                self.static_keys.isdisjoint(attrs)
                and isfinite(value)
                and isinstance(timestamp, float)
                and isinstance(name, str)
            ):
                try:
                    return self._fast(item)
                except Exception:
                    _sdk_logger.debug("metric %r: generic encoding", name, exc_info=True)
            client = self.client()
            if client is not None:
                _add_static(client, attrs)
            item = {
                "timestamp": timestamp,
                "trace_id": trace_id,
                "span_id": span_id,
                "name": name,
                "type": kind,
                "value": value,
                "unit": unit,
                "attributes": attrs,
            }
        wired = wire_form(item)
        return _json.dumps(wired) if wired is not None else None

    def _fast(self, item: tuple[Any, ...]) -> bytes:
        timestamp, trace_id, span_id, name, kind, value, unit, attrs = item
        string = self._string
        if attrs:
            attribute = self._attribute
            encoded = [
                attribute(key if key.__class__ is str else str(key), found)
                for key, found in attrs.items()
            ]
            encoded.append(self.fragment)
            attributes = b",".join(encoded)
        else:
            attributes = self.fragment
        tail = b""
        if trace_id is not None:
            tail = b',"trace_id":' + string(trace_id)
        if span_id is not None:
            tail += b',"span_id":' + string(span_id)
        if unit is not None:
            tail += b',"unit":' + (string(unit) if isinstance(unit, str) else _json.dumps(unit))
        # %a of a float is its repr, as JSON writes it (finite: checked by `encode`).
        return b'{"timestamp":%a,"name":%b,"type":%b,"value":%a,"attributes":{%b}%b}' % (
            timestamp,
            string(name),
            string(kind),
            value,
            attributes,
            tail,
        )

    def build(self, batch: list[Any]) -> Envelope | None:
        """The envelope carrying `batch` as one ``trace_metric`` item (None if none is usable)."""
        encoded = [found for found in map(self.encode, batch) if found is not None]
        if not encoded:
            return None
        payload = b'{"version":2,"items":[' + b",".join(encoded) + b"]}"
        envelope = Envelope(headers={"sent_at": format_timestamp(clock.now())})
        envelope.add_item(
            Item(
                payload=PayloadRef(bytes=payload),
                type="trace_metric",
                content_type=METRIC_CONTENT_TYPE,
                headers={"item_count": len(encoded)},
            )
        )
        return envelope


def _make_batcher(owner: BaseClient) -> Batcher[Any]:
    return Batcher(
        owner,
        _Encoder(owner).build,
        DataCategory.TRACE_METRIC,
        name="metrics",
        flush_size=FLUSH_SIZE,
        max_size=MAX_SIZE,
        interval=INTERVAL,
    )


def _typed(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
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
    return _typed(value)


def wire_form(metric: Metric) -> dict[str, Any] | None:
    """One metric as it goes in the ``items`` of a ``trace_metric`` item (None if unusable)."""
    try:
        raw = metric.get("attributes")
        attrs = raw if isinstance(raw, dict) else {}
        out: dict[str, Any] = {
            "timestamp": metric.get("timestamp"),
            "name": metric.get("name"),
            "type": metric.get("type"),
            "value": metric.get("value"),
            "attributes": {str(key): _typed(item) for key, item in attrs.items()},
        }
        for key in ("trace_id", "span_id", "unit"):
            found = metric.get(key)
            if found is not None:
                out[key] = found
        return out
    except Exception:
        _sdk_logger.debug("a metric could not be encoded; dropped", exc_info=True)
        return None


__all__ = ["count", "distribution", "gauge"]
