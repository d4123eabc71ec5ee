"""Delivery policy without sockets: rate limits, encoding, verdicts, trimming, compression."""

from __future__ import annotations

import gzip
from typing import Any

import pytest
from _receiver import make_envelope, make_transaction
from hypothesis import given
from hypothesis import strategies as st

from tripwire.envelope import Envelope, Item, PayloadRef
from tripwire.outcomes import DropReason, Outcome, Outcomes
from tripwire.transport import _trim
from tripwire.transport._policy import (
    Compressor,
    Sender,
    Verdict,
    compressor_for,
    decompress,
    is_low_priority,
    item_losses,
)
from tripwire.transport._ratelimit import RateLimits, parse_rate_limits, parse_retry_after


class Clock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# -- rate limits ---------------------------------------------------------------------------


def test_parse_full_grammar() -> None:
    header = "60:transaction;span:key:over_quota, 2.5::organization, 10:metric_bucket:o:r:custom"
    assert parse_rate_limits(header) == [
        ("transaction", 60.0),
        ("span", 60.0),
        (None, 2.5),
        ("metric_bucket", 10.0),
    ]


def test_parse_ignores_unknown_categories_and_foreign_metric_namespaces() -> None:
    assert parse_rate_limits("60:foo:key") == []  # not "all categories"
    assert parse_rate_limits("60:foo;error:key") == [("error", 60.0)]
    assert parse_rate_limits("10:metric_bucket:o:r:other_ns") == []
    assert parse_rate_limits("nonsense, :error, -1:error, nan:error") == []


@given(st.text())
def test_parse_never_raises(header: str) -> None:
    for category, seconds in parse_rate_limits(header):
        assert seconds >= 0
        assert category is None or isinstance(category, str)


def test_retry_after_forms() -> None:
    assert parse_retry_after("30") == 30.0
    assert parse_retry_after("1.5") == 1.5
    assert parse_retry_after(None) == 60.0
    assert parse_retry_after("soon") == 60.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past


def test_longest_limit_wins_and_limits_expire() -> None:
    clock = Clock()
    limits = RateLimits(clock)
    limits.update(200, {"x-sentry-rate-limits": "10:error:key, 30:error:key, 5::org"})
    limits.update(200, {"x-sentry-rate-limits": "20:error:key"})
    assert limits.is_limited("error") and limits.is_limited("transaction")
    clock.now += 6  # the all-categories limit is over
    assert limits.is_limited("error") and not limits.is_limited("transaction")
    assert limits.any_active()
    clock.now += 25
    assert not limits.is_limited("error")
    assert not limits.any_active()


def test_bare_429_and_retry_after() -> None:
    clock = Clock()
    limits = RateLimits(clock)
    limits.update(500, {})
    assert not limits.any_active()
    limits.update(429, {})
    assert limits.snapshot() == {None: 60.0}
    limits = RateLimits(clock)
    limits.update(429, {"retry-after": "5"})
    assert limits.snapshot() == {None: 5.0}
    limits = RateLimits(clock)
    # The specific header wins over Retry-After.
    limits.update(429, {"retry-after": "5", "x-sentry-rate-limits": "7:error:key"})
    assert limits.snapshot() == {"error": 7.0}


# -- the sender ------------------------------------------------------------------------------


def make_sender(
    outcomes: Outcomes | None = None, clock: Clock | None = None, reports: bool = True
) -> tuple[Sender, Outcomes, RateLimits]:
    outcomes = outcomes or Outcomes()
    clock = clock or Clock()
    limits = RateLimits(clock)
    sender = Sender(
        limits,
        Compressor("gzip", 1),
        lambda reason, category, quantity: outcomes.record(reason, category, quantity),
        outcomes.drain,
        send_client_reports=reports,
        clock=clock,
        wall=lambda: 1234.5,
    )
    return sender, outcomes, limits


