"""A loopback HTTP server speaking the parts of OpenAI's and Anthropic's APIs the tests use.

The real `openai` and `anthropic` clients talk to it (``base_url=server.url + "/v1"``
and ``base_url=server.url``): they build, send and parse as they would against the
providers. What it answers is decided by the request:

- ``POST /v1/chat/completions``, ``/v1/responses``, ``/v1/embeddings`` (OpenAI) and
  ``/v1/messages`` (Anthropic); ``"stream": true`` answers server-sent events, one
  chunked write per event (so time to first chunk is real);
- a request with ``tools`` is answered with a call of the first tool;
- a model whose name contains ``error`` is answered 400 with the provider's error body;
  one containing ``cut`` gets a stream that stops after two events (connection closed);
- usage is fixed: 12 input tokens (4 cached / 3 cache-read + 2 cache-write), 5 output
  (2 reasoning), so tests can assert the numbers.

Every request's path and JSON body are kept in `received`.
"""

from __future__ import annotations

import base64
import http.server
import json
import socketserver
import struct
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TypeVar

TEXT_PIECES = ("Hel", "lo ", "there!")
TEXT = "".join(TEXT_PIECES)
CREATED = 1_700_000_000
TOOL_ARGS = {"city": "Paris"}


def _openai_usage() -> dict[str, Any]:
    return {
        "prompt_tokens": 12,
        "completion_tokens": 5,
        "total_tokens": 17,
        "prompt_tokens_details": {"cached_tokens": 4},
        "completion_tokens_details": {"reasoning_tokens": 2},
    }


def _responses_usage() -> dict[str, Any]:
    return {
        "input_tokens": 12,
        "input_tokens_details": {"cached_tokens": 4},
        "output_tokens": 5,
        "output_tokens_details": {"reasoning_tokens": 2},
        "total_tokens": 17,
    }


def _tool_name(body: dict[str, Any]) -> str | None:
    tools = body.get("tools") or []
    if not tools:
        return None
    tool = tools[0]
    if "function" in tool:
        return str(tool["function"]["name"])
    return str(tool.get("name"))


# -- OpenAI ----------------------------------------------------------------------------


def chat_completion(body: dict[str, Any]) -> dict[str, Any]:
    tool = _tool_name(body)
    message: dict[str, Any] = {"role": "assistant", "content": TEXT, "refusal": None}
    finish = "stop"
    if tool:
        message["content"] = None
        message["tool_calls"] = [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": tool, "arguments": json.dumps(TOOL_ARGS)},
            }
        ]
        finish = "tool_calls"
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": CREATED,
        "model": body["model"] + "-2024",
        "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
        "usage": _openai_usage(),
    }


def chat_chunks(body: dict[str, Any]) -> Iterator[tuple[str | None, dict[str, Any] | str]]:
    def chunk(choices: list[Any], **extra: Any) -> dict[str, Any]:
        return {
            "id": "chatcmpl-1",
            "object": "chat.completion.chunk",
            "created": CREATED,
            "model": body["model"] + "-2024",
            "choices": choices,
            **extra,
        }

    yield None, chunk([{"index": 0, "delta": {"role": "assistant", "content": ""}}])
    for piece in TEXT_PIECES:
        yield None, chunk([{"index": 0, "delta": {"content": piece}, "finish_reason": None}])
    yield None, chunk([{"index": 0, "delta": {}, "finish_reason": "stop"}])
    if (body.get("stream_options") or {}).get("include_usage"):
        yield None, chunk([], usage=_openai_usage())
    yield None, "[DONE]"


def _response(body: dict[str, Any], status: str = "completed") -> dict[str, Any]:
    tool = _tool_name(body)
    output: list[dict[str, Any]] = []
    if status == "completed":
        if tool:
            output.append(
                {
                    "type": "function_call",
                    "id": "fc_1",
                    "call_id": "call_1",
                    "name": tool,
                    "arguments": json.dumps(TOOL_ARGS),
                    "status": "completed",
                }
            )
        else:
            output.append(
                {
                    "type": "message",
                    "id": "msg_1",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": TEXT, "annotations": []}],
                }
            )
    return {
        "id": "resp_1",
        "object": "response",
        "created_at": CREATED,
        "status": status,
        "model": body["model"] + "-2024",
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": _responses_usage() if status == "completed" else None,
    }


def response_events(body: dict[str, Any]) -> Iterator[tuple[str | None, dict[str, Any] | str]]:
    seq = iter(range(100))
    created = _response(body, "in_progress")
    yield (
        "response.created",
        {
            "type": "response.created",
            "response": created,
            "sequence_number": next(seq),
        },
    )
    for piece in TEXT_PIECES:
        yield (
            "response.output_text.delta",
            {
                "type": "response.output_text.delta",
                "item_id": "msg_1",
                "output_index": 0,
                "content_index": 0,
                "delta": piece,
                "logprobs": [],
                "sequence_number": next(seq),
            },
        )
    yield (
        "response.completed",
        {
            "type": "response.completed",
            "response": _response(body),
            "sequence_number": next(seq),
        },
    )


