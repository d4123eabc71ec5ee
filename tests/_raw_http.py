"""A tiny HTTP/1.1 client for asyncio tests: one request per connection, on loopback.

The web framework tests drive real servers (Quart on uvicorn, Sanic, Tornado) from
the loop they run on; this client needs no extra library and sends exactly the
headers given (plus Host, Connection and Content-Length).
"""

from __future__ import annotations

import asyncio
import socket
from typing import Optional


def bound_socket() -> socket.socket:
    """A listening-ready socket bound to a free port on 127.0.0.1 (the caller closes it)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    return sock


async def fetch(
    port: int,
    method: str,
    path: str,
    headers: Optional[dict[str, str]] = None,
    body: Optional[bytes] = None,
) -> tuple[int, bytes]:
    """Send one request to 127.0.0.1:`port`; the response's status and raw body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
        lines += [f"{name}: {value}" for name, value in (headers or {}).items()]
        if body is not None:
            lines.append(f"Content-Length: {len(body)}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + (body or b""))
        await writer.drain()
        data = await reader.read()
    finally:
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass
    head, _, rest = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), rest
