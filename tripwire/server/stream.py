"""Live data: Spotlight's sidecar protocol on ``/stream`` and the live page's feed.

``POST /stream`` takes an envelope as Spotlight's sidecar does (no key, the body is
the envelope, ``Content-Type: application/x-sentry-envelope``): what the SDK sends
with ``spotlight=True``. It is stored like any envelope, in the default project.

``GET /stream`` is the sidecar's server-sent events stream: every envelope that
arrives, on this endpoint or on the ingest endpoints, is sent as an event named
after its content type, one ``data:`` line per envelope line.

``GET /live/feed`` sends the same arrivals as JSON summaries for the ``/live`` page.
"""

from __future__ import annotations

import asyncio
import collections
import json
import time
from collections.abc import AsyncIterator
from typing import Any, Optional

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

ENVELOPE_TYPE = "application/x-sentry-envelope"

# How many arrivals the live page shows when it opens, and how far a slow reader may
# fall behind before it misses arrivals (it is never allowed to slow ingest down).
_HISTORY = 100
_QUEUE = 1000
_KEEPALIVE_SECONDS = 15.0


class Arrival:
    """One envelope that arrived: for the live page and the sidecar stream."""

    __slots__ = ("body", "items", "path", "received", "status", "summary")

    def __init__(self, path: str, status: int, items: list[str], summary: str, body: bytes) -> None:
        self.received = time.time()
        self.path = path
        self.status = status
        self.items = items
        self.summary = summary
        self.body = body

    def to_json(self) -> dict[str, Any]:
        """The summary the live page renders."""
        return {
            "received": self.received,
            "path": self.path,
            "status": self.status,
            "items": self.items,
            "summary": self.summary,
            "size": len(self.body),
        }


class Broadcaster:
    """Fans arrivals out to the open streams; runs on the server's event loop."""

    def __init__(self) -> None:
        self.history: collections.deque[Arrival] = collections.deque(maxlen=_HISTORY)
        self._subscribers: set[asyncio.Queue[Optional[Arrival]]] = set()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._closed = False

    def publish(self, arrival: Arrival) -> None:
        """Send `arrival` to every subscriber (dropping it for those that are full)."""
        self.history.append(arrival)
        for queue in tuple(self._subscribers):
            try:
                queue.put_nowait(arrival)
            except asyncio.QueueFull:
                pass

    async def subscribe(self) -> AsyncIterator[Optional[Arrival]]:
        """Arrivals as they come; None now and then as a keep-alive tick."""
        self._loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Optional[Arrival]] = asyncio.Queue(_QUEUE)
        self._subscribers.add(queue)
        try:
            while not self._closed:
                try:
                    arrival = await asyncio.wait_for(queue.get(), _KEEPALIVE_SECONDS)
                except asyncio.TimeoutError:
                    yield None
                    continue
                if arrival is None:
                    return
                yield arrival
        finally:
            self._subscribers.discard(queue)

    def close(self) -> None:
        """End every open stream (so that the server can stop). Thread-safe."""
        self._closed = True
        loop = self._loop
        if loop is None or loop.is_closed():
            return

        def wake() -> None:
            for queue in tuple(self._subscribers):
                try:
                    queue.put_nowait(None)
                except asyncio.QueueFull:
                    pass

        try:
            loop.call_soon_threadsafe(wake)
        except RuntimeError:
            pass


def cors_headers(request: Request) -> dict[str, str]:
    """CORS for the sidecar: browser SDKs on local pages post to it."""
    return {
        "Access-Control-Allow-Origin": request.headers.get("origin") or "*",
        "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
        "Access-Control-Allow-Headers": "Content-Type, Content-Encoding, X-Sentry-Auth",
        "Vary": "Origin",
    }


async def stream_options(request: Request) -> Response:
    """CORS preflight for ``/stream``."""
    return Response(status_code=204, headers=cors_headers(request))


def _sse(event: str, data: str) -> bytes:
    lines = data.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    body = "".join(f"data:{line}\n" for line in lines) or "data:\n"
    return f"event:{event}\n{body}\n".encode()


async def stream_events(request: Request) -> Response:
    """``GET /stream``: the sidecar's event stream of envelopes."""
    broadcaster: Broadcaster = request.app.state.tripwire.broadcaster

    async def events() -> AsyncIterator[bytes]:
        yield b": tripwire sidecar stream\n\n"
        async for arrival in broadcaster.subscribe():
            if arrival is None:
                yield b": keep-alive\n\n"
            else:
                yield _sse(ENVELOPE_TYPE, arrival.body.decode("utf-8", "replace"))

    return StreamingResponse(
        events(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", **cors_headers(request)},
    )


async def live_feed(request: Request) -> Response:
    """``GET /live/feed``: arrivals as JSON summaries, for the live page."""
    broadcaster: Broadcaster = request.app.state.tripwire.broadcaster

    async def events() -> AsyncIterator[bytes]:
        for past in list(broadcaster.history):
            yield _sse("arrival", json.dumps(past.to_json()))
        async for arrival in broadcaster.subscribe():
            if arrival is None:
                yield b": keep-alive\n\n"
            else:
                yield _sse("arrival", json.dumps(arrival.to_json()))

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )
