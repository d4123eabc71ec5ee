"""Event processors of raven 6.x (`raven.processors`).

A processor is built with the client (``Processor(client)``) and its
``process(event)`` returns the event to send. The base class calls
``filter_stacktrace`` for every stack trace (of exceptions, threads and the event),
``filter_http`` for ``request`` and ``filter_extra`` for ``extra``. Events reach
processors in the modern shape (``request``, not ``sentry.interfaces.Http``).

`SanitizePasswordsProcessor` (on by default) replaces the values of keys that contain
a sensitive word, and strings that look like card numbers, with ``"********"``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Optional

from tripwire.raven._event import stacktraces

if TYPE_CHECKING:
    from tripwire.raven.base import Client

MASK = "*" * 8


class Processor:
    """Base class: override the ``filter_*`` hooks or ``get_data``."""

    def __init__(self, client: Optional[Client]) -> None:
        self.client = client

    def get_data(self, data: dict[str, Any], **kwargs: Any) -> Optional[dict[str, Any]]:
        """Return a replacement event, or None to keep `data` (then filtered in place)."""
        return None

    def process(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
        """Run the hooks over `data` and return the event to send."""
        replaced = self.get_data(data, **kwargs)
        if replaced:
            data = replaced
        for stacktrace in stacktraces(data):
            self.filter_stacktrace(stacktrace)
        request = data.get("request")
        if isinstance(request, dict):
            self.filter_http(request)
        extra = data.get("extra")
        if isinstance(extra, dict):
            self.filter_extra(extra)
        return data

    def filter_stacktrace(self, data: dict[str, Any]) -> None:
        """Edit one stack trace (``{"frames": [...]}``) in place."""

    def filter_http(self, data: dict[str, Any]) -> None:
        """Edit the ``request`` data in place."""

    def filter_extra(self, data: dict[str, Any]) -> None:
        """Edit the ``extra`` data in place."""


class RemovePostDataProcessor(Processor):
    """Drops the request body (``request.data``)."""

    def filter_http(self, data: dict[str, Any], **kwargs: Any) -> None:
        """Remove ``data``."""
        data.pop("data", None)


class RemoveStackLocalsProcessor(Processor):
    """Drops the local variables of every frame."""

    def filter_stacktrace(self, data: dict[str, Any], **kwargs: Any) -> None:
        """Remove each frame's ``vars``."""
        for frame in data.get("frames") or ():
            if isinstance(frame, dict):
                frame.pop("vars", None)


class SanitizeKeysProcessor(Processor):
    """Masks the values of keys containing one of the client's ``sanitize_keys``.

    Keys match case-insensitively on a substring (``"token"`` masks ``"csrf_token"``).
    Dicts are masked whole under a matching key; list items inherit their list's key.
    """

    MASK = MASK

    @property
    def sanitize_keys(self) -> frozenset[str]:
        """The lower-cased key fragments to mask."""
        keys = getattr(self.client, "sanitize_keys", None) or ()
        return frozenset(str(k).lower() for k in keys)

    def sanitize(self, item: Any, value: Any) -> Any:
        """The value to send for `value` found under key `item`."""
        if value is None:
            return None
        if not item:
            return value
        key = item.lower() if isinstance(item, str) else str(item).lower()
        if any(fragment in key for fragment in self._fields()):
            return self.MASK
        return value

    def _fields(self) -> frozenset[str]:
        return self.sanitize_keys

    def _walk(self, key: Any, value: Any, depth: int = 0) -> Any:
        if depth > 20:
            return value
        if isinstance(value, (list, tuple)):
            return [self._walk(key, item, depth + 1) for item in value]
        if isinstance(value, dict):
            masked = self.sanitize(key, value)
            if masked is not value:
                return masked
            return {k: self._walk(k, v, depth + 1) for k, v in value.items()}
        return self.sanitize(key, value)

    def _sanitize_dict(self, data: dict[str, Any]) -> None:
        for key, value in list(data.items()):
            data[key] = self._walk(key, value)

    def _sanitize_keyvals(self, text: str, delimiter: str) -> str:
        pieces = []
        for piece in text.split(delimiter):
            name, eq, value = piece.partition("=")
            if eq and self.sanitize(name.strip(), value) == self.MASK:
                piece = f"{name}={self.MASK}"
            pieces.append(piece)
        return delimiter.join(pieces)

    def filter_stacktrace(self, data: dict[str, Any]) -> None:
        """Mask sensitive local variables of every frame."""
        for frame in data.get("frames") or ():
            if isinstance(frame, dict) and isinstance(frame.get("vars"), dict):
                self._sanitize_dict(frame["vars"])

    def filter_http(self, data: dict[str, Any]) -> None:
        """Mask sensitive request data, query string, cookies, headers and environment."""
        for name in ("data", "cookies", "headers", "env", "query_string"):
            value = data.get(name)
            if isinstance(value, str):
                if "=" in value:
                    data[name] = self._sanitize_keyvals(value, ";" if name == "cookies" else "&")
            elif isinstance(value, dict):
                if name == "headers":
                    for header, text in list(value.items()):
                        if str(header).lower() == "cookie" and isinstance(text, str):
                            value[header] = self._sanitize_keyvals(text, ";")
                self._sanitize_dict(value)

    def filter_extra(self, data: dict[str, Any]) -> None:
        """Mask sensitive extra values."""
        self._sanitize_dict(data)


class SanitizePasswordsProcessor(SanitizeKeysProcessor):
    """Masks passwords, secrets, tokens and API keys, and card-number-like strings."""

    KEYS = frozenset(
        (
            "password",
            "secret",
            "passwd",
            "api_key",
            "apikey",
            "sentry_dsn",
            "access_token",
            "authorization",
        )
    )
    VALUES_RE = re.compile(r"^(?:\d[ -]*?){13,16}$")

    @property
    def sanitize_keys(self) -> frozenset[str]:
        """The fixed `KEYS` (this processor ignores the client's ``sanitize_keys``)."""
        return self.KEYS

    @property
    def FIELDS(self) -> frozenset[str]:
        """Same as `sanitize_keys`."""
        return self.KEYS

    def _fields(self) -> frozenset[str]:
        return self.KEYS

    def sanitize(self, item: Any, value: Any) -> Any:
        """Mask card-number-like strings, then values under sensitive keys."""
        if value is None:
            return None
        if isinstance(value, str):
            # Frame variables arrive as reprs: look inside the quotes too.
            text = value[1:-1] if len(value) > 1 and value[0] == value[-1] == "'" else value
            if self.VALUES_RE.match(text):
                return self.MASK
        return super().sanitize(item, value)


__all__ = [
    "Processor",
    "RemovePostDataProcessor",
    "RemoveStackLocalsProcessor",
    "SanitizeKeysProcessor",
    "SanitizePasswordsProcessor",
]
