"""The clickhouse-driver integration against a real ClickHouse server on 127.0.0.1.

Debian packages ClickHouse (``clickhouse-server``; ``.ci/run`` installs it): the
session starts one server (`fakes.clickhouse_server`, a temporary data directory and
a free port) and the real `clickhouse_driver.Client` talks its native protocol to it.
Without the binary the tests skip. The differential test runs one script on
sentry_sdk 2.75 and on tripwire, each in its own interpreter, against that server.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _side_by_side import of_type, run_both
from fakes import clickhouse_server

import tripwire
from tripwire.integrations.clickhouse_driver import ClickhouseDriverIntegration
from tripwire.testing import MemoryTransport, reset

if TYPE_CHECKING:
    import clickhouse_driver
    from clickhouse_driver import Client


@pytest.fixture(autouse=True, scope="module")
def _clickhouse_driver() -> None:
    """clickhouse-driver is imported when the module's tests start, not at collection (every xdist
    worker collects every module; tests/_lazy.py)."""
    global clickhouse_driver, Client
    import clickhouse_driver
    from clickhouse_driver import Client


@pytest.fixture(scope="session")
def clickhouse() -> Iterator[clickhouse_server.ClickhouseServer]:
    if clickhouse_server.find_binary() is None:
        pytest.skip("clickhouse-server is not installed (Debian package clickhouse-server)")
    server = clickhouse_server.start()
    yield server
    server.stop()


def init(**options: Any) -> MemoryTransport:
    tripwire.get_client().close()
    memory = MemoryTransport()
    options.setdefault("dsn", "http://key@example.com/1")
    options.setdefault("integrations", [ClickhouseDriverIntegration()])
    tripwire.init(transport=memory, default_integrations=False, **options)
    return memory


@pytest.fixture
def client(clickhouse: clickhouse_server.ClickhouseServer) -> Iterator[Any]:
    ch: Any = Client(clickhouse.host, port=clickhouse.port)
    yield ch
    ch.disconnect()


@pytest.fixture
def table(client: Any) -> Iterator[str]:
    """A fresh table of its own (tests may share the server under xdist)."""
    name = "t_" + uuid.uuid4().hex[:12]
    client.execute(f"CREATE TABLE {name} (x Int32, s String) ENGINE = Memory")
    yield name
    client.execute(f"DROP TABLE IF EXISTS {name}")


def db_spans(memory: MemoryTransport) -> list[dict[str, Any]]:
    (transaction,) = memory.transactions
    return [s for s in transaction["spans"] if s["origin"] == "auto.db.clickhouse_driver"]


def crumbs(memory: MemoryTransport) -> list[dict[str, Any]]:
    (event,) = memory.events
    return [c for c in event["breadcrumbs"]["values"] if c["category"] == "query"]


def no_thread(data: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if not k.startswith("thread.")}


def test_queries_get_spans_and_breadcrumbs_without_values(
    client: Any, table: str, clickhouse: clickhouse_server.ClickhouseServer
) -> None:
    memory = init(traces_sample_rate=1.0)
    with tripwire.start_transaction(name="tx") as transaction:
        client.execute(f"INSERT INTO {table} (x, s) VALUES", [{"x": 1, "s": "secret"}])
        rows = client.execute(f"SELECT sum(x) FROM {table} WHERE s = %(s)s", {"s": "secret"})
        assert rows == [(1,)]
        tripwire.capture_message("after")

    insert, select = db_spans(memory)
    assert insert["description"] == f"INSERT INTO {table} (x, s) VALUES"
    assert select["description"] == f"SELECT sum(x) FROM {table} WHERE s = 'secret'"
    connection = {
        "db.system": "clickhouse",
        "db.name": "",
        "db.driver.name": "clickhouse-driver",
        "server.address": "127.0.0.1",
        "server.port": clickhouse.port,
        "db.user": "default",
    }
    for span in (insert, select):
        assert span["op"] == "db"
        assert span["parent_span_id"] == transaction.span_id
        assert list(no_thread(span["data"]).items()) == list(connection.items())
    found = crumbs(memory)
    assert [c["message"] for c in found] == [insert["description"], select["description"]]
    assert no_thread(found[0]["data"]) == connection
    assert "thread.name" in found[0]["data"]
    assert "db.params" not in str(memory.events) and "db.result" not in str(memory.events)


def test_with_send_default_pii_params_rows_and_results(client: Any, table: str) -> None:
    memory = init(traces_sample_rate=1.0, send_default_pii=True)
    with tripwire.start_transaction(name="tx"):
        client.execute(f"INSERT INTO {table} (x, s) VALUES", [{"x": 1, "s": "a"}])
        rows = ({"x": n, "s": "g"} for n in (2, 3))  # a generator, followed as read
        client.execute(f"INSERT INTO {table} (x, s) VALUES", rows)
        client.execute(
            f"SELECT x FROM {table} WHERE x > %(m)s ORDER BY x", {"m": 1}, query_id="q-1"
        )
        tripwire.capture_message("after")
    first, second, select = db_spans(memory)
    assert first["data"]["db.params"] == [{"x": 1, "s": "a"}]
    assert second["data"]["db.params"] == [{"x": 2, "s": "g"}, {"x": 3, "s": "g"}]
    assert select["data"]["db.query_id"] == "q-1"
    assert select["data"]["db.params"] == {"m": 1}
    assert select["data"]["db.result"] == [[2], [3]]
    assert crumbs(memory)[0]["data"]["db.params"] == [{"x": 1, "s": "a"}]


def test_a_rejected_query_ends_its_span_internal_error(client: Any) -> None:
    memory = init(traces_sample_rate=1.0)
    with tripwire.start_transaction(name="tx"):
        with pytest.raises(clickhouse_driver.errors.ServerException):
            client.execute("SELECT no_such_column")
        assert client.execute("SELECT 2") == [(2,)]  # the connection is still usable
        tripwire.capture_message("after")
    failed, ok = db_spans(memory)
    assert (failed["description"], failed["status"]) == ("SELECT no_such_column", "internal_error")
    assert ok["description"] == "SELECT 2"
    assert [c["message"] for c in crumbs(memory)] == ["SELECT no_such_column", "SELECT 2"]


def test_outside_a_transaction_only_breadcrumbs(client: Any) -> None:
    memory = init(traces_sample_rate=1.0)
    client.execute("SELECT 1")
    tripwire.capture_message("after")
    assert memory.transactions == []
    assert [c["message"] for c in crumbs(memory)] == ["SELECT 1"]


def test_inactive_without_the_integration_and_reset_undoes_the_patch(client: Any) -> None:
    init(traces_sample_rate=1.0)
    patched = clickhouse_driver.connection.Connection.send_query
    assert getattr(patched, "__tripwire_clickhouse_driver__", False)
    memory = init(traces_sample_rate=1.0, integrations=[])
    with tripwire.start_transaction(name="tx"):
        client.execute("SELECT 1")
        tripwire.capture_message("after")
    assert db_spans(memory) == []
    assert crumbs(memory) == []
    reset()
    assert clickhouse_driver.connection.Connection.send_query is not patched


_SCRIPT = """
import warnings
from clickhouse_driver import Client
from sentry_sdk.integrations.clickhouse_driver import ClickhouseDriverIntegration

