"""``cache.get`` / ``cache.put`` spans for keys under `cache_prefixes` (Sentry's Caches page).

As sentry_sdk 2.75: a ``GET``/``MGET`` (``cache.get``) or ``SET``/``SETEX``
(``cache.put``) of a key that starts with one of the integration's `cache_prefixes`
gets a span named after its key(s), around (and parent of) the command's ``db.redis``
span, with data ``cache.key`` (the keys), ``cache.hit`` (gets), ``cache.item_size``
(bytes of the value read or written) and ``network.peer.address`` / ``.port``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Optional

from tripwire.consts import OP, SPANDATA
from tripwire.integrations.redis.utils import _get_safe_key, _key_as_string, _truncate

if TYPE_CHECKING:
    from tripwire.integrations.redis import RedisIntegration

GET_COMMANDS = ("get", "mget")
SET_COMMANDS = ("set", "setex")


def _get_op(name: str) -> Optional[str]:
    """``cache.get``, ``cache.put`` or None (not a cache command)."""
    low = name.lower()
    if low in GET_COMMANDS:
        return OP.CACHE_GET
    if low in SET_COMMANDS:
        return OP.CACHE_PUT
    return None


def _is_cache_key(key_as_string: str, prefixes: Sequence[str]) -> bool:
    keys = key_as_string.split(", ")
    return any(kee.startswith(prefix) for prefix in prefixes for kee in keys)


def _compile_cache_span_properties(
    redis_command: str,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    integration: RedisIntegration,
) -> dict[str, Any]:
    """What the cache span of a command needs (``is_cache_key`` says whether it has one)."""
    key = _get_safe_key(redis_command, args, kwargs)
    key_as_string = _key_as_string(key)
    low = redis_command.lower()
    return {
        "op": _get_op(redis_command),
        "description": _truncate(key_as_string, integration.max_data_size),
        "key": key,
        "key_as_string": key_as_string,
        "redis_command": low,
        "is_cache_key": _is_cache_key(key_as_string, integration.cache_prefixes),
        "value": args[-1] if low in SET_COMMANDS and args else None,
    }


def _get_cache_span_description(
    redis_command: str,
    args: Sequence[Any],
    kwargs: Mapping[str, Any],
    integration: RedisIntegration,
) -> str:
    """The key(s) of the command, cut to the integration's ``max_data_size``."""
    key = _get_safe_key(redis_command, args, kwargs)
    return _truncate(_key_as_string(key), integration.max_data_size)


def _size(value: Any) -> int:
    if isinstance(value, (bytes, bytearray, memoryview)):
        return len(value)
    return len(str(value).encode("utf-8"))


def _set_cache_data(
    span: Any,
    redis_client: Any,
    properties: Mapping[str, Any],
    return_value: Optional[Any],
) -> None:
    """The cache span's data, once the command has answered `return_value`."""
    span.set_data(SPANDATA.CACHE_KEY, properties["key"])
    command = properties["redis_command"]
    if command in GET_COMMANDS:
        if return_value is not None:
            span.set_data(SPANDATA.CACHE_HIT, True)
            span.set_data(SPANDATA.CACHE_ITEM_SIZE, _size(return_value))
        else:
            span.set_data(SPANDATA.CACHE_HIT, False)
    elif command in SET_COMMANDS and properties["value"] is not None:
        span.set_data(SPANDATA.CACHE_ITEM_SIZE, _size(properties["value"]))
    try:
        params = redis_client.connection_pool.connection_kwargs
    except AttributeError:  # a cluster client: its default node
        node = redis_client.get_default_node()
        params = {"host": node.host, "port": node.port}
    host = params.get("host")
    if host is not None:
        span.set_data(SPANDATA.NETWORK_PEER_ADDRESS, host)
    port = params.get("port")
    if port is not None:
        span.set_data(SPANDATA.NETWORK_PEER_PORT, port)
