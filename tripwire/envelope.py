"""Sentry envelopes: `Envelope`, `Item` and `PayloadRef`, as in sentry_sdk.envelope.

An envelope is pure data. Building one does no I/O and no encoding: JSON payloads
are kept as the objects they are and encoded by `Envelope.serialize`, which the
transport calls on its worker thread.

Wire format (https://develop.sentry.dev/sdk/envelopes/)::

    {envelope headers as JSON}\\n
    {item headers as JSON, with "length"}\\n
    payload bytes\\n
    ...

An item header without ``length`` means the payload runs to the next newline.
"""

from __future__ import annotations

import builtins
from collections.abc import Iterator
from typing import Any, BinaryIO, Callable, Optional

from tripwire._json import dumps, loads, loads_exact
from tripwire._log import logger
from tripwire.outcomes import ITEM_CATEGORIES, item_category

# Item type -> data category: the one table lives in `outcomes` (the server reads it too).
_DATA_CATEGORIES = ITEM_CATEGORIES

# Item types whose payload `deserialize` parses eagerly (as sentry_sdk does).
_JSON_ITEM_TYPES = frozenset({"event", "transaction"})

_JSON = "application/json"
_OCTET_STREAM = "application/octet-stream"


class PayloadRef:
    """An item payload: raw bytes, a file path read on demand, or a JSON-able object.

    JSON is encoded, and a file read, only when the bytes are asked for, and the
    result is kept: later calls return the same bytes.
    """

    __slots__ = ("_loader", "bytes", "json", "path")

    def __init__(
        self,
        bytes: Optional[builtins.bytes] = None,
        path: Optional[builtins.bytes | str] = None,
        json: Optional[Any] = None,
    ) -> None:
        self.bytes = bytes
        self.path = path
        self.json = json
        # A callable producing the bytes (lazy attachments); called once, by get_bytes.
        self._loader: Optional[Callable[[], Any]] = None

    def get_bytes(self) -> builtins.bytes:
        """The payload bytes (reading the file or encoding the JSON the first time).

        Raises:
            OSError: the file at `path` cannot be read.
            Exception: whatever the lazy bytes callable of an attachment raised.
        """
        data = self.bytes
        if data is None:
            if self._loader is not None:
                data = _as_bytes(self._loader())
            elif self.path is not None:
                with open(self.path, "rb") as f:
                    data = f.read()
            elif self.json is not None:
                data = dumps(self.json)
            else:
                return b""
            self.bytes = data
        return data

    @property
    def inferred_content_type(self) -> str:
        """``application/json`` for a JSON payload, else ``application/octet-stream``."""
        return _JSON if self.json is not None else _OCTET_STREAM

    def __repr__(self) -> str:
        return f"<Payload {self.inferred_content_type!r}>"


