"""OpenFeature: the flags OpenFeature clients evaluate go on error events.

As sentry_sdk 2.75's ``openfeature`` integration (not auto-enabling): `setup_once`
adds a hook to OpenFeature's global hooks (`openfeature.api.add_hooks`), so every
client and provider is covered. A boolean result (`after`) is recorded as
`tripwire.feature_flags.add_feature_flag` does: in the isolation scope's flags
(``contexts.flags`` of later error events) and as ``flag.evaluation.<key>`` on the
active span; when the evaluation fails (`error`), a boolean default is recorded
instead. Other value types are left out.

The hook does nothing while the active client lacks this integration, and
`tripwire.testing.reset()` takes it off OpenFeature's list. Like sentry_sdk's module,
this one imports OpenFeature (the hook subclasses its `Hook`): importing it without
OpenFeature raises `DidNotEnable`.
"""

from __future__ import annotations

from typing import Any

from tripwire.feature_flags import add_feature_flag
from tripwire.integrations import DidNotEnable, Integration
from tripwire.integrations._patch import on_undo
from tripwire.scope._current import get_client

try:
    from openfeature import api
    from openfeature.hook import Hook, HookContext, HookHints
except ImportError:
    raise DidNotEnable("OpenFeature is not installed") from None


class OpenFeatureIntegration(Integration):
    """Record the boolean flag evaluations of every OpenFeature client."""

    identifier = "openfeature"

    @staticmethod
    def setup_once() -> None:
        """Add the hook to OpenFeature's global hooks (taken off by `testing.reset`)."""
        hook = OpenFeatureHook()
        api.add_hooks(hooks=[hook])

        def remove() -> None:
            kept = [h for h in api.get_hooks() if h is not hook]
            api.clear_hooks()
            api.add_hooks(kept)

        on_undo(remove)


class OpenFeatureHook(Hook):
    """OpenFeature hook: boolean results (or boolean defaults on error) become evaluations."""

    __slots__ = ()

    def after(self, hook_context: Any, details: Any, hints: Any) -> None:
        """Record the evaluated value when it is a bool."""
        try:
            value = details.value
            if (
                isinstance(value, bool)
                and get_client().get_integration(OpenFeatureIntegration) is not None
            ):
                add_feature_flag(details.flag_key, value)
        except Exception:  # an evaluation must never fail because of the SDK
            pass

    def error(self, hook_context: HookContext, exception: Exception, hints: HookHints) -> None:
        """Record the default value when it is a bool (the evaluation failed)."""
        try:
            value = hook_context.default_value
            if (
                isinstance(value, bool)
                and get_client().get_integration(OpenFeatureIntegration) is not None
            ):
                add_feature_flag(hook_context.flag_key, value)
        except Exception:  # an evaluation must never fail because of the SDK
            pass


__all__ = ["OpenFeatureHook", "OpenFeatureIntegration"]
