"""Pure sampling decisions for transactions (no I/O, no SDK state).

A trace carries one random number, `sample_rand`, in [0, 1). A transaction is
sampled when `sample_rand < sample_rate`, so every service of a trace that uses
the same rate reaches the same decision, and a service with a higher rate keeps
a superset of the traces kept by one with a lower rate.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from tripwire._log import logger
from tripwire.monitor import Monitor
from tripwire.options import span_streaming_enabled
from tripwire.options import to_rate as to_rate


class SamplingResult(NamedTuple):
    """The outcome of a sampling decision (an immutable value).

    A NamedTuple rather than a frozen dataclass: `dataclasses` imports `inspect`, which
    would cost ~6 ms at the `init()` that loads tracing.

    Attributes:
        sampled: Whether the transaction is recorded and sent.
        sample_rate: The effective rate (None when no valid rate was found).
        inherited: True when the decision was taken from the parent's.
    """

    sampled: bool
    sample_rate: float | None
    inherited: bool = False


NOT_SAMPLED = SamplingResult(False, None)


def has_tracing_enabled(options: Mapping[str, Any] | None) -> bool:
    """Whether the options turn performance monitoring on (as sentry_sdk 2.x reads them).

    `enable_tracing=False` wins; otherwise a traces_sample_rate, a traces_sampler or
    `enable_tracing=True` (which implies a rate of 1.0) turns it on.
    """
    if options is None:
        return False
    enable = options.get("enable_tracing")
    if enable is False:
        return False
    return (
        enable is True
        or options.get("traces_sample_rate") is not None
        or options.get("traces_sampler") is not None
    )


# The option check lives with the options (their warnings need it at init).
has_span_streaming_enabled = span_streaming_enabled


def configured_rate(options: Mapping[str, Any]) -> Any:
    """traces_sample_rate, or 1.0 when only `enable_tracing=True` is set."""
    rate = options.get("traces_sample_rate")
    if rate is None and options.get("enable_tracing") is True:
        return 1.0
    return rate


def is_valid_sample_rate(rate: Any, source: str) -> bool:
    """Whether `rate` is a usable sample rate; logs a warning naming `source` if not."""
    if to_rate(rate) is None:
        logger.warning("[Tracing] %s must be a number or bool in [0, 1], got %r", source, rate)
        return False
    return True


def decide(
    rate: Any,
    sample_rand: float,
    downsample_factor: int = 0,
    inherited: bool = False,
    reported: bool = False,
) -> SamplingResult:
    """Sample with `rate` (already chosen: sampler, parent or traces_sample_rate).

    Args:
        rate: The chosen rate; anything but a number/bool in [0, 1] means "not sampled".
        sample_rand: The trace's random number in [0, 1).
        downsample_factor: The backpressure monitor's factor; the rate is halved per step.
        inherited: Whether `rate` is the parent's decision.
        reported: An invalid `rate` was already reported (traces_sample_rate, at
            `init()`): it is not reported again for every transaction.
    """
    effective = to_rate(rate)
    if effective is None:
        log = logger.debug if reported else logger.warning
        log("[Tracing] discarding transaction: invalid sample rate %r", rate)
        return NOT_SAMPLED
    if downsample_factor > 0:
        effective = effective / (2**downsample_factor)
    if effective == 0.0:
        return SamplingResult(False, effective, inherited)
    return SamplingResult(sample_rand < effective, effective, inherited)


def downsample_factor(client: Any) -> int:
    """The backpressure monitor's downsample factor (0 when there is no monitor)."""
    monitor = getattr(client, "monitor", None)
    if type(monitor) is Monitor:  # the SDK's own: read every transaction, so no checks
        return monitor.downsample_factor
    value = getattr(monitor, "downsample_factor", 0)
    try:
        if callable(value):
            value = value()
        factor = int(value or 0)
    except Exception:
        return 0
    return factor if factor > 0 else 0
