"""Typer integration: exceptions that escape a Typer application.

A Typer app installs its own `sys.excepthook` (``typer.main.except_hook``, which
prints the pretty traceback) when it is called. As sentry_sdk 2.75's ``typer``
integration, that hook is wrapped: an uncaught exception is captured with mechanism
``{"type": "typer", "handled": false}``, then Typer's hook runs as usual.

`typer.main` is patched when it is imported (at once if it is); set-up raises
`DidNotEnable` if Typer is not installed.
"""

from __future__ import annotations

from types import ModuleType, TracebackType
from typing import Any, Callable

from tripwire.integrations import DidNotEnable, Integration
from tripwire.integrations._common._hooks import when_imported
from tripwire.integrations._common.unhandled import capture_unhandled
from tripwire.scope._current import get_client

_MARK = "__tripwire_typer__"


class TyperIntegration(Integration):
    """Captures the exceptions that reach Typer's excepthook."""

    identifier = "typer"

    @staticmethod
    def setup_once() -> None:
        """Wrap `typer.main.except_hook` once `typer.main` is imported."""
        import importlib.util

        if importlib.util.find_spec("typer") is None:
            raise DidNotEnable("Typer is not installed")
        when_imported("typer.main", _patch_typer)


def _patch_typer(module: ModuleType) -> None:
    from tripwire.integrations._patch import patch_once

    patch_once(module, "except_hook", _wrap_except_hook, _MARK)


def _wrap_except_hook(original: Callable[..., Any]) -> Callable[..., Any]:
    # Typer compares `sys.excepthook` with the module attribute, so the wrapper is
    # what it installs.
    def except_hook(
        exc_type: type[BaseException], value: BaseException, traceback: TracebackType | None
    ) -> Any:
        try:
            client = get_client()
            if client.get_integration(TyperIntegration) is not None:
                capture_unhandled(client, (exc_type, value, traceback), "typer")
        except Exception:  # the process is going down anyway: never mask the real error
            pass
        return original(exc_type, value, traceback)

    return except_hook


__all__ = ["TyperIntegration"]
