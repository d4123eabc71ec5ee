"""redis-py's cluster clients (`redis.cluster`, `redis.asyncio.cluster`) and pipelines.

Their spans carry the default node's address (and no ``db.name``); pipelines are
never transactions (``redis.transaction`` false), as in sentry_sdk 2.75.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from tripwire.integrations.redis._async_common import (
    patch_redis_async_client,
    patch_redis_async_pipeline,
)
from tripwire.integrations.redis._sync_common import patch_redis_client, patch_redis_pipeline
from tripwire.integrations.redis.modules.queries import _set_db_data_on_span
from tripwire.integrations.redis.utils import _parse_rediscluster_command


def _set_async_cluster_db_data(span: Any, async_redis_cluster_instance: Any) -> None:
    node = async_redis_cluster_instance.get_default_node()
    if node is not None and node.connection_kwargs is not None:
        _set_db_data_on_span(span, node.connection_kwargs)


def _set_async_cluster_pipeline_db_data(
    span: Any, async_redis_cluster_pipeline_instance: Any
) -> None:
    pipeline = async_redis_cluster_pipeline_instance
    client = getattr(pipeline, "cluster_client", None)
    if client is None:
        client = pipeline._client  # redis-py before 5.1
    _set_async_cluster_db_data(span, client)


def _set_cluster_db_data(span: Any, redis_cluster_instance: Any) -> None:
    node = redis_cluster_instance.get_default_node()
    if node is not None:
        _set_db_data_on_span(span, {"host": node.host, "port": node.port})


def _patch_sync_cluster(cluster: ModuleType) -> None:
    """Patch `redis.cluster.RedisCluster` and its `ClusterPipeline`."""
    patch_redis_client(cluster.RedisCluster, is_cluster=True, set_db_data_fn=_set_cluster_db_data)
    patch_redis_pipeline(
        cluster.ClusterPipeline, True, _parse_rediscluster_command, _set_cluster_db_data
    )


def _patch_async_cluster(cluster: ModuleType) -> None:
    """Patch `redis.asyncio.cluster.RedisCluster` and its `ClusterPipeline`."""
    patch_redis_async_client(
        cluster.RedisCluster, is_cluster=True, set_db_data_fn=_set_async_cluster_db_data
    )
    patch_redis_async_pipeline(
        cluster.ClusterPipeline,
        True,
        _parse_rediscluster_command,
        _set_async_cluster_pipeline_db_data,
    )


def _patch_redis_cluster() -> None:
    """Patch the cluster modules of redis-py that are imported (sentry_sdk's entry point)."""
    import sys

    for name, patcher in (
        ("redis.cluster", _patch_sync_cluster),
        ("redis.asyncio.cluster", _patch_async_cluster),
    ):
        module = sys.modules.get(name)
        if module is not None:
            patcher(module)
