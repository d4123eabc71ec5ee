"""A real HTTP receiver on 127.0.0.1 for transport tests, scriptable per request.

    with Receiver() as rx:
        rx.reply(Reply(429, {"Retry-After": "30"}), Reply(200))
        ...
        requests = rx.wait_for(2)

Replies are taken from the script in order, then the default (200). A reply can
also reset the connection, answer garbage, or close without answering. `hold()`
makes answers wait until `release()` (a slow server, without sleeping); `down()`
stops listening (connections are refused) and `up()` listens again on the same
port. With `tls=True` it serves HTTPS with a self-signed certificate made at test
time (`cryptography` if importable, else the `openssl` command).
Every thread and socket it opens is closed by `stop()`.
"""

from __future__ import annotations

import gc
import gzip
import os
import shutil
import socket
import ssl
import struct
import subprocess
import tempfile
import threading
import time
import zlib
from collections import deque
from typing import Any, Optional

import _zygote

from tripwire.envelope import Envelope


class Reply:
    """One scripted answer: a status with headers, or an action.

    Args:
        status: HTTP status code.
        headers: Extra response headers.
        action: None, "reset" (TCP RST), "garbage" (not HTTP), "close" (no answer) or
            "raw" (send `body` as the whole response, then keep the connection).
        body: The response body (or the whole response for "raw").
        gate: If given, the answer waits until it is set (the server stopping
            releases it too).
    """

    def __init__(
        self,
        status: int = 200,
        headers: Optional[dict[str, str]] = None,
        action: Optional[str] = None,
        body: bytes = b"",
        gate: Optional[threading.Event] = None,
    ) -> None:
        self.status = status
        self.headers = headers or {}
        self.action = action
        self.body = body
        self.gate = gate


class Request:
    """A received request: headers (lowercase names), raw and decoded body, the envelope."""

    def __init__(self, method: str, path: str, headers: dict[str, str], raw: bytes) -> None:
        self.method = method
        self.path = path
        self.headers = headers
        self.raw = raw
        self.body = decode(raw, headers.get("content-encoding"))

    @property
    def envelope(self) -> Envelope:
        return Envelope.deserialize(self.body)

    @property
    def item_types(self) -> list[Optional[str]]:
        return [item.type for item in self.envelope.items]

    def __repr__(self) -> str:
        return f"<Request {self.method} {self.path} {self.item_types}>"


def decode(raw: bytes, encoding: Optional[str]) -> bytes:
    if encoding == "gzip":
        return gzip.decompress(raw)
    if encoding == "deflate":
        return zlib.decompress(raw)
    if encoding == "br":
        import brotli

        return brotli.decompress(raw)  # type: ignore[no-any-return]
    return raw


class TlsFiles:
    """A self-signed certificate for 127.0.0.1 / localhost, in a temporary directory."""

    def __init__(self) -> None:
        self.dir = tempfile.mkdtemp(prefix="tripwire-tls-")
        self.cert = os.path.join(self.dir, "cert.pem")
        self.key = os.path.join(self.dir, "key.pem")
        try:
            _make_cert_cryptography(self.cert, self.key)
        except ImportError:
            _make_cert_openssl(self.cert, self.key)

    def cleanup(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def tls_unavailable() -> Optional[str]:
    """Why TLS tests cannot run here, or None."""
    try:
        import cryptography  # noqa: F401
    except ImportError:
        if shutil.which("openssl") is None:
            return "neither the cryptography package nor the openssl command is available"
    return None


def _make_cert_cryptography(cert: str, key: str) -> None:
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    with open(cert, "wb") as f:
        f.write(certificate.public_bytes(serialization.Encoding.PEM))
    with open(key, "wb") as f:
        f.write(
            private.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )


def _make_cert_openssl(cert: str, key: str) -> None:
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            key,
            "-out",
            cert,
            "-days",
            "1",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=DNS:localhost,IP:127.0.0.1",
        ],
        check=True,
        capture_output=True,
    )


