"""Statsig: the gates `statsig.check_gate` checks go on error events.

As sentry_sdk 2.75's ``statsig`` integration (not auto-enabling; statsig 0.55.3 or
newer): `statsig.statsig.check_gate(user, gate)` is wrapped, and each result is
recorded as `tripwire.feature_flags.add_feature_flag` does: in the isolation scope's
flags (``contexts.flags`` of later error events) and as ``flag.evaluation.<gate>`` on
the active span. Other Statsig calls (configs, experiments, layers) are not recorded,
as in sentry_sdk.

The module is patched when the application imports it (through `_patch.py`:
`tripwire.testing.reset()` undoes it), and the wrapper calls straight through while
the active client lacks this integration. Code that bound ``check_gate`` by name
before the set-up keeps the original.
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

_MARK = "__tripwire_statsig__"


class StatsigIntegration(Integration):
    """Record the results of Statsig's `check_gate`."""

    identifier = "statsig"

    @staticmethod
    def setup_once() -> None:
        """Wrap `statsig.statsig.check_gate` once the module is imported.

        Raises:
            DidNotEnable: statsig is not installed, or older than 0.55.3.
        """
        import importlib.util

        from tripwire.utils import package_version

        if importlib.util.find_spec("statsig") is None:
            raise DidNotEnable("statsig is not installed")
        _check_minimum_version(StatsigIntegration, package_version("statsig"), "statsig")
        when_imported("statsig.statsig", _patch_module)


def _patch_module(module: ModuleType) -> None:
    patch_once(module, "check_gate", _wrap_check_gate, _MARK)


def _wrap_check_gate(original: Callable[..., bool]) -> Callable[..., bool]:
    @functools.wraps(original)
    def check_gate(user: Any, gate: str, *args: Any, **kwargs: Any) -> bool:
        enabled = original(user, gate, *args, **kwargs)
        if get_client().get_integration(StatsigIntegration) is not None:
            try:
                add_feature_flag(gate, enabled)
            except Exception:  # the gate's result must reach the caller whatever happens
                pass
        return enabled

    return check_gate


__all__ = ["StatsigIntegration"]
