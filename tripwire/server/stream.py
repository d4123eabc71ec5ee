"""Live data: Spotlight's sidecar protocol on ``/stream`` and the live page's feed.

``POST /stream`` takes an envelope as Spotlight's sidecar does (no key, the body is
the envelope, ``Content-Type: application/x-sentry-envelope``): what the SDK sends
with ``spotlight=True``. It is stored like any envelope, in the default project.

``GET /stream`` is the sidecar's server-sent events stream: every envelope that
arrives, on this endpoint or on the ingest endpoints, is sent as an event named
after its content type, one ``data:`` line per envelope line.

``GET /live/feed`` sends the same arrivals as JSON summaries for the ``/live`` page.

Both carry what the SDKs sent, so only this server's own pages and origins given
with ``--allow-origin`` may read them (`tripwire.server.origins`).

Everything held here is bounded in bytes, never only in count: the recent arrivals
kept for pages that open later, each subscriber's backlog (a subscriber that falls
further behind is dropped: its stream ends, and a new one starts from the recent
arrivals), and the envelopes themselves (one larger than `max_stream_body` is
announced by its size only; it is stored all the same).
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

MiB = 1024 * 1024
# The recent arrivals a page gets when it opens: at most this many, this many bytes.
HISTORY_COUNT = 100
HISTORY_BYTES = 16 * MiB
# How far behind a subscriber may fall, in bytes, before it is dropped.
BACKLOG_BYTES = 16 * MiB
# Envelopes larger than this go out on /stream as a comment with their size.
MAX_STREAM_BODY = 2 * MiB
_KEEPALIVE_SECONDS = 15.0
# Per-arrival bookkeeping besides the body (summary, item types, object headers).
_OVERHEAD = 512


class Arrival:
    """One envelope that arrived: for the live page and the sidecar stream."""

    __slots__ = (
        "body",
        "cost",
        "envelope_id",
        "items",
        "path",
        "received",
        "size",
        "status",
        "summary",
    )

    def __init__(
        self,
        path: str,
        status: int,
        items: list[str],
        summary: str,
        body: Optional[bytes],
        size: Optional[int] = None,
    ) -> None:
        self.received = time.time()
        self.path = path[:200]
        self.status = status
        self.items = [item[:50] for item in items[:100]]
        self.summary = summary[:300]
        self.body = body
        self.size = size if size is not None else len(body or b"")
        self.cost = _OVERHEAD + len(body or b"")
        # Its record in the envelope inspector (``/envelopes/<id>/``), once stored.
        self.envelope_id: Optional[int] = None

    def to_json(self) -> dict[str, Any]:
        """The summary the live page renders."""
        return {
            "received": self.received,
            "path": self.path,
            "status": self.status,
            "items": self.items,
            "summary": self.summary,
            "size": self.size,
            "id": self.envelope_id,
        }


class _Subscriber:
    __slots__ = ("backlog", "dropped", "queue", "wake")

    def __init__(self) -> None:
        self.queue: collections.deque[Arrival] = collections.deque()
        self.backlog = 0
        self.dropped = False
        self.wake = asyncio.Event()


class Broadcaster:
    """Fans arrivals out to the open streams; runs on the server's event loop."""

    def __init__(
        self,
        history_bytes: int = HISTORY_BYTES,
        history_count: int = HISTORY_COUNT,
        backlog_bytes: int = BACKLOG_BYTES,
        max_stream_body: int = MAX_STREAM_BODY,
    ) -> None:
        self.history_bytes = history_bytes
        self.history_count = history_count
        self.backlog_bytes = backlog_bytes
        self.max_stream_body = max_stream_body
        self.history: collections.deque[Arrival] = collections.deque()
        self.history_size = 0
        self.dropped_subscribers = 0
        self._subscribers: set[_Subscriber] = set()
        self._loop: Optional[asyncio.AbstractEventLoop] = None
        self._closed = False

    def arrival(
        self, path: str, status: int, items: list[str], summary: str, body: bytes
    ) -> Arrival:
        """An `Arrival`, keeping `body` only if it is small enough to stream."""
        keep = body if len(body) <= self.max_stream_body else None
        return Arrival(path, status, items, summary, keep, size=len(body))

    @property
    def subscribers(self) -> int:
        """How many streams are open."""
        return len(self._subscribers)

    def publish(self, arrival: Arrival) -> None:
        """Send `arrival` to every subscriber; drop those that are too far behind."""
        self.history.append(arrival)
        self.history_size += arrival.cost
        while self.history and (
            self.history_size > self.history_bytes or len(self.history) > self.history_count
        ):
            self.history_size -= self.history.popleft().cost
        for sub in tuple(self._subscribers):
            if sub.backlog + arrival.cost > self.backlog_bytes:
                # Never let a reader that does not keep up hold memory or slow ingest.
                sub.dropped = True
                sub.queue.clear()
                sub.backlog = 0
                self._subscribers.discard(sub)
                self.dropped_subscribers += 1
            else:
                sub.queue.append(arrival)
                sub.backlog += arrival.cost
            sub.wake.set()

    async def subscribe(self) -> AsyncIterator[Optional[Arrival]]:
        """Arrivals as they come; None now and then as a keep-alive tick.

        Ends when the server stops or when this subscriber fell too far behind.
        """
        self._loop = asyncio.get_running_loop()
        sub = _Subscriber()
        self._subscribers.add(sub)
        try:
            while not self._closed and not sub.dropped:
                if not sub.queue:
                    sub.wake.clear()
                    try:
                        await asyncio.wait_for(sub.wake.wait(), _KEEPALIVE_SECONDS)
                    except asyncio.TimeoutError:
                        yield None
                    continue
                arrival = sub.queue.popleft()
                sub.backlog -= arrival.cost
                yield arrival
        finally:
            self._subscribers.discard(sub)

    def close(self) -> None:
        """End every open stream (so that the server can stop). Thread-safe."""
        self._closed = True
        loop = self._loop
        if loop is None or loop.is_closed():
            return

        def wake() -> None:
            for sub in tuple(self._subscribers):
                sub.wake.set()

        try:
            loop.call_soon_threadsafe(wake)
        except RuntimeError:
            pass


def _sse(event: str, data: str) -> bytes:
    lines = data.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    body = "".join(f"data:{line}\n" for line in lines) or "data:\n"
    return f"event:{event}\n{body}\n".encode()


async def stream_options(request: Request) -> Response:
    """``OPTIONS /stream`` without a CORS preflight (those are answered by the origin check)."""
    return Response(status_code=204, headers={"Allow": "GET, POST, OPTIONS"})


async def stream_events(request: Request) -> Response:
    """``GET /stream``: the sidecar's event stream of envelopes."""
    broadcaster: Broadcaster = request.app.state.tripwire.broadcaster

    async def events() -> AsyncIterator[bytes]:
        yield b": tripwire sidecar stream\n\n"
        async for arrival in broadcaster.subscribe():
            if arrival is None:
                yield b": keep-alive\n\n"
            elif arrival.body is None:
                yield (
                    f": envelope of {arrival.size} bytes not streamed (over the stream limit "
                    f"of {broadcaster.max_stream_body} bytes); it is stored\n\n"
                ).encode()
            else:
                yield _sse(ENVELOPE_TYPE, arrival.body.decode("utf-8", "replace"))

    return StreamingResponse(
        events(), media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
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
