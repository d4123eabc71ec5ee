"""The redis integration against a real redis-server (and a one-node cluster) on loopback.

The servers are session fixtures (`_redis_server`); every test uses its own keys. The
differential test runs one script on sentry_sdk 2.75 and on tripwire, each in its own
interpreter (both SDKs patch redis-py's classes for the whole process).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _lazy import skip_module_without

skip_module_without("redis")
from _redis_server import (  # noqa: E402, F401 (fixtures)
    RedisServer,
    keyspace_fixture,
    redis_cluster_fixture,
    redis_server_fixture,
)
from _side_by_side import dumps, of_type, run_both  # noqa: E402

import tripwire  # noqa: E402
from tripwire.integrations.redis import RedisIntegration  # noqa: E402
from tripwire.integrations.redis._sync_common import patch_redis_client  # noqa: E402
from tripwire.integrations.redis.modules.queries import _set_db_data  # noqa: E402
from tripwire.testing import MemoryTransport, reset  # noqa: E402

if TYPE_CHECKING:
    import redis


@pytest.fixture(autouse=True, scope="module")
def _redis() -> None:
    """redis-py is imported when the module's tests start, not at collection (every xdist
    worker collects every module; tests/_lazy.py)."""
    global redis
    import redis
    import redis.asyncio


def init(integration: Any = None, **options: Any) -> MemoryTransport:
    memory = MemoryTransport()
    options.setdefault("dsn", "http://key@example.com/1")
    tripwire.init(
        transport=memory,
        integrations=[integration or RedisIntegration()],
        default_integrations=False,
        **options,
    )
    return memory


def shape(span: dict[str, Any]) -> dict[str, Any]:
    """What a test asserts of a span: no ids, times or thread data."""
    found: dict[str, Any] = {k: span[k] for k in ("op", "description", "origin") if k in span}
    if "status" in span:
        found["status"] = span["status"]
    found["tags"] = span.get("tags", {})
    found["data"] = {k: v for k, v in span.get("data", {}).items() if not k.startswith("thread.")}
    return found


def only_spans(memory: MemoryTransport) -> list[dict[str, Any]]:
    (transaction,) = memory.transactions
    spans: list[dict[str, Any]] = transaction["spans"]
    return spans


def redis_crumbs(memory: MemoryTransport) -> list[dict[str, Any]]:
    (event,) = memory.events
    return [
        {k: v for k, v in crumb.items() if k != "timestamp"}
        for crumb in event["breadcrumbs"]["values"]
        if crumb["category"] == "redis"
    ]


def db_data(server: RedisServer, db: int = 0) -> dict[str, Any]:
    return {
        "db.system": "redis",
        "db.driver.name": "redis-py",
        "db.name": str(db),
        "server.address": "127.0.0.1",
        "server.port": server.port,
    }


def command_tags(name: str, key: Any = None, cluster: bool = False) -> dict[str, Any]:
    tags: dict[str, Any] = {"redis.is_cluster": cluster, "redis.command": name}
    tags["db.operation"] = name
    if key is not None:
        tags["redis.key"] = key
    return tags


def test_commands_get_spans_and_breadcrumbs(redis_server: RedisServer, keyspace: str) -> None:
    memory = init(traces_sample_rate=1.0)
    client = redis.Redis(host="127.0.0.1", port=redis_server.port, db=3)
    k = keyspace
    with tripwire.start_transaction(name="tx", op="test") as transaction:
        assert client.set(k + "a", "secret-value") is True
        assert client.get(k + "a") == b"secret-value"
        assert client.incr(k + "n") == 1
        assert client.delete(k + "a", k + "n") == 2
    tripwire.capture_message("after")

    spans = only_spans(memory)
    assert [shape(s) for s in spans] == [
        {
            "op": "db.redis",
            "description": description,
            "origin": "auto.db.redis",
            "tags": tags,
            "data": db_data(redis_server, 3),
        }
        for description, tags in (
            (f"SET '{k}a' [Filtered]", command_tags("SET", k + "a")),
            (f"GET '{k}a'", command_tags("GET", k + "a")),
            (f"INCRBY '{k}n' [Filtered]", command_tags("INCRBY", k + "n")),
            (f"DEL '{k}a' [Filtered]", command_tags("DEL")),
        )
    ]
    assert {s["parent_span_id"] for s in spans} == {transaction.span_id}
    assert redis_crumbs(memory) == [
        {
            "message": s["description"],
            "type": "redis",
            "category": "redis",
            "data": s["tags"],
        }
        for s in spans
    ]
    assert "secret-value" not in json.dumps(memory.transactions + memory.events)


def test_values_with_send_default_pii_and_max_data_size(
    redis_server: RedisServer, keyspace: str
) -> None:
    with pytest.warns(DeprecationWarning, match="max_data_size"):
        integration = RedisIntegration(max_data_size=30)
    memory = init(integration, traces_sample_rate=1.0, send_default_pii=True)
    client = redis.Redis(host="127.0.0.1", port=redis_server.port)
    with tripwire.start_transaction(name="tx"):
        client.set(keyspace + "k", "v")
        client.set(keyspace + "k", "a much longer value than thirty characters")
        client.rpush(keyspace + "list", *range(15))
    descriptions = [s["description"] for s in only_spans(memory)]
    full = f"SET '{keyspace}k' 'a much longer value than thirty characters'"
    assert descriptions == [
        f"SET '{keyspace}k' 'v'",
        full[:27] + "...",
        f"RPUSH '{keyspace}list' 0 1 2 3 4 5 6 7 8 9"[:27] + "...",
    ]


def test_at_most_ten_arguments_after_the_key(redis_server: RedisServer, keyspace: str) -> None:
    memory = init(traces_sample_rate=1.0, send_default_pii=True)
    client = redis.Redis(host="127.0.0.1", port=redis_server.port)
    with tripwire.start_transaction(name="tx"):
        client.rpush(keyspace + "list", *range(15))
    (span,) = only_spans(memory)
    assert span["description"] == f"RPUSH '{keyspace}list' 0 1 2 3 4 5 6 7 8 9"


def test_data_collection_without_query_data_leaves_the_values_out(
    redis_server: RedisServer, keyspace: str
) -> None:
    memory = init(traces_sample_rate=1.0, data_collection={"database_query_data": False})
    client = redis.Redis(host="127.0.0.1", port=redis_server.port)
    with tripwire.start_transaction(name="tx"):
        client.set(keyspace + "k", "v")
    (span,) = only_spans(memory)
    assert span["description"] == f"SET '{keyspace}k'"


def test_a_failing_command_ends_its_span_and_gives_the_scope_back(
    redis_server: RedisServer, keyspace: str
) -> None:
    memory = init(traces_sample_rate=1.0, send_default_pii=True)
    client = redis.Redis(host="127.0.0.1", port=redis_server.port)
    with tripwire.start_transaction(name="tx") as transaction:
        with pytest.raises(redis.exceptions.AuthenticationError):
            client.execute_command("AUTH", "user", "password")
        client.get(keyspace + "after")
    tripwire.capture_message("after")
    failed, after = only_spans(memory)
    assert shape(failed) == {
        "op": "db.redis",
        "description": "AUTH [Filtered] [Filtered]",
        "origin": "auto.db.redis",
        "status": "internal_error",
        "tags": {**command_tags("AUTH"), "status": "internal_error"},
        "data": db_data(redis_server),
    }
    assert after["parent_span_id"] == transaction.span_id
    assert [c["message"] for c in redis_crumbs(memory)] == [
        "AUTH [Filtered] [Filtered]",
        f"GET '{keyspace}after'",
    ]


def test_pipelines(redis_server: RedisServer, keyspace: str) -> None:
    memory = init(traces_sample_rate=1.0)
    client = redis.Redis(host="127.0.0.1", port=redis_server.port, db=1)
    with tripwire.start_transaction(name="tx") as tx:
        with client.pipeline(transaction=True) as pipe:
            pipe.set(keyspace + "a", 1).get(keyspace + "a")
            assert pipe.execute() == [True, b"1"]
        with client.pipeline(transaction=False) as pipe:
            for i in range(12):
                pipe.incr(keyspace + "n", i)
            assert pipe.execute()[-1] == sum(range(12))
        client.get(keyspace + "a")
    tripwire.capture_message("after")
    spans = only_spans(memory)
    assert [s["parent_span_id"] for s in spans] == [tx.span_id] * 3
    first, second, _ = (shape(s) for s in spans)
    base = {"op": "db.redis", "description": "redis.pipeline.execute", "origin": "auto.db.redis"}
    assert first == {
        **base,
        "tags": {"redis.is_cluster": False, "redis.transaction": True},
        "data": {
            **db_data(redis_server, 1),
            "redis.commands": {
                "count": 2,
                "first_ten": [f"SET '{keyspace}a' [Filtered]", f"GET '{keyspace}a'"],
            },
        },
    }
    assert second["tags"] == {"redis.is_cluster": False, "redis.transaction": False}
    assert second["data"]["redis.commands"] == {
        "count": 12,
        "first_ten": [f"INCRBY '{keyspace}n' [Filtered]"] * 10,
    }
    assert redis_crumbs(memory) == [
        {
            "message": "redis.pipeline.execute",
            "type": "redis",
            "category": "redis",
            "data": {"redis.is_cluster": False, "redis.transaction": transaction},
        }
        for transaction in (True, False)
    ] + [
        {
            "message": f"GET '{keyspace}a'",
            "type": "redis",
            "category": "redis",
            "data": command_tags("GET", keyspace + "a"),
        }
    ]


def test_asyncio_client_and_pipeline(redis_server: RedisServer, keyspace: str) -> None:
    memory = init(traces_sample_rate=1.0)

    async def main() -> Any:
        client = redis.asyncio.Redis(host="127.0.0.1", port=redis_server.port, db=2)
        try:
            await client.set(keyspace + "a", "x")
            async with client.pipeline(transaction=True) as pipe:
                pipe.get(keyspace + "a")
                return await pipe.execute()
        finally:
            await client.aclose()

    with tripwire.start_transaction(name="tx"):
        assert asyncio.run(main()) == [b"x"]
    command, pipeline = (shape(s) for s in only_spans(memory))
    assert command == {
        "op": "db.redis",
        "description": f"SET '{keyspace}a' [Filtered]",
        "origin": "auto.db.redis",
        "tags": command_tags("SET", keyspace + "a"),
        "data": db_data(redis_server, 2),
    }
    assert pipeline["description"] == "redis.pipeline.execute"
    assert pipeline["tags"] == {"redis.is_cluster": False, "redis.transaction": True}
    assert pipeline["data"] == {
        **db_data(redis_server, 2),
        "redis.commands": {"count": 1, "first_ten": [f"GET '{keyspace}a'"]},
    }


def test_cluster_client_and_pipeline(redis_cluster: RedisServer, keyspace: str) -> None:
    client = redis.RedisCluster(host="127.0.0.1", port=redis_cluster.port)
    memory = init(traces_sample_rate=1.0)
    node = {
        "db.system": "redis",
        "db.driver.name": "redis-py",
        "server.address": "127.0.0.1",
        "server.port": redis_cluster.port,
    }
    with tripwire.start_transaction(name="tx"):
        client.set(keyspace + "a", "x")
        pipe = client.pipeline()
        pipe.get(keyspace + "a")
        assert pipe.execute() == [b"x"]
    tripwire.capture_message("after")
    command, pipeline = (shape(s) for s in only_spans(memory))
    assert command == {
        "op": "db.redis",
        "description": f"SET '{keyspace}a' [Filtered]",
        "origin": "auto.db.redis",
        "tags": command_tags("SET", keyspace + "a", cluster=True),
        "data": node,
    }
    assert pipeline["tags"] == {"redis.is_cluster": True, "redis.transaction": False}
    assert pipeline["data"] == {
        **node,
        "redis.commands": {"count": 1, "first_ten": [f"GET '{keyspace}a'"]},
    }
    assert [c["data"]["redis.is_cluster"] for c in redis_crumbs(memory)] == [True, True]
    client.close()


def test_asyncio_cluster_client_and_pipeline(redis_cluster: RedisServer, keyspace: str) -> None:
    memory = init(traces_sample_rate=1.0)

    async def main() -> Any:
        client = redis.asyncio.RedisCluster(host="127.0.0.1", port=redis_cluster.port)
        try:
            await client.initialize()
            await client.set(keyspace + "a", "x")
            async with client.pipeline() as pipe:
                pipe.get(keyspace + "a")
                return await pipe.execute()
        finally:
            await client.aclose()

    with tripwire.start_transaction(name="tx"):
        assert asyncio.run(main()) == [b"x"]
    spans = [shape(s) for s in only_spans(memory) if s["op"] == "db.redis"]
    command, pipeline = spans[-2:]
    assert command["description"] == f"SET '{keyspace}a' [Filtered]"
    assert command["tags"] == command_tags("SET", keyspace + "a", cluster=True)
    assert command["data"]["server.port"] == redis_cluster.port
    assert pipeline["tags"] == {"redis.is_cluster": True, "redis.transaction": False}
    assert pipeline["data"]["redis.commands"] == {"count": 1, "first_ten": [f"GET '{keyspace}a'"]}
    assert pipeline["data"]["server.port"] == redis_cluster.port


def test_cache_spans_for_prefixed_keys(redis_server: RedisServer, keyspace: str) -> None:
    prefix = keyspace + "cache:"
    memory = init(RedisIntegration(cache_prefixes=[prefix]), traces_sample_rate=1.0)
    client = redis.Redis(host="127.0.0.1", port=redis_server.port)
    with tripwire.start_transaction(name="tx"):
        client.set(prefix + "a", "héllo")
        client.get(prefix + "a")
        client.get(prefix + "missing")
        client.mget(prefix + "a", keyspace + "other")
        client.setex(prefix + "b", 60, b"xyz")
        client.set(keyspace + "not-cached", "v")
        client.incr(prefix + "counter")
    spans = only_spans(memory)
    peer = {"network.peer.address": "127.0.0.1", "network.peer.port": redis_server.port}
    caches = [
        (shape(s)["op"], s["description"], shape(s)["data"]) for s in spans if s["op"] != "db.redis"
    ]
    assert caches == [
        ("cache.put", prefix + "a", {"cache.key": [prefix + "a"], "cache.item_size": 6, **peer}),
        (
            "cache.get",
            prefix + "a",
            {"cache.key": [prefix + "a"], "cache.hit": True, "cache.item_size": 6, **peer},
        ),
        (
            "cache.get",
            prefix + "missing",
            {"cache.key": [prefix + "missing"], "cache.hit": False, **peer},
        ),
        (
            "cache.get",
            f"{prefix}a, {keyspace}other",
            {
                "cache.key": [prefix + "a", keyspace + "other"],
                "cache.hit": True,
                "cache.item_size": len(str([b"h\xc3\xa9llo", None])),
                **peer,
            },
        ),
        ("cache.put", prefix + "b", {"cache.key": [prefix + "b"], "cache.item_size": 3, **peer}),
    ]
    # Each cache span is the parent of its command's span, which follows it.
    op_of = {s["span_id"]: s["op"] for s in spans}
    assert [op_of.get(s["parent_span_id"], "transaction") for s in spans] == [
        "transaction", "cache.put",
        "transaction", "cache.get",
        "transaction", "cache.get",
        "transaction", "cache.get",
        "transaction", "cache.put",
        "transaction",
        "transaction",
    ]  # fmt: skip


def test_without_a_sampled_span_only_breadcrumbs(redis_server: RedisServer, keyspace: str) -> None:
    memory = init(traces_sample_rate=1.0)
    client = redis.Redis(host="127.0.0.1", port=redis_server.port)
    client.get(keyspace + "outside")
    with tripwire.start_transaction(name="unsampled", sampled=False):
        client.get(keyspace + "unsampled")
    tripwire.capture_message("after")
    assert memory.transactions == []
    assert [c["message"] for c in redis_crumbs(memory)] == [
        f"GET '{keyspace}outside'",
        f"GET '{keyspace}unsampled'",
    ]


def test_inactive_without_the_integration_and_reset_undoes_the_patch(
    redis_server: RedisServer, keyspace: str
) -> None:
    unpatched = redis.Redis.execute_command
    init(traces_sample_rate=1.0)
    assert redis.Redis.execute_command is not unpatched
    memory = MemoryTransport()
    tripwire.init(
        dsn="http://key@example.com/1",
        transport=memory,
        default_integrations=False,
        traces_sample_rate=1.0,
    )
    client = redis.Redis(host="127.0.0.1", port=redis_server.port)
    with tripwire.start_transaction(name="tx"):
        client.get(keyspace + "a")
    tripwire.capture_message("after")
    assert only_spans(memory) == []
    assert redis_crumbs(memory) == []
    reset()
    assert redis.Redis.execute_command is unpatched
    assert redis.asyncio.Redis.execute_command.__name__ == "execute_command"
    assert not hasattr(redis.asyncio.Redis.execute_command, "__tripwire_redis__")


def test_patch_redis_client_instruments_a_custom_class(
    redis_server: RedisServer, keyspace: str
) -> None:
    class Wrapper:
        def __init__(self, inner: Any) -> None:
            self.inner = inner
            self.connection_pool = inner.connection_pool

        def execute_command(self, *args: Any, **kwargs: Any) -> Any:
            return self.inner.execute_command(*args, **kwargs)

    memory = MemoryTransport()
    tripwire.init(
        dsn="http://key@example.com/1",
        transport=memory,
        integrations=[RedisIntegration()],
        default_integrations=False,
        traces_sample_rate=1.0,
    )
    patch_redis_client(Wrapper, is_cluster=True, set_db_data_fn=_set_db_data)
    wrapper = Wrapper(redis.Redis(host="127.0.0.1", port=redis_server.port))
    with tripwire.start_transaction(name="tx"):
        wrapper.execute_command("GET", keyspace + "a")
    outer, inner = only_spans(memory)
    assert outer["tags"]["redis.is_cluster"] is True
    assert inner["tags"]["redis.is_cluster"] is False
    assert inner["parent_span_id"] == outer["span_id"]
    assert outer["data"]["server.port"] == redis_server.port


def test_auto_enabled_and_init_imports_no_redis() -> None:
    code = (
        "import sys, tripwire\n"
        "tripwire.init(dsn='http://k@example.com/1', auto_enabling_integrations=True)\n"
        "assert 'redis' in tripwire.get_client().integrations, tripwire.get_client().integrations\n"
        "assert 'redis' not in sys.modules\n"
        "import redis\n"
        "assert getattr(redis.Redis.execute_command, '__tripwire_redis__', False)\n"
        "assert getattr(redis.asyncio.Redis.execute_command, '__tripwire_redis__', False)\n"
        "assert getattr(redis.RedisCluster.execute_command, '__tripwire_redis__', False)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr


_SCRIPT = """
import asyncio
import warnings

