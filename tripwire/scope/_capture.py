"""Compatibility path: the capture entry points now live in `tripwire.capture`.

Integrations written against this path keep working; new code imports
`tripwire.capture`. The scopes are below the capture package, so these forward
through the late-binding hook (`tripwire._late.hooks.capture`) instead of importing it.
"""

from __future__ import annotations

from typing import Any

from tripwire._late import hooks


def capture_event(*args: Any, **kwargs: Any) -> str | None:
    """`tripwire.capture.capture_event`."""
    return hooks.capture.capture_event(*args, **kwargs)


def capture_message(*args: Any, **kwargs: Any) -> str | None:
    """`tripwire.capture.capture_message`."""
    return hooks.capture.capture_message(*args, **kwargs)


def capture_exception(*args: Any, **kwargs: Any) -> str | None:
    """`tripwire.capture.capture_exception`."""
    return hooks.capture.capture_exception(*args, **kwargs)
