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
- 413: the body, what it decompresses to, or one of its items is larger than the
  limits (`tripwire.server.limits`; a decompression bomb is refused after at most
  the limit has been inflated);
- 415: a content encoding this server cannot decode;
- 429: every item is rate limited (see `tripwire.server.ratelimits`);
- 503 with ``Retry-After``: the requests in progress already hold as many bytes as
  the server allows at once;
- 507: the database has reached its size limit.

Browsers are subject to `tripwire.server.origins` before any of this.
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
from tripwire.server import inspector
from tripwire.server.inspector import EnvelopeRecord
from tripwire.server.limits import MAX_ATTACHMENTS_BYTES, BudgetExceeded, Hold, item_limit
from tripwire.server.store import SaveResult, StoredItem, StoreFull

if TYPE_CHECKING:
    from tripwire.server.app import ServerState


class IngestError(Exception):
    """A request refused with an HTTP status and a reason for the sender."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason

    def response(self) -> Response:
        """The JSON error response."""
        headers = {"Retry-After": "1"} if self.status == 503 else None
        return JSONResponse({"detail": self.reason}, status_code=self.status, headers=headers)


def _busy(exc: BudgetExceeded) -> IngestError:
    return IngestError(503, str(exc))


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


async def read_body(request: Request, limit: int, hold: Optional[Hold] = None) -> bytes:
    """The request body, refusing (413) bodies over `limit` bytes before reading them all.

    What is read is reserved in `hold` as it arrives (503 if the server holds too much).
    """
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
        if hold is not None:
            try:
                hold.take(len(chunk))
            except BudgetExceeded as exc:
                raise _busy(exc) from None
        chunks.append(chunk)
    return b"".join(chunks)


def decode_body(
    body: bytes, content_encoding: str, limit: int, hold: Optional[Hold] = None
) -> bytes:
    """Undo ``Content-Encoding`` (gzip, deflate, br, in the order applied).

    Decoded bytes are reserved in `hold` (twice: the body, then its parsed copy) as
    they are produced.

    Raises:
        IngestError: 413 when the output would exceed `limit` bytes, 400 when the
            compressed data is corrupt, 415 for an unknown encoding.
    """
    hold = hold if hold is not None else Hold(None)
    encodings = [e.strip().lower() for e in content_encoding.split(",")]
    try:
        decoded = _decode(body, encodings, limit, hold)
    except BudgetExceeded as exc:
        raise _busy(exc) from None
    if len(decoded) > limit:
        raise IngestError(413, f"body is over the limit of {limit} bytes")
    return decoded


def _decode(body: bytes, encodings: list[str], limit: int, hold: Hold) -> bytes:
    steps = [e for e in encodings if e and e != "identity"]
    if not steps:
        hold.take(len(body))  # its parsed copy
        return body
    for encoding in reversed(steps):
        if encoding in ("gzip", "x-gzip"):
            body = inflate(body, 16 + zlib.MAX_WBITS, limit, "gzip", hold)
        elif encoding == "deflate":
            # "deflate" should be zlib-wrapped; some clients send raw deflate.
            wbits = zlib.MAX_WBITS if body[:1] and (body[0] & 0x0F) == 8 else -zlib.MAX_WBITS
            try:
                body = inflate(body, wbits, limit, "deflate", hold)
            except IngestError as exc:
                if exc.status != 400 or wbits < 0:
                    raise
                body = inflate(body, -zlib.MAX_WBITS, limit, "deflate", hold)
        elif encoding == "br":
            body = unbrotli(body, limit, hold)
        else:
            raise IngestError(415, f"unsupported Content-Encoding {encoding[:40]!r}")
    return body


# Output is produced (and reserved) this much at a time.
_CHUNK = 1024 * 1024


class _Output:
    """Decompressed output, reserved in a `Hold` as it grows (2x: see `decode_body`)."""

    __slots__ = ("hold", "limit", "name", "parts", "size")

    def __init__(self, hold: Optional[Hold], limit: int, name: str) -> None:
        self.parts: list[bytes] = []
        self.size = 0
        self.hold = hold
        self.limit = limit
        self.name = name

    def add(self, data: bytes) -> None:
        if self.size + len(data) > self.limit:
            # Over the limit: a 413, whatever the other requests hold.
            raise IngestError(
                413, f"{self.name} body decompresses to more than the limit of {self.limit} bytes"
            )
        if self.hold is not None:
            self.hold.take(2 * len(data))
        self.parts.append(data)
        self.size += len(data)

    def join(self) -> bytes:
        data = b"".join(self.parts)
        self.parts = []
        return data


def inflate(data: bytes, wbits: int, limit: int, name: str, hold: Optional[Hold] = None) -> bytes:
    """zlib/gzip/raw-deflate decompression that stops past `limit` output bytes."""
    out = _Output(hold, limit, name)
    decompressor = zlib.decompressobj(wbits)
    pending = data
    try:
        while True:
            out.add(decompressor.decompress(pending, min(_CHUNK, limit + 1 - out.size)))
            if out.size > limit:
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
                return out.join()
            if not pending:
                out.add(decompressor.flush())
                if out.size > limit:
                    raise IngestError(413, f"{name} body decompresses past the limit")
                raise IngestError(400, f"{name} body is truncated")
    except zlib.error as exc:
        raise IngestError(400, f"{name} body is corrupt: {exc}") from None


def unbrotli(data: bytes, limit: int, hold: Optional[Hold] = None) -> bytes:
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
    out = _Output(hold, limit, "br")
    try:
        chunk = decompressor.process(data, output_buffer_limit=min(_CHUNK, limit + 1))
        while True:
            out.add(chunk)
            if out.size > limit:
                raise IngestError(
                    413, f"br body decompresses to more than the limit of {limit} bytes"
                )
            if decompressor.is_finished():
                return out.join()
            if decompressor.can_accept_more_data():
                raise IngestError(400, "br body is truncated")
            chunk = decompressor.process(b"", output_buffer_limit=min(_CHUNK, limit + 1 - out.size))
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


def check_items(envelope: Envelope, envelope_limit: int) -> None:
    """Refuse (413) an envelope with an item over its type's limit, or too many attachments."""
    attachments = 0
    for item in envelope.items:
        item_type = item.type or "unknown"
        size = len(item.payload.bytes or b"")
        limit = item_limit(item_type, envelope_limit)
        if size > limit:
            raise IngestError(
                413, f"{item_type} item of {size} bytes is over the limit of {limit} bytes"
            )
        if item_type == "attachment":
            attachments += size
    if attachments > MAX_ATTACHMENTS_BYTES:
        raise IngestError(
            413,
            f"attachments of {attachments} bytes in one envelope are over the limit of "
            f"{MAX_ATTACHMENTS_BYTES} bytes",
        )


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
    return exc.response()


