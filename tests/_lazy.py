"""A test module's heavy library, imported when the module's tests start, not at collection.

Every xdist worker collects every test module, and the AI libraries take seconds of CPU
each to import; with ``--dist loadfile`` only one worker runs a module's tests. So such a
module names its library ``lazy("litellm")`` and lists ``imported(...)`` in a
module-scoped autouse fixture: the library is in ``sys.modules`` before the module's
first test (and before its first ``init()``), as it was when imported at the top.
"""

from __future__ import annotations

import importlib
from typing import Any


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
