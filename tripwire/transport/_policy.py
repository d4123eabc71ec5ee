"""Delivery policy, no I/O: what to send, in what bytes, and what a response means.

The worker thread calls `Sender.encode` to turn a queued `Envelope` into an
`Entry` (rate-limited items removed and counted, oversized items trimmed, a
client report attached when one is due, JSON encoded; compressed when sent), then hands
`Entry.body()` to the HTTP client and asks `Sender.judge` what the response means.
Everything here is deterministic given its clocks, so it is tested with a fake
HTTP client instead of a socket.
"""

from __future__ import annotations

import enum
import time
import zlib
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, Callable, Optional

from tripwire._json import dumps
from tripwire._log import logger
from tripwire.envelope import Envelope
from tripwire.outcomes import DropReason
from tripwire.transport import _trim
from tripwire.transport._client_reports import report_item

if TYPE_CHECKING:
    from tripwire.envelope import Item
    from tripwire.outcomes import Outcome
    from tripwire.transport._ratelimit import RateLimits

# Item types dropped first when the queue is full: errors, check-ins and sessions win.
LOW_PRIORITY_TYPES = frozenset(
    {
        "transaction",
        "span",
        "log",
        "otel_log",
        "profile",
        "profile_chunk",
        "statsd",
        "metric_buckets",
        "metric_meta",
        "trace_metric",
        "replay_event",
        "replay_recording",
        "replay_video",
    }
)

# Item types whose envelopes are sent strictly in order, never while another request
# is out: a session's updates and a monitor's check-ins describe one thing over time.
# Everything else is keyed by its own id, and may overlap with a neighbour.
ORDERED_TYPES = frozenset({"session", "sessions", "check_in"})

# Python object overhead charged per queued entry, on top of its bytes.
ENTRY_OVERHEAD = 200

# Client reports ride along with outgoing envelopes at most this often (seconds);
# flush() sends one at once.
REPORT_INTERVAL = 30.0

_CLIENT_REPORT = "client_report"


class Entry:
    """One envelope encoded for the wire, waiting in the backlog or on disk.

    `data` is one of three forms: the envelope's plain bytes; the same bytes
    deflated against a preset dictionary (`zdict`, a recent envelope: events of one
    process share most of their bytes, so this is about ten times smaller than
    gzip and cheaper to produce; the worker packs queued entries this way); or,
    when `encoding` is set, the finished request body (read back from the spool).

    The request body itself is made by `body()` and kept until the entry is done
    with; the worker usually makes it while the previous request is out.

    Attributes:
        summary: What the envelope holds, as (data category, quantity) pairs, for
            counting it if it is lost.
        categories: The rate-limit categories of its items.
        low_priority: True if it holds only transactions, spans, logs and the like.
        ordered: True if it must not be sent while another request is out
            (see `ORDERED_TYPES`).
    """

    __slots__ = (
        "attempts",
        "categories",
        "created",
        "data",
        "encoding",
        "low_priority",
        "ordered",
        "seq",
        "size",
        "summary",
        "wire",
        "zdict",
    )

    def __init__(
        self,
        data: bytes,
        encoding: Optional[str],
        summary: tuple[tuple[str, int], ...],
        categories: frozenset[str],
        low_priority: bool,
        created: float,
        ordered: bool = False,
    ) -> None:
        self.data = data
        self.encoding = encoding
        self.zdict: Optional[bytes] = None
        self.summary = summary
        self.categories = categories
        self.low_priority = low_priority
        self.ordered = ordered
        self.created = created
        self.size = len(data) + ENTRY_OVERHEAD
        self.attempts = 0
        self.seq = 0
        self.wire: Optional[tuple[bytes, Optional[str]]] = None

    def pack(self, zdict: bytes) -> None:
        """Store the plain bytes deflated against `zdict` (kept by reference)."""
        if self.encoding is not None or self.zdict is not None:
            return

        # Level 1 and memLevel 6: a smaller hash table is quicker to set up, and
        # against a good dictionary the compression is about as good.
        co = zlib.compressobj(1, zlib.DEFLATED, 15, 6, zlib.Z_DEFAULT_STRATEGY, zdict)
        self.data = co.compress(self.data) + co.flush()
        self.zdict = zdict
        self.size = len(self.data) + ENTRY_OVERHEAD

    def plain(self) -> bytes:
        """The envelope's wire bytes, uncompressed."""
        zdict = self.zdict
        if zdict is not None:
            return zlib.decompressobj(15, zdict).decompress(self.data)
        return decompress(self.data, self.encoding)

    def body(self, compressor: Compressor) -> tuple[bytes, Optional[str]]:
        """The request body and its Content-Encoding (made on the first call, then kept)."""
        if self.encoding is not None:
            return self.data, self.encoding
        wire = self.wire
        if wire is None:
            wire = self.wire = (compressor.compress(self.plain()), compressor.content_encoding)
        return wire

    def __repr__(self) -> str:
        return f"<Entry {len(self.data)} bytes {self.summary!r}>"


