"""Spotlight: a copy of every envelope goes to the local Spotlight sidecar.

`spotlight=True` (or SENTRY_SPOTLIGHT=1) sends to http://localhost:8969/stream;
a URL string sends there. Envelopes are POSTed uncompressed with
``Content-Type: application/x-sentry-envelope`` from a background thread of
their own: a sidecar that is not running costs the application nothing, and its
failures are logged once and never counted as lost events.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Callable, Optional

from tripwire._log import logger

if TYPE_CHECKING:
    from tripwire.envelope import Envelope
    from tripwire.outcomes import DropReason
    from tripwire.transport._sender import Entry

DEFAULT_URL = "http://localhost:8969/stream"

_TRUE = frozenset({"1", "true", "t", "y", "yes", "on"})
_FALSE = frozenset({"0", "false", "f", "n", "no", "off", ""})


def spotlight_url(value: Any) -> Optional[str]:
    """The sidecar URL for a ``spotlight`` option value, or None if it is off."""
    if value is None or value is False:
        return None
    if value is True:
        return DEFAULT_URL
    if isinstance(value, str):
        text = value.strip()
        if text.lower() in _TRUE:
            return DEFAULT_URL
        if text.lower() in _FALSE:
            return None
        return text
    return None


class SpotlightClient:
    """Sends a copy of each envelope to the Spotlight sidecar.

    Args:
        url: The sidecar's stream endpoint.
        options: Client options (transport_queue_size is honoured).
    """

    def __init__(self, url: str, options: Optional[Mapping[str, Any]] = None) -> None:
        from tripwire.transport._http import HttpClient
        from tripwire.transport._worker import Worker

        self.url = url
        options = options or {}
        self._delivery = _SpotlightDelivery(HttpClient(url, {}, timeout=5.0, use_proxy=False))
        self._worker = Worker(
            self._delivery,
            queue_size=int(options.get("transport_queue_size") or 100),
            name="tripwire.spotlight",
        )

    def capture_envelope(self, envelope: Envelope) -> None:
        """Queue a copy of `envelope` for the sidecar."""
        self._worker.submit(envelope)

    def flush(
        self, timeout: float, callback: Optional[Callable[[int, float], None]] = None
    ) -> None:
        """Wait up to `timeout` seconds for queued copies to be sent."""
        self._worker.flush(timeout, callback)

    def kill(self) -> None:
        """Stop sending."""
        self._worker.kill()
        self._delivery.http.close()


class _SpotlightDelivery:
    _HEADERS = {"Content-Type": "application/x-sentry-envelope"}

    lanes = 1  # one connection: a local sidecar answers fast

    def __init__(self, http: Any) -> None:
        self.http = http
        self._warned = False

    def encode(self, envelope: Envelope) -> Optional[Entry]:
        from tripwire.transport._sender import Entry

        return Entry(envelope.serialize(), None, (), frozenset(), False, 0.0)

    def send(
        self, entry: Entry, meanwhile: Optional[Callable[[], None]] = None, lane: int = 0
    ) -> Optional[float]:
        from tripwire.transport._wire import NetworkError

        try:
            response = self.http.post(entry.plain(), self._HEADERS, meanwhile)
        except NetworkError as exc:
            if not self._warned:
                self._warned = True
                logger.warning("could not send to Spotlight at %s: %s", self.http.url, exc)
            return None
        if response.status >= 400:
            logger.debug("Spotlight answered %d", response.status)
        return None

    def prepare(self, entry: Entry) -> None:
        pass  # sent as it is

    def lost_envelope(self, envelope: Envelope, reason: DropReason) -> None:
        pass  # copies for a local tool: not the user's data loss

    def lost_entry(self, entry: Entry, reason: DropReason) -> None:
        pass

    def park(self, entry: Entry) -> bool:
        return False

    def idle(self) -> Optional[float]:
        return None

    def report(self) -> None:
        pass

    def wants_flush(self) -> bool:
        return False

    def after_fork(self) -> None:
        self.http.forget()


def setup_spotlight(options: Mapping[str, Any]) -> Optional[SpotlightClient]:
    """The Spotlight client the options ask for, or None."""
    url = spotlight_url(options.get("spotlight"))
    if url is None:
        return None
    return SpotlightClient(url, options)
