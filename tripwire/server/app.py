"""The Starlette application of the local backend, and ways to run it.

`create_app` builds the app on a store; `ServerThread` runs it on a background
thread (for ``tripwire demo``, ``tripwire run`` and tests); `serve` runs it in the
foreground (``tripwire server``).
"""

from __future__ import annotations

import secrets
import socket
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Optional, Union

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.routing import Mount, Route

import tripwire
from tripwire.client import BaseClient
from tripwire.server import api, ingest, stream, web
from tripwire.server import convertors as convertors
from tripwire.server.limits import (
    MAX_BODY_BYTES,
    MAX_DB_BYTES,
    MAX_ENVELOPE_BYTES,
    ByteBudget,
    default_inflight_bytes,
)
from tripwire.server.origins import OriginMiddleware, OriginPolicy
from tripwire.server.ratelimits import EnforcedRateLimits
from tripwire.server.retention import Retention
from tripwire.server.store import PathLike, Store, default_db_path

if TYPE_CHECKING:
    import uvicorn

DEFAULT_HOST = "127.0.0.1"
# Spotlight's sidecar port: with the server there, an SDK's `spotlight=True` reaches it.
DEFAULT_PORT = 8969
MAX_DECOMPRESSED_BYTES = MAX_ENVELOPE_BYTES

_LOOPBACK_NAMES = ("127.0.0.1", "localhost", "::1", "[::1]")


class ServerState:
    """What the request handlers share: the store, limits and the live broadcaster."""

    def __init__(
        self,
        store: Store,
        rate_limits: EnforcedRateLimits,
        max_body_bytes: int,
        max_decompressed_bytes: int,
        max_inflight_bytes: int,
        broadcaster: stream.Broadcaster,
    ) -> None:
        self.store = store
        self.rate_limits = rate_limits
        self.max_body_bytes = max_body_bytes
        self.max_decompressed_bytes = max_decompressed_bytes
        # What the requests in progress hold at once (bodies, decoded, parsed).
        self.budget = ByteBudget(max_inflight_bytes)
        self.broadcaster = broadcaster
        # Put in every form of the pages and required back (`tripwire.server.web`):
        # with the origin check, what keeps other sites from posting them.
        self.form_token = secrets.token_urlsafe(32)
        self.default_project_id: int = store.default_project()["id"]


def create_app(
    db: Union[PathLike, Store, None] = None,
    rate_limits: Iterable[str] = (),
    max_body_bytes: int = MAX_BODY_BYTES,
    max_decompressed_bytes: int = MAX_DECOMPRESSED_BYTES,
    allowed_hosts: Optional[Iterable[str]] = _LOOPBACK_NAMES,
    allow_origins: Iterable[str] = (),
    max_inflight_bytes: Optional[int] = None,
    max_db_bytes: Optional[int] = MAX_DB_BYTES,
    stream_history_bytes: int = stream.HISTORY_BYTES,
    stream_backlog_bytes: int = stream.BACKLOG_BYTES,
    max_stream_body: int = stream.MAX_STREAM_BODY,
    retention_days: Optional[float] = None,
    retention_bytes: Optional[int] = None,
) -> Starlette:
    """Build the backend's ASGI app.

    Every limit is in bytes; the defaults are in `tripwire.server.limits` and
    `tripwire.server.stream`.

    Args:
        db: a `Store`, or the database path (default: `default_db_path()`).
        rate_limits: limits to answer with, e.g. ``["60:error:key"]`` (see
            `tripwire.server.ratelimits`).
        max_body_bytes: the largest request body accepted, as sent (413 beyond).
        max_decompressed_bytes: the largest body once decompressed (413 beyond).
        allowed_hosts: ``Host`` header values served (DNS-rebinding protection for a
            server on loopback); None serves any.
        allow_origins: web origins (``http://localhost:3000``) whose pages may use the
            server besides its own (see `tripwire.server.origins`).
        max_inflight_bytes: what all requests in progress may hold at once (503
            beyond); default: enough for one request of the largest size.
        max_db_bytes: the database size beyond which envelopes are refused (507);
            None for no limit.
        stream_history_bytes: recent arrivals kept for the live page and ``/stream``.
        stream_backlog_bytes: how far a live reader may fall behind before it is dropped.
        max_stream_body: larger envelopes are stored but not sent on ``/stream``.
        retention_days: data received longer ago is deleted (at start, then every
            minute while data arrives); None keeps it.
        retention_bytes: the oldest data is deleted while the database holds more
            (keep it under `max_db_bytes`, past which envelopes are refused).
    """
    store = db if isinstance(db, Store) else Store(db if db is not None else default_db_path())
    store.max_bytes = max_db_bytes
    store.retention = Retention(retention_days, retention_bytes)
    store.prune()
    policy = OriginPolicy(allow_origins)
    state = ServerState(
        store,
        EnforcedRateLimits.parse(rate_limits),
        max_body_bytes,
        max_decompressed_bytes,
        max_inflight_bytes
        if max_inflight_bytes is not None
        else default_inflight_bytes(max_body_bytes, max_decompressed_bytes),
        stream.Broadcaster(
            history_bytes=stream_history_bytes,
            backlog_bytes=stream_backlog_bytes,
            max_stream_body=max_stream_body,
        ),
    )
    routes = [
        Route("/api/{project_id:id}/envelope/", ingest.envelope_endpoint, methods=["POST"]),
        Route("/api/{project_id:id}/store/", ingest.store_endpoint, methods=["POST"]),
        Route("/stream", ingest.sidecar_endpoint, methods=["POST"]),
        Route("/stream", stream.stream_events, methods=["GET"]),
        Route("/stream", stream.stream_options, methods=["OPTIONS"]),
        Route("/live/feed", stream.live_feed, methods=["GET"]),
        Mount("/api/0", routes=api.routes),
        *web.routes,
    ]
    middleware = []
    if allowed_hosts is not None:
        middleware.append(Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts)))
    # Inside the Host check: a page's origin is compared with the Host it reached.
    middleware.append(Middleware(OriginMiddleware, policy=policy))
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={api.BadParameter: api.bad_parameter},
    )
    app.state.tripwire = state
    return app


