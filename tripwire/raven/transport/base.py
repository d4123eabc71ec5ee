"""raven 6.x transport base classes (`raven.transport.base`).

A raven transport is a class with ``send(url, data, headers)`` (or, for
`AsyncTransport`, ``async_send(url, data, headers, success_cb, error_cb)``). Passed
as ``Client(transport=MyTransport)``, it is instantiated with the DSN's query
options and receives each event as envelope bytes for the DSN's envelope endpoint.
"""

from __future__ import annotations

from typing import Any, Callable


class Transport:
    """Sends one encoded event; subclasses implement `send`."""

    is_async = False
    scheme: list[str] = []

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def send(self, url: str, data: bytes, headers: dict[str, str]) -> None:
        """POST `data` to `url` with `headers`; raise on failure."""
        raise NotImplementedError


class AsyncTransport(Transport):
    """A transport that reports the outcome through callbacks."""

    is_async = True

    def async_send(
        self,
        url: str,
        data: bytes,
        headers: dict[str, str],
        success_cb: Callable[[], None],
        error_cb: Callable[[BaseException], None],
    ) -> None:
        """Send, then call `success_cb()` or `error_cb(exc)`."""
        raise NotImplementedError


__all__ = ["AsyncTransport", "Transport"]
