"""The HTTP client under the transport: the only module that imports ssl, certifi, urllib3.

Nothing heavy is imported at `import tripwire`; what requests need is imported by
`HttpClient.warm_up()` at ``init()``, never on the worker thread (see there). One
`HttpClient` talks to one URL (the DSN's envelope endpoint, or the Spotlight
sidecar) over one kept-alive connection; the transport keeps two of them (see
`Worker._meanwhile`).

The connection itself speaks HTTP/1.1 directly (`_http11`, for its speed). This
module turns the options into its settings: certificates (ca_certs,
SSL_CERT_FILE, REQUESTS_CA_BUNDLE, certifi), client certificates, socket
options, keep-alive, HTTP proxies (absolute-form, and CONNECT tunnels for
HTTPS) with the standard environment variables. SOCKS proxies and proxies
reached over TLS go through urllib3's proxy managers instead (`_urllib3`).
"""

from __future__ import annotations

import base64
import os
import socket
import sys
from collections.abc import Mapping
from typing import Any, Callable, Optional, Protocol, Union
from urllib.parse import unquote, urlsplit

from tripwire._json import dumps
from tripwire._log import logger
from tripwire.transport._http11 import Connection, NetworkError, Response, userinfo
from tripwire.transport._urllib3 import _Urllib3Backend

# TCP keep-alive probes for keep_alive=True (long-lived processes behind NAT/LBs
# that silently drop idle connections): first probe after 45 s idle, then every 10 s.
_KEEP_ALIVE = (
    ("SOL_SOCKET", "SO_KEEPALIVE", 1),
    ("IPPROTO_TCP", "TCP_KEEPIDLE", 45),
    ("IPPROTO_TCP", "TCP_KEEPINTVL", 10),
    ("IPPROTO_TCP", "TCP_KEEPCNT", 6),
)

DEFAULT_TIMEOUT = 30.0


class Backend(Protocol):
    """What sends one request whole: urllib3's pool, or httpcore's (`_http2`)."""

    def post(self, body: bytes, headers: Mapping[str, str]) -> Response:
        """Send one POST and read the answer (exceptions are classified by HttpClient)."""

    def close(self) -> None:
        """Close its connections."""


# Errors that say the server cannot be reached now: retrying at once, or waiting for
# it at exit, is pointless.
_UNREACHABLE = (ConnectionRefusedError, ConnectionResetError, ConnectionAbortedError)
_TIMEOUT_NAMES = frozenset({"timeout", "TimeoutError"})


def classify(exc: BaseException) -> tuple[bool, bool, bool]:
    """(unreachable, hopeless, timed_out) for a failed request's exception and its causes.

    Hopeless: a certificate the configured CAs reject (no retry can succeed).
    Unreachable: that, a refused or reset connection, or any TLS failure.
    Timed out: the server took the connection or request and did not answer in time.
    """
    ssl = sys.modules.get("ssl")
    seen: set[int] = set()
    todo: list[Any] = [exc]
    unreachable = timed_out = False
    while todo:
        err = todo.pop()
        if not isinstance(err, BaseException) or id(err) in seen:
            continue
        seen.add(id(err))
        if ssl is not None and isinstance(err, ssl.SSLCertVerificationError):
            return True, True, False
        if isinstance(err, _UNREACHABLE) or (ssl is not None and isinstance(err, ssl.SSLError)):
            unreachable = True
        # socket.timeout (an OSError before 3.10), TimeoutError, urllib3's timeouts.
        if any(cls.__name__ in _TIMEOUT_NAMES for cls in type(err).__mro__):
            timed_out = True
        # urllib3 keeps the underlying error in `reason` (MaxRetryError, ProxyError).
        todo.extend((getattr(err, "reason", None), err.__cause__, err.__context__))
    return unreachable, False, timed_out and not unreachable


