"""The aiomysql integration: the real aiomysql against a real MariaDB on 127.0.0.1.

The server comes from `_mysql_server` (Debian package ``mariadb-server``; the tests
skip without it). The differential test runs one script on sentry_sdk 2.75 and on
tripwire, each in its own interpreter, against the same server.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _mysql_server import MySQLServer, serve
from _side_by_side import run

import tripwire
from tripwire.integrations.aiomysql import AioMySQLIntegration
from tripwire.testing import MemoryTransport, reset

if TYPE_CHECKING:
    import aiomysql


@pytest.fixture(autouse=True, scope="module")
def _aiomysql() -> None:
    """aiomysql is imported when the module's tests start, not at collection (every xdist
    worker collects every module; tests/_lazy.py)."""
    global aiomysql
    import aiomysql


@pytest.fixture(scope="session")
def mysql() -> Iterator[MySQLServer]:
    yield from serve()


def init(record_params: bool = False, **options: Any) -> MemoryTransport:
    tripwire.get_client().close()
    memory = MemoryTransport()
    tripwire.init(
        dsn="http://key@example.com/1",
        transport=memory,
        integrations=[AioMySQLIntegration(record_params=record_params)],
        default_integrations=False,
        **options,
    )
    return memory


def plain(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if not k.startswith(("thread.", "code."))}


async def work(server: MySQLServer, table: str) -> Any:
    conn = await aiomysql.connect(
        host=server.host, port=server.port, user=server.user, password="", db=server.database
    )
    try:
        async with conn.cursor() as cur:
            await cur.execute(f"CREATE TABLE {table} (id INT,\n   name VARCHAR(20))")
            await cur.executemany(f"INSERT INTO {table} VALUES (%s, %s)", [(1, "a"), (2, "b")])
            await cur.execute(f"SELECT name FROM {table} WHERE id = %s", (2,))
            rows = await cur.fetchall()
            with pytest.raises(aiomysql.ProgrammingError):
                await cur.execute("SELEC broken")
            await cur.execute(f"DROP TABLE {table}")
    finally:
        conn.close()
    return rows


def test_queries_and_connect_get_spans_and_breadcrumbs(mysql: MySQLServer) -> None:
    memory = init(traces_sample_rate=1.0)
    with tripwire.start_transaction(name="tx") as transaction:
        assert asyncio.run(work(mysql, "t_spans")) == (("b",),)
        tripwire.capture_message("after")
    (tx,) = memory.transactions
    spans = tx["spans"]
    connection = {
        "db.system": "mysql",
        "db.driver.name": "aiomysql",
        "server.address": "127.0.0.1",
        "server.port": mysql.port,
        "db.name": mysql.database,
        "db.user": mysql.user,
    }
    assert [(s["op"], s["description"], s.get("status")) for s in spans] == [
        ("db", "connect", None),
        ("db", "CREATE TABLE t_spans (id INT, name VARCHAR(20))", None),
        ("db", "INSERT INTO t_spans VALUES (%s, %s)", None),  # executemany: one span
        ("db", "SELECT name FROM t_spans WHERE id = %s", None),
        ("db", "SELEC broken", "internal_error"),
        ("db", "DROP TABLE t_spans", None),
    ]
    assert all(s["origin"] == "auto.db.aiomysql" for s in spans)
    assert all(s["parent_span_id"] == transaction.span_id for s in spans)
    assert plain(spans[0]["data"]) == connection
    assert plain(spans[2]["data"]) == {"db.executemany": True, **connection}
    assert plain(spans[3]["data"]) == connection  # no parameters unless asked for
    (event,) = memory.events
    crumbs = [c for c in event["breadcrumbs"]["values"] if c["category"] == "query"]
    assert [c["message"] for c in crumbs] == ["connect"] + [s["description"] for s in spans[1:]]
    assert crumbs[0]["data"] == connection


def test_parameters_only_when_allowed(mysql: MySQLServer) -> None:
    memory = init(record_params=True, traces_sample_rate=1.0)
    with tripwire.start_transaction(name="tx"):
        asyncio.run(work(mysql, "t_no_experiment"))
    (tx,) = memory.transactions
    assert not any("db.params" in s["data"] for s in tx["spans"])
    memory = init(
        record_params=True, traces_sample_rate=1.0, _experiments={"record_sql_params": True}
    )
    with tripwire.start_transaction(name="tx"):
        asyncio.run(work(mysql, "t_params"))
    (tx,) = memory.transactions
    many, select = tx["spans"][2], tx["spans"][3]
    assert many["data"]["db.params"] == [[1, "a"], [2, "b"]]
    assert select["data"]["db.params"] == [2]
    assert select["data"]["db.paramstyle"] == "format"


def test_quiet_without_the_integration_and_reset_undoes_the_patch(mysql: MySQLServer) -> None:
    from aiomysql.connection import Connection
    from aiomysql.cursors import Cursor

    originals = (Cursor.execute, Cursor.executemany, Connection._connect)
    memory = init(traces_sample_rate=1.0)
    assert Cursor.execute is not originals[0]
    tripwire.get_client().close()
    tripwire.init(
        dsn="http://key@example.com/1",
        transport=memory,
        traces_sample_rate=1.0,
        default_integrations=False,
    )
    with tripwire.start_transaction(name="tx"):
        asyncio.run(work(mysql, "t_quiet"))
    (tx,) = memory.transactions
    assert tx["spans"] == []
    reset()
    assert (Cursor.execute, Cursor.executemany, Connection._connect) == originals


_SCRIPT = """
import asyncio, aiomysql
from sentry_sdk.integrations.aiomysql import AioMySQLIntegration

