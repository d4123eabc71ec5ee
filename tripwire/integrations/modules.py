"""Adds the installed distributions and their versions (`event["modules"]`)."""

from __future__ import annotations

import os
import sys
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
        try:
            found = _scan(sys.path)
        except Exception:  # an odd path entry: the standard library's way, slower
            found = _from_importlib()
        _installed = found
    return _installed


def _scan(paths: list[str]) -> dict[str, str]:
    """What `importlib.metadata.distributions()` finds in plain directories, read directly.

    The first error event waits for this: `importlib.metadata` costs ~20 ms to import
    and its e-mail parser ~0.5 ms a distribution (100-400 ms with a few hundred
    installed); this reads the Name and Version headers off each METADATA file. Later
    entries of `sys.path` win, as with the dict sentry_sdk builds.
    """
    found: dict[str, str] = {}
    for entry in paths:
        try:
            names = os.listdir(entry or ".")
        except OSError:
            continue  # a zip file, a missing directory: no installed distributions
        for name in names:
            if name.endswith(".dist-info"):
                headers = _headers(os.path.join(entry, name, "METADATA"))
            elif name.endswith(".egg-info"):
                path = os.path.join(entry, name)
                headers = _headers(os.path.join(path, "PKG-INFO") if os.path.isdir(path) else path)
            else:
                continue
            if headers is not None and headers[0]:
                found[headers[0].lower()] = headers[1]
    return found


def _headers(path: str) -> tuple[str, str] | None:
    """The Name and Version headers of a metadata file (None if unreadable)."""
    name = version = None
    try:
        with open(path, encoding="utf-8", errors="replace") as lines:
            for line in lines:
                if line in ("\n", "\r\n"):
                    break  # the headers end at the first blank line
                if line.startswith("Name:"):
                    name = line[5:].strip()
                elif line.startswith("Version:"):
                    version = line[8:].strip()
                if name is not None and version is not None:
                    return name, version
    except OSError:
        return None
    return None


def _from_importlib() -> dict[str, str]:
    from importlib import metadata  # lazy: only when the direct scan failed

    found: dict[str, str] = {}
    for dist in metadata.distributions():
        try:
            name = dist.metadata["Name"]
            if name:
                found[name.lower()] = dist.version
        except Exception:  # noqa: S112 - a broken METADATA file must not break capture
            continue
    return found


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
