"""The LaunchDarkly integration: a real `LDClient` on LaunchDarkly's test data source.

Flags are evaluated through LaunchDarkly's own evaluation (hooks included); the event
goes over HTTP to a loopback receiver. The differential test runs one script on
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
from tripwire.integrations.launchdarkly import LaunchDarklyIntegration

if TYPE_CHECKING:
    from ldclient import Config, Context, LDClient
    from ldclient.integrations.test_data import TestData


@pytest.fixture(autouse=True, scope="module")
def _ldclient() -> None:
    """ldclient is imported when the module's tests start, not at collection (every xdist
    worker collects every module; tests/_lazy.py)."""
    global Config, Context, LDClient, TestData
    from ldclient import Config, Context, LDClient
    from ldclient.integrations.test_data import TestData


@pytest.fixture
def ld() -> Iterator[LDClient]:
    """An initialized LDClient serving three flags from memory (no network)."""
    td = TestData.data_source()
    td.update(td.flag("checkout").variation_for_all(True))
    td.update(td.flag("beta").variation_for_all(False))
    td.update(td.flag("theme").variations("dark", "light").variation_for_all(0))
    client = LDClient(
        config=Config(
            "sdk-key", update_processor_class=td, send_events=False, diagnostic_opt_out=True
        )
    )
    yield client
    client.close()  # type: ignore[no-untyped-call]


def _evaluate(client: LDClient) -> list[Any]:
    user = Context.create("user-1")
    return [
        client.variation("checkout", user, False),
        client.variation("theme", user, "none"),  # not a bool: not recorded
        client.variation("beta", user, True),
        client.variation("missing", user, True),  # the default counts
    ]


def test_evaluations_reach_the_event_at_the_receiver(rx: Receiver, ld: LDClient) -> None:
    tripwire.init(dsn=rx.dsn(), integrations=[LaunchDarklyIntegration(ld_client=ld)])
    assert _evaluate(ld) == [True, "dark", False, True]
    tripwire.capture_exception(ValueError("boom"))
    tripwire.flush()
    rx.wait_for(1)
    (event,) = rx.events()
    assert event["contexts"]["flags"] == {
        "values": [
            {"flag": "checkout", "result": True},
            {"flag": "beta", "result": False},
            {"flag": "missing", "result": True},
        ]
    }


def test_evaluations_in_a_span_are_span_data(init_memory: Any, ld: LDClient) -> None:
    memory = init_memory(
        integrations=[LaunchDarklyIntegration(ld_client=ld)], traces_sample_rate=1.0
    )
    with tripwire.start_transaction(name="tx"), tripwire.start_span(op="work"):
        _evaluate(ld)
    tripwire.flush()
    (transaction,) = memory.transactions
    (span,) = transaction["spans"]
    flags = {k: v for k, v in span["data"].items() if k.startswith("flag.")}
    assert flags == {
        "flag.evaluation.checkout": True,
        "flag.evaluation.beta": False,
        "flag.evaluation.missing": True,
    }


def test_quiet_when_the_client_lacks_the_integration(init_memory: Any, ld: LDClient) -> None:
    init_memory(integrations=[LaunchDarklyIntegration(ld_client=ld)])
    memory = init_memory()  # a later client without it: the hook stays on `ld`, quiet
    _evaluate(ld)
    tripwire.capture_message("no flags")
    tripwire.flush()
    (event,) = memory.events
    assert "flags" not in event.get("contexts", {})


def test_uninitialized_or_missing_client_does_not_enable() -> None:
    offline = LDClient(config=Config("sdk-key", offline=True))
    try:
        # An offline client counts as initialized; one that could not connect does not.
        LaunchDarklyIntegration(ld_client=offline)
    finally:
        offline.close()  # type: ignore[no-untyped-call]
    failing = LDClient(
        config=Config(
            "sdk-key",
            base_uri="http://127.0.0.1:9",
            stream_uri="http://127.0.0.1:9",
            send_events=False,
            diagnostic_opt_out=True,
        ),
        start_wait=0,
    )
    try:
        with pytest.raises(DidNotEnable, match="not initialized"):
            LaunchDarklyIntegration(ld_client=failing)
    finally:
        failing.close()  # type: ignore[no-untyped-call]


SCRIPT = """
from ldclient import Config, Context, LDClient
from ldclient.integrations.test_data import TestData
from sentry_sdk.integrations.launchdarkly import LaunchDarklyIntegration

td = TestData.data_source()
td.update(td.flag("checkout").variation_for_all(True))
td.update(td.flag("beta").variation_for_all(False))
td.update(td.flag("theme").variations("dark", "light").variation_for_all(0))
config = Config("k", update_processor_class=td, send_events=False, diagnostic_opt_out=True)
ld = LDClient(config=config)
sentry_sdk.init(
    dsn="https://key@example.com/1",
    transport=KEEP,
    default_integrations=False,
    traces_sample_rate=1.0,
    integrations=[LaunchDarklyIntegration(ld_client=ld)],
)
user = Context.create("user-1")
with sentry_sdk.start_transaction(name="tx"):
    with sentry_sdk.start_span(op="work"):
        for key, default in [("checkout", False), ("theme", "x"), ("beta", True)]:
            ld.variation(key, user, default)
        ld.variation("missing", user, True)
    td.update(td.flag("checkout").variation_for_all(False))
    ld.variation("checkout", user, True)
    sentry_sdk.capture_exception(ValueError("boom"))
with sentry_sdk.isolation_scope():
    ld.variation("beta", user, True)
    sentry_sdk.capture_message("isolated")
ld.close()
finish()
"""


def _shape(found: dict[str, Any]) -> list[Any]:
    out: list[Any] = []
    for item in found["items"]:
        payload = item["payload"]
        if item["type"] == "event":
            out.append(("event", payload["contexts"].get("flags")))
        elif item["type"] == "transaction":
            out.extend(
                ("span", {k: v for k, v in span["data"].items() if k.startswith("flag.")})
                for span in payload["spans"]
            )
            out.append(("transaction", payload["contexts"].get("flags")))
    return out


def test_flags_match_sentry_sdk(tmp_path: Path) -> None:
    theirs, ours = run_both(SCRIPT, tmp_path)
    assert json.dumps(_shape(ours)) == json.dumps(_shape(theirs))
    assert _shape(ours) == [
        (
            "event",
            {
                "values": [
                    {"flag": "beta", "result": False},
                    {"flag": "missing", "result": True},
                    {"flag": "checkout", "result": False},
                ]
            },
        ),
        (
            "span",
            {
                "flag.evaluation.checkout": True,
                "flag.evaluation.beta": False,
                "flag.evaluation.missing": True,
            },
        ),
        ("transaction", None),
        # The isolation scope starts from a copy: beta re-evaluated is the most recent.
        (
            "event",
            {
                "values": [
                    {"flag": "missing", "result": True},
                    {"flag": "checkout", "result": False},
                    {"flag": "beta", "result": False},
                ]
            },
        ),
    ]
