"""Adds the installed distributions and their versions (`event["modules"]`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tripwire.integrations import Integration
from tripwire.integrations._processors import add_internal_processor
from tripwire.scope._current import capturing_client

if TYPE_CHECKING:
    from tripwire.types import EventDict, Hint

_installed: dict[str, str] | None = None


def installed_packages() -> dict[str, str]:
    """{distribution name: version}, computed once, on first use (never at import or init)."""
    global _installed
    if _installed is None:
        from importlib import metadata

        found: dict[str, str] = {}
        for dist in metadata.distributions():
            try:
                name = dist.metadata["Name"]
                if name:
                    found[name.lower()] = dist.version
            except Exception:  # noqa: S112 - a broken METADATA file must not break capture
                continue
        _installed = found
    return _installed


class ModulesIntegration(Integration):
    """Lists installed packages on error events, as sentry_sdk does."""

    identifier = "modules"

    @staticmethod
    def setup_once() -> None:
        """Register the processor."""

        def add_modules(event: EventDict, hint: Hint) -> EventDict | None:
            if event.get("type") == "transaction":
                return event
            if capturing_client().get_integration(ModulesIntegration) is not None:
                event["modules"] = installed_packages()
            return event

        add_internal_processor(add_modules)
