"""tripwire.raven: `transport=`, the WSGI middleware and the versioning helpers."""

from __future__ import annotations

import os
from typing import Any, Callable

import pytest
from _receiver import Receiver, Reply

from tripwire.envelope import Envelope
from tripwire.raven import Client, fetch_git_sha, fetch_package_version
from tripwire.raven.exceptions import APIError, InvalidGitRepository
from tripwire.raven.middleware import Sentry
from tripwire.raven.transport import (
    AsyncTransport,
    HTTPTransport,
    RequestsHTTPTransport,
    ThreadedHTTPTransport,
    Transport,
)
from tripwire.testing import MemoryTransport
from tripwire.transport import Transport as TripwireTransport

DSN = "https://pub:sec@sentry.example.com/42"


class Recording(Transport):
    """A raven-style transport: ``send(url, data, headers)``."""

    instances: list[Recording] = []

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.sent: list[tuple[str, bytes, dict[str, str]]] = []
        Recording.instances.append(self)

    def send(self, url: str, data: bytes, headers: dict[str, str]) -> None:
        self.sent.append((url, data, headers))


class Failing(Transport):
    def send(self, url: str, data: bytes, headers: dict[str, str]) -> None:
        raise OSError("server down")


class AsyncRecording(AsyncTransport):
    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def async_send(
        self,
        url: str,
        data: bytes,
        headers: dict[str, str],
        success_cb: Callable[[], None],
        error_cb: Callable[[BaseException], None],
    ) -> None:
        self.sent.append(data)
        error_cb(OSError("async failure is only logged"))


def test_raven_transport_class_gets_envelopes() -> None:
    Recording.instances.clear()
    client = Client(DSN + "?timeout=3", transport=Recording, install_sys_hook=False)
    event_id = client.captureMessage("hello")
    [transport] = Recording.instances
    assert transport.options == {"timeout": "3"}  # the DSN's query options, as raven
    [(url, body, headers)] = transport.sent
    assert url == "https://sentry.example.com/api/42/envelope/"
    assert headers["Content-Type"] == "application/x-sentry-envelope"
    assert "sentry_key=pub" in headers["X-Sentry-Auth"]
    envelope = Envelope.deserialize(body)
    assert envelope.headers["event_id"] == event_id
    event = envelope.get_event()
    assert event is not None and event["message"] == "hello"


def test_raven_transport_instance_and_async() -> None:
    instance = AsyncRecording()
    client = Client(DSN, transport=instance, install_sys_hook=False)
    assert client.captureMessage("x") is not None
    assert len(instance.sent) == 1


