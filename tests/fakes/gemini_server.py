"""A loopback HTTP server speaking the parts of the Gemini API (``v1beta``) the tests use.

The real `google-genai` client talks to it (``http_options={"base_url": server.url}``):
it builds, sends and parses as it would against Google. What it answers is decided by
the request:

- ``POST /v1/models/MODEL:generateContent`` (or ``/v1beta/``) and ``:streamGenerateContent?alt=sse``
  (server-sent events, one chunked write per event) and ``:batchEmbedContents``;
- a request with function declarations whose last turn is not a function response is
  answered with a call of the first function (so automatic function calling runs the
  tool, then gets text);
- a model whose name contains ``error`` is answered 400 with Google's error body; one
  containing ``cut`` gets a stream that stops after two events (connection closed);
- usage is fixed: 12 prompt tokens (4 cached), 5 candidate tokens, 2 thought tokens,
  19 in total, so tests can assert the numbers.

Every request's path and JSON body are kept in `received`.
"""

from __future__ import annotations

import http.server
import json
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

from fakes.llm_server import TEXT_PIECES, TOOL_ARGS, serve_in_thread

TEXT = "".join(TEXT_PIECES)
# /v1/models/MODEL:method (the client's default version) or /v1beta/...
_PATH = re.compile(r"^/v1[a-z0-9]*/models/([^/:]+):([A-Za-z]+)$")


def usage(candidates: int = 5) -> dict[str, Any]:
    return {
        "promptTokenCount": 12,
        "cachedContentTokenCount": 4,
        "candidatesTokenCount": candidates,
        "thoughtsTokenCount": 2,
        "totalTokenCount": 12 + candidates + 2,
    }


def _function(body: dict[str, Any]) -> str | None:
    """The first declared function, unless the last turn already answers a call."""
    contents = body.get("contents") or []
    last_parts = (contents[-1].get("parts") or []) if contents else []
    if any("functionResponse" in part for part in last_parts):
        return None
    for tool in body.get("tools") or []:
        for declaration in tool.get("functionDeclarations") or []:
            return str(declaration["name"])
    return None


def _answer(
    model: str, parts: list[dict[str, Any]], finish: str | None, **extra: Any
) -> dict[str, Any]:
    candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
    if finish:
        candidate["finishReason"] = finish
    return {
        "candidates": [candidate],
        "modelVersion": model + "-001",
        "responseId": "resp-1",
        **extra,
    }


def generate(model: str, body: dict[str, Any]) -> dict[str, Any]:
    function = _function(body)
    if function:
        parts: list[dict[str, Any]] = [{"functionCall": {"name": function, "args": TOOL_ARGS}}]
    else:
        parts = [{"text": TEXT}]
    return _answer(model, parts, "STOP", usageMetadata=usage())


def generate_events(model: str, body: dict[str, Any]) -> Iterator[dict[str, Any]]:
    function = _function(body)
    if function:
        call = {"functionCall": {"name": function, "args": TOOL_ARGS}}
        yield _answer(model, [call], "STOP", usageMetadata=usage())
        return
    for index, piece in enumerate(TEXT_PIECES):
        last = index == len(TEXT_PIECES) - 1
        yield _answer(
            model, [{"text": piece}], "STOP" if last else None, usageMetadata=usage(index + 3)
        )


def embeddings(body: dict[str, Any]) -> dict[str, Any]:
    return {"embeddings": [{"values": [0.25, 0.5, 0.75]} for _ in body.get("requests") or []]}


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

    def _stream(self, events: Iterator[dict[str, Any]], cut: bool) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for index, payload in enumerate(events):
                if cut and index == 2:  # hang up mid-stream, without the last chunk
                    self.close_connection = True
                    return
                data = f"data: {json.dumps(payload)}\r\n\r\n".encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:  # the client closed the stream early
            self.close_connection = True

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        server: GeminiServer = self.server  # type: ignore[assignment]
        server.received.append({"path": self.path, "body": body})
        found = _PATH.match(self.path.split("?", 1)[0])
        if found is None:
            self._send(404, {"error": {"code": 404, "message": "not found", "status": "NOT_FOUND"}})
            return
        model, method = found.group(1), found.group(2)
        if "error" in model:
            error = {"code": 400, "message": "bad model", "status": "INVALID_ARGUMENT"}
            self._send(400, {"error": error})
        elif method == "generateContent":
            self._send(200, generate(model, body))
        elif method == "streamGenerateContent":
            self._stream(generate_events(model, body), cut="cut" in model)
        elif method == "batchEmbedContents":
            self._send(200, embeddings(body))
        else:
            self._send(404, {"error": {"code": 404, "message": method, "status": "NOT_FOUND"}})


class GeminiServer(http.server.ThreadingHTTPServer):
    """The fake Gemini API; `url` is its base (``http://127.0.0.1:PORT``)."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up mid-answer is expected

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[dict[str, Any]] = []
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


def serving() -> AbstractContextManager[GeminiServer]:
    """Run a `GeminiServer` on a free port for the block; stopped and closed after it."""
    return serve_in_thread(GeminiServer(), "fake-gemini")
