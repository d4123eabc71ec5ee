"""Merging scope layers into an event (global -> isolation -> current -> per-call).

`apply_layers` is a short list of named merges, each owning one rule:

- `ScopeView`: one pass over the layers collects what each merge needs.
- `merge_scalars`: level, transaction name, user, fingerprint. The last layer that
  sets one wins; an event's own user and fingerprint win over the scopes' (as in
  sentry_sdk); transactions keep their own level and name.
- `merge_dicts`: tags and extra, layered in order on top of the event's own values.
- `merge_contexts`: contexts likewise, plus `contexts.trace` from the scope that holds
  the span (or propagation context) when the event has none.
- `merge_breadcrumbs` (`capture/breadcrumbs.py`): the scopes' rings in their cached
  wire form; errors always carry a `breadcrumbs` entry, transactions none.
- feature flags into `contexts.flags` (`scope/_flags.apply_flags`), attachments into
  the hint.
- `run_error_processors`, then `run_event_processors` (global ones first): user code,
  each may drop the event (a `Drop`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Union

from tripwire._log import logger
from tripwire.capture.breadcrumbs import merge_breadcrumbs
from tripwire.outcomes import Drop, DropReason
from tripwire.scope import _current
from tripwire.scope._flags import apply_flags
from tripwire.scope._global_processors import global_event_processors

if TYPE_CHECKING:
    from tripwire._client_base import BaseClient
    from tripwire.scope._scope import Scope
    from tripwire.types import EventDict, Hint

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
    view = ScopeView(layers)
    is_transaction = event.get("type") == "transaction"
    merge_scalars(event, view, is_transaction)
    if view.tags:
        merge_dicts(event, "tags", view.tags)
    if view.extras:
        merge_dicts(event, "extra", view.extras)
    merge_contexts(event, view, layers)
    if not is_transaction:
        if view.crumb_rings:
            merge_breadcrumbs(event, view.crumb_rings, client, share_crumbs)
        elif "breadcrumbs" not in event:
            event["breadcrumbs"] = {"values": []}  # always present, as in sentry_sdk
        if view.has_flags:
            apply_flags(event, layers)  # before any processor sees the event, as sentry_sdk
    # Always a list, as sentry_sdk's: hooks and processors may add to it.
    attachments = hint.setdefault("attachments", [])
    if view.attachments:
        attachments.extend(view.attachments)
    if view.error_processors:
        result = run_error_processors(event, hint, view.error_processors, client)
        if isinstance(result, Drop):
            return result
        event = result
    return run_event_processors(event, hint, view.event_processors, client)


class ScopeView:
    """What the layers hold, collected in one pass (later layers last)."""

    __slots__ = (
        "attachments",
        "contexts",
        "crumb_rings",
        "error_processors",
        "event_processors",
        "extras",
        "fingerprint",
        "has_flags",
        "level",
        "tags",
        "trace_scope",
        "transaction",
        "tx_info",
        "user",
    )

    def __init__(self, layers: Sequence[Scope]) -> None:
        self.level: Any = None
        self.user: Any = None
        self.fingerprint: Any = None
        self.transaction: Any = None
        self.tx_info: Any = None
        self.tags: list[dict[str, Any]] = []
        self.extras: list[dict[str, Any]] = []
        self.contexts: list[dict[str, Any]] = []
        self.crumb_rings: list[Any] = []
        self.attachments: list[Any] = []
        self.error_processors: list[Any] = []
        self.event_processors: list[Any] = []
        self.trace_scope: Scope | None = None
        self.has_flags = False
        for scope in layers:
            data = scope._d
            self._scalars(data)
            self._containers(data)
            if data.span is not None or data.propagation_context is not None:
                self.trace_scope = scope
            if data.flags is not None:
                self.has_flags = True

    def _scalars(self, data: Any) -> None:
        if data.level is not None:
            self.level = data.level
        if data.user is not None:
            self.user = data.user
        if data.fingerprint is not None:
            self.fingerprint = data.fingerprint
        if data.transaction is not None:
            self.transaction = data.transaction
            self.tx_info = data.transaction_info

    def _containers(self, data: Any) -> None:
        if data.tags:
            self.tags.append(data.tags)
        if data.extras:
            self.extras.append(data.extras)
        if data.contexts:
            self.contexts.append(data.contexts)
        if data.breadcrumbs:
            self.crumb_rings.append(data.breadcrumbs)
        if data.attachments:
            self.attachments.extend(data.attachments)
        if data.error_processors:
            self.error_processors.extend(data.error_processors)
        if data.event_processors:
            self.event_processors.extend(data.event_processors)


def merge_scalars(event: EventDict, view: ScopeView, is_transaction: bool) -> None:
    """Level, transaction name and info, user, fingerprint."""
    if not is_transaction:
        if view.level is not None:
            event["level"] = view.level
        if view.transaction is not None:
            event["transaction"] = view.transaction
            event["transaction_info"] = dict(view.tx_info or {})
    # Always present, as sentry_sdk (a transaction built by hand has none of its own).
    if "transaction_info" not in event:
        event["transaction_info"] = {}
    if view.user is not None and event.get("user") is None:
        event["user"] = view.user
    if view.fingerprint is not None and event.get("fingerprint") is None:
        event["fingerprint"] = view.fingerprint


def merge_dicts(event: EventDict, key: str, layers: list[dict[str, Any]]) -> None:
    """`event[key]` (tags, extra): the event's own values, then each layer's on top."""
    merged = event.get(key) or {}
    for layer in layers:
        merged = {**merged, **layer}
    event[key] = merged


def merge_contexts(event: EventDict, view: ScopeView, layers: Sequence[Scope]) -> None:
    """Contexts, layered; an event without `contexts.trace` gets its scope's trace.

    (The SDK's own transactions have theirs: only one built by hand and passed to
    `capture_event` has none, and Relay refuses a transaction without it.)
    """
    contexts = event.get("contexts")
    contexts = dict(contexts) if contexts else {}
    for layer in view.contexts:
        contexts.update(layer)
    if "trace" not in contexts:
        source = (
            view.trace_scope if view.trace_scope is not None else (layers[-1] if layers else None)
        )
        if source is not None:
            contexts["trace"] = source.get_trace_context()
    if contexts:
        event["contexts"] = contexts


def run_error_processors(
    event: EventDict, hint: Hint, processors: list[Any], client: BaseClient
) -> ApplyResult:
    """The scopes' error processors (only for an event with `exc_info`)."""
    exc_info = hint.get("exc_info")
    if exc_info is None:
        return event
    for processor in processors:
        result = client._run_user_hook(processor, event, exc_info)
        if not isinstance(result, dict):
            return _processor_drop("error processor", processor, result)
        event = result
    return event


def run_event_processors(
    event: EventDict, hint: Hint, processors: list[Any], client: BaseClient
) -> ApplyResult:
    """Global event processors, then the scopes' own, with `client` as the capturing one."""
    capturing = _current._capturing
    outer = capturing.client
    capturing.client = client
    try:
        for processor in (*global_event_processors, *processors):
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
