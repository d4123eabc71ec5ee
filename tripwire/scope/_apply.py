"""Merging scope layers into an event (global -> isolation -> current -> per-call).

Scalars: the last layer that sets one wins; an event's own user and fingerprint
win over the scopes' (as in sentry_sdk). Tags, extra and contexts: layers are
applied in order on top of the event's own values. Breadcrumbs: each scope's ring
contributes its crumbs in their cached wire form (see `_breadcrumbs.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Union

from tripwire._clock import to_epoch
from tripwire._log import logger
from tripwire.outcomes import Drop, DropReason
from tripwire.scope import _current
from tripwire.scope._breadcrumbs import CrumbsBlock
from tripwire.scope._flags import apply_flags

if TYPE_CHECKING:
    from tripwire.client import BaseClient
    from tripwire.scope._scope import Scope
    from tripwire.types import EventDict, EventProcessor, Hint

# Module-level processors added by integrations (sentry_sdk.scope.add_global_event_processor).
global_event_processors: list[EventProcessor] = []


def add_global_event_processor(processor: EventProcessor) -> EventProcessor:
    """Register a processor run on every event before the scopes' own processors."""
    global_event_processors.append(processor)
    return processor


ApplyResult = Union["EventDict", Drop]


def apply_layers(
    event: EventDict,
    hint: Hint,
    layers: Sequence[Scope],
    client: BaseClient,
    share_crumbs: bool = False,
) -> ApplyResult:
    """Apply the scopes' data and processors to `event` in place; a Drop if a processor drops it.

    `share_crumbs`: the breadcrumbs may be the client's cached wire forms (only when
    no user code will see, and possibly mutate, the event before it is serialized).
    """
    level = user = fingerprint = transaction = tx_info = None
    tags: list[dict[str, Any]] = []
    extras: list[dict[str, Any]] = []
    contexts: list[dict[str, Any]] = []
    crumb_rings = []
    attachments: list[Any] = []
    error_processors: list[Any] = []
    event_processors: list[Any] = []
    trace_scope = None
    has_flags = False
    for scope in layers:
        data = scope._d
        if data.level is not None:
            level = data.level
        if data.user is not None:
            user = data.user
        if data.fingerprint is not None:
            fingerprint = data.fingerprint
        if data.transaction is not None:
            transaction = data.transaction
            tx_info = data.transaction_info
        if data.tags:
            tags.append(data.tags)
        if data.extras:
            extras.append(data.extras)
        if data.contexts:
            contexts.append(data.contexts)
        if data.breadcrumbs:
            crumb_rings.append(data.breadcrumbs)
        if data.attachments:
            attachments.extend(data.attachments)
        if data.error_processors:
            error_processors.extend(data.error_processors)
        if data.event_processors:
            event_processors.extend(data.event_processors)
        if data.span is not None or data.propagation_context is not None:
            trace_scope = scope
        if data.flags is not None:
            has_flags = True

    is_transaction = event.get("type") == "transaction"
    if level is not None and not is_transaction:
        event["level"] = level
    if transaction is not None and not is_transaction:
        event["transaction"] = transaction
        event["transaction_info"] = dict(tx_info or {})
    elif "transaction_info" not in event and not is_transaction:
        event["transaction_info"] = {}
    if user is not None and event.get("user") is None:
        event["user"] = user
    if fingerprint is not None and event.get("fingerprint") is None:
        event["fingerprint"] = fingerprint
    if tags:
        merged = event.get("tags") or {}
        for layer in tags:
            merged = {**merged, **layer}
        event["tags"] = merged
    if extras:
        merged = event.get("extra") or {}
        for layer in extras:
            merged = {**merged, **layer}
        event["extra"] = merged

    event_contexts = event.get("contexts")
    event_contexts = dict(event_contexts) if event_contexts else {}
    for layer in contexts:
        event_contexts.update(layer)
    if "trace" not in event_contexts and not is_transaction:
        source = trace_scope if trace_scope is not None else (layers[-1] if layers else None)
        if source is not None:
            event_contexts["trace"] = source.get_trace_context()
    if event_contexts:
        event["contexts"] = event_contexts

    if not is_transaction:
        if crumb_rings:
            _merge_breadcrumbs(event, crumb_rings, client, share_crumbs)
        elif "breadcrumbs" not in event:
            event["breadcrumbs"] = {"values": []}  # always present, as in sentry_sdk
    if attachments:
        hint.setdefault("attachments", []).extend(attachments)
    if has_flags and not is_transaction:
        apply_flags(event, layers)  # before any processor sees the event, as sentry_sdk

    exc_info = hint.get("exc_info")
    if error_processors and exc_info is not None:
        for processor in error_processors:
            result = client._run_user_hook(processor, event, exc_info)
            if not isinstance(result, dict):
                return _processor_drop("error processor", processor, result)
            event = result
    capturing = _current._capturing
    outer = capturing.client
    capturing.client = client
    try:
        for processor in (*global_event_processors, *event_processors):
            result = client._run_user_hook(processor, event, hint)
            if not isinstance(result, dict):
                return _processor_drop("event processor", processor, result)
            event = result
    finally:
        capturing.client = outer
    return event


