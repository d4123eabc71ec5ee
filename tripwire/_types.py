"""sentry_sdk._types' run-time names (its type aliases are in `tripwire.types`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from tripwire.utils import SENSITIVE_DATA_SUBSTITUTE as SENSITIVE_DATA_SUBSTITUTE
from tripwire.utils import AnnotatedValue as AnnotatedValue

MYPY = TYPE_CHECKING

BLOB_DATA_SUBSTITUTE = "[Blob substitute]"
OVER_SIZE_LIMIT_SUBSTITUTE = "[Exceeds maximum size]"
UNPARSABLE_RAW_DATA_SUBSTITUTE = "[Unparsable]"

__all__ = [
    "BLOB_DATA_SUBSTITUTE",
    "MYPY",
    "OVER_SIZE_LIMIT_SUBSTITUTE",
    "SENSITIVE_DATA_SUBSTITUTE",
    "TYPE_CHECKING",
    "UNPARSABLE_RAW_DATA_SUBSTITUTE",
    "AnnotatedValue",
]
