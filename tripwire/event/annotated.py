"""`AnnotatedValue`: a value plus the `_meta` annotation saying how the SDK changed it.

It lives with the serializer, which turns it into the value and its `_meta` entry
wherever it appears in an event; `tripwire.utils` re-exports it (sentry_sdk's path).
"""

from __future__ import annotations

from typing import Any

# What a filtered value is replaced with (sentry_sdk.utils.SENSITIVE_DATA_SUBSTITUTE).
SENSITIVE_DATA_SUBSTITUTE = "[Filtered]"


class AnnotatedValue:
    """A value plus the `_meta` annotation saying how the SDK changed it."""

    __slots__ = ("metadata", "value")

    def __init__(self, value: Any, metadata: dict[str, Any]) -> None:
        self.value = value
        self.metadata = metadata

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, AnnotatedValue):
            return False
        return self.value == other.value and self.metadata == other.metadata

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"AnnotatedValue(value={self.value!r}, metadata={self.metadata!r})"

    @classmethod
    def removed_because_raw_data(cls) -> AnnotatedValue:
        """The value was not sent because it could not be parsed (e.g. a raw body)."""
        return cls(value="", metadata={"rem": [["!raw", "x"]]})

    @classmethod
    def removed_because_over_size_limit(cls, value: Any = "") -> AnnotatedValue:
        """The value was not sent because it exceeds a size limit of the options."""
        return cls(value=value, metadata={"rem": [["!config", "x"]]})

    @classmethod
    def substituted_because_contains_sensitive_data(cls) -> AnnotatedValue:
        """The value was replaced by ``[Filtered]``."""
        return cls(value=SENSITIVE_DATA_SUBSTITUTE, metadata={"rem": [["!config", "s"]]})

    @classmethod
    def substituted_because_raw_data(cls) -> AnnotatedValue:
        """The value was replaced because it could not be parsed."""
        return cls(value="[Unparsable]", metadata={"rem": [["!raw", "s"]]})

    @classmethod
    def substituted_because_over_size_limit(cls) -> AnnotatedValue:
        """The value was replaced because it exceeds a size limit of the options."""
        return cls(value="[Exceeds maximum size]", metadata={"rem": [["!config", "s"]]})
