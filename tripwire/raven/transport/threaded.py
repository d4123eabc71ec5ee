"""raven's ``ThreadedHTTPTransport`` (`raven.transport.threaded`).

Passed as ``transport=`` it selects tripwire's own HTTP transport, which sends from
a background thread as raven's did.
"""

from __future__ import annotations

import threading
from typing import Callable

from tripwire._threads import start_own
from tripwire.raven.transport.base import AsyncTransport
from tripwire.raven.transport.http import HTTPTransport


class ThreadedHTTPTransport(AsyncTransport, HTTPTransport):
    """`HTTPTransport` run on a short-lived thread per event."""

    scheme = ["http", "https", "threaded+http", "threaded+https"]

    def async_send(
        self,
        url: str,
        data: bytes,
        headers: dict[str, str],
        success_cb: Callable[[], None],
        error_cb: Callable[[BaseException], None],
    ) -> None:
        """Send on a daemon thread, then call the matching callback."""

        def run() -> None:
            try:
                self.send(url, data, headers)
            except Exception as exc:
                error_cb(exc)
            else:
                success_cb()

        start_own(threading.Thread(target=run, name="tripwire.raven.send", daemon=True))


__all__ = ["ThreadedHTTPTransport"]
