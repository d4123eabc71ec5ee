"""A loopback AWS Lambda Runtime API, as the Runtime Interface Emulator serves it.

The real runtime interface client (``python -m awslambdaric module.handler``, with
``AWS_LAMBDA_RUNTIME_API=127.0.0.1:<port>``) polls
``GET /2018-06-01/runtime/invocation/next`` for the next event, then posts
``.../invocation/<id>/response`` or ``.../invocation/<id>/error``; an initialisation
failure goes to ``/2018-06-01/runtime/init/error``. `invoke` queues an event (with its
deadline) and `wait_results` waits for the answers. `on_result` (if set) runs when an
answer arrives, before it is acknowledged: a test can look at what had reached
Sentry by then.
"""

from __future__ import annotations

import collections
import http.server
import json
import socket
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Callable, Optional

PREFIX = "/2018-06-01/runtime"
ARN = "arn:aws:lambda:eu-central-1:123456789012:function:checkout"


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = -1
    server: LambdaRuntime

    def _answer(
        self, status: int, body: bytes = b"", headers: Optional[dict[str, str]] = None
    ) -> None:
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if self.path != PREFIX + "/invocation/next":
            self._answer(404)
            return
        invocation = self.server.next_invocation(self._peer_open)
        if invocation is None:  # shutting down: the client gets no more events
            self.close_connection = True
            return
        request_id, body, deadline_ms = invocation
        headers = {
            "Content-Type": "application/json",
            "Lambda-Runtime-Aws-Request-Id": request_id,
            "Lambda-Runtime-Deadline-Ms": str(deadline_ms),
            "Lambda-Runtime-Invoked-Function-Arn": ARN,
            "Lambda-Runtime-Trace-Id": "Root=1-00000000-000000000000000000000000",
        }
        self._answer(200, body, headers)

    def _peer_open(self) -> bool:
        """False once the polling process is gone (its end of the connection closed)."""
        try:
            return self.connection.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT) != b""
        except BlockingIOError:
            return True
        except OSError:
            return False

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = self.path[len(PREFIX) :].strip("/").split("/")
        if parts[:2] == ["init", "error"]:
            self.server.record("init", "error", body)
        elif len(parts) == 3 and parts[0] == "invocation" and parts[2] in ("response", "error"):
            self.server.record(parts[1], parts[2], body)
        else:
            self._answer(404)
            return
        self._answer(202, b'{"status":"OK"}', {"Content-Type": "application/json"})

    def log_message(self, format: str, *args: Any) -> None:
        pass


class LambdaRuntime(http.server.ThreadingHTTPServer):
    """The Runtime API: queued invocations out, results (id, kind, body) in."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.pending: collections.deque[tuple[str, bytes, int]] = collections.deque()
        self.results: list[tuple[str, str, Any]] = []
        self.on_result: Optional[Callable[[str, str], None]] = None
        self.closing = threading.Event()
        self.generation = 0
        self.waiting = 0
        self.changed = threading.Condition()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"

    def invoke(self, event: Any, timeout_ms: int = 30_000) -> str:
        """Queue an invocation of `event` with a timeout of `timeout_ms`; its request id.

        As in Lambda, the deadline counts from when the function gets the event.
        """
        request_id = str(uuid.uuid4())
        with self.changed:
            self.pending.append((request_id, json.dumps(event).encode(), timeout_ms))
            self.changed.notify_all()
        return request_id

    def next_invocation(self, peer_open: Callable[[], bool]) -> Optional[tuple[str, bytes, int]]:
        """The next event for a poll, or None once its function is released or gone.

        A poll whose process was killed can still reach here after `release` (its
        request was in the listen backlog): `peer_open` keeps the event for the next
        process instead of writing it to a closed connection.
        """
        with self.changed:
            generation = self.generation
            self.waiting += 1
            try:
                while not self.closing.is_set() and generation == self.generation:
                    if not peer_open():
                        return None
                    if self.pending:
                        request_id, body, timeout_ms = self.pending.popleft()
                        return request_id, body, int(time.time() * 1000) + timeout_ms
                    self.changed.wait(0.1)  # woken by `invoke`, or to notice `release`
                return None
            finally:
                self.waiting -= 1
                self.changed.notify_all()

    def release(self, timeout: float = 10.0) -> None:
        """End the polls of a function that is gone (no later event may go to them)."""
        with self.changed:
            self.generation += 1
            if not self.changed.wait_for(lambda: self.waiting == 0, timeout):
                raise AssertionError("a poll for the next invocation did not end")

    def record(self, request_id: str, kind: str, body: bytes) -> None:
        if self.on_result is not None:
            self.on_result(request_id, kind)
        try:
            payload: Any = json.loads(body)
        except ValueError:
            payload = body
        with self.changed:
            self.results.append((request_id, kind, payload))
            self.changed.notify_all()

    def wait_results(self, count: int, timeout: float = 30.0) -> list[tuple[str, str, Any]]:
        """The first `count` results, once they came (AssertionError after `timeout` s)."""
        with self.changed:
            if not self.changed.wait_for(lambda: len(self.results) >= count, timeout):
                raise AssertionError(f"{len(self.results)} of {count} results: {self.results}")
            return list(self.results[:count])

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)  # the function's process was killed

    def close(self) -> None:
        self.closing.set()
        self.shutdown()
        self.server_close()
        self.thread.join()


@contextmanager
def serving() -> Iterator[LambdaRuntime]:
    """A started `LambdaRuntime`, closed on exit."""
    runtime = LambdaRuntime()
    runtime.thread.start()
    try:
        yield runtime
    finally:
        runtime.close()