def embeddings(body: dict[str, Any]) -> dict[str, Any]:
    inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
    vector = [0.25, 0.5, 0.75]
    data = []
    for index, _ in enumerate(inputs):
        embedding: Any = vector
        if body.get("encoding_format") == "base64":
            embedding = base64.b64encode(struct.pack("<3f", *vector)).decode()
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    return {
        "object": "list",
        "data": data,
        "model": body["model"],
        "usage": {"prompt_tokens": 8, "total_tokens": 8},
    }


# -- Anthropic -------------------------------------------------------------------------


def _anthropic_usage(output_tokens: int = 5) -> dict[str, Any]:
    return {
        "input_tokens": 12,
        "output_tokens": output_tokens,
        "cache_read_input_tokens": 3,
        "cache_creation_input_tokens": 2,
    }


def message(body: dict[str, Any]) -> dict[str, Any]:
    tool = _tool_name(body)
    content: list[dict[str, Any]]
    if tool:
        content = [{"type": "tool_use", "id": "toolu_1", "name": tool, "input": TOOL_ARGS}]
    else:
        content = [{"type": "text", "text": TEXT}]
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": body["model"] + "-2024",
        "content": content,
        "stop_reason": "tool_use" if tool else "end_turn",
        "stop_sequence": None,
        "usage": _anthropic_usage(),
    }


def message_events(body: dict[str, Any]) -> Iterator[tuple[str | None, dict[str, Any] | str]]:
    tool = _tool_name(body)
    start = message(body)
    start.update(content=[], stop_reason=None, usage=_anthropic_usage(1))
    yield "message_start", {"type": "message_start", "message": start}
    if tool:
        block: dict[str, Any] = {"type": "tool_use", "id": "toolu_1", "name": tool, "input": {}}
        raw = json.dumps(TOOL_ARGS)
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in (raw[:5], raw[5:])]
    else:
        block = {"type": "text", "text": ""}
        deltas = [{"type": "text_delta", "text": p} for p in TEXT_PIECES]
    yield "content_block_start", {"type": "content_block_start", "index": 0, "content_block": block}
    for delta in deltas:
        yield "content_block_delta", {"type": "content_block_delta", "index": 0, "delta": delta}
    yield "content_block_stop", {"type": "content_block_stop", "index": 0}
    yield (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use" if tool else "end_turn", "stop_sequence": None},
            "usage": {"output_tokens": 5},
        },
    )
    yield "message_stop", {"type": "message_stop"}


# -- the server ------------------------------------------------------------------------


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # One write per answer or event: separate small segments would meet delayed ACKs.
    wbufsize = -1

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

    def _stream(
        self, events: Iterator[tuple[str | None, dict[str, Any] | str]], cut: bool = False
    ) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        try:
            for index, (name, payload) in enumerate(events):
                if cut and index == 2:  # hang up mid-stream, without the last chunk
                    self.close_connection = True
                    return
                text = payload if isinstance(payload, str) else json.dumps(payload)
                event = (f"event: {name}\n" if name else "") + f"data: {text}\n\n"
                data = event.encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        except OSError:  # the client closed the stream early (a test does)
            self.close_connection = True

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        server: LlmServer = self.server  # type: ignore[assignment]
        server.received.append({"path": self.path, "body": body})
        anthropic = self.path.startswith("/v1/messages")
        if "error" in str(body.get("model", "")):
            if anthropic:
                error = {"type": "invalid_request_error", "message": "model: bad model"}
                self._send(400, {"type": "error", "error": error})
            else:
                error = {"message": "bad model", "type": "invalid_request_error", "code": None}
                self._send(400, {"error": error})
            return
        stream = bool(body.get("stream"))
        routes = {
            "/v1/chat/completions": (chat_completion, chat_chunks),
            "/v1/responses": (_response, response_events),
            "/v1/embeddings": (embeddings, None),
            "/v1/messages": (message, message_events),
        }
        route = routes.get(self.path.split("?", 1)[0])
        if route is None:
            self._send(404, {"error": {"message": "not found", "type": "not_found"}})
        elif stream and route[1] is not None:
            self._stream(route[1](body), cut="cut" in str(body.get("model", "")))
        else:
            self._send(200, route[0](body))


class LlmServer(http.server.ThreadingHTTPServer):
    """The fake provider; `url` is its base (``http://127.0.0.1:PORT``)."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client hanging up mid-answer is expected, not a server fault

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[dict[str, Any]] = []
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


_Server = TypeVar("_Server", bound=socketserver.BaseServer)


@contextmanager
def serve_in_thread(server: _Server, name: str) -> Iterator[_Server]:
    """Serve with `server` (bound to a free port) in a thread named `name` for the block;
    stopped and closed after it. Each fake's `serving()`."""
    thread = threading.Thread(target=server.serve_forever, name=name, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def serving() -> AbstractContextManager[LlmServer]:
    """Run an `LlmServer` on a free port for the block; stopped and closed after it."""
    return serve_in_thread(LlmServer(), "fake-llm")


if __name__ == "__main__":  # the bench runs it as a separate process
    with serving() as _server:
        print(_server.url, flush=True)
        threading.Event().wait()
