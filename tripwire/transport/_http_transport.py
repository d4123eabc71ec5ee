"""`HttpTransport`: the default transport, sending envelopes to the DSN's server.

The pieces, each in its own module: `_worker` (bounded queue and thread),
`_policy` (encoding, rate limits, verdicts; no I/O), `_trim` (size limits),
`_http_client` (options -> connection settings; the only network code) over
`_http11` (the HTTP/1.1 client) or `_urllib3` (the urllib3 path), `_spool` (the
optional offline spool).
This module wires them together and owns the retry and offline decisions.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Callable, Optional

from tripwire._ids import random
from tripwire._log import logger
from tripwire.consts import USER_AGENT
from tripwire.outcomes import DropReason
from tripwire.transport import Transport
from tripwire.transport._http11 import NetworkError, Response
from tripwire.transport._http_client import HttpClient
from tripwire.transport._policy import (
    REPORT_INTERVAL,
    Sender,
    Verdict,
    compressor_for,
    item_losses,
)
from tripwire.transport._ratelimit import RateLimits
from tripwire.transport._spool import Spool, spool_key
from tripwire.transport._urllib3 import make_pool
from tripwire.transport._worker import DEFAULT_BACKLOG_BYTES, Worker

if TYPE_CHECKING:
    from tripwire.envelope import Envelope
    from tripwire.outcomes import Outcome
    from tripwire.transport._http_client import Backend
    from tripwire.transport._policy import Entry
    from tripwire.transport._spool import Spool

# Network errors: the first retry is immediate (a kept-alive connection the server
# closed is the usual cause), then exponential backoff with jitter.
MAX_ATTEMPTS = 3
BACKOFF_BASE = 1.0
BACKOFF_MAX = 60.0
# After the second connection fails, the seconds it is left unused.
SECOND_CONNECTION_REST = 60.0
# With a spool, how often an idle worker looks for files other processes left.
SPOOL_RESCAN = 60.0


def backoff(failures: int, rng: Callable[[], float] = random) -> float:
    """Seconds to wait after `failures` consecutive failures: exponential, with jitter."""
    ceiling = min(BACKOFF_MAX, BACKOFF_BASE * float(2 ** min(max(failures - 1, 0), 16)))
    return ceiling * (0.5 + 0.5 * rng())


class HttpTransport(Transport):
    """Sends envelopes to Sentry (or any compatible server) from a background thread.

    As sentry_sdk 2.x: built by `init()` when a DSN is set; `capture_envelope`
    only queues, `flush(timeout, callback)` waits, `kill()` stops. Honours the
    transport options (``transport_queue_size``, proxies, certificates,
    ``keep_alive``, ``socket_options``, compression in ``_experiments``) and the
    tripwire ``spool_*`` options. Up to two requests are out at once, on two
    kept-alive connections (``_experiments={"transport_connections": 1}``: one).
    """

    TIMEOUT = 30.0

    def __init__(self, options: dict[str, Any]) -> None:
        super().__init__(options)
        dsn = self.parsed_dsn
        if dsn is None:
            raise ValueError("HttpTransport needs a DSN")
        self.options: dict[str, Any] = options
        self._delivery = _HttpDelivery(self, options, _makes_own_pool(type(self)))
        self._delivery.warm_up()
        experiments = options.get("_experiments") or {}
        budget = experiments.get("transport_backlog_bytes", DEFAULT_BACKLOG_BYTES)
        self._worker = Worker(
            self._delivery,
            queue_size=options.get("transport_queue_size", 100),
            backlog_bytes=budget if isinstance(budget, int) else DEFAULT_BACKLOG_BYTES,
        )
        if self._delivery.spool is not None and self._delivery.spool.has_ready():
            # Envelopes an earlier process could not send: deliver them now.
            self._worker.start()

    # -- the Transport interface -----------------------------------------------------------

    def capture_envelope(self, envelope: Envelope) -> None:
        """Queue `envelope` for sending; never blocks on the network."""
        self._worker.submit(envelope)

    def flush(
        self, timeout: float, callback: Optional[Callable[[int, float], None]] = None
    ) -> None:
        """Wait up to `timeout` seconds for the queue to be sent; then send the client report."""
        self._worker.flush(timeout, callback)

    def kill(self) -> None:
        """Stop the worker. Unsent envelopes are spooled (if enabled) or counted as lost."""
        self._worker.kill()  # it closes the connections (the worker thread, if still busy)

    def is_healthy(self) -> bool:
        """False while rate-limited or while the queue is full (see `tripwire.monitor`)."""
        return not (self._delivery.ratelimits.any_active() or self._worker.full())

    def _http_backend(self) -> Optional[Callable[[HttpClient, Optional[str]], Backend]]:
        """What sends requests instead of the built-in HTTP/1.1 connection (None: that one)."""
        return None

    # -- urllib3 hooks (as in sentry_sdk) ------------------------------------------------

    def _get_pool_options(self) -> dict[str, Any]:
        """Keyword arguments for the urllib3 pool manager: timeouts, sockets, TLS.

        Like `_make_pool`, this is a hook for subclasses, as in sentry_sdk: when a
        subclass overrides either one, requests go through the urllib3 pool it makes
        (one connection). Otherwise the built-in HTTP/1.1 connection sends them.
        """
        return self._delivery.http.pool_options()

    def _make_pool(self) -> Any:
        """The urllib3 PoolManager, or ProxyManager for the configured proxy."""
        http = self._delivery.http
        return make_pool(http, http.proxy_url(), self._get_pool_options())

    def __repr__(self) -> str:
        return f"<HttpTransport {self.options.get('dsn')!r}>"


def _makes_own_pool(cls: type[HttpTransport]) -> bool:
    """True if `cls` overrides the urllib3 hooks (`_get_pool_options`, `_make_pool`)."""
    return (
        cls._get_pool_options is not HttpTransport._get_pool_options
        or cls._make_pool is not HttpTransport._make_pool
    )


class _HttpDelivery:
    """The worker's side of the transport: encode, send, retry, spool, count."""

    def __init__(
        self, transport: HttpTransport, options: dict[str, Any], own_pool: bool = False
    ) -> None:
        dsn = transport.parsed_dsn
        assert dsn is not None
        self._transport = transport
        self.ratelimits = RateLimits()
        self.sender = Sender(
            self.ratelimits,
            compressor_for(options),
            self._record,
            self._drain,
            send_client_reports=bool(options.get("send_client_reports", True)),
        )
        # Two connections: while one request is out, the next may go on the other
        # (see Worker._meanwhile). The second connects on first use.
        # `_experiments={"transport_connections": 1}` keeps to one, and so does
        # urllib3, which cannot split a request in two.
        # `TIMEOUT` is read from the transport, so a subclass may change it (as
        # sentry_sdk's HttpTransport.TIMEOUT): each request's whole budget, seconds.
        url, timeout = dsn.envelope_url, float(transport.TIMEOUT)
        backend = transport._http_backend()
        self.http = HttpClient(
            url,
            options,
            timeout,
            pool=transport._make_pool if own_pool else None,
            backend=backend,
        )
        experiments = options.get("_experiments") or {}
        one = (
            own_pool
            or backend is not None
            or experiments.get("transport_connections") == 1
            or experiments.get("http_client") == "urllib3"
        )
        # The connections, by lane.
        self._lanes = (self.http,) if one else (self.http, HttpClient(url, options, timeout))
        self._second_off_until = 0.0
        self._base_headers = {
            "User-Agent": USER_AGENT,
            "Content-Type": "application/x-sentry-envelope",
            "X-Sentry-Auth": dsn.auth_header(),
        }
        self._headers: dict[Optional[str], dict[str, str]] = {}
        self._failures = 0
        # What the last failed request said about the server (see NetworkError).
        self._unreachable = False
        self._hopeless = False
        self._timed_out = False
        self._offline_until = 0.0
        self._next_report = time.monotonic() + REPORT_INTERVAL
        self._next_scan = 0.0
        self.spool: Optional[Spool] = None
        if options.get("spool_dir"):
            self.spool = Spool(
                str(options["spool_dir"]),
                spool_key(dsn),
                int(options.get("spool_max_bytes") or 50 * 1024 * 1024),
                float(options.get("spool_max_age") or 24 * 3600.0),
                self.lost_entry,
            )

    def warm_up(self) -> None:
        """Read the proxy settings and import what requests need (see HttpClient.warm_up)."""
        for http in self._lanes:
            http.warm_up()

    @property
    def lanes(self) -> int:
        """Connections in use: the second rests a while after it failed."""
        if self._second_off_until and time.monotonic() < self._second_off_until:
            return 1
        return len(self._lanes)

    # -- counting ------------------------------------------------------------------------

    def _record(self, reason: DropReason, category: str, quantity: int) -> None:
        self._transport.record_lost_event(reason, category, quantity=quantity)

    def _drain(self) -> list[Outcome]:
        return self._transport._outcomes.drain()

    def lost_envelope(self, envelope: Envelope, reason: DropReason) -> None:
        for item in envelope.items:
            self.sender.count(item_losses(item), reason)

    def lost_entry(self, entry: Entry, reason: DropReason) -> None:
        self.sender.lost(entry, reason)

    # -- worker callbacks ----------------------------------------------------------------

    def encode(self, envelope: Envelope) -> Optional[Entry]:
        return self.sender.encode(envelope)

    def send(
        self, entry: Entry, meanwhile: Optional[Callable[[], None]] = None, lane: int = 0
    ) -> Optional[float]:
        checked = self.sendable(entry)
        if checked is None:
            return None
        verdict, reason = self._post(checked, meanwhile, self._lanes[lane])
        if lane and reason is DropReason.NETWORK_ERROR and verdict is Verdict.RETRY:
            # A server or proxy that takes one connection at a time would stall every
            # second request until the timeout: back to one connection for a while.
            self._second_off_until = time.monotonic() + SECOND_CONNECTION_REST
        return self.settle(checked, verdict, reason)

    def sendable(self, entry: Entry) -> Optional[Entry]:
        """`entry` as it may go out now (see `Sender.recheck`); None if not to the network.

        Offline (a spool and a recent failure), it goes straight to disk instead: a
        probe later decides when to go back online.
        """
        if self.spool is not None and time.monotonic() < self._offline_until:
            if not self.park(entry):
                self.lost_entry(entry, DropReason.NETWORK_ERROR)
            return None
        return self.sender.recheck(entry)

    def settle(self, entry: Entry, verdict: Verdict, reason: DropReason) -> Optional[float]:
        """After one attempt: None when done with `entry`, else seconds until a retry."""
        if verdict is Verdict.RETRY:
            return self._transient(entry, reason)
        return None

    def prepare(self, entry: Entry) -> None:
        entry.body(self.sender.compressor)

    def _post(
        self,
        entry: Entry,
        meanwhile: Optional[Callable[[], None]] = None,
        http: Optional[HttpClient] = None,
    ) -> tuple[Verdict, DropReason]:
        """One request; for a RETRY verdict, the reason to count if it is given up."""
        try:
            body, headers = self.request(entry)
            response = (http or self.http).post(body, headers, meanwhile)
        except NetworkError as exc:
            return self.failed(exc)
        return self.answered(entry, response)

    def request(self, entry: Entry) -> tuple[bytes, dict[str, str]]:
        """The body and headers of `entry`'s POST."""
        body, encoding = entry.body(self.sender.compressor)
        return body, self._headers_for(encoding)

    def failed(self, exc: NetworkError) -> tuple[Verdict, DropReason]:
        """No answer (`exc`): what it means, and what the server's state now is."""
        logger.warning("could not reach the server: %s", exc)
        self._failures += 1
        self._unreachable = exc.unreachable
        self._hopeless = exc.hopeless
        self._timed_out = exc.timed_out
        return Verdict.RETRY, DropReason.NETWORK_ERROR

    def answered(self, entry: Entry, response: Response) -> tuple[Verdict, DropReason]:
        """The server's answer to `entry`'s POST: the verdict (rate limits updated)."""
        self._unreachable = self._hopeless = self._timed_out = False
        verdict = self.sender.judge(entry, response.status, response.headers)
        if verdict is Verdict.RETRY:
            self._failures += 1
        else:
            self._failures = 0
            self._offline_until = 0.0
        return verdict, DropReason.SEND_ERROR

    def _transient(self, entry: Entry, reason: DropReason) -> Optional[float]:
        """A network error or 5xx: retry now, later, spool, or count the loss."""
        entry.attempts += 1
        if self._hopeless:
            # The certificate was rejected: no retry can succeed.
            if not self.park(entry):
                self.lost_entry(entry, reason)
            return None
        if reason is DropReason.NETWORK_ERROR and entry.attempts == 1 and not self._timed_out:
            # A kept-alive connection the server had closed: retry at once. Not after a
            # timeout: a server that does not answer would cost a second timeout.
            return 0.0
        delay = backoff(self._failures)
        if self.spool is not None:
            self._offline_until = time.monotonic() + delay
            if not self.park(entry):
                self.lost_entry(entry, reason)
            return None
        if reason is DropReason.SEND_ERROR or entry.attempts >= MAX_ATTEMPTS:
            # Without a spool a 5xx is final (as the SDK spec says); network errors
            # get MAX_ATTEMPTS tries.
            self.lost_entry(entry, reason)
            return None
        return delay

    def can_park(self) -> bool:
        return self.spool is not None

    def park(self, entry: Entry) -> bool:
        spool = self.spool
        if spool is None or not entry.summary:
            return False
        body, encoding = entry.body(self.sender.compressor)
        return spool.put(entry, body, encoding)

    def idle(self) -> Optional[float]:
        now = time.monotonic()
        waits: list[float] = []
        sender = self.sender
        if sender.send_client_reports:
            # Losses with no envelope to ride along with still get reported.
            if now >= self._next_report:
                self._next_report = now + sender.report_interval
                self.report()
            waits.append(self._next_report - now)
        spool = self.spool
        if spool is not None:
            if now < self._offline_until:
                waits.append(self._offline_until - now)
            else:
                if now >= self._next_scan:
                    self._next_scan = now + SPOOL_RESCAN
                    spool.recover()
                claimed = spool.claim()
                if claimed is not None:
                    self._resend(*claimed)
                    return 0.0
                waits.append(self._next_scan - now)
        return min(waits) if waits else None

    def _resend(self, path: str, entry: Entry) -> None:
        spool = self.spool
        assert spool is not None
        checked = self.sender.recheck(entry)
        if checked is None:
            spool.done(path)
            return
        verdict, _ = self._post(checked)
        if verdict is Verdict.RETRY:
            self._offline_until = time.monotonic() + backoff(self._failures)
            spool.release(path, entry)
        else:
            spool.done(path)

    def report(self) -> None:
        entry = self.sender.report_entry()
        if entry is None:
            return
        if self.spool is not None and time.monotonic() < self._offline_until:
            return  # offline: the counts are not worth a disk write
        verdict, _ = self._post(entry)
        if verdict is Verdict.RETRY:
            logger.debug("client report not delivered")

    def unreachable(self) -> bool:
        """True after a request was refused, reset or failed TLS, until one gets an answer."""
        return self._unreachable

    def wants_flush(self) -> bool:
        # Any loss not yet reported? (Peeked without draining; True if unsure.)
        outcomes = self._transport._outcomes
        return self.sender.send_client_reports and outcomes.pending()

    def _headers_for(self, encoding: Optional[str]) -> dict[str, str]:
        headers = self._headers.get(encoding)
        if headers is None:
            headers = dict(self._base_headers)
            if encoding:
                headers["Content-Encoding"] = encoding
            self._headers[encoding] = headers
        return headers

    def after_fork(self) -> None:
        for http in self._lanes:
            http.forget()
        self.ratelimits.reset_after_fork()
        self._transport._outcomes.reset_after_fork()
        if self.spool is not None:
            self.spool.reset_after_fork()
        self._failures = 0
        self._offline_until = 0.0

    def close(self) -> None:
        for http in self._lanes:
            http.close()


__all__ = ["HttpTransport"]
