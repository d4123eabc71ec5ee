"""A WSGI application served on 127.0.0.1, and a small HTTP client for it.

For the web framework tests (Bottle, Falcon, Pyramid): `with served(app) as port:` runs
the app on the standard library's WSGI server (a thread per request); on exit the
server is shut down and every thread of it joined.
"""

from __future__ import annotations

import http.client
import json
import socketserver
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Optional
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server


class _Server(socketserver.ThreadingMixIn, WSGIServer):
    daemon_threads = False  # joined by server_close()
    block_on_close = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def served(app: Any) -> Iterator[int]:
    """`app` served at 127.0.0.1 (an ephemeral port, yielded)."""
    server = make_server("127.0.0.1", 0, app, server_class=_Server, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield server.server_address[1]
    finally:
        server.shutdown()
        thread.join(10)
        server.server_close()  # joins the request threads
        assert not thread.is_alive()


def request(
    port: int,
    method: str,
    path: str,
    headers: Optional[dict[str, str]] = None,
    body: Optional[bytes] = None,
    json_body: Any = None,
) -> tuple[int, bytes]:
    """One request on a new connection: (status, body)."""
    headers = dict(headers or {})
    if json_body is not None:
        body = json.dumps(json_body).encode()
        headers["Content-Type"] = "application/json"
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()
