"""Data stores under span streaming: the same spans as sentry_sdk 2.75, attribute for attribute.

Each test runs one script on sentry_sdk 2.75 and on tripwire (``trace_lifecycle="stream"``)
against the real servers the integration tests use: redis-server (sync, asyncio and
cluster clients, pipelines, cache spans), the loopback MongoDB of `fakes.mongo`,
PostgreSQL (asyncpg, SQLAlchemy), MariaDB (aiomysql) and ClickHouse (clickhouse-driver).
A test whose server is missing skips, as the integration tests do.

Streaming names both SDKs send: ``db.system.name``, ``db.namespace``,
``db.operation.name``, ``db.query.text`` (``db.system``, ``db.name``, the ``redis.*``
tags and the pipeline's ``redis.commands`` are transaction-only); the query parameters
and rows stay on the breadcrumbs; a SQL query outside any span is a segment of its own;
the code location of a slow query is ``code.line.number`` / ``code.file.path``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("redis")
from _mysql_server import MySQLServer
from _mysql_server import serve as serve_mysql
from _postgres_server import PostgresServer
from _postgres_server import serve as serve_postgres
from _redis_server import (  # noqa: F401 (fixtures)
    RedisServer,
    keyspace_fixture,
    redis_cluster_fixture,
    redis_server_fixture,
)
from _side_by_side import run_both
from _stream_shapes import assert_same, by_name, crumbs, log_shapes, spans
from fakes import clickhouse_server
from fakes.mongo import MongoServer, serving


@pytest.fixture(scope="session")
def mongo() -> Iterator[MongoServer]:
    with serving() as srv:
        yield srv


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    yield from serve_postgres()


@pytest.fixture(scope="session")
def mysql() -> Iterator[MySQLServer]:
    yield from serve_mysql()


@pytest.fixture(scope="session")
def clickhouse() -> Iterator[clickhouse_server.ClickhouseServer]:
    if clickhouse_server.find_binary() is None:
        pytest.skip("clickhouse-server is not installed (Debian package clickhouse-server)")
    server = clickhouse_server.start()
    yield server
    server.stop()


def _fill(script: str, **values: Any) -> str:
    for key, value in values.items():
        script = script.replace(f"@{key}@", str(value))
    return script


def _compare(theirs: dict[str, Any], ours: dict[str, Any]) -> list[dict[str, Any]]:
    expected, found = spans(theirs), spans(ours)
    assert_same(found, expected)
    assert_same(crumbs(ours), crumbs(theirs))
    assert_same(log_shapes(ours), log_shapes(theirs))
    return found


REDIS_MONGO_SCRIPT = """
import asyncio
import warnings

warnings.simplefilter("ignore", DeprecationWarning)
import pymongo
import redis
import redis.asyncio
from sentry_sdk import logger
from sentry_sdk.integrations.pymongo import PyMongoIntegration
from sentry_sdk.integrations.redis import RedisIntegration

K = "@KEYSPACE@"
sentry_sdk.init(
    dsn="http://key@example.com/1", transport=KEEP, traces_sample_rate=1.0,
    default_integrations=False, trace_lifecycle="stream", enable_logs=True,
    integrations=[
        RedisIntegration(max_data_size=48, cache_prefixes=[K + "cache:"]), PyMongoIntegration()
    ],
)


async def async_part():
    client = redis.asyncio.Redis(host="127.0.0.1", port=@REDIS_PORT@, db=4)
    await client.set(K + "cache:z", "1")
    await client.get(K + "cache:z")
    async with client.pipeline() as pipe:
        pipe.incr(K + "n")
        await pipe.execute()
    await client.aclose()
    cluster = redis.asyncio.RedisCluster(host="127.0.0.1", port=@CLUSTER_PORT@)
    await cluster.initialize()
    await cluster.get(K + "cache:a")
    await cluster.aclose()


client = redis.Redis(host="127.0.0.1", port=@REDIS_PORT@, db=5)
client.get(K + "outside")  # no span outside a span
with sentry_sdk.traces.start_span(name="redis"):
    client.set(K + "cache:a", "hello")
    client.get(K + "cache:a")
    client.get(K + "cache:missing")
    client.mget(K + "cache:a", K + "b")
    client.set(K + "long-" + "x" * 60, "value")
    client.delete(K + "b", K + "c")
    with client.pipeline(transaction=True) as pipe:
        pipe.set(K + "p", 1).get(K + "p").execute()
    cluster = redis.RedisCluster(host="127.0.0.1", port=@CLUSTER_PORT@)
    cluster.set(K + "cache:c", "v")
    pipe = cluster.pipeline()
    pipe.get(K + "cache:c")
    pipe.execute()
    cluster.close()
    asyncio.run(async_part())
    logger.info("inside redis")

