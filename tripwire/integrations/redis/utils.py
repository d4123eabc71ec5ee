"""Descriptions, keys and span data of redis commands, as sentry_sdk 2.75 makes them.

A command's description is its name, the key (``repr``), then up to ten more
arguments: shown (``repr``) with ``send_default_pii``, or with `data_collection`'s
``database_query_data``; otherwise ``[Filtered]`` each (left out altogether when
`data_collection` is given without ``database_query_data``). Every argument of
``AUTH`` is ``[Filtered]``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import islice
from typing import Any, Callable, Optional

from tripwire.integrations.redis.consts import (
    _COMMANDS_INCLUDING_SENSITIVE_DATA,
    _MAX_NUM_ARGS,
    _MAX_NUM_COMMANDS,
    _MULTI_KEY_COMMANDS,
    _SINGLE_KEY_COMMANDS,
)
from tripwire.scope._current import get_client

FILTERED = "[Filtered]"

# What becomes of the arguments after the key (`_value_mode`).
SHOW, FILTER, OMIT = 0, 1, 2

_SENSITIVE = frozenset(_COMMANDS_INCLUDING_SENSITIVE_DATA)


def _value_mode(options: Mapping[str, Any]) -> int:
    """SHOW, FILTER or OMIT the arguments after the key, for a client's options."""
    collection = options.get("data_collection")
    if collection and collection.get("provided_by_user"):
        return SHOW if collection.get("database_query_data") else OMIT
    return SHOW if options.get("send_default_pii") else FILTER


def _command_text(name: Any, args: Sequence[Any], mode: int) -> str:
    """The description of command `name` with `args` (see the module docstring)."""
    if not args:
        return str(name)
    if name.lower() in _SENSITIVE:
        return " ".join([name] + [FILTERED] * min(len(args), _MAX_NUM_ARGS + 1))
    parts = [name, repr(args[0])]
    rest = args[1 : _MAX_NUM_ARGS + 1]
    if rest:
        if mode == SHOW:
            parts += [repr(arg) for arg in rest]
        elif mode == FILTER:
            parts += [FILTERED] * len(rest)
    return " ".join(parts)


def _get_safe_command(name: str, args: Sequence[Any]) -> str:
    """The description of a command, under the active client's options."""
    return _command_text(name, args, _value_mode(get_client().options))


def _truncate(text: str, max_data_size: Optional[int]) -> str:
    if max_data_size and len(text) > max_data_size:
        return text[: max_data_size - 3] + "..."
    return text


def _safe_decode(key: Any) -> str:
    if isinstance(key, bytes):
        try:
            return key.decode()
        except UnicodeDecodeError:
            return ""
    return str(key)


def _key_as_string(key: Any) -> str:
    """A key, or several joined with ", " (bytes decoded; None is "")."""
    if isinstance(key, (dict, list, tuple)):
        return ", ".join(_safe_decode(part) for part in key)
    if isinstance(key, bytes):
        return _safe_decode(key)
    if key is None:
        return ""
    return str(key)


def _get_safe_key(
    method_name: str,
    args: Optional[Sequence[Any]],
    kwargs: Optional[Mapping[str, Any]],
) -> Optional[tuple[Any, ...]]:
    """The key or keys of a redis command (or of a Django cache method) as a tuple."""
    if args is not None and method_name.lower() in _MULTI_KEY_COMMANDS:
        return tuple(args)
    if args is not None and len(args) >= 1:
        first = args[0]
        return tuple(first) if isinstance(first, (dict, list, tuple)) else (first,)
    if kwargs is not None and "key" in kwargs:
        key = kwargs["key"]
        if isinstance(key, (list, tuple)):
            return tuple(key) if key else None
        return (key,) if key is not None else None
    return None


def _parse_rediscluster_command(command: Any) -> Sequence[Any]:
    """The arguments (name first) of a cluster pipeline's queued command."""
    args: Sequence[Any] = command.args
    return args


def _extract_key(name: str, args: Any) -> Optional[Any]:
    """The ``redis.key`` of a command: its key, for the commands that have one."""
    if not name or not args:
        return None
    low = name.lower()
    if low in _SINGLE_KEY_COMMANDS or (low in _MULTI_KEY_COMMANDS and len(args) == 1):
        return args[0]
    return None


def _pipeline_commands(
    get_command_args_fn: Callable[[Any], Sequence[Any]], commands_seq: Sequence[Any], mode: int
) -> dict[str, Any]:
    commands = []
    for command in islice(commands_seq, _MAX_NUM_COMMANDS):
        args = get_command_args_fn(command)
        commands.append(_command_text(args[0], args[1:], mode))
    return {"count": len(commands_seq), "first_ten": commands}


def _set_pipeline_data(
    span: Any,
    is_cluster: bool,
    get_command_args_fn: Callable[[Any], Sequence[Any]],
    is_transaction: bool,
    commands_seq: Sequence[Any],
) -> None:
    """Tags ``redis.is_cluster`` and ``redis.transaction``, data ``redis.commands``."""
    span.set_tag("redis.is_cluster", is_cluster)
    span.set_tag("redis.transaction", is_transaction)
    mode = _value_mode(get_client().options)
    span.set_data("redis.commands", _pipeline_commands(get_command_args_fn, commands_seq, mode))


def _set_client_data(span: Any, is_cluster: bool, name: str, *args: Any) -> None:
    """Tags ``redis.is_cluster``, ``redis.command``, ``db.operation`` and ``redis.key``."""
    span.set_tag("redis.is_cluster", is_cluster)
    if name:
        span.set_tag("redis.command", name)
        span.set_tag("db.operation", name)
    key = _extract_key(name, args)
    if key is not None:
        span.set_tag("redis.key", key)
