"""One redis command or pipeline, from sending to its answer: breadcrumb and spans.

Shared by the sync and asyncio patches (`_sync_common`, `_async_common`). As
sentry_sdk 2.75, a command gets a ``redis`` breadcrumb always and, inside a span, a
``db.redis`` span (under a ``cache.get``/``cache.put`` span for a cache key). Unlike
sentry_sdk, a command that raises still ends its spans (status ``internal_error``) and
gives the scope its span back; sentry_sdk 2.75 leaves both open, so they are never sent
and later spans of the transaction nest under the failed one.

A streamed span (``trace_lifecycle="stream"``) gets sentry_sdk 2.75's streaming
attributes instead of the tags: ``db.query.text`` (the command, not cut to
``max_data_size``; on the cache span too; given at start, so `ignore_spans` sees it),
``db.operation.name``, ``db.redis.key``,
``db.system.name``, ``db.namespace``; a pipeline's span has no commands or tags.

With no active span a command (or pipeline) starts nothing in either model: under
streaming sentry_sdk 2.75 makes no segment for it either (it asks `traces_sampler`
nothing), unlike a database query (tests/test_streaming_redis_segments.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Callable, Optional

from tripwire.api import add_breadcrumb
from tripwire.consts import OP, SPANDATA
from tripwire.integrations._common.web import streamed
from tripwire.integrations.redis.consts import SPAN_ORIGIN
from tripwire.integrations.redis.modules.caches import (
    _compile_cache_span_properties,
    _get_op,
    _set_cache_data,
)
from tripwire.integrations.redis.utils import (
    _command_text,
    _extract_key,
    _pipeline_commands,
    _truncate,
    _value_mode,
)
from tripwire.scope._current import get_current_scope, get_isolation_scope
from tripwire.tracing._api import span_for_scope

SetDbData = Callable[[Any, Any], None]
_PIPELINE = "redis.pipeline.execute"


def _parent(scope: Any) -> Any:
    """The span new spans go under, if spans are recorded (a sampled span is active)."""
    parent = scope._d.span
    if parent is None:
        parent = get_isolation_scope()._d.span
    if parent is None or not getattr(parent, "sampled", False):
        return None
    return parent


class Command:
    """The spans of one command while it runs (see `begin`)."""

    __slots__ = ("cache", "cache_span", "db_span")

    def __init__(self, db_span: Any, cache_span: Any, cache: Optional[Mapping[str, Any]]) -> None:
        self.db_span = db_span
        self.cache_span = cache_span
        self.cache = cache

    @staticmethod
    def begin(
        options: Mapping[str, Any],
        integration: Any,
        instance: Any,
        args: Sequence[Any],
        kwargs: Mapping[str, Any],
        is_cluster: bool,
        set_db_data_fn: SetDbData,
    ) -> Optional[Command]:
        """Add the breadcrumb of command `args` (name first); start its spans.

        Returns None when no span is recorded (no sampled span is active).
        """
        try:
            name = args[0] if args else ""
            rest = args[1:]
            try:
                text = _command_text(name, rest, _value_mode(options))
            except Exception:
                text = name
            description = _truncate(text, integration.max_data_size)
            key = _extract_key(name, rest)
            data = {"redis.is_cluster": is_cluster, "redis.command": name, "db.operation": name}
            if key is not None:
                data["redis.key"] = key
            add_breadcrumb(message=description, type="redis", category="redis", data=data)
            scope = get_current_scope()
            parent = _parent(scope)
            if parent is None:
                return None
            # A streamed span starts with the command, as sentry_sdk's (`ignore_spans`
            # sees it); a transaction-model span takes no attributes.
            streaming = getattr(parent, "_streamed", False)
            cache_span = cache = None
            if integration.cache_prefixes:
                op = _get_op(name)
                if op is not None:
                    cache = _compile_cache_span_properties(name, rest, kwargs, integration)
                    if cache["is_cache_key"]:
                        cache_kwargs: dict[str, Any] = {
                            "op": op,
                            "name": cache["description"],
                            "origin": SPAN_ORIGIN,
                        }
                        if streaming:
                            cache_kwargs["attributes"] = {SPANDATA.DB_QUERY_TEXT: text}
                        cache_span = span_for_scope(scope, cache_kwargs)
        except Exception:  # instrumentation must not break the command
            return None
        # The cache span is the command span's parent: entered first, ended last.
        if cache_span is not None:
            cache_span.__enter__()
        try:
            db_kwargs: dict[str, Any] = {
                "op": OP.DB_REDIS,
                "name": description,
                "origin": SPAN_ORIGIN,
            }
            if streaming:
                db_kwargs["attributes"] = {SPANDATA.DB_QUERY_TEXT: text}
            db_span = span_for_scope(scope, db_kwargs)
        except Exception:
            if cache_span is not None:
                cache_span.__exit__(None, None, None)
            return None
        db_span.__enter__()
        if (stream := streamed(db_span)) is not None:
            # sentry_sdk 2.75's streaming names; no redis.is_cluster / redis.command.
            try:
                set_db_data_fn(db_span, instance)
            except Exception:
                pass
            if name:
                stream.set_attribute(SPANDATA.DB_OPERATION_NAME, name)
            if key is not None:
                stream.set_attribute("db.redis.key", key)
            return Command(db_span, cache_span, cache)
        try:
            set_db_data_fn(db_span, instance)
        except Exception:
            pass
        tags: dict[str, Any] = {"redis.is_cluster": is_cluster}
        if name:
            tags["redis.command"] = name
            tags["db.operation"] = name
        if key is not None:
            tags["redis.key"] = key
        db_span._tags = tags
        return Command(db_span, cache_span, cache)

    def done(self, instance: Any, value: Any) -> None:
        """The command answered `value`: its spans end."""
        self.db_span.__exit__(None, None, None)
        cache_span = self.cache_span
        if cache_span is not None:
            try:
                _set_cache_data(cache_span, instance, self.cache or {}, value)
            except Exception:
                pass
            cache_span.__exit__(None, None, None)

    def failed(self, exc: BaseException) -> None:
        """The command raised `exc`: its spans end with it."""
        tb = exc.__traceback__
        self.db_span.__exit__(type(exc), exc, tb)
        cache_span = self.cache_span
        if cache_span is not None:
            cache_span.__exit__(type(exc), exc, tb)


def begin_pipeline(
    instance: Any,
    is_cluster: bool,
    is_transaction: bool,
    get_command_args_fn: Callable[[Any], Sequence[Any]],
    commands_of: Callable[[Any], Sequence[Any]],
    set_db_data_fn: SetDbData,
    options: Mapping[str, Any],
) -> Any:
    """Breadcrumb of a pipeline's execution; its ``db.redis`` span, to enter (or None)."""
    try:
        add_breadcrumb(
            message=_PIPELINE,
            type="redis",
            category="redis",
            data={"redis.is_cluster": is_cluster, "redis.transaction": is_transaction},
        )
        scope = get_current_scope()
        if _parent(scope) is None:
            return None
        span = span_for_scope(scope, {"op": OP.DB_REDIS, "name": _PIPELINE, "origin": SPAN_ORIGIN})
    except Exception:
        return None
    try:
        set_db_data_fn(span, instance)
        if streamed(span) is not None:
            return span  # sentry_sdk 2.75 streams no pipeline tags or commands
        span.set_tag("redis.is_cluster", is_cluster)
        span.set_tag("redis.transaction", is_transaction)
        commands = commands_of(instance)
        span.set_data(
            "redis.commands",
            _pipeline_commands(get_command_args_fn, commands, _value_mode(options)),
        )
    except Exception:
        pass
    return span
