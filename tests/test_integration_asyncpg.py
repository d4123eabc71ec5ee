"""The asyncpg integration against a real PostgreSQL (the session fixture `postgres`).

The differential test runs one script on sentry_sdk 2.75 and on tripwire, each in its
own interpreter (both patch asyncpg for the whole process), and compares spans and
breadcrumbs.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _postgres_server import PostgresServer, serve
from _side_by_side import of_type, run_both

import tripwire
from tripwire.integrations.asyncpg import AsyncPGIntegration
from tripwire.testing import MemoryTransport, reset

if TYPE_CHECKING:
    import asyncpg


@pytest.fixture(autouse=True, scope="module")
def _asyncpg() -> None:
    """asyncpg is imported when the module's tests start, not at collection (every xdist
    worker collects every module; tests/_lazy.py)."""
    global asyncpg
    import asyncpg


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """The PostgreSQL server of this test process (`_postgres_server.serve`)."""
    yield from serve()


def init(integration: AsyncPGIntegration | None = None, **options: Any) -> MemoryTransport:
    tripwire.get_client().close()  # a client replaced without closing keeps its threads
    memory = MemoryTransport()
    options.setdefault("traces_sample_rate", 1.0)
    options.setdefault("db_query_source_threshold_ms", 10_000)
    tripwire.init(
        dsn="http://key@example.com/1",
        transport=memory,
        integrations=[integration or AsyncPGIntegration()],
        default_integrations=False,
        auto_enabling_integrations=False,
        **options,
    )
    return memory


def spans(memory: MemoryTransport) -> list[dict[str, Any]]:
    (transaction,) = memory.transactions
    found: list[dict[str, Any]] = transaction["spans"]
    return found


def query_crumbs(memory: MemoryTransport) -> list[dict[str, Any]]:
    event = memory.events[-1]
    return [c for c in event["breadcrumbs"]["values"] if c["category"] == "query"]


def no_thread(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if not k.startswith("thread.")}


def run(coro: Any) -> Any:
    with tripwire.start_transaction(name="tx"):
        result = asyncio.run(coro)
        tripwire.capture_message("after")
    return result


async def every_kind_of_query(dsn: str) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute("CREATE TEMP TABLE t (a int);\n  INSERT INTO t VALUES (1)")
        await conn.execute("INSERT INTO t VALUES ($1)", 2)
        await conn.executemany("INSERT INTO t VALUES ($1)", [(3,), (4,)])
        assert [r["a"] for r in await conn.fetch("SELECT a FROM t ORDER BY a")] == [1, 2, 3, 4]
        assert (await conn.fetchrow("SELECT a FROM t WHERE a = $1", 2))["a"] == 2
        assert await conn.fetchval("SELECT count(*) FROM t") == 4
        statement = await conn.prepare("SELECT a FROM t WHERE a > $1")
        assert len(await statement.fetch(2)) == 2  # no span: as sentry_sdk
        async with conn.transaction():
            assert [r["a"] async for r in conn.cursor("SELECT a FROM t ORDER BY a")] == [1, 2, 3, 4]
            cursor = await conn.cursor("SELECT a FROM t ORDER BY a")
            assert [r["a"] for r in await cursor.fetch(2)] == [1, 2]
        with pytest.raises(asyncpg.UndefinedTableError):
            await conn.fetch("SELECT * FROM missing")
    finally:
        await conn.close()


def test_connect_queries_cursors_and_errors(postgres: PostgresServer) -> None:
    memory = init()
    run(every_kind_of_query(postgres.dsn))

    found = spans(memory)
    described = [(s["op"], s["description"]) for s in found]
    assert described[0] == ("db", "connect")
    queries = [d for d in described if d[1] not in ("connect", "BEGIN;", "COMMIT;")]
    assert queries == [
        ("db", "CREATE TEMP TABLE t (a int); INSERT INTO t VALUES (1)"),
        ("db", "INSERT INTO t VALUES ($1)"),
        ("db", "INSERT INTO t VALUES ($1)"),
        ("db", "SELECT a FROM t ORDER BY a"),
        ("db", "SELECT a FROM t WHERE a = $1"),
        ("db", "SELECT count(*) FROM t"),
        ("db", "SELECT a FROM t WHERE a > $1"),
        ("db.cursor.iter", "SELECT a FROM t ORDER BY a"),  # one prefetch of 50 rows
        ("db.cursor.fetch", "SELECT a FROM t ORDER BY a"),
        ("db", "SELECT * FROM missing"),
    ]
    assert {s["origin"] for s in found} == {"auto.db.asyncpg"}
    connection_data = [
        ("db.system", "postgresql"),
        ("db.driver.name", "asyncpg"),
        ("server.address", "127.0.0.1"),
        ("server.port", postgres.port),
        ("db.name", postgres.database),
        ("db.user", postgres.user),
    ]
    assert list(no_thread(found[0]["data"]).items()) == [
        ("db.system", "postgresql"),
        ("server.address", "127.0.0.1"),
        ("server.port", postgres.port),
        ("db.name", postgres.database),
        ("db.user", postgres.user),
        ("db.driver.name", "asyncpg"),
    ]
    by_query = {(s["op"], s["description"]): s for s in found}
    # A script (`execute` without arguments) gets no connection data, as in sentry_sdk.
    script = by_query["db", "CREATE TEMP TABLE t (a int); INSERT INTO t VALUES (1)"]
    assert no_thread(script["data"]) == {}
    assert list(no_thread(by_query["db", "SELECT count(*) FROM t"]["data"]).items()) == (
        connection_data
    )
    many = [s for s in found if s["description"] == "INSERT INTO t VALUES ($1)"][1]
    assert list(no_thread(many["data"]).items()) == [("db.executemany", True), *connection_data]
    fetch = by_query["db.cursor.fetch", "SELECT a FROM t ORDER BY a"]
    assert re.fullmatch(r"<asyncpg.Cursor .*>", fetch["data"]["db.cursor"])
    failed = by_query["db", "SELECT * FROM missing"]
    assert failed["status"] == "internal_error"
    assert [s.get("status") for s in found].count("internal_error") == 1

    crumbs = query_crumbs(memory)
    assert crumbs[0]["message"] == "connect"
    assert no_thread(crumbs[0]["data"]) == dict(no_thread(found[0]["data"]))
    assert [c["message"] for c in crumbs[1:4]] == [
        "CREATE TEMP TABLE t (a int); INSERT INTO t VALUES (1)",
        "INSERT INTO t VALUES ($1)",
        "INSERT INTO t VALUES ($1)",
    ]
    assert crumbs[3]["data"] == {"db.executemany": True}


def test_parameters_need_record_params_and_permission(postgres: PostgresServer) -> None:
    async def query() -> None:
        conn = await asyncpg.connect(postgres.dsn)
        await conn.fetchval("SELECT $1::int + 1", 41)
        await conn.close()

    # The integration is made in the loop: as in sentry_sdk, the last one made decides.
    for record_params, options, expected in (
        (True, {}, {}),
        (False, {"_experiments": {"record_sql_params": True}}, {}),
        (
            True,
            {"_experiments": {"record_sql_params": True}},
            {"db.params": [41], "db.paramstyle": "format"},
        ),
    ):
        memory = init(AsyncPGIntegration(record_params=record_params), **options)
        run(query())
        (span,) = [s for s in spans(memory) if s["description"] == "SELECT $1::int + 1"]
        assert {k: v for k, v in span["data"].items() if k.startswith("db.p")} == expected
        assert query_crumbs(memory)[-1]["data"] == expected
    AsyncPGIntegration(record_params=False)  # the default again, for later tests


def test_query_source_when_slow(postgres: PostgresServer) -> None:
    async def query() -> None:
        conn = await asyncpg.connect(postgres.dsn)
        await conn.fetchval("SELECT 1")
        await conn.close()

    memory = init(db_query_source_threshold_ms=0)
    run(query())
    (span,) = [s for s in spans(memory) if s["description"] == "SELECT 1"]
    assert span["data"]["code.function"] == "query"
    assert span["data"]["code.namespace"] == __name__
    assert span["data"]["code.lineno"] == query.__code__.co_firstlineno + 2

    memory = init(db_query_source_threshold_ms=0, enable_db_query_source=False)
    run(query())
    (span,) = [s for s in spans(memory) if s["description"] == "SELECT 1"]
    assert not any(k.startswith("code.") for k in span["data"])


def test_inactive_without_the_integration_and_reset_undoes_the_patches(
    postgres: PostgresServer,
) -> None:
    originals = (asyncpg.Connection.execute, asyncpg.Connection._execute)
    memory = init()
    assert asyncpg.Connection._execute is not originals[1]
    tripwire.get_client().close()
    tripwire.init(
        dsn="http://key@example.com/1",
        transport=memory,
        traces_sample_rate=1.0,
        default_integrations=False,
        auto_enabling_integrations=False,
    )

    async def query() -> None:
        conn = await asyncpg.connect(postgres.dsn)
        await conn.execute("SELECT 1")
        await conn.fetchval("SELECT 2")
        await conn.close()

    run(query())
    assert spans(memory) == []
    reset()
    assert (asyncpg.Connection.execute, asyncpg.Connection._execute) == originals


def test_init_does_not_import_asyncpg() -> None:
    code = (
        "import sys, tripwire\n"
        "from tripwire.integrations.asyncpg import AsyncPGIntegration\n"
        "tripwire.init(dsn='http://k@example.com/1', integrations=[AsyncPGIntegration()],\n"
        "              auto_enabling_integrations=False)\n"
        "assert 'asyncpg' not in sys.modules\n"
        "import asyncpg\n"
        "assert getattr(asyncpg.Connection._execute, '__tripwire_asyncpg__', False)\n"
        "assert getattr(asyncpg.connect_utils._connect_addr, '__tripwire_asyncpg__', False)\n"
    )
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


_SCENARIO = """
import asyncio
import asyncpg
from sentry_sdk.integrations.asyncpg import AsyncPGIntegration

