"""The enum constants of `tripwire.consts`, in a module of their own so they load on first use."""

from __future__ import annotations

import enum


class EndpointType(enum.Enum):
    """Ingest endpoints of a project (the path after ``/api/<project>/``)."""

    ENVELOPE = "envelope"
    OTLP_TRACES = "integration/otlp/v1/traces"


class CompressionAlgo(enum.Enum):
    """Request body compressions (`_experiments["transport_compression_algo"]`)."""

    GZIP = "gzip"
    BROTLI = "br"


class SPANTEMPLATE(str, enum.Enum):
    """Span templates accepted by `@trace(template=...)`."""

    DEFAULT = "default"
    AI_AGENT = "ai_agent"
    AI_TOOL = "ai_tool"
    AI_CHAT = "ai_chat"

    def __str__(self) -> str:
        return str(self.value)
