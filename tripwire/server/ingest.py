"""Ingest: the Sentry protocol over HTTP, into the store.

``POST /api/<project_id>/envelope/`` takes an envelope; ``POST /api/<project_id>/store/``
takes a raven-era JSON event (plain, zlib-compressed, or base64 of zlib). Both are
authenticated by the project's public key, looked for in the ``X-Sentry-Auth``
header, the ``sentry_key`` query parameter, then (envelopes only) the envelope
header's ``dsn``. Bodies may be ``gzip``, ``deflate`` or ``br`` encoded.

Answers, each with a ``{"detail": reason}`` body on failure:

- 200 ``{"id": event_id}``: stored (items that could not be stored are counted as
  ``invalid`` outcomes, the rest of the envelope is kept);
- 400: the body is not an envelope (or not JSON for ``store``), or its compression
  is corrupt;
- 401: no key was sent; 403: the key is unknown or belongs to another project;
- 413: the body, or what it decompresses to, is larger than the limits (so a
  decompression bomb is refused after at most the limit has been inflated);
- 415: a content encoding this server cannot decode;
- 429: every item is rate limited (see `tripwire.server.ratelimits`).
"""

from __future__ import annotations

import base64
import binascii
import json
import zlib
from typing import TYPE_CHECKING, Any, Optional
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from tripwire.envelope import Envelope
from tripwire.server.store import Item, SaveResult
from tripwire.server.stream import Arrival, cors_headers

if TYPE_CHECKING:
    from tripwire.server.app import ServerState


