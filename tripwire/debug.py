"""Debug output of the SDK logger, at sentry_sdk's `sentry_sdk.debug` names.

`init(debug=True)` already prints tripwire's debug log to stderr; these functions are for
code that sets the logger up itself, as with sentry_sdk.
"""

from __future__ import annotations

import logging
import sys
import warnings

from tripwire._log import LOGGER_NAME
from tripwire.scope._current import get_client as get_client


class _DebugFilter(logging.Filter):
    """Passes records only while the active client has ``debug=True``."""

    def filter(self, record: logging.LogRecord) -> bool:
        return bool(get_client().options.get("debug"))


def configure_logger() -> None:
    """Send the SDK logger's records to stderr while the active client has debug on."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter(" [tripwire] %(levelname)s: %(message)s"))
    real = logging.getLogger(LOGGER_NAME)
    real.addHandler(handler)
    real.setLevel(logging.DEBUG)
    real.addFilter(_DebugFilter())


def init_debug_support() -> None:
    """`configure_logger()` unless the SDK logger already has a handler that prints."""
    real = logging.getLogger(LOGGER_NAME)
    if not any(not isinstance(h, logging.NullHandler) for h in real.handlers):
        configure_logger()


def configure_debug_hub() -> None:
    """Deprecated in sentry_sdk 2.x; does nothing."""
    warnings.warn(
        "configure_debug_hub is deprecated and does nothing; remove the call.",
        DeprecationWarning,
        stacklevel=2,
    )


__all__ = ["configure_debug_hub", "configure_logger", "get_client", "init_debug_support"]