class Verdict(enum.Enum):
    """What became of one attempt to send an entry."""

    SENT = "sent"
    DISCARDED = "discarded"  # not retried; losses already counted where due
    RETRY = "retry"  # transient: retry, spool or count (the caller decides)


def is_low_priority(envelope: Envelope) -> bool:
    """True if every item of `envelope` may be dropped before errors (transactions, logs...)."""
    items = envelope.items
    if not items:
        return True
    return all(item.headers.get("type") in LOW_PRIORITY_TYPES for item in items)


def item_losses(item: Item) -> list[tuple[str, int]]:
    """What losing `item` costs, as (data category, quantity) pairs for client reports."""
    item_type = item.type
    if item_type == _CLIENT_REPORT:
        return []
    category = item.data_category
    if item_type == "transaction":
        spans = 1
        data = item.payload.json
        if isinstance(data, dict) and isinstance(data.get("spans"), list):
            spans += len(data["spans"])
        return [(category, 1), ("span", spans)]
    if item_type == "attachment":
        # Attachments are counted in bytes.
        try:
            return [(category, len(item.get_bytes()))]
        except Exception:
            return [(category, 0)]
    count = item.headers.get("item_count")
    if isinstance(count, int) and count > 0:
        return [(category, count)]
    return [(category, 1)]


# Fast levels: JSON compresses almost as well as at the slow ones (gzip 1 is ~5% larger
# than 6 at a third of the CPU; brotli 2 beats gzip 6), and the CPU is the host app's.
DEFAULT_LEVELS = {"gzip": 1, "br": 2}


class Compressor:
    """Request body compression: gzip (default), brotli, or none.

    Args:
        algo: ``"gzip"``, ``"br"`` or None for no compression.
        level: The compression level (gzip 0-9, brotli 0-11).
    """

    __slots__ = ("algo", "level")

    def __init__(self, algo: Optional[str], level: int) -> None:
        self.algo = algo
        self.level = level

    @property
    def content_encoding(self) -> Optional[str]:
        """The Content-Encoding header value, or None when bodies are sent as-is."""
        return self.algo

    def compress(self, data: bytes) -> bytes:
        """`data` compressed with this algorithm."""
        if self.algo == "gzip":
            # wbits 31: a gzip container, which is what Content-Encoding: gzip means.
            co = zlib.compressobj(self.level, zlib.DEFLATED, 31)
            return co.compress(data) + co.flush()
        if self.algo == "br":
            import brotli  # lazy: optional dependency

            return brotli.compress(data, quality=self.level)  # type: ignore[no-any-return]
        return data


def decompress(body: bytes, encoding: Optional[str]) -> bytes:
    """Undo `Compressor.compress`."""
    if encoding == "gzip":
        return zlib.decompress(body, 47)
    if encoding == "br":
        import brotli  # lazy: optional dependency

        return brotli.decompress(body)  # type: ignore[no-any-return]
    return body