def test_encode_is_the_wire_format_and_body_compresses_it() -> None:
    sender, _, _ = make_sender()
    envelope = make_envelope()
    entry = sender.encode(envelope)
    assert entry is not None
    assert entry.plain() == envelope.serialize()
    body, encoding = entry.body(sender.compressor)
    assert encoding == "gzip" and gzip.decompress(body) == envelope.serialize()
    assert entry.summary == (("error", 1),) and entry.categories == frozenset({"error"})
    assert not entry.low_priority


def test_packed_entries_round_trip() -> None:
    sender, _, _ = make_sender()
    first, second = make_envelope("%032x" % 1), make_envelope("%032x" % 2)
    a, b = sender.encode(first), sender.encode(second)
    assert a is not None and b is not None
    b.pack(a.plain())
    assert b.plain() == second.serialize()
    assert len(b.data) < len(second.serialize()) // 3


def test_rate_limited_items_are_removed_and_counted() -> None:
    sender, outcomes, limits = make_sender()
    limits.update(200, {"x-sentry-rate-limits": "60:transaction:key"})
    assert sender.encode(make_transaction(spans=4)) is None
    envelope = make_envelope()
    envelope.add_item(Item(b"data", type="attachment"))
    limits.update(200, {"x-sentry-rate-limits": "60:attachment:key"})
    entry = sender.encode(envelope)
    assert entry is not None and Envelope.deserialize(entry.plain()).items[0].type == "event"
    assert outcomes.snapshot() == {
        ("ratelimit_backoff", "transaction"): 1,
        ("ratelimit_backoff", "span"): 5,
        ("ratelimit_backoff", "attachment"): 4,  # attachments count bytes
    }


def test_recheck_applies_limits_that_arrived_after_encoding() -> None:
    sender, outcomes, limits = make_sender()
    entry = sender.encode(make_envelope())
    assert entry is not None
    assert sender.recheck(entry) is entry
    limits.update(429, {})
    assert sender.recheck(entry) is None
    assert outcomes.snapshot() == {("ratelimit_backoff", "error"): 1}


@pytest.mark.parametrize(
    ("status", "verdict", "lost"),
    [
        (200, Verdict.SENT, {}),
        (202, Verdict.SENT, {}),
        (429, Verdict.DISCARDED, {}),
        (413, Verdict.DISCARDED, {("send_error", "error"): 1}),
        (400, Verdict.DISCARDED, {("send_error", "error"): 1}),
        (500, Verdict.RETRY, {}),
    ],
)
def test_judge(status: int, verdict: Verdict, lost: dict[Any, int]) -> None:
    sender, outcomes, _ = make_sender()
    entry = sender.encode(make_envelope())
    assert entry is not None
    assert sender.judge(entry, status, {}) is verdict
    assert outcomes.snapshot() == lost


def test_client_report_rides_along_when_due_and_on_demand() -> None:
    clock = Clock()
    sender, outcomes, _ = make_sender(clock=clock)
    outcomes.record(DropReason.SAMPLE_RATE, "error", 3)
    entry = sender.encode(make_envelope())
    assert entry is not None and len(Envelope.deserialize(entry.plain()).items) == 1  # not due
    clock.now += 31
    entry = sender.encode(make_envelope())
    assert entry is not None
    items = Envelope.deserialize(entry.plain()).items
    assert [i.type for i in items] == ["event", "client_report"]
    assert items[1].payload.json is None
    from tripwire._json import loads

    assert loads(items[1].get_bytes()) == {
        "timestamp": 1234.5,
        "discarded_events": [{"reason": "sample_rate", "category": "error", "quantity": 3}],
    }
    assert entry.summary == (("error", 1),)  # the report is not counted as data
    assert sender.report_entry() is None  # nothing pending any more
    outcomes.record(DropReason.QUEUE_OVERFLOW, "transaction", 2)
    report = sender.report_entry()
    assert report is not None and report.plain().startswith(b"{}\n")


