"""Late binding: the one way a lower layer calls a layer above it.

Imports go down only (the layers are an import-linter contract in pyproject.toml).
Where a lower layer must call up, it calls a slot of `hooks`, filled by the upper
module itself when that module is imported:

- `capture`: `tripwire.capture` (the capture entry points and the scope merge), for
  `Scope.capture_*` and `Scope.apply_to_event`. Always bound: `import tripwire` loads it.
- `tracing`: the `tripwire.tracing` module, for the Scope's tracing methods.
- `sessions`: the `tripwire.sessions` module, for `Scope.start_session` / `end_session`.
- `setup_integrations`: `tripwire.integrations`' set-up for a client's options, for
  `Client`. Bound by the package root (`tripwire/__init__.py`), which imports both.
- `on_undo`: `tripwire.integrations._patch.on_undo`, for `functions_to_trace` (its
  patches are undone by `tripwire.testing.reset()` with every other). Bound by the root.

Tracing and sessions are not loaded by `import tripwire` (tracing alone costs
~25 ms and loads `datetime`), so their slots may still be empty when a scope first
needs them: `tracing()` and `sessions()` then import the module by name, the only
imports by name in the core, which bind the slot.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Callable, Protocol

if TYPE_CHECKING:
    from tripwire._client_base import BaseClient
    from tripwire.outcomes import Drop
    from tripwire.scope._scope import Scope
    from tripwire.types import EventDict, Hint


class CaptureHook(Protocol):
    """What `tripwire.capture` offers the scopes (see `capture/layers.py`, `capture/merge.py`)."""

    def capture_event(
        self,
        scope: Scope,
        event: Any,
        hint: Hint | None,
        extra_scope: Any,
        scope_kwargs: dict[str, Any],
        *,
        built_by_sdk: bool = False,
    ) -> str | None: ...

    def capture_message(
        self,
        scope: Scope,
        message: Any,
        level: str | None,
        extra_scope: Any,
        scope_kwargs: dict[str, Any],
    ) -> str | None: ...

    def capture_exception(
        self, scope: Scope, error: Any, extra_scope: Any, scope_kwargs: dict[str, Any]
    ) -> str | None: ...

    def apply_layers(
        self,
        event: EventDict,
        hint: Hint,
        layers: Sequence[Scope],
        client: BaseClient,
        share_crumbs: bool = False,
    ) -> EventDict | Drop: ...


class Hooks:
    """The slots; each is None until its upper module is imported."""

    __slots__ = ("capture", "on_undo", "sessions", "setup_integrations", "tracing")

    def __init__(self) -> None:
        self.capture: CaptureHook = _Unbound()
        self.tracing: Any = None
        self.sessions: Any = None
        self.setup_integrations: Callable[[dict[str, Any]], dict[str, Any]] | None = None
        self.on_undo: Callable[[Callable[[], None]], None] | None = None


class _Unbound:
    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"tripwire._late.hooks.capture.{name}: tripwire.capture not imported")


hooks = Hooks()


def tracing() -> Any:
    """The `tripwire.tracing` module, imported on first use."""
    module = hooks.tracing
    if module is None:
        importlib.import_module("tripwire.tracing")  # binds hooks.tracing
        module = hooks.tracing
    return module


def sessions() -> Any:
    """The `tripwire.sessions` module, imported on first use."""
    module = hooks.sessions
    if module is None:
        importlib.import_module("tripwire.sessions")  # binds hooks.sessions
        module = hooks.sessions
    return module
