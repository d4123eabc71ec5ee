"""`set_tag` writes the isolation scope's own tags dict in place; forks never share it.

The top-level `set_tag` stores straight into the dict the scope may write (`Scope._tw`);
these tests pin what a user sees around forks, clears and sentry_sdk's private names.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator

import pytest

import tripwire
from tripwire.scope._scope import Scope
from tripwire.testing import reset


@pytest.fixture(autouse=True)
def _fresh() -> Iterator[None]:
    reset()
    tripwire.init(dsn="https://abc@127.0.0.1:9/1")
    yield
    reset()


def test_isolation_scope_fork_gets_its_own_tags() -> None:
    tripwire.set_tag("a", 1)
    with tripwire.isolation_scope() as inner:
        tripwire.set_tag("b", 2)
        assert inner._tags == {"a": 1, "b": 2}
    outer = tripwire.get_isolation_scope()
    assert outer._tags == {"a": 1}
    tripwire.set_tag("c", 3)
    assert outer._tags == {"a": 1, "c": 3}
    assert inner._tags == {"a": 1, "b": 2}


def test_parent_and_fork_write_apart() -> None:
    parent = Scope()
    parent.set_tag("x", 1)
    child = parent.fork()
    child.set_tag("y", 2)
    parent.set_tag("z", 3)
    assert parent._tags == {"x": 1, "z": 3}
    assert child._tags == {"x": 1, "y": 2}
    child.remove_tag("x")
    assert child._tags == {"y": 2}
    assert parent._tags == {"x": 1, "z": 3}
    other = copy.copy(parent)
    other.set_tags({"t": 1})
    assert "t" not in parent._tags


def test_assigned_private_tags_are_written_in_place_and_clear_forgets_them() -> None:
    scope = tripwire.get_isolation_scope()
    mine = {"q": 1}
    scope._tags = mine
    tripwire.set_tag("r", 2)
    assert mine == {"q": 1, "r": 2}
    scope.clear()
    tripwire.set_tag("s", 1)
    assert scope._tags == {"s": 1}
    assert mine == {"q": 1, "r": 2}


def test_a_bad_key_is_ignored_not_raised() -> None:
    tripwire.set_tag(["unhashable"], 1)  # type: ignore[arg-type]
    tripwire.set_tag("ok", 1)
    assert tripwire.get_isolation_scope()._tags == {"ok": 1}
