"""The loopback OpenAI fake of `llm_server`, made to end agent loops.

`llm_server` answers every chat request that offers tools with a call of the first
tool, so an agent that runs the tool and asks again would call it forever. This
server answers text instead once the conversation's last message is a tool result,
as a model does; everything else is `llm_server`'s.
"""

from __future__ import annotations

import io
import json
import threading
from contextlib import AbstractContextManager
from typing import Any

from fakes.llm_server import LlmServer, _Handler, serve_in_thread


def _after_tool(body: dict[str, Any]) -> bool:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return False
    last = messages[-1]
    return isinstance(last, dict) and last.get("role") == "tool"


class _AgentHandler(_Handler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) or b"{}"
        body = json.loads(raw)
        if self.path.startswith("/v1/chat/completions") and _after_tool(body):
            body.pop("tools", None)  # the tool has answered: the model now writes text
            raw = json.dumps(body).encode()
        # The base handler reads the (possibly edited) body from here; the socket's
        # reader comes back after, for the connection's next request (keep-alive).
        connection, self.rfile = self.rfile, io.BytesIO(raw)
        del self.headers["Content-Length"]
        self.headers["Content-Length"] = str(len(raw))
        try:
            super().do_POST()
        finally:
            self.rfile = connection


class LangchainLlmServer(LlmServer):
    """`LlmServer` whose chat model stops calling tools after a tool result."""

    def __init__(self) -> None:
        super().__init__()
        self.RequestHandlerClass = _AgentHandler


def serving() -> AbstractContextManager[LangchainLlmServer]:
    """Run an `LangchainLlmServer` on a free port for the block; stopped and closed after it."""
    return serve_in_thread(LangchainLlmServer(), "fake-langchain-llm")


if __name__ == "__main__":  # run on its own, for scripts that need a URL
    with serving() as _server:
        print(_server.url, flush=True)
        threading.Event().wait()
