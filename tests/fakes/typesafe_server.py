"""A loopback fake of TypeSafe AI's System One endpoint (``POST /v1/systemone``).

typesafe-sdk's real clients talk to it (``base_url=server.url``). It answers every
question of the request with a fixed answer of its type (noul, choice, score); a
request whose state is ``"fail"`` gets a 400 error. Request bodies are recorded.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

MODEL = "jev-1-2026"
USAGE = {"input_tokens": 120, "output_tokens": 12}
_ANSWERS: dict[str, Any] = {
    "noul": {"type": "noul", "noul": 0.98},
    "choice": {"type": "choice", "choice": "angry", "confidence": 0.9,
               "probabilities": {"angry": 0.8, "calm": 0.2}},
    "score": {"type": "score", "score": 1.7, "confidence": 0.8,
              "legend": {"0": "later", "1": "soon", "2": "now"},
              "probabilities": {"0": 0.1, "1": 0.1, "2": 0.8}},
}  # fmt: skip


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: TypeSafeServer

    def do_POST(self) -> None:
        answer: dict[str, Any]
        request = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        self.server.received.append(request)
        if request.get("state") == "fail":
            status, answer = 400, {"detail": "bad state"}
        else:
            answers = {
                name: _ANSWERS[question["type"]]
                for name, question in request.get("questions", {}).items()
                if question.get("type") in _ANSWERS
            }
            status, answer = 200, {"model": MODEL, "usage": USAGE, "answers": answers}
        body = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class TypeSafeServer(http.server.ThreadingHTTPServer):
    """The fake; `url` is the client's ``base_url``."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@contextmanager
def serving() -> Iterator[TypeSafeServer]:
    """A started fake, shut down and joined on exit."""
    server = TypeSafeServer()
    thread = threading.Thread(target=server.serve_forever)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
