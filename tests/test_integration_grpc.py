"""The grpc integration: real sync and aio servers and channels on 127.0.0.1.

Servers record the metadata each call brought; what the SDK sent is read from a real
loopback receiver (`rx`). Handlers are generic (bytes in, bytes out), so no generated
protobuf code is needed. The differential test runs one script on sentry_sdk 2.75 and
on tripwire, each in its own interpreter (both patch grpc for the whole process).
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _receiver import Receiver
from _side_by_side import dumps, of_type, run_both

import tripwire
from tripwire.integrations.grpc import GRPCIntegration
from tripwire.integrations.grpc.aio import ServerInterceptor as AioServerInterceptor
from tripwire.integrations.grpc.client import ClientInterceptor
from tripwire.testing import reset

if TYPE_CHECKING:
    import grpc
    import grpc.aio


@pytest.fixture(autouse=True, scope="module")
def _grpc() -> None:
    """gRPC is imported when the module's tests start, not at collection (every xdist
    worker collects every module; tests/_lazy.py)."""
    global grpc
    import grpc
    import grpc.aio


HELLO = "/pkg.Svc/Hello"
STREAM = "/pkg.Svc/Stream"


async def _aio_channel() -> Any:
    return grpc.aio.insecure_channel("127.0.0.1:9")


@pytest.fixture(scope="module", autouse=True)
def _grpc_runtime() -> Iterator[None]:
    """Keep grpc's process-wide pollers up for the whole module.

    grpc starts them (threads, epoll and eventfd descriptors) with its first channel or
    server and stops them in the background after the last one closes; a test would
    otherwise see that late clean-up of the previous test's as its own leak. Two idle
    channels (never used, so never connected) hold them.
    """
    idle = grpc.insecure_channel("127.0.0.1:9")
    loop = asyncio.new_event_loop()
    aio_idle = loop.run_until_complete(_aio_channel())
    yield
    loop.run_until_complete(aio_idle.close())
    loop.close()
    idle.close()


def _same(data: bytes) -> bytes:
    return data


def _init(rx: Receiver, **options: Any) -> None:
    options.setdefault("integrations", [GRPCIntegration()])
    tripwire.init(dsn=rx.dsn(), default_integrations=False, **options)


def _sent(rx: Receiver, item_type: str) -> list[dict[str, Any]]:
    tripwire.flush()
    return [item.payload.json for item in rx.items(item_type)]


def _named(transactions: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    """The transactions called `name` (neighbouring envelopes may arrive in either order)."""
    return [t for t in transactions if t["transaction"] == name]


def _spans(transaction: dict[str, Any], op: str = "grpc.client") -> list[dict[str, Any]]:
    return [span for span in transaction["spans"] if span["op"] == op]


def _data(span: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in span["data"].items() if not k.startswith("thread.")}


# -- sync ------------------------------------------------------------------------------------


def _hello(request: bytes, context: Any, seen: list[dict[str, Any]]) -> bytes:
    seen.append(dict(context.invocation_metadata()))
    if request == b"boom":
        raise ValueError("boom")
    if request == b"abort":
        context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
    return b"hi " + request


def _stream(request: bytes, context: Any, seen: list[dict[str, Any]]) -> Iterator[bytes]:
    seen.append(dict(context.invocation_metadata()))
    yield b"a"
    yield b"b"


@contextmanager
def sync_server(*args: Any, **kwargs: Any) -> Iterator[tuple[int, list[dict[str, Any]]]]:
    """A started sync server on 127.0.0.1 (made after `init`, so it is patched)."""
    seen: list[dict[str, Any]] = []
    handlers = grpc.method_handlers_generic_handler(
        "pkg.Svc",
        {
            "Hello": grpc.unary_unary_rpc_method_handler(
                lambda r, c: _hello(r, c, seen), _same, _same
            ),
            "Stream": grpc.unary_stream_rpc_method_handler(
                lambda r, c: _stream(r, c, seen), _same, _same
            ),
        },
    )
    pool = ThreadPoolExecutor(2)
    server = grpc.server(pool, *args, **kwargs)
    server.add_generic_rpc_handlers((handlers,))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        yield port, seen
    finally:
        server.stop(None).wait()
        pool.shutdown()


@contextmanager
def sync_channel(port: int) -> Iterator[Any]:
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    try:
        yield channel
    finally:
        channel.close()


def test_sync_client_span_metadata_and_server_transaction(rx: Receiver) -> None:
    _init(rx, traces_sample_rate=1.0)
    with sync_server() as (port, seen), sync_channel(port) as channel:
        with tripwire.start_transaction(name="client-tx", op="test") as transaction:
            assert channel.unary_unary(HELLO, _same, _same)(b"x") == b"hi x"
            assert list(channel.unary_stream(STREAM, _same, _same)(b"s")) == [b"a", b"b"]

    transactions = _sent(rx, "transaction")
    assert len(transactions) == 2  # no transaction for a streaming handler, as sentry_sdk
    (hello_tx,) = _named(transactions, HELLO)
    (client_tx,) = _named(transactions, "client-tx")
    unary, streaming = _spans(client_tx)
    assert unary["description"] == f"unary unary call to {HELLO}"
    assert streaming["description"] == f"unary stream call to {STREAM}"
    for span in (unary, streaming):
        assert span["origin"] == "auto.grpc.grpc"
        assert span["parent_span_id"] == transaction.span_id
        assert "status" not in span
    assert _data(unary) == {"type": "unary unary", "method": HELLO, "code": "OK"}
    assert _data(streaming) == {"type": "unary stream", "method": STREAM}

    # The metadata each call brought: the trace, with the call's span as parent.
    for metadata, span in zip(seen, (unary, streaming)):
        assert metadata["sentry-trace"] == f"{transaction.trace_id}-{span['span_id']}-1"
        assert metadata["baggage"].startswith(f"sentry-trace_id={transaction.trace_id},")
        assert "sentry-transaction=client-tx" in metadata["baggage"]

    # The server's transaction continues the trace, under the client's span.
    trace = hello_tx["contexts"]["trace"]
    assert hello_tx["transaction"] == HELLO
    assert hello_tx["transaction_info"] == {"source": "custom"}
    assert (trace["op"], trace["origin"]) == ("grpc.server", "auto.grpc.grpc")
    assert (trace["trace_id"], trace["parent_span_id"]) == (transaction.trace_id, unary["span_id"])
    assert "status" not in trace


def test_sync_handler_error_and_abort(rx: Receiver) -> None:
    _init(rx, traces_sample_rate=1.0)
    with sync_server() as (port, _), sync_channel(port) as channel:
        call = channel.unary_unary(HELLO, _same, _same)
        with tripwire.start_transaction(name="client-tx"):
            for request, code in ((b"boom", "UNKNOWN"), (b"abort", "NOT_FOUND")):
                with pytest.raises(grpc.RpcError) as raised:
                    call(request)
                assert raised.value.code().name == code

    transactions = _sent(rx, "transaction")
    server_txs, (client_tx,) = _named(transactions, HELLO), _named(transactions, "client-tx")
    assert [t["contexts"]["trace"]["status"] for t in server_txs] == ["internal_error"] * 2
    assert [_data(s)["code"] for s in _spans(client_tx)] == ["UNKNOWN", "NOT_FOUND"]
    # As sentry_sdk: a sync handler's error is not captured by the interceptor (grpc
    # logs it; the logging integration, off here, reports that record).
    assert _sent(rx, "event") == []


def test_without_tracing_the_propagation_context_is_sent(rx: Receiver) -> None:
    _init(rx)
    with sync_server() as (port, seen), sync_channel(port) as channel:
        channel.unary_unary(HELLO, _same, _same)(b"x")
    trace_id = tripwire.get_current_scope().get_trace_context()["trace_id"]
    (metadata,) = seen
    assert metadata["sentry-trace"].startswith(trace_id + "-")
    assert metadata["sentry-trace"].count("-") == 1  # no sampling decision
    assert _sent(rx, "transaction") == []


def test_inactive_without_the_integration_and_reset_undoes_the_patch(rx: Receiver) -> None:
    originals = (grpc.insecure_channel, grpc.intercept_channel, grpc.server, grpc.aio.server)
    aio_originals = (grpc.aio.insecure_channel, grpc.aio.secure_channel, grpc.secure_channel)
    _init(rx, traces_sample_rate=1.0)
    assert grpc.insecure_channel is not originals[0]
    assert grpc.aio.insecure_channel is not aio_originals[0]
    # A client without the integration: channels and servers are grpc's own.
    tripwire.get_client().close()
    _init(rx, traces_sample_rate=1.0, integrations=[])
    with sync_server() as (port, seen), sync_channel(port) as channel:
        with tripwire.start_transaction(name="tx"):
            channel.unary_unary(HELLO, _same, _same)(b"x")
    assert "sentry-trace" not in seen[0]
    (transaction,) = _sent(rx, "transaction")
    assert transaction["transaction"] == "tx"
    assert transaction["spans"] == []
    reset()
    assert (grpc.insecure_channel, grpc.intercept_channel, grpc.server, grpc.aio.server) == (
        originals
    )
    assert (grpc.aio.insecure_channel, grpc.aio.secure_channel, grpc.secure_channel) == (
        aio_originals
    )


def test_one_interceptor_per_channel_and_by_hand(rx: Receiver) -> None:
    _init(rx, traces_sample_rate=1.0)
    with sync_server() as (port, seen), sync_channel(port) as channel:
        # Intercepting a channel the integration made adds no second interceptor.
        again = grpc.intercept_channel(channel, ClientInterceptor())
        with tripwire.start_transaction(name="tx"):
            again.unary_unary(HELLO, _same, _same)(b"x")
    (transaction,) = _named(_sent(rx, "transaction"), "tx")
    assert len(_spans(transaction)) == 1
    assert len([v for k, v in seen[0].items() if k == "sentry-trace"]) == 1


def test_a_server_interceptor_given_by_hand_is_kept(rx: Receiver) -> None:
    from tripwire.integrations.grpc.server import ServerInterceptor

    _init(rx, traces_sample_rate=1.0)
    named = ServerInterceptor(find_name=lambda context: "custom-name")
    # `interceptors` given positionally (handlers, interceptors).
    with sync_server(None, [named]) as (port, _), sync_channel(port) as channel:
        channel.unary_unary(HELLO, _same, _same)(b"x")
    # One transaction per call, named by the hand-made interceptor (sentry_sdk replaces
    # it with a default one, losing `find_name`).
    assert [t["transaction"] for t in _sent(rx, "transaction")] == ["custom-name"]


# -- aio -------------------------------------------------------------------------------------


@asynccontextmanager
async def aio_server(**kwargs: Any) -> AsyncIterator[tuple[int, list[dict[str, Any]]]]:
    seen: list[dict[str, Any]] = []

    async def hello(request: bytes, context: Any) -> bytes:
        seen.append(dict(context.invocation_metadata()))
        if request == b"boom":
            raise ValueError("aio boom")
        if request == b"abort":
            await context.abort(grpc.StatusCode.NOT_FOUND, "no such thing")
        return b"hi " + request

    async def stream(request: bytes, context: Any) -> AsyncIterator[bytes]:
        seen.append(dict(context.invocation_metadata()))
        yield b"a"
        yield b"b"

    handlers = grpc.method_handlers_generic_handler(
        "pkg.Svc",
        {
            "Hello": grpc.unary_unary_rpc_method_handler(hello, _same, _same),
            "Stream": grpc.unary_stream_rpc_method_handler(stream, _same, _same),
        },
    )
    server = grpc.aio.server(**kwargs)
    server.add_generic_rpc_handlers((handlers,))
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        yield port, seen
    finally:
        await server.stop(None)


def test_aio_client_span_metadata_server_transaction_and_errors(rx: Receiver) -> None:
    _init(rx, traces_sample_rate=1.0)

    async def main() -> tuple[Any, list[dict[str, Any]], list[str]]:
        codes = []
        async with aio_server() as (port, seen):
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                call = channel.unary_unary(HELLO, _same, _same)
                with tripwire.start_transaction(name="aio-tx") as transaction:
                    assert await call(b"x") == b"hi x"
                    stream = channel.unary_stream(STREAM, _same, _same)(b"s")
                    assert [r async for r in stream] == [b"a", b"b"]
                    for request in (b"boom", b"abort"):
                        with pytest.raises(grpc.aio.AioRpcError) as raised:
                            await call(request)
                        codes.append(raised.value.code().name)
        return transaction, seen, codes

    transaction, seen, codes = asyncio.run(main())
    assert codes == ["UNKNOWN", "NOT_FOUND"]
    transactions = _sent(rx, "transaction")
    server_txs, (client_tx,) = _named(transactions, HELLO), _named(transactions, "aio-tx")
    unary, streaming, boom, abort = _spans(client_tx)
    assert unary["description"] == f"unary unary call to {HELLO}"
    assert _data(unary) == {"type": "unary unary", "method": HELLO, "code": "OK"}
    assert _data(streaming) == {"type": "unary stream", "method": STREAM}
    assert [_data(s)["code"] for s in (boom, abort)] == ["UNKNOWN", "NOT_FOUND"]
    for metadata, span in zip(seen, (unary, streaming, boom, abort)):
        assert metadata["sentry-trace"] == f"{transaction.trace_id}-{span['span_id']}-1"
        assert "sentry-transaction=aio-tx" in metadata["baggage"]

    # One server transaction per unary call, each under the client span of its call.
    by_parent = {t["contexts"]["trace"]["parent_span_id"]: t for t in server_txs}
    assert len(server_txs) == 3
    traces = [by_parent[s["span_id"]]["contexts"]["trace"] for s in (unary, boom, abort)]
    assert {t["trace_id"] for t in traces} == {transaction.trace_id}
    assert [t.get("status") for t in traces] == [None, "internal_error", "internal_error"]

    # The handler's error is captured, in the server's transaction; an abort is not.
    (event,) = _sent(rx, "event")
    (exception,) = event["exception"]["values"]
    assert (exception["type"], exception["value"]) == ("ValueError", "aio boom")
    assert exception["mechanism"] == {"type": "grpc", "handled": False}
    assert event["transaction"] == HELLO
    assert event["contexts"]["trace"]["span_id"] == traces[1]["span_id"]


def test_aio_patches_fall_through_without_the_integration(rx: Receiver) -> None:
    _init(rx, traces_sample_rate=1.0, integrations=[])
    GRPCIntegration.setup_once()  # patched, but the active client lacks the integration

    async def main() -> list[dict[str, Any]]:
        async with aio_server(interceptors=[AioServerInterceptor()]) as (port, seen):
            async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
                with tripwire.start_transaction(name="tx"):
                    await channel.unary_unary(HELLO, _same, _same)(b"x")
        return seen

    (metadata,) = asyncio.run(main())
    assert "sentry-trace" not in metadata
    # The server interceptor given by hand works whatever the client's integrations.
    names = sorted(t["transaction"] for t in _sent(rx, "transaction"))
    assert names == [HELLO, "tx"]


def test_import_tripwire_does_not_import_grpc() -> None:
    code = (
        "import sys, tripwire\n"
        "from tripwire.integrations.grpc import GRPCIntegration\n"
        "tripwire.init(dsn='http://k@example.com/1', integrations=[GRPCIntegration()],"
        " default_integrations=False)\n"
        "assert 'grpc' not in sys.modules\n"
        "import grpc\n"
        "assert getattr(grpc.insecure_channel, '__tripwire_grpc__', False)\n"
        "assert getattr(grpc.aio.server, '__tripwire_grpc__', False)\n"
        "from tripwire.integrations.grpc import ClientInterceptor, ServerInterceptor\n"
        "from tripwire.integrations.grpc.aio.client import SentryUnaryUnaryClientInterceptor\n"
        "from tripwire.integrations.grpc.consts import SPAN_ORIGIN\n"
    )
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr


# -- side by side ----------------------------------------------------------------------------

# sentry_sdk's grpc modules import protobuf's Message (for annotations only); protobuf is
# not installed here, so both runs get a stand-in module.
_SCRIPT = """
import asyncio
import types
from concurrent.futures import ThreadPoolExecutor