def test_no_client_reports_when_disabled() -> None:
    sender, outcomes, _ = make_sender(reports=False)
    outcomes.record(DropReason.SAMPLE_RATE, "error", 1)
    assert sender.report_entry() is None
    assert outcomes.snapshot() == {("sample_rate", "error"): 1}


def test_local_only_reasons_are_not_reported() -> None:
    sender, outcomes, _ = make_sender()
    outcomes.record(DropReason.DUPLICATE, "error", 1)
    assert sender.report_entry() is None


def test_priorities_and_losses() -> None:
    assert not is_low_priority(make_envelope())
    assert is_low_priority(make_transaction())
    mixed = make_transaction()
    mixed.add_item(Item(b"{}", type="check_in"))
    assert not is_low_priority(mixed)
    log = Item(b"{}", type="log", headers={"item_count": 7})
    assert item_losses(log) == [("log_item", 7)]
    assert item_losses(Item(b"{}", type="client_report")) == []


# -- trimming ------------------------------------------------------------------------------


def test_fit_keeps_small_items_and_trims_big_ones() -> None:
    small = Item(PayloadRef(json={"message": "x"}), type="event")
    assert _trim.fit(small) is small
    big_event = {
        "message": "m",
        "exception": {
            "values": [
                {
                    "type": "E",
                    "value": "v",
                    "stacktrace": {
                        "frames": [
                            {"function": "f%d" % i, "vars": {"big": "z" * 5000}} for i in range(300)
                        ]
                    },
                }
            ]
        },
    }
    trimmed = _trim.fit(Item(PayloadRef(json=big_event), type="event"))
    assert trimmed is not None and len(trimmed.get_bytes()) <= _trim.JSON_LIMITS["event"]
    from tripwire._json import loads

    frames = loads(trimmed.get_bytes())["exception"]["values"][0]["stacktrace"]["frames"]
    assert frames[-1]["function"] == "f299"  # the crash site survives


def test_check_in_limit_and_binary_items() -> None:
    checkin = Item(PayloadRef(json={"check_in_id": "c", "extra": "x" * 200_000}), type="check_in")
    fitted = _trim.fit(checkin)
    assert fitted is not None and len(fitted.get_bytes()) <= 100 * 1024
    huge = Item(b"\0" * (_trim.BINARY_LIMITS["replay_video"] + 1), type="replay_video")
    assert _trim.fit(huge) is None


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=50),
        lambda children: (
            st.lists(children, max_size=5)
            | st.dictionaries(st.text(max_size=5), children, max_size=5)
        ),
        max_leaves=50,
    )
)
def test_bound_never_raises(value: Any) -> None:
    _trim._bound({"v": value}, 10, 3, 4, False)


# -- compression -----------------------------------------------------------------------------


def test_compressor_options() -> None:
    assert compressor_for({"_experiments": {"transport_compression_level": 0}}).algo is None
    assert compressor_for({"_experiments": {"transport_compression_algo": "nope"}}).algo is None
    gz = compressor_for({"_experiments": {"transport_compression_algo": "gzip"}})
    assert (gz.algo, gz.level) == ("gzip", 1)
    data = b'{"a": 1}' * 100
    assert decompress(gz.compress(data), "gzip") == data
    default = compressor_for({})
    try:
        import brotli  # noqa: F401
    except ImportError:
        assert default.algo == "gzip"
    else:
        assert default.algo == "br"
        assert decompress(default.compress(data), "br") == data


def test_outcome_reporting_payload_shape() -> None:
    from tripwire.transport._client_reports import report_payload

    assert report_payload([], 1.0) is None
    payload = report_payload([Outcome(DropReason.BACKPRESSURE, _category("transaction"), 2)], 1.0)
    assert payload == {
        "timestamp": 1.0,
        "discarded_events": [{"reason": "backpressure", "category": "transaction", "quantity": 2}],
    }


def _category(name: str) -> Any:
    from tripwire.outcomes import DataCategory

    return DataCategory(name)
