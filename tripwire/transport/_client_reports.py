"""Client reports: the `client_report` envelope item that tells the server what was lost.

Payload, as sentry_sdk 2.x writes it::

    {"timestamp": 1700000000.5,
     "discarded_events": [{"reason": "queue_overflow", "category": "error", "quantity": 3}]}
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from tripwire.envelope import Item, PayloadRef
from tripwire.outcomes import wire_value

if TYPE_CHECKING:
    from tripwire.envelope import Item
    from tripwire.outcomes import Outcome


def report_payload(outcomes: Iterable[Outcome], timestamp: float) -> dict[str, Any] | None:
    """The client report for `outcomes`, or None if there is nothing to report."""
    discarded = [
        {"reason": wire_value(o.reason), "category": wire_value(o.category), "quantity": o.quantity}
        for o in outcomes
        if o.quantity > 0
    ]
    if not discarded:
        return None
    return {"timestamp": timestamp, "discarded_events": discarded}


def report_item(outcomes: Iterable[Outcome], timestamp: float) -> Item | None:
    """A `client_report` envelope item for `outcomes`, or None if there is nothing to report."""
    payload = report_payload(outcomes, timestamp)
    if payload is None:
        return None

    return Item(payload=PayloadRef(json=payload), type="client_report")
