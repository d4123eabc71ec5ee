"""A loopback HTTP server that records the headers of every request (outgoing-HTTP tests).

Tests take it through a fixture: `with serving() as srv: yield srv`.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tripwire.testing import MemoryTransport


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        server: Server = self.server  # type: ignore[assignment]
        server.received.append({k.lower(): v for k, v in self.headers.items()})
        if self.path.startswith("/drop"):
            self.close_connection = True
            return
        status = 404 if self.path.startswith("/missing") else 200
        if self.path.startswith("/fail"):
            status = 503
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


class Server(http.server.ThreadingHTTPServer):
    """A loopback HTTP server recording each request's headers."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[dict[str, str]] = []
        # shutdown() waits for the loop's next poll: 50 ms, not the default 0.5 s.
        self.thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@contextmanager
def serving() -> Iterator[Server]:
    """A started `Server`, shut down and joined on exit."""
    srv = Server()
    srv.thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        srv.thread.join()


def spans_of(memory: MemoryTransport, op: str) -> list[dict[str, Any]]:
    """The spans with `op` of the one transaction `memory` got."""
    (transaction,) = memory.transactions
    return [span for span in transaction["spans"] if span["op"] == op]


def crumbs_of(memory: MemoryTransport, category: str) -> list[dict[str, Any]]:
    """The breadcrumbs of `category` of the one event `memory` got."""
    (event,) = memory.events
    return [c for c in event["breadcrumbs"]["values"] if c["category"] == category]
