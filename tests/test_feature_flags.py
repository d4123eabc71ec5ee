"""Feature flags: `add_feature_flag`, `Scope.flags`, and `contexts.flags` on error events.

Differential: the same evaluations through sentry-sdk 2.75 and tripwire give the same
`contexts.flags` (values, order, capacity, merge of global / isolation / current).
"""

from __future__ import annotations

import copy
import importlib
from typing import Any

import pytest
from test_differential import run_both

import tripwire
from tripwire.feature_flags import DEFAULT_FLAG_CAPACITY, FlagBuffer, add_feature_flag
from tripwire.testing import MemoryTransport


def _flags_scenario(sdk: Any) -> None:
    flags = importlib.import_module(sdk.__name__ + ".feature_flags")
    sdk.get_global_scope().flags.set("global", True)
    for i in range(5):
        flags.add_feature_flag(f"f{i}", i % 2 == 0)
    flags.add_feature_flag("f1", False)  # re-evaluated: now the most recent
    with sdk.new_scope() as scope:
        scope.flags.set("current", True)
        scope.flags.set("f0", False)
        sdk.capture_message("in a new scope")
    with sdk.isolation_scope():
        flags.add_feature_flag("isolated", True)
        sdk.capture_exception(ValueError("boom"))
    sdk.capture_message("after both")


def test_flags_context_matches_sentry() -> None:
    theirs, ours = run_both(_flags_scenario, _experiments={"max_flags": 4})
    assert ours == theirs
    flags = [event["contexts"]["flags"] for event in ours]
    assert flags[0] == {
        "values": [
            {"flag": "f4", "result": True},
            {"flag": "f1", "result": False},
            {"flag": "current", "result": True},
            {"flag": "f0", "result": False},
        ]
    }
    assert flags[1]["values"][-1] == {"flag": "isolated", "result": True}
    # The forks kept their own evaluations: none of them leaked out.
    assert flags[2] == {
        "values": [
            {"flag": "f2", "result": True},
            {"flag": "f3", "result": False},
            {"flag": "f4", "result": True},
            {"flag": "f1", "result": False},
        ]
    }


def test_user_flags_context_is_kept_and_values_added() -> None:
    def scenario(sdk: Any) -> None:
        flags = importlib.import_module(sdk.__name__ + ".feature_flags")
        sdk.set_context("flags", {"provider": "launchdarkly"})
        flags.add_feature_flag("beta", True)
        sdk.capture_message("with a flags context")

    theirs, ours = run_both(scenario)
    assert ours == theirs
    assert ours[0]["contexts"]["flags"] == {
        "provider": "launchdarkly",
        "values": [{"flag": "beta", "result": True}],
    }


def test_no_flags_no_context(transport: MemoryTransport) -> None:
    tripwire.capture_message("plain")
    assert "flags" not in transport.events[0].get("contexts", {})


def test_transactions_do_not_carry_flags(init_memory: Any) -> None:
    memory = init_memory(traces_sample_rate=1.0)
    with tripwire.start_transaction(name="checkout") as tx:
        add_feature_flag("new-checkout", True)
        with tx.start_child(op="db"):
            pass
    tripwire.capture_message("error")
    (transaction,) = memory.items("transaction")
    assert "flags" not in transaction.payload.json["contexts"]
    assert memory.events[0]["contexts"]["flags"] == {
        "values": [{"flag": "new-checkout", "result": True}]
    }


def test_default_capacity_keeps_the_most_recent(transport: MemoryTransport) -> None:
    assert DEFAULT_FLAG_CAPACITY == 100
    for i in range(DEFAULT_FLAG_CAPACITY + 5):
        add_feature_flag(f"flag{i}", True)
    tripwire.capture_message("many flags")
    values = transport.events[0]["contexts"]["flags"]["values"]
    assert len(values) == DEFAULT_FLAG_CAPACITY
    assert values[0]["flag"] == "flag5"
    assert values[-1]["flag"] == f"flag{DEFAULT_FLAG_CAPACITY + 4}"


def test_flag_buffer_api() -> None:
    buffer = FlagBuffer(capacity=2)
    buffer.set("a", True)
    buffer.set("b", False)
    buffer.set("a", False)
    buffer.set("c", True)  # "b" is the least recently evaluated: it goes
    assert buffer.get() == [{"flag": "a", "result": False}, {"flag": "c", "result": True}]
    copied = copy.deepcopy(buffer)
    copied.set("d", True)
    assert [f["flag"] for f in buffer.get()] == ["a", "c"]
    assert [f["flag"] for f in copied.get()] == ["c", "d"]
    with pytest.raises(ValueError):
        buffer.set("self", buffer)  # type: ignore[arg-type]
    buffer.clear()
    assert buffer.get() == []


def test_fork_gets_a_copy() -> None:
    parent = tripwire.Scope()
    parent.flags.set("a", True)
    child = parent.fork()
    child.flags.set("b", True)
    parent.flags.set("c", True)
    assert [f["flag"] for f in parent.flags.get()] == ["a", "c"]
    assert [f["flag"] for f in child.flags.get()] == ["a", "b"]


def test_public_names() -> None:
    import sentry_sdk.feature_flags
    import sentry_sdk.scope

    import tripwire.scope

    assert tripwire.scope.FlagBuffer is FlagBuffer
    assert tripwire.scope.DEFAULT_FLAG_CAPACITY == getattr(
        sentry_sdk.scope, "DEFAULT_FLAG_CAPACITY"
    )
    assert DEFAULT_FLAG_CAPACITY == sentry_sdk.feature_flags.DEFAULT_FLAG_CAPACITY
