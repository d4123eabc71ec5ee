"""Names of sentry_sdk's `sentry_sdk.data_collection` module."""

from __future__ import annotations

from tripwire.utils import SENSITIVE_DATA_SUBSTITUTE as SENSITIVE_DATA_SUBSTITUTE

__all__ = ["SENSITIVE_DATA_SUBSTITUTE"]
