"""A loopback HTTP server answering the Bedrock runtime calls the boto3 tests make.

Real botocore talks to it (``client("bedrock-runtime", endpoint_url=server.url)``): it
signs, sends and parses as against AWS. Bedrock runtime is REST/JSON:

- ``POST /model/<id>/converse``: a JSON answer (text; with ``toolConfig``, a tool call);
- ``POST /model/<id>/converse-stream``: an ``application/vnd.amazon.eventstream`` body,
  AWS's binary event-stream framing (`frame`), one event a frame: ``messageStart``,
  ``contentBlockDelta``..., ``contentBlockStop``, ``messageStop``, ``metadata``;
- ``POST /model/<id>/invoke`` and ``/invoke-with-response-stream`` (``chunk`` events);
- a model id containing ``fail`` is answered 400 ``ValidationException``; one containing
  ``broken`` streams a ``modelStreamErrorException`` after the first delta; one
  containing ``cache`` reports cache read/write tokens; one containing ``think`` streams
  reasoning, a tool's result and an image block too.

Every request's path and JSON body are kept in `received`.
"""

from __future__ import annotations

import base64
import binascii
import http.server
import json
import struct
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any
from urllib.parse import unquote

from fakes.llm_server import serve_in_thread

TEXT_PIECES = ["Hello", " from", " Bedrock"]
_STRING = 7  # the event-stream header value type of a UTF-8 string


def _header(name: str, value: str) -> bytes:
    raw_name, raw_value = name.encode(), value.encode()
    return (
        struct.pack("!B", len(raw_name))
        + raw_name
        + struct.pack("!BH", _STRING, len(raw_value))
        + raw_value
    )


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One event-stream message: prelude (total and headers length, CRC), headers,
    payload, and the CRC32 of everything before it."""
    raw_headers = b"".join(_header(k, v) for k, v in headers.items())
    total = 12 + len(raw_headers) + len(payload) + 4
    prelude = struct.pack("!II", total, len(raw_headers))
    prelude += struct.pack("!I", binascii.crc32(prelude) & 0xFFFFFFFF)
    message = prelude + raw_headers + payload
    return message + struct.pack("!I", binascii.crc32(message) & 0xFFFFFFFF)


def event(event_type: str, payload: dict[str, Any]) -> bytes:
    headers = {
        ":event-type": event_type,
        ":content-type": "application/json",
        ":message-type": "event",
    }
    return frame(headers, json.dumps(payload).encode())


def exception(exception_type: str, message: str) -> bytes:
    headers = {
        ":exception-type": exception_type,
        ":content-type": "application/json",
        ":message-type": "exception",
    }
    return frame(headers, json.dumps({"message": message}).encode())


def usage(model: str) -> dict[str, Any]:
    found: dict[str, Any] = {"inputTokens": 12, "outputTokens": 5, "totalTokens": 17}
    if "cache" in model:
        found.update(cacheReadInputTokens=3, cacheWriteInputTokens=2, totalTokens=22)
    return found


def _tool(body: dict[str, Any]) -> Any:
    tools = (body.get("toolConfig") or {}).get("tools") or []
    for tool in tools:
        if "toolSpec" in tool:
            return tool["toolSpec"]["name"]
    return None


def converse(model: str, body: dict[str, Any]) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"text": "".join(TEXT_PIECES)}]
    stop = "end_turn"
    tool = _tool(body)
    if tool is not None:
        content.append({"toolUse": {"toolUseId": "t1", "name": tool, "input": {"city": "Oslo"}}})
        stop = "tool_use"
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop,
        "usage": usage(model),
        "metrics": {"latencyMs": 7},
    }


def converse_events(model: str, body: dict[str, Any]) -> Iterator[bytes]:
    yield event("messageStart", {"role": "assistant"})
    for number, piece in enumerate(TEXT_PIECES):
        yield event("contentBlockDelta", {"delta": {"text": piece}, "contentBlockIndex": 0})
        if number == 0 and "broken" in model:
            yield exception("modelStreamErrorException", "the model failed mid-stream")
            return
    yield event("contentBlockStop", {"contentBlockIndex": 0})
    if "think" in model:
        yield from _other_blocks()
    stop = "end_turn"
    tool = _tool(body)
    if tool is not None:
        start = {"toolUse": {"toolUseId": "t1", "name": tool}}
        yield event("contentBlockStart", {"start": start, "contentBlockIndex": 1})
        for piece in ('{"city": ', '"Oslo"}'):
            delta = {"toolUse": {"input": piece}}
            yield event("contentBlockDelta", {"delta": delta, "contentBlockIndex": 1})
        yield event("contentBlockStop", {"contentBlockIndex": 1})
        stop = "tool_use"
    yield event("messageStop", {"stopReason": stop})
    yield event("metadata", {"usage": usage(model), "metrics": {"latencyMs": 7}})


def _other_blocks() -> Iterator[bytes]:
    """Reasoning, a tool's result and an image, as blocks 1 to 3."""
    for reasoning in ({"text": "Let me"}, {"text": " think"}, {"signature": "sig"}):
        delta = {"reasoningContent": reasoning}
        yield event("contentBlockDelta", {"delta": delta, "contentBlockIndex": 1})
    start = {"toolResult": {"toolUseId": "t9"}}
    yield event("contentBlockStart", {"start": start, "contentBlockIndex": 2})
    for result in ({"text": "20C"}, {"json": {"t": 20}}):
        yield event(
            "contentBlockDelta", {"delta": {"toolResult": [result]}, "contentBlockIndex": 2}
        )
    image = {"source": {"s3Location": {"uri": "s3://b/i.png"}}}
    yield event("contentBlockDelta", {"delta": {"image": image}, "contentBlockIndex": 3})


