"""The Statsig integration: the real statsig server SDK in local mode (no network).

Gates are checked through Statsig's own `check_gate` (overrides in local mode); the
event goes over HTTP to a loopback receiver. The differential test runs one script on
sentry_sdk 2.75 and on tripwire, each in its own interpreter.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _receiver import Receiver
from _side_by_side import run_both

import tripwire
from tripwire.integrations import DidNotEnable
from tripwire.integrations.statsig import StatsigIntegration
from tripwire.testing import reset

if TYPE_CHECKING:
    from statsig import StatsigOptions, StatsigUser, statsig


@pytest.fixture(autouse=True, scope="module")
def _statsig() -> None:
    """statsig is imported when the module's tests start, not at collection (every xdist
    worker collects every module; tests/_lazy.py)."""
    global StatsigOptions, StatsigUser, statsig
    from statsig import StatsigOptions, StatsigUser, statsig


@pytest.fixture(autouse=True)
def local_statsig() -> Iterator[None]:
    statsig.initialize("secret-key", StatsigOptions(local_mode=True, disable_diagnostics=True))
    statsig.override_gate("checkout", True)
    statsig.override_gate("beta", False)
    yield
    statsig.shutdown()  # type: ignore[no-untyped-call]


def _check() -> list[bool]:
    user = StatsigUser("user-1")
    return [statsig.check_gate(user, gate) for gate in ("checkout", "beta", "unknown")]


def test_gates_reach_the_event_at_the_receiver(rx: Receiver) -> None:
    tripwire.init(dsn=rx.dsn(), integrations=[StatsigIntegration()])
    assert _check() == [True, False, False]
    tripwire.capture_exception(ValueError("boom"))
    tripwire.flush()
    rx.wait_for(1)
    (event,) = rx.events()
    assert event["contexts"]["flags"] == {
        "values": [
            {"flag": "checkout", "result": True},
            {"flag": "beta", "result": False},
            {"flag": "unknown", "result": False},
        ]
    }


def test_gates_in_a_span_are_span_data(init_memory: Any) -> None:
    memory = init_memory(integrations=[StatsigIntegration()], traces_sample_rate=1.0)
    with tripwire.start_transaction(name="tx"), tripwire.start_span(op="work"):
        _check()
    tripwire.flush()
    (transaction,) = memory.transactions
    (span,) = transaction["spans"]
    flags = {k: v for k, v in span["data"].items() if k.startswith("flag.")}
    assert flags == {
        "flag.evaluation.checkout": True,
        "flag.evaluation.beta": False,
        "flag.evaluation.unknown": False,
    }


def test_quiet_without_the_integration_and_reset_unpatches(init_memory: Any) -> None:
    original = statsig.check_gate
    init_memory(integrations=[StatsigIntegration()])
    assert statsig.check_gate is not original
    memory = init_memory()  # a later client without it
    assert _check() == [True, False, False]
    tripwire.capture_message("no flags")
    tripwire.flush()
    (event,) = memory.events
    assert "flags" not in event.get("contexts", {})
    reset()
    assert statsig.check_gate is original


def test_too_old_statsig_does_not_enable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tripwire.utils.package_version", lambda name: (0, 55, 2))
    with pytest.raises(DidNotEnable, match=r"0\.55\.3 or newer"):
        tripwire.init(integrations=[StatsigIntegration()])


SCRIPT = """
from statsig import StatsigOptions, StatsigUser, statsig
from sentry_sdk.integrations.statsig import StatsigIntegration

sentry_sdk.init(
    dsn="https://key@example.com/1",
    transport=KEEP,
    default_integrations=False,
    traces_sample_rate=1.0,
    integrations=[StatsigIntegration()],
)
statsig.initialize("secret-key", StatsigOptions(local_mode=True, disable_diagnostics=True))
statsig.override_gate("checkout", True)
statsig.override_gate("beta", False)
user = StatsigUser("user-1")
with sentry_sdk.start_transaction(name="tx"):
    with sentry_sdk.start_span(op="work"):
        for gate in ("checkout", "beta", "unknown"):
            statsig.check_gate(user, gate)
    statsig.override_gate("checkout", False)
    statsig.check_gate(user, "checkout")
    sentry_sdk.capture_exception(ValueError("boom"))
with sentry_sdk.isolation_scope():
    statsig.check_gate(user, "beta")
    sentry_sdk.capture_message("isolated")
statsig.shutdown()
finish()
"""


def _shape(found: dict[str, Any]) -> list[Any]:
    out: list[Any] = []
    for item in found["items"]:
        payload = item["payload"]
        if item["type"] == "event":
            out.append(["event", payload["contexts"].get("flags")])
        elif item["type"] == "transaction":
            out.extend(
                ["span", {k: v for k, v in span["data"].items() if k.startswith("flag.")}]
                for span in payload["spans"]
            )
            out.append(["transaction", payload["contexts"].get("flags")])
    return out


def test_flags_match_sentry_sdk(tmp_path: Path) -> None:
    theirs, ours = run_both(SCRIPT, tmp_path)
    assert json.dumps(_shape(ours)) == json.dumps(_shape(theirs))
    assert _shape(ours) == [
        [
            "event",
            {
                "values": [
                    {"flag": "beta", "result": False},
                    {"flag": "unknown", "result": False},
                    {"flag": "checkout", "result": False},
                ]
            },
        ],
        [
            "span",
            {
                "flag.evaluation.checkout": True,
                "flag.evaluation.beta": False,
                "flag.evaluation.unknown": False,
            },
        ],
        ["transaction", None],
        [
            "event",
            {
                "values": [
                    {"flag": "unknown", "result": False},
                    {"flag": "checkout", "result": False},
                    {"flag": "beta", "result": False},
                ]
            },
        ],
    ]
