"""A test module's heavy library, imported when the module's tests start, not at collection.

Every xdist worker collects every test module, and the AI libraries take seconds of CPU
each to import; with ``--dist loadfile`` only one worker runs a module's tests. So such a
module names its library ``lazy("litellm")`` and lists ``imported(...)`` in a
module-scoped autouse fixture: the library is in ``sys.modules`` before the module's
first test (and before its first ``init()``), as it was when imported at the top.

A module that uses a library's names bare imports them in such a fixture instead
(``global Agent`` then ``from agents import Agent``; the same import under
``if TYPE_CHECKING:`` for readers and type checkers), with whatever it builds from
them at import time (tools, handlers, subclasses), so its tests read as before.

``pytest.importorskip`` imports the library: at the top of a module,
`skip_module_without` only looks for it.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any, Optional

import pytest


class _Lazy:
    """Stands for a module; the first read of a public attribute imports it."""

    def __init__(self, name: str) -> None:
        self._lazy_name = name

    def __getattr__(self, attr: str) -> Any:
        if attr.startswith("_"):
            # pytest probes every module global for fixture markers at collection.
            raise AttributeError(attr)
        return getattr(importlib.import_module(self._lazy_name), attr)

    def __repr__(self) -> str:
        return f"<lazy module {self._lazy_name}>"


def lazy(name: str) -> Any:
    """`name` to be imported on first use (typed Any, like the module it stands for)."""
    return _Lazy(name)


def imported(*modules: Any) -> None:
    """Import the lazy modules now."""
    for module in modules:
        importlib.import_module(module._lazy_name)


def skip_module_without(name: str, reason: Optional[str] = None) -> None:
    """Skip the calling test module unless the top-level package `name` is installed.

    Like a module-level ``pytest.importorskip(name)``, without importing it.
    """
    if importlib.util.find_spec(name) is None:
        pytest.skip(reason or f"could not import {name!r}", allow_module_level=True)
