"""Standard-library integration: the `runtime` and `os` contexts on every event."""

from __future__ import annotations

import platform
import sys
from typing import TYPE_CHECKING, Any

from tripwire.integrations import Integration
from tripwire.integrations._processors import add_internal_processor
from tripwire.scope._current import capturing_client

if TYPE_CHECKING:
    from tripwire.types import EventDict, Hint

_runtime: dict[str, Any] | None = None
_os: dict[str, Any] | None = None


def os_context() -> dict[str, Any]:
    """{"name", "version", "build"?} of the operating system (computed once).

    sentry_sdk leaves this to the server; the issue asks for it and the local backend
    shows it, so tripwire sends it.
    """
    global _os
    if _os is None:
        system = platform.system() or "unknown"
        found: dict[str, Any] = {"name": "macOS" if system == "Darwin" else system}
        if system == "Darwin":
            found["version"] = platform.mac_ver()[0]
            found["kernel_version"] = platform.release()
        elif system == "Windows":
            found["version"] = platform.version()
        else:
            found["version"] = platform.release()
            found["build"] = platform.version()
        _os = found
    return _os


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
    """Adds the runtime and os contexts (interpreter and operating system)."""

    identifier = "stdlib"

    @staticmethod
    def setup_once() -> None:
        """Register the processor."""

        def add_runtime(event: EventDict, hint: Hint) -> EventDict | None:
            if capturing_client().get_integration(StdlibIntegration) is not None:
                contexts = event.get("contexts")
                if not isinstance(contexts, dict):
                    contexts = event["contexts"] = {}
                if "runtime" not in contexts:
                    contexts["runtime"] = dict(runtime_context())
                if "os" not in contexts and event.get("type") != "transaction":
                    contexts["os"] = dict(os_context())
            return event

        add_internal_processor(add_runtime)