class IngestError(Exception):
    """A request refused with an HTTP status and a reason for the sender."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason

    def response(self, headers: Optional[dict[str, str]] = None) -> Response:
        """The JSON error response."""
        return JSONResponse({"detail": self.reason}, status_code=self.status, headers=headers)


# -- authentication -----------------------------------------------------------------------------


def auth_key(request: Request) -> Optional[str]:
    """The public key from ``X-Sentry-Auth`` (or ``Authorization``) or ``sentry_key``."""
    for header in ("x-sentry-auth", "authorization"):
        value = request.headers.get(header)
        if value:
            key = parse_auth_header(value).get("sentry_key")
            if key:
                return key
    return request.query_params.get("sentry_key") or None


def parse_auth_header(value: str) -> dict[str, str]:
    """``Sentry sentry_key=abc, sentry_version=7`` -> ``{"sentry_key": "abc", ...}``."""
    value = value.strip()
    if value[:7].lower() == "sentry ":
        value = value[7:]
    fields: dict[str, str] = {}
    for part in value.split(","):
        key, sep, val = part.strip().partition("=")
        if sep:
            fields[key.strip()] = val.strip()
    return fields


def dsn_key(dsn: Any) -> Optional[str]:
    """The public key of a DSN string, or None."""
    if not isinstance(dsn, str):
        return None
    try:
        return urlsplit(dsn).username or None
    except ValueError:
        return None


def check_key(state: ServerState, key: Optional[str], project_id: int) -> None:
    """Raise 401/403 unless `key` is a public key of project `project_id`."""
    if not key:
        raise IngestError(
            401,
            "missing authorization: send an X-Sentry-Auth header, a sentry_key query "
            "parameter or a dsn in the envelope header",
        )
    owner = state.store.project_for_key(key)
    if owner is None:
        raise IngestError(403, f"unknown public key {key[:64]!r}")
    if owner != project_id:
        raise IngestError(403, f"the key does not belong to project {project_id}")


# -- bodies -------------------------------------------------------------------------------------


async def read_body(request: Request, limit: int) -> bytes:
    """The request body, refusing (413) bodies over `limit` bytes before reading them all."""
    declared = request.headers.get("content-length")
    if declared is not None:
        try:
            size = int(declared)
        except ValueError:
            raise IngestError(400, f"bad Content-Length {declared[:40]!r}") from None
        if size > limit:
            raise IngestError(413, f"body of {size} bytes is over the limit of {limit} bytes")
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise IngestError(413, f"body is over the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def decode_body(body: bytes, content_encoding: str, limit: int) -> bytes:
    """Undo ``Content-Encoding`` (gzip, deflate, br, in the order applied).

    Raises:
        IngestError: 413 when the output would exceed `limit` bytes, 400 when the
            compressed data is corrupt, 415 for an unknown encoding.
    """
    encodings = [e.strip().lower() for e in content_encoding.split(",")]
    for encoding in reversed([e for e in encodings if e and e != "identity"]):
        if encoding in ("gzip", "x-gzip"):
            body = inflate(body, 16 + zlib.MAX_WBITS, limit, "gzip")
        elif encoding == "deflate":
            # "deflate" should be zlib-wrapped; some clients send raw deflate.
            wbits = zlib.MAX_WBITS if body[:1] and (body[0] & 0x0F) == 8 else -zlib.MAX_WBITS
            try:
                body = inflate(body, wbits, limit, "deflate")
            except IngestError as exc:
                if exc.status != 400 or wbits < 0:
                    raise
                body = inflate(body, -zlib.MAX_WBITS, limit, "deflate")
        elif encoding == "br":
            body = unbrotli(body, limit)
        else:
            raise IngestError(415, f"unsupported Content-Encoding {encoding[:40]!r}")
    if len(body) > limit:
        raise IngestError(413, f"body is over the limit of {limit} bytes")
    return body


def inflate(data: bytes, wbits: int, limit: int, name: str) -> bytes:
    """zlib/gzip/raw-deflate decompression that stops past `limit` output bytes."""
    out = bytearray()
    decompressor = zlib.decompressobj(wbits)
    pending = data
    try:
        while True:
            out += decompressor.decompress(pending, limit + 1 - len(out))
            if len(out) > limit:
                raise IngestError(
                    413, f"{name} body decompresses to more than the limit of {limit} bytes"
                )
            pending = decompressor.unconsumed_tail
            if decompressor.eof:
                rest = decompressor.unused_data
                # Concatenated gzip members are one stream (as `gzip -c a b` writes).
                if wbits > zlib.MAX_WBITS and rest.strip(b"\0"):
                    decompressor = zlib.decompressobj(wbits)
                    pending = rest
                    continue
                return bytes(out)
            if not pending:
                out += decompressor.flush()
                if len(out) > limit:
                    raise IngestError(413, f"{name} body decompresses past the limit")
                raise IngestError(400, f"{name} body is truncated")
    except zlib.error as exc:
        raise IngestError(400, f"{name} body is corrupt: {exc}") from None


def unbrotli(data: bytes, limit: int) -> bytes:
    """Brotli decompression that stops past `limit` output bytes (needs brotli >= 1.2)."""
    try:
        import brotli
    except ImportError:
        raise IngestError(
            415, "br bodies need the brotli package: pip install 'tripwire[server]'"
        ) from None
    decompressor = brotli.Decompressor()
    if not hasattr(decompressor, "can_accept_more_data"):
        raise IngestError(415, "br bodies need brotli >= 1.2 (bounded decompression)")
    out = bytearray()
    try:
        chunk = decompressor.process(data, output_buffer_limit=limit + 1)
        while True:
            out += chunk
            if len(out) > limit:
                raise IngestError(
                    413, f"br body decompresses to more than the limit of {limit} bytes"
                )
            if decompressor.is_finished():
                return bytes(out)
            if decompressor.can_accept_more_data():
                raise IngestError(400, "br body is truncated")
            chunk = decompressor.process(b"", output_buffer_limit=limit + 1 - len(out))
    except brotli.error as exc:
        raise IngestError(400, f"br body is corrupt: {exc}") from None


def parse_envelope(data: bytes) -> Envelope:
    """Parse an envelope, turning parse errors into 400s."""
    try:
        return Envelope.deserialize(data)
    except (ValueError, TypeError, RecursionError) as exc:
        raise IngestError(400, f"malformed envelope: {exc}") from None


def parse_store_body(data: bytes, limit: int) -> dict[str, Any]:
    """A legacy ``store`` body: JSON, zlib of JSON, or base64 of zlib of JSON."""
    stripped = data.lstrip()
    if not stripped.startswith((b"{", b"[")):
        raw = data
        try:
            raw = base64.b64decode(stripped, validate=True)
        except (binascii.Error, ValueError):
            pass
        try:
            data = inflate(raw, zlib.MAX_WBITS, limit, "zlib")
        except IngestError as exc:
            if exc.status != 400:
                raise
            raise IngestError(
                400, f"the store body is neither JSON nor zlib-compressed JSON ({exc.reason})"
            ) from None
    try:
        event = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise IngestError(400, f"the store body is not JSON: {exc}") from None
    if not isinstance(event, dict):
        raise IngestError(400, "the store body is not a JSON object")
    return event


# -- endpoints ----------------------------------------------------------------------------------


def _state(request: Request) -> ServerState:
    state: ServerState = request.app.state.tripwire
    return state


async def _refuse(
    request: Request, exc: IngestError, size: int, project_id: Optional[int]
) -> Response:
    state = _state(request)
    # Refusals are kept so that the page of drops can say why data did not show up.
    await run_in_threadpool(state.store.record_rejection, project_id, exc.status, exc.reason, size)
    return exc.response(cors_headers(request))


def _decode_envelope(
    body: bytes, content_encoding: str, state: ServerState
) -> tuple[bytes, Envelope]:
    # CPU-bound (inflating up to the limit, parsing): run off the event loop.
    data = decode_body(body, content_encoding, state.max_decompressed_bytes)
    return data, parse_envelope(data)


def _decode_store(body: bytes, content_encoding: str, state: ServerState) -> dict[str, Any]:
    data = decode_body(body, content_encoding, state.max_decompressed_bytes)
    return parse_store_body(data, state.max_decompressed_bytes)


async def envelope_endpoint(request: Request) -> Response:
    """``POST /api/<project_id>/envelope/``."""
    state = _state(request)
    project_id: int = request.path_params["project_id"]
    key = auth_key(request)
    body = b""
    try:
        if key is not None:
            # Refuse a wrong key before reading (and inflating) the body.
            check_key(state, key, project_id)
        body = await read_body(request, state.max_body_bytes)
        data, envelope = await run_in_threadpool(
            _decode_envelope, body, request.headers.get("content-encoding", ""), state
        )
        if key is None:
            key = dsn_key(envelope.headers.get("dsn"))
            check_key(state, key, project_id)
    except IngestError as exc:
        return await _refuse(request, exc, len(body), project_id)
    return await _accept(request, project_id, envelope, data)


async def store_endpoint(request: Request) -> Response:
    """``POST /api/<project_id>/store/``: one JSON event, as raven sent them."""
    state = _state(request)
    project_id: int = request.path_params["project_id"]
    body = b""
    try:
        check_key(state, auth_key(request), project_id)
        body = await read_body(request, state.max_body_bytes)
        event = await run_in_threadpool(
            _decode_store, body, request.headers.get("content-encoding", ""), state
        )
    except IngestError as exc:
        return await _refuse(request, exc, len(body), project_id)
    item_type = "transaction" if event.get("type") == "transaction" else "event"
    envelope = Envelope(headers={"event_id": event.get("event_id")})
    envelope.add_event(event) if item_type == "event" else envelope.add_transaction(event)
    return await _accept(request, project_id, envelope, envelope.serialize())


async def sidecar_endpoint(request: Request) -> Response:
    """``POST /stream``: an envelope from an SDK's Spotlight support (no key needed)."""
    state = _state(request)
    body = b""
    try:
        body = await read_body(request, state.max_body_bytes)
        data, envelope = await run_in_threadpool(
            _decode_envelope, body, request.headers.get("content-encoding", ""), state
        )
    except IngestError as exc:
        return await _refuse(request, exc, len(body), None)
    # Spotlight sends no key; an envelope whose dsn names a known project goes there.
    key = dsn_key(envelope.headers.get("dsn"))
    project_id = state.store.project_for_key(key) if key else None
    if project_id is None:
        project_id = state.default_project_id
    response = await _accept(request, project_id, envelope, data, apply_limits=False)
    response.headers.update(cors_headers(request))
    return response


