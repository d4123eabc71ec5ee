"""A WSGI application served on 127.0.0.1, and a small HTTP client for it.

For the web framework tests (Bottle, Falcon, Pyramid): `with served(app) as port:` runs
the app on the standard library's WSGI server (a thread per request); on exit the
server is shut down and every thread of it joined.

`request()` returns once the server has finished with the request, not when the answer
has been read: the server's thread closes the app's response after sending it, and that
is where a WSGI integration finishes its transaction. Without the wait, the next
request's transaction could be sent first.
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

    def server_activate(self) -> None:
        super().server_activate()
        self._idle = threading.Condition()
        self._handling = 0

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._idle:
            self._handling += 1
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._idle:
                self._handling -= 1
                self._idle.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        with self._idle:
            return self._idle.wait_for(lambda: self._handling == 0, timeout)


_serving: dict[int, _Server] = {}


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def served(app: Any) -> Iterator[int]:
    """`app` served at 127.0.0.1 (an ephemeral port, yielded)."""
    server = make_server("127.0.0.1", 0, app, server_class=_Server, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05})
    port = server.server_address[1]
    _serving[port] = server
    thread.start()
    try:
        yield port
    finally:
        del _serving[port]
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
        answer = response.status, response.read()
    finally:
        conn.close()
    server = _serving.get(port)
    assert server is None or server.wait_idle(20), "the server still handles a request"
    return answer
