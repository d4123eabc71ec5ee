"""Logs and trace metrics freeze the trace's dynamic sampling context, as in sentry-sdk 2.75.

sentry_sdk reads the scope's trace context for every log and metric it captures, which
makes the DSC of the trace final: inside a streamed segment (or a transaction) the
segment's baggage, with the name it has then; outside a span the DSC made from the
options, which a streamed segment started later keeps (a transaction makes its
own). A later `scope.set_transaction_name`
then changes neither the outgoing `baggage` nor the `trace` header of the span (or
transaction) envelope. Both SDKs run the same script; the `baggage` values and the
envelope headers must be the same (the log and metric envelopes carry no `trace`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Optional

from _side_by_side import dumps, run_both

SCRIPT = r"""
import sentry_sdk.logger
import sentry_sdk.metrics
from sentry_sdk import traces

sentry_sdk.init(
    transport=KEEP,
    default_integrations=False,
    traces_sample_rate=1.0,
    enable_logs=True,
    release="app@1.0",
    environment="env",
    trace_lifecycle=LIFECYCLE,
)


def emit(what):
    if what == "log":
        sentry_sdk.logger.info("hello")
    elif what == "metric":
        sentry_sdk.metrics.count("orders", 1)


def continued(n):
    # A fixed trace (a sampled parent without baggage): the DSC is this SDK's.
    headers = {"sentry-trace": str(n) * 32 + "-" + "b" * 16 + "-1"}
    if LIFECYCLE == "stream":
        traces.new_trace()
        traces.continue_trace(headers)
        return None
    return sentry_sdk.continue_trace(headers, name="first")


def start(transaction):
    if LIFECYCLE == "stream":
        return traces.start_span(name="first")
    return sentry_sdk.start_transaction(transaction)


for n, (what, when) in enumerate(
    (
        ("nothing", "inside"),
        ("log", "inside"),
        ("metric", "inside"),
        ("log", "before"),
        ("metric", "before"),
    ),
    1,
):
    transaction = continued(n)
    if when == "before":
        emit(what)
    with start(transaction):
        if when == "inside":
            emit(what)
        sentry_sdk.get_current_scope().set_transaction_name("renamed")
        NOTES.append({"case": [n, what, when], "baggage": sentry_sdk.get_baggage()})
sentry_sdk.flush()
for raw in KEEP.raw:
    lines = raw.split(b"\n")
    kind = json.loads(lines[1])["type"]
    NOTES.append({"envelope": [kind, json.loads(lines[0]).get("trace")]})
finish()
"""


def _shape(found: dict[str, Any]) -> dict[str, Any]:
    """Each case's baggage entries and the envelopes' `trace` headers, by case number.

    `public_key` is left out: sentry_sdk takes it from its transport's DSN, which the
    side-by-side transport has not.
    """
    cases: dict[str, Any] = {}
    envelopes = []
    for note in found["notes"]:
        if "case" in note:
            n, what, when = note["case"]
            entries = dict(part.split("=", 1) for part in note["baggage"].split(","))
            entries.pop("sentry-public_key", None)
            entries["sentry-trace_id"] = f"<trace {entries['sentry-trace_id'][0]}>"
            cases[f"{n} {what} {when}"] = entries
        else:
            kind, trace = note["envelope"]
            if trace is not None:
                trace = dict(trace)
                trace.pop("public_key", None)
                trace["trace_id"] = f"<trace {trace['trace_id'][0]}>"
            envelopes.append(json.dumps([kind, trace], sort_keys=True))
    return {"cases": cases, "envelopes": sorted(envelopes)}


def _check(lifecycle: Optional[str], tmp_path: Path) -> dict[str, Any]:
    theirs, ours = run_both(f"LIFECYCLE = {lifecycle!r}\n" + SCRIPT, tmp_path)
    expected, found = _shape(theirs), _shape(ours)
    assert found == expected, dumps({"sentry": expected, "tripwire": found})
    return found


def _transactions(found: dict[str, Any], kind: str) -> dict[str, Any]:
    """The `transaction` entry of each fixed trace's `kind` envelope header."""
    out = {}
    for envelope in found["envelopes"]:
        found_kind, trace = json.loads(envelope)
        if found_kind == kind:
            out[trace["trace_id"]] = trace.get("transaction")
    return out


def test_logs_and_metrics_freeze_a_streamed_segments_dsc_as_sentry_sdk(tmp_path: Path) -> None:
    found = _check("stream", tmp_path)
    cases = found["cases"]
    # Without a log or metric the rename reaches the DSC; with one it comes too late.
    assert cases["1 nothing inside"]["sentry-transaction"] == "renamed"
    for case in ("2 log inside", "3 metric inside"):
        assert cases[case]["sentry-transaction"] == "first", case
    # Before the segment: the options' DSC (no name, no sampling decision) stays.
    for case in ("4 log before", "5 metric before"):
        assert "sentry-transaction" not in cases[case], case
        assert "sentry-sampled" not in cases[case], case
    assert _transactions(found, "span") == {
        "<trace 1>": "renamed",
        "<trace 2>": "first",
        "<trace 3>": "first",
        "<trace 4>": None,
        "<trace 5>": None,
    }
    assert sum('"log"' in envelope for envelope in found["envelopes"]) >= 1
    assert sum('"trace_metric"' in envelope for envelope in found["envelopes"]) >= 1


def test_logs_and_metrics_freeze_a_transactions_dsc_as_sentry_sdk(tmp_path: Path) -> None:
    found = _check(None, tmp_path)
    assert _transactions(found, "transaction") == {
        "<trace 1>": "renamed",
        "<trace 2>": "first",
        "<trace 3>": "first",
        # A transaction makes its own DSC: the options' one before it does not bind it.
        "<trace 4>": "renamed",
        "<trace 5>": "renamed",
    }
