"""Drops are values: one `Drop` type, recorded in one place.

Pipeline steps return `Drop(reason)` instead of calling a recorder; the client
turns it into an `Outcome` and `Outcomes.record` counts it. The counts feed
client reports (sent to the server) and are readable in-process via
`tripwire.get_client().outcomes.snapshot()`.
"""

from __future__ import annotations

import enum
import threading
from typing import Callable, Union


class DropReason(str, enum.Enum):
    """Why something was not sent. Values are the protocol's client-report reasons."""

    QUEUE_OVERFLOW = "queue_overflow"
    CACHE_OVERFLOW = "cache_overflow"
    BUFFER_OVERFLOW = "buffer_overflow"
    RATELIMIT_BACKOFF = "ratelimit_backoff"
    NETWORK_ERROR = "network_error"
    SAMPLE_RATE = "sample_rate"
    BEFORE_SEND = "before_send"
    EVENT_PROCESSOR = "event_processor"
    SEND_ERROR = "send_error"
    INTERNAL_SDK_ERROR = "internal_sdk_error"
    INSUFFICIENT_DATA = "insufficient_data"
    BACKPRESSURE = "backpressure"
    # A user callback (before_send, before_send_transaction...) raised.
    CALLBACK_ERROR = "callback_error"
    # Not client-report reasons: counted locally only (the user asked for them).
    IGNORED = "ignored"
    DUPLICATE = "duplicate"


# Reasons the protocol does not define are never sent to the server.
LOCAL_ONLY = frozenset({DropReason.IGNORED, DropReason.DUPLICATE})


class DataCategory(str, enum.Enum):
    """Rate-limit / client-report data categories."""

    DEFAULT = "default"
    ERROR = "error"
    TRANSACTION = "transaction"
    SPAN = "span"
    ATTACHMENT = "attachment"
    SESSION = "session"
    PROFILE = "profile"
    PROFILE_CHUNK = "profile_chunk"
    MONITOR = "monitor"
    LOG_ITEM = "log_item"
    LOG_BYTE = "log_byte"
    INTERNAL = "internal"
    METRIC_BUCKET = "metric_bucket"
    TRACE_METRIC = "trace_metric"
    REPLAY = "replay"
    USER_REPORT_V2 = "user_report_v2"


# THE table: envelope item type -> the data category that rate limits and outcomes
# (client reports, the server's own) count it under. Read by the SDK
# (`envelope.Item.data_category`, hence the transport's rate limiting and client
# reports) and by the local server (rate limiting and outcomes). Values follow the
# protocol (develop.sentry.dev/sdk/foundations/transport/rate-limiting/, Relay's
# `Item::quantities`; SDK-side names as in sentry_sdk's `Item.data_category`).
# An item type not listed counts as ``default``.
ITEM_CATEGORIES: dict[str, str] = {
    "event": DataCategory.ERROR.value,
    "transaction": DataCategory.TRANSACTION.value,
    "attachment": DataCategory.ATTACHMENT.value,
    "session": DataCategory.SESSION.value,
    "sessions": DataCategory.SESSION.value,
    "profile": DataCategory.PROFILE.value,
    "profile_chunk": DataCategory.PROFILE_CHUNK.value,
    "check_in": DataCategory.MONITOR.value,
    "client_report": DataCategory.INTERNAL.value,
    "log": DataCategory.LOG_ITEM.value,
    "otel_log": DataCategory.LOG_ITEM.value,
    "span": DataCategory.SPAN.value,
    "otel_span": DataCategory.SPAN.value,
    "statsd": DataCategory.METRIC_BUCKET.value,
    "metric_buckets": DataCategory.METRIC_BUCKET.value,
    "metric_meta": DataCategory.METRIC_BUCKET.value,
    "trace_metric": DataCategory.TRACE_METRIC.value,
    "replay_event": DataCategory.REPLAY.value,
    "replay_recording": DataCategory.REPLAY.value,
    "replay_video": DataCategory.REPLAY.value,
    "feedback": DataCategory.USER_REPORT_V2.value,
}


def item_category(item_type: str | None) -> str:
    """The data category of an envelope item type (``default`` if unknown or None)."""
    return ITEM_CATEGORIES.get(item_type or "", "default")


# A reason or category the SDK does not know (a transport subclass may record any
# string, as sentry_sdk's does) is kept as that string.
Reason = Union[DropReason, str]
Category = Union[DataCategory, str]
# Where a client forwards its losses: a transport's `record_lost_event` (see
# `tripwire.transport.lost_event_forwarder`), called as (reason, category, quantity).
Forward = Callable[[str, str, int], None]


