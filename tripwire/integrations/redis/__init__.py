"""redis integration: command and pipeline spans, breadcrumbs and cache spans.

As sentry_sdk 2.75's ``redis`` integration (`RedisIntegration`), for redis-py's
`Redis`/`StrictRedis`, `redis.asyncio`, `RedisCluster` (sync and asyncio), their
pipelines, and rb's and redis-py-cluster's clients:

- every command adds a ``redis`` breadcrumb: message the command's description,
  data ``redis.is_cluster``, ``redis.command``, ``db.operation`` and, for the
  commands with one key, ``redis.key``;
- inside a span, a command is a ``db.redis`` span (origin ``auto.db.redis``) named
  after its description: the command, the key, then the other arguments only with
  ``send_default_pii`` (``[Filtered]`` otherwise; `data_collection`'s
  ``database_query_data`` decides when given), cut to `max_data_size`; tags
  ``redis.is_cluster``, ``redis.command``, ``db.operation``, ``redis.key``; data
  ``db.system``, ``db.driver.name``, ``db.name``, ``server.address``,
  ``server.port``;
- a pipeline's `execute` adds a ``redis.pipeline.execute`` breadcrumb and span, with
  tags ``redis.is_cluster``, ``redis.transaction`` and data ``redis.commands``
  (``count`` and the ``first_ten`` descriptions);
- ``GET``/``MGET``/``SET``/``SETEX`` of a key starting with one of `cache_prefixes`
  get a ``cache.get``/``cache.put`` span around the command's span (`modules.caches`).

Differences from sentry_sdk 2.75: a command that raises ends its spans with
``internal_error`` (sentry_sdk never ends them); a value written to the cache that is
neither text nor bytes has its size taken from ``str()`` (sentry_sdk then drops the
span's size and address data). Classes are patched when redis (or rb, rediscluster)
is imported, never by `init()`; the patches fall through when the active client
lacks this integration.
"""

from __future__ import annotations

from types import ModuleType
from typing import Optional

from tripwire.integrations import DidNotEnable, Integration
from tripwire.integrations.redis.consts import _DEFAULT_MAX_DATA_SIZE


class RedisIntegration(Integration):
    """Spans and breadcrumbs for redis commands and pipelines; cache spans.

    Args:
        max_data_size: Cut descriptions longer than this (deprecated, as in
            sentry_sdk 2.75: passing it warns).
        cache_prefixes: Keys starting with one of these get ``cache.*`` spans.
    """

    identifier = "redis"

    def __init__(
        self,
        max_data_size: Optional[int] = _DEFAULT_MAX_DATA_SIZE,
        cache_prefixes: Optional[list[str]] = None,
    ) -> None:
        self.max_data_size = max_data_size
        self.cache_prefixes = cache_prefixes if cache_prefixes is not None else []
        if max_data_size is not None:
            from tripwire._deprecation import deprecated

            deprecated(
                "The `max_data_size` parameter of `RedisIntegration` is "
                "deprecated and will be removed in version 3.0 of sentry-sdk."
            )

    @staticmethod
    def setup_once() -> None:
        """Patch redis-py (and rb, rediscluster) when imported.

        Raises:
            DidNotEnable: redis-py is not installed.
        """
        import importlib.util

        from tripwire.integrations._common._hooks import when_imported

        if importlib.util.find_spec("redis") is None:
            raise DidNotEnable("Redis client not installed")
        when_imported("redis", _patch_sync)
        when_imported("redis.asyncio", _patch_asyncio)
        for package, module, patcher in (
            ("rb", "rb.clients", _patch_rb),
            ("rediscluster", "rediscluster", _patch_legacy),
        ):
            if importlib.util.find_spec(package) is not None:
                when_imported(module, patcher)


def _patch_sync(redis: ModuleType) -> None:
    import sys

    from tripwire.integrations.redis.redis import _patch_redis
    from tripwire.integrations.redis.redis_cluster import _patch_sync_cluster

    _patch_redis(redis.StrictRedis, sys.modules["redis.client"])
    cluster = sys.modules.get("redis.cluster")
    if cluster is not None:
        _patch_sync_cluster(cluster)


def _patch_asyncio(asyncio: ModuleType) -> None:
    import sys

    from tripwire.integrations.redis.redis import _patch_redis_asyncio
    from tripwire.integrations.redis.redis_cluster import _patch_async_cluster

    _patch_redis_asyncio(sys.modules["redis.asyncio.client"])
    cluster = sys.modules.get("redis.asyncio.cluster")
    if cluster is not None:
        _patch_async_cluster(cluster)


def _patch_rb(clients: ModuleType) -> None:
    from tripwire.integrations.redis.rb import _patch_rb_clients

    _patch_rb_clients(clients)


def _patch_legacy(rediscluster: ModuleType) -> None:
    from tripwire.integrations.redis.redis_py_cluster_legacy import _patch_rediscluster_module

    _patch_rediscluster_module(rediscluster)


__all__ = ["RedisIntegration"]