warnings.filterwarnings("ignore", category=DeprecationWarning)

import redis
import redis.asyncio
from sentry_sdk.integrations.redis import RedisIntegration

PORT = {port}
CLUSTER_PORT = {cluster_port}
K = {keyspace!r}


def init(integration, **options):
    sentry_sdk.init(
        dsn="http://key@example.com/1",
        transport=KEEP,
        traces_sample_rate=1.0,
        default_integrations=False,
        integrations=[integration],
        **options,
    )


def sync_part(client):
    client.set(K + "cache:a", "hello")
    client.get(K + "cache:a")
    client.get(K + "cache:missing")
    client.mget(K + "cache:a", K + "b")
    client.setex(K + "cache:b", 30, b"xyz")
    client.set(K + "long-" + "x" * 40, "value")
    client.incr(K + "n")
    client.delete(K + "b")
    client.delete(K + "b", K + "c")
    client.rpush(K + "list", *range(14))
    with client.pipeline(transaction=True) as pipe:
        pipe.set(K + "p", 1).get(K + "p").execute()
    with client.pipeline(transaction=False) as pipe:
        for i in range(11):
            pipe.incr(K + "q", i)
        pipe.execute()


async def async_part():
    client = redis.asyncio.Redis(host="127.0.0.1", port=PORT, db=4)
    await client.set(K + "cache:z", "1")
    await client.get(K + "cache:z")
    async with client.pipeline() as pipe:
        pipe.incr(K + "n")
        await pipe.execute()
    await client.aclose()


