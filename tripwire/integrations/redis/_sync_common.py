"""Patches of sync redis clients and pipelines (redis-py, its cluster, rb, rediscluster).

`patch_redis_client` and `patch_redis_pipeline` are sentry_sdk 2.75's helpers for
instrumenting a custom client class or subclass; here they go through `_patch.py`
(undone by `tripwire.testing.reset()`), and the patched methods fall through to the
original when the active client lacks the redis integration.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Callable

from tripwire.integrations._patch import patch_once
from tripwire.integrations.redis._command import Command, SetDbData, begin_pipeline
from tripwire.scope._current import get_client

_MARK = "__tripwire_redis__"


def _sync_commands_of(pipeline: Any) -> Sequence[Any]:
    strategy = getattr(pipeline, "_execution_strategy", None)
    if strategy is not None:
        try:
            queue: Sequence[Any] = strategy.command_queue
            return queue
        except AttributeError:
            pass
    stack: Sequence[Any] = pipeline.command_stack
    return stack


def patch_redis_pipeline(
    pipeline_cls: Any,
    is_cluster: bool,
    get_command_args_fn: Callable[[Any], Sequence[Any]],
    set_db_data_fn: SetDbData,
) -> None:
    """Give `pipeline_cls.execute` a breadcrumb and a ``redis.pipeline.execute`` span."""

    def make(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def execute(self: Any, *args: Any, **kwargs: Any) -> Any:
            client = get_client()
            if client.integrations.get("redis") is None:
                return original(self, *args, **kwargs)
            is_transaction = False if is_cluster else bool(getattr(self, "transaction", False))
            span = begin_pipeline(
                self,
                is_cluster,
                is_transaction,
                get_command_args_fn,
                _sync_commands_of,
                set_db_data_fn,
                client.options,
            )
            if span is None:
                return original(self, *args, **kwargs)
            with span:
                return original(self, *args, **kwargs)

        return execute

    patch_once(pipeline_cls, "execute", make, _MARK)


def patch_redis_client(cls: Any, is_cluster: bool, set_db_data_fn: SetDbData) -> None:
    """Give `cls.execute_command` a breadcrumb and a ``db.redis`` span (and a cache span).

    Usable on custom redis client classes or subclasses, as in sentry_sdk.
    """

    def make(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def execute_command(self: Any, *args: Any, **kwargs: Any) -> Any:
            client = get_client()
            integration = client.integrations.get("redis")
            if integration is None:
                return original(self, *args, **kwargs)
            command = Command.begin(
                client.options, integration, self, args, kwargs, is_cluster, set_db_data_fn
            )
            if command is None:
                return original(self, *args, **kwargs)
            try:
                value = original(self, *args, **kwargs)
            except BaseException as exc:
                command.failed(exc)
                raise
            command.done(self, value)
            return value

        return execute_command

    patch_once(cls, "execute_command", make, _MARK)