HOST, PORT, USER, DB = {host!r}, {port}, {user!r}, {db!r}


async def work(tag):
    conn = await aiomysql.connect(host=HOST, port=PORT, user=USER, password="", db=DB)
    cur = await conn.cursor()
    await cur.execute("CREATE TABLE t_%s (id INT, name   VARCHAR(20))" % tag)
    await cur.execute("INSERT INTO t_" + tag + " VALUES (%s, %s)", (1, "a"))
    await cur.executemany("INSERT INTO t_" + tag + " VALUES (%s, %s)", [(2, "b"), (3, "c")])
    await cur.executemany("UPDATE t_" + tag + " SET name = %s WHERE id = %s", [("x", 1), ("y", 2)])
    await cur.execute("SELECT name FROM t_" + tag + " WHERE id = %(id)s", {{"id": 3}})
    NOTES.append(await cur.fetchall())
    try:
        await cur.execute("SELEC broken")
    except Exception as exc:
        NOTES.append(type(exc).__name__)
    await cur.execute("DROP TABLE t_" + tag)
    await cur.close()
    conn.close()
    pool = await aiomysql.create_pool(host=HOST, port=PORT, user=USER, password="", db=DB,
                                      minsize=1, maxsize=1)
    async with pool.acquire() as other:
        async with other.cursor() as cur:
            await cur.execute(b"SELECT  2")
    pool.close()
    await pool.wait_closed()


def init(record_params=False, **options):
    sentry_sdk.init(transport=KEEP, default_integrations=False,
                    integrations=[AioMySQLIntegration(record_params=record_params)], **options)


init(traces_sample_rate=1.0)
with sentry_sdk.start_transaction(name="plain"):
    asyncio.run(work("a"))
sentry_sdk.capture_message("plain")
init(record_params=True, traces_sample_rate=1.0, _experiments={{"record_sql_params": True}})
with sentry_sdk.start_transaction(name="params"):
    asyncio.run(work("b"))
asyncio.run(work("c"))
sentry_sdk.capture_message("no-tx")
finish()
"""


def _shape(found: dict[str, Any]) -> list[Any]:
    """Spans and query breadcrumbs; thread and (timing-dependent) query-source data left out."""
    out: list[Any] = []
    for item in found["items"]:
        payload = item["payload"]
        if item["type"] == "transaction":
            root = payload["contexts"]["trace"]["span_id"]
            for span in payload["spans"]:
                out.append(
                    [payload["transaction"], span["op"], span["description"], span.get("status"),
                     span["origin"], span["parent_span_id"] == root, plain(span["data"])]
                )  # fmt: skip
        elif item["type"] == "event":
            for crumb in payload.get("breadcrumbs", {}).get("values", []):
                out.append(
                    [payload["message"], {k: v for k, v in crumb.items() if k != "timestamp"}]
                )
    return out


def test_same_as_sentry_sdk(mysql: MySQLServer, tmp_path: Path) -> None:
    found = {}
    for sdk in ("sentry", "tripwire"):
        # The runs take turns; each drops the tables it made.
        script = _SCRIPT.format(
            host=mysql.host, port=mysql.port, user=mysql.user, db=mysql.database
        )
        found[sdk] = run(script, sdk, tmp_path)
    assert found["tripwire"]["notes"] == found["sentry"]["notes"]
    assert found["tripwire"]["notes"][:2] == [[["c"]], "ProgrammingError"]
    expected, ours = _shape(found["sentry"]), _shape(found["tripwire"])
    assert ours == expected
    assert len([row for row in ours if len(row) == 7]) == 20  # spans of two transactions
