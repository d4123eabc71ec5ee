"""The SQLAlchemy integration: real engines on SQLite (in memory) and on a real PostgreSQL.

The PostgreSQL server is started by the session fixture `postgres`
(`_postgres_server.py`). The differential test runs one script on sentry_sdk 2.75 and
on tripwire, each in its own interpreter (both SDKs listen to `Engine` for the whole
process), and compares spans and breadcrumbs.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _postgres_server import PostgresServer, serve
from _side_by_side import of_type, run_both

import tripwire
from tripwire.integrations.sqlalchemy import SqlalchemyIntegration
from tripwire.testing import MemoryTransport, reset

if TYPE_CHECKING:
    import sqlalchemy
    from sqlalchemy import create_engine, event, text
    from sqlalchemy.engine import Engine
    from sqlalchemy.ext.asyncio import create_async_engine


@pytest.fixture(autouse=True, scope="module")
def _sqlalchemy() -> None:
    """SQLAlchemy is imported when the module's tests start, not at collection (every xdist
    worker collects every module; tests/_lazy.py)."""
    global sqlalchemy, create_engine, event, text, Engine, create_async_engine
    import sqlalchemy
    from sqlalchemy import create_engine, event, text
    from sqlalchemy.engine import Engine
    from sqlalchemy.ext.asyncio import create_async_engine


HERE = Path(__file__).name


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """The PostgreSQL server of this test process (`_postgres_server.serve`)."""
    yield from serve()


def init(**options: Any) -> MemoryTransport:
    tripwire.get_client().close()  # a client replaced without closing keeps its threads
    memory = MemoryTransport()
    options.setdefault("traces_sample_rate", 1.0)
    tripwire.init(
        dsn="http://key@example.com/1",
        transport=memory,
        integrations=[SqlalchemyIntegration()],
        default_integrations=False,
        auto_enabling_integrations=False,
        **options,
    )
    return memory


def db_spans(memory: MemoryTransport) -> list[dict[str, Any]]:
    (transaction,) = memory.transactions
    return [span for span in transaction["spans"] if span["op"] == "db"]


def query_crumbs(memory: MemoryTransport) -> list[dict[str, Any]]:
    (event,) = memory.events
    return [c for c in event["breadcrumbs"]["values"] if c["category"] == "query"]


def no_thread(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if not k.startswith("thread.")}


def run_sqlite_queries(engine: Engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("CREATE TABLE t (a INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (:a)"), [{"a": 1}, {"a": 2}])
        rows = conn.execute(text("SELECT a FROM t WHERE a > :low"), {"low": 0}).fetchall()
        assert [row[0] for row in rows] == [1, 2]
        with pytest.raises(sqlalchemy.exc.OperationalError):
            conn.execute(text("SELECT * FROM missing"))


def test_sqlite_spans_breadcrumbs_and_failed_statement() -> None:
    memory = init(db_query_source_threshold_ms=10_000)
    engine = create_engine("sqlite://")
    with tripwire.start_transaction(name="tx"):
        run_sqlite_queries(engine)
        tripwire.capture_message("after")

    spans = db_spans(memory)
    assert [s["description"] for s in spans] == [
        "CREATE TABLE t (a INTEGER)",
        "INSERT INTO t VALUES (?)",
        "SELECT a FROM t WHERE a > ?",
        "SELECT * FROM missing",
    ]
    assert {s["origin"] for s in spans} == {"auto.db.sqlalchemy"}
    sqlite_data = [("db.system", "sqlite"), ("db.driver.name", "pysqlite")]
    assert list(no_thread(spans[0]["data"]).items()) == sqlite_data
    assert list(no_thread(spans[1]["data"]).items()) == [("db.executemany", True), *sqlite_data]
    assert [s.get("status") for s in spans] == [None, None, None, "internal_error"]
    assert spans[3]["tags"] == {"status": "internal_error"}
    # Each span is under the transaction and has thread data, as sentry_sdk's.
    assert all(s["data"]["thread.name"] == "MainThread" for s in spans)

    crumbs = query_crumbs(memory)
    assert [(c["message"], c["data"], c["type"]) for c in crumbs] == [
        ("CREATE TABLE t (a INTEGER)", {}, "default"),
        ("INSERT INTO t VALUES (?)", {"db.executemany": True}, "default"),
        ("SELECT a FROM t WHERE a > ?", {}, "default"),
        ("SELECT * FROM missing", {}, "default"),
    ]


def test_query_source_above_the_threshold_only() -> None:
    memory = init(db_query_source_threshold_ms=0)
    engine = create_engine("sqlite://")
    with tripwire.start_transaction(name="tx"):
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
            line = sys._getframe().f_lineno - 1
            with pytest.raises(sqlalchemy.exc.OperationalError):
                conn.execute(text("SELECT nothing FROM nowhere"))
    fast, failed = db_spans(memory)
    assert {k: v for k, v in fast["data"].items() if k.startswith("code.")} == {
        "code.lineno": line,
        "code.namespace": __name__,
        "code.filepath": f"tests/{HERE}" if __name__.startswith("tests.") else HERE,
        "code.function": "test_query_source_above_the_threshold_only",
    }
    assert not any(k.startswith("code.") for k in failed["data"])  # no end event for it

    for options in ({"db_query_source_threshold_ms": 10_000}, {"enable_db_query_source": False}):
        memory = init(**{"db_query_source_threshold_ms": 0, **options})
        with tripwire.start_transaction(name="tx"):
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        (span,) = db_spans(memory)
        assert not any(k.startswith("code.") for k in span["data"]), options


def test_parameters_only_with_permission() -> None:
    engine = create_engine("sqlite://")
    for options, expected in (
        ({}, {}),
        (
            {"_experiments": {"record_sql_params": True}},
            {"db.params": [7], "db.paramstyle": "qmark"},  # as the cursor got them
        ),
    ):
        memory = init(**options)
        with tripwire.start_transaction(name="tx"):
            with engine.connect() as conn:
                conn.execute(text("SELECT :a"), {"a": 7})
            tripwire.capture_message("after")
        (span,) = db_spans(memory)
        assert {k: v for k, v in span["data"].items() if k.startswith("db.p")} == expected
        assert query_crumbs(memory)[-1]["data"] == expected


def test_breadcrumbs_without_a_transaction() -> None:
    memory = init()
    engine = create_engine("sqlite://")
    with engine.connect() as conn:
        conn.execute(text("SELECT 42"))
    tripwire.capture_message("after")
    assert memory.transactions == []
    assert [c["message"] for c in query_crumbs(memory)] == ["SELECT 42"]


def test_postgresql_sync_engine(postgres: PostgresServer) -> None:
    memory = init(db_query_source_threshold_ms=10_000)
    engine = create_engine(postgres.url("postgresql+psycopg2"))
    with tripwire.start_transaction(name="tx"):
        with engine.connect() as conn:
            value = conn.execute(text("SELECT CAST(:v AS integer) + 1"), {"v": 41}).scalar()
            assert value == 42
            with pytest.raises(sqlalchemy.exc.ProgrammingError):
                conn.execute(text("SELECT * FROM no_such_table"))
    engine.dispose()
    ok, failed = db_spans(memory)
    assert ok["description"] == "SELECT CAST(%(v)s AS integer) + 1"
    assert list(no_thread(ok["data"]).items()) == [
        ("db.system", "postgresql"),
        ("db.driver.name", "psycopg2"),
        ("db.name", postgres.database),
        ("server.address", "127.0.0.1"),
        ("server.port", postgres.port),
    ]
    assert ok.get("status") is None and failed["status"] == "internal_error"


def test_slow_query_gets_its_source_with_the_default_threshold(postgres: PostgresServer) -> None:
    memory = init()  # db_query_source_threshold_ms: 100 by default, as sentry_sdk
    engine = create_engine(postgres.url("postgresql+psycopg2"))
    with tripwire.start_transaction(name="tx"):
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_sleep(0.15)"))  # at least 150 ms by construction
    engine.dispose()
    (span,) = [s for s in db_spans(memory) if "pg_sleep" in s["description"]]
    assert span["data"]["code.function"] == (
        "test_slow_query_gets_its_source_with_the_default_threshold"
    )


def test_async_engines(postgres: PostgresServer) -> None:
    memory = init(db_query_source_threshold_ms=10_000)

    async def main() -> None:
        for url in ("sqlite+aiosqlite://", postgres.url("postgresql+asyncpg")):
            engine = create_async_engine(url)
            async with engine.connect() as conn:
                assert (await conn.execute(text("SELECT 7"))).scalar() == 7
            await engine.dispose()

    with tripwire.start_transaction(name="tx"):
        asyncio.run(main())
    selects = [s for s in db_spans(memory) if s["description"] == "SELECT 7"]
    assert [(s["data"]["db.system"], s["data"]["db.driver.name"]) for s in selects] == [
        ("sqlite", "aiosqlite"),
        ("postgresql", "asyncpg"),
    ]
    assert selects[1]["data"]["server.port"] == postgres.port
    (transaction,) = memory.transactions
    assert {s["parent_span_id"] for s in selects} == {transaction["contexts"]["trace"]["span_id"]}


def test_inactive_without_the_integration_and_reset_removes_the_listeners() -> None:
    memory = init()
    assert event.contains(Engine, "before_cursor_execute", _listener("before_cursor_execute"))
    tripwire.get_client().close()
    tripwire.init(
        dsn="http://key@example.com/1",
        transport=memory,
        traces_sample_rate=1.0,
        default_integrations=False,
        auto_enabling_integrations=False,
    )
    engine = create_engine("sqlite://")
    with tripwire.start_transaction(name="tx"):
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        tripwire.capture_message("after")
    assert db_spans(memory) == []
    crumbs = memory.events[0].get("breadcrumbs", {}).get("values", [])
    assert [c for c in crumbs if c.get("category") == "query"] == []
    reset()
    for name in ("before_cursor_execute", "after_cursor_execute", "handle_error"):
        assert not event.contains(Engine, name, _listener(name))


def _listener(name: str) -> Any:
    from tripwire.integrations import sqlalchemy as module

    return getattr(module, "_" + name)


def test_init_does_not_import_sqlalchemy() -> None:
    code = (
        "import sys, tripwire\n"
        "from tripwire.integrations.sqlalchemy import SqlalchemyIntegration\n"
        "tripwire.init(dsn='http://k@example.com/1', integrations=[SqlalchemyIntegration()],\n"
        "              auto_enabling_integrations=False)\n"
        "assert 'sqlalchemy' not in sys.modules\n"
        "import sqlalchemy\n"
        "from sqlalchemy import event\n"
        "from sqlalchemy.engine import Engine\n"
        "from tripwire.integrations import sqlalchemy as s\n"
        "assert event.contains(Engine, 'before_cursor_execute', s._before_cursor_execute)\n"
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
from sqlalchemy import create_engine, text
from sqlalchemy.ext.asyncio import create_async_engine
from sentry_sdk.integrations.sqlalchemy import SqlalchemyIntegration

sentry_sdk.init(
    dsn="https://k@o1.ingest.sentry.io/1",
    transport=KEEP,
    traces_sample_rate=1.0,
    default_integrations=False,
    auto_enabling_integrations=False,
    integrations=[SqlalchemyIntegration()],
    db_query_source_threshold_ms=0,
)

def queries(engine):
    with engine.connect() as conn:
        conn.execute(text("CREATE TEMP TABLE t (a INTEGER)"))
        conn.execute(text("INSERT INTO t VALUES (:a)"), [{"a": 1}, {"a": 2}])
        conn.execute(text("SELECT a FROM t WHERE a > :low"), {"low": 0}).fetchall()
        try:
            conn.execute(text("SELECT * FROM missing"))
        except Exception:
            pass

async def async_queries(url):
    engine = create_async_engine(url)
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 7"))
    await engine.dispose()

with sentry_sdk.start_transaction(name="sqlite"):
    queries(create_engine("sqlite://"))
with sentry_sdk.start_transaction(name="postgresql"):
    engine = create_engine(PG + "postgresql+psycopg2" + PG_REST)
    queries(engine)
    engine.dispose()
with sentry_sdk.start_transaction(name="async"):
    asyncio.run(async_queries("sqlite+aiosqlite://"))
    asyncio.run(async_queries(PG + "postgresql+asyncpg" + PG_REST))
sentry_sdk.capture_message("after")
finish()
"""

