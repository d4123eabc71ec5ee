"""A loopback HTTP server speaking Text Generation Inference (TGI), the Hugging Face server.

The real `huggingface_hub.InferenceClient` talks to it: ``text_generation`` with
``model=server.url`` posts ``{"inputs", "parameters", "stream"}`` to it, and
``chat_completion`` with ``base_url=server.url`` posts to ``/v1/chat/completions``
(answered as `fakes.llm_server` answers OpenAI's chat API, which TGI also speaks).

- text generation: the generated text, with ``details`` (finish reason ``length``,
  5 generated tokens) when asked; ``"stream": true`` answers server-sent events, one
  token each, the last with the whole text and the details;
- a path or model containing ``error`` is answered 400 with TGI's error body;
- each connection serves one request (``Connection: close``).

Every request's path and JSON body are kept in `received`.
"""

from __future__ import annotations

import http.server
import json
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

from fakes.llm_server import TEXT, TEXT_PIECES, chat_chunks, chat_completion, serve_in_thread

DETAILS = {"finish_reason": "length", "generated_tokens": 5, "seed": None, "prefill": []}


def generation(body: dict[str, Any]) -> list[dict[str, Any]]:
    answer: dict[str, Any] = {"generated_text": TEXT}
    if (body.get("parameters") or {}).get("details"):
        answer["details"] = dict(DETAILS, tokens=[])
    return [answer]


def generation_events() -> Iterator[dict[str, Any]]:
    for index, piece in enumerate(TEXT_PIECES):
        last = index == len(TEXT_PIECES) - 1
        yield {
            "index": index + 1,
            "token": {"id": index + 1, "text": piece, "logprob": -0.5, "special": False},
            "generated_text": TEXT if last else None,
            "details": DETAILS if last else None,
        }


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = -1  # one write per answer or event

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: Any) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self._one_request_per_connection()
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _one_request_per_connection(self) -> None:
        # The client keeps its connections in a process-wide pool: closing each one
        # ends its handler thread with the answer, not when the process ends.
        self.send_header("Connection", "close")
        self.close_connection = True

    def _stream(self, events: Iterator[Any]) -> None:
        self.send_response(200)
        self._one_request_per_connection()
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for payload in events:
                text = payload if isinstance(payload, str) else json.dumps(payload)
                data = f"data: {text}\n\n".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:  # the client closed the stream early
            self.close_connection = True

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        server: TgiServer = self.server  # type: ignore[assignment]
        server.received.append({"path": self.path, "body": body})
        if "error" in self.path or "error" in str(body.get("model", "")):
            self._send(
                400, {"error": "Input validation error: bad model", "error_type": "validation"}
            )
        elif self.path.endswith("/chat/completions"):
            if body.get("stream"):
                self._stream(payload for _, payload in chat_chunks(body))
            else:
                self._send(200, chat_completion(body))
        elif body.get("stream"):
            self._stream(generation_events())
        else:
            self._send(200, generation(body))


class TgiServer(http.server.ThreadingHTTPServer):
    """The fake TGI server; `url` is its base (``http://127.0.0.1:PORT``)."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up mid-answer is expected

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[dict[str, Any]] = []
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


def serving() -> AbstractContextManager[TgiServer]:
    """Run a `TgiServer` on a free port for the block; stopped and closed after it."""
    return serve_in_thread(TgiServer(), "fake-tgi")
