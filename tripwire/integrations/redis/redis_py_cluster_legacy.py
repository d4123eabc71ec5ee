"""redis-py-cluster (`rediscluster`, end of life; redis-py has had clusters since 4.1)."""

from __future__ import annotations

from types import ModuleType

from tripwire.integrations.redis._sync_common import patch_redis_client, patch_redis_pipeline
from tripwire.integrations.redis.modules.queries import _set_db_data
from tripwire.integrations.redis.utils import _parse_rediscluster_command


def _patch_rediscluster_module(rediscluster: ModuleType) -> None:
    """Patch `rediscluster`'s client(s) and pipeline (when it is imported)."""
    patch_redis_client(rediscluster.RedisCluster, is_cluster=True, set_db_data_fn=_set_db_data)
    # Up to 1.3.6 `__version__` is a tuple; from 2.0.0 it is a string and VERSION a tuple.
    version = getattr(rediscluster, "VERSION", rediscluster.__version__)
    # StrictRedisCluster came in 0.2.0 and went in 2.0.0.
    if (0, 2, 0) < version < (2, 0, 0):
        pipeline_cls = rediscluster.pipeline.StrictClusterPipeline
        patch_redis_client(
            rediscluster.StrictRedisCluster, is_cluster=True, set_db_data_fn=_set_db_data
        )
    else:
        pipeline_cls = rediscluster.pipeline.ClusterPipeline
    patch_redis_pipeline(pipeline_cls, True, _parse_rediscluster_command, _set_db_data)


def _patch_rediscluster() -> None:
    """Patch rediscluster now if it is imported (sentry_sdk's entry point)."""
    import sys

    module = sys.modules.get("rediscluster")
    if module is not None:
        _patch_rediscluster_module(module)
