"""The pymongo integration: the real pymongo against a loopback MongoDB wire server.

MongoDB has no Debian package: `fakes.mongo` speaks the wire protocol (OP_MSG) on
127.0.0.1 and pymongo connects, handshakes, monitors and runs its commands against it
as against a standalone server. The differential test runs one script on sentry_sdk
2.75 and on tripwire, each in its own interpreter, against the same server.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _side_by_side import of_type, run_both
from fakes.mongo import MongoServer, serving

import tripwire
from tripwire.integrations.pymongo import PyMongoIntegration
from tripwire.testing import MemoryTransport, reset

if TYPE_CHECKING:
    import pymongo
    from pymongo import monitoring


@pytest.fixture(autouse=True, scope="module")
def _pymongo() -> None:
    """PyMongo is imported when the module's tests start, not at collection (every xdist
    worker collects every module; tests/_lazy.py)."""
    global pymongo, monitoring
    import pymongo
    from pymongo import monitoring


@pytest.fixture(scope="session")
def mongo() -> Iterator[MongoServer]:
    with serving() as srv:
        yield srv


def init(**options: Any) -> MemoryTransport:
    tripwire.get_client().close()
    memory = MemoryTransport()
    options.setdefault("dsn", "http://key@example.com/1")
    options.setdefault("integrations", [PyMongoIntegration()])
    tripwire.init(transport=memory, default_integrations=False, **options)
    return memory


@pytest.fixture
def client(mongo: MongoServer) -> Iterator[Any]:
    """A MongoClient made after set-up (pymongo copies the global listeners then)."""
    init()
    mongo_client: Any = pymongo.MongoClient("127.0.0.1", mongo.port, serverSelectionTimeoutMS=10000)
    yield mongo_client
    mongo_client.close()


def db_spans(memory: MemoryTransport) -> list[dict[str, Any]]:
    (transaction,) = memory.transactions
    return [s for s in transaction["spans"] if s["origin"] == "auto.db.pymongo"]


def query_crumbs(memory: MemoryTransport) -> list[dict[str, Any]]:
    (event,) = memory.events
    return [c for c in event["breadcrumbs"]["values"] if c["category"] == "query"]


def test_commands_get_spans_and_breadcrumbs_without_their_values(
    client: Any, mongo: MongoServer
) -> None:
    memory = init(traces_sample_rate=1.0)
    orders = client.shop.orders
    with tripwire.start_transaction(name="tx") as transaction:
        orders.insert_one({"email": "jane@example.com", "qty": 2})
        assert [d["qty"] for d in orders.find({"email": "jane@example.com"})] == [2]
        orders.delete_many({"email": "jane@example.com"})
        tripwire.capture_message("after")

    insert, find, delete = db_spans(memory)
    assert json.loads(insert["description"]) == {
        "insert": "orders",
        "ordered": True,
        "documents": [{"email": "%s", "qty": "%s", "_id": "%s"}],
    }
    assert json.loads(find["description"]) == {"find": "orders", "filter": {"email": "%s"}}
    assert json.loads(delete["description"]) == {
        "delete": "orders",
        "ordered": True,
        "deletes": "%s",
    }
    assert "jane" not in json.dumps(memory.transactions) + json.dumps(memory.events)
    port = mongo.port
    for span, operation in ((insert, "insert"), (find, "find"), (delete, "delete")):
        assert span["op"] == "db"
        assert span["status"] == "ok"
        assert span["parent_span_id"] == transaction.span_id
        expected = {
            "db.name": "shop",
            "db.system": "mongodb",
            "db.driver.name": "pymongo",
            "db.operation": operation,
            "db.mongodb.collection": "orders",
            "net.peer.name": "127.0.0.1",
            "net.peer.port": str(port),
        }
        assert span["tags"] == {**expected, "status": "ok"}
        data = {k: v for k, v in span["data"].items() if not k.startswith("thread.")}
        ids = data.pop("operation_ids")
        assert set(ids) == {"operation", "request", "session"}
        assert list(data.items()) == [
            *expected.items(),
            ("server.address", "127.0.0.1"),
            ("server.port", port),
        ]
    crumbs = query_crumbs(memory)
    assert [(c["type"], c["message"]) for c in crumbs] == [
        ("db", s["description"]) for s in (insert, find, delete)
    ]
    assert crumbs[0]["data"]["db.operation"] == "insert"


def test_with_send_default_pii_the_values_are_sent(client: Any) -> None:
    memory = init(traces_sample_rate=1.0, send_default_pii=True)
    with tripwire.start_transaction(name="tx"):
        client.shop.people.insert_one({"email": "jane@example.com"})
        list(client.shop.people.find({"email": "jane@example.com"}).limit(1))
        tripwire.capture_message("after")
    insert, find = db_spans(memory)
    assert json.loads(insert["description"])["documents"][0]["email"] == "jane@example.com"
    assert json.loads(find["description"])["filter"] == {"email": "jane@example.com"}
    assert json.loads(find["description"])["limit"] == 1
    assert "lsid" not in find["description"] and "$db" not in find["description"]


def test_a_failed_command_ends_its_span_internal_error(client: Any) -> None:
    memory = init(traces_sample_rate=1.0)
    with tripwire.start_transaction(name="tx"):
        # The fake has no aggregate: pymongo reports the command as failed.
        with pytest.raises(pymongo.errors.OperationFailure):
            list(client.shop.orders.aggregate([{"$match": {"email": "x"}}, {"$limit": 1}]))
        tripwire.capture_message("after")
    (span,) = db_spans(memory)
    assert span["status"] == "internal_error"
    assert json.loads(span["description"])["pipeline"] == [
        {"$match": {"email": "%s"}},
        {"$limit": 1},
    ]


def test_a_span_is_the_active_one_while_its_command_runs(client: Any) -> None:
    memory = init(traces_sample_rate=1.0)
    seen: list[Any] = []

    class Spy(monitoring.CommandListener):  # type: ignore[misc]
        def started(self, event: Any) -> None:
            seen.append((event.command_name, tripwire.get_current_scope().span))

        def succeeded(self, event: Any) -> None:
            pass

        def failed(self, event: Any) -> None:
            pass

    spied: Any = pymongo.MongoClient(client.address[0], client.address[1], event_listeners=[Spy()])
    with tripwire.start_transaction(name="tx") as transaction:
        spied.admin.command("ping")
        assert tripwire.get_current_scope().span is transaction
    spied.close()
    (span,) = db_spans(memory)
    active = [s for name, s in seen if name == "ping"]
    assert [s.span_id for s in active] == [span["span_id"]]


def test_outside_a_transaction_only_breadcrumbs(client: Any) -> None:
    memory = init(traces_sample_rate=1.0)
    client.admin.command("ping")
    tripwire.capture_message("after")
    assert memory.transactions == []
    (crumb,) = query_crumbs(memory)
    assert crumb["message"] == '{"ping": "%s"}'


def test_inactive_without_the_integration_and_reset_unregisters(client: Any) -> None:
    memory = init(traces_sample_rate=1.0, integrations=[])
    with tripwire.start_transaction(name="tx"):
        client.admin.command("ping")
        tripwire.capture_message("after")
    assert db_spans(memory) == []
    assert query_crumbs(memory) == []
    kinds = [type(lst).__name__ for lst in monitoring._LISTENERS.command_listeners]
    assert "CommandTracer" in kinds
    reset()
    kinds = [type(lst).__name__ for lst in monitoring._LISTENERS.command_listeners]
    assert "CommandTracer" not in kinds


_SCRIPT = """
import warnings
import pymongo
from sentry_sdk.integrations.pymongo import PyMongoIntegration

