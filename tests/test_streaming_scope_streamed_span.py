"""`Scope.streamed_span`, side by side with sentry-sdk 2.75.

The property gives the scope's current span when it is a streamed one (sampled or
not), else None; set, it makes a span the scope's current one, and a segment also
names the scope's events (its name and ``sentry.segment.name.source``). (`Scope.span`
differs on purpose: tripwire's gives streamed spans too, see the README.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from _side_by_side import dumps, run_both

SCRIPT = """
from sentry_sdk import traces

sentry_sdk.init(
    transport=KEEP,
    default_integrations=False,
    trace_lifecycle="stream",
    traces_sampler=lambda c: 0.0 if c["transaction_context"]["name"] == "dropped" else 1.0,
)


def current():
    return sentry_sdk.get_current_scope().streamed_span


NOTES.append(["outside", current()])
with traces.start_span(name="seg", attributes={"sentry.segment.name.source": "route"}) as seg:
    NOTES.append(["segment", current() is seg, current().name])
    with traces.start_span(name="child") as child:
        NOTES.append(["child", current() is child])
    NOTES.append(["after child", current() is seg])
NOTES.append(["after segment", current()])
with traces.start_span(name="dropped") as dropped:
    NOTES.append(["unsampled", current() is dropped, type(current()).__name__])

inactive = traces.start_span(
    name="inactive", attributes={"sentry.segment.name.source": "custom"}, active=False
)
with sentry_sdk.new_scope() as scope:
    NOTES.append(["new scope", scope.streamed_span])
    scope.streamed_span = inactive
    NOTES.append(["set", scope.streamed_span is inactive])
    sentry_sdk.capture_message("in the set segment")
inactive.end()
with sentry_sdk.new_scope() as scope:
    with traces.start_span(name="seg2"):
        child = traces.start_span(name="c2", active=False)
        scope.streamed_span = child
        NOTES.append(["set child", scope.streamed_span is child])
        sentry_sdk.capture_message("in the set child")
        child.end()
finish()
"""


def _events(found: dict[str, Any]) -> list[Any]:
    return [
        [item["payload"].get("message"), item["payload"].get("transaction")]
        for item in found["items"]
        if item["type"] == "event"
    ]


def test_scope_streamed_span_as_sentry_sdk(tmp_path: Path) -> None:
    theirs, ours = run_both(SCRIPT, tmp_path)
    assert ours["notes"] == theirs["notes"], dumps(
        {"sentry": theirs["notes"], "ours": ours["notes"]}
    )
    assert _events(ours) == _events(theirs), dumps(_events(ours))
    notes = {note[0]: note[1:] for note in ours["notes"]}
    assert notes["outside"] == [None] and notes["after segment"] == [None]
    assert notes["segment"] == [True, "seg"]
    assert notes["child"] == [True] and notes["after child"] == [True]
    assert notes["unsampled"] == [True, "NoOpStreamedSpan"]
    assert notes["set"] == [True] and notes["set child"] == [True]
    assert _events(ours) == [
        ["in the set segment", "inactive"],
        ["in the set child", "seg2"],
    ]


TRANSACTION_SCRIPT = """
sentry_sdk.init(transport=KEEP, default_integrations=False, traces_sample_rate=1.0)
with sentry_sdk.start_transaction(name="t") as transaction:
    with sentry_sdk.start_span(op="child"):
        scope = sentry_sdk.get_current_scope()
        NOTES.append([scope.streamed_span, scope.span is not None])
    NOTES.append([scope.streamed_span, scope.span is transaction])
finish()
"""


def test_scope_streamed_span_is_none_in_a_transaction_as_sentry_sdk(tmp_path: Path) -> None:
    theirs, ours = run_both(TRANSACTION_SCRIPT, tmp_path)
    assert ours["notes"] == theirs["notes"] == [[None, True], [None, True]]