_VOLATILE = {"thread.id", "trace_id", "span_id", "parent_span_id", "timestamp", "start_timestamp"}


def _shape(found: dict[str, Any]) -> dict[str, Any]:
    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if k not in _VOLATILE}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value

    transactions = of_type(found, "transaction")
    (event,) = of_type(found, "event")
    return {
        "spans": {t["transaction"]: clean(t["spans"]) for t in transactions},
        "crumbs": clean(event["breadcrumbs"]["values"]),
    }


def test_same_as_sentry_sdk(tmp_path: Path, postgres: PostgresServer) -> None:
    prefix = json.dumps(postgres.url("X").split("X")[0])
    rest = json.dumps(postgres.url("X").split("X")[1])
    script = f"PG = {prefix}\nPG_REST = {rest}\n" + _SCENARIO
    sentry, ours = run_both(script, tmp_path)
    expected, found = _shape(sentry), _shape(ours)
    assert found["spans"] == expected["spans"]
    assert found["crumbs"] == expected["crumbs"]
    counts = {name: len(spans) for name, spans in found["spans"].items()}
    assert counts["sqlite"] == 4
    assert counts["postgresql"] >= 4  # and the dialect's own start-up queries
    assert {s["data"]["code.function"] for s in found["spans"]["sqlite"][:3]} == {"queries"}
