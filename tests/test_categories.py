"""Item type -> data category: one table (`outcomes.ITEM_CATEGORIES`), the protocol's values,
and the SDK and the local server agreeing on it."""

from __future__ import annotations

import http.client
import json
from pathlib import Path
from typing import Any

import pytest

from tripwire.envelope import Envelope, Item
from tripwire.outcomes import ITEM_CATEGORIES, DataCategory, item_category
from tripwire.transport._ratelimit import KNOWN_CATEGORIES, parse_rate_limits

# The protocol's mapping: develop.sentry.dev (SDK foundations: envelope items, rate
# limiting), Relay's `Item::quantities` and sentry_sdk's `Item.data_category`.
DOCUMENTED = {
    "event": "error",
    "transaction": "transaction",
    "attachment": "attachment",
    "session": "session",
    "sessions": "session",
    "profile": "profile",
    "profile_chunk": "profile_chunk",
    "check_in": "monitor",
    "client_report": "internal",
    "log": "log_item",
    "otel_log": "log_item",
    "span": "span",
    "otel_span": "span",
    "statsd": "metric_bucket",
    "metric_buckets": "metric_bucket",
    "metric_meta": "metric_bucket",
    "trace_metric": "trace_metric",
    "replay_event": "replay",
    "replay_recording": "replay",
    "replay_video": "replay",
    "feedback": "user_report_v2",
}

ALL_TYPES = [*DOCUMENTED, "something_new"]


def test_the_table_is_the_documented_one() -> None:
    assert ITEM_CATEGORIES == DOCUMENTED
    assert item_category("something_new") == "default"
    assert item_category(None) == "default"


def test_every_category_is_a_data_category_the_sdk_obeys_limits_for() -> None:
    for category in [*ITEM_CATEGORIES.values(), "default"]:
        DataCategory(category)  # raises ValueError for an unknown category
        assert category in KNOWN_CATEGORIES
        assert parse_rate_limits(f"60:{category}:key") == [(category, 60.0)]


@pytest.mark.parametrize("item_type", ALL_TYPES)
def test_sdk_and_server_read_the_same_table(item_type: str) -> None:
    pytest.importorskip("starlette", reason="the server extra is not installed")
    from tripwire.server.items import category

    assert Item(b"", type=item_type).data_category == category(item_type)
    assert category(item_type) == DOCUMENTED.get(item_type, "default")


# -- end to end: the server limits by, and counts outcomes under, the SDK's category ------------


def _request(port: int, method: str, path: str, body: bytes, headers: dict[str, str]) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_server_rate_limits_and_counts_each_item_type_under_the_sdks_category(
    tmp_path: Path,
) -> None:
    pytest.importorskip("starlette", reason="the server extra is not installed")
    pytest.importorskip("uvicorn", reason="the server extra is not installed")
    from tripwire.server.app import ServerThread

    with ServerThread(db=tmp_path / "categories.db") as server:
        key = server.store.default_project()["public_key"]
        auth = {
            "X-Sentry-Auth": f"Sentry sentry_key={key}, sentry_version=7",
            "Content-Type": "application/x-sentry-envelope",
        }
        expected: dict[str, int] = {}
        for item_type in ALL_TYPES:
            sdk_category = Item(b"", type=item_type).data_category
            status, _ = _request(
                server.port,
                "PUT",
                "/api/0/rate-limits/",
                json.dumps({"limits": [f"60:{sdk_category}:key"]}).encode(),
                {"Content-Type": "application/json"},
            )
            assert status == 200
            env = Envelope()
            env.add_item(Item(b"{}", type=item_type))
            status, body = _request(server.port, "POST", "/api/1/envelope/", env.serialize(), auth)
            # Limited by the category the SDK gives the item: nothing kept, so 429.
            assert status == 429, (item_type, body)
            expected[sdk_category] = expected.get(sdk_category, 0) + 1
        status, body = _request(server.port, "GET", "/api/0/outcomes/", b"", {})
        assert status == 200
        counted = {
            row["category"]: row["quantity"]
            for row in json.loads(body)["outcomes"]
            if row["reason"] == "rate_limited"
        }
        assert counted == expected
