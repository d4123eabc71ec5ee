"""`Attachment`: a file sent along with events, as sentry_sdk.attachments.Attachment."""

from __future__ import annotations

import builtins
import os
from typing import Any, Callable, Optional, Union

from tripwire.envelope import Item, PayloadRef

AttachmentBytes = Union[builtins.bytes, Callable[[], builtins.bytes]]


class Attachment:
    """Bytes (or a callable returning them) or a file path, with a filename.

    Nothing is read when the attachment is made: a path is read, and a callable
    called, when the envelope carrying it is serialized. If that fails (the file
    is gone, the callable raises) the attachment is left out of that envelope and
    the reason logged at debug level; the event itself is still sent.

    Args:
        bytes: the content, or a callable returning it.
        filename: the name shown in Sentry; defaults to the basename of `path`.
        path: a file to read the content from (used when `bytes` is None).
        content_type: the MIME type; guessed from `filename` when not given.
        add_to_transactions: attach to transactions too, not only to errors.

    Raises:
        TypeError: neither `bytes` nor `path` is given, or no filename can be found.
    """

    __slots__ = ("add_to_transactions", "bytes", "content_type", "filename", "path")

    def __init__(
        self,
        bytes: Optional[AttachmentBytes] = None,
        filename: Optional[str] = None,
        path: Optional[str] = None,
        content_type: Optional[str] = None,
        add_to_transactions: bool = False,
    ) -> None:
        if bytes is None and path is None:
            raise TypeError("path or raw bytes required for attachment")
        if filename is None and path is not None:
            filename = os.path.basename(os.fsdecode(path))
        if filename is None:
            raise TypeError("filename is required for attachment")
        if content_type is None:
            content_type = _guess_type(filename)
        self.bytes = bytes
        self.filename = filename
        self.path = path
        self.content_type = content_type
        self.add_to_transactions = add_to_transactions

    def to_envelope_item(self) -> Item:
        """An ``attachment`` envelope item (``attachment_type: event.attachment``)."""
        data: Any = self.bytes
        if callable(data):
            ref = PayloadRef()
            ref._loader = data
        elif data is not None:
            if isinstance(data, str):
                data = data.encode("utf-8")
            elif isinstance(data, (bytearray, memoryview)):
                data = builtins.bytes(data)
            if isinstance(data, builtins.bytes):
                ref = PayloadRef(bytes=data)
            else:
                # Not content (an int would become that many zero bytes): left out
                # when the envelope is serialized, like a missing file.
                ref = PayloadRef()
                ref._loader = _not_content(data)
        else:
            ref = PayloadRef(path=self.path)
        item = Item(
            payload=ref,
            type="attachment",
            content_type=self.content_type,
            filename=self.filename,
        )
        item.headers["attachment_type"] = "event.attachment"
        return item

    def __repr__(self) -> str:
        return f"<Attachment {self.filename!r}>"


def _not_content(value: object) -> Callable[[], builtins.bytes]:
    def load() -> builtins.bytes:
        raise TypeError(f"attachment content must be bytes or str, not {type(value).__name__}")

    return load


def _guess_type(filename: str) -> Optional[str]:
    # mimetypes reads the system's type tables on first use: only when an
    # attachment is made, never at import.
    import mimetypes

    try:
        return mimetypes.guess_type(filename)[0]
    except Exception:
        return None