def _decode_envelope(
    body: bytes, content_encoding: str, state: ServerState, hold: Hold, path: str
) -> tuple[bytes, Envelope, EnvelopeRecord]:
    # CPU-bound (inflating up to the limit, parsing): run off the event loop. The
    # inspector's record (bounded) is read from the envelope as it was sent.
    data = decode_body(body, content_encoding, state.max_decompressed_bytes, hold)
    envelope = parse_envelope(data)
    check_items(envelope, state.max_decompressed_bytes)
    return data, envelope, inspector.record(path, data)


def _decode_store(
    body: bytes, content_encoding: str, state: ServerState, hold: Hold
) -> dict[str, Any]:
    limit = min(state.max_decompressed_bytes, item_limit("event", state.max_decompressed_bytes))
    data = decode_body(body, content_encoding, limit, hold)
    return parse_store_body(data, limit)


async def envelope_endpoint(request: Request) -> Response:
    """``POST /api/<project_id>/envelope/``."""
    state = _state(request)
    project_id: int = request.path_params["project_id"]
    key = auth_key(request)
    size = 0
    hold = Hold(state.budget)
    try:
        try:
            if key is not None:
                # Refuse a wrong key before reading (and inflating) the body.
                check_key(state, key, project_id)
            body = await read_body(request, state.max_body_bytes, hold)
            size = len(body)
            data, envelope, rec = await run_in_threadpool(
                _decode_envelope,
                body,
                request.headers.get("content-encoding", ""),
                state,
                hold,
                request.url.path,
            )
            del body
            if key is None:
                key = dsn_key(envelope.headers.get("dsn"))
                check_key(state, key, project_id)
        except IngestError as exc:
            return await _refuse(request, exc, size, project_id)
        return await _accept(request, project_id, envelope, data, size, rec)
    finally:
        hold.release()


