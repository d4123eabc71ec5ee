"""Unleash: the toggles `UnleashClient.is_enabled` checks go on error events.

As sentry_sdk 2.75's ``unleash`` integration (not auto-enabling; UnleashClient 6.0.1
or newer): `UnleashClient.is_enabled(feature, ...)` is wrapped, and each result is
recorded as `tripwire.feature_flags.add_feature_flag` does: in the isolation scope's
flags (``contexts.flags`` of later error events) and as ``flag.evaluation.<feature>``
on the active span. Unleash does not say which toggles are plain booleans, so every
`is_enabled` counts (as in sentry_sdk); `get_variant` is not recorded.

The class is patched when the application imports it (through `_patch.py`:
`tripwire.testing.reset()` undoes it), and the wrapper calls straight through while
the active client lacks this integration.
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import Any, Callable

from tripwire.feature_flags import add_feature_flag
from tripwire.integrations import DidNotEnable, Integration, _check_minimum_version
from tripwire.integrations._common._hooks import when_imported
from tripwire.integrations._patch import patch_once
from tripwire.scope._current import get_client

_MARK = "__tripwire_unleash__"
# The package: it defines the class, or (6.x) re-exports it from `clients`.
_MODULE = "UnleashClient"


class UnleashIntegration(Integration):
    """Record the results of `UnleashClient.is_enabled`."""

    identifier = "unleash"

    @staticmethod
    def setup_once() -> None:
        """Wrap `UnleashClient.is_enabled` once the package is imported.

        Raises:
            DidNotEnable: UnleashClient is not installed, or older than 6.0.1.
        """
        import importlib.util

        from tripwire.utils import package_version

        if importlib.util.find_spec("UnleashClient") is None:
            raise DidNotEnable("UnleashClient is not installed")
        _check_minimum_version(UnleashIntegration, package_version("UnleashClient"), "unleash")
        when_imported(_MODULE, _patch_module)


def _patch_module(module: ModuleType) -> None:
    patch_once(module.UnleashClient, "is_enabled", _wrap_is_enabled, _MARK)


def _wrap_is_enabled(original: Callable[..., bool]) -> Callable[..., bool]:
    @functools.wraps(original)
    def is_enabled(self: Any, feature: str, *args: Any, **kwargs: Any) -> bool:
        enabled = original(self, feature, *args, **kwargs)
        if get_client().get_integration(UnleashIntegration) is not None:
            try:
                add_feature_flag(feature, enabled)
            except Exception:  # the toggle's result must reach the caller whatever happens
                pass
        return enabled

    return is_enabled


__all__ = ["UnleashIntegration"]
