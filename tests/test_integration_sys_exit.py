"""The sys_exit integration: real `sys.exit()` calls, in this process and in a child."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import _side_by_side as side
import pytest

import tripwire
from tripwire.integrations.sys_exit import SysExitIntegration
from tripwire.testing import MemoryTransport, reset

CODES: list[Any] = [None, 0, 1, 2, "bye", False, True]


def init(**options: Any) -> MemoryTransport:
    memory = MemoryTransport()
    tripwire.init(
        transport=memory,
        integrations=[SysExitIntegration(**options)],
        default_integrations=False,
    )
    return memory


def exit_with(code: Any) -> None:
    with pytest.raises(SystemExit) as raised:
        sys.exit(code)
    assert raised.value.code is code  # re-raised unchanged


def values(memory: MemoryTransport) -> list[str]:
    return [event["exception"]["values"][0]["value"] for event in memory.events]


def test_failed_exits_are_captured() -> None:
    memory = init()
    for code in CODES:
        exit_with(code)
    assert values(memory) == ["1", "2", "bye", "True"]
    for event in memory.events:
        assert event["level"] == "error"
        (value,) = event["exception"]["values"]
        assert value["type"] == "SystemExit"
        assert value["mechanism"] == {"type": "sys_exit", "handled": False}
        assert "stacktrace" not in value  # only the SDK's wrapper was on the way


def test_capture_successful_exits() -> None:
    memory = init(capture_successful_exits=True)
    for code in CODES:
        exit_with(code)
    assert values(memory) == ["", "0", "1", "2", "bye", "False", "True"]


def test_system_exit_raised_directly_is_not_captured() -> None:
    memory = init()
    with pytest.raises(SystemExit):
        raise SystemExit(3)
    assert memory.events == []


def test_reset_restores_sys_exit_and_no_client_costs_nothing() -> None:
    original = sys.exit
    init()
    assert sys.exit is not original
    tripwire.get_client().close()
    tripwire.init(transport=MemoryTransport(), default_integrations=False)
    exit_with(4)  # a client without the integration: nothing captured, nothing raised
    reset()
    assert sys.exit is original


_SCRIPT = """
import atexit
from sentry_sdk.integrations.sys_exit import SysExitIntegration

atexit.register(finish)
sentry_sdk.init(transport=KEEP, integrations=[SysExitIntegration()], default_integrations=False)
sentry_sdk.set_tag("stage", "end")

def main():
    sys.exit(3)

main()
"""


def test_real_exit_in_a_child_process_same_as_sentry_sdk(tmp_path: Path) -> None:
    # The exit status is the program's, 3, under both SDKs.
    sentry = side.run(_SCRIPT, "sentry", tmp_path, returncode=3)
    ours = side.run(_SCRIPT, "tripwire", tmp_path, returncode=3)
    (event,) = side.of_type(ours, "event")
    assert event["exception"]["values"][0]["value"] == "3"
    assert event["tags"] == {"stage": "end"}
    assert side.events(ours) == side.events(sentry), side.dumps([ours, sentry])