async def store_endpoint(request: Request) -> Response:
    """``POST /api/<project_id>/store/``: one JSON event, as raven sent them."""
    state = _state(request)
    project_id: int = request.path_params["project_id"]
    size = 0
    hold = Hold(state.budget)
    try:
        try:
            check_key(state, auth_key(request), project_id)
            body = await read_body(request, state.max_body_bytes, hold)
            size = len(body)
            event = await run_in_threadpool(
                _decode_store, body, request.headers.get("content-encoding", ""), state, hold
            )
        except IngestError as exc:
            return await _refuse(request, exc, size, project_id)
        item_type = "transaction" if event.get("type") == "transaction" else "event"
        envelope = Envelope(headers={"event_id": event.get("event_id")})
        envelope.add_event(event) if item_type == "event" else envelope.add_transaction(event)
        data = envelope.serialize()
        rec = inspector.record(request.url.path, data)
        return await _accept(request, project_id, envelope, data, size, rec)
    finally:
        hold.release()


async def sidecar_endpoint(request: Request) -> Response:
    """``POST /stream``: an envelope from an SDK's Spotlight support (no key needed)."""
    state = _state(request)
    size = 0
    hold = Hold(state.budget)
    try:
        try:
            body = await read_body(request, state.max_body_bytes, hold)
            size = len(body)
            data, envelope, rec = await run_in_threadpool(
                _decode_envelope,
                body,
                request.headers.get("content-encoding", ""),
                state,
                hold,
                request.url.path,
            )
            del body
        except IngestError as exc:
            return await _refuse(request, exc, size, None)
        # Spotlight sends no key; an envelope whose dsn names a known project goes there.
        key = dsn_key(envelope.headers.get("dsn"))
        project_id = state.store.project_for_key(key) if key else None
        if project_id is None:
            project_id = state.default_project_id
        return await _accept(request, project_id, envelope, data, size, rec, apply_limits=False)
    finally:
        hold.release()


async def _accept(
    request: Request,
    project_id: int,
    envelope: Envelope,
    data: bytes,
    size: int,
    rec: EnvelopeRecord,
    apply_limits: bool = True,
) -> Response:
    state = _state(request)
    items: list[StoredItem] = []
    dropped: list[tuple[str, str, str]] = []
    limits = state.rate_limits
    for item in envelope.items:
        item_type = item.type or "unknown"
        limit = limits.limited(item.data_category) if apply_limits else None
        if limit is not None:
            dropped.append((item_type, "rate_limited", limit.header_value()))
            continue
        items.append(
            StoredItem(item_type, item.headers, item.payload.bytes or b"", item.payload.json)
        )
    # Only a body small enough for the live stream is kept past this point.
    arrival = state.broadcaster.arrival(
        request.url.path,
        200,
        [item.type or "unknown" for item in envelope.items],
        _summary(envelope),
        data,
    )
    del data
    try:
        result: SaveResult = await run_in_threadpool(
            _save,
            state,
            project_id,
            items,
            envelope.headers,
            dropped,
            request.client.host if request.client else None,
            rec,
        )
    except StoreFull as exc:
        return await _refuse(request, IngestError(507, str(exc)), size, project_id)
    arrival.envelope_id = result.envelope_id
    state.broadcaster.publish(arrival)
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
    invalid = [d for d in result.dropped if d[1] == "invalid"]
    if items and not result.stored and len(invalid) == len(items):
        # Nothing of it could be stored: say so with a status, not only in the body.
        reasons = "; ".join(f"{t}: {d[:200]}" for t, _r, d in invalid[:5])
        return JSONResponse(
            {
                "detail": f"no item could be stored: {reasons}",
                "dropped": [{"type": t, "reason": r, "detail": d[:200]} for t, r, d in invalid],
            },
            status_code=400,
            headers=headers,
        )
    event_id = result.event_ids[0] if result.event_ids else result.header_event_id
    body: dict[str, Any] = {"id": event_id} if event_id else {}
    if result.dropped:
        body["dropped"] = [
            {"type": t, "reason": r, "detail": d[:200]} for t, r, d in result.dropped
        ]
    if result.repaired:
        body["repaired"] = result.repaired[:20]
    return JSONResponse(body, headers=headers)


def _save(
    state: ServerState,
    project_id: int,
    items: list[StoredItem],
    headers: dict[str, Any],
    dropped: list[tuple[str, str, str]],
    client_address: Optional[str],
    rec: EnvelopeRecord,
) -> SaveResult:
    return state.store.save(project_id, items, headers, None, dropped, client_address, inspect=rec)


def _summary(envelope: Envelope) -> str:
    from tripwire.server.grouping import event_title

    for item in envelope.items:
        event = item.payload.json
        if isinstance(event, dict):
            if item.type == "transaction":
                return f"transaction {event.get('transaction')}"[:300]
            return event_title(event)[:300]
    return (", ".join(item.type or "unknown" for item in envelope.items) or "empty envelope")[:300]