async def async_cluster_part():
    client = redis.asyncio.RedisCluster(host="127.0.0.1", port=CLUSTER_PORT)
    await client.initialize()
    await client.get(K + "cache:a")
    async with client.pipeline() as pipe:
        pipe.get(K + "x")
        await pipe.execute()
    await client.aclose()


for options in ({{}}, {{"send_default_pii": True}}):
    init(RedisIntegration(max_data_size=48, cache_prefixes=[K + "cache:"]), **options)
    client = redis.Redis(host="127.0.0.1", port=PORT, db=5)
    with sentry_sdk.start_transaction(name="sync"):
        sync_part(client)
    with sentry_sdk.start_transaction(name="async"):
        asyncio.run(async_part())
    cluster = redis.RedisCluster(host="127.0.0.1", port=CLUSTER_PORT)
    with sentry_sdk.start_transaction(name="cluster"):
        cluster.set(K + "cache:c", "v")
        cluster.get(K + "cache:c")
        pipe = cluster.pipeline()
        pipe.get(K + "cache:c")
        pipe.execute()
        asyncio.run(async_cluster_part())
    cluster.close()
    client.get(K + "outside")
    sentry_sdk.capture_message("end")

init(RedisIntegration(), data_collection={{"database_query_data": False}})
with sentry_sdk.start_transaction(name="data_collection"):
    redis.Redis(host="127.0.0.1", port=PORT).set(K + "dc", "value")