message = types.ModuleType("google.protobuf.message")
message.Message = type("Message", (), {})
sys.modules.update({
    "google": types.ModuleType("google"),
    "google.protobuf": types.ModuleType("google.protobuf"),
    "google.protobuf.message": message,
})

import grpc
import grpc.aio
from sentry_sdk.integrations.grpc import GRPCIntegration

sentry_sdk.init(
    dsn="http://key@example.com/1", transport=KEEP, traces_sample_rate=1.0,
    integrations=[GRPCIntegration()], default_integrations=False,
)
same = lambda data: data


def hello(request, context):
    NOTES.append({k: v for k, v in context.invocation_metadata() if k != "user-agent"})
    if request == b"boom":
        raise ValueError("boom")
    if request == b"abort":
        context.abort(grpc.StatusCode.NOT_FOUND, "nf")
    return b"hi"


def stream(request, context):
    NOTES.append({k: v for k, v in context.invocation_metadata() if k != "user-agent"})
    yield b"a"


async def ahello(request, context):
    NOTES.append({k: v for k, v in context.invocation_metadata() if k != "user-agent"})
    if request == b"boom":
        raise ValueError("aio boom")
    if request == b"abort":
        await context.abort(grpc.StatusCode.NOT_FOUND, "nf")
    return b"hi"


