"""Attributes a span is given when it starts, under span streaming only.

sentry_sdk 2.75's streaming integrations pass some attributes to
`traces.start_span(attributes=...)`: the sampling context of a segment
(``transaction_context["data"]`` for `traces_sampler`) and the attribute rules of
`ignore_spans` see those, and not the ones set later. tripwire's integrations start
their spans with the transaction-model calls, which accept ``attributes=`` only when
they give streamed spans; in transaction mode the keyword must not reach them. So an
integration spreads what these return into its call (``**segment_start(...)``) and
still sets the same keys as data afterwards, which a transaction needs and a streamed
span takes as the same attributes again.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Optional

from tripwire.scope._current import get_client, get_current_scope, get_isolation_scope
from tripwire.tracing._sampling import has_span_streaming_enabled

_NONE: dict[str, Any] = {}


def segment_start(
    attributes: Mapping[str, Any], options: Optional[Mapping[str, Any]] = None
) -> dict[str, Any]:
    """``{"attributes": ...}`` for `start_transaction` under span streaming, else ``{}``."""
    try:
        if has_span_streaming_enabled(get_client().options if options is None else options):
            return {"attributes": dict(attributes)}
    except Exception:
        pass
    return _NONE


def child_start(attributes: Mapping[str, Any], parent: Any = None) -> dict[str, Any]:
    """``{"attributes": ...}`` for `start_span` / `start_child` when the parent (the given
    one, else the active span) is a streamed span, else ``{}``.

    A span started with no parent is never sent (in either mode) and takes no attributes.
    """
    try:
        if parent is None:
            parent = get_current_scope()._d.span
            if parent is None:
                parent = get_isolation_scope()._d.span
        if getattr(parent, "_streamed", False):
            return {"attributes": dict(attributes)}
    except Exception:
        pass
    return _NONE


__all__ = ["child_start", "segment_start"]
