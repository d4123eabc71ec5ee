"""The HTTP client under the transport: the only module that imports ssl, certifi, urllib3.

Everything heavy is imported on the worker thread the first time a request is
made, never at `import tripwire` or `init()`. One `HttpClient` talks to one URL
(the DSN's envelope endpoint, or the Spotlight sidecar) over one kept-alive
connection, because one worker sends one request at a time.

Requests go through the standard library's `http.client` on that connection: per
request it costs less than half the CPU of a urllib3 pool round trip, and the
worker shares the interpreter lock with the application. Certificates, client
certificates, socket options, keep-alive and HTTP proxies (plain, and CONNECT
tunnels for HTTPS) are handled here; SOCKS proxies and proxies reached over TLS
go through urllib3's proxy managers instead.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, Callable, Optional

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
        except Exception as exc:  # socket, ssl, http.client and urllib3 errors alike
            raise NetworkError(f"{type(exc).__name__}: {exc}") from exc

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
            return _StdlibBackend(self, scheme, host, port, path, parsed)
        return _StdlibBackend(self, scheme, host, port, path, None)

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


class _StdlibBackend(_Backend):
    """One `http.client` connection: direct, through an HTTP proxy, or a CONNECT tunnel."""

    def __init__(
        self, client: HttpClient, scheme: str, host: str, port: int, path: str, proxy: Any
    ) -> None:
        import http.client
        import time

        self._monotonic = time.monotonic
        self._last_used = 0.0
        self._extra_headers: dict[str, str] = {}
        self._path = path
        timeout = client.timeout
        if proxy is None:
            peer_host, peer_port = host, port
        else:
            peer_host, peer_port = proxy.hostname or "", proxy.port or 80
        conn: http.client.HTTPConnection
        if scheme == "https":
            conn = http.client.HTTPSConnection(
                peer_host, peer_port, timeout=timeout, context=client.ssl_context()
            )
            if proxy is not None:
                # TLS to the server inside a CONNECT tunnel through the proxy.
                conn.set_tunnel(host, port, headers=client.proxy_headers(_auth(proxy)))
        else:
            conn = http.client.HTTPConnection(peer_host, peer_port, timeout=timeout)
            if proxy is not None:
                # Plain HTTP through a proxy: absolute URL in the request line.
                self._path = f"http://{_hostport(host, port, 80)}{path}"
                self._extra_headers = client.proxy_headers(_auth(proxy))
        options = client.socket_options()
        if options is not None:
            conn._create_connection = _connector(options)  # type: ignore[attr-defined]
        self._conn = conn

    def post(self, body: bytes, headers: Mapping[str, str]) -> Response:
        conn = self._conn
        now = self._monotonic()
        if now - self._last_used > _IDLE_CHECK:
            _drop_if_closed(conn)
        if self._extra_headers:
            headers = {**headers, **self._extra_headers}
        try:
            conn.request("POST", self._path, body=body, headers=dict(headers))
            response = conn.getresponse()
            response.read()
        except BaseException:
            conn.close()  # the next request starts on a fresh connection
            raise
        finally:
            self._last_used = self._monotonic()
        found: dict[str, str] = {}
        for name in _WANTED_HEADERS:
            value = response.getheader(name)
            if value is not None:
                found[name] = value
        return Response(response.status, found)

    def close(self) -> None:
        self._conn.close()


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


def _connector(options: list[tuple[int, int, int]]) -> Callable[..., Any]:
    """`socket.create_connection` that sets `options` before connecting (as urllib3 does)."""
    import socket

    def create_connection(
        address: tuple[str, int], timeout: Any = None, source_address: Any = None
    ) -> socket.socket:
        host, port = address
        error: Optional[OSError] = None
        for family, kind, proto, _, addr in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM):
            sock = socket.socket(family, kind, proto)
            try:
                for level, name, value in options:
                    sock.setsockopt(level, name, value)
                if timeout is not None:
                    sock.settimeout(timeout)
                if source_address:
                    sock.bind(source_address)
                sock.connect(addr)
                return sock
            except OSError as exc:
                error = exc
                sock.close()
        raise error or OSError(f"could not resolve {host!r}")

    return create_connection


def _drop_if_closed(conn: Any) -> None:
    """Close a kept-alive connection the server has closed (or sent garbage on) meanwhile."""
    sock = conn.sock
    if sock is None:
        return
    import select

    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        readable = [sock]
    if readable:
        conn.close()