mongo = pymongo.MongoClient("127.0.0.1", @MONGO_PORT@, serverSelectionTimeoutMS=10000)
items = mongo.stream.items
items.insert_one({"_id": 0, "a": "outside"})  # no span outside a span
with sentry_sdk.traces.start_span(name="mongo"):
    items.insert_many([{"_id": 1, "a": "x"}, {"_id": 2, "a": "y"}])
    list(items.find({"a": "x"}, {"_id": 0}).limit(1))
    try:
        list(items.aggregate([{"$match": {"a": "x"}}]))  # unknown to the fake: fails
    except pymongo.errors.OperationFailure:
        pass
    mongo.stream.drop_collection("items")
    sentry_sdk.capture_message("after")
mongo.close()
finish()
"""


def test_redis_and_pymongo_spans_match_sentry_sdk(
    redis_server: RedisServer,
    redis_cluster: RedisServer,
    mongo: MongoServer,
    keyspace: str,
    tmp_path: Path,
) -> None:
    script = _fill(
        REDIS_MONGO_SCRIPT,
        KEYSPACE=keyspace,
        REDIS_PORT=redis_server.port,
        CLUSTER_PORT=redis_cluster.port,
        MONGO_PORT=mongo.port,
    )
    theirs, ours = run_both(script, tmp_path)
    found = _compare(theirs, ours)
    # The scenario covers what it claims.
    get = by_name(found, f"GET '{keyspace}cache:a'")[0]["attributes"]
    assert get["sentry.op"] == "db.redis"
    assert get["db.system.name"] == "redis" and get["db.namespace"] == "5"
    assert get["db.operation.name"] == "GET" and get["db.redis.key"] == f"{keyspace}cache:a"
    assert "redis.command" not in get and "db.system" not in get
    cache = by_name(found, f"{keyspace}cache:a")[0]["attributes"]
    assert cache["sentry.op"] == "cache.put" and "db.query.text" in cache
    long_set = next(s for s in found if s["name"].startswith(f"SET '{keyspace}long-"))
    assert long_set["name"].endswith("...")  # cut to max_data_size, the query text is not
    assert len(long_set["attributes"]["db.query.text"]) > len(long_set["name"])
    pipelines = by_name(found, "redis.pipeline.execute")
    assert len(pipelines) == 3
    assert all("redis.commands" not in p["attributes"] for p in pipelines)
    ops = [s["attributes"].get("db.operation.name") for s in found if s["name"].startswith("{")]
    assert ops == ["insert", "find", "aggregate", "drop"]
    aggregate = next(s for s in found if s["name"].startswith('{"aggregate"'))
    assert aggregate["status"] == "error"
    assert [s["name"] for s in found if s["is_segment"]] == ["redis", "mongo"]


SQL_SCRIPT = """
import asyncio
import warnings

warnings.simplefilter("ignore", DeprecationWarning)
import aiomysql
import asyncpg
import sqlalchemy
from clickhouse_driver import Client
from sentry_sdk import logger
from sentry_sdk.integrations.aiomysql import AioMySQLIntegration
from sentry_sdk.integrations.asyncpg import AsyncPGIntegration
from sentry_sdk.integrations.clickhouse_driver import ClickhouseDriverIntegration
from sentry_sdk.integrations.sqlalchemy import SqlalchemyIntegration

PG = "postgresql://@PG_USER@@127.0.0.1:@PG_PORT@/@PG_DB@"
TABLE = "@TABLE@"
sentry_sdk.init(
    dsn="http://key@example.com/1", transport=KEEP, traces_sample_rate=1.0,
    default_integrations=False, trace_lifecycle="stream", enable_logs=True,
    send_default_pii=True, db_query_source_threshold_ms=0,
    _experiments={"record_sql_params": True},
    integrations=[
        AsyncPGIntegration(), SqlalchemyIntegration(), AioMySQLIntegration(record_params=True),
        ClickhouseDriverIntegration(),
    ],
)


async def postgres():
    conn = await asyncpg.connect(PG)  # outside a span: a breadcrumb, no span
    with sentry_sdk.traces.start_span(name="asyncpg"):
        other = await asyncpg.connect(PG)
        await other.close()
        await conn.execute(f"CREATE TABLE {TABLE} (x int)")
        await conn.execute(f"INSERT INTO {TABLE} VALUES ($1)", 5)
        await conn.fetch(f"SELECT x FROM {TABLE} WHERE x > $1", 1)
        async with conn.transaction():
            async for _ in conn.cursor(f"SELECT x FROM {TABLE}"):
                pass
        try:
            await conn.execute(f"SELECT nope FROM {TABLE}")
        except asyncpg.PostgresError:
            pass
        await conn.execute(f"DROP TABLE {TABLE}")
        logger.info("inside asyncpg")
    await conn.execute("SELECT 1")  # outside a span: a segment of its own
    await conn.close()


