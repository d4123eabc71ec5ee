"""Constants of the grpc integration (sentry_sdk's `integrations.grpc.consts` path)."""

from __future__ import annotations

SPAN_ORIGIN = "auto.grpc.grpc"

__all__ = ["SPAN_ORIGIN"]