def _brotli_available() -> bool:
    try:
        import brotli  # noqa: F401 - lazy: optional dependency
    except Exception:
        return False
    return True


def compressor_for(options: Mapping[str, Any]) -> Compressor:
    """The compressor the options ask for, as sentry_sdk 2.x reads them from `_experiments`.

    ``transport_compression_algo`` is ``"gzip"`` or ``"br"`` (default: brotli when it
    is installed, else gzip; brotli asked for but missing falls back to gzip; an
    unknown name means no compression). ``transport_compression_level`` 0 turns
    compression off.
    """
    experiments = options.get("_experiments") or {}
    algo = experiments.get("transport_compression_algo")
    level = experiments.get("transport_compression_level")
    if algo is None:
        algo = "br" if _brotli_available() else "gzip"
    elif algo == "br" and not _brotli_available():
        logger.warning("transport_compression_algo='br' but brotli is not installed; using gzip")
        algo = "gzip"
    if algo not in ("gzip", "br"):
        return Compressor(None, 0)
    default = DEFAULT_LEVELS[algo]
    if level is None or not isinstance(level, int) or isinstance(level, bool):
        level = default
    if level <= 0:
        return Compressor(None, 0)
    return Compressor(algo, min(level, 9 if algo == "gzip" else 11))


class Sender:
    """Turns envelopes into request bodies and responses into verdicts.

    Args:
        ratelimits: The shared rate limits (updated from every response).
        compressor: How request bodies are compressed.
        record: Counts a loss: ``record(reason, category, quantity)``.
        drain: Takes the losses not yet reported (for client reports).
        send_client_reports: False disables client reports.
        clock: Monotonic seconds (a seam for tests).
        wall: Unix time for report timestamps (a seam for tests).
    """

    __slots__ = (
        "_clock",
        "_drain",
        "_interned",
        "_last_report",
        "_record",
        "_wall",
        "compressor",
        "ratelimits",
        "report_interval",
        "send_client_reports",
    )

    def __init__(
        self,
        ratelimits: RateLimits,
        compressor: Compressor,
        record: Callable[[DropReason, str, int], None],
        drain: Callable[[], list[Outcome]],
        send_client_reports: bool = True,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self.ratelimits = ratelimits
        self.compressor = compressor
        self._record = record
        self._drain = drain
        self.send_client_reports = send_client_reports
        self.report_interval = REPORT_INTERVAL
        self._clock = clock
        self._wall = wall
        self._last_report = clock()
        self._interned: dict[Any, Any] = {}

    # -- encoding ---------------------------------------------------------------------

    def encode(self, envelope: Envelope, attach_report: bool = True) -> Optional[Entry]:
        """The entry to send for `envelope`, or None if nothing of it is left to send.

        Rate-limited items are removed (counted as ratelimit_backoff), oversized ones
        trimmed or removed (send_error), unreadable ones removed (internal_sdk_error).
        """
        limits = self.ratelimits
        parts: list[bytes] = []
        summary: list[tuple[str, int]] = []
        categories: set[str] = set()
        low_priority = True
        ordered = False
        for item in envelope.items:
            category = item.data_category
            if limits.is_limited(category):
                self.count(item_losses(item), DropReason.RATELIMIT_BACKOFF)
                continue
            try:
                fitted = _trim.fit(item)
                if fitted is None:
                    logger.warning(
                        "envelope item of type %r is over the server's size limit; dropped",
                        item.type,
                    )
                    self.count(item_losses(item), DropReason.SEND_ERROR)
                    continue
                if fitted is not item:
                    logger.info("envelope item of type %r trimmed to fit the size limit", item.type)
                encoded = fitted.serialize()
            except Exception:
                logger.debug("envelope item %r could not be encoded", item.type, exc_info=True)
                self.count(item_losses(item), DropReason.INTERNAL_SDK_ERROR)
                continue
            parts.append(encoded)
            if item.type != _CLIENT_REPORT:
                summary.extend(item_losses(item))
                categories.add(category)
                kind = item.headers.get("type")
                if kind not in LOW_PRIORITY_TYPES:
                    low_priority = False
                if kind in ORDERED_TYPES:
                    ordered = True
        if not parts:
            return None
        if attach_report and self._report_due():
            report = self._take_report()
            if report is not None:
                parts.append(report.serialize())
        data = b"".join((dumps(envelope.headers), b"\n", *parts))
        merged = _merge(summary)
        interned = self._interned
        key = (merged, frozenset(categories))
        # Most entries hold the same things ("one error"): share those tuples.
        merged, frozen = interned.setdefault(key, key) if len(interned) < 256 else key
        return Entry(data, None, merged, frozen, low_priority, self._wall(), ordered)

    def recheck(self, entry: Entry) -> Optional[Entry]:
        """`entry` as it may be sent now: limits that arrived since it was encoded apply.

        Returns the entry, a re-encoded copy without the newly limited items, or None.
        """
        limits = self.ratelimits
        if not entry.categories or not limits.limited(entry.categories):
            return entry

        try:
            envelope = Envelope.deserialize(entry.plain())
        except Exception:
            logger.debug("could not re-read a queued envelope", exc_info=True)
            self.lost(entry, DropReason.RATELIMIT_BACKOFF)
            return None
        fresh = self.encode(envelope, attach_report=False)
        if fresh is not None:
            fresh.attempts = entry.attempts
            fresh.seq = entry.seq
            fresh.created = entry.created
        return fresh

    def report_entry(self) -> Optional[Entry]:
        """An entry holding only a client report of the pending losses, or None."""
        report = self._take_report()
        if report is None:
            return None
        return Entry(b"{}\n" + report.serialize(), None, (), frozenset(), False, 0.0)

    def _report_due(self) -> bool:
        return self.send_client_reports and (
            self._clock() - self._last_report >= self.report_interval
        )

    def _take_report(self) -> Optional[Item]:
        if not self.send_client_reports or self.ratelimits.is_limited("internal"):
            return None
        self._last_report = self._clock()
        return report_item(self._drain(), self._wall())

    # -- responses --------------------------------------------------------------------

    def judge(self, entry: Entry, status: int, headers: Mapping[str, str]) -> Verdict:
        """What the server's answer means for `entry` (rate limits are updated here)."""
        self.ratelimits.update(status, headers)
        if 200 <= status < 300:
            return Verdict.SENT
        if status == 429:
            # Relay already counted what it refused: no client report for it.
            logger.warning("rate limited by the server (429); envelope discarded")
            return Verdict.DISCARDED
        if status >= 500:
            logger.warning("server error %d while sending an envelope", status)
            return Verdict.RETRY
        if status == 413:
            logger.error(
                "the server refused an envelope as too large (413); it was discarded. "
                "Attachments or very large events are the usual cause."
            )
        else:
            logger.warning("the server refused an envelope with status %d", status)
        self.lost(entry, DropReason.SEND_ERROR)
        return Verdict.DISCARDED

    # -- losses -----------------------------------------------------------------------

    def lost(self, entry: Entry, reason: DropReason) -> None:
        """Count everything in `entry` as lost for `reason`."""
        self.count(entry.summary, reason)

    def count(self, losses: Iterable[tuple[str, int]], reason: DropReason) -> None:
        """Count (category, quantity) pairs as lost for `reason`."""
        record = self._record
        for category, quantity in losses:
            record(reason, category, quantity)


def _merge(pairs: list[tuple[str, int]]) -> tuple[tuple[str, int], ...]:
    if len(pairs) <= 1:
        return tuple(pairs)
    merged: dict[str, int] = {}
    for category, quantity in pairs:
        merged[category] = merged.get(category, 0) + quantity
    return tuple(merged.items())