async def _accept(
    request: Request,
    project_id: int,
    envelope: Envelope,
    data: bytes,
    apply_limits: bool = True,
) -> Response:
    state = _state(request)
    items: list[Item] = []
    dropped: list[tuple[str, str, str]] = []
    limits = state.rate_limits
    for item in envelope.items:
        item_type = item.type or "unknown"
        limit = limits.limited(item.data_category) if apply_limits else None
        if limit is not None:
            dropped.append((item_type, "rate_limited", limit.header_value()))
            continue
        items.append(Item(item_type, item.headers, item.payload.bytes or b"", item.payload.json))
    result: SaveResult = await run_in_threadpool(
        state.store.save, project_id, items, envelope.headers, None, dropped
    )
    state.broadcaster.publish(
        Arrival(
            path=request.url.path,
            status=200,
            items=[item.type or "unknown" for item in envelope.items],
            summary=_summary(envelope),
            body=data,
        )
    )
    headers: dict[str, str] = {}
    header = limits.header() if apply_limits else None
    if header:
        headers["X-Sentry-Rate-Limits"] = header
        if envelope.items and not items:
            headers["Retry-After"] = str(limits.retry_after())
            return JSONResponse(
                {"detail": "rate limited", "dropped": len(dropped)},
                status_code=429,
                headers=headers,
            )
    event_id = envelope.headers.get("event_id")
    if not isinstance(event_id, str) and result.event_ids:
        event_id = result.event_ids[0]
    body: dict[str, Any] = {"id": event_id} if isinstance(event_id, str) else {}
    if result.dropped:
        body["dropped"] = [
            {"type": t, "reason": r, "detail": d[:200]} for t, r, d in result.dropped
        ]
    return JSONResponse(body, headers=headers)


def _summary(envelope: Envelope) -> str:
    from tripwire.server.grouping import event_title

    for item in envelope.items:
        event = item.payload.json
        if isinstance(event, dict):
            if item.type == "transaction":
                return f"transaction {event.get('transaction')}"
            return event_title(event)
    return ", ".join(item.type or "unknown" for item in envelope.items) or "empty envelope"
