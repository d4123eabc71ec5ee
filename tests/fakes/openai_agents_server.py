"""The fake OpenAI API of `llm_server`, answering like a model that finishes an agent loop.

`llm_server` answers every request that offers tools with a call of the first tool,
so an agent would call it forever. Here a request whose last input is a tool's result
(a ``tool`` message of chat completions, a ``function_call_output`` item of the
Responses API) is answered as if it offered no tools: with text. Everything else
(streaming, errors for models named ``error``, the fixed usage) is `llm_server`'s.
Used by the openai-agents and pydantic-ai tests.
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from typing import Any

from fakes import llm_server
from fakes.llm_server import serve_in_thread


def _after_tool_result(body: dict[str, Any]) -> bool:
    items = body.get("messages") or body.get("input")
    if not isinstance(items, list) or not items:
        return False
    last = items[-1]
    return isinstance(last, dict) and (
        last.get("role") == "tool" or last.get("type") == "function_call_output"
    )


class _Replay:
    """A request body already read, served again to `llm_server`'s handler."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def read(self, size: int = -1) -> bytes:
        out, self.data = (self.data, b"") if size < 0 else (self.data[:size], self.data[size:])
        return out


class _Handler(llm_server._Handler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length) or b"{}")
        if _after_tool_result(body):
            body.pop("tools", None)
        data = json.dumps(body).encode()
        self.headers.replace_header("Content-Length", str(len(data)))
        connection = self.rfile
        self.rfile = _Replay(data)  # type: ignore[assignment]
        try:
            super().do_POST()
        finally:
            self.rfile = connection


class AgentLlmServer(llm_server.LlmServer):
    """`LlmServer` with the agent-loop rule; `url` is its base (``http://127.0.0.1:PORT``)."""

    def __init__(self) -> None:
        super().__init__()
        self.RequestHandlerClass = _Handler


def serving() -> AbstractContextManager[AgentLlmServer]:
    """Run an `AgentLlmServer` on a free port for the block; stopped and closed after it."""
    return serve_in_thread(AgentLlmServer(), "fake-agent-llm")
