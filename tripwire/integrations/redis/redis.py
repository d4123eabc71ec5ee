"""redis-py's `Redis` (alias `StrictRedis`) and `Pipeline`, sync and `redis.asyncio`."""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any

from tripwire.integrations.redis._async_common import (
    patch_redis_async_client,
    patch_redis_async_pipeline,
)
from tripwire.integrations.redis._sync_common import patch_redis_client, patch_redis_pipeline
from tripwire.integrations.redis.modules.queries import _set_db_data


def _get_redis_command_args(command: Any) -> Sequence[Any]:
    """The arguments (name first) of a pipeline's queued ``(args, options)``."""
    args: Sequence[Any] = command[0]
    return args


def _patch_redis(StrictRedis: Any, client: ModuleType) -> None:
    """Patch the sync client class and the pipelines of `redis.client`."""
    patch_redis_client(StrictRedis, is_cluster=False, set_db_data_fn=_set_db_data)
    patch_redis_pipeline(client.Pipeline, False, _get_redis_command_args, _set_db_data)
    strict_pipeline = getattr(client, "StrictPipeline", None)
    if strict_pipeline is not None:
        patch_redis_pipeline(strict_pipeline, False, _get_redis_command_args, _set_db_data)


def _patch_redis_asyncio(client: ModuleType) -> None:
    """Patch `redis.asyncio.client`'s client class and pipeline."""
    patch_redis_async_client(client.StrictRedis, is_cluster=False, set_db_data_fn=_set_db_data)
    patch_redis_async_pipeline(client.Pipeline, False, _get_redis_command_args, _set_db_data)
