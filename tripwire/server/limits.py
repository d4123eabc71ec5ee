"""Byte limits of the local backend: per request, per item, in flight, stored.

The defaults are Sentry's documented ones (docs.sentry.io "Size Limits" and the
SDK attachment pages; Relay's `Limits` defaults for the item types those pages do
not name):

- a request body as sent: 20 MiB ("at most 20MB for a compressed request");
- an envelope once decompressed: 100 MiB ("at most 100MB of uncompressed
  attachments per event"; Relay's ``max_envelope_size`` was 100 MiB for years);
- an event or transaction: 1 MiB decompressed ("Events that exceed ... 1MB
  decompressed will be rejected"); so is a legacy ``store`` body;
- attachments: 100 MiB each and together per envelope;
- Relay's defaults for the rest: check-in 100 KiB, client report 100 KiB,
  sessions 10 MiB, log container 12 MiB, span 10 MiB, profile 50 MiB,
  replay recording 100 MiB (uncompressed), statsd / metric buckets 1 MiB.

Beyond the per-request limits, what all requests hold at once is bounded
(`ByteBudget`: a request that would take more gets a 503 and ``Retry-After``), and
so is the database (`Store.max_bytes`: 507 beyond it), and what the envelope
inspector keeps (``INSPECT_*``).
"""

from __future__ import annotations

import threading
from typing import Optional

KiB = 1024
MiB = 1024 * KiB

MAX_BODY_BYTES = 20 * MiB
MAX_ENVELOPE_BYTES = 100 * MiB
MAX_EVENT_BYTES = 1 * MiB
MAX_ATTACHMENTS_BYTES = 100 * MiB
# The database grows to this and then refuses new data (507) until it is cleared.
MAX_DB_BYTES = 1024 * MiB

# The envelope inspector (`tripwire.server.inspector`): what it keeps of each payload,
# of each envelope, and of all envelopes together (the oldest records go first).
INSPECT_ITEM_BYTES = 64 * KiB
INSPECT_ENVELOPE_BYTES = 256 * KiB
INSPECT_TOTAL_BYTES = 32 * MiB
INSPECT_COUNT = 1000

ITEM_LIMITS: dict[str, int] = {
    "event": MAX_EVENT_BYTES,
    "transaction": MAX_EVENT_BYTES,
    "feedback": MAX_EVENT_BYTES,
    "user_report": MAX_EVENT_BYTES,
    "replay_event": MAX_EVENT_BYTES,
    "security": MAX_EVENT_BYTES,
    "raw_security": MAX_EVENT_BYTES,
    "nel": MAX_EVENT_BYTES,
    "unreal_report": MAX_EVENT_BYTES,
    "attachment": MAX_ATTACHMENTS_BYTES,
    "check_in": 100 * KiB,
    "client_report": 100 * KiB,
    "session": 10 * MiB,
    "sessions": 10 * MiB,
    "log": 12 * MiB,
    "otel_log": 12 * MiB,
    "span": 10 * MiB,
    "otel_span": 10 * MiB,
    "profile": 50 * MiB,
    "profile_chunk": 50 * MiB,
    "replay_recording": 100 * MiB,
    "replay_video": 100 * MiB,
    "statsd": 1 * MiB,
    "metric_buckets": 1 * MiB,
    "trace_metric": 1 * MiB,
}

# How many times its decompressed size a request may hold at once: the decoded body,
# then the parsed items (a copy), then SQLite's copy of a blob while binding it.
HOLD_FACTOR = 2


def item_limit(item_type: str, envelope_limit: int) -> int:
    """The largest payload an item of `item_type` may have."""
    return min(ITEM_LIMITS.get(item_type, envelope_limit), envelope_limit)


def default_inflight_bytes(max_body_bytes: int, max_envelope_bytes: int) -> int:
    """Enough for one request of the largest size, not two."""
    return HOLD_FACTOR * max_envelope_bytes + max_body_bytes


class BudgetExceeded(Exception):
    """Taking the bytes would put the budget over its capacity."""


class ByteBudget:
    """Bytes held by requests in progress, bounded; shared by the threads that decode."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.used = 0
        self.peak = 0
        self._lock = threading.Lock()

    def take(self, n: int) -> None:
        """Reserve `n` bytes. Raises `BudgetExceeded` (reserving nothing) if they do not fit."""
        with self._lock:
            if self.used + n > self.capacity:
                raise BudgetExceeded(
                    f"the server holds {self.used // MiB} MiB for other requests and this "
                    f"one needs more than its limit of {self.capacity // MiB} MiB allows: "
                    "retry later"
                )
            self.used += n
            if self.used > self.peak:
                self.peak = self.used

    def give(self, n: int) -> None:
        """Return `n` reserved bytes."""
        with self._lock:
            self.used = max(0, self.used - n)


class Hold:
    """What one request has reserved from a `ByteBudget`; `release` returns it all."""

    __slots__ = ("budget", "held")

    def __init__(self, budget: Optional[ByteBudget]) -> None:
        self.budget = budget
        self.held = 0

    def take(self, n: int) -> None:
        """Reserve `n` more bytes for this request (`BudgetExceeded` if they do not fit)."""
        if self.budget is not None and n > 0:
            self.budget.take(n)
            self.held += n

    def release(self) -> None:
        """Return everything this request reserved."""
        if self.budget is not None and self.held:
            self.budget.give(self.held)
        self.held = 0
