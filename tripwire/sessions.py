"""Release-health sessions (interim: no-ops until the sessions feature lands)."""

from __future__ import annotations

from typing import Any


def start_session(scope: Any, *args: Any, **kwargs: Any) -> None:
    """Start a session on `scope` (no-op for now)."""


def end_session(scope: Any) -> None:
    """End `scope`'s session (no-op for now)."""
