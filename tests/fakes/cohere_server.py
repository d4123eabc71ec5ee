"""A loopback HTTP server speaking the parts of Cohere's v1 API the tests use.

The real `cohere` client talks to it (``cohere.Client(base_url=server.url)``):

- ``POST /v1/chat``: a `NonStreamedChatResponse`; with ``"stream": true`` the answer
  is newline-delimited JSON events (``stream-start``, ``text-generation`` per piece,
  ``stream-end`` carrying the whole response), one chunked write per event;
- ``POST /v1/embed``: one float vector per text;
- a request with ``tools`` is answered with a call of the first tool;
- a model whose name contains ``error`` is answered 400 with Cohere's error body.

Token counts are fixed (10 input, 4 output billed; 15 / 6 counted) so tests can
assert them. Every request's path and JSON body are kept in `received`.
"""

from __future__ import annotations

import http.server
import json
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

from fakes.llm_server import TEXT, TEXT_PIECES, TOOL_ARGS, serve_in_thread


def _meta() -> dict[str, Any]:
    return {
        "api_version": {"version": "1"},
        "billed_units": {"input_tokens": 10, "output_tokens": 4},
        "tokens": {"input_tokens": 15, "output_tokens": 6},
        "warnings": ["a warning"],
    }


def chat_response(body: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "response_id": "resp-1",
        "text": TEXT,
        "generation_id": "gen-1",
        "finish_reason": "COMPLETE",
        "chat_history": [
            {"role": "USER", "message": body.get("message", "")},
            {"role": "CHATBOT", "message": TEXT},
        ],
        "meta": _meta(),
    }
    tools = body.get("tools") or []
    if tools:
        answer["text"] = ""
        answer["tool_calls"] = [{"name": tools[0]["name"], "parameters": TOOL_ARGS}]
    return answer


def chat_events(body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield {"event_type": "stream-start", "is_finished": False, "generation_id": "gen-1"}
    for piece in TEXT_PIECES:
        yield {"event_type": "text-generation", "is_finished": False, "text": piece}
    yield {
        "event_type": "stream-end",
        "is_finished": True,
        "finish_reason": "COMPLETE",
        "response": chat_response(body),
    }


def embed_response(body: dict[str, Any]) -> dict[str, Any]:
    texts = body.get("texts") or []
    return {
        "response_type": "embeddings_floats",
        "id": "emb-1",
        "embeddings": [[0.25, 0.5, 0.75] for _ in texts],
        "texts": texts,
        "meta": {"api_version": {"version": "1"}, "billed_units": {"input_tokens": 7}},
    }


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = -1  # one write per answer or event

    def log_message(self, *args: Any) -> None:
        pass

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def _stream(self, events: Iterator[dict[str, Any]]) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/stream+json")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for event in events:
                data = json.dumps(event).encode() + b"\n"
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:  # the client stopped reading
            self.close_connection = True

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        server: CohereServer = self.server  # type: ignore[assignment]
        server.received.append({"path": self.path, "body": body})
        if "error" in str(body.get("model", "")):
            self._send(400, {"message": "invalid model"})
            return
        path = self.path.split("?", 1)[0]
        if path == "/v1/chat" and body.get("stream"):
            self._stream(chat_events(body))
        elif path == "/v1/chat":
            self._send(200, chat_response(body))
        elif path == "/v1/embed":
            self._send(200, embed_response(body))
        else:
            self._send(404, {"message": "not found"})


class CohereServer(http.server.ThreadingHTTPServer):
    """The fake Cohere API; `url` is its base (``http://127.0.0.1:PORT``)."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up mid-answer is expected

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[dict[str, Any]] = []
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


def serving() -> AbstractContextManager[CohereServer]:
    """Run a `CohereServer` on a free port for the block; stopped and closed after it."""
    return serve_in_thread(CohereServer(), "fake-cohere")
