"""Spotlight: a copy of every envelope goes to the local Spotlight sidecar.

`spotlight=True` (or SENTRY_SPOTLIGHT=1) sends to http://localhost:8969/stream;
a URL string sends there. Envelopes are POSTed uncompressed with
``Content-Type: application/x-sentry-envelope`` from a background thread of
their own: a sidecar that is not running costs the application nothing, and its
failures are logged once and never counted as lost events.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Callable, Optional

from tripwire._log import logger
from tripwire.transport import Transport
from tripwire.transport._http11 import NetworkError
from tripwire.transport._http_client import HttpClient
from tripwire.transport._policy import Entry
from tripwire.transport._worker import Worker

if TYPE_CHECKING:
    from tripwire.envelope import Envelope
    from tripwire.outcomes import DropReason

DEFAULT_URL = "http://localhost:8969/stream"
DEFAULT_SPOTLIGHT_URL = DEFAULT_URL  # sentry_sdk.spotlight's name

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
        self._worker.kill()  # it closes the connection (see Worker.kill)


class _SpotlightDelivery:
    _HEADERS = {"Content-Type": "application/x-sentry-envelope"}

    lanes = 1  # one connection: a local sidecar answers fast

    def __init__(self, http: Any) -> None:
        self.http = http
        self._warned = False

    def encode(self, envelope: Envelope) -> Optional[Entry]:
        return Entry(envelope.serialize(), None, (), frozenset(), False, 0.0)

    def send(
        self, entry: Entry, meanwhile: Optional[Callable[[], None]] = None, lane: int = 0
    ) -> Optional[float]:

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

    def can_park(self) -> bool:
        return False

    def idle(self) -> Optional[float]:
        return None

    def report(self) -> None:
        pass

    def wants_flush(self) -> bool:
        return False

    def after_fork(self) -> None:
        self.http.forget()

    def close(self) -> None:
        self.http.close()


def resolve_url(value: Any, env: Optional[str]) -> Optional[str]:
    """The sidecar URL from the option and SENTRY_SPOTLIGHT, with sentry_sdk 2.x's precedence.

    False turns Spotlight off whatever the environment says; a URL option wins over
    the environment; True uses a URL from the environment if it holds one, else the
    default; no option at all leaves the choice to the environment.
    """
    if value is False:
        return None
    if value is True:
        from_env = spotlight_url(env) if env else None
        return from_env or DEFAULT_URL
    if value is None:
        return spotlight_url(env) if env else None
    return spotlight_url(value)


def setup_spotlight(options: Mapping[str, Any]) -> Optional[SpotlightClient]:
    """The Spotlight client the options ask for, or None."""

    url = resolve_url(options.get("spotlight"), os.environ.get("SENTRY_SPOTLIGHT"))
    if url is None:
        return None
    return SpotlightClient(url, options)


def sample_all(*args: Any, **kwargs: Any) -> float:
    """The sampler Spotlight without a DSN uses: everything is kept (as sentry_sdk 2.x)."""
    return 1.0


class SpotlightTee(Transport):
    """The client's transport while Spotlight is on: every envelope also goes to the sidecar.

    Whatever sends (events, transactions, sessions, check-ins, logs, client reports)
    goes through `client.transport`, so the sidecar gets a copy of all of it. `inner`
    is the real transport, None without a DSN; other attributes are read from it.
    """

    def __init__(self, inner: Any, spotlight: SpotlightClient) -> None:
        super().__init__()
        self.inner = inner
        self.spotlight = spotlight
        self.parsed_dsn = getattr(inner, "parsed_dsn", None)

    def capture_envelope(self, envelope: Envelope) -> None:
        """Send to the real transport (if any), and a copy to the sidecar."""
        inner = self.inner
        try:
            if inner is not None:
                inner.capture_envelope(envelope)
        finally:
            self.spotlight.capture_envelope(envelope)

    def flush(
        self, timeout: float, callback: Optional[Callable[[int, float], None]] = None
    ) -> None:
        """Flush the real transport (the client flushes the sidecar's queue itself)."""
        if self.inner is not None:
            self.inner.flush(timeout, callback)

    def kill(self) -> None:
        """Stop the real transport."""
        if self.inner is not None:
            self.inner.kill()

    def is_healthy(self) -> bool:
        """The real transport's health (a sidecar copy is never a reason to back off)."""
        inner = self.inner
        return bool(inner.is_healthy()) if inner is not None else True

    def record_lost_event(
        self,
        reason: str,
        data_category: Any = None,
        item: Any = None,
        *,
        quantity: int = 1,
    ) -> None:
        """Losses are the real transport's to count."""
        inner = self.inner
        if inner is not None:
            inner.record_lost_event(reason, data_category, item, quantity=quantity)
        else:
            super().record_lost_event(reason, data_category, item, quantity=quantity)

    def __setattr__(self, name: str, value: Any) -> None:
        # The client hands its Outcomes to the transport: the real one counts with them.
        if name == "_outcomes" and getattr(self, "inner", None) is not None:
            with contextlib.suppress(AttributeError):
                self.inner._outcomes = value
        object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        inner = self.__dict__.get("inner")
        if inner is None:
            raise AttributeError(name)
        return getattr(inner, name)
