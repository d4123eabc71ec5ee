"""Sample-rate options that are not rates: what sentry_sdk 2.75 does with them, tripwire does.

Applications pass these straight from the environment (``traces_sample_rate=
os.environ.get("SENTRY_TRACES_SAMPLE_RATE", 0.1)``: a string whenever the variable is
set), or True. sentry_sdk starts with any value: a string or out-of-range
`traces_sample_rate` samples no transaction (the trace still propagates, unsampled), a
`sample_rate` that cannot be compared with 1 keeps every error, one below 0 drops them
all. tripwire used to refuse to start (`TypeError` from `init()`). The differential
test runs every case on both SDKs, one interpreter each.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from _side_by_side import run_each

import tripwire
from tripwire.profiler.continuous_profiler import determine_profile_session_sampling_decision
from tripwire.testing import MemoryTransport

CASES = [
    'dict(traces_sample_rate="0.5")',
    'dict(traces_sample_rate="1")',
    "dict(traces_sample_rate=True)",
    "dict(traces_sample_rate=False)",
    "dict(traces_sample_rate=2)",
    "dict(traces_sample_rate=-1)",
    'dict(traces_sample_rate=float("nan"))',
    'dict(sample_rate="0.5")',
    "dict(sample_rate=None)",
    "dict(sample_rate=2)",
    "dict(sample_rate=-1)",
    "dict(sample_rate=False)",
    'dict(profile_session_sample_rate="0")',
]

SCRIPT = f"""
CASES = [{", ".join(CASES)}]
for i, options in enumerate(CASES):
    sentry_sdk.init(transport=KEEP, **options)
    with sentry_sdk.start_transaction(name="checkout") as transaction:
        NOTES.append([transaction.sampled, sentry_sdk.get_traceparent().split("-")[2:]])
    sentry_sdk.capture_message("payment failed")
    if i < len(CASES) - 1:
        next_scenario()
finish()
"""


def test_what_each_sdk_does_with_rates_that_are_not_rates(tmp_path: Path) -> None:
    runs = run_each(SCRIPT, tmp_path)
    assert len(runs) == len(CASES)
    for case, (theirs, ours) in zip(CASES, runs):
        seen = [[item["type"] for item in run["items"]] + run["notes"] for run in (theirs, ours)]
        assert seen[1] == seen[0], case
    # Not a vacuous agreement: the cases differ in what they send.
    (strings,), (true,) = runs[0][1]["notes"], runs[2][1]["notes"]
    assert strings == [False, ["0"]] and true == [True, ["1"]]
    assert [i["type"] for i in runs[10][1]["items"]] == []  # sample_rate=-1: no error


def test_an_invalid_traces_sample_rate_is_reported_once_not_per_transaction(
    caplog: pytest.LogCaptureFixture,
) -> None:
    memory = MemoryTransport()
    with caplog.at_level(logging.WARNING, logger="tripwire.errors"):
        tripwire.init(transport=memory, traces_sample_rate="0.1")
        for _ in range(3):
            with tripwire.start_transaction(name="checkout"):
                pass
    (record,) = caplog.records
    assert "'traces_sample_rate' should be a number between 0 and 1, got str '0.1'" in (
        record.getMessage()
    )
    assert memory.transactions == []


def test_profile_session_sample_rate_is_read_with_float_as_sentry_sdk_reads_it() -> None:
    assert determine_profile_session_sampling_decision("1") is True
    assert determine_profile_session_sampling_decision("0") is False
    assert determine_profile_session_sampling_decision("often") is False  # sentry_sdk raises


def test_a_profiles_sample_rate_that_is_not_one_profiles_nothing() -> None:
    # sentry_sdk 2.75's init() raises TypeError here ('>' between str and int).
    memory = MemoryTransport()
    with pytest.warns(DeprecationWarning, match="transaction-based profiling"):
        tripwire.init(transport=memory, traces_sample_rate=1.0, profiles_sample_rate="1")
    with tripwire.start_transaction(name="checkout"):
        pass
    tripwire.flush()
    assert [t["transaction"] for t in memory.transactions] == ["checkout"]
    assert [i.type for e in memory.envelopes for i in e.items] == ["transaction"]