sentry_sdk.init(
    dsn="https://k@o1.ingest.sentry.io/1",
    transport=KEEP,
    traces_sample_rate=1.0,
    default_integrations=False,
    auto_enabling_integrations=False,
    integrations=[AsyncPGIntegration(record_params=True)],
    db_query_source_threshold_ms=0,
    _experiments={"record_sql_params": True},
)

async def main():
    conn = await asyncpg.connect(DSN)
    try:
        await conn.execute("CREATE TEMP TABLE t (a int);\\n  INSERT INTO t VALUES (1)")
        await conn.execute("INSERT INTO t VALUES ($1)", 2)
        await conn.executemany("INSERT INTO t VALUES ($1)", [(3,), (4,)])
        await conn.fetch("SELECT a FROM t ORDER BY a")
        await conn.fetchrow("SELECT a FROM t WHERE a = $1", 2)
        await conn.fetchval("SELECT count(*) FROM t")
        statement = await conn.prepare("SELECT a FROM t WHERE a > $1")
        await statement.fetch(2)
        async with conn.transaction():
            [r async for r in conn.cursor("SELECT a FROM t WHERE a > $1", 0)]
            cursor = await conn.cursor("SELECT a FROM t ORDER BY a")
            await cursor.fetch(2)
        try:
            await conn.fetch("SELECT * FROM missing")
        except asyncpg.UndefinedTableError:
            pass
    finally:
        await conn.close()

