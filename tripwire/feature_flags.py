"""Feature flag evaluations sent with error events (as sentry_sdk.feature_flags).

`add_feature_flag(flag, result)` records an evaluation in the isolation scope's
`FlagBuffer` and, when a span is active, on the span (`flag.evaluation.<flag>`: in
its data, at most 10 per span; a streamed span takes each flag as an attribute).
Each scope holds at most `capacity` flags (`_experiments={"max_flags": n}`, else
`DEFAULT_FLAG_CAPACITY`); re-evaluating a flag makes it the most recent one, and the
least recently evaluated one falls out when a new flag does not fit. A fork gets its
own copy. Error events carry the flags of their scopes (global, then isolation, then
current: later evaluations win) as `contexts.flags = {"values": [{"flag", "result"}]}`,
oldest first.
"""

from __future__ import annotations

from tripwire.scope._current import get_current_scope, get_isolation_scope
from tripwire.scope._flags import DEFAULT_FLAG_CAPACITY, FlagBuffer


def add_feature_flag(flag: str, result: bool) -> None:
    """Record a flag evaluation for the error events of this isolation scope.

    Call it where flags are evaluated. The active span (if any) gets
    `flag.evaluation.<flag>` in its data too (a span keeps its first 10 flags); a
    streamed span gets it as an attribute, without a limit.
    """
    get_isolation_scope().flags.set(flag, result)
    span = get_current_scope()._d.span
    if span is None:
        return
    if getattr(span, "_streamed", False):
        span.set_attribute(f"flag.evaluation.{flag}", result)
        return
    set_flag = getattr(span, "set_flag", None)
    if set_flag is not None:
        set_flag(f"flag.evaluation.{flag}", result)


__all__ = ["DEFAULT_FLAG_CAPACITY", "FlagBuffer", "add_feature_flag"]
