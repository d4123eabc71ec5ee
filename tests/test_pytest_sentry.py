"""pytest-sentry 0.3.3 (built on `sentry_sdk`) running on tripwire through the alias.

A small pytest session runs in a subprocess with `tripwire.alias.install()` loaded as
the first plugin (`-p`), before pytest-sentry imports `sentry_sdk`; plugin autoloading
is off so that only these two plugins are in play. Reports go to real receivers on
127.0.0.1. What is asserted is what sentry-sdk 2.75 sends for the same session (observed
by running it): the failing test as a handled error event tagged `pytest.result:
failed`, linked to the trace of the test's `pytest.runtest.call` transaction; nothing
for a test marked `sentry_client(None)`; a test marked with client options reports
through its own client. (A bare DSN string in the marker would lose to
PYTEST_SENTRY_DSN: pytest-sentry passes that as the `dsn` keyword, which wins in both.)
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from _receiver import Receiver

import tripwire

# Not imported here: importing pytest_sentry creates a sentry_sdk Client, whose default
# integrations would patch this test process.
if importlib.util.find_spec("pytest_sentry") is None:
    pytest.skip("pytest-sentry is not installed", allow_module_level=True)

_TESTS = """
import os

import pytest


def test_fails():
    answer = 41
    assert answer == 42, "wrong answer"


def test_passes():
    pass


@pytest.mark.sentry_client(None)
def test_not_reported():
    raise ValueError("reporting disabled for this test")


@pytest.mark.sentry_client({"dsn": os.environ["OTHER_DSN"]})
def test_own_client():
    raise KeyError("sent to the marker's DSN")
"""

# pytest-sentry's clients are bound to scopes, never to the global one, so nothing
# flushes them at exit (with sentry_sdk either): what they queued last would race the
# interpreter's shutdown. The session flushes them when it ends.
_CONFTEST = """
import pytest_sentry


def pytest_sessionfinish(session):
    for scope in [pytest_sentry.DEFAULT_SCOPE, *pytest_sentry._scope_cache.values()]:
        scope.client.flush(timeout=30)
"""

# CI variables pytest-sentry turns into tags: kept out so the tags are known.
_CI_PREFIXES = ("GITHUB_", "CI_", "CIRCLE_", "GITLAB_")


def _run_session(
    tmp_path: Path, sdk: str, dsn: str, other_dsn: str
) -> subprocess.CompletedProcess[str]:
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "tripwire_alias_plugin.py").write_text(
        "import tripwire.alias\n\ntripwire.alias.install()\n"
    )
    (tmp_path / "test_session.py").write_text(textwrap.dedent(_TESTS))
    (tmp_path / "conftest.py").write_text(_CONFTEST)
    env = {k: v for k, v in os.environ.items() if not k.startswith(_CI_PREFIXES)}
    env.update(
        PYTEST_DISABLE_PLUGIN_AUTOLOAD="1",
        PYTEST_SENTRY_DSN=dsn,
        PYTEST_SENTRY_ALWAYS_REPORT="1",
        OTHER_DSN=other_dsn,
        GITHUB_RUN_ID="4242",
    )
    env.pop("PYTEST_ADDOPTS", None)
    args = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"]
    if sdk == "tripwire":
        args += ["-p", "tripwire_alias_plugin"]
    args += ["-p", "pytest_sentry", "test_session.py"]
    return subprocess.run(
        args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False
    )


def _items(rx: Receiver, item_type: str) -> list[dict[str, Any]]:
    return [item.payload.json for item in rx.items(item_type)]


# The same session on sentry_sdk itself: the assertions are what it sends.
@pytest.mark.parametrize("sdk", ["tripwire", "sentry_sdk"])
def test_failing_test_is_reported_to_the_dsn(rx: Receiver, tmp_path: Path, sdk: str) -> None:
    with Receiver() as other:
        result = _run_session(tmp_path, sdk, rx.dsn(), other.dsn())
        assert "INTERNALERROR" not in result.stdout + result.stderr, result.stdout[-3000:]
        assert result.stdout.strip().splitlines()[-1].startswith("3 failed, 1 passed"), (
            result.stdout[-3000:] + result.stderr[-3000:]
        )
        # The session flushed its clients before exiting: every request has arrived.
        other_events = _items(other, "event")
        other_transactions = _items(other, "transaction")

    events = _items(rx, "event")
    transactions = _items(rx, "transaction")

    # Only the failing test without a marker reaches the default DSN.
    assert len(events) == 1
    event = events[0]
    (exception,) = event["exception"]["values"]
    assert exception["type"] == "AssertionError"
    assert exception["value"].startswith("wrong answer")
    assert exception["mechanism"] == {"type": "generic", "handled": True}
    assert event["level"] == "error"
    assert event["environment"] == "test"  # pytest-sentry's Client default
    assert event["tags"] == {"pytest.result": "failed", "pytest_environ.GITHUB_RUN_ID": "4242"}
    assert "pytest" in event["sdk"]["integrations"]
    assert event["sdk"]["version"] == (
        tripwire.VERSION if sdk == "tripwire" else importlib.metadata.version("sentry-sdk")
    )
    # pytest-sentry's global event processor marks pytest/pluggy frames as not in-app.
    frames = exception["stacktrace"]["frames"]
    assert frames[-1]["function"] == "test_fails"
    assert frames[-1]["in_app"] is True
    assert all(f["in_app"] is False for f in frames if f["module"].startswith("_pytest."))

    # One `pytest.runtest.call` transaction per reported test (the protocol ones are
    # unsampled on purpose); the error belongs to its test's trace.
    names = sorted(t["transaction"] for t in transactions)
    assert names == [
        "pytest.runtest.call test_session.py::test_fails",
        "pytest.runtest.call test_session.py::test_passes",
    ]
    by_name = {t["transaction"]: t for t in transactions}
    failing_tx = by_name["pytest.runtest.call test_session.py::test_fails"]
    assert failing_tx["contexts"]["trace"]["op"] == "pytest.runtest.call"
    assert event["contexts"]["trace"]["trace_id"] == failing_tx["contexts"]["trace"]["trace_id"]

    # `@pytest.mark.sentry_client({"dsn": ...})`: that test reports through its own client.
    assert [e["exception"]["values"][0]["type"] for e in other_events] == ["KeyError"]
    assert [t["transaction"] for t in other_transactions] == [
        "pytest.runtest.call test_session.py::test_own_client"
    ]
    # `@pytest.mark.sentry_client(None)` (a bare `Scope()`): nothing anywhere.
    everything = events + transactions + other_events + other_transactions
    assert "test_not_reported" not in repr(everything)