def dsn_for(store: Store, host: str, port: int) -> str:
    """The DSN of the store's default project on a server at `host`:`port`."""
    key = store.default_project()["public_key"]
    project_id = store.default_project()["id"]
    return f"http://{key}@{_url_host(host)}:{port}/{project_id}"


def _url_host(host: str) -> str:
    if host in ("0.0.0.0", "", "::"):  # noqa: S104 -- naming the wildcard, not binding it
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY on accepted connections only when
    # the listening socket says it is TCP. Without it, every keep-alive answer waits
    # for the client's delayed ACK (~40 ms on Linux).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _config(app: Starlette, host: str, port: int, log_level: str) -> uvicorn.Config:
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level=log_level,
        lifespan="off",
        access_log=False,
        # Streams of the live page must not hold the server open when it stops.
        timeout_graceful_shutdown=2,
    )


class ServerThread:
    """The backend on a background thread, listening from the moment it is created.

    The socket is bound in the constructor, so requests can be sent as soon as it
    returns (they queue until the server's loop accepts them): no waiting needed.

        with ServerThread(db="/tmp/t.db") as server:
            tripwire.init(dsn=server.dsn)
    """

    def __init__(
        self,
        db: Union[PathLike, Store, None] = None,
        host: str = DEFAULT_HOST,
        port: int = 0,
        log_level: str = "warning",
        **app_options: Any,
    ) -> None:
        self.store = (
            db if isinstance(db, Store) else Store(db if db is not None else default_db_path())
        )
        self._owns_store = not isinstance(db, Store)
        self.app = create_app(self.store, **app_options)
        self._socket = _bind(host, port)
        self.host = host
        self.port: int = self._socket.getsockname()[1]
        self._server = _make_server(_config(self.app, host, self.port, log_level))
        self._thread = threading.Thread(
            target=_serve_unobserved,
            args=(self._server, self._socket),
            name="tripwire-server",
            daemon=True,
        )
        self._thread.start()

    @property
    def url(self) -> str:
        """The base URL of the web pages and the API."""
        return f"http://{_url_host(self.host)}:{self.port}"

    @property
    def dsn(self) -> str:
        """The DSN of the default project on this server."""
        return dsn_for(self.store, self.host, self.port)

    @property
    def state(self) -> ServerState:
        """The handlers' shared state (rate limits can be changed here)."""
        state: ServerState = self.app.state.tripwire
        return state

    def stop(self) -> None:
        """Stop serving, wait for the thread, close the socket (and the store if owned)."""
        self.state.broadcaster.close()
        self._server.should_exit = True
        self._thread.join()
        self._socket.close()
        if self._owns_store:
            self.store.close()

    def __enter__(self) -> ServerThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _serve_unobserved(server: uvicorn.Server, sock: socket.socket) -> None:
    """Run `server` where the SDK of this process records nothing.

    ``tripwire demo``, the tests and a script with a `ServerThread` run the SDK beside
    the backend. Traced, the backend's own requests were sent to it, and each envelope
    it received made another (the idle demo stored ~150 transactions a second). Every
    integration asks `get_client()`; here it finds a client that records nothing, bound
    to this thread's scopes, which the server's tasks and worker threads inherit.
    (`tripwire.testing.reset()` forgets scope-bound clients: a server left running
    across it is observed again.)
    """
    unobserved = BaseClient()
    with tripwire.isolation_scope() as isolation:  # forks the current scope too
        isolation.set_client(unobserved)
        tripwire.get_current_scope().set_client(unobserved)
        server.run(sockets=[sock])


def _make_server(config: uvicorn.Config) -> uvicorn.Server:
    import uvicorn

    return uvicorn.Server(config)


def serve(
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    db: Optional[PathLike] = None,
    log_level: str = "warning",
    on_ready: Optional[Any] = None,
    **app_options: Any,
) -> None:
    """Run the backend in the foreground until interrupted.

    `on_ready(dsn, url)` is called once the socket is bound (the CLI prints there).
    """
    store = Store(db if db is not None else default_db_path())
    try:
        if host not in _LOOPBACK_NAMES and "allowed_hosts" not in app_options:
            # Bound beyond loopback on purpose: serve whatever name it is reached by.
            app_options["allowed_hosts"] = None
        app = create_app(store, **app_options)
        sock = _bind(host, port)
        bound_port: int = sock.getsockname()[1]
        if on_ready is not None:
            on_ready(dsn_for(store, host, bound_port), f"http://{_url_host(host)}:{bound_port}")
        server = _make_server(_config(app, host, bound_port, log_level))
        try:
            server.run(sockets=[sock])
        finally:
            app.state.tripwire.broadcaster.close()
            sock.close()
    finally:
        store.close()
