"""Run a callback when a module is imported (now, if it already is).

An integration patches a standard-library module the application may never import
(`http.client` costs ~20 ms): `when_imported` patches it at once if it is loaded,
else right after its first import, through a finder placed first on `sys.meta_path`.
The finder is removed by `tripwire.testing.reset()` (with the patches).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType
from typing import Any, Callable, Optional

_lock = threading.Lock()
_waiting: dict[str, list[Callable[[ModuleType], None]]] = {}


class _LoaderProxy:
    """Loads the module with the real loader, then runs the callbacks waiting for it."""

    def __init__(self, loader: Any, name: str) -> None:
        self.loader = loader
        self.name = name

    def create_module(self, spec: ModuleSpec) -> Optional[ModuleType]:
        create = getattr(self.loader, "create_module", None)
        return create(spec) if create is not None else None

    def exec_module(self, module: ModuleType) -> None:
        # The module keeps its real loader, as if nothing had come between.
        spec = module.__spec__
        if spec is not None:
            spec.loader = self.loader
        module.__loader__ = self.loader
        self.loader.exec_module(module)
        _run(self.name, module)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.loader, name)


class _Finder:
    """First on `sys.meta_path` while a module is awaited; answers None otherwise."""

    def find_spec(
        self, fullname: str, path: Optional[Sequence[str]] = None, target: Any = None
    ) -> Optional[ModuleSpec]:
        if fullname not in _waiting:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec: Optional[ModuleSpec] = finder.find_spec(fullname, path, target)
            if spec is not None:
                if spec.loader is not None and hasattr(spec.loader, "exec_module"):
                    spec.loader = _LoaderProxy(spec.loader, fullname)  # type: ignore[assignment]
                return spec
        return None


_finder = _Finder()


def _run(name: str, module: ModuleType) -> None:
    with _lock:
        callbacks = _waiting.pop(name, [])
        if not _waiting and _finder in sys.meta_path:
            sys.meta_path.remove(_finder)
    for callback in callbacks:
        try:
            callback(module)
        except Exception:  # an integration that cannot patch must not break the import
            pass


def when_imported(name: str, callback: Callable[[ModuleType], None]) -> None:
    """Call `callback(module)` now if `name` is imported, else right after its import."""
    module = sys.modules.get(name)
    if module is not None:
        callback(module)
        return
    with _lock:
        _waiting.setdefault(name, []).append(callback)
        if _finder not in sys.meta_path:
            sys.meta_path.insert(0, _finder)
            from tripwire.integrations._patch import on_undo

            on_undo(_forget)


def _forget() -> None:
    with _lock:
        _waiting.clear()
        if _finder in sys.meta_path:
            sys.meta_path.remove(_finder)
