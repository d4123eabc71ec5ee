"""LaunchDarkly: the flags a LaunchDarkly client evaluates go on error events.

As sentry_sdk 2.75's ``launchdarkly`` integration (not auto-enabling):
`LaunchDarklyIntegration(ld_client=None)` adds an evaluation hook to the given
`LDClient`, or to LaunchDarkly's shared client (`ldclient.get()`), which must be
initialized. Every evaluation whose value is a bool (the default counts when the flag
is missing) is recorded as `tripwire.feature_flags.add_feature_flag` does: in the
isolation scope's flags (``contexts.flags`` of later error events) and as
``flag.evaluation.<key>`` on the active span. Other values are left out.

The hook does nothing while the active client lacks this integration. LaunchDarkly
has no way to take a hook off a client; `tripwire.testing.reset()` leaves it there,
quiet. Like sentry_sdk's module, this one imports LaunchDarkly (the hook must
subclass its `Hook`): importing it without LaunchDarkly raises `DidNotEnable`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from tripwire.feature_flags import add_feature_flag
from tripwire.integrations import DidNotEnable, Integration
from tripwire.scope._current import get_client

try:
    import ldclient
    from ldclient.hook import Hook, Metadata
except ImportError:
    raise DidNotEnable("LaunchDarkly is not installed") from None

if TYPE_CHECKING:
    from ldclient import LDClient
    from ldclient.evaluation import EvaluationDetail
    from ldclient.hook import EvaluationSeriesContext


class LaunchDarklyIntegration(Integration):
    """Record the boolean flag evaluations of a LaunchDarkly client."""

    identifier = "launchdarkly"

    def __init__(self, ld_client: Optional[LDClient] = None) -> None:
        """Add the hook to `ld_client` (default: LaunchDarkly's shared client).

        Raises:
            DidNotEnable: No client could be had, or it is not initialized.
        """
        try:
            client = ld_client or ldclient.get()
        except Exception as exc:
            raise DidNotEnable("Error getting LaunchDarkly client. " + repr(exc)) from None
        if not client.is_initialized():
            raise DidNotEnable("LaunchDarkly client is not initialized.")
        client.add_hook(LaunchDarklyHook())

    @staticmethod
    def setup_once() -> None:
        """Nothing process-wide: the hook belongs to the client given."""


class LaunchDarklyHook(Hook):
    """LaunchDarkly evaluation hook: each boolean result becomes a flag evaluation."""

    __slots__ = ()

    @property
    def metadata(self) -> Metadata:
        """The name LaunchDarkly shows for this hook (sentry_sdk's)."""
        return Metadata(name="sentry-flag-auditor")

    def before_evaluation(
        self, series_context: EvaluationSeriesContext, data: dict[Any, Any]
    ) -> dict[Any, Any]:
        """Nothing before the evaluation."""
        return data

    def after_evaluation(
        self,
        series_context: EvaluationSeriesContext,
        data: dict[Any, Any],
        detail: EvaluationDetail,
    ) -> dict[Any, Any]:
        """Record `detail.value` when it is a bool and the active client has the integration."""
        try:
            value = detail.value
            if (
                isinstance(value, bool)
                and get_client().get_integration(LaunchDarklyIntegration) is not None
            ):
                add_feature_flag(series_context.key, value)
        except Exception:  # an evaluation must never fail because of the SDK
            pass
        return data


__all__ = ["LaunchDarklyHook", "LaunchDarklyIntegration"]
