"""HTTP/1.1 spoken directly on one kept-alive socket: one write per request.

The request is built as bytes and written with one call; the response is parsed
just enough: the status, the headers the transport reads, and the body framing
(Content-Length, chunked, or until the server closes). Per request this costs a
fifth of the CPU of a urllib3 pool round trip and a third of `http.client`'s,
which matters because the worker thread shares the interpreter lock with the
application. Anything that is not HTTP is a `NetworkError`.

No imports happen here at run time: the worker thread must never import (see
`HttpClient.warm_up`). TLS comes in as a ready `ssl.SSLContext` factory.
"""

from __future__ import annotations

import select
import socket
import time
from collections.abc import Mapping
from typing import Any, Callable, Optional

# Bounds on what a response may be: Relay answers with a few bytes of JSON.
MAX_HEAD = 64 * 1024
MAX_BODY = 1024 * 1024
# A connection idle this long is checked for a close by the server before reuse.
IDLE_CHECK = 1.0

WANTED_HEADERS = ("x-sentry-rate-limits", "retry-after")


# However late a read starts, an answer already on its way gets this long to arrive.
MIN_READ_TIMEOUT = 0.05


class NetworkError(Exception):
    """The request got no HTTP response (refused, reset, timeout, TLS, garbage).

    `unreachable`: the server refused, reset or failed the TLS handshake (waiting
    for it at exit is pointless); `hopeless`: the certificate was rejected, so no
    retry can succeed.
    """

    def __init__(
        self,
        message: str,
        unreachable: bool = False,
        hopeless: bool = False,
        timed_out: bool = False,
    ) -> None:
        super().__init__(message)
        self.unreachable = unreachable or hopeless
        self.hopeless = hopeless
        self.timed_out = timed_out


class Response:
    """Status and the response headers the transport reads (lowercase names)."""

    __slots__ = ("headers", "status")

    def __init__(self, status: int, headers: dict[str, str]) -> None:
        self.status = status
        self.headers = headers

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.headers!r}>"


def hostport(host: str, port: int, default: int) -> str:
    """``host:port`` for a Host header or request target (IPv6 in brackets)."""
    if ":" in host:
        host = f"[{host}]"
    return host if port == default else f"{host}:{port}"


class Connection:
    """One connection to `host`: direct, through an HTTP proxy, or a CONNECT tunnel.

    Args:
        host: The server's host name or address.
        port: The server's port.
        path: The request path (with query).
        timeout: Seconds for connecting, and for the whole response once the request
            is sent (a server that answers a byte at a time gets no longer).
        socket_options: (level, option, value) set before connecting.
        ssl_context: Returns the TLS context (called on first connect); None for HTTP.
        proxy: (host, port) of an HTTP proxy, or None.
        proxy_headers: Headers for the proxy (on CONNECT, or on each plain request).
    """

    def __init__(
        self,
        host: str,
        port: int,
        path: str,
        timeout: float,
        socket_options: Optional[list[tuple[int, int, int]]] = None,
        ssl_context: Optional[Callable[[], Any]] = None,
        proxy: Optional[tuple[str, int]] = None,
        proxy_headers: Optional[Mapping[str, str]] = None,
    ) -> None:
        self._host, self._port = host, port
        self._timeout = timeout
        self._socket_options = socket_options
        self._make_context = ssl_context
        self._context: Any = None
        self._proxy = proxy
        self._proxy_headers = dict(proxy_headers or {})
        self._sock: Any = None
        self._buffer = b""
        self._last_used = 0.0
        # When the response being read must be complete (see `_recv`).
        self._deadline = 0.0
        tls = ssl_context is not None
        target = hostport(host, port, 443 if tls else 80)
        extra = ""
        if proxy is not None and not tls:
            # Plain HTTP through a proxy: absolute URL in the request line.
            path = f"http://{target}{path}"
            extra = "".join(f"{k}: {v}\r\n" for k, v in self._proxy_headers.items())
        self._request_line = f"POST {path} HTTP/1.1\r\nHost: {target}\r\n"
        self._extra = extra
        self._head_cache: Optional[tuple[Mapping[str, str], bytes]] = None

    def post(
        self,
        body: bytes,
        headers: Mapping[str, str],
        meanwhile: Optional[Callable[[], None]] = None,
    ) -> Response:
        """Send one POST and read the whole response.

        `meanwhile` runs once the request is written, before the response is read:
        work that overlaps the server's turn instead of following it. It must not
        raise.

        Raises:
            NetworkError: the response is not HTTP; OSError: the socket failed.
        """
        if self._sock is not None and time.monotonic() - self._last_used > IDLE_CHECK:
            self._drop_if_closed()
        if self._sock is None:
            self._connect()
        cached = self._head_cache
        if cached is not None and cached[0] is headers:
            prefix = cached[1]
        else:
            # The transport passes the same few (never mutated) header dicts again
            # and again: build their bytes once.
            prefix = "".join(
                (
                    self._request_line,
                    "".join(f"{k}: {v}\r\n" for k, v in headers.items()),
                    self._extra,
                )
            ).encode("latin-1")
            self._head_cache = (headers, prefix)
        head = b"%sContent-Length: %d\r\n\r\n" % (prefix, len(body))
        sock = self._sock
        try:
            sock.sendall(head + body)
            # The timeout is the response's whole budget: what `meanwhile` took (a
            # request on the other connection to a server that does not answer takes a
            # whole timeout) is not granted again.
            self._deadline = time.monotonic() + self._timeout
            if meanwhile is not None:
                meanwhile()
                self._deadline = max(self._deadline, time.monotonic() + MIN_READ_TIMEOUT)
            status, found, keep = self._read_response()
        except BaseException:
            self.close()  # the next request starts on a fresh connection
            raise
        finally:
            self._last_used = time.monotonic()
        if keep:
            self._restore_timeout(sock)
        else:
            self.close()
        return Response(status, found)

    def close(self) -> None:
        """Close the socket; the next `post` reconnects."""
        sock, self._sock = self._sock, None
        self._buffer = b""
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    # -- connecting ---------------------------------------------------------------------

    def _connect(self) -> None:
        address = self._proxy or (self._host, self._port)
        sock = open_socket(address, self._timeout, self._socket_options)
        try:
            if self._proxy is not None and self._make_context is not None:
                self._sock = sock
                self._tunnel()
                self._restore_timeout(sock)  # the handshake and the request get all of it
            if self._make_context is not None:
                if self._context is None:
                    self._context = self._make_context()
                sock = self._context.wrap_socket(sock, server_hostname=self._host)
        except BaseException:
            self._sock = None
            sock.close()
            raise
        self._sock = sock
        self._buffer = b""

    def _tunnel(self) -> None:
        target = hostport(self._host, self._port, -1)
        lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
        lines.extend(f"{name}: {value}" for name, value in self._proxy_headers.items())
        self._sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        self._deadline = time.monotonic() + self._timeout
        status, _, head = self._read_head()
        if status != 200:
            raise NetworkError(f"the proxy refused the tunnel: {head[:80]!r}")
        if self._buffer:
            raise NetworkError("the proxy sent data before the tunnel was set up")

    def _drop_if_closed(self) -> None:
        """Close a kept-alive connection the server has closed (or sent garbage on)."""
        try:
            readable, _, _ = select.select([self._sock], [], [], 0)
        except (OSError, ValueError):
            readable = [self._sock]
        if readable:
            self.close()

    # -- reading ------------------------------------------------------------------------

    def _read_response(self) -> tuple[int, dict[str, str], bool]:
        while True:
            status, headers, head = self._read_head()
            if not 100 <= status < 200:
                break  # an interim response (100 Continue) is followed by the real one
        keep = head.startswith(b"HTTP/1.1") and headers.get("connection", "").lower() != "close"
        if status in (204, 304):
            pass
        elif headers.get("transfer-encoding", "").lower().endswith("chunked"):
            self._read_chunked()
        elif "content-length" in headers:
            try:
                self._read_exact(int(headers["content-length"]))
            except ValueError:
                raise NetworkError("malformed Content-Length") from None
        else:
            self._read_to_close()
            keep = False
        found = {name: headers[name] for name in WANTED_HEADERS if name in headers}
        return status, found, keep

    def _read_head(self) -> tuple[int, dict[str, str], bytes]:
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(self._buffer) > MAX_HEAD:
                raise NetworkError("response headers too long: not an HTTP server?")
            self._fill()
        head, self._buffer = self._buffer[:end], self._buffer[end + 4 :]
        lines = head.split(b"\r\n")
        parts = lines[0].split(b" ", 2)
        if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
            raise NetworkError(f"not an HTTP response: {lines[0][:80]!r}")
        headers: dict[str, str] = {}
        for line in lines[1:]:
            name, sep, value = line.partition(b":")
            if sep:
                headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
        return int(parts[1]), headers, head

    def _recv(self) -> bytes:
        """One read, within what is left of the response's budget (`_deadline`)."""
        left = self._deadline - time.monotonic()
        if left <= 0:
            # What the socket raises for a silent server: both count as timed out.
            raise TimeoutError("no whole response within the timeout")
        if left < self._timeout - MIN_READ_TIMEOUT:
            # (Not for an answer that comes at once: the socket keeps its timeout, no
            # syscall; the deadline is then overrun by at most MIN_READ_TIMEOUT.)
            self._sock.settimeout(left)
        data: bytes = self._sock.recv(65536)
        return data

    def _restore_timeout(self, sock: Any) -> None:
        """Give `sock` back the whole timeout a read of `_recv` may have shortened."""
        if sock.gettimeout() != self._timeout:
            sock.settimeout(self._timeout)

    def _fill(self) -> None:
        data = self._recv()
        if not data:
            raise NetworkError("the server closed the connection")
        self._buffer += data

    def _read_exact(self, size: int) -> bytes:
        if size > MAX_BODY:
            raise NetworkError(f"response body too large ({size} bytes)")
        while len(self._buffer) < size:
            self._fill()
        data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data

    def _read_line(self) -> bytes:
        while True:
            end = self._buffer.find(b"\r\n")
            if end >= 0:
                line, self._buffer = self._buffer[:end], self._buffer[end + 2 :]
                return line
            if len(self._buffer) > MAX_HEAD:
                raise NetworkError("malformed chunked response")
            self._fill()

    def _read_chunked(self) -> None:
        total = 0
        while True:
            size_text = self._read_line().split(b";", 1)[0].strip()
            try:
                size = int(size_text, 16)
            except ValueError:
                raise NetworkError(f"malformed chunk size {size_text[:20]!r}") from None
            if size == 0:
                while self._read_line():  # trailers, up to the empty line
                    pass
                return
            total += size
            if total > MAX_BODY:
                raise NetworkError("response body too large")
            self._read_exact(size)
            self._read_line()

    def _read_to_close(self) -> None:
        size = len(self._buffer)
        while size <= MAX_BODY:
            data = self._recv()
            if not data:
                return
            size += len(data)
        raise NetworkError("response body too large")


def open_socket(
    address: tuple[str, int], timeout: float, options: Optional[list[tuple[int, int, int]]]
) -> socket.socket:
    """A connected TCP socket; options are set before connecting (as urllib3 does)."""
    host, port = address
    if options is None:
        options = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
    # An ASCII name is passed as bytes: a str would go through the "idna" codec, whose
    # first use is an import (see HttpClient.warm_up).
    name: Any = host.encode("ascii") if host.isascii() else host
    error: Optional[OSError] = None
    for family, kind, proto, _, addr in socket.getaddrinfo(name, port, 0, socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        try:
            for level, option, value in options:
                sock.setsockopt(level, option, value)
            sock.settimeout(timeout)
            sock.connect(addr)
            return sock
        except OSError as exc:
            error = exc
            sock.close()
    raise error or OSError(f"could not resolve {host!r}")


def userinfo(parsed: Any) -> Optional[str]:
    """`user:password` of a urlsplit result (a proxy URL), None without a user."""
    if parsed.username is None:
        return None
    return f"{parsed.username}:{parsed.password or ''}"
