"""Constants of the AI helpers (as `sentry_sdk.ai.consts`)."""

from __future__ import annotations

import re

# A data URL whose payload is base64 (an inline image, say): such content is redacted.
DATA_URL_BASE64_REGEX = re.compile(
    r"^data:(?:[a-zA-Z0-9][a-zA-Z0-9.+\-]*/[a-zA-Z0-9][a-zA-Z0-9.+\-]*)"
    r"(?:;[a-zA-Z0-9\-]+=[^;,]*)*;base64,(?:[A-Za-z0-9+/\-_]+={0,2})$"
)

__all__ = ["DATA_URL_BASE64_REGEX"]
