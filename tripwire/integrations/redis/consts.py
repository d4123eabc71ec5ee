"""Constants of the redis integration (the names sentry_sdk 2.75 has)."""

from __future__ import annotations

from typing import Optional

SPAN_ORIGIN = "auto.db.redis"

# Commands whose first argument is the key (reported as ``redis.key``).
_SINGLE_KEY_COMMANDS = frozenset(
    ["decr", "decrby", "get", "incr", "incrby", "pttl", "set", "setex", "setnx", "ttl"]
)
# Commands taking several keys: their first argument is ``redis.key`` only when alone.
_MULTI_KEY_COMMANDS = frozenset(["del", "touch", "unlink", "mget"])
# Every argument of these is replaced by the substitute, whatever the options.
_COMMANDS_INCLUDING_SENSITIVE_DATA = ["auth"]
_MAX_NUM_ARGS = 10  # arguments shown in a description: the key and up to ten more
_MAX_NUM_COMMANDS = 10  # commands of a pipeline listed in ``redis.commands``
_DEFAULT_MAX_DATA_SIZE: Optional[int] = None