class Item:
    """One envelope item: headers (``type``, ``content_type``, ...) and a payload."""

    __slots__ = ("headers", "payload")

    def __init__(
        self,
        payload: builtins.bytes | str | PayloadRef,
        headers: Optional[dict[str, Any]] = None,
        type: Optional[str] = None,
        content_type: Optional[str] = None,
        filename: Optional[str] = None,
    ) -> None:
        if isinstance(payload, PayloadRef):
            ref = payload
        elif isinstance(payload, str):
            ref = PayloadRef(bytes=payload.encode("utf-8"))
        elif isinstance(payload, (builtins.bytes, bytearray, memoryview)):
            ref = PayloadRef(bytes=builtins.bytes(payload))
        else:
            # (`type` is a parameter here, hence builtins.type.)
            raise TypeError(
                "envelope item payload must be bytes, str or PayloadRef, "
                f"not {builtins.type(payload).__name__}"
            )
        self.headers: dict[str, Any] = dict(headers) if headers is not None else {}
        if filename is not None:
            self.headers["filename"] = filename
        if type is not None:
            self.headers["type"] = type
        if content_type is not None:
            self.headers["content_type"] = content_type
        elif "content_type" not in self.headers:
            self.headers["content_type"] = ref.inferred_content_type
        self.payload = ref

    @property
    def type(self) -> Optional[str]:
        """The item type header (``event``, ``attachment``, ...), if any."""
        value = self.headers.get("type")
        return value if isinstance(value, str) else None

    @property
    def data_category(self) -> str:
        """The rate-limit and client-report category of this item (``default`` if unknown)."""
        return item_category(self.type)

    def get_bytes(self) -> builtins.bytes:
        """The payload bytes (see `PayloadRef.get_bytes`)."""
        return self.payload.get_bytes()

    def get_event(self) -> Optional[dict[str, Any]]:
        """The event of an ``event`` item, else None."""
        if self.headers.get("type") == "event":
            return self._json_payload()
        return None

    def get_transaction_event(self) -> Optional[dict[str, Any]]:
        """The event of a ``transaction`` item, else None."""
        if self.headers.get("type") == "transaction":
            return self._json_payload()
        return None

    def _json_payload(self) -> Optional[dict[str, Any]]:
        ref = self.payload
        if ref.json is None and ref.bytes is not None:
            try:
                ref.json = loads(ref.bytes)
            except (ValueError, RecursionError):
                return None
        return ref.json if isinstance(ref.json, dict) else None

    def _encode(self, payload: builtins.bytes) -> builtins.bytes:
        headers = dict(self.headers)
        headers["length"] = len(payload)
        return b"".join((dumps(headers), b"\n", payload, b"\n"))

    def serialize_into(self, f: BinaryIO) -> None:
        """Write this item (header line, payload, newline) to the binary stream `f`."""
        f.write(self._encode(self.get_bytes()))

    def serialize(self) -> builtins.bytes:
        """This item in wire format."""
        return self._encode(self.get_bytes())

    @classmethod
    def deserialize_from(cls, f: BinaryIO) -> Optional[Item]:
        """Read one item from the binary stream `f`; None at the end of the stream.

        Raises:
            ValueError: the stream does not hold a well-formed item.
        """
        line = f.readline()
        while line and not line.strip():
            line = f.readline()
        if not line:
            return None
        headers = _parse_headers(line, "item header")
        length = _payload_length(headers)
        if length is None:
            payload = f.readline()
            if payload.endswith(b"\n"):
                payload = payload[:-1]
        else:
            payload = f.read(length)
            if len(payload) < length:
                raise ValueError(
                    f"envelope item is truncated: its header says {length} bytes, "
                    f"only {len(payload)} follow"
                )
            after = f.read(1)
            if after not in (b"", b"\n"):
                raise ValueError(f"expected a newline after an item payload, got {after!r}")
        return _make_item(headers, payload)

    @classmethod
    def deserialize(cls, bytes: builtins.bytes) -> Optional[Item]:
        """Parse one item from `bytes`; None if it holds none.

        Raises:
            ValueError: `bytes` does not start with a well-formed item.
        """
        data = _as_input(bytes)
        pos, end = 0, len(data)
        while pos < end:
            item, pos = _parse_item(data, pos)
            if item is not None:
                return item
        return None

    def __repr__(self) -> str:
        return (
            f"<Item headers={self.headers!r} payload={self.payload!r} "
            f"data_category={self.data_category!r}>"
        )


