"""The unraisablehook integration: a real exception in `__del__`, chained to the previous hook."""

from __future__ import annotations

import gc
import sys
from pathlib import Path
from typing import Any

import _side_by_side as side
import pytest

import tripwire
from tripwire.integrations.unraisablehook import UnraisablehookIntegration
from tripwire.testing import MemoryTransport, reset


class Bad:
    def __del__(self) -> None:
        raise ValueError("in del")


def drop_one() -> None:
    Bad()
    gc.collect()


@pytest.fixture
def previous(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """What reaches the hook installed before tripwire's (instead of stderr and pytest)."""
    seen: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", lambda u: seen.append((u.exc_value, u.object)))
    return seen


def init() -> MemoryTransport:
    memory = MemoryTransport()
    tripwire.init(
        transport=memory, integrations=[UnraisablehookIntegration()], default_integrations=False
    )
    return memory


def test_exception_in_del_is_captured_and_the_previous_hook_runs(previous: list[Any]) -> None:
    memory = init()
    drop_one()
    (event,) = memory.events
    assert event["level"] == "error"
    (value,) = event["exception"]["values"]
    assert value["type"] == "ValueError"
    assert value["value"] == "in del"
    assert value["mechanism"] == {"type": "unraisablehook", "handled": False}
    assert [frame["function"] for frame in value["stacktrace"]["frames"]] == ["__del__"]
    ((exc, obj),) = previous
    assert isinstance(exc, ValueError)
    assert obj is Bad.__del__


def test_reset_restores_the_hook_and_no_client_costs_nothing(previous: list[Any]) -> None:
    hook = sys.unraisablehook
    memory = init()
    assert sys.unraisablehook is not hook
    tripwire.get_client().close()
    tripwire.init(transport=MemoryTransport(), default_integrations=False)
    drop_one()
    assert memory.events == []
    assert len(previous) == 1
    reset()
    assert sys.unraisablehook is hook


def test_not_a_default_integration(previous: list[Any]) -> None:
    memory = MemoryTransport()
    tripwire.init(transport=memory)
    assert tripwire.get_client().get_integration(UnraisablehookIntegration) is None
    drop_one()
    assert memory.events == []


_SCRIPT = """
import gc
from sentry_sdk.integrations.unraisablehook import UnraisablehookIntegration

sys.unraisablehook = lambda u: NOTES.append(type(u.exc_value).__name__)
sentry_sdk.init(
    transport=KEEP, integrations=[UnraisablehookIntegration()], default_integrations=False
)
sentry_sdk.set_tag("where", "del")

class Bad:
    def __del__(self):
        raise ValueError("in del")

def make():
    Bad()

make()
gc.collect()
finish()
"""


def test_same_as_sentry_sdk(tmp_path: Path) -> None:
    sentry, ours = side.run_both(_SCRIPT, tmp_path)
    assert ours["notes"] == sentry["notes"] == ["ValueError"]
    assert len(side.of_type(ours, "event")) == 1
    assert side.events(ours) == side.events(sentry), side.dumps([ours, sentry])
