"""The HTTP client under the transport: the only module that imports ssl, certifi, urllib3.

Everything heavy is imported on the worker thread the first time a request is
made, never at `import tripwire` or `init()`. One `HttpClient` talks to one URL
(the DSN's envelope endpoint, or the Spotlight sidecar) over one kept-alive
connection, because one worker sends one request at a time.

HTTP/1.1 is spoken directly on that connection: the request is one write and the
response is parsed just enough (status, the rate-limit headers, the body
framing). Per request this costs a fifth of the CPU of a urllib3 pool round
trip and a third of `http.client`'s, which matters because the worker shares the
interpreter lock with the application. Certificates (ca_certs, SSL_CERT_FILE,
REQUESTS_CA_BUNDLE, certifi), client certificates, socket options, keep-alive
and HTTP proxies (absolute-form, and CONNECT tunnels for HTTPS) are handled
here; SOCKS proxies and proxies reached over TLS go through urllib3.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Optional

from tripwire._log import logger

# TCP keep-alive probes for keep_alive=True (long-lived processes behind NAT/LBs
# that silently drop idle connections): first probe after 45 s idle, then every 10 s.
_KEEP_ALIVE = (
    ("SOL_SOCKET", "SO_KEEPALIVE", 1),
    ("IPPROTO_TCP", "TCP_KEEPIDLE", 45),
    ("IPPROTO_TCP", "TCP_KEEPINTVL", 10),
    ("IPPROTO_TCP", "TCP_KEEPCNT", 6),
)

DEFAULT_TIMEOUT = 30.0
# Bounds on what a response may be: Relay answers with a few bytes of JSON.
_MAX_HEAD = 64 * 1024
_MAX_BODY = 1024 * 1024
# A connection idle this long is checked for a close by the server before reuse.
_IDLE_CHECK = 1.0

_WANTED_HEADERS = ("x-sentry-rate-limits", "retry-after")


class NetworkError(Exception):
    """The request got no HTTP response (refused, reset, timeout, TLS, garbage)."""


class Response:
    """Status and the response headers the transport reads (lowercase names)."""

    __slots__ = ("headers", "status")

    def __init__(self, status: int, headers: dict[str, str]) -> None:
        self.status = status
        self.headers = headers

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.headers!r}>"


class HttpClient:
    """POSTs bodies to one URL; the connection is made on the first request.

    Args:
        url: The endpoint (``http://`` or ``https://``).
        options: The client options (proxies, certificates, socket options).
        timeout: Seconds allowed for connecting and for each read.
        use_proxy: False to ignore proxy options and environment (Spotlight on localhost).
    """

    __slots__ = ("_backend", "options", "timeout", "url", "use_proxy")

    def __init__(
        self,
        url: str,
        options: Mapping[str, Any],
        timeout: float = DEFAULT_TIMEOUT,
        use_proxy: bool = True,
    ) -> None:
        self.url = url
        self.options = options
        self.timeout = timeout
        self.use_proxy = use_proxy
        self._backend: Optional[_Backend] = None

    def post(self, body: bytes, headers: Mapping[str, str]) -> Response:
        """Send one POST and read the whole response.

        Raises:
            NetworkError: no HTTP response was received.
        """
        backend = self._backend
        try:
            if backend is None:
                backend = self._backend = self._make_backend()
            return backend.post(body, headers)
        except NetworkError:
            raise
        except Exception as exc:  # socket, ssl and urllib3 errors alike
            raise NetworkError(f"{type(exc).__name__}: {exc}") from exc

    def warm_up(self) -> None:
        """Import what the first request needs now (``init()``), not on the worker.

        A first-time import on the worker (``ssl`` takes milliseconds) would stall
        the queue just when a burst at start-up fills it.
        """
        import select  # noqa: F401
        import socket  # noqa: F401

        if self.url.startswith("https"):
            import ssl  # noqa: F401

    def close(self) -> None:
        """Close the connection; a later `post` reconnects."""
        backend, self._backend = self._backend, None
        if backend is not None:
            try:
                backend.close()
            except Exception:
                logger.debug("closing the HTTP connection failed", exc_info=True)

    def forget(self) -> None:
        """Drop the connection without touching it (a forked child shares the socket)."""
        self._backend = None

    # -- set-up ----------------------------------------------------------------------

    def _make_backend(self) -> _Backend:
        from urllib.parse import urlsplit

        target = urlsplit(self.url)
        scheme = target.scheme or "http"
        host = target.hostname or ""
        port = target.port or (443 if scheme == "https" else 80)
        path = target.path or "/"
        if target.query:
            path = f"{path}?{target.query}"
        proxy = self._proxy(scheme, host) if self.use_proxy else None
        if proxy is not None:
            parsed = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
            if parsed.scheme != "http":
                # SOCKS, or TLS to the proxy itself: urllib3 knows how.
                return _Urllib3Backend(self, proxy)
            return _WireBackend(self, scheme, host, port, path, parsed)
        return _WireBackend(self, scheme, host, port, path, None)

    def _proxy(self, scheme: str, host: str) -> Optional[str]:
        """The proxy URL, as sentry_sdk picks it.

        An explicit ``https_proxy`` / ``http_proxy`` option wins; ``""`` turns the
        lookup off. Otherwise the environment (HTTPS_PROXY, HTTP_PROXY) is used
        unless NO_PROXY covers the host. HTTPS targets fall back to the http proxy.
        """
        options = self.options
        http_proxy = options.get("http_proxy")
        https_proxy = options.get("https_proxy")
        env: Optional[dict[str, str]] = None
        bypass: Optional[bool] = None

        def from_env(kind: str) -> Optional[str]:
            nonlocal env, bypass
            import urllib.request

            if bypass is None:
                bypass = bool(urllib.request.proxy_bypass(host))
            if bypass:
                return None
            if env is None:
                env = urllib.request.getproxies_environment()
            return env.get(kind)

        proxy: Optional[str] = None
        if scheme == "https" and https_proxy != "":
            proxy = https_proxy or from_env("https")
        if not proxy and http_proxy != "":
            proxy = http_proxy or from_env("http")
        return proxy or None

    def ssl_context(self) -> Any:
        """A verifying TLS context: ca_certs, SSL_CERT_FILE/REQUESTS_CA_BUNDLE, else certifi."""
        import ssl

        options = self.options
        environ = os.environ
        ca_certs = (
            options.get("ca_certs")
            or environ.get("SSL_CERT_FILE")
            or environ.get("REQUESTS_CA_BUNDLE")
        )
        ca_dir = None if options.get("ca_certs") else environ.get("SSL_CERT_DIR")
        if not ca_certs and not ca_dir:
            import certifi

            ca_certs = certifi.where()
        if ca_certs and os.path.isdir(ca_certs):
            ca_certs, ca_dir = None, ca_certs  # REQUESTS_CA_BUNDLE may name a directory
        context = ssl.create_default_context(cafile=ca_certs or None, capath=ca_dir or None)
        if options.get("cert_file"):
            context.load_cert_chain(options["cert_file"], options.get("key_file") or None)
        return context

    def proxy_headers(self, proxy_auth: Optional[str]) -> dict[str, str]:
        """``proxy_headers`` plus Basic auth from the proxy URL's user info."""
        headers = dict(self.options.get("proxy_headers") or {})
        if proxy_auth and not any(k.lower() == "proxy-authorization" for k in headers):
            import base64
            from urllib.parse import unquote

            token = base64.b64encode(unquote(proxy_auth).encode("utf-8")).decode("ascii")
            headers["Proxy-Authorization"] = f"Basic {token}"
        return headers

    def socket_options(self) -> Optional[list[tuple[int, int, int]]]:
        """``socket_options`` (replacing the defaults) plus keep-alive probes if asked."""
        import socket

        user = self.options.get("socket_options")
        keep_alive = self.options.get("keep_alive")
        if user is None and not keep_alive:
            return None
        tcp_nodelay = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        chosen = [tcp_nodelay] if user is None else [(int(a), int(b), int(c)) for a, b, c in user]
        if keep_alive:
            taken = {(level, name) for level, name, _ in chosen}
            for level_name, opt_name, value in _KEEP_ALIVE:
                level = getattr(socket, level_name, None)
                opt = getattr(socket, opt_name, None)
                if level is None or opt is None or (level, opt) in taken:
                    continue  # not on this platform, or the user's own setting wins
                chosen.append((level, opt, value))
        return chosen


class _Backend:
    def post(self, body: bytes, headers: Mapping[str, str]) -> Response:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError


class _WireBackend(_Backend):
    """One kept-alive HTTP/1.1 connection spoken directly: one write per request.

    Direct, through an HTTP proxy (absolute-form request line), or through a
    CONNECT tunnel for HTTPS. Responses are read with Content-Length, chunked or
    close-delimited bodies; anything that is not HTTP is a `NetworkError`.
    """

    def __init__(
        self, client: HttpClient, scheme: str, host: str, port: int, path: str, proxy: Any
    ) -> None:
        import time

        self._monotonic = time.monotonic
        self._client = client
        self._tls = scheme == "https"
        self._host, self._port = host, port
        self._proxy = proxy
        self._context: Any = None
        self._sock: Any = None
        self._buffer = b""
        self._last_used = 0.0
        target = _hostport(host, port, 443 if self._tls else 80)
        extra: dict[str, str] = {}
        if proxy is not None and not self._tls:
            # Plain HTTP through a proxy: absolute URL in the request line.
            path = f"http://{target}{path}"
            extra = client.proxy_headers(_auth(proxy))
        self._request_line = f"POST {path} HTTP/1.1\r\nHost: {target}\r\n"
        self._extra = "".join(f"{k}: {v}\r\n" for k, v in extra.items())
        self._socket_options = client.socket_options()

    def post(self, body: bytes, headers: Mapping[str, str]) -> Response:
        now = self._monotonic()
        if self._sock is not None and now - self._last_used > _IDLE_CHECK:
            self._drop_if_closed()
        if self._sock is None:
            self._connect()
        head = "".join(
            (
                self._request_line,
                "".join(f"{k}: {v}\r\n" for k, v in headers.items()),
                self._extra,
                f"Content-Length: {len(body)}\r\n\r\n",
            )
        ).encode("latin-1")
        try:
            self._sock.sendall(head + body)
            status, found, keep = self._read_response()
        except BaseException:
            self.close()  # the next request starts on a fresh connection
            raise
        finally:
            self._last_used = self._monotonic()
        if not keep:
            self.close()
        return Response(status, found)

    def close(self) -> None:
        sock, self._sock = self._sock, None
        self._buffer = b""
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    # -- connection ---------------------------------------------------------------------

    def _connect(self) -> None:
        import socket

        client = self._client
        proxy = self._proxy
        address = (proxy.hostname or "", proxy.port or 80) if proxy else (self._host, self._port)
        sock = _open(address, client.timeout, self._socket_options)
        try:
            if proxy is not None and self._tls:
                self._sock = sock
                self._tunnel()
            if self._tls:
                if self._context is None:
                    self._context = client.ssl_context()
                sock = self._context.wrap_socket(sock, server_hostname=self._host)
        except BaseException:
            self._sock = None
            sock.close()
            raise
        self._sock = sock
        self._buffer = b""
        del socket

    def _tunnel(self) -> None:
        target = _hostport(self._host, self._port, -1)
        lines = [f"CONNECT {target} HTTP/1.1", f"Host: {target}"]
        for name, value in self._client.proxy_headers(_auth(self._proxy)).items():
            lines.append(f"{name}: {value}")
        self._sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        status, _, head = self._read_head()
        if status != 200:
            raise NetworkError(f"the proxy refused the tunnel: {head[:80]!r}")
        if self._buffer:
            raise NetworkError("the proxy sent data before the tunnel was set up")

    def _drop_if_closed(self) -> None:
        """Close a kept-alive connection the server has closed (or sent garbage on)."""
        import select

        try:
            readable, _, _ = select.select([self._sock], [], [], 0)
        except (OSError, ValueError):
            readable = [self._sock]
        if readable:
            self.close()

    # -- response -----------------------------------------------------------------------

    def _read_response(self) -> tuple[int, dict[str, str], bool]:
        while True:
            status, headers, head = self._read_head()
            if 100 <= status < 200:
                continue  # interim response (100 Continue): the real one follows
            break
        keep = head.startswith(b"HTTP/1.1") and headers.get("connection", "").lower() != "close"
        if status in (204, 304):
            pass
        elif headers.get("transfer-encoding", "").lower().endswith("chunked"):
            self._read_chunked()
        elif "content-length" in headers:
            self._read_exact(int(headers["content-length"]))
        else:
            self._read_to_close()
            keep = False
        found = {name: headers[name] for name in _WANTED_HEADERS if name in headers}
        return status, found, keep

    def _read_head(self) -> tuple[int, dict[str, str], bytes]:
        while True:
            end = self._buffer.find(b"\r\n\r\n")
            if end >= 0:
                break
            if len(self._buffer) > _MAX_HEAD:
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

    def _fill(self) -> None:
        data = self._sock.recv(65536)
        if not data:
            raise NetworkError("the server closed the connection")
        self._buffer += data

    def _read_exact(self, size: int) -> bytes:
        if size > _MAX_BODY:
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
            if len(self._buffer) > _MAX_HEAD:
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
            self._read_exact(size)
            self._read_line()
            if total > _MAX_BODY:
                raise NetworkError("response body too large")

    def _read_to_close(self) -> None:
        size = len(self._buffer)
        while size <= _MAX_BODY:
            data = self._sock.recv(65536)
            if not data:
                return
            size += len(data)
        raise NetworkError("response body too large")


class _Urllib3Backend(_Backend):
    """SOCKS proxies and proxies spoken to over TLS, through urllib3's proxy managers."""

    def __init__(self, client: HttpClient, proxy: str) -> None:
        import urllib3

        self._url = client.url
        pool_kw: dict[str, Any] = {
            "timeout": urllib3.Timeout(connect=client.timeout, read=client.timeout),
            "maxsize": 1,
        }
        options = client.socket_options()
        if options is not None:
            pool_kw["socket_options"] = options
        if self._url.startswith("https"):
            pool_kw["ssl_context"] = client.ssl_context()
        if proxy.startswith("socks"):
            try:
                from urllib3.contrib.socks import SOCKSProxyManager
            except ImportError:
                raise NetworkError("a SOCKS proxy needs PySocks (pip install pysocks)") from None
            self._manager: Any = SOCKSProxyManager(proxy, num_pools=2, **pool_kw)
        else:
            from urllib.parse import urlsplit

            headers = client.proxy_headers(_auth(urlsplit(proxy)))
            self._manager = urllib3.ProxyManager(
                proxy, num_pools=2, proxy_headers=headers or None, **pool_kw
            )

    def post(self, body: bytes, headers: Mapping[str, str]) -> Response:
        response = self._manager.urlopen(
            "POST",
            self._url,
            body=body,
            headers=dict(headers),
            retries=False,
            redirect=False,
            preload_content=True,
        )
        found: dict[str, str] = {}
        for name in _WANTED_HEADERS:
            value = response.headers.get(name)
            if value is not None:
                found[name] = value
        return Response(int(response.status), found)

    def close(self) -> None:
        self._manager.clear()


def _auth(parsed: Any) -> Optional[str]:
    if parsed.username is None:
        return None
    return f"{parsed.username}:{parsed.password or ''}"


def _hostport(host: str, port: int, default: int) -> str:
    if ":" in host:
        host = f"[{host}]"
    return host if port == default else f"{host}:{port}"


def _open(address: tuple[str, int], timeout: float, options: Any) -> Any:
    """A connected TCP socket; socket options are set before connecting (as urllib3 does)."""
    import socket

    host, port = address
    if options is None:
        options = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]
    error: Optional[OSError] = None
    for family, kind, proto, _, addr in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM):
        sock = socket.socket(family, kind, proto)
        try:
            for level, name, value in options:
                sock.setsockopt(level, name, value)
            sock.settimeout(timeout)
            sock.connect(addr)
            return sock
        except OSError as exc:
            error = exc
            sock.close()
    raise error or OSError(f"could not resolve {host!r}")