class Envelope:
    """Envelope headers and a list of items, as sentry_sdk.envelope.Envelope."""

    __slots__ = ("headers", "items")

    def __init__(
        self,
        headers: Optional[dict[str, Any]] = None,
        items: Optional[list[Item]] = None,
    ) -> None:
        self.headers: dict[str, Any] = dict(headers) if headers is not None else {}
        self.items: list[Item] = list(items) if items is not None else []

    @property
    def description(self) -> str:
        """A one-line summary: item count and categories."""
        categories = ", ".join(item.data_category for item in self.items)
        return f"envelope with {len(self.items)} items ({categories})"

    def add_event(self, event: dict[str, Any]) -> None:
        """Add an error event (encoded later, by `serialize`)."""
        self.add_item(Item(payload=PayloadRef(json=event), type="event"))

    def add_transaction(self, transaction: dict[str, Any]) -> None:
        """Add a transaction event."""
        self.add_item(Item(payload=PayloadRef(json=transaction), type="transaction"))

    def add_profile(self, profile: Any) -> None:
        """Add a transaction-bound profile."""
        self.add_item(Item(payload=PayloadRef(json=profile), type="profile"))

    def add_profile_chunk(self, profile_chunk: Any) -> None:
        """Add a continuous-profiling chunk (its ``platform`` is copied to the header)."""
        platform = "python"
        if isinstance(profile_chunk, dict):
            platform = profile_chunk.get("platform", "python")
        self.add_item(
            Item(
                payload=PayloadRef(json=profile_chunk),
                type="profile_chunk",
                headers={"platform": platform},
            )
        )

    def add_checkin(self, checkin: Any) -> None:
        """Add a cron monitor check-in."""
        self.add_item(Item(payload=PayloadRef(json=checkin), type="check_in"))

    def add_session(self, session: Any) -> None:
        """Add a session update: a `Session` (snapshotted now with ``to_json()``) or a dict."""
        to_json = getattr(session, "to_json", None)
        if callable(to_json):
            # Sessions keep changing after this call: take the state as of now.
            session = to_json()
        self.add_item(Item(payload=PayloadRef(json=session), type="session"))

    def add_sessions(self, sessions: Any) -> None:
        """Add session aggregates."""
        self.add_item(Item(payload=PayloadRef(json=sessions), type="sessions"))

    def add_item(self, item: Item) -> None:
        """Append `item`."""
        self.items.append(item)

    def get_event(self) -> Optional[dict[str, Any]]:
        """The first error event in the envelope, if any."""
        for item in self.items:
            event = item.get_event()
            if event is not None:
                return event
        return None

    def get_transaction_event(self) -> Optional[dict[str, Any]]:
        """The first transaction in the envelope, if any."""
        for item in self.items:
            event = item.get_transaction_event()
            if event is not None:
                return event
        return None

    def __iter__(self) -> Iterator[Item]:
        return iter(self.items)

    def serialize_into(self, f: BinaryIO) -> None:
        """Write the envelope in wire format to the binary stream `f`."""
        f.write(self.serialize())

    def serialize(self) -> builtins.bytes:
        """The envelope in wire format, encoding JSON payloads now.

        An item whose payload cannot be produced (an attachment file that is gone,
        a bytes callable that raised) is left out, and the reason logged at debug
        level: the rest of the envelope still goes out.
        """
        parts = [dumps(self.headers), b"\n"]
        for item in self.items:
            try:
                payload = item.get_bytes()
            except Exception:
                logger.debug(
                    "envelope item %r left out: its payload could not be read",
                    item.headers.get("filename") or item.headers.get("type"),
                    exc_info=True,
                )
                continue
            parts.append(item._encode(payload))
        return b"".join(parts)

    @classmethod
    def deserialize_from(cls, f: BinaryIO) -> Envelope:
        """Read an envelope from the binary stream `f` (to its end).

        Raises:
            ValueError: the data is not a well-formed envelope.
        """
        return cls.deserialize(f.read())

    @classmethod
    def deserialize(cls, bytes: builtins.bytes) -> Envelope:
        """Parse an envelope from its wire format.

        Items with and without ``length`` are accepted, so are blank lines between
        items and a missing final newline. Payloads are kept byte for byte, so
        serializing the result again reproduces what `serialize` wrote.

        Raises:
            ValueError: the data is not a well-formed envelope (empty, bad JSON,
                a header that is not an object, a bad or too large ``length``,
                no newline after a payload).
        """
        data = _as_input(bytes)
        end = len(data)
        if not data.strip():
            raise ValueError("not an envelope: the data is empty")
        newline = data.find(b"\n")
        header_end = end if newline < 0 else newline
        headers = _parse_headers(data[:header_end], "envelope header")
        items: list[Item] = []
        pos = header_end + 1
        while pos < end:
            item, pos = _parse_item(data, pos)
            if item is not None:
                items.append(item)
        return cls(headers=headers, items=items)

    def __repr__(self) -> str:
        return f"<Envelope headers={self.headers!r} items={self.items!r}>"