def test_raven_transport_needs_a_dsn(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SENTRY_DSN", raising=False)
    client = Client(transport=Recording, install_sys_hook=False)
    assert not client.is_enabled()
    assert client.captureMessage("x") is None


def test_send_errors_are_swallowed_unless_asked_for() -> None:
    quiet = Client(DSN, transport=Failing, install_sys_hook=False)
    assert quiet.captureMessage("x") is not None
    loud = Client(DSN, transport=Failing, install_sys_hook=False, raise_send_errors=True)
    with pytest.raises(OSError, match="server down"):
        loud.captureMessage("x")
    assert loud.captureMessage("x", sample_rate=0.0) is not None  # nothing sent, no error


@pytest.mark.parametrize(
    "raven_http", [HTTPTransport, ThreadedHTTPTransport, RequestsHTTPTransport, None]
)
def test_raven_http_transports_select_tripwire_http(raven_http: Any) -> None:
    client = Client(DSN, transport=raven_http, install_sys_hook=False)
    try:
        from tripwire.transport._http_transport import HttpTransport

        assert isinstance(client.tripwire_client.transport, HttpTransport)
        assert client.is_enabled()
    finally:
        client.close(timeout=0)


def test_subclass_overriding_send_keeps_its_code() -> None:
    sent: list[str] = []

    class Custom(HTTPTransport):
        def send(self, url: str, data: bytes, headers: dict[str, str]) -> None:
            sent.append(url)

    client = Client(DSN, transport=Custom, install_sys_hook=False)
    client.captureMessage("x")
    assert sent == ["https://sentry.example.com/api/42/envelope/"]


def test_tripwire_transport_class_and_callable() -> None:
    class Keep(MemoryTransport):
        pass

    client = Client(transport=Keep, install_sys_hook=False)
    client.captureMessage("by class")
    transport = client.tripwire_client.transport
    assert isinstance(transport, Keep) and isinstance(transport, TripwireTransport)
    assert transport.events[0]["message"] == "by class"

    events: list[dict[str, Any]] = []
    client = Client(transport=events.append, install_sys_hook=False)
    client.captureMessage("by callable")
    assert [e["message"] for e in events] == ["by callable"]


def test_flush_and_close() -> None:
    memory = MemoryTransport()
    client = Client(transport=memory, install_sys_hook=False)
    client.captureMessage("a")
    client.flush(timeout=1)
    client.close(timeout=1)
    assert not client.is_enabled()
    assert client.captureMessage("after close") is None
    assert [e["message"] for e in memory.events] == ["a"]


def test_end_to_end_over_http() -> None:
    with Receiver() as rx:
        client = Client(rx.dsn(), install_sys_hook=False, release="9")
        event_id = client.captureMessage("over the wire")
        client.close(timeout=10)  # flushes the queue first
        [request] = rx.wait_for(1)
    assert request.path == "/api/1/envelope/"
    event = request.envelope.get_event()
    assert event is not None
    assert (event["event_id"], event["message"], event["release"]) == (
        event_id,
        "over the wire",
        "9",
    )


def test_raven_http_transport_send_posts_with_urllib() -> None:
    class Logged(HTTPTransport):
        def send(self, url: str, data: bytes, headers: dict[str, str]) -> None:
            super().send(url, data, headers)

    with Receiver() as rx:
        client = Client(rx.dsn(), transport=Logged, install_sys_hook=False)
        event_id = client.captureMessage("sync")
        [request] = rx.wait_for(1)
        rx.reply(Reply(403, {"X-Sentry-Error": "bad key"}))
        loud = Client(rx.dsn(), transport=Logged, install_sys_hook=False, raise_send_errors=True)
        with pytest.raises(APIError, match="bad key"):
            loud.captureMessage("rejected")
    assert request.headers["content-type"] == "application/x-sentry-envelope"
    assert request.envelope.headers["event_id"] == event_id


# -- WSGI middleware -----------------------------------------------------------------------------


def test_wsgi_middleware_captures_and_reraises() -> None:
    memory = MemoryTransport()
    client = Client(transport=memory, install_sys_hook=False)

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        raise RuntimeError("view failed")

    environ = {
        "REQUEST_METHOD": "GET",
        "wsgi.url_scheme": "https",
        "HTTP_HOST": "shop.example.com",
        "PATH_INFO": "/cart",
        "QUERY_STRING": "id=3",
        "HTTP_USER_AGENT": "pytest",
        "CONTENT_TYPE": "text/plain",
        "REMOTE_ADDR": "10.0.0.1",
    }
    with pytest.raises(RuntimeError, match="view failed"):
        Sentry(app, client)(environ, lambda *a: None)
    event = memory.events[0]
    assert event["exception"]["values"][0]["value"] == "view failed"
    assert event["request"] == {
        "method": "GET",
        "url": "https://shop.example.com/cart",
        "query_string": "id=3",
        "headers": {
            "Host": "shop.example.com",
            "User-Agent": "pytest",
            "Content-Type": "text/plain",
        },
        "env": {"REMOTE_ADDR": "10.0.0.1"},
    }
    assert client.context.get() == {}  # cleared after the request


def test_wsgi_middleware_captures_errors_while_iterating() -> None:
    memory = MemoryTransport()
    client = Client(transport=memory, install_sys_hook=False)

    def body() -> Any:
        yield b"partial"
        raise ValueError("stream broke")

    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        return body()

    response = Sentry(app, client)({"SERVER_NAME": "h", "SERVER_PORT": "8080"}, lambda *a: None)
    with pytest.raises(ValueError, match="stream broke"):
        list(response)
    response.close()
    event = memory.events[0]
    assert event["exception"]["values"][0]["value"] == "stream broke"
    assert event["request"]["url"] == "http://h:8080/"


# -- versioning ------------------------------------------------------------------------------------


def test_fetch_git_sha(tmp_path: Any) -> None:
    sha = "a" * 40
    other = "b" * 40
    git = tmp_path / ".git"
    (git / "refs" / "heads").mkdir(parents=True)
    (git / "HEAD").write_text("ref: refs/heads/main\n")
    (git / "refs" / "heads" / "main").write_text(sha + "\n")
    (git / "packed-refs").write_text(f"# pack-refs\n{other} refs/heads/release\n")
    assert fetch_git_sha(os.fspath(tmp_path)) == sha
    assert fetch_git_sha(os.fspath(tmp_path), head="release") == other
    with pytest.raises(InvalidGitRepository):
        fetch_git_sha(os.fspath(tmp_path / "nowhere"))
    with pytest.raises(InvalidGitRepository):
        fetch_git_sha(os.fspath(tmp_path), head="missing")


def test_fetch_package_version() -> None:
    assert fetch_package_version("pytest") == pytest.__version__
