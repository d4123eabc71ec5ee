"""`Http2Transport`: the sync transport speaking HTTP/2 (h2) to an ``https`` DSN.

As sentry_sdk 2.75's (``_experiments={"transport_http2": True}``): HTTP/2 when
the DSN is ``https`` (negotiated by ALPN; a server that only speaks HTTP/1.1 gets
HTTP/1.1), HTTP/1.1 otherwise; ``TIMEOUT`` is 15 s. Needs ``httpcore[http2]`` as
sentry_sdk does (its h2 is what speaks the protocol); without it, it warns and
sends as `HttpTransport` does, as sentry_sdk does.

The requests themselves: `H2Wire`, h2's state machine on one kept-alive TLS
socket, one write per request (headers and body frames together; httpcore makes
three, each a TLS record and a system call: about twice the CPU). Through a
proxy, httpcore's pools (`HttpcoreBackend`). Everything else is `HttpTransport`'s:
the worker thread, the policy (rate limits, client reports, retry, backoff,
spool), certificates and socket options from the same options. One connection.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Any, Callable, Optional
from urllib.parse import urlsplit

from tripwire._log import logger
from tripwire.transport._http11 import (
    MAX_BODY,
    WANTED_HEADERS,
    Connection,
    NetworkError,
    Response,
    hostport,
    open_socket,
    userinfo,
)
from tripwire.transport._http_client import Backend, HttpClient
from tripwire.transport._http_transport import HttpTransport


def http2_available() -> bool:
    """True if httpcore and h2 are installed (sentry_sdk's ``HTTP2_ENABLED``)."""
    return all(importlib.util.find_spec(name) is not None for name in ("httpcore", "h2"))


class Http2Transport(HttpTransport):
    """Sends envelopes over HTTP/2 (for an ``https`` DSN) through httpcore."""

    TIMEOUT = 15.0

    def __init__(self, options: dict[str, Any]) -> None:
        self._h2 = http2_available()
        if not self._h2:
            logger.warning(
                "You tried to use HTTP2Transport but don't have httpcore[http2] installed."
                " Falling back to HTTPTransport."
            )
        super().__init__(options)

    def _http_backend(self) -> Optional[Callable[[HttpClient, Optional[str]], Backend]]:
        return _backend_for if self._h2 else None

    def __repr__(self) -> str:
        return f"<Http2Transport {self.options.get('dsn')!r}>"


def _backend_for(client: HttpClient, proxy: Optional[str]) -> Backend:
    """HTTP/2 for an https URL (h2 directly, or httpcore through a proxy); else HTTP/1.1."""
    if proxy is not None:
        return HttpcoreBackend(client, proxy)
    if client.url.startswith("https"):
        return H2Wire(client)
    target = urlsplit(client.url)
    path = target.path + (f"?{target.query}" if target.query else "")
    return _Http11(
        Connection(
            target.hostname or "",
            target.port or 80,
            path,
            timeout=client.timeout,
            socket_options=client.socket_options(),
        )
    )


class _Http11:
    """The built-in HTTP/1.1 connection as a `Backend` (a plain-http DSN, as sentry_sdk)."""

    __slots__ = ("_conn",)

    def __init__(self, conn: Connection) -> None:
        self._conn = conn

    def post(self, body: bytes, headers: Mapping[str, str]) -> Response:
        return self._conn.post(body, headers)

    def close(self) -> None:
        self._conn.close()


class H2Wire:
    """One HTTP/2 connection over TLS, made on the first request; one request at a time.

    A server that does not pick ``h2`` in ALPN gets HTTP/1.1 from then on. Errors
    are raised as they come (HttpClient classifies them); the connection is then
    dropped and the next request reconnects.
    """

    __slots__ = (
        "_authority",
        "_client",
        "_config",
        "_conn",
        "_events",
        "_fallback",
        "_head",
        "_host",
        "_new",
        "_port",
        "_sock",
    )

    def __init__(self, client: HttpClient) -> None:
        # Lazy: an optional dependency, imported here (init()), never on the worker thread.
        import h2.config
        import h2.connection
        import h2.events

        self._events: Any = h2.events
        self._config = h2.config.H2Configuration(client_side=True, header_encoding=None)
        self._new: Any = h2.connection.H2Connection

        target = urlsplit(client.url)
        self._client = client
        self._host = target.hostname or ""
        self._port = target.port or 443
        self._authority = hostport(self._host, self._port, 443)
        path = target.path + (f"?{target.query}" if target.query else "")
        self._head = [
            (":method", "POST"),
            (":scheme", "https"),
            (":authority", self._authority),
            (":path", path or "/"),
        ]
        self._sock: Any = None
        self._conn: Any = None
        self._fallback: Optional[Connection] = None
        client.ssl_context()  # certificates read now: a bad ca_certs fails at init

    def post(self, body: bytes, headers: Mapping[str, str]) -> Response:
        if self._fallback is not None:
            return self._fallback.post(body, headers)
        try:
            fallback = self._connect() if self._conn is None else None
            if fallback is not None:
                return fallback.post(body, headers)
            return self._exchange(body, headers)
        except BaseException:
            self.close()
            raise

    def _connect(self) -> Optional[Connection]:
        """Connect; if the server chose HTTP/1.1, the connection that speaks it instead."""
        client = self._client
        context = client.ssl_context()
        context.set_alpn_protocols(["h2", "http/1.1"])
        raw = open_socket((self._host, self._port), client.timeout, client.socket_options())
        try:
            sock = context.wrap_socket(raw, server_hostname=self._host)
        except BaseException:
            raw.close()
            raise
        if sock.selected_alpn_protocol() != "h2":
            sock.close()
            fallback = self._fallback = Connection(
                self._host,
                self._port,
                self._head[3][1],
                timeout=client.timeout,
                socket_options=client.socket_options(),
                ssl_context=lambda: context,
            )
            return fallback
        conn = self._new(config=self._config)
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        self._sock, self._conn = sock, conn
        return None

    def _exchange(self, body: bytes, headers: Mapping[str, str]) -> Response:
        events = self._events
        conn, sock = self._conn, self._sock
        stream = conn.get_next_available_stream_id()
        fields = [*self._head, *((k.lower(), v) for k, v in headers.items())]
        fields.append(("content-length", str(len(body))))
        conn.send_headers(stream, fields, end_stream=not body)
        view = memoryview(body)
        status = 0
        found: dict[str, str] = {}
        received = 0
        ended = False
        while True:
            # Send as much of the body as flow control allows, with what is queued.
            while view:
                window = min(conn.local_flow_control_window(stream), conn.max_outbound_frame_size)
                if window <= 0:
                    break
                chunk, view = view[:window], view[window:]
                conn.send_data(stream, chunk, end_stream=not view)
            out = conn.data_to_send()
            if out:
                sock.sendall(out)
            if ended:
                return Response(status, found)
            data = sock.recv(65536)
            if not data:
                raise NetworkError("the server closed the connection")
            for event in conn.receive_data(data):
                if isinstance(event, events.ResponseReceived) and event.stream_id == stream:
                    for name, value in event.headers:
                        key = bytes(name).decode("latin-1")
                        if key == ":status":
                            status = int(value)
                        elif key in WANTED_HEADERS:
                            found[key] = bytes(value).decode("latin-1")
                elif isinstance(event, events.DataReceived):
                    conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                    received += event.flow_controlled_length
                    if received > MAX_BODY:
                        raise NetworkError("response body too large")
                elif isinstance(event, events.StreamEnded) and event.stream_id == stream:
                    ended = True
                elif isinstance(event, events.StreamReset) and event.stream_id == stream:
                    raise NetworkError(f"the server reset the stream ({event.error_code})")
                elif isinstance(event, events.ConnectionTerminated):
                    if not ended:
                        raise NetworkError(f"the server ended the connection ({event.error_code})")
                    self.close()  # answered; the next request reconnects
                    return Response(status, found)

    def close(self) -> None:
        sock, self._sock, self._conn = self._sock, None, None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass
        fallback, self._fallback = self._fallback, None
        if fallback is not None:
            fallback.close()


class HttpcoreBackend:
    """One httpcore pool for `client`'s URL: direct, through an HTTP proxy, or SOCKS.

    Built at ``init()`` (`HttpClient.warm_up`), so httpcore and h2 are imported then,
    never on the worker thread.
    """

    __slots__ = ("_extensions", "_pool", "_url")

    def __init__(self, client: HttpClient, proxy: Optional[str]) -> None:
        import httpcore  # lazy: optional dependency, only for this transport

        https = client.url.startswith("https")
        if https:
            import h2.connection  # noqa: F401 - lazy: imported now, not on the worker thread
        opts: dict[str, Any] = {"http1": True, "http2": https, "retries": 0}
        socket_options = client.socket_options()
        if socket_options is not None:
            opts["socket_options"] = socket_options
        if https:
            opts["ssl_context"] = client.ssl_context()
        self._url = client.url
        timeout = client.timeout
        self._extensions = {
            "timeout": {"connect": timeout, "read": timeout, "write": timeout, "pool": timeout}
        }
        self._pool: Any = None
        if proxy is not None:
            if proxy.startswith("socks"):
                opts.pop("socket_options", None)
                try:
                    self._pool = httpcore.SOCKSProxy(proxy_url=proxy, **opts)
                except (ImportError, RuntimeError):
                    logger.warning(
                        "You have configured a SOCKS proxy (%s) but support for SOCKS"
                        " proxies is not installed. Disabling proxy support.",
                        proxy,
                    )
            else:
                headers = list(client.proxy_headers(userinfo(urlsplit(proxy))).items())
                self._pool = httpcore.HTTPProxy(proxy_url=proxy, proxy_headers=headers, **opts)
        if self._pool is None:
            self._pool = httpcore.ConnectionPool(**opts)

    def post(self, body: bytes, headers: Mapping[str, str]) -> Response:
        response = self._pool.request(
            "POST",
            self._url,
            content=body,
            headers=list(headers.items()),
            extensions=self._extensions,
        )
        found: dict[str, str] = {}
        for name, value in response.headers:
            key = name.decode("latin-1").lower()
            if key in WANTED_HEADERS:
                found[key] = value.decode("latin-1")
        return Response(int(response.status), found)

    def close(self) -> None:
        self._pool.close()


__all__ = ["H2Wire", "Http2Transport", "HttpcoreBackend", "http2_available"]
