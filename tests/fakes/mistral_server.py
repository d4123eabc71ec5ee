"""A loopback HTTP server speaking the parts of Mistral's API the tests use.

The real `mistralai` client talks to it (``Mistral(server_url=server.url)``). Mistral's
API is OpenAI's shape, so the plain answers are `fakes.llm_server`'s; its stream chunks
differ (every choice carries ``finish_reason``, usage comes with the last chunk):

- ``POST /v1/chat/completions`` (``"stream": true``: server-sent events, one chunked
  write per event, ending ``[DONE]``) and ``POST /v1/embeddings``;
- a request with ``tools`` is answered with a call of the first tool;
- a model whose name contains ``error`` is answered 400 with Mistral's error body.

Every request's path and JSON body are kept in `received`.
"""

from __future__ import annotations

import http.server
import json
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

from fakes.llm_server import CREATED, TEXT_PIECES, chat_completion, embeddings, serve_in_thread


def _usage() -> dict[str, Any]:
    return {"prompt_tokens": 12, "completion_tokens": 5, "total_tokens": 17}


def chat(body: dict[str, Any]) -> dict[str, Any]:
    answer = chat_completion(body)
    answer["usage"] = _usage()
    return answer


def chat_chunks(body: dict[str, Any]) -> Iterator[dict[str, Any] | str]:
    def chunk(delta: dict[str, Any], finish: str | None, **extra: Any) -> dict[str, Any]:
        return {
            "id": "cmpl-1",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": body["model"] + "-2024",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }

    yield chunk({"role": "assistant", "content": ""}, None)
    for piece in TEXT_PIECES:
        yield chunk({"content": piece}, None)
    yield chunk({"content": ""}, "stop", usage=_usage())
    yield "[DONE]"


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

    def _stream(self, events: Iterator[dict[str, Any] | str]) -> None:
        self.send_response(200)
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
        except OSError:  # the client stopped reading
            self.close_connection = True

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        server: MistralServer = self.server  # type: ignore[assignment]
        server.received.append({"path": self.path, "body": body})
        if "error" in str(body.get("model", "")):
            self._send(400, {"object": "error", "message": "bad model", "type": "invalid_model"})
            return
        path = self.path.split("?", 1)[0]
        if path == "/v1/chat/completions" and body.get("stream"):
            self._stream(chat_chunks(body))
        elif path == "/v1/chat/completions":
            self._send(200, chat(body))
        elif path == "/v1/embeddings":
            answer = embeddings(body)
            answer["usage"]["completion_tokens"] = 0
            answer["id"] = "emb-1"
            self._send(200, answer)
        else:
            self._send(404, {"object": "error", "message": "not found"})


class MistralServer(http.server.ThreadingHTTPServer):
    """The fake Mistral API; `url` is its base (``http://127.0.0.1:PORT``)."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up mid-answer is expected

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[dict[str, Any]] = []
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


def serving() -> AbstractContextManager[MistralServer]:
    """Run a `MistralServer` on a free port for the block; stopped and closed after it."""
    return serve_in_thread(MistralServer(), "fake-mistral")