finish()
"""


def _span_shapes(transaction: dict[str, Any]) -> list[Any]:
    spans = transaction["spans"]
    index = {s["span_id"]: i for i, s in enumerate(spans)}
    index[transaction["contexts"]["trace"]["span_id"]] = -1
    return [{**shape(s), "parent": index.get(s["parent_span_id"], "?")} for s in spans]


def _crumbs(event: dict[str, Any]) -> list[Any]:
    return [
        {k: v for k, v in c.items() if k != "timestamp"} for c in event["breadcrumbs"]["values"]
    ]


def test_same_as_sentry_sdk(
    redis_server: RedisServer, redis_cluster: RedisServer, keyspace: str, tmp_path: Path
) -> None:
    script = _SCRIPT.format(
        port=redis_server.port, cluster_port=redis_cluster.port, keyspace=keyspace
    )
    sentry, ours = run_both(script, tmp_path)
    theirs_tx = of_type(sentry, "transaction")
    ours_tx = of_type(ours, "transaction")
    assert [t["transaction"] for t in ours_tx] == [t["transaction"] for t in theirs_tx]
    assert len(ours_tx) == 7
    for their, our in zip(theirs_tx, ours_tx):
        assert _span_shapes(our) == _span_shapes(their), dumps(
            [_span_shapes(our), _span_shapes(their)]
        )
    their_events, our_events = of_type(sentry, "event"), of_type(ours, "event")
    assert len(our_events) == len(their_events) == 2
    for their, our in zip(their_events, our_events):
        assert _crumbs(our) == _crumbs(their)
    # The scenario exercised what it claims to.
    ops = {s["op"] for t in ours_tx for s in t["spans"]}
    assert ops == {"db.redis", "cache.get", "cache.put"}
    described = [s["description"] for t in ours_tx for s in t["spans"]]
    assert f"SET '{keyspace}dc'" in described
    assert any(d.endswith("...") for d in described)
    assert any("'hello'" in d for d in described)
    assert any("[Filtered]" in d for d in described)
