"""The urllib3 path: SOCKS proxies, proxies spoken to over TLS, `http_client="urllib3"`,
and transports that make their own pool (`HttpTransport._make_pool`).

Everything else goes through the HTTP/1.1 client (`_http11`), a fifth of the CPU per
request. urllib3 itself stays a lazy import: most processes never take this path,
and importing it costs ~30 ms and loads ssl.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Optional
from urllib.parse import urlsplit

from tripwire.transport._http11 import WANTED_HEADERS, NetworkError, Response, userinfo

if TYPE_CHECKING:
    from tripwire.transport._http_client import HttpClient


def make_pool(client: HttpClient, proxy: Optional[str], pool_kw: dict[str, Any]) -> Any:
    """A urllib3 PoolManager, or ProxyManager for `proxy` (HTTP, HTTPS or SOCKS)."""
    import urllib3  # lazy: optional path, ~30 ms (see the module docstring)

    if proxy is None:
        return urllib3.PoolManager(**pool_kw)
    if proxy.startswith("socks"):
        try:  # lazy: needs PySocks, an optional dependency
            from urllib3.contrib.socks import SOCKSProxyManager
        except ImportError:
            raise NetworkError("a SOCKS proxy needs PySocks (pip install pysocks)") from None
        return SOCKSProxyManager(proxy, **pool_kw)
    pool_kw = dict(pool_kw)
    headers = client.proxy_headers(userinfo(urlsplit(proxy)))
    if headers:
        pool_kw.setdefault("proxy_headers", headers)
    if proxy.startswith("https"):
        # The proxy's certificate is checked against the same CAs (ca_certs,
        # SSL_CERT_FILE, ...) as the server's; urllib3 would use the system's.
        # Older urllib3 (< 2.7) reads ssl_context for an http:// target's proxy.
        context = client.ssl_context()
        pool_kw.setdefault("proxy_ssl_context", context)
        pool_kw.setdefault("ssl_context", context)
    return urllib3.ProxyManager(proxy, **pool_kw)


class _Urllib3Backend:
    """urllib3 for SOCKS proxies, proxies spoken to over TLS, `http_client="urllib3"`,
    and transports that make their own pool (`manager`)."""

    def __init__(self, client: HttpClient, proxy: Optional[str], manager: Any = None) -> None:
        self._url = client.url
        if manager is None:
            manager = make_pool(client, proxy, client.pool_options())
        self._manager = manager

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
        for name in WANTED_HEADERS:
            value = response.headers.get(name)
            if value is not None:
                found[name] = value
        return Response(int(response.status), found)

    def close(self) -> None:
        self._manager.clear()
