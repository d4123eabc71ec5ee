"""Patches of `redis.asyncio` clients and pipelines (plain and cluster).

The same breadcrumbs and spans as the sync patches (`_sync_common`), for coroutines.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any, Callable

from tripwire.integrations._patch import patch_once
from tripwire.integrations.redis._command import Command, SetDbData, begin_pipeline
from tripwire.scope._current import get_client

_MARK = "__tripwire_redis__"


def _async_commands_of(pipeline: Any) -> Sequence[Any]:
    strategy = getattr(pipeline, "_execution_strategy", None)
    if strategy is not None:
        try:
            queue: Sequence[Any] = strategy._command_queue
            return queue
        except AttributeError:
            pass
    stack = getattr(pipeline, "command_stack", None)
    if stack is None:
        stack = pipeline._command_stack  # a cluster pipeline of older redis-py
    found: Sequence[Any] = stack
    return found


def patch_redis_async_pipeline(
    pipeline_cls: Any,
    is_cluster: bool,
    get_command_args_fn: Callable[[Any], Sequence[Any]],
    set_db_data_fn: SetDbData,
) -> None:
    """Give the coroutine `pipeline_cls.execute` a breadcrumb and a pipeline span."""

    def make(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        async def execute(self: Any, *args: Any, **kwargs: Any) -> Any:
            client = get_client()
            if client.integrations.get("redis") is None:
                return await original(self, *args, **kwargs)
            is_transaction = False if is_cluster else bool(getattr(self, "is_transaction", False))
            span = begin_pipeline(
                self,
                is_cluster,
                is_transaction,
                get_command_args_fn,
                _async_commands_of,
                set_db_data_fn,
                client.options,
            )
            if span is None:
                return await original(self, *args, **kwargs)
            with span:
                return await original(self, *args, **kwargs)

        return execute

    patch_once(pipeline_cls, "execute", make, _MARK)


def patch_redis_async_client(cls: Any, is_cluster: bool, set_db_data_fn: SetDbData) -> None:
    """Give the coroutine `cls.execute_command` a breadcrumb and a ``db.redis`` span."""

    def make(original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        async def execute_command(self: Any, *args: Any, **kwargs: Any) -> Any:
            client = get_client()
            integration = client.integrations.get("redis")
            if integration is None:
                return await original(self, *args, **kwargs)
            command = Command.begin(
                client.options, integration, self, args, kwargs, is_cluster, set_db_data_fn
            )
            if command is None:
                return await original(self, *args, **kwargs)
            try:
                value = await original(self, *args, **kwargs)
            except BaseException as exc:
                command.failed(exc)
                raise
            command.done(self, value)
            return value

        return execute_command

    patch_once(cls, "execute_command", make, _MARK)
