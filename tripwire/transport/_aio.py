"""HTTP/1.1 on the event loop: one kept-alive asyncio stream, for `AsyncHttpTransport`.

The same protocol subset as `_http11` (one POST at a time, the status, the headers
the policy reads, the body framing), over `asyncio.open_connection`, so the
sending task awaits the server instead of a thread waiting for it. Errors become
`NetworkError`, classified as the sync client classifies them, so the policy's
retry, spool and backoff decisions are the same.

Proxies and the urllib3 path are not spoken here: the transport sends those
requests through the sync `HttpClient` in the loop's executor instead.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, Callable, Optional
from urllib.parse import urlsplit

from tripwire.transport._http11 import (
    MAX_BODY,
    MAX_HEAD,
    WANTED_HEADERS,
    NetworkError,
    Response,
    hostport,
)
from tripwire.transport._http_client import classify


class AsyncConnection:
    """One connection to the URL's server, made on the first request.

    Args:
        url: The endpoint (``http://`` or ``https://``).
        timeout: Seconds for the whole request (connect, write, answer).
        ssl_context: Returns the TLS context (called on first connect); None for HTTP.
    """

    __slots__ = (
        "_host",
        "_make_context",
        "_port",
        "_reader",
        "_request_line",
        "_writer",
        "timeout",
    )

    def __init__(
        self, url: str, timeout: float, ssl_context: Optional[Callable[[], Any]] = None
    ) -> None:
        target = urlsplit(url)
        tls = target.scheme == "https"
        self._host = target.hostname or ""
        self._port = target.port or (443 if tls else 80)
        path = target.path or "/"
        if target.query:
            path = f"{path}?{target.query}"
        host = hostport(self._host, self._port, 443 if tls else 80)
        self._request_line = f"POST {path} HTTP/1.1\r\nHost: {host}\r\n"
        self._make_context = ssl_context if tls else None
        self.timeout = timeout
        self._reader: Optional[asyncio.StreamReader] = None
        self._writer: Optional[asyncio.StreamWriter] = None

    async def post(self, body: bytes, headers: Mapping[str, str]) -> Response:
        """Send one POST and read the whole response.

        Raises:
            NetworkError: no HTTP response was received (the connection is closed).
        """
        try:
            return await asyncio.wait_for(self._post(body, headers), self.timeout)
        except (NetworkError, asyncio.CancelledError):
            # Cancelled mid-request (the loop closing): its answer may still come on
            # this connection, so it is not used again.
            self.close()
            raise
        except Exception as exc:  # socket, TLS, framing, timeout (asyncio.TimeoutError too)
            self.close()
            unreachable, hopeless, timed_out = classify(exc)
            message = f"{type(exc).__name__}: {exc}"
            raise NetworkError(message, unreachable, hopeless, timed_out) from exc

    async def _post(self, body: bytes, headers: Mapping[str, str]) -> Response:
        reader, writer = self._reader, self._writer
        if reader is None or writer is None or reader.at_eof() or writer.is_closing():
            self.close()
            context = self._make_context() if self._make_context is not None else None
            reader, writer = await asyncio.open_connection(
                self._host,
                self._port,
                ssl=context,
                server_hostname=self._host if context is not None else None,
                limit=MAX_HEAD,
            )
            self._reader, self._writer = reader, writer
        head = "".join(f"{name}: {value}\r\n" for name, value in headers.items())
        writer.write(
            f"{self._request_line}{head}Content-Length: {len(body)}\r\n\r\n".encode("latin-1")
            + body
        )
        await writer.drain()
        while True:
            status, fields, first = await _read_head(reader)
            if not 100 <= status < 200:
                break  # an interim response (100 Continue) is followed by the real one
        keep = first.startswith(b"HTTP/1.1") and fields.get("connection", "").lower() != "close"
        if status in (204, 304):
            pass
        elif fields.get("transfer-encoding", "").lower().endswith("chunked"):
            await _read_chunked(reader)
        elif "content-length" in fields:
            try:
                size = int(fields["content-length"])
            except ValueError:
                raise NetworkError("malformed Content-Length") from None
            if size > MAX_BODY:
                raise NetworkError(f"response body too large ({size} bytes)")
            await reader.readexactly(size)
        else:
            data = await reader.read(MAX_BODY + 1)
            while data and len(data) <= MAX_BODY:
                more = await reader.read(MAX_BODY + 1)
                if not more:
                    break
                data += more
            if len(data) > MAX_BODY:
                raise NetworkError("response body too large")
            keep = False
        if not keep:
            self.close()
        found = {name: fields[name] for name in WANTED_HEADERS if name in fields}
        return Response(status, found)

    def close(self) -> None:
        """Close the connection (without waiting); a later `post` reconnects."""
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            try:
                writer.close()
            except Exception:  # a loop already closed: the socket goes with it
                pass


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.LimitOverrunError:
        raise NetworkError("response headers too long: not an HTTP server?") from None
    lines = head[:-4].split(b"\r\n")
    parts = lines[0].split(b" ", 2)
    if len(parts) < 2 or not parts[0].startswith(b"HTTP/1.") or not parts[1].isdigit():
        raise NetworkError(f"not an HTTP response: {lines[0][:80]!r}")
    fields: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if sep:
            fields[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
    return int(parts[1]), fields, lines[0]


async def _read_chunked(reader: asyncio.StreamReader) -> None:
    total = 0
    while True:
        size_text = (await reader.readuntil(b"\r\n"))[:-2].split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise NetworkError(f"malformed chunk size {size_text[:20]!r}") from None
        if size == 0:
            while (await reader.readuntil(b"\r\n")) != b"\r\n":  # trailers
                pass
            return
        total += size
        if total > MAX_BODY:
            raise NetworkError("response body too large")
        await reader.readexactly(size + 2)


__all__ = ["AsyncConnection"]