def _processor_drop(kind: str, processor: Any, result: Any) -> Drop:
    # None drops the event on purpose; anything else that is not an event dict is a
    # broken processor: the event cannot go on, and is counted all the same.
    if result is None:
        logger.debug("%s %r dropped the event", kind, processor)
        return Drop(DropReason.EVENT_PROCESSOR, repr(processor))
    logger.warning(
        "%s %r returned a %s, not an event dict: event dropped",
        kind,
        processor,
        type(result).__name__,
    )
    return Drop(DropReason.EVENT_PROCESSOR, f"{processor!r} returned {type(result).__name__}")


def _merge_breadcrumbs(event: EventDict, rings: list[Any], client: BaseClient, share: bool) -> None:
    # As sentry_sdk 2.x: each scope's ring is capped when a crumb is added; the merged
    # list is not capped again. Crumbs that fell off a ring are told by a length
    # annotation, `_meta.breadcrumbs[""] = {"len": kept + fallen off}`.
    own = event.get("breadcrumbs")
    own_values = own.get("values") if isinstance(own, dict) else own
    truncated = 0
    for ring in rings:
        truncated += getattr(ring, "truncated", 0)
    if len(rings) == 1 and not own_values:
        # The common case: one scope's ring, as it was for the previous event.
        shared = client._crumb_wire.ring_wire(rings[0])
        if share:
            event["breadcrumbs"] = CrumbsBlock(shared)
        else:
            event["breadcrumbs"] = {"values": [dict(v) for v in shared.values]}
        if shared.metas or truncated:
            _crumbs_meta(event, dict(shared.metas), len(shared.values), truncated)
        return
    crumbs: list[Any] = list(own_values) if isinstance(own_values, list) else []
    for ring in rings:
        crumbs.extend(ring)
    if len(rings) > 1 or own_values:
        # Crumbs from several scopes interleave in time; order them as sentry_sdk does.
        crumbs.sort(key=_crumb_time)
    wire = client._crumb_wire
    values = []
    metas = {}
    for index, crumb in enumerate(crumbs):
        ready, meta = wire(crumb if isinstance(crumb, dict) else {"message": crumb})
        values.append(ready if share else dict(ready))
        if meta:
            metas[str(index)] = meta
    event["breadcrumbs"] = {"values": values}
    if metas or truncated:
        _crumbs_meta(event, metas, len(values), truncated)


def breadcrumbs_length_meta(kept: int, truncated: int) -> dict[str, Any]:
    """The `_meta` node sentry_sdk gives breadcrumbs when some fell off: {"len": total}."""
    return {"len": kept + truncated}


def _crumbs_meta(event: EventDict, metas: dict[str, Any], kept: int, truncated: int) -> None:
    node = event.setdefault("_meta", {}).setdefault("breadcrumbs", {})
    if truncated:
        node[""] = breadcrumbs_length_meta(kept, truncated)
    if metas:
        node["values"] = metas


def _crumb_time(crumb: Any) -> float:
    # The sort key when several scopes contribute breadcrumbs: runs once per crumb.
    if not isinstance(crumb, dict):
        return 0.0
    ts = crumb.get("timestamp")
    if isinstance(ts, str):
        from datetime import datetime  # rare (user-supplied string); kept off import

        try:
            return datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
        except ValueError:
            return 0.0
    return to_epoch(ts) or 0.0