async def mysql():
    kwargs = dict(host="127.0.0.1", port=@MY_PORT@, user="@MY_USER@", password="", db="@MY_DB@")
    conn = await aiomysql.connect(**kwargs)
    with sentry_sdk.traces.start_span(name="aiomysql"):
        other = await aiomysql.connect(**kwargs)
        other.close()
        async with conn.cursor() as cur:
            await cur.execute(f"CREATE TABLE {TABLE} (x int)")
            await cur.execute(f"INSERT INTO {TABLE} VALUES (%s)", (5,))
            await cur.executemany(f"INSERT INTO {TABLE} VALUES (%s)", [(1,), (2,)])
            try:
                await cur.execute(f"SELECT nope FROM {TABLE}")
            except Exception:
                pass
            await cur.execute(f"DROP TABLE {TABLE}")
    async with conn.cursor() as cur:
        await cur.execute("SELECT 1")
    conn.close()


asyncio.run(postgres())
engine = sqlalchemy.create_engine("postgresql+psycopg2://@PG_USER@@127.0.0.1:@PG_PORT@/@PG_DB@")
with engine.connect() as connection:
    with sentry_sdk.traces.start_span(name="sqlalchemy"):
        connection.execute(sqlalchemy.text("SELECT :v + 1"), {"v": 2})
        try:
            connection.execute(sqlalchemy.text("SELECT nope"))
        except sqlalchemy.exc.DBAPIError:
            pass
    connection.rollback()
    connection.execute(sqlalchemy.text("SELECT 3"))
engine.dispose()
asyncio.run(mysql())
clickhouse = Client("127.0.0.1", port=@CH_PORT@)
clickhouse.execute("SELECT 0")  # outside a span: a breadcrumb, no span
with sentry_sdk.traces.start_span(name="clickhouse"):
    clickhouse.execute(f"CREATE TABLE {TABLE} (x Int32) ENGINE = Memory")
    clickhouse.execute(f"INSERT INTO {TABLE} (x) VALUES", [{"x": 1}, {"x": 2}])
    clickhouse.execute(f"SELECT sum(x) FROM {TABLE} WHERE x > %(m)s", {"m": 0}, query_id="q1")
    clickhouse.execute(f"DROP TABLE {TABLE}")
    sentry_sdk.capture_message("after")
clickhouse.disconnect()
finish()
"""


def test_sql_and_clickhouse_spans_match_sentry_sdk(
    postgres: PostgresServer,
    mysql: MySQLServer,
    clickhouse: clickhouse_server.ClickhouseServer,
    tmp_path: Path,
) -> None:
    table = "streamed_" + tmp_path.name.replace("-", "_")[-20:]
    script = _fill(
        SQL_SCRIPT,
        PG_USER=postgres.user,
        PG_PORT=postgres.port,
        PG_DB=postgres.database,
        MY_USER=mysql.user,
        MY_PORT=mysql.port,
        MY_DB=mysql.database,
        CH_PORT=clickhouse.port,
        TABLE=table,
    )
    theirs, ours = run_both(script, tmp_path)
    found = _compare(theirs, ours)
    segments = [s["name"] for s in found if s["is_segment"]]
    assert segments == [
        "asyncpg", "SELECT 1", "sqlalchemy", "SELECT 3", "aiomysql", "SELECT 1", "clickhouse"
    ]  # fmt: skip
    insert = by_name(found, f"INSERT INTO {table} VALUES ($1)")[0]["attributes"]
    assert insert["db.system.name"] == "postgresql" and insert["db.driver.name"] == "asyncpg"
    assert insert["db.query.text"] == f"INSERT INTO {table} VALUES ($1)"
    assert "db.params" not in insert  # on the breadcrumb only
    assert insert["code.function"] == "postgres" and "code.line.number" in insert
    failed = [s for s in found if s["name"].startswith("SELECT nope")]
    assert [s["status"] for s in failed] == ["error"] * 3
    query = by_name(found, "SELECT %(v)s + 1")[0]["attributes"]
    assert query["sentry.origin"] == "auto.db.sqlalchemy" and query["db.driver.name"] == "psycopg2"
    select = by_name(found, f"SELECT sum(x) FROM {table} WHERE x > 0")[0]["attributes"]
    assert select["db.system.name"] == "clickhouse" and "db.query_id" not in select
    assert len(by_name(found, "connect")) == 2
