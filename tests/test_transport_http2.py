"""The HTTP/2 transport (`_experiments={"transport_http2": True}`) against a real HTTP/2 server.

The server is hypercorn on 127.0.0.1 (TLS with a certificate made at test time, ALPN
``h2``; and a plain-HTTP listener), serving a small ASGI app that records each
request with the HTTP version it came in, started once per session (per xdist
worker) in its own thread and loop, and stopped at the end. The differential test
runs the same script through sentry-sdk 2.75's Http2Transport in a fresh interpreter.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from collections import deque
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pytest
from _receiver import TlsFiles, decode, tls_unavailable
from _side_by_side import run

import tripwire
from tripwire._json import loads
from tripwire.envelope import Envelope
from tripwire.transport import HttpTransport

hypercorn = pytest.importorskip("hypercorn", reason="hypercorn (test extra) is not installed")
pytest.importorskip("h2", reason="h2 (httpcore[http2], test extra) is not installed")

from hypercorn.asyncio import serve  # noqa: E402
from hypercorn.config import Config  # noqa: E402

from tripwire.transport._http2 import Http2Transport  # noqa: E402

H2 = {"transport_http2": True}


class Seen:
    """One request as the server saw it."""

    def __init__(self, version: str, headers: dict[str, str], body: bytes) -> None:
        self.version = version
        self.headers = headers
        self.envelope = Envelope.deserialize(decode(body, headers.get("content-encoding")))

    @property
    def types(self) -> list[Optional[str]]:
        return [item.type for item in self.envelope.items]


class H2Server:
    """hypercorn in a thread: `tls_url`/`plain_url`, the requests seen, scripted replies."""

    def __init__(self, tls: TlsFiles) -> None:
        self.tls = tls
        self.seen: list[Seen] = []
        self.replies: deque[tuple[int, list[tuple[bytes, bytes]]]] = deque()
        self._cond = threading.Condition()
        self._socks = [_listener(), _listener()]
        self.tls_port, self.plain_port = (s.getsockname()[1] for s in self._socks)
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._stop: Optional[asyncio.Event] = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="test-hypercorn", daemon=True)

    def start(self) -> H2Server:
        self._thread.start()
        assert self._ready.wait(30), "hypercorn did not start"
        return self

    def stop(self) -> None:
        loop, stop = self._loop, self._stop
        if loop is not None and stop is not None:
            loop.call_soon_threadsafe(stop.set)
        self._thread.join(30)
        for sock in self._socks:
            sock.close()

    def dsn(self, tls: bool = True) -> str:
        scheme, port = ("https", self.tls_port) if tls else ("http", self.plain_port)
        return f"{scheme}://public@127.0.0.1:{port}/1"

    def clear(self) -> None:
        with self._cond:
            self.seen.clear()
            self.replies.clear()

    def wait_for(self, count: int, timeout: float = 15.0) -> list[Seen]:
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.seen) >= count, timeout):
                raise AssertionError(f"expected {count} requests, got {len(self.seen)}")
            return list(self.seen)

    def discarded(self) -> dict[tuple[str, str], int]:
        totals: dict[tuple[str, str], int] = {}
        for seen in self.seen:
            for item in seen.envelope.items:
                if item.type == "client_report":
                    for d in loads(item.get_bytes())["discarded_events"]:
                        key = (d["reason"], d["category"])
                        totals[key] = totals.get(key, 0) + d["quantity"]
        return totals

    # -- the server's thread ----------------------------------------------------------

    def _serve(self) -> None:
        config = Config()
        config.certfile, config.keyfile = self.tls.cert, self.tls.key
        # Duplicates: hypercorn closes the descriptors it was given, stop() closes ours.
        config.bind = [f"fd://{os.dup(self._socks[0].fileno())}"]
        config.insecure_bind = [f"fd://{os.dup(self._socks[1].fileno())}"]
        config.errorlog = None  # type: ignore[assignment]
        config.accesslog = None  # type: ignore[assignment]
        asyncio.run(self._main(config))

    async def _main(self, config: Config) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self._ready.set()
        await serve(self._app, config, shutdown_trigger=self._stop.wait)  # type: ignore[arg-type]

    async def _app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        with self._cond:
            self.seen.append(Seen(scope["http_version"], headers, body))
            status, extra = self.replies.popleft() if self.replies else (200, [])
            self._cond.notify_all()
        await send({"type": "http.response.start", "status": status, "headers": extra})
        await send({"type": "http.response.body", "body": b"{}"})


def _listener() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


@pytest.fixture(scope="session")
def h2_server_session() -> Iterator[H2Server]:
    reason = tls_unavailable()
    if reason:
        pytest.skip(reason)
    tls = TlsFiles()
    server = H2Server(tls).start()
    yield server
    server.stop()
    tls.cleanup()


@pytest.fixture
def h2(h2_server_session: H2Server) -> Iterator[H2Server]:
    h2_server_session.clear()
    yield h2_server_session
    tripwire.testing.reset()


def init_h2(server: H2Server, **options: Any) -> Any:
    tripwire.init(
        dsn=server.dsn(),
        ca_certs=server.tls.cert,
        _experiments=dict(H2, **options.pop("_experiments", {})),
        **options,
    )
    return tripwire.get_client().transport


def test_envelopes_arrive_over_http2(h2: H2Server) -> None:
    transport = init_h2(h2, traces_sample_rate=1.0)
    assert type(transport) is Http2Transport
    tripwire.capture_message("over h2")
    with tripwire.start_transaction(name="tx"):
        pass
    tripwire.flush(10)
    seen = h2.wait_for(2)
    assert [s.version for s in seen] == ["2", "2"]
    assert sorted(t for s in seen for t in s.types) == ["event", "transaction"]
    (event,) = [i.payload.json for s in seen for i in s.envelope.items if i.type == "event"]
    assert event["message"] == "over h2"
    assert seen[0].headers["x-sentry-auth"].startswith("Sentry sentry_key=public")


def test_rate_limits_over_http2_are_honoured_and_reported(h2: H2Server) -> None:
    h2.replies.append((429, [(b"x-sentry-rate-limits", b"60:error:organization")]))
    transport = init_h2(h2)
    tripwire.capture_message("refused")
    tripwire.flush(10)
    assert not transport.is_healthy()
    tripwire.capture_message("limited")  # dropped before it is sent
    tripwire.flush(10)
    messages = [
        i.payload.json["message"] for s in h2.seen for i in s.envelope.items if i.type == "event"
    ]
    assert messages == ["refused"]
    assert h2.discarded() == {("ratelimit_backoff", "error"): 1}
    assert {s.version for s in h2.seen} == {"2"}


def test_a_plain_http_dsn_speaks_http11_as_sentry(h2: H2Server) -> None:
    tripwire.init(dsn=h2.dsn(tls=False), _experiments=H2)
    tripwire.capture_message("plain")
    tripwire.flush(10)
    assert [s.version for s in h2.wait_for(1)] == ["1.1"]


def test_without_h2_it_warns_and_sends_as_http_transport(
    h2: H2Server, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr("tripwire.transport._http2.http2_available", lambda: False)
    with caplog.at_level(logging.WARNING, logger="tripwire.errors"):
        transport = init_h2(h2)
    assert isinstance(transport, HttpTransport)
    assert "don't have httpcore[http2] installed" in caplog.text
    tripwire.capture_message("fallback")
    tripwire.flush(10)
    assert [s.version for s in h2.wait_for(1)] == ["1.1"]


_SCRIPT = """
sentry_sdk.init(
    dsn={dsn!r},
    ca_certs={cert!r},
    default_integrations=False,
    traces_sample_rate=1.0,
    _experiments={{"transport_http2": True}},
)
NOTES.append(type(sentry_sdk.get_client().transport).__name__)
sentry_sdk.capture_message("hello")
with sentry_sdk.start_transaction(name="tx"):
    pass
finish()
"""


def test_same_protocol_and_items_as_sentry_sdk(h2: H2Server, tmp_path: Path) -> None:
    script = _SCRIPT.format(dsn=h2.dsn(), cert=h2.tls.cert)
    their_notes = run(script, "sentry", tmp_path)["notes"]
    theirs = _summary(h2.wait_for(2))
    h2.clear()
    our_notes = run(script, "tripwire", tmp_path)["notes"]
    ours = _summary(h2.wait_for(2))
    assert our_notes == their_notes == ["Http2Transport"]
    assert ours == theirs == [("2", ["event"]), ("2", ["transaction"])]


def _summary(seen: list[Seen]) -> list[tuple[str, list[Optional[str]]]]:
    return sorted((s.version, [t for t in s.types if t != "client_report"]) for s in seen)
