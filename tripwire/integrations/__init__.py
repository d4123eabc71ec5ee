"""Integrations: the base class, the default set and the registry.

An integration declares an `identifier`; `setup_once()` runs once per process (as
in sentry_sdk) and installs hooks that check, on every call, whether the active
client has that integration enabled. Patches go through `_patch.py` so
`tripwire.testing.reset()` can undo them.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any, ClassVar

from tripwire._log import logger

if TYPE_CHECKING:
    from tripwire.client import Client


class DidNotEnable(Exception):
    """Raised by `setup_once` when the integration cannot be enabled (e.g. missing package)."""


class Integration:
    """Base class for integrations."""

    identifier: ClassVar[str] = "integration"

    @staticmethod
    def setup_once() -> None:
        """Install process-wide hooks (called once per process)."""


_DEFAULT_INTEGRATIONS = (
    "tripwire.integrations.argv.ArgvIntegration",
    "tripwire.integrations.atexit.AtexitIntegration",
    "tripwire.integrations.dedupe.DedupeIntegration",
    "tripwire.integrations.excepthook.ExcepthookIntegration",
    "tripwire.integrations.logging.LoggingIntegration",
    "tripwire.integrations.modules.ModulesIntegration",
    "tripwire.integrations.stdlib.StdlibIntegration",
    "tripwire.integrations.threading.ThreadingIntegration",
)

_setup_done: set[str] = set()


def _load(path: str) -> type[Integration] | None:
    module_name, _, cls_name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), cls_name)
    except (ImportError, AttributeError):
        logger.debug("default integration %s is not available", path)
        return None
    return cls  # type: ignore[no-any-return]


def setup_integrations(client: Client, options: dict[str, Any]) -> dict[str, Integration]:
    """Instantiate and set up the integrations these options ask for."""
    chosen: dict[str, Integration] = {}
    for integration in options.get("integrations") or ():
        instance = integration() if isinstance(integration, type) else integration
        chosen[instance.identifier] = instance
    if options.get("default_integrations", True):
        for path in _DEFAULT_INTEGRATIONS:
            cls = _load(path)
            if cls is not None and cls.identifier not in chosen:
                chosen[cls.identifier] = cls()
    disabled = {
        d if isinstance(d, str) else d.identifier
        for d in options.get("disabled_integrations") or ()
    }
    installed: dict[str, Integration] = {}
    for identifier, instance in chosen.items():
        if identifier in disabled:
            continue
        if identifier not in _setup_done:
            try:
                type(instance).setup_once()
            except DidNotEnable as exc:
                logger.debug("integration %s not enabled: %s", identifier, exc)
                continue
            except Exception:
                logger.warning("integration %s failed to set up", identifier, exc_info=True)
                continue
            _setup_done.add(identifier)
        installed[identifier] = instance
    return installed


def reset_integrations() -> None:
    """Undo all patches and forget what was set up (used by `tripwire.testing.reset`)."""
    from tripwire.integrations._patch import undo_all
    from tripwire.scope._apply import global_event_processors

    undo_all()
    global_event_processors.clear()
    _setup_done.clear()


__all__ = ["DidNotEnable", "Integration", "setup_integrations"]