def parse_json(data: builtins.bytes | str) -> Any:
    """Decode JSON from bytes or str (sentry_sdk.envelope's helper for payloads)."""
    return loads(data)


def _as_bytes(value: Any) -> builtins.bytes:
    if isinstance(value, builtins.bytes):
        return value
    if isinstance(value, (bytearray, memoryview)):
        return builtins.bytes(value)
    if isinstance(value, str):
        return value.encode("utf-8")
    raise TypeError(f"attachment bytes must be bytes or str, not {type(value).__name__}")


def _as_input(data: Any) -> builtins.bytes:
    if isinstance(data, str):
        return data.encode("utf-8")
    if isinstance(data, (builtins.bytes, bytearray, memoryview)):
        return builtins.bytes(data)
    raise TypeError(f"an envelope is parsed from bytes, not {type(data).__name__}")


def _parse_headers(line: builtins.bytes, what: str) -> dict[str, Any]:
    try:
        # Headers are re-encoded on serialize: parse them exactly (see loads_exact).
        headers = loads_exact(line)
    except (ValueError, RecursionError) as exc:
        raise ValueError(f"invalid {what}: not JSON ({exc}): {line[:80]!r}") from None
    if not isinstance(headers, dict):
        raise ValueError(f"invalid {what}: expected a JSON object, got {line[:80]!r}")
    return headers


def _payload_length(headers: dict[str, Any]) -> Optional[int]:
    length = headers.get("length")
    if length is None:
        return None
    if type(length) is not int or length < 0:
        raise ValueError(f"invalid item length {length!r}: expected an integer >= 0")
    return length


def _parse_item(data: builtins.bytes, pos: int) -> tuple[Optional[Item], int]:
    """Parse the item starting at `pos`; return it (None for a blank line) and the next offset."""
    end = len(data)
    newline = data.find(b"\n", pos)
    line_end = end if newline < 0 else newline
    line = data[pos:line_end]
    if not line.strip():
        return None, line_end + 1
    headers = _parse_headers(line, "item header")
    pos = line_end + 1
    length = _payload_length(headers)
    if length is None:
        newline = data.find(b"\n", pos)
        payload_end = end if newline < 0 else newline
        payload = data[pos:payload_end]
        return _make_item(headers, payload), payload_end + 1
    payload_end = pos + length
    if payload_end > end:
        raise ValueError(
            f"envelope item is truncated: its header says {length} bytes, "
            f"only {max(end - pos, 0)} follow"
        )
    if payload_end < end and data[payload_end] != 0x0A:
        raise ValueError(
            f"expected a newline after an item payload at offset {payload_end}, "
            f"got {data[payload_end : payload_end + 1]!r}"
        )
    return _make_item(headers, data[pos:payload_end]), payload_end + 1


def _make_item(headers: dict[str, Any], payload: builtins.bytes) -> Item:
    parsed = None
    item_type = headers.get("type")
    if item_type in _JSON_ITEM_TYPES:
        try:
            parsed = loads(payload)
        except (ValueError, RecursionError) as exc:
            raise ValueError(f"invalid {item_type} item: payload is not JSON ({exc})") from None
    return Item(payload=PayloadRef(bytes=payload, json=parsed), headers=headers)