def invoke_events() -> Iterator[bytes]:
    for piece in TEXT_PIECES:
        raw = json.dumps({"completion": piece}).encode()
        yield event("chunk", {"bytes": base64.b64encode(raw).decode()})


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    wbufsize = -1  # one write per answer (see fakes.aws)

    def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
        self.send_response(status)
        for key, value in {"x-amzn-RequestId": "BEDROCK-REQ", **headers}.items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _stream(self, frames: Iterator[bytes]) -> None:
        self.send_response(200)
        self.send_header("x-amzn-RequestId", "BEDROCK-REQ")
        self.send_header("Content-Type", "application/vnd.amazon.eventstream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for raw in frames:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(raw), raw))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        server: BedrockServer = self.server  # type: ignore[assignment]
        body = json.loads(raw) if raw else {}
        server.received.append((self.path, body))
        parts = self.path.split("?")[0].split("/")
        model, action = unquote(parts[2]), parts[3]
        if "fail" in model:
            error = {"message": "The provided model identifier is invalid."}
            self._answer(
                400,
                json.dumps(error).encode(),
                {"x-amzn-ErrorType": "ValidationException", "Content-Type": "application/json"},
            )
        elif action == "converse":
            answer = json.dumps(converse(model, body)).encode()
            self._answer(200, answer, {"Content-Type": "application/json"})
        elif action == "converse-stream":
            self._stream(converse_events(model, body))
        elif action == "invoke":
            answer = json.dumps({"completion": "".join(TEXT_PIECES)}).encode()
            self._answer(200, answer, {"Content-Type": "application/json"})
        else:
            self._stream(invoke_events())

    def log_message(self, format: str, *args: Any) -> None:
        pass


class BedrockServer(http.server.ThreadingHTTPServer):
    """The fake Bedrock runtime endpoint; `received` (path, JSON body) pairs."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.received: list[tuple[str, Any]] = []

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that closed its stream early resets the connection

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


def serving() -> AbstractContextManager[BedrockServer]:
    """Run a `BedrockServer` on a free port for the block; stopped and closed after it."""
    return serve_in_thread(BedrockServer(), "fake-bedrock")
