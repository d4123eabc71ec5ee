"""The socket integration: real connections to a listening socket on 127.0.0.1."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import _side_by_side as side
import pytest
from _receiver import Receiver

import tripwire
from tripwire.integrations.socket import SocketIntegration
from tripwire.testing import MemoryTransport, reset

BAD_SERVICE = "no-such-service-xyz"  # fails in the resolver at once, without the network


@pytest.fixture
def port() -> Iterator[int]:
    """A listening TCP socket on 127.0.0.1 (connections wait in its backlog); closed after."""
    server = socket.socket()
    try:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        yield server.getsockname()[1]
    finally:
        server.close()


def init(**options: Any) -> MemoryTransport:
    memory = MemoryTransport()
    tripwire.init(
        transport=memory,
        traces_sample_rate=1.0,
        integrations=[SocketIntegration()],
        default_integrations=False,
        **options,
    )
    return memory


def spans(memory: MemoryTransport) -> list[dict[str, Any]]:
    (transaction,) = memory.transactions
    found: list[dict[str, Any]] = transaction["spans"]
    return found


def test_connection_and_dns_spans(port: int) -> None:
    memory = init()
    with tripwire.start_transaction(name="tx", op="test") as transaction:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        socket.getaddrinfo("localhost", port, proto=socket.IPPROTO_TCP)
    connect, nested, dns = spans(memory)
    assert connect["op"] == "socket.connection"
    assert connect["description"] == f"127.0.0.1:{port}"
    assert connect["origin"] == "auto.socket.socket"
    assert connect["parent_span_id"] == transaction.span_id
    data = connect["data"]
    assert (data["address"], data["timeout"], data["source_address"]) == (
        ["127.0.0.1", port],
        5,
        None,
    )
    # The lookup create_connection makes is a child of the connection.
    assert nested["op"] == "socket.dns"
    assert nested["parent_span_id"] == connect["span_id"]
    assert (nested["data"]["host"], nested["data"]["port"]) == ("127.0.0.1", port)
    assert dns["description"] == f"localhost:{port}"
    assert dns["parent_span_id"] == transaction.span_id
    assert "status" not in connect and "status" not in dns


def test_failed_lookup_and_connection_end_with_internal_error(port: int) -> None:
    memory = init()
    with tripwire.start_transaction(name="tx", op="test"):
        with pytest.raises(OSError):
            socket.getaddrinfo("127.0.0.1", BAD_SERVICE)
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", BAD_SERVICE))
    found = spans(memory)
    assert [(s["op"], s.get("status")) for s in found] == [
        ("socket.dns", "internal_error"),
        ("socket.connection", "internal_error"),
        ("socket.dns", "internal_error"),
    ]


def test_outside_a_transaction_nothing_is_sent(port: int) -> None:
    memory = init()
    socket.create_connection(("127.0.0.1", port)).close()
    tripwire.flush()
    assert memory.envelopes == []


def test_the_sdks_own_sends_are_no_spans_of_the_users_transaction(rx: Receiver) -> None:
    # The transport's thread starts at the first capture, here inside a transaction. Had
    # it taken that transaction's scope with it (the threading integration hands scopes
    # to new threads), its lookups and connections would be spans of the user's work.
    tripwire.init(
        dsn=rx.dsn(host="localhost"), traces_sample_rate=1.0, integrations=[SocketIntegration()]
    )
    with tripwire.start_transaction(name="tx", op="test"):
        tripwire.capture_message("first")
        tripwire.flush()  # sent while the transaction is open
    tripwire.flush()
    (transaction,) = rx.items("transaction")
    assert transaction.payload.json["spans"] == []
    assert [e["message"] for e in rx.events()] == ["first"]


def test_reset_restores_socket_and_no_client_costs_nothing(port: int) -> None:
    originals = socket.create_connection, socket.getaddrinfo
    memory = init()
    assert socket.create_connection is not originals[0]
    tripwire.get_client().close()
    tripwire.init(transport=MemoryTransport(), default_integrations=False, traces_sample_rate=1.0)
    with tripwire.start_transaction(name="tx", op="test"):
        socket.create_connection(("127.0.0.1", port)).close()
    assert memory.transactions == []
    assert tripwire.get_client().transport.transactions[0]["spans"] == []  # type: ignore[union-attr]
    reset()
    assert (socket.create_connection, socket.getaddrinfo) == originals


_SCRIPT = """
import socket
from sentry_sdk.integrations.socket import SocketIntegration

server = socket.socket()
server.bind(("127.0.0.1", 0))
server.listen(8)
port = server.getsockname()[1]
sentry_sdk.init(
    transport=KEEP, traces_sample_rate=1.0, integrations=[SocketIntegration()],
    default_integrations=False,
)
try:
    with sentry_sdk.start_transaction(name="tx", op="test"):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        socket.create_connection(("127.0.0.1", port)).close()
        socket.getaddrinfo("localhost", "http")
        try:
            socket.create_connection(("127.0.0.1", "no-such-service-xyz"))
        except OSError:
            NOTES.append("failed")
finally:
    server.close()
NOTES.append(port)
finish()
"""


def _normal(value: Any, port: int) -> Any:
    """The port and object addresses (the default timeout's repr) made constant."""
    if isinstance(value, list):
        return [_normal(item, port) for item in value]
    if value == port:
        return "PORT"
    if isinstance(value, str):
        return side._ADDRESS.sub(" at 0x?>", value).replace(str(port), "PORT")
    return value


def _shape(found: dict[str, Any]) -> list[Any]:
    port = found["notes"][-1]
    (transaction,) = side.of_type(found, "transaction")
    ids: dict[str, Any] = {transaction["contexts"]["trace"]["span_id"]: "root"}
    ids.update({span["span_id"]: i for i, span in enumerate(transaction["spans"])})
    return [
        {
            "op": span["op"],
            "description": _normal(span["description"], port),
            "origin": span["origin"],
            "status": span.get("status"),
            "tags": span.get("tags"),
            "parent": ids.get(span["parent_span_id"]),
            "data": {
                key: _normal(value, port)
                for key, value in span["data"].items()
                if not key.startswith("thread.")
            },
        }
        for span in transaction["spans"]
    ]


def test_same_as_sentry_sdk(tmp_path: Path) -> None:
    sentry, ours = side.run_both(_SCRIPT, tmp_path)
    assert ours["notes"][0] == sentry["notes"][0] == "failed"
    assert _shape(ours) == _shape(sentry), side.dumps([_shape(ours), _shape(sentry)])
    assert len(_shape(ours)) == 7
