"""The `grpc.aio` interceptors (sentry_sdk's `integrations.grpc.aio` path)."""

from __future__ import annotations

from tripwire.integrations.grpc.aio.client import ClientInterceptor
from tripwire.integrations.grpc.aio.server import ServerInterceptor

__all__ = ["ClientInterceptor", "ServerInterceptor"]