class Receiver:
    """The scriptable HTTP(S) server; see the module docstring."""

    def __init__(
        self, tls: Optional[TlsFiles] = None, proxy: bool = False, client_ca: Optional[str] = None
    ) -> None:
        self.tls = tls
        # proxy=True: every connection starts with CONNECT (recorded in `connects`), then
        # the tunnel leads back to this receiver itself (TLS inside it if `tls`).
        self.proxy = proxy
        self.connects: list[dict[str, str]] = []
        self.port = 0
        self.requests: list[Request] = []
        self.connections = 0
        self._cond = threading.Condition()
        self._script: deque[Reply] = deque()
        self.default = Reply(200)
        self._released = threading.Event()
        self._released.set()
        self._listener: Optional[socket.socket] = None
        self._threads: list[threading.Thread] = []
        self._socks: set[socket.socket] = set()
        self._stopping = False
        self._context: Optional[ssl.SSLContext] = None
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(tls.cert, tls.key)
            if client_ca is not None:
                # Mutual TLS: only clients presenting a certificate signed by client_ca.
                context.verify_mode = ssl.CERT_REQUIRED
                context.load_verify_locations(client_ca)
            self._context = context

    # -- control -------------------------------------------------------------------------

    def __enter__(self) -> Receiver:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> Receiver:
        self._stopping = False
        self.up()
        return self

    def up(self) -> None:
        """Listen (again, on the same port once one was chosen)."""
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        self._spawn(self._accept_loop, listener)

    def down(self) -> None:
        """Stop listening and drop every connection (held answers are never sent)."""
        self._released.set()
        listener, self._listener = self._listener, None
        if listener is not None:
            _shut(listener)
        with self._cond:
            socks = list(self._socks)
        for sock in socks:
            _shut(sock)
        self._join()

    def stop(self) -> None:
        """Stop everything and wait for the threads."""
        self._stopping = True
        self._released.set()
        self.down()

    def reply(self, *replies: Reply) -> None:
        """Script the next answers (then the default)."""
        with self._cond:
            self._script.extend(replies)

    def hold(self) -> None:
        """Keep answers back until `release()`."""
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    def wait_for(self, count: int, timeout: float = 15.0) -> list[Request]:
        """Wait until `count` requests arrived; returns all requests so far."""
        with self._cond:
            if not self._cond.wait_for(lambda: len(self.requests) >= count, timeout):
                raise AssertionError(
                    f"expected {count} requests, got {len(self.requests)}: {self.requests}"
                )
            return list(self.requests)

    def wait_for_connections(self, count: int, timeout: float = 15.0) -> None:
        with self._cond:
            if not self._cond.wait_for(lambda: self.connections >= count, timeout):
                raise AssertionError(f"expected {count} connections, got {self.connections}")

    @property
    def url(self) -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://127.0.0.1:{self.port}"

    def dsn(self, key: str = "public", project: int = 1, host: str = "127.0.0.1") -> str:
        scheme = "https" if self.tls is not None else "http"
        return f"{scheme}://{key}@{host}:{self.port}/{project}"

    def items(self, item_type: Optional[str] = None) -> list[Any]:
        with self._cond:
            requests = list(self.requests)
        return [
            item
            for r in requests
            for item in r.envelope.items
            if item_type is None or item.type == item_type
        ]

    def events(self) -> list[dict[str, Any]]:
        return [item.payload.json for item in self.items("event")]

    def discarded(self) -> dict[tuple[str, str], int]:
        """Losses reported in client reports so far: {(reason, category): quantity}."""
        totals: dict[tuple[str, str], int] = {}
        for item in self.items("client_report"):
            report = item.payload.json
            if report is None:
                from tripwire._json import loads

                report = loads(item.get_bytes())
            for d in report["discarded_events"]:
                key = (d["reason"], d["category"])
                totals[key] = totals.get(key, 0) + d["quantity"]
        return totals

    # -- serving -------------------------------------------------------------------------

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name="test-receiver", daemon=True)
        with self._cond:
            self._threads.append(thread)
        thread.start()

    def _join(self) -> None:
        while True:
            with self._cond:
                threads = [t for t in self._threads if t is not threading.current_thread()]
                self._threads = []
            if not threads:
                return
            left = join_threads(threads, 10.0)
            assert not left, f"receiver threads still running after stop: {left}"

    def _accept_loop(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                listener.close()
                return
            with self._cond:
                self.connections += 1
                if self._listener is not listener:
                    conn.close()
                    continue
                self._socks.add(conn)
            self._spawn(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        sock: Any = conn
        try:
            if self.proxy:
                reader = conn.makefile("rb")
                line = reader.readline(65536)
                headers = {"request-line": line.decode("latin-1").strip()}
                while True:
                    header = reader.readline(65536)
                    if header in (b"\r\n", b"\n", b""):
                        break
                    name, _, value = header.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                reader.close()
                with self._cond:
                    self.connects.append(headers)
                conn.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            if self._context is not None:
                sock = self._context.wrap_socket(conn, server_side=True)
                with self._cond:
                    self._socks.discard(conn)
                    self._socks.add(sock)
            reader = sock.makefile("rb")
            try:
                while self._handle(sock, reader):
                    pass
            finally:
                reader.close()
        except (OSError, ValueError):
            pass
        finally:
            with self._cond:
                self._socks.discard(conn)
                self._socks.discard(sock)
            _close(sock)

    def _handle(self, sock: Any, reader: Any) -> bool:
        line = reader.readline(65536)
        if not line:
            return False
        method, path, _ = line.decode("latin-1").split(" ", 2)
        headers: dict[str, str] = {}
        while True:
            header = reader.readline(65536)
            if header in (b"\r\n", b"\n", b""):
                break
            name, _, value = header.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        if headers.get("transfer-encoding", "").lower() == "chunked":
            raw = _read_chunked(reader)
        else:
            raw = reader.read(int(headers.get("content-length") or 0))
        with self._cond:
            self.requests.append(Request(method, path, headers, raw))
            reply = self._script.popleft() if self._script else self.default
            self._cond.notify_all()
        self._released.wait()
        if reply.gate is not None:
            while not reply.gate.wait(0.05) and not self._stopping:
                pass
        if self._stopping or self._listener is None:
            return False
        if reply.action == "reset":
            # Linger on, zero timeout: close() sends a TCP RST instead of a FIN.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            return False
        if reply.action == "garbage":
            sock.sendall(b"this is not HTTP\r\n\r\n")
            return False
        if reply.action == "close":
            return False
        if reply.action == "raw":
            sock.sendall(reply.body)
            return not reply.body.startswith(b"HTTP/1.0")
        head = [f"HTTP/1.1 {reply.status} X"]
        for name, value in reply.headers.items():
            head.append(f"{name}: {value}")
        head.append(f"Content-Length: {len(reply.body)}")
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + reply.body)
        return True


def _read_chunked(reader: Any) -> bytes:
    parts: list[bytes] = []
    while True:
        size = int(reader.readline().split(b";")[0], 16)
        if size == 0:
            reader.readline()
            return b"".join(parts)
        parts.append(reader.read(size))
        reader.readline()


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    _close(sock)


def _close(sock: Any) -> None:
    try:
        sock.close()
    except OSError:
        pass


# -- helpers for transport tests ------------------------------------------------------------


def open_fds() -> set[int]:
    """File descriptors of this process (Linux); empty where /proc is missing."""
    try:
        return {int(fd) for fd in os.listdir("/proc/self/fd")}
    except OSError:
        return set()


def wait_until(predicate: Any, timeout: float = 10.0, what: str = "the condition") -> None:
    """Poll `predicate` (for state no event announces) until true; fail after `timeout`."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.001)


def sdk_threads() -> list[threading.Thread]:
    """The SDK's own threads (worker, monitor, batchers, spotlight...) alive now."""
    return [t for t in threading.enumerate() if t.name.startswith("tripwire.") and t.is_alive()]


def join_threads(threads: list[threading.Thread], timeout: float = 5.0) -> list[threading.Thread]:
    """Join `threads` within one shared deadline; returns those still alive (a leak).

    A thread that was told to stop ends in milliseconds; the deadline only bounds how
    long a real leak takes to be reported, it is not a synchronisation delay.
    """
    deadline = time.monotonic() + timeout
    for thread in threads:
        if thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
    return [t for t in threads if t.is_alive() and t is not threading.current_thread()]


def assert_sdk_threads_ended(before: Any = (), timeout: float = 5.0) -> None:
    """Fail unless every SDK thread not in `before` ends within `timeout` seconds."""
    left = join_threads([t for t in sdk_threads() if t not in before], timeout)
    assert not left, f"SDK threads left running (a client not closed?): {left}"


class LeakCheck:
    """Snapshot threads and file descriptors; `assert_clean()` compares after cleanup."""

    def __init__(self) -> None:
        self.threads = set(threading.enumerate())
        self.fds = open_fds()

    def assert_clean(self) -> None:
        # Threads that were stopped may still be on their way out: a join, then a look at
        # the descriptors that were not open before.
        left = join_threads(self._new_threads(), timeout=1.0)
        described = self._new_fds()
        if left or described:
            # A socket that is only garbage (in a reference cycle) is not a leak, and a
            # thread blocked on it ends once it is closed: collect, then a bounded join
            # and a second look (a full collection costs; most tests need none).
            gc.collect()
            left = join_threads(self._new_threads())
            described = self._new_fds()
        assert not left, f"threads left running: {left}"
        assert not described, f"file descriptors left open: {list(described.values())}"

    def _new_threads(self) -> list[threading.Thread]:
        return [t for t in threading.enumerate() if t not in self.threads and t.is_alive()]

    def _new_fds(self) -> dict[int, str]:
        new = open_fds() - self.fds - _zygote.descriptors()
        described = {fd: _describe_fd(fd) for fd in new}
        return {fd: what for fd, what in described.items() if what is not None}


def _describe_fd(fd: int) -> Optional[str]:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return None  # closed in the meantime (the listing's own descriptor)


def make_envelope(event_id: str = "0" * 32, **event: Any) -> Envelope:
    env = Envelope(headers={"event_id": event_id})
    env.add_event({"event_id": event_id, "message": "hello", **event})
    return env


def make_transaction(spans: int = 2, event_id: str = "1" * 32) -> Envelope:
    env = Envelope(headers={"event_id": event_id})
    env.add_transaction(
        {
            "type": "transaction",
            "event_id": event_id,
            "transaction": "/index",
            "spans": [{"span_id": "%016x" % i} for i in range(spans)],
        }
    )
    return env
