"""Spans the tracing code vouches for skip the serializer (`capture.markers.PlainSpans`).

Short lists of plain values in span data (redis ``cache.key``, pipeline
``redis.commands``) must not send the whole transaction through the serializer.
"""

from __future__ import annotations

from typing import Any

import pytest

import tripwire
from tripwire.capture.markers import PlainSpans
from tripwire.testing import MemoryTransport
from tripwire.tracing import _transaction


def _spans_seen_by_steps(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """The `spans` of every transaction event as `Transaction._event` built it."""
    seen: list[Any] = []
    build = _transaction.Transaction._event

    def spy(self: Any, client: Any) -> dict[str, Any]:
        event = build(self, client)
        seen.append(event["spans"])
        return event

    monkeypatch.setattr(_transaction.Transaction, "_event", spy)
    return seen


def _send(data: dict[str, Any]) -> dict[str, Any]:
    transport = MemoryTransport()
    tripwire.init(
        dsn="https://pub@o1.ingest.example.com/1",
        transport=transport,
        traces_sample_rate=1.0,
        default_integrations=False,
    )
    with tripwire.start_transaction(name="t", op="task"):
        with tripwire.start_span(op="cache.get", name="k") as span:
            for key, value in data.items():
                span.set_data(key, value)
    tripwire.flush()
    (event,) = transport.transactions
    (sent,) = event["spans"]
    return sent["data"]


PLAIN = {
    "cache.key": ["user:1", "user:2"],
    "redis.commands": {"count": 3, "first_ten": ["GET 'a'", "SET 'b' [Filtered]", "INCR 'c'"]},
    "mixed": ["a", 1, 2.5, True, None],
    "empty": [],
}


def test_short_lists_of_plain_values_skip_the_serializer(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen = _spans_seen_by_steps(monkeypatch)
    data = _send(PLAIN)
    assert type(seen[0]) is PlainSpans
    for key, value in PLAIN.items():
        assert data[key] == value


@pytest.mark.parametrize(
    "value",
    [
        list(range(17)),  # longer than the bound: the serializer bounds it
        [["nested"]],
        [{"a": 1}],
        [b"bytes"],
        [float("nan")],
        ["x" * 100_000],
        ("a", "b"),  # the serializer turns tuples into lists
        [object()],
    ],
    ids=["long", "nested-list", "dict-item", "bytes", "nan", "long-str", "tuple", "object"],
)
def test_other_sequences_go_through_the_serializer(
    monkeypatch: pytest.MonkeyPatch, value: Any
) -> None:
    seen = _spans_seen_by_steps(monkeypatch)
    data = _send({"cache.key": value})
    assert type(seen[0]) is not PlainSpans
    assert "cache.key" in data  # serialized (bounded / repr'd), still sent


def test_plain_and_serialized_paths_send_the_same_span_data(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    fast = _send(PLAIN)
    tripwire.testing.reset()
    # Forced through the serializer: the wire data must not differ.
    monkeypatch.setattr(_transaction, "_span_is_plain", lambda span, max_chars: False)
    slow = _send(PLAIN)
    assert fast == slow
