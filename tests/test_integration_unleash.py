"""The Unleash integration: a real `UnleashClient` started from a bootstrapped cache.

Toggles are checked through Unleash's own evaluation (strategies included, no
toggle fetching); the event goes over HTTP to a loopback receiver. The differential
test runs one script on sentry_sdk 2.75 and on tripwire, each in its own interpreter.
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
from tripwire.integrations.unleash import UnleashIntegration
from tripwire.testing import reset

if TYPE_CHECKING:
    from UnleashClient import UnleashClient  # type: ignore[attr-defined]
    from UnleashClient.cache import FileCache


@pytest.fixture(autouse=True, scope="module")
def _unleashclient() -> None:
    """UnleashClient is imported when the module's tests start, not at collection (every xdist
    worker collects every module; tests/_lazy.py)."""
    global UnleashClient, FileCache
    from UnleashClient import UnleashClient  # type: ignore[attr-defined]
    from UnleashClient.cache import FileCache


FEATURES = {
    "version": 1,
    "features": [
        {"name": "checkout", "enabled": True, "strategies": [{"name": "default"}]},
        {"name": "beta", "enabled": False, "strategies": [{"name": "default"}]},
        {
            "name": "staff",
            "enabled": True,
            "strategies": [{"name": "userWithId", "parameters": {"userIds": "7"}}],
        },
    ],
}


@pytest.fixture
def unleash(tmp_path: Path) -> Iterator[UnleashClient]:
    cache = FileCache("tripwire-test", directory=str(tmp_path))
    cache.bootstrap_from_dict(FEATURES)
    client = UnleashClient(
        url="http://127.0.0.1:9",  # never contacted: no registration, metrics or fetching
        app_name="tripwire-test",
        disable_metrics=True,
        disable_registration=True,
        cache=cache,
    )
    client.initialize_client(fetch_toggles=False)
    yield client
    client.destroy()


def _check(client: UnleashClient) -> list[bool]:
    return [
        client.is_enabled("checkout"),
        client.is_enabled("beta"),
        client.is_enabled("staff", {"userId": "7"}),
        client.is_enabled("unknown"),
    ]


def test_toggles_reach_the_event_at_the_receiver(rx: Receiver, unleash: UnleashClient) -> None:
    tripwire.init(dsn=rx.dsn(), integrations=[UnleashIntegration()])
    assert _check(unleash) == [True, False, True, False]
    tripwire.capture_exception(ValueError("boom"))
    tripwire.flush()
    rx.wait_for(1)
    (event,) = rx.events()
    assert event["contexts"]["flags"] == {
        "values": [
            {"flag": "checkout", "result": True},
            {"flag": "beta", "result": False},
            {"flag": "staff", "result": True},
            {"flag": "unknown", "result": False},
        ]
    }


def test_toggles_in_a_span_are_span_data(init_memory: Any, unleash: UnleashClient) -> None:
    memory = init_memory(integrations=[UnleashIntegration()], traces_sample_rate=1.0)
    with tripwire.start_transaction(name="tx"), tripwire.start_span(op="work"):
        _check(unleash)
    tripwire.flush()
    (transaction,) = memory.transactions
    (span,) = transaction["spans"]
    flags = {k: v for k, v in span["data"].items() if k.startswith("flag.")}
    assert flags == {
        "flag.evaluation.checkout": True,
        "flag.evaluation.beta": False,
        "flag.evaluation.staff": True,
        "flag.evaluation.unknown": False,
    }


def test_quiet_without_the_integration_and_reset_unpatches(
    init_memory: Any, unleash: UnleashClient
) -> None:
    original = UnleashClient.is_enabled
    init_memory(integrations=[UnleashIntegration()])
    assert UnleashClient.is_enabled is not original
    memory = init_memory()  # a later client without it
    assert _check(unleash) == [True, False, True, False]
    tripwire.capture_message("no flags")
    tripwire.flush()
    (event,) = memory.events
    assert "flags" not in event.get("contexts", {})
    reset()
    assert UnleashClient.is_enabled is original


SCRIPT = """
import tempfile
from UnleashClient import UnleashClient # type: ignore[attr-defined]
from UnleashClient.cache import FileCache
from sentry_sdk.integrations.unleash import UnleashIntegration

sentry_sdk.init(
    dsn="https://key@example.com/1",
    transport=KEEP,
    default_integrations=False,
    traces_sample_rate=1.0,
    integrations=[UnleashIntegration()],
)
cache = FileCache("t", directory=tempfile.mkdtemp(dir="."))
cache.bootstrap_from_dict({"version": 1, "features": [
    {"name": "checkout", "enabled": True, "strategies": [{"name": "default"}]},
    {"name": "beta", "enabled": False, "strategies": [{"name": "default"}]},
]})
client = UnleashClient(
    url="http://127.0.0.1:9", app_name="t", disable_metrics=True, disable_registration=True,
    cache=cache,
)
client.initialize_client(fetch_toggles=False)
with sentry_sdk.start_transaction(name="tx"):
    with sentry_sdk.start_span(op="work"):
        for name in ("checkout", "beta", "unknown"):
            client.is_enabled(name)
    client.is_enabled("checkout", fallback_function=lambda name, context: False)
    sentry_sdk.capture_exception(ValueError("boom"))
with sentry_sdk.isolation_scope():
    client.is_enabled("beta")
    sentry_sdk.capture_message("isolated")
client.destroy()
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
                    {"flag": "checkout", "result": True},
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
                    {"flag": "checkout", "result": True},
                    {"flag": "beta", "result": False},
                ]
            },
        ],
    ]
