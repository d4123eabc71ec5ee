"""PureEvalIntegration: frame ``vars`` from expressions near the failing line (sentry_sdk 2.75)."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any, Callable

import pytest
from _side_by_side import dumps, of_type, run_both

import tripwire
from tripwire.integrations import DidNotEnable
from tripwire.integrations.pure_eval import PureEvalIntegration
from tripwire.testing import MemoryTransport

InitMemory = Callable[..., MemoryTransport]


class Box:
    def __init__(self) -> None:
        self.x = [1, 2, 3]
        self.y = {"k": 5}

    def method(self, a: list[int]) -> int:
        b = a[0] + self.x[1]
        return self.y["k"] + a[5] + b


class Many:
    pass


many = Many()
for _name in "abcdefghijkl":
    setattr(many, _name, ord(_name))


def wide(x: list[int]) -> int:
    y = many.a + many.b + many.c + many.d + many.e + many.f  # type: ignore[attr-defined]
    z = many.g + many.h + many.i + many.j + many.k + many.l  # type: ignore[attr-defined]
    return x[y] + x[z] + x[0]


def plain(a: int, b: int = 2) -> None:
    raise ValueError


def last_frame_vars(memory: MemoryTransport) -> list[Any]:
    return [
        event["exception"]["values"][-1]["stacktrace"]["frames"][-1].get("vars")
        for event in memory.events
    ]


def test_expressions_closest_first(init_memory: InitMemory) -> None:
    memory = init_memory(integrations=[PureEvalIntegration()], default_integrations=False)
    box = Box()
    for call in (lambda: box.method([1, 2]), lambda: wide([1]), lambda: plain(1)):
        try:
            call()
        except Exception:
            tripwire.capture_exception()
    method_vars, wide_vars, plain_vars = last_frame_vars(memory)
    # a[5] fails to evaluate; the rest is ordered by where it last occurs up to the line.
    assert list(method_vars) == [
        "b",
        "a",
        'self.y["k"]',
        "self",
        "self.y",
        "self.x[1]",
        "self.x",
        "a[0] + self.x[1]",
        "a[0]",
    ]
    assert method_vars["a[0] + self.x[1]"] == "3"
    assert method_vars["self.x"] == ["1", "2", "3"]
    # Ten at most.
    assert list(wide_vars) == [
        *("x[0]", "x", "z", "y", "many.l", "many", "many.k", "many.j", "many.i", "many.h")
    ]
    # Nothing worth showing: the plain locals stay.
    assert plain_vars == {"a": "1", "b": "2"}


def test_added_even_without_local_variables(init_memory: InitMemory) -> None:
    memory = init_memory(
        integrations=[PureEvalIntegration()],
        default_integrations=False,
        include_local_variables=False,
    )
    box = Box()
    for call in (lambda: box.method([1, 2]), lambda: plain(1)):
        try:
            call()
        except Exception:
            tripwire.capture_exception()
    method_vars, plain_vars = last_frame_vars(memory)
    assert method_vars["a[0]"] == "1"
    assert plain_vars is None


@pytest.mark.parametrize("missing", ["executing", "pure_eval", "asttokens"])
def test_did_not_enable_without_its_packages(missing: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, missing, None)
    with pytest.raises(DidNotEnable, match=f"^{missing} is not installed$"):
        tripwire.init(integrations=[PureEvalIntegration()], default_integrations=False)


SCRIPT = """
from sentry_sdk.integrations.pure_eval import PureEvalIntegration

sentry_sdk.init(transport=KEEP, integrations=[PureEvalIntegration()], **OPTIONS)


class O:
    pass


o = O(); o.p = 1; o.q = [1]; o.r = 3


class Box:
    def __init__(self):
        self.x = [1, 2, 3]
        self.y = {"k": 5}

    def method(self, a):
        b = a[0] + self.x[1]
        return self.y["k"] + a[5] + b

    def hidden(self):
        __traceback_hide__ = True
        return self.method([self.x[0]])


def spread(d):
    before = o.p
    if d:
        x = (o.q[0] +
             d["missing"])
    after = o.r
    return before


def with_class():
    k = o.r
    class C:
        z = o.p
        w = [o.q[i] for i in range(3)]
    return C


def plain(a, b=2):
    raise ValueError


def chained():
    try:
        Box().hidden()
    except IndexError as error:
        raise KeyError(o.q) from error


namespace = {}
source = "def generated(x):\\n    w = 5\\n    return x[w]\\n"
exec(compile(source, "<generated>", "exec"), namespace)

for call in (
    lambda: Box().method([1, 2]),
    lambda: spread({"k": 1}),
    with_class,
    lambda: plain(1),
    chained,
    lambda: namespace["generated"]([1]),
):
    try:
        call()
    except Exception:
        sentry_sdk.capture_exception()
finish()
"""

_ADDRESS = re.compile(r" at 0x[0-9a-f]+>")


def frames_of(found: dict[str, Any]) -> list[Any]:
    shapes = [
        [
            [(f["function"], f["lineno"], f.get("vars")) for f in value["stacktrace"]["frames"]]
            for value in event["exception"]["values"]
        ]
        for event in of_type(found, "event")
    ]
    # Object reprs carry addresses; the key order of `vars` is part of what is compared.
    # Under the alias `sentry_sdk` is the module named "tripwire", which pure_eval finds
    # worth showing (a module is not when its name is the variable's): left out here,
    # and with it the tenth entry, which it pushes out of tripwire's module frames.
    text = _ADDRESS.sub(" at 0x?>", json.dumps(shapes))
    return [
        [
            [
                (name, line, [kv for kv in (vars_ or {}).items() if kv[0] != "sentry_sdk"][:9])
                for name, line, vars_ in value
            ]
            for value in event
        ]
        for event in json.loads(text)
    ]


@pytest.mark.parametrize("local_vars", [True, False])
def test_same_vars_as_sentry_sdk(local_vars: bool, tmp_path: Path) -> None:
    script = f"OPTIONS = dict(default_integrations=False, include_local_variables={local_vars})\n"
    sentry, ours = run_both(script + SCRIPT, tmp_path)
    assert frames_of(ours) == frames_of(sentry), dumps([frames_of(sentry), frames_of(ours)])
    assert len(frames_of(ours)) == 6