async def astream(request, context):
    NOTES.append({k: v for k, v in context.invocation_metadata() if k != "user-agent"})
    yield b"a"


def handlers(unary, streaming):
    return grpc.method_handlers_generic_handler("pkg.Svc", {
        "Hello": grpc.unary_unary_rpc_method_handler(unary, same, same),
        "Stream": grpc.unary_stream_rpc_method_handler(streaming, same, same),
    })


pool = ThreadPoolExecutor(2)
server = grpc.server(pool)
server.add_generic_rpc_handlers((handlers(hello, stream),))
port = server.add_insecure_port("127.0.0.1:0")
server.start()
channel = grpc.insecure_channel("127.0.0.1:%d" % port)
call = channel.unary_unary("/pkg.Svc/Hello", same, same)
call(b"outside")
with sentry_sdk.start_transaction(name="sync-tx", op="test"):
    call(b"x")
    list(channel.unary_stream("/pkg.Svc/Stream", same, same)(b"s"))
    for request in (b"boom", b"abort"):
        try:
            call(request)
        except grpc.RpcError:
            pass
channel.close()
server.stop(None).wait()
pool.shutdown()


async def main():
    aserver = grpc.aio.server()
    aserver.add_generic_rpc_handlers((handlers(ahello, astream),))
    aport = aserver.add_insecure_port("127.0.0.1:0")
    await aserver.start()
    async with grpc.aio.insecure_channel("127.0.0.1:%d" % aport) as achannel:
        acall = achannel.unary_unary("/pkg.Svc/Hello", same, same)
        with sentry_sdk.start_transaction(name="aio-tx", op="test"):
            await acall(b"x")
            [r async for r in achannel.unary_stream("/pkg.Svc/Stream", same, same)(b"s")]
            for request in (b"boom", b"abort"):
                try:
                    await acall(request)
                except grpc.RpcError:
                    pass
    await aserver.stop(None)