class HttpClient:
    """POSTs bodies to one URL; the connection is made on the first request.

    Args:
        url: The endpoint (``http://`` or ``https://``).
        options: The client options (proxies, certificates, socket options).
        timeout: Seconds allowed for connecting, and for each answer in all.
        use_proxy: False to ignore proxy options and environment (Spotlight on localhost).
        pool: Makes the urllib3 pool to send through (a transport's `_make_pool`
            override); None: the built-in connection, or urllib3 where needed.
        backend: Makes another backend from this client and its proxy (the HTTP/2
            transport's httpcore pool); wins over `pool`.
    """

    __slots__ = ("_backend", "make_backend", "options", "pool", "timeout", "url", "use_proxy")

    def __init__(
        self,
        url: str,
        options: Mapping[str, Any],
        timeout: float = DEFAULT_TIMEOUT,
        use_proxy: bool = True,
        pool: Optional[Callable[[], Any]] = None,
        backend: Optional[Callable[[HttpClient, Optional[str]], Backend]] = None,
    ) -> None:
        self.url = url
        self.options = options
        self.timeout = timeout
        self.use_proxy = use_proxy
        self.pool = pool
        self.make_backend = backend
        self._backend: Optional[Union[Connection, Backend]] = None

    def post(
        self,
        body: bytes,
        headers: Mapping[str, str],
        meanwhile: Optional[Callable[[], None]] = None,
    ) -> Response:
        """Send one POST and read the whole response.

        `meanwhile` (which must not raise) runs while the server works on the
        request, between writing it and reading the answer. urllib3 cannot split a
        request that way: it skips `meanwhile`, whose work then waits its turn.

        Raises:
            NetworkError: no HTTP response was received.
        """
        backend = self._backend
        try:
            if backend is None:
                backend = self._backend = self._make_backend()
            if isinstance(backend, Connection):
                return backend.post(body, headers, meanwhile)
            return backend.post(body, headers)
        except NetworkError:
            raise
        except Exception as exc:  # socket, ssl and urllib3 errors alike
            unreachable, hopeless, timed_out = classify(exc)
            message = f"{type(exc).__name__}: {exc}"
            raise NetworkError(message, unreachable, hopeless, timed_out) from exc

    def warm_up(self) -> None:
        """Import what requests need now (``init()``), never on the worker thread.

        A first import on the worker would stall the queue just when a burst at
        start-up fills it (``ssl`` takes milliseconds), and a fork while the worker
        holds an import lock would deadlock the child on that module forever.
        """
        dumps(None)  # picks the JSON backend (an import attempt of orjson) now
        if self.url.startswith("https"):
            "localhost".encode("idna")  # ssl encodes the server name with this codec
            # Lazy, here and below: ssl and certifi only for an https URL (ssl costs
            # ~10 ms to import), urllib3 only on its path (see _urllib3.py).
            import ssl  # noqa: F401

            import certifi  # noqa: F401
        if self.use_proxy:
            # Proxy settings are read now, as sentry_sdk reads them at init; a SOCKS
            # proxy imports urllib3 here too.
            self._backend = self._make_backend()

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

    def _make_backend(self) -> Union[Connection, Backend]:

        target = urlsplit(self.url)
        scheme = target.scheme or "http"
        host = target.hostname or ""
        port = target.port or (443 if scheme == "https" else 80)
        path = target.path or "/"
        if target.query:
            path = f"{path}?{target.query}"
        proxy = self._proxy(scheme, host) if self.use_proxy else None
        if self.make_backend is not None:
            return self.make_backend(self, proxy)
        if self.pool is not None:
            return _Urllib3Backend(self, proxy, self.pool())
        experiments = self.options.get("_experiments") or {}
        if experiments.get("http_client") == "urllib3":
            # Escape hatch: every request through urllib3 (for networks where the
            # built-in HTTP/1.1 connection misbehaves); costs more CPU per request.
            return _Urllib3Backend(self, proxy)
        if proxy is not None:
            parsed = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
            if parsed.scheme != "http":
                # SOCKS, or TLS to the proxy itself: urllib3 knows how.
                return _Urllib3Backend(self, proxy)
            return _wire_backend(self, scheme, host, port, path, parsed)
        return _wire_backend(self, scheme, host, port, path, None)

    def proxy_url(self) -> Optional[str]:
        """The proxy requests to `url` go through, or None."""

        target = urlsplit(self.url)
        return self._proxy(target.scheme or "http", target.hostname or "")

    def pool_options(self) -> dict[str, Any]:
        """Keyword arguments for a urllib3 pool manager with these options."""
        import urllib3  # lazy: only on the urllib3 path (see warm_up)

        pool_kw: dict[str, Any] = {
            "num_pools": 2,
            "maxsize": 1,
            "timeout": urllib3.Timeout(connect=self.timeout, read=self.timeout),
        }
        socket_options = self.socket_options()
        if socket_options is not None:
            pool_kw["socket_options"] = socket_options
        if self.url.startswith("https"):
            pool_kw["ssl_context"] = self.ssl_context()
        return pool_kw

    def _proxy(self, scheme: str, host: str) -> Optional[str]:
        """The proxy URL, as sentry_sdk picks it.

        An explicit ``https_proxy`` / ``http_proxy`` option wins; ``""`` turns the
        lookup off. Otherwise the environment (HTTPS_PROXY, HTTP_PROXY) is used
        unless NO_PROXY covers the host. HTTPS targets fall back to the http proxy.
        """
        options = self.options
        http_proxy = options.get("http_proxy")
        https_proxy = options.get("https_proxy")

        def from_env(kind: str) -> Optional[str]:
            return None if _no_proxy(host) else _env_proxy(kind)

        proxy: Optional[str] = None
        if scheme == "https" and https_proxy != "":
            proxy = https_proxy or from_env("https")
        if not proxy and http_proxy != "":
            proxy = http_proxy or from_env("http")
        return proxy or None

    def ssl_context(self) -> Any:
        """A verifying TLS context: ca_certs, SSL_CERT_FILE/REQUESTS_CA_BUNDLE, else certifi."""
        import ssl  # lazy: only for https (see warm_up)

        options = self.options
        environ = os.environ
        ca_certs = (
            options.get("ca_certs")
            or environ.get("SSL_CERT_FILE")
            or environ.get("REQUESTS_CA_BUNDLE")
        )
        ca_dir = None if options.get("ca_certs") else environ.get("SSL_CERT_DIR")
        if not ca_certs and not ca_dir:
            import certifi  # lazy: see warm_up

            ca_certs = certifi.where()
        if ca_certs and os.path.isdir(ca_certs):
            ca_certs, ca_dir = None, ca_certs  # REQUESTS_CA_BUNDLE may name a directory
        context = ssl.create_default_context(cafile=ca_certs or None, capath=ca_dir or None)
        cert_file = options.get("cert_file") or environ.get("CLIENT_CERT_FILE")
        if cert_file:
            key_file = options.get("key_file") or environ.get("CLIENT_KEY_FILE")
            context.load_cert_chain(cert_file, key_file or None)
        return context

    def proxy_headers(self, proxy_auth: Optional[str]) -> dict[str, str]:
        """``proxy_headers`` plus Basic auth from the proxy URL's user info."""
        headers = dict(self.options.get("proxy_headers") or {})
        if proxy_auth and not any(k.lower() == "proxy-authorization" for k in headers):
            token = base64.b64encode(unquote(proxy_auth).encode("utf-8")).decode("ascii")
            headers["Proxy-Authorization"] = f"Basic {token}"
        return headers

    def socket_options(self) -> Optional[list[tuple[int, int, int]]]:
        """``socket_options`` (replacing the defaults) plus keep-alive probes if asked."""

        user = self.options.get("socket_options")
        keep_alive = self.options.get("keep_alive")
        if user is None and not keep_alive:
            return None
        tcp_nodelay = (socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        chosen = [tcp_nodelay] if user is None else [(int(a), int(b), int(c)) for a, b, c in user]
        if keep_alive:
            taken = {(level, name) for level, name, _ in chosen}
            # The user's own setting of an option wins.
            chosen.extend(o for o in keep_alive_socket_options() if (o[0], o[1]) not in taken)
        return chosen


def keep_alive_socket_options() -> list[tuple[int, int, int]]:
    """`_KEEP_ALIVE` as numeric socket options, those this platform has."""

    found = []
    for level_name, opt_name, value in _KEEP_ALIVE:
        level = getattr(socket, level_name, None)
        opt = getattr(socket, opt_name, None)
        if level is not None and opt is not None:
            found.append((level, opt, value))
    return found


def _wire_backend(
    client: HttpClient, scheme: str, host: str, port: int, path: str, proxy: Any
) -> Connection:
    """The direct connection for the client's options (proxy: a urlsplit result)."""
    return Connection(
        host,
        port,
        path,
        timeout=client.timeout,
        socket_options=client.socket_options(),
        ssl_context=client.ssl_context if scheme == "https" else None,
        proxy=(proxy.hostname or "", proxy.port or 80) if proxy is not None else None,
        proxy_headers=client.proxy_headers(userinfo(proxy)) if proxy is not None else None,
    )


def _env_proxy(kind: str) -> Optional[str]:
    """``<kind>_proxy`` from the environment (lowercase wins, as in urllib)."""
    environ = os.environ
    name = f"{kind}_proxy"
    value = environ.get(name)
    if value is None:
        if kind == "http" and "REQUEST_METHOD" in environ:
            return None  # CGI: HTTP_PROXY may come from a request header (httpoxy)
        value = environ.get(name.upper())
    return value or None


def _no_proxy(host: str) -> bool:
    """True if NO_PROXY / no_proxy covers `host` (``*``, a name or a domain suffix)."""
    environ = os.environ
    value = environ.get("no_proxy")
    if value is None:
        value = environ.get("NO_PROXY", "")
    host = host.lower().strip("[]")
    for entry in value.split(","):
        entry = entry.strip().lower()
        if not entry:
            continue
        if entry == "*":
            return True
        entry = entry.lstrip(".")
        if entry.startswith("[") and "]" in entry:
            entry = entry[1 : entry.index("]")]
        elif entry.count(":") == 1:
            entry = entry.partition(":")[0]  # host:port: the port is not checked
        if host == entry or host.endswith("." + entry):
            return True
    return False