warnings.simplefilter("ignore", DeprecationWarning)  # send_default_pii, in both SDKs
sentry_sdk.init(
    dsn="https://key@o1.ingest.sentry.io/1",
    transport=KEEP,
    traces_sample_rate=1.0,
    default_integrations=False,
    integrations=[PyMongoIntegration()],
    send_default_pii={pii},
)
client = pymongo.MongoClient("127.0.0.1", {port}, serverSelectionTimeoutMS=10000)
coll = client.diff{pii}.items
with sentry_sdk.start_transaction(name="tx", op="test"):
    coll.insert_many([{{"_id": 1, "a": "x"}}, {{"_id": 2, "a": "y"}}])
    list(coll.find({{"a": "x"}}, {{"_id": 0}}).limit(1))
    coll.delete_one({{"a": "y"}})
    try:
        list(coll.aggregate([{{"$match": {{"a": "x"}}}}]))
    except pymongo.errors.OperationFailure:
        pass
    client.diff{pii}.drop_collection("items")
    sentry_sdk.capture_message("after")
finish()
client.close()
"""


def _shape(found: dict[str, Any]) -> dict[str, Any]:
    (transaction,) = of_type(found, "transaction")
    spans = [
        {
            "op": s["op"],
            "description": s["description"],
            "origin": s["origin"],
            "status": s.get("status"),
            "tags": s.get("tags"),
            "data": [
                (k, sorted(v) if k == "operation_ids" else v)
                for k, v in s["data"].items()
                if not k.startswith("thread.")
            ],
        }
        for s in transaction["spans"]
    ]
    (event,) = of_type(found, "event")
    crumbs = [
        {k: v for k, v in c.items() if k != "timestamp"} for c in event["breadcrumbs"]["values"]
    ]
    return {"spans": spans, "crumbs": crumbs}


@pytest.mark.parametrize("pii", [False, True])
def test_same_as_sentry_sdk(mongo: MongoServer, tmp_path: Path, pii: bool) -> None:
    sentry, ours = run_both(_SCRIPT.format(port=mongo.port, pii=pii), tmp_path)
    expected, found = _shape(sentry), _shape(ours)
    assert found["spans"] == expected["spans"]
    assert found["crumbs"] == expected["crumbs"]
    assert [s["data"][3][1] for s in found["spans"]] == [
        "insert",
        "find",
        "delete",
        "aggregate",
        "drop",
    ]