def _reason(value: Reason) -> Reason:
    if isinstance(value, DropReason):
        return value
    try:
        return DropReason(value)
    except ValueError:
        return str(value)


def _category(value: Category) -> Category:
    if isinstance(value, DataCategory):
        return value
    try:
        return DataCategory(value)
    except ValueError:
        return str(value)


def wire_value(value: Reason | Category) -> str:
    """The protocol string of a reason or category (enum member or plain string)."""
    return value.value if isinstance(value, enum.Enum) else value


class Drop:
    """Returned by a pipeline step to drop the event."""

    __slots__ = ("detail", "reason")

    def __init__(self, reason: DropReason, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail

    def __repr__(self) -> str:
        return f"Drop({self.reason.value!r}, {self.detail!r})"


class Outcome:
    """One recorded loss: `quantity` items of `category` lost for `reason`."""

    __slots__ = ("category", "quantity", "reason")

    def __init__(self, reason: Reason, category: Category, quantity: int = 1) -> None:
        self.reason = reason
        self.category = category
        self.quantity = quantity

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Outcome):
            return NotImplemented
        return (self.reason, self.category, self.quantity) == (
            other.reason,
            other.category,
            other.quantity,
        )

    def __hash__(self) -> int:
        return hash((self.reason, self.category, self.quantity))

    def __repr__(self) -> str:
        return (
            f"Outcome({wire_value(self.reason)!r}, {wire_value(self.category)!r}, {self.quantity})"
        )


class Outcomes:
    """Thread-safe loss counters, drained into client reports.

    `forward`, when set by the client, also hands every loss recorded here to a
    user transport's own `record_lost_event` (sentry_sdk reports every drop there).
    The lock is re-entrant: a signal handler that captures (and drops) while the
    code it interrupted is counting must not wait for that code.
    """

    __slots__ = ("_lock", "_pending", "_total", "forward")

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._pending: dict[tuple[Reason, Category], int] = {}
        self._total: dict[tuple[Reason, Category], int] = {}
        self.forward: Forward | None = None

    def record(self, reason: Reason, category: Category, quantity: int = 1) -> None:
        """Count `quantity` items of `category` lost for `reason` (and forward them)."""
        # The SDK's own calls pass members: no conversion (an unsampled transaction
        # records two outcomes, so this is on the tracing hot path).
        if type(reason) is not DropReason:
            reason = _reason(reason)
        if type(category) is not DataCategory:
            category = _category(category)
        key = (reason, category)
        self._count(key, quantity)
        forward = self.forward
        if forward is not None and key[0] not in LOCAL_ONLY:
            forward(wire_value(key[0]), wire_value(key[1]), quantity)

    def count(self, reason: Reason, category: Category, quantity: int = 1) -> None:
        """Count a loss without forwarding it (the transport's own record_lost_event)."""
        self._count((_reason(reason), _category(category)), quantity)

    def _count(self, key: tuple[Reason, Category], quantity: int) -> None:
        with self._lock:
            self._pending[key] = self._pending.get(key, 0) + quantity
            self._total[key] = self._total.get(key, 0) + quantity

    def snapshot(self) -> dict[tuple[str, str], int]:
        """All losses since the client started, as {(reason, category): count}."""
        with self._lock:
            return {(wire_value(r), wire_value(c)): n for (r, c), n in self._total.items()}

    def pending(self) -> bool:
        """Whether losses are waiting to be reported to the server."""
        return bool(self._pending)

    def drain(self) -> list[Outcome]:
        """Take the losses not yet reported to the server (local-only reasons excluded)."""
        with self._lock:
            pending, self._pending = self._pending, {}
        return [
            Outcome(reason, category, quantity)
            for (reason, category), quantity in pending.items()
            if reason not in LOCAL_ONLY
        ]

    def reset_after_fork(self) -> None:
        """The child starts with a fresh lock and nothing pending (the parent reports its own)."""
        self._lock = threading.RLock()
        self._pending = {}

    def __getstate__(self) -> tuple[dict[tuple[Reason, Category], int], ...]:
        # Picklable (a pickled Client carries its Outcomes): the lock is rebuilt and
        # the forwarder (bound to the old client's transport) is not kept.
        with self._lock:
            return dict(self._pending), dict(self._total)

    def __setstate__(self, state: tuple[dict[tuple[Reason, Category], int], ...]) -> None:
        self._lock = threading.RLock()
        self._pending, self._total = state
        self.forward = None
