"""Who decides whether logs, metrics and streamed spans carry the user (``user.*``):
`data_collection`'s ``user_info`` when the user set that option, else
``send_default_pii`` (as sentry-sdk 2.75: one rule for the three producers)."""

from __future__ import annotations

from typing import Any

import pytest
from _receiver import Receiver

import tripwire
from tripwire import metrics
from tripwire._json import loads


def _user_keys(rx: Receiver, item_type: str) -> list[list[str]]:
    found = []
    for item in rx.items(item_type):
        for entry in loads(item.get_bytes())["items"]:
            found.append(sorted(k for k in entry["attributes"] if k.startswith("user.")))
    return found


# (send_default_pii next to data_collection warns that it is ignored: that is the case.)
@pytest.mark.filterwarnings("ignore:send_default_pii is ignored:DeprecationWarning")
@pytest.mark.parametrize(
    ("options", "sent"),
    [
        ({"data_collection": {"user_info": True}}, True),
        ({"data_collection": {"user_info": False}, "send_default_pii": True}, False),
        ({"send_default_pii": True}, True),
        ({}, False),
    ],
)
def test_logs_metrics_and_streamed_spans_follow_the_same_consent(
    rx: Receiver, options: dict[str, Any], sent: bool
) -> None:
    tripwire.init(
        dsn=rx.dsn(),
        enable_logs=True,
        traces_sample_rate=1.0,
        trace_lifecycle="stream",
        **options,
    )
    tripwire.set_user({"id": "u1", "email": "a@example.com"})
    with tripwire.traces.start_span(name="work"):
        tripwire.logger.info("hello")
        metrics.count("orders", 1)
    tripwire.flush()
    expected = [["user.email", "user.id"]] if sent else [[]]
    assert _user_keys(rx, "log") == expected
    assert _user_keys(rx, "trace_metric") == expected
    assert _user_keys(rx, "span") == expected