warnings.simplefilter("ignore", DeprecationWarning)  # send_default_pii, in both SDKs
sentry_sdk.init(
    dsn="https://key@o1.ingest.sentry.io/1",
    transport=KEEP,
    traces_sample_rate=1.0,
    default_integrations=False,
    integrations=[ClickhouseDriverIntegration()],
    send_default_pii={pii},
)
client = Client("127.0.0.1", port={port})
table = {table!r}
client.execute("SELECT 0")
with sentry_sdk.start_transaction(name="tx", op="test"):
    client.execute(f"CREATE TABLE {{table}} (x Int32) ENGINE = Memory")
    client.execute(f"INSERT INTO {{table}} (x) VALUES", [{{"x": 1}}, {{"x": 2}}])
    client.execute(f"INSERT INTO {{table}} (x) VALUES", ({{"x": n}} for n in (3, 4)))
    client.execute(f"SELECT sum(x) FROM {{table}} WHERE x > %(m)s", {{"m": 0}}, query_id="q1")
    client.execute(f"SELECT x FROM {{table}} ORDER BY x")
    client.execute(f"DROP TABLE {{table}}")
    sentry_sdk.capture_message("after")
client.disconnect()
finish()
"""


def _shape(found: dict[str, Any]) -> dict[str, Any]:
    (transaction,) = of_type(found, "transaction")
    spans = [
        {
            "op": s["op"],
            "description": s["description"],
            "origin": s["origin"],
            "status": s.get("status"),
            "data": list(no_thread(s["data"]).items()),
        }
        for s in transaction["spans"]
    ]
    (event,) = of_type(found, "event")
    found_crumbs = [
        {k: (no_thread(v) if k == "data" else v) for k, v in c.items() if k != "timestamp"}
        for c in event["breadcrumbs"]["values"]
    ]
    return {"spans": spans, "crumbs": found_crumbs}


@pytest.mark.parametrize("pii", [False, True])
def test_same_as_sentry_sdk(
    clickhouse: clickhouse_server.ClickhouseServer, tmp_path: Path, pii: bool
) -> None:
    # One table for both runs (one after the other: each creates and drops it).
    table = "d_" + uuid.uuid4().hex[:12]
    script = _SCRIPT.format(port=clickhouse.port, pii=pii, table=table)
    sentry, ours = run_both(script, tmp_path)
    expected, found = _shape(sentry), _shape(ours)
    assert found["spans"] == expected["spans"]
    assert found["crumbs"] == expected["crumbs"]
    assert len(found["spans"]) == 6
    assert len(found["crumbs"]) == 7  # and the query before the transaction
