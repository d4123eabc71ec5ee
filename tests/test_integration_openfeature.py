"""The OpenFeature integration: a real OpenFeature client on its in-memory provider.

Flags are evaluated through OpenFeature's own evaluation path (global hooks
included); the event goes over HTTP to a loopback receiver. The differential test
runs one script on sentry_sdk 2.75 and on tripwire, each in its own interpreter.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _receiver import Receiver
from _side_by_side import run_both
from openfeature import api
from openfeature.provider.in_memory_provider import InMemoryFlag, InMemoryProvider

import tripwire
from tripwire.integrations.openfeature import OpenFeatureHook, OpenFeatureIntegration
from tripwire.testing import reset

FLAGS = {
    "checkout": InMemoryFlag("on", {"on": True, "off": False}),
    "beta": InMemoryFlag("off", {"on": True, "off": False}),
    "theme": InMemoryFlag("dark", {"dark": "dark", "light": "light"}),
}


@pytest.fixture(autouse=True)
def provider() -> Iterator[None]:
    api.set_provider(InMemoryProvider(FLAGS))
    yield
    api.shutdown()
    api.clear_hooks()


def _evaluate() -> list[Any]:
    client = api.get_client()
    return [
        client.get_boolean_value("checkout", False),
        client.get_string_value("theme", "none"),  # not a bool: not recorded
        client.get_boolean_value("beta", True),
        client.get_boolean_value("missing", True),  # an error: the bool default counts
        client.get_string_value("missing-text", "x"),  # an error with a text default
    ]


def test_evaluations_reach_the_event_at_the_receiver(rx: Receiver) -> None:
    tripwire.init(dsn=rx.dsn(), integrations=[OpenFeatureIntegration()])
    assert _evaluate() == [True, "dark", False, True, "x"]
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


def test_evaluations_in_a_span_are_span_data(init_memory: Any) -> None:
    memory = init_memory(integrations=[OpenFeatureIntegration()], traces_sample_rate=1.0)
    with tripwire.start_transaction(name="tx"), tripwire.start_span(op="work"):
        _evaluate()
    tripwire.flush()
    (transaction,) = memory.transactions
    (span,) = transaction["spans"]
    flags = {k: v for k, v in span["data"].items() if k.startswith("flag.")}
    assert flags == {
        "flag.evaluation.checkout": True,
        "flag.evaluation.beta": False,
        "flag.evaluation.missing": True,
    }


def test_quiet_without_the_integration_and_reset_removes_the_hook(init_memory: Any) -> None:
    init_memory(integrations=[OpenFeatureIntegration()])
    assert [type(h) for h in api.get_hooks()] == [OpenFeatureHook]
    memory = init_memory()  # a later client without it
    _evaluate()
    tripwire.capture_message("no flags")
    tripwire.flush()
    (event,) = memory.events
    assert "flags" not in event.get("contexts", {})
    reset()
    assert api.get_hooks() == []


SCRIPT = """
from openfeature import api
from openfeature.provider.in_memory_provider import InMemoryFlag, InMemoryProvider
from sentry_sdk.integrations.openfeature import OpenFeatureIntegration

api.set_provider(InMemoryProvider({
    "checkout": InMemoryFlag("on", {"on": True, "off": False}),
    "beta": InMemoryFlag("off", {"on": True, "off": False}),
    "theme": InMemoryFlag("dark", {"dark": "dark"}),
}))
sentry_sdk.init(
    dsn="https://key@example.com/1",
    transport=KEEP,
    default_integrations=False,
    traces_sample_rate=1.0,
    integrations=[OpenFeatureIntegration()],
)
client = api.get_client()
with sentry_sdk.start_transaction(name="tx"):
    with sentry_sdk.start_span(op="work"):
        client.get_boolean_value("checkout", False)
        client.get_string_value("theme", "x")
        client.get_boolean_value("beta", True)
        client.get_boolean_value("missing", False)
        client.get_integer_value("missing-number", 3)
    sentry_sdk.capture_exception(ValueError("boom"))
with sentry_sdk.isolation_scope():
    client.get_boolean_value("checkout", False)
    sentry_sdk.capture_message("isolated")
api.shutdown()
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
    first = [
        {"flag": "checkout", "result": True},
        {"flag": "beta", "result": False},
        {"flag": "missing", "result": False},
    ]
    assert _shape(ours) == [
        ["event", {"values": first}],
        ["span", {f"flag.evaluation.{v['flag']}": v["result"] for v in first}],
        ["transaction", None],
        ["event", {"values": [*first[1:], first[0]]}],
    ]


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """tripwire's local backend on a free loopback port, its database in a temp dir."""
    pytest.importorskip("uvicorn", reason="the server extra is not installed")
    from tripwire.server.app import ServerThread

    server = ServerThread(db=tmp_path_factory.mktemp("backend") / "flags.db")
    yield server
    server.stop()


def test_the_issue_page_shows_the_flags(backend: Any) -> None:
    # Not auto-enabling: the backend in this process is a Starlette app the SDK would watch.
    tripwire.init(
        dsn=backend.dsn, integrations=[OpenFeatureIntegration()], auto_enabling_integrations=False
    )
    _evaluate()
    tripwire.capture_exception(LookupError("flags on the page"))
    tripwire.flush()
    tripwire.get_client().close()

    def get(path: str) -> str:
        with urllib.request.urlopen(backend.url + path, timeout=30) as response:
            text: str = response.read().decode()
            return text

    (issue,) = [i for i in json.loads(get("/api/0/issues/?status=all")) if "flags on" in i["title"]]
    page = get(f"/issues/{issue['id']}/")
    section = page[page.index("<h3>Feature flags</h3>") :]
    section = section[: section.index("</table>")]
    rows = re.findall(r"<tr><th>([^<]+)</th><td><code>([^<]+)</code></td></tr>", section)
    assert rows == [("checkout", "true"), ("beta", "false"), ("missing", "true")]