asyncio.run(main())
finish()
"""

_ID = re.compile(r"\b[0-9a-f]{16}\b|\b[0-9a-f]{32}\b")


def _shape(found: dict[str, Any]) -> dict[str, Any]:
    """Transactions, spans, events and metadata, with ids replaced by their role."""
    roles: dict[str, str] = {}

    def role(value: Any) -> Any:
        if not isinstance(value, str):
            return value
        return _ID.sub(lambda m: roles.setdefault(m.group(), f"<{len(roles)}>"), value)

    def span_shape(span: dict[str, Any]) -> dict[str, Any]:
        return {
            "ids": [role(span.get(k)) for k in ("trace_id", "span_id", "parent_span_id")],
            "op": span.get("op"),
            "description": span.get("description"),
            "origin": span.get("origin"),
            "status": span.get("status"),
            "data": _data(span),
        }

    transactions = [
        {
            "name": t["transaction"],
            "info": t.get("transaction_info"),
            "trace": span_shape(t["contexts"]["trace"]),
            "spans": [span_shape(s) for s in t["spans"]],
        }
        # By start: the order they finish (and arrive) in varies under load.
        for t in sorted(of_type(found, "transaction"), key=lambda t: t["start_timestamp"])
    ]
    events = [
        {
            "transaction": e.get("transaction"),
            "trace": role(e["contexts"]["trace"]["span_id"]),
            "exception": [
                (v["type"], v["value"], v.get("mechanism")) for v in e["exception"]["values"]
            ],
        }
        for e in of_type(found, "event")
    ]
    # sample_rand differs between two runs; sentry_sdk takes public_key from its
    # transport's DSN, and the harness's transport has none. The rest must agree.
    metadata = [
        {
            "sentry-trace": role(note.get("sentry-trace")),
            "baggage": sorted(
                role(part)
                for part in (note.get("baggage") or "").split(",")
                if not part.startswith(("sentry-sample_rand=", "sentry-public_key="))
            ),
        }
        for note in found["notes"]
    ]
    return {"transactions": transactions, "events": events, "metadata": metadata}


def test_same_as_sentry_sdk(tmp_path: Path) -> None:
    sentry, ours = run_both(_SCRIPT, tmp_path)
    expected, found = _shape(sentry), _shape(ours)
    assert found["transactions"] == expected["transactions"], dumps(found["transactions"])
    assert found["events"] == expected["events"], dumps(found["events"])
    assert found["metadata"] == expected["metadata"], dumps(found["metadata"])
    assert len(found["transactions"]) == 9  # sync: 4 server + client; aio: 3 server + client
    assert len(found["events"]) == 1
