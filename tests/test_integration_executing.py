"""ExecutingIntegration: frame ``function`` becomes the qualified name, as in sentry_sdk 2.75."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, Callable

import pytest
from _side_by_side import dumps, of_type, run_both

import tripwire
from tripwire.integrations import DidNotEnable
from tripwire.integrations.executing import ExecutingIntegration
from tripwire.testing import MemoryTransport

InitMemory = Callable[..., MemoryTransport]


class Shape:
    def method(self, items: list[int]) -> int:
        return items[3]

    @staticmethod
    def static() -> float:
        return 1 / 0

    class Inner:
        def deep(self) -> None:
            raise ValueError("deep")


def outer() -> int:
    def inner() -> int:
        return Shape().method([1])

    return inner()


def functions(memory: MemoryTransport) -> list[list[list[str]]]:
    return [
        [
            [frame["function"] for frame in value["stacktrace"]["frames"]]
            for value in event["exception"]["values"]
        ]
        for event in memory.events
    ]


def chained() -> None:
    try:
        Shape.Inner().deep()
    except ValueError as error:
        raise KeyError("outer") from error


def test_functions_get_qualified_names(init_memory: InitMemory) -> None:
    memory = init_memory(integrations=[ExecutingIntegration()], default_integrations=False)
    for call in (outer, Shape.static, chained):
        try:
            call()
        except Exception:
            tripwire.capture_exception()
    test = "test_functions_get_qualified_names"
    assert functions(memory) == [
        [[test, "outer", "outer.<locals>.inner", "Shape.method"]],
        [[test, "Shape.static"]],
        [["chained", "Shape.Inner.deep"], [test, "chained"]],
    ]


def test_without_the_integration_names_stay_plain(init_memory: InitMemory) -> None:
    memory = init_memory(default_integrations=False)
    try:
        outer()
    except Exception:
        tripwire.capture_exception()
    test = "test_without_the_integration_names_stay_plain"
    assert functions(memory) == [[[test, "outer", "inner", "method"]]]


def test_did_not_enable_without_executing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "executing", None)
    with pytest.raises(DidNotEnable, match=r"^executing is not installed$"):
        tripwire.init(integrations=[ExecutingIntegration()], default_integrations=False)


SCRIPT = """
from sentry_sdk.integrations.executing import ExecutingIntegration

sentry_sdk.init(transport=KEEP, integrations=[ExecutingIntegration()], default_integrations=False)


class Shape:
    def method(self, items):
        return items[3]

    @staticmethod
    def static():
        return 1 / 0

    class Inner:
        def deep(self):
            __traceback_hide__ = True
            return self.deeper()

        def deeper(self):
            raise ValueError("deep")


def outer():
    def inner():
        run = lambda: Shape().method([1])
        return run()
    return inner()


def chained():
    try:
        Shape.Inner().deep()
    except ValueError as error:
        raise KeyError("outer") from error


namespace = {}
exec(compile("def generated(x):\\n    return x[1]\\n", "<generated>", "exec"), namespace)

for call in (outer, Shape.static, chained, lambda: namespace["generated"]([])):
    try:
        call()
    except Exception:
        sentry_sdk.capture_exception()
finish()
"""


def frames_of(found: dict[str, Any]) -> list[Any]:
    return [
        [
            [(frame["function"], frame["lineno"]) for frame in value["stacktrace"]["frames"]]
            for value in event["exception"]["values"]
        ]
        for event in of_type(found, "event")
    ]


def test_same_names_as_sentry_sdk(tmp_path: Path) -> None:
    sentry, ours = run_both(SCRIPT, tmp_path)
    assert frames_of(ours) == frames_of(sentry), dumps([frames_of(sentry), frames_of(ours)])
    names = [[[name for name, _line in value] for value in event] for event in frames_of(ours)]
    assert names == [
        [
            [
                "<module>",
                "outer",
                "outer.<locals>.inner",
                "outer.<locals>.inner.<locals>.<lambda>",
                "Shape.method",
            ]
        ],
        [["<module>", "Shape.static"]],
        [["chained", "Shape.Inner.deeper"], ["<module>", "chained"]],
        [["<module>", "<lambda>", "generated"]],
    ]
