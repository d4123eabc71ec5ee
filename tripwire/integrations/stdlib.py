"""Standard-library integration: the `runtime` context on every event."""

from __future__ import annotations

import platform
import sys
from typing import TYPE_CHECKING, Any

from tripwire.integrations import Integration
from tripwire.integrations._processors import add_internal_processor
from tripwire.scope._current import get_client

if TYPE_CHECKING:
    from tripwire.types import Event, Hint

_runtime: dict[str, Any] | None = None


def runtime_context() -> dict[str, Any]:
    """{"name", "version", "build"} of this interpreter (computed once)."""
    global _runtime
    if _runtime is None:
        _runtime = {
            "name": platform.python_implementation(),
            "version": "%d.%d.%d" % sys.version_info[:3],
            "build": sys.version,
        }
    return _runtime


class StdlibIntegration(Integration):
    """Adds the runtime context (interpreter name, version, build)."""

    identifier = "stdlib"

    @staticmethod
    def setup_once() -> None:
        """Register the processor."""

        def add_runtime(event: Event, hint: Hint) -> Event | None:
            if get_client().get_integration(StdlibIntegration) is not None:
                contexts = event.get("contexts")
                if not isinstance(contexts, dict):
                    contexts = event["contexts"] = {}
                if "runtime" not in contexts:
                    contexts["runtime"] = dict(runtime_context())
            return event

        add_internal_processor(add_runtime)
