"""The excepthook integration: a real uncaught exception in a child process."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest

import tripwire
from tripwire.integrations.excepthook import ExcepthookIntegration
from tripwire.testing import MemoryTransport, reset


@pytest.fixture(autouse=True)
def _reset_sdk() -> Iterator[None]:
    yield
    reset()


# The child installs its own excepthook before init: tripwire chains in front of it,
# so it runs after the capture and prints what reached the transport.
_CHILD = textwrap.dedent(
    """
    import json, sys
    import tripwire
    from tripwire.integrations.excepthook import ExcepthookIntegration
    from tripwire.testing import MemoryTransport

    memory = MemoryTransport()

    def previous_hook(exc_type, value, tb):
        print(json.dumps({"previous_hook": exc_type.__name__, "events": memory.events}))

    sys.excepthook = previous_hook
    {setup}
    tripwire.init(transport=memory, {options})
    tripwire.set_tag("stage", "startup")

    def load_config():
        raise KeyError("database_url")

    load_config()
    """
)


def run_child(setup: str = "", options: str = "") -> tuple[dict[str, Any], int]:
    script = _CHILD.replace("{setup}", setup).replace("{options}", options)
    proc = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.returncode


def test_uncaught_exception_is_captured_then_previous_hook_runs() -> None:
    result, returncode = run_child()

    assert returncode == 1  # the exception still ends the process as usual
    assert result["previous_hook"] == "KeyError"
    (event,) = result["events"]
    assert event["level"] == "error"
    assert event["tags"] == {"stage": "startup"}
    (value,) = event["exception"]["values"]
    assert value["type"] == "KeyError"
    assert value["value"] == "'database_url'"
    assert value["mechanism"] == {"type": "excepthook", "handled": False}
    assert [f["function"] for f in value["stacktrace"]["frames"]] == ["<module>", "load_config"]


def test_interactive_sessions_are_skipped_unless_always_run() -> None:
    result, _ = run_child(setup="sys.ps1 = '>>> '")
    assert result == {"previous_hook": "KeyError", "events": []}

    result, _ = run_child(
        setup="sys.ps1 = '>>> '",
        options="integrations=[ExcepthookIntegration(always_run=True)]",
    )
    assert len(result["events"]) == 1


def test_hook_is_chained_and_reset_restores_it(capsys: pytest.CaptureFixture[str]) -> None:
    before = sys.excepthook
    memory = MemoryTransport()
    tripwire.init(transport=memory)
    assert sys.excepthook is not before
    try:
        raise ZeroDivisionError("direct")
    except ZeroDivisionError:
        sys.excepthook(*sys.exc_info())  # what the interpreter does for an uncaught error
    (event,) = memory.events
    assert event["exception"]["values"][0]["mechanism"]["type"] == "excepthook"
    assert "ZeroDivisionError: direct" in capsys.readouterr().err  # the previous hook ran
    reset()
    assert sys.excepthook is before


def test_hook_left_by_an_earlier_client_respects_the_current_one(
    capsys: pytest.CaptureFixture[str],
) -> None:
    tripwire.init(transport=MemoryTransport())  # installs the hook (once per process)
    memory = MemoryTransport()
    tripwire.init(transport=memory, disabled_integrations=[ExcepthookIntegration])
    try:
        raise ValueError("not for this client")
    except ValueError:
        sys.excepthook(*sys.exc_info())
    assert memory.events == []
    assert "ValueError: not for this client" in capsys.readouterr().err


def test_always_run_must_be_a_bool() -> None:
    with pytest.raises(ValueError, match="always_run"):
        ExcepthookIntegration(always_run="yes")  # type: ignore[arg-type]
