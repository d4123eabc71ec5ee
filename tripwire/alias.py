"""Serve `import sentry_sdk` (and every `sentry_sdk.<sub>`) from tripwire.

Packages built on sentry_sdk (structlog-sentry, pytest-sentry, framework plugins) import
it by name. After `tripwire.alias.install()` those imports get tripwire's modules, the
same objects `import tripwire` gives, so the package and the application share one SDK:

    import tripwire.alias
    tripwire.alias.install()
    import structlog_sentry  # its `import sentry_sdk` is tripwire

Nothing is copied and no module runs twice: `sentry_sdk.scope` *is* `tripwire.scope`.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Optional

import tripwire

_ALIAS = "sentry_sdk"
_REAL = "tripwire"


def _real_name(fullname: str) -> Optional[str]:
    if fullname == _ALIAS:
        return _REAL
    if fullname.startswith(_ALIAS + "."):
        return _REAL + fullname[len(_ALIAS) :]
    return None


class _Loader(importlib.abc.Loader):
    """Hands out the already imported tripwire module; runs nothing itself."""

    def __init__(self, real: str) -> None:
        self._real = real
        self._spec: Optional[importlib.machinery.ModuleSpec] = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(self._real)
        self._spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        # The import system stamped the alias spec on the module; put tripwire's back so
        # reload(), pickling by reference and relative imports keep working.
        if self._spec is not None:
            module.__spec__ = self._spec


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(
        self,
        fullname: str,
        path: Optional[Sequence[str]],
        target: Optional[ModuleType] = None,
    ) -> Optional[importlib.machinery.ModuleSpec]:
        real = _real_name(fullname)
        if real is None:
            return None
        try:
            found = importlib.util.find_spec(real)
        except ImportError:
            return None
        if found is None:
            return None  # the usual "No module named 'sentry_sdk.x'"
        return importlib.util.spec_from_loader(
            fullname, _Loader(real), is_package=found.submodule_search_locations is not None
        )


_finder = _Finder()


def install() -> None:
    """Make `sentry_sdk` an alias of tripwire in this process (idempotent).

    Raises:
        RuntimeError: the real sentry_sdk is already imported here; two SDKs under one
            name would split the application's scopes between them.
    """
    present = sys.modules.get(_ALIAS)
    if present is not None and present is not sys.modules.get(_REAL):
        raise RuntimeError(
            "sentry_sdk is already imported: call tripwire.alias.install() before anything "
            "imports sentry_sdk"
        )

    # Modules tripwire already loaded are registered directly. Besides saving the finder
    # a trip, this keeps the import system from re-binding a package attribute that
    # differs from its submodule (`sentry_sdk.monitor` is the crons decorator, as in
    # sentry_sdk, while the module `sentry_sdk.monitor` is the backpressure monitor).
    sys.modules[_ALIAS] = tripwire
    for name, module in list(sys.modules.items()):
        if name.startswith(_REAL + "."):
            sys.modules.setdefault(_ALIAS + name[len(_REAL) :], module)
    if _finder not in sys.meta_path:
        sys.meta_path.insert(0, _finder)


def uninstall() -> None:
    """Undo `install()`: `import sentry_sdk` finds the real package again, if installed."""
    if _finder in sys.meta_path:
        sys.meta_path.remove(_finder)
    for name in [n for n in sys.modules if n == _ALIAS or n.startswith(_ALIAS + ".")]:
        module = sys.modules[name]
        if getattr(module, "__name__", "").startswith(_REAL):
            del sys.modules[name]


def installed() -> bool:
    """Whether `sentry_sdk` currently resolves to tripwire."""
    return _finder in sys.meta_path
