"""Drops are values: one `Drop` type, recorded in one place.

Pipeline steps return `Drop(reason)` instead of calling a recorder; the client
turns it into an `Outcome` and `Outcomes.record` counts it. The counts feed
client reports (sent to the server) and are readable in-process via
`tripwire.get_client().outcomes.snapshot()`.
"""

from __future__ import annotations

import enum
import threading


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

    def __init__(self, reason: DropReason, category: DataCategory, quantity: int = 1) -> None:
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
        return f"Outcome({self.reason.value!r}, {self.category.value!r}, {self.quantity})"


class Outcomes:
    """Thread-safe loss counters, drained into client reports."""

    __slots__ = ("_lock", "_pending", "_total")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: dict[tuple[DropReason, DataCategory], int] = {}
        self._total: dict[tuple[DropReason, DataCategory], int] = {}

    def record(
        self, reason: DropReason | str, category: DataCategory | str, quantity: int = 1
    ) -> None:
        """Count `quantity` items of `category` lost for `reason`."""
        key = (DropReason(reason), DataCategory(category))
        with self._lock:
            self._pending[key] = self._pending.get(key, 0) + quantity
            self._total[key] = self._total.get(key, 0) + quantity

    def snapshot(self) -> dict[tuple[str, str], int]:
        """All losses since the client started, as {(reason, category): count}."""
        with self._lock:
            return {(r.value, c.value): n for (r, c), n in self._total.items()}

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
        self._lock = threading.Lock()
        self._pending = {}
