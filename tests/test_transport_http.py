"""HttpTransport end to end, against a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any, Callable

import pytest
from _receiver import (
    Receiver,
    Reply,
    Request,
    TlsFiles,
    make_envelope,
    make_transaction,
    tls_unavailable,
)
from _socks import Socks5Proxy

from tripwire.consts import USER_AGENT
from tripwire.envelope import Envelope
from tripwire.options import build_options
from tripwire.transport import _http_transport as http_module
from tripwire.transport._http_transport import HttpTransport

Make = Callable[..., HttpTransport]


@pytest.fixture
def make(rx: Receiver, monkeypatch: pytest.MonkeyPatch) -> Iterator[Make]:
    # Retries back off for milliseconds, not seconds, in tests.
    monkeypatch.setattr(http_module, "BACKOFF_BASE", 0.001)
    made: list[HttpTransport] = []

    def factory(cls: type[HttpTransport] = HttpTransport, **options: Any) -> HttpTransport:
        options.setdefault("dsn", rx.dsn())
        transport = cls(build_options(**options))
        made.append(transport)
        return transport

    yield factory
    for transport in made:
        transport.kill()
        transport._worker.join(10)


def test_envelope_arrives_byte_for_byte_with_protocol_headers(rx: Receiver, make: Make) -> None:
    transport = make()
    envelope = make_envelope(message="héllo")
    transport.capture_envelope(envelope)
    transport.flush(10)
    (request,) = rx.wait_for(1)
    assert request.method == "POST"
    assert request.path == "/api/1/envelope/"
    assert request.body == envelope.serialize()
    assert request.headers["content-type"] == "application/x-sentry-envelope"
    assert request.headers["user-agent"] == USER_AGENT
    assert request.headers["x-sentry-auth"] == (
        f"Sentry sentry_key=public, sentry_version=7, sentry_client={USER_AGENT}"
    )
    assert request.headers["content-encoding"] in ("gzip", "br")
    assert transport._outcomes.snapshot() == {}


@pytest.mark.parametrize(
    ("experiments", "encoding"),
    [
        ({"transport_compression_algo": "gzip"}, "gzip"),
        ({"transport_compression_algo": "gzip", "transport_compression_level": 9}, "gzip"),
        ({"transport_compression_level": 0}, None),
        ({"transport_compression_algo": "zstd-from-the-future"}, None),
    ],
)
def test_compression_options(
    rx: Receiver, make: Make, experiments: dict[str, Any], encoding: str | None
) -> None:
    transport = make(_experiments=experiments)
    envelope = make_envelope()
    transport.capture_envelope(envelope)
    transport.flush(10)
    (request,) = rx.wait_for(1)
    assert request.headers.get("content-encoding") == encoding
    assert request.body == envelope.serialize()


def test_the_calling_thread_never_waits_for_the_network(rx: Receiver, make: Make) -> None:
    transport = make()
    rx.hold()  # the server takes the first request and answers nothing until released
    # If capture_envelope waited for the network, this loop would never end: the
    # watchdog would release the server after 20 s and the assertion would fail.
    watchdog = threading.Timer(20, rx.release)
    watchdog.start()
    try:
        for i in range(60):
            transport.capture_envelope(make_envelope("%032x" % i))
        rx.wait_for(1)
        assert not rx._released.is_set(), "capture_envelope blocked until the server answered"
    finally:
        watchdog.cancel()
        rx.release()
    transport.flush(10)
    assert len(rx.wait_for(60)) == 60
    assert sorted(e["event_id"] for e in rx.events()) == ["%032x" % i for i in range(60)]


def test_bare_429_limits_every_category_for_60s(rx: Receiver, make: Make) -> None:
    transport = make()
    rx.reply(Reply(429))
    transport.capture_envelope(make_envelope())
    transport.flush(10)
    assert not transport.is_healthy()
    limits = transport._delivery.ratelimits.snapshot()
    assert list(limits) == [None] and 59 < limits[None] <= 60
    transport.capture_envelope(make_envelope())
    transport.capture_envelope(make_transaction(spans=3))
    transport.flush(10)
    assert len(rx.requests) == 1  # nothing sent while limited, not even a client report
    # The 429'd envelope is counted by the server itself; what the SDK held back is ours.
    assert transport._outcomes.snapshot() == {
        ("ratelimit_backoff", "error"): 1,
        ("ratelimit_backoff", "transaction"): 1,
        ("ratelimit_backoff", "span"): 4,
    }


def test_retry_after_header(rx: Receiver, make: Make) -> None:
    transport = make()
    rx.reply(Reply(429, {"Retry-After": "7"}))
    transport.capture_envelope(make_envelope())
    transport.flush(10)
    assert 6 < transport._delivery.ratelimits.snapshot()[None] <= 7


def test_category_limit_on_a_200_drops_only_that_category(rx: Receiver, make: Make) -> None:
    transport = make()
    rx.reply(Reply(200, {"X-Sentry-Rate-Limits": "60:transaction;unknown_thing:key, 2.5:foo:org"}))
    transport.capture_envelope(make_envelope("%032x" % 1))
    transport.flush(10)
    transport.capture_envelope(make_transaction(spans=2))
    transport.capture_envelope(make_envelope("%032x" % 2))
    transport.flush(10)
    requests = rx.wait_for(3)
    assert [r.item_types for r in requests] == [["event"], ["event"], ["client_report"]]
    assert rx.discarded() == {
        ("ratelimit_backoff", "transaction"): 1,
        ("ratelimit_backoff", "span"): 3,
    }
    assert set(transport._delivery.ratelimits.snapshot()) == {"transaction"}


def test_413_is_counted_and_logged_as_an_error(
    rx: Receiver, make: Make, caplog: pytest.LogCaptureFixture
) -> None:
    transport = make()
    rx.reply(Reply(413))
    with caplog.at_level(logging.ERROR, logger="tripwire.errors"):
        transport.capture_envelope(make_envelope())
        transport.flush(10)
    assert any("413" in r.getMessage() for r in caplog.records if r.levelno == logging.ERROR)
    assert rx.discarded() == {("send_error", "error"): 1}


@pytest.mark.parametrize("status", [400, 403, 500, 503])
def test_http_errors_discard_and_count_send_error(rx: Receiver, make: Make, status: int) -> None:
    transport = make()
    rx.reply(Reply(status))
    transport.capture_envelope(make_envelope())
    transport.flush(10)
    requests = rx.wait_for(2)
    assert [r.item_types for r in requests] == [["event"], ["client_report"]]  # no retry
    assert rx.discarded() == {("send_error", "error"): 1}


@pytest.mark.parametrize("action", ["reset", "garbage", "close"])
def test_network_errors_are_retried(rx: Receiver, make: Make, action: str) -> None:
    transport = make()
    rx.reply(Reply(action=action))
    envelope = make_envelope()
    transport.capture_envelope(envelope)
    transport.flush(10)
    requests = rx.wait_for(2)
    assert [r.body for r in requests] == [envelope.serialize()] * 2
    assert transport._outcomes.snapshot() == {}


def test_network_errors_give_up_after_the_immediate_retry_while_a_flush_waits(
    rx: Receiver, make: Make
) -> None:
    # Reset twice (the immediate retry included) while a flush waits: the server
    # cannot be reached, so the entry is counted at once instead of retried until
    # the flush times out (see tests/test_hardening_sdk.py for the exit).
    transport = make()
    # The first answer waits until the flush is waiting (its callback runs then);
    # otherwise both attempts could fail before flush() is called, and the entry
    # would be retried as a flush-less failure is.
    flush_waits = threading.Event()
    rx.reply(Reply(action="reset", gate=flush_waits), Reply(action="reset"), Reply(action="reset"))
    transport.capture_envelope(make_envelope())
    transport.flush(10, lambda pending, timeout: flush_waits.set())
    requests = rx.wait_for(3)
    assert [r.item_types for r in requests] == [["event"]] * 2 + [["client_report"]]
    assert rx.discarded() == {("network_error", "error"): 1}


def test_server_down_flush_returns_and_kill_counts_the_rest(rx: Receiver, make: Make) -> None:
    transport = make()
    rx.down()
    for i in range(5):
        transport.capture_envelope(make_envelope("%032x" % i))
    transport.flush(0.5)
    transport.kill()
    transport._worker.join(10)
    assert sum(transport._outcomes.snapshot().values()) == 5
    assert set(transport._outcomes.snapshot()) <= {("network_error", "error")}
    rx.up()


def test_keeps_its_two_connections_alive(rx: Receiver, make: Make) -> None:
    transport = make(keep_alive=True, socket_options=None)
    for i in range(20):
        transport.capture_envelope(make_envelope("%032x" % i))
    transport.flush(10)
    assert sorted(r.envelope.headers["event_id"] for r in rx.wait_for(20)) == [
        "%032x" % i for i in range(20)
    ]
    assert rx.connections <= 2
    assert type(transport._delivery.http._backend).__name__ == "Connection"  # not urllib3


def test_one_connection_when_asked(rx: Receiver, make: Make) -> None:
    transport = make(_experiments={"transport_connections": 1})
    for i in range(20):
        transport.capture_envelope(make_envelope("%032x" % i))
    transport.flush(10)
    # One request at a time on one connection: they arrive in order.
    assert [r.envelope.headers["event_id"] for r in rx.wait_for(20)] == [
        "%032x" % i for i in range(20)
    ]
    assert rx.connections == 1


class _ShiftedTime:
    """Stands in for the `time` module of tripwire.transport.http: monotonic() + offset."""

    def __init__(self) -> None:
        self.offset = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.offset

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)


def _check_in(n: int) -> Envelope:
    env = Envelope()
    env.add_checkin({"check_in_id": "%032x" % n, "monitor_slug": "job", "status": "ok"})
    return env


def _queue_behind_a_held_request(
    rx: Receiver, transport: HttpTransport, *envelopes: Envelope
) -> threading.Event:
    """Queue `envelopes` while a first request is held; returns the gate of their answers.

    The first answer is let go once they are all queued, so the worker meets them
    together; each of their answers then waits for the returned gate.
    """
    first, rest = threading.Event(), threading.Event()
    rx.reply(Reply(gate=first), *(Reply(gate=rest) for _ in envelopes))
    # Queue the rest only once the worker has used the first request's wait (it would
    # otherwise, on a loaded machine, send one of them on the second lane then and hold
    # the other behind it).
    delivery = transport._delivery
    send, waited = delivery.send, threading.Event()

    def send_noting_the_wait(entry: Any, meanwhile: Any = None, lane: int = 0) -> Any:
        def noted() -> None:
            if meanwhile is not None:
                meanwhile()
            waited.set()

        return send(entry, noted, lane)

    delivery.send = send_noting_the_wait  # type: ignore[method-assign]
    transport.capture_envelope(make_envelope("f" * 32))
    rx.wait_for(1)
    waited.wait(10)
    delivery.send = send  # type: ignore[method-assign]
    for envelope in envelopes:
        transport.capture_envelope(envelope)
    first.set()
    return rest


def test_the_next_envelope_goes_out_on_a_second_connection_while_one_is_out(
    rx: Receiver, make: Make
) -> None:
    transport = make()
    gate = _queue_behind_a_held_request(
        rx, transport, make_envelope("%032x" % 1), make_envelope("%032x" % 2)
    )
    # Both are out before either is answered.
    assert sorted(r.envelope.headers["event_id"] for r in rx.wait_for(3)[1:]) == [
        "%032x" % 1,
        "%032x" % 2,
    ]
    gate.set()
    transport.flush(10)
    assert rx.connections == 2
    assert transport._outcomes.snapshot() == {}


def test_the_second_connection_rests_after_a_network_error(
    rx: Receiver, make: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The rest passes on a clock moved forward, not by sleeping through it.
    clock = _ShiftedTime()
    monkeypatch.setattr(http_module, "time", clock)
    transport = make()
    delivery = transport._delivery
    assert delivery.lanes == 2
    rx.reply(Reply(action="reset"))
    entry = delivery.encode(make_envelope())
    assert entry is not None
    assert delivery.send(entry, None, lane=1) == 0.0  # retried at once, on the first connection
    assert delivery.lanes == 1
    clock.offset = http_module.SECOND_CONNECTION_REST - 1.0
    assert delivery.lanes == 1  # still resting
    clock.offset = http_module.SECOND_CONNECTION_REST
    assert delivery.lanes == 2
    assert delivery.send(entry, None, lane=0) is None
    assert len(rx.wait_for(2)) == 2
    assert transport._outcomes.snapshot() == {}


def test_check_ins_never_overlap(rx: Receiver, make: Make, monkeypatch: pytest.MonkeyPatch) -> None:
    transport = make()
    # While the first check-in is out, the worker decides about the second one: it
    # either prepares its body (it waits for the first one's answer) or sends it on
    # the second connection. Wait for that decision instead of sleeping.
    delivery = transport._delivery
    second = ("%032x" % 2).encode()
    decided, overlapped = threading.Event(), []
    prepare, send = delivery.prepare, delivery.send

    def watch_prepare(entry: Any) -> None:
        prepare(entry)
        if second in entry.plain():
            decided.set()

    def watch_send(entry: Any, meanwhile: Any = None, lane: int = 0) -> Any:
        if lane and second in entry.plain():
            overlapped.append(entry)
            decided.set()
        return send(entry, meanwhile, lane)

    monkeypatch.setattr(delivery, "prepare", watch_prepare)
    monkeypatch.setattr(delivery, "send", watch_send)
    gate = _queue_behind_a_held_request(rx, transport, _check_in(1), _check_in(2))
    rx.wait_for(2)
    assert decided.wait(10)  # the second check-in must wait for the first one's answer
    assert not overlapped
    assert len(rx.requests) == 2
    gate.set()
    transport.flush(10)
    assert [r.item_types for r in rx.wait_for(3)] == [["event"], ["check_in"], ["check_in"]]
    ids = [json.loads(r.envelope.items[0].get_bytes())["check_in_id"] for r in rx.requests[1:]]
    assert ids == ["%032x" % 1, "%032x" % 2]


def test_reconnects_after_the_server_closed_the_connection(rx: Receiver, make: Make) -> None:
    transport = make()
    transport.capture_envelope(make_envelope("%032x" % 1))
    transport.flush(10)
    rx.down()  # drops the kept-alive connection
    rx.up()
    transport.capture_envelope(make_envelope("%032x" % 2))
    transport.flush(10)
    assert len(rx.events()) == 2
    assert transport._outcomes.snapshot() == {}


def test_queue_overflow_drops_transactions_before_errors_and_reports_on_first_flush(
    rx: Receiver, make: Make
) -> None:
    # Room for about three queued envelopes in all (intake and backlog).
    transport = make(transport_queue_size=1, _experiments={"transport_backlog_bytes": 1200})
    rx.hold()
    transport.capture_envelope(make_envelope("%032x" % 99))
    rx.wait_for(1)  # the worker is now stuck on the first request
    for i in range(4):
        transport.capture_envelope(make_transaction(spans=1, event_id="%032x" % (100 + i)))
    for i in range(3):
        transport.capture_envelope(make_envelope("%032x" % i))  # evict transactions
    transport.capture_envelope(make_transaction(spans=1))  # no room left for it
    rx.release()
    transport.flush(10)
    kinds = [r.item_types for r in rx.requests]
    assert kinds.count(["event"]) == 4  # every error arrived
    sent = kinds.count(["transaction"])
    lost = transport._outcomes.snapshot()
    assert lost == {
        ("queue_overflow", "transaction"): 5 - sent,
        ("queue_overflow", "span"): 2 * (5 - sent),
    }
    assert sent < 5  # the budget was too small for everything
    assert kinds[-1] == ["client_report"]
    assert rx.discarded() == lost  # reported by the first flush


def test_oversized_event_is_trimmed_to_fit(rx: Receiver, make: Make) -> None:
    transport = make()
    crumbs = [{"message": "x" * 2000, "category": str(i)} for i in range(1000)]
    envelope = make_envelope(breadcrumbs={"values": crumbs}, extra={"blob": "y" * 300_000})
    transport.capture_envelope(envelope)
    transport.flush(10)
    (request,) = rx.wait_for(1)
    (item,) = request.envelope.items
    assert len(item.get_bytes()) <= 1024 * 1024
    event = item.payload.json
    assert event["message"] == "hello"
    assert event["breadcrumbs"]["values"][-1]["category"] == "999"  # the newest are kept
    assert transport._outcomes.snapshot() == {}


def test_http_proxy_option_and_absolute_form(rx: Receiver, make: Make) -> None:
    transport = make(dsn="http://public@sentry.invalid:9000/5", http_proxy=rx.url)
    transport.capture_envelope(make_envelope())
    transport.flush(10)
    (request,) = rx.wait_for(1)
    assert request.path == "http://sentry.invalid:9000/api/5/envelope/"
    assert request.headers["host"] == "sentry.invalid:9000"


def test_proxy_from_environment_and_no_proxy(
    rx: Receiver, make: Make, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", rx.url)
    monkeypatch.setenv("NO_PROXY", "")
    transport = make(dsn="http://public@sentry.invalid:9000/5")
    transport.capture_envelope(make_envelope())
    transport.flush(10)
    assert rx.wait_for(1)[0].path.startswith("http://sentry.invalid:9000/")
    client = transport._delivery.http
    monkeypatch.setenv("NO_PROXY", "sentry.invalid")
    assert client._proxy("http", "sentry.invalid") is None
    assert client._proxy("http", "other.invalid") == rx.url
    # An explicit option wins over NO_PROXY; "" turns the lookup off.
    client.options = {"http_proxy": "http://explicit:1"}
    assert client._proxy("http", "sentry.invalid") == "http://explicit:1"
    client.options = {"http_proxy": ""}
    assert client._proxy("http", "other.invalid") is None


def test_proxy_headers_and_credentials(rx: Receiver, make: Make) -> None:
    proxy = rx.url.replace("http://", "http://user:p%40ss@")
    transport = make(
        dsn="http://public@sentry.invalid:9000/5", http_proxy=proxy, proxy_headers={"X-Via": "t"}
    )
    transport.capture_envelope(make_envelope())
    transport.flush(10)
    (request,) = rx.wait_for(1)
    assert request.headers["x-via"] == "t"
    assert request.headers["proxy-authorization"] == "Basic dXNlcjpwQHNz"  # user:p@ss


def test_socket_options_are_merged_with_keep_alive(rx: Receiver, make: Make) -> None:
    import socket

    transport = make(keep_alive=True, socket_options=[(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)])
    options = transport._delivery.http.socket_options()
    assert options is not None
    assert options[0] == (socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    if hasattr(socket, "TCP_KEEPIDLE"):
        assert (socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, 45) in options
    transport.capture_envelope(make_envelope())
    transport.flush(10)
    assert len(rx.wait_for(1)) == 1


@pytest.fixture
def tls() -> Iterator[TlsFiles]:
    reason = tls_unavailable()
    if reason:
        pytest.skip(reason)
    files = TlsFiles()
    yield files
    files.cleanup()


def test_tls_with_ca_certs(make: Make, tls: TlsFiles) -> None:
    with Receiver(tls=tls) as secure:
        transport = make(dsn=secure.dsn(), ca_certs=tls.cert)
        transport.capture_envelope(make_envelope())
        transport.flush(10)
        assert len(secure.wait_for(1)) == 1
        assert transport._outcomes.snapshot() == {}
        transport.kill()
        transport._worker.join(10)


def test_tls_env_bundle_and_verification_failure(
    make: Make, tls: TlsFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Receiver(tls=tls) as secure:
        untrusting = make(dsn=secure.dsn())  # certifi does not know our certificate
        untrusting.capture_envelope(make_envelope())
        untrusting.flush(10)
        assert untrusting._outcomes.snapshot() == {("network_error", "error"): 1}
        assert secure.requests == []
        monkeypatch.setenv("SSL_CERT_FILE", tls.cert)
        trusting = make(dsn=secure.dsn())
        trusting.capture_envelope(make_envelope())
        trusting.flush(10)
        assert len(secure.wait_for(1)) == 1
        for transport in (untrusting, trusting):
            transport.kill()
            transport._worker.join(10)


def test_send_client_reports_false(rx: Receiver, make: Make) -> None:
    transport = make(send_client_reports=False)
    rx.reply(Reply(500))
    transport.capture_envelope(make_envelope())
    transport.flush(10)
    transport.capture_envelope(make_envelope())
    transport.flush(10)
    assert [r.item_types for r in rx.wait_for(2)] == [["event"], ["event"]]
    assert transport._outcomes.snapshot() == {("send_error", "error"): 1}  # still readable


def test_flush_callback_and_timeout(rx: Receiver, make: Make) -> None:
    transport = make()
    calls: list[tuple[int, float]] = []
    rx.hold()
    for i in range(3):
        transport.capture_envelope(make_envelope("%032x" % i))
    rx.wait_for(1)
    transport.flush(0.3, lambda pending, timeout: calls.append((pending, timeout)))
    assert calls == [(3, 0.3)]
    rx.release()
    transport.flush(10)
    assert len(rx.events()) == 3


@pytest.mark.parametrize(
    "raw",
    [
        b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n7\r\n{"a":1}\r\n0\r\n\r\n',
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}",
        b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        b"HTTP/1.0 200 OK\r\n\r\nclose-delimited body",
        b"HTTP/1.1 200 OK\r\nX-Sentry-Rate-Limits: 60:transaction:key\r\nContent-Length: 0\r\n\r\n",
    ],
)
def test_response_framings(rx: Receiver, make: Make, raw: bytes) -> None:
    transport = make()
    rx.reply(Reply(action="raw", body=raw))
    for i in range(3):
        transport.capture_envelope(make_envelope("%032x" % i))
        transport.flush(10)
    assert len(rx.wait_for(3)) == 3
    assert transport._outcomes.snapshot() == {}
    limited = b"X-Sentry-Rate-Limits" in raw
    assert bool(transport._delivery.ratelimits.snapshot()) == limited


class OneAnswer:
    """Answers one request on 127.0.0.1 with the pieces of `answer`, sent one by one
    (`pause` seconds apart), or until the client hangs up; `sent` is what it sent."""

    def __init__(self, answer: Iterator[bytes], pause: float = 0.0) -> None:
        self.answer, self.pause = answer, pause
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sent: list[int] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        conn, _ = self.listener.accept()
        total = 0
        with conn:
            conn.settimeout(30)
            request = b""
            try:
                while b"\r\n\r\n" not in request:
                    request += conn.recv(65536)
                for piece in self.answer:
                    conn.sendall(piece)
                    total += len(piece)
                    if self.pause:
                        time.sleep(self.pause)
            except OSError:  # the client hung up (or the 30 s bound)
                pass
        self.sent.append(total)
        self.done.set()

    def close(self) -> None:
        self.listener.close()
        self.thread.join(60)


def endless(head: bytes, piece: bytes) -> Iterator[bytes]:
    yield head
    while True:
        yield piece


ENDLESS = {
    "chunked body": (
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"10000\r\n" + b"x" * 0x10000 + b"\r\n",
    ),
    "header lines": (b"HTTP/1.1 200 OK\r\n", b"X-Junk: " + b"y" * 8000 + b"\r\n"),
    "declared length": (
        b"HTTP/1.1 200 OK\r\nContent-Length: 100000000000\r\n\r\n",
        b"z" * 0x10000,
    ),
}


@pytest.mark.parametrize("kind", ENDLESS)
def test_an_endless_answer_is_cut_off(make: Make, kind: str) -> None:
    # Something that is not Relay may answer forever: the worker hangs up once the answer
    # passes its bounds (64 KiB of head, 1 MiB of body) instead of reading (and, in
    # sentry-sdk 2.75's case, buffering: 6 GB of RSS for an endless chunked body) on.
    server = OneAnswer(endless(*ENDLESS[kind]))
    try:
        transport = make(dsn=f"http://public@127.0.0.1:{server.port}/1")
        transport.capture_envelope(make_envelope())  # the worker sends it at once
        assert server.done.wait(30), "the SDK is still reading"
    finally:
        server.close()
    (sent,) = server.sent
    # The bound, plus what the two sockets' buffers held when it hung up.
    assert sent < 1024 * 1024 + 16 * 1024 * 1024


class QuickTransport(HttpTransport):
    TIMEOUT = 0.5  # as sentry_sdk's HttpTransport.TIMEOUT: each request's budget


def test_an_answer_dripped_a_byte_at_a_time_gets_the_timeout_in_all(make: Make) -> None:
    # Each byte comes well within the timeout, the whole answer (4 s) does not: the
    # worker hangs up when the request's budget is spent, as it does for a silent server,
    # instead of staying on it for as long as the server keeps dripping.
    answer = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}"
    server = OneAnswer((answer[i : i + 1] for i in range(len(answer))), pause=0.1)
    try:
        transport = make(QuickTransport, dsn=f"http://public@127.0.0.1:{server.port}/1")
        transport.capture_envelope(make_envelope())
        assert server.done.wait(30)
    finally:
        server.close()
    (sent,) = server.sent
    assert sent < len(answer)


def test_https_through_a_connect_tunnel(make: Make, tls: TlsFiles) -> None:
    with Receiver(tls=tls, proxy=True) as proxy:
        transport = make(
            dsn=proxy.dsn(host="localhost"),
            https_proxy=f"http://user:secret@127.0.0.1:{proxy.port}",
            ca_certs=tls.cert,
        )
        transport.capture_envelope(make_envelope())
        transport.flush(10)
        (request,) = proxy.wait_for(1)
        assert request.path == "/api/1/envelope/"
        (connect,) = proxy.connects
        assert connect["request-line"] == f"CONNECT localhost:{proxy.port} HTTP/1.1"
        assert connect["proxy-authorization"] == "Basic dXNlcjpzZWNyZXQ="
        assert "x-sentry-auth" not in connect  # nothing of the request leaks to the proxy
        transport.kill()
        transport._worker.join(10)


def _deliver_one(transport: HttpTransport, rx: Receiver, message: str) -> Request:
    """Send one envelope; it must arrive byte for byte, with nothing counted as lost."""
    envelope = make_envelope(message=message)
    transport.capture_envelope(envelope)
    transport.flush(10)
    (request,) = rx.wait_for(1)
    assert request.body == envelope.serialize()
    assert transport._outcomes.snapshot() == {}
    return request


@pytest.mark.parametrize("scheme", ["socks5", "socks5h"])
def test_through_a_socks_proxy(rx: Receiver, make: Make, scheme: str) -> None:
    pytest.importorskip("socks", reason="SOCKS proxies need PySocks")
    with Socks5Proxy() as proxy:
        transport = make(
            dsn=rx.dsn(host="localhost"), http_proxy=f"{scheme}://127.0.0.1:{proxy.port}"
        )
        _deliver_one(transport, rx, "via socks")
        # socks5h: the proxy resolves the name; socks5: the client does.
        kind, host = ("domain", "localhost") if scheme == "socks5h" else ("ipv4", "127.0.0.1")
        assert proxy.targets == [(kind, host, rx.port)]
        transport.kill()
        transport._worker.join(10)


def test_through_a_proxy_spoken_to_over_tls(rx: Receiver, make: Make, tls: TlsFiles) -> None:
    # An https:// proxy URL: the connection to the proxy is TLS, verified with ca_certs.
    # The receiver plays the proxy: it gets the request in absolute form.
    with Receiver(tls=tls) as proxy:
        transport = make(
            dsn="http://public@sentry.invalid:9000/5",
            http_proxy=f"https://localhost:{proxy.port}",
            ca_certs=tls.cert,
        )
        transport.capture_envelope(make_envelope(message="via a TLS proxy"))
        transport.flush(10)
        (request,) = proxy.wait_for(1)
        assert request.path == "http://sentry.invalid:9000/api/5/envelope/"
        assert request.envelope.items[0].payload.json["message"] == "via a TLS proxy"
        assert transport._outcomes.snapshot() == {}
        transport.kill()
        transport._worker.join(10)


URLLIB3 = {"http_client": "urllib3"}


def test_urllib3_escape_hatch_sends_the_same_bytes(rx: Receiver, make: Make) -> None:
    transport = make(_experiments=URLLIB3)
    request = _deliver_one(transport, rx, "via urllib3")
    assert request.headers["x-sentry-auth"].startswith("Sentry sentry_key=public")
    transport.kill()


def test_urllib3_escape_hatch_reads_rate_limits(rx: Receiver, make: Make) -> None:
    transport = make(_experiments=URLLIB3)
    rx.reply(Reply(429))
    transport.capture_envelope(make_envelope())
    transport.flush(10)
    assert not transport.is_healthy()
    assert list(transport._delivery.ratelimits.snapshot()) == [None]
    transport.kill()


def test_urllib3_escape_hatch_with_tls(make: Make, tls: TlsFiles) -> None:
    with Receiver(tls=tls) as secure:
        transport = make(dsn=secure.dsn(), ca_certs=tls.cert, _experiments=URLLIB3)
        transport.capture_envelope(make_envelope())
        transport.flush(10)
        assert len(secure.wait_for(1)) == 1
        assert transport._outcomes.snapshot() == {}
        transport.kill()
        transport._worker.join(10)


class _PoolOptionsHook(HttpTransport):
    calls: list[str] = []

    def _get_pool_options(self) -> dict[str, Any]:
        options = super()._get_pool_options()
        options["retries"] = False
        self.calls.append("_get_pool_options")
        return options


class _MakePoolHook(HttpTransport):
    calls: list[str] = []

    def _make_pool(self) -> Any:
        import urllib3

        calls = self.calls
        calls.append("_make_pool")

        class Pool(urllib3.PoolManager):
            def urlopen(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
                calls.append(f"{method} {url}")
                return super().urlopen(method, url, *args, **kwargs)

        return Pool()


@pytest.mark.parametrize("cls", [_PoolOptionsHook, _MakePoolHook])
def test_subclass_urllib3_hooks_as_in_sentry_sdk(rx: Receiver, cls: Any) -> None:
    # sentry_sdk users customise the urllib3 pool by overriding these two methods:
    # tripwire then sends through the pool they make, on one connection.
    cls.calls.clear()
    transport = cls(build_options(dsn=rx.dsn()))
    try:
        request = _deliver_one(transport, rx, "through the user's pool")
        assert request.headers["x-sentry-auth"].startswith("Sentry sentry_key=public")
        assert transport._delivery.lanes == 1
        assert type(transport._delivery.http._backend).__name__ == "_Urllib3Backend"
    finally:
        transport.kill()
        transport._worker.join(10)
    if cls is _MakePoolHook:
        assert cls.calls == ["_make_pool", f"POST {rx.url}/api/1/envelope/"]
    else:
        assert cls.calls == ["_get_pool_options"]


def test_default_pool_hooks_describe_the_options(rx: Receiver, make: Make, tls: TlsFiles) -> None:
    transport = make(dsn="https://public@sentry.invalid/1", ca_certs=tls.cert, keep_alive=True)
    options = transport._get_pool_options()
    assert options["ssl_context"].verify_mode.name == "CERT_REQUIRED"
    assert any(opt[1] == socket.SO_KEEPALIVE for opt in options["socket_options"])
    assert type(transport._make_pool()).__name__ == "PoolManager"
    proxied = make(dsn=rx.dsn(), http_proxy="http://user:pw@127.0.0.1:3128")
    pool = proxied._make_pool()
    assert type(pool).__name__ == "ProxyManager"
    assert pool.proxy_headers["Proxy-Authorization"] == "Basic dXNlcjpwdw=="


@pytest.mark.parametrize("experiments", [{}, URLLIB3], ids=["wire", "urllib3"])
def test_client_certificate_for_mutual_tls(
    make: Make, tls: TlsFiles, experiments: dict[str, str]
) -> None:
    client = TlsFiles()  # self-signed: the server trusts it directly
    try:
        with Receiver(tls=tls, client_ca=client.cert) as secure:
            anonymous = make(dsn=secure.dsn(), ca_certs=tls.cert, _experiments=experiments)
            anonymous.capture_envelope(make_envelope())
            anonymous.flush(10)
            assert secure.requests == []
            assert anonymous._outcomes.snapshot() == {("network_error", "error"): 1}
            anonymous.kill()

            identified = make(
                dsn=secure.dsn(),
                ca_certs=tls.cert,
                cert_file=client.cert,
                key_file=client.key,
                _experiments=experiments,
            )
            identified.capture_envelope(make_envelope())
            identified.flush(10)
            assert len(secure.wait_for(1)) == 1
            assert identified._outcomes.snapshot() == {}
            identified.kill()
    finally:
        client.cleanup()


def test_client_certificate_from_the_environment(
    make: Make, tls: TlsFiles, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = TlsFiles()
    try:
        monkeypatch.setenv("CLIENT_CERT_FILE", client.cert)
        monkeypatch.setenv("CLIENT_KEY_FILE", client.key)
        with Receiver(tls=tls, client_ca=client.cert) as secure:
            transport = make(dsn=secure.dsn(), ca_certs=tls.cert)
            transport.capture_envelope(make_envelope())
            transport.flush(10)
            assert len(secure.wait_for(1)) == 1
            assert transport._outcomes.snapshot() == {}
            transport.kill()
    finally:
        client.cleanup()