with sentry_sdk.start_transaction(name="asyncpg"):
    asyncio.run(main())
    sentry_sdk.capture_message("after")
finish()
"""

_VOLATILE = {"thread.id", "trace_id", "span_id", "parent_span_id", "timestamp", "start_timestamp"}
_ADDRESS = re.compile(r" 0x[0-9a-f]+>")


def _shape(found: dict[str, Any]) -> dict[str, Any]:
    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if k not in _VOLATILE}
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, str):
            return _ADDRESS.sub(" 0x?>", value)
        return value

    (transaction,) = of_type(found, "transaction")
    (event,) = of_type(found, "event")
    return {"spans": clean(transaction["spans"]), "crumbs": clean(event["breadcrumbs"]["values"])}


def test_same_as_sentry_sdk(tmp_path: Path, postgres: PostgresServer) -> None:
    script = f"DSN = {json.dumps(postgres.dsn)}\n" + _SCENARIO
    sentry, ours = run_both(script, tmp_path)
    expected, found = _shape(sentry), _shape(ours)
    assert found["spans"] == expected["spans"]
    assert found["crumbs"] == expected["crumbs"]
    assert len(found["spans"]) >= 12
    ops = {s["op"] for s in found["spans"]}
    assert ops == {"db", "db.cursor.iter", "db.cursor.fetch"}
    assert any(s["data"].get("db.params") == [2] for s in found["spans"])
