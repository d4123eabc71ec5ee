"""Every fast-path marker of the capture path, with the rule each one encodes.

The capture steps skip work (serializing, scrubbing, encoding) for data the SDK
built itself and no user code has touched since. These markers are how the code
that built the data tells the steps so. Each rule holds only while no user code
(an event processor, `before_send`) has seen the event: the steps then fall back
to the full pass (`Capture.user_hooks_ran`).

- `SDK_BUILT_KEYS`: keys of an event the SDK builds bounded and JSON-safe by
  construction; the `serialize` step runs the serializer only on the other keys of
  an event built by the SDK (`built_by_sdk=True`).
- `PlainSpans`: a transaction's `spans` list whose every span the tracing code
  checked would come out of the serializer unchanged (`tracing._transaction`);
  the transaction `serialize` step skips them.
- `CrumbsBlock`: `event["breadcrumbs"]` when it is a scope ring's cached wire form
  (`capture.breadcrumbs.SharedRing`): already bounded and scrubbed, and its JSON is
  encoded once and spliced into the event's JSON (`capture.payload.EventPayload`).
- `INTERNAL`: the attribute an SDK-owned global event processor carries
  (`integrations._processors.add_internal_processor`): its output is JSON-safe, so
  running it does not count as user code touching the event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tripwire.capture.breadcrumbs import SharedRing

SDK_BUILT_KEYS = frozenset(
    {
        "event_id",
        "timestamp",
        "platform",
        "level",
        "sdk",
        "exception",
        "threads",
        "breadcrumbs",
        "modules",
        "release",
        "environment",
        "server_name",
        "dist",
        "transaction_info",
        "_meta",
        "type",
    }
)

INTERNAL = "_tripwire_internal"


def is_internal(processor: Any) -> bool:
    """Whether `processor` is SDK-owned (marked `INTERNAL`), not user code."""
    return bool(getattr(processor, INTERNAL, False))


class PlainSpans(list):  # type: ignore[type-arg]
    """A transaction's `spans`, known to need no serialization (see `_span_is_plain`).

    The transaction steps skip serializing spans of this type while no user code has
    touched the event.
    """

    __slots__ = ()


class CrumbsBlock(dict):  # type: ignore[type-arg]
    """`event["breadcrumbs"]` when it is a `SharedRing`: a plain dict to everyone
    else, but `EventPayload` splices its pre-encoded JSON instead of encoding it."""

    __slots__ = ("shared",)

    def __init__(self, shared: SharedRing) -> None:
        super().__init__(values=shared.values)
        self.shared = shared
