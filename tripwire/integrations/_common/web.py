"""What every web-framework integration does around one incoming request.

`ServerRequest` is the per-request lifecycle shared by the WSGI and ASGI middlewares
(and through them Flask, Django, Starlette, FastAPI...):

- a fork of the isolation and current scopes for the request, breadcrumbs cleared,
  so nothing set while serving it reaches another request's events;
- the request's event processor (the integration's: it builds the `request` part
  lazily, only for events actually sent);
- a request-mode session (aggregated per minute) when session tracking is on;
- the incoming trace continued (`sentry-trace`/`traceparent` and `baggage`), and,
  when tracing is enabled and the method is one to capture, an `http.server`
  transaction whose status comes from the response.

With tracing disabled no transaction object is made: the scope still carries the
transaction name and source for error events, and the continued trace for their
trace context and outgoing propagation.

Under span streaming the transaction is a streamed segment: the integration's
`attributes` go onto it, `set_route` puts the matched route (``http.route``) on the
segment of the request being served, and `scope_attributes` (``sentry.is_localhost``,
the user agent...) reach the request's logs, metrics and spans in both modes.

The helpers below it turn request parts into the event's `request` as sentry_sdk
does, under `send_default_pii`, `max_request_body_size` and `data_collection`.
"""

from __future__ import annotations

from collections.abc import Container, Iterable, Mapping
from contextvars import ContextVar, Token
from typing import Any, Callable, Optional

from tripwire import _data_collection
from tripwire._clock import clock
from tripwire.options import span_streaming_enabled
from tripwire.scope._current import (
    _current_scope,
    _isolation_scope,
    get_current_scope,
    get_isolation_scope,
)
from tripwire.session import Session
from tripwire.sessions import _tracking_enabled
from tripwire.tracing._api import continue_trace, sdk_start_transaction
from tripwire.tracing._propagation import PropagationContext
from tripwire.tracing._sampling import has_tracing_enabled
from tripwire.tracing._streamed import NoOpStreamedSpan, StreamedSpan
from tripwire.utils import AnnotatedValue

# The methods whose requests get a transaction (sentry_sdk's default: no OPTIONS/HEAD).
DEFAULT_HTTP_METHODS_TO_CAPTURE = ("CONNECT", "DELETE", "GET", "PATCH", "POST", "PUT", "TRACE")


class _EveryMethod:
    __slots__ = ()

    def __contains__(self, method: object) -> bool:
        return True


# `methods_to_capture` for frameworks whose sentry_sdk integration has no method filter
# (aiohttp, Sanic, Tornado) and for ASGI connections other than HTTP (websockets).
EVERY_METHOD: Container[str] = _EveryMethod()


def incoming_trace_headers(headers: Any) -> dict[str, Any]:
    """The incoming trace headers of a case-insensitive header mapping, and only those
    (a lookup each, not a copy of every header); {} for a new trace (third-party
    baggage alone is not continued)."""
    out: dict[str, Any] = {}
    if "sentry-trace" not in headers and "traceparent" not in headers:
        return out
    for name in ("sentry-trace", "traceparent", "baggage"):
        value = headers.get(name)
        if value is not None:
            out[name] = value
    return out


# Status codes of responses reported as errors by frameworks that turn exceptions
# into responses (sentry_sdk's default for `failed_request_status_codes`).
DEFAULT_FAILED_REQUEST_STATUS_CODES = frozenset(range(500, 600))

EventProcessor = Callable[[dict[str, Any], dict[str, Any]], Optional[dict[str, Any]]]

# Hosts and addresses a request counts as local for (`sentry.is_localhost`, as Relay's
# localhost filter decides).
_LOCAL_ADDRESSES = frozenset({"127.0.0.1", "::1"})
_LOCAL_HOSTS = _LOCAL_ADDRESSES | {"localhost"}
_LOCAL_SUFFIXES = tuple("." + host for host in sorted(_LOCAL_HOSTS))  # subdomains


# The streamed segment of the request being served in this context (sentry_sdk's
# `_server_segment_span`): frameworks put the matched route on it.
_server_segment: ContextVar[StreamedSpan | None] = ContextVar(
    "tripwire_server_segment", default=None
)


def server_segment() -> StreamedSpan | None:
    """The streamed segment of the request being served in this context, if any."""
    return _server_segment.get()


def set_route(route: Any) -> None:
    """``http.route`` on the streamed segment of the request being served (nothing
    without span streaming, outside a request, or for a route of None)."""
    if route is None:
        return
    segment = _server_segment.get()
    if segment is not None:
        try:
            segment.set_attribute("http.route", str(route))
        except Exception:
            pass


def streamed(span: Any) -> StreamedSpan | None:
    """`span` if it is a streamed span (``trace_lifecycle="stream"``), else None.

    Under span streaming the transaction-model calls give streamed spans, which carry
    the attributes sentry_sdk's streaming integrations write; transactions do not.
    """
    return span if isinstance(span, StreamedSpan) else None


def _local_host(host: str) -> bool:
    return host in _LOCAL_HOSTS or host.endswith(_LOCAL_SUFFIXES)


def is_localhost(
    client_address: str | None = None,
    url_host: str | None = None,
    host_header: str | None = None,
    forwarded_host: str | None = None,
) -> bool:
    """Whether a request came from this machine (the ``sentry.is_localhost`` attribute):
    a loopback client address, or a local name (``localhost``, ``*.localhost``, a
    loopback address) as URL host, ``Host`` or ``X-Forwarded-Host``."""
    if client_address is not None and client_address.strip("[]") in _LOCAL_ADDRESSES:
        return True
    if url_host is not None and _local_host(url_host):
        return True
    for header in (host_header, forwarded_host):
        if header is None:
            continue
        if header.startswith("["):  # [::1]:8080
            domain = header.partition("]")[0].strip("[]")
        else:
            domain = header.partition(":")[0]
        if _local_host(domain):
            return True
    return False


class ServerRequest:
    """One incoming request's scopes, session and transaction, for a `with` block.

    Enter and exit in the same thread or task. `transaction` is None when tracing is
    disabled or the method is not captured. `session` is the request's session (None
    when session tracking is off).
    """

    __slots__ = (
        "_current_token",
        "_isolation_token",
        "_segment_token",
        "client",
        "isolation_scope",
        "scope",
        "session",
        "transaction",
    )

    def __init__(self, client: Any) -> None:
        self.client = client
        self.transaction: Any = None
        self.session: Any = None
        self._current_token: Token[Any] | None = None
        self._isolation_token: Token[Any] | None = None
        self._segment_token: Token[Any] | None = None

    def start(
        self,
        headers: Mapping[str, Any] | None,
        processor: EventProcessor | None,
        *,
        method: str,
        name: str,
        source: str,
        origin: str,
        op: str = "http.server",
        methods_to_capture: Container[str] = DEFAULT_HTTP_METHODS_TO_CAPTURE,
        sampling_context: Mapping[str, Any] | None = None,
        attributes: Callable[[], Mapping[str, Any]] | None = None,
        scope_attributes: Callable[[], Mapping[str, Any]] | None = None,
        track_session: bool = True,
        start_attributes: Callable[[], Mapping[str, Any]] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> ServerRequest:
        """Fork the scopes, start the session and the transaction; returns self.

        `headers` is anything `continue_trace` reads (a WSGI environ, a header mapping,
        or just the trace headers found); None or empty: a new trace.
        `attributes()` gives the request's attributes for a streamed segment (called
        only under span streaming, once the segment has started and only if it is
        sampled); `start_attributes()` those the segment starts with (under streaming,
        before sampling: `traces_sampler` and `ignore_spans` see them, as the ones
        sentry_sdk passes to `traces.start_span`); `scope_attributes()` those the
        request's isolation scope carries onto its logs, metrics and streamed spans
        (always called).
        `track_session=False`: no request session, whatever the options (frameworks
        sentry_sdk makes none for, as Sanic and Tornado).
        `tags` go on the transaction before it is sampled (`traces_sampler` sees them
        in ``transaction_context``, as sentry_sdk's ASGI ``asgi.type``); a streamed
        segment does not take them.
        """
        isolation = get_isolation_scope().fork()
        current = get_current_scope().fork()
        self.isolation_scope = isolation
        self.scope = current
        self._isolation_token = _isolation_scope.set(isolation)
        self._current_token = _current_scope.set(current)
        try:
            client = self.client
            isolation.clear_breadcrumbs()
            data = isolation._d
            if processor is not None:
                isolation.add_event_processor(processor)
            if scope_attributes is not None:
                _set_attributes(isolation, scope_attributes)
            if track_session and _tracking_enabled(isolation):
                options = client.options
                session = _RequestSession(options.get("release"), options.get("environment"))
                data.session = session
                self.session = session
            if method in methods_to_capture and has_tracing_enabled(client.options):
                transaction = continue_trace(
                    isolation, headers, op=op, name=name, source=source, origin=origin
                )
                if tags:
                    for key, value in tags.items():
                        transaction.set_tag(key, value)
                # Entered on the current scope (as `sentry_sdk.start_transaction`): a
                # streamed segment is then the current span, renamed with the scope.
                at_start: dict[str, Any] = {}
                if start_attributes is not None and span_streaming_enabled(client.options):
                    try:
                        at_start["attributes"] = dict(start_attributes())
                    except Exception:
                        pass
                transaction = sdk_start_transaction(
                    transaction, scope=current, custom_sampling_context=sampling_context, **at_start
                )
                transaction.__enter__()
                self.transaction = transaction
                segment = streamed(transaction)
                if segment is not None:
                    self._segment_token = _server_segment.set(segment)
                    # An unsampled segment sends nothing: its attributes are not built.
                    if attributes is not None and not isinstance(segment, NoOpStreamedSpan):
                        _set_attributes(segment, attributes)
            else:
                # No transaction: the scope carries the trace (for errors and outgoing
                # requests) and the name, without a Transaction object made and dropped.
                context = None
                if headers:
                    context = PropagationContext.from_incoming_data(headers, client)
                data.propagation_context = context or PropagationContext()
                isolation.set_transaction_name(name, source)
        except Exception:  # instrumentation must never fail the request
            pass
        return self

    def set_status(self, status: int) -> None:
        """The response's status code, onto the transaction."""
        transaction = self.transaction
        if transaction is not None:
            transaction.set_http_status(status)

    def set_attribute(self, key: str, value: Any) -> None:
        """An attribute of the request's streamed segment (nothing for a transaction)."""
        segment = streamed(self.transaction)
        if segment is not None:
            segment.set_attribute(key, value)

    def set_name(self, name: str, source: str) -> None:
        """Name the request's events and transaction (route, endpoint, url...).

        With a transaction, the current scope carries its name (it was entered there)
        and wins over the isolation scope's, so both are renamed.
        """
        self.isolation_scope.set_transaction_name(name, source)
        transaction = self.transaction
        if transaction is not None:
            self.scope.set_transaction_name(name, source)
            transaction.name = name
            transaction.source = source

    def finish(self, exc: BaseException | None = None) -> None:
        """Finish the transaction, end the session and restore the scopes; never raises."""
        transaction = self.transaction
        if transaction is not None:
            self.transaction = None
            try:
                if exc is not None:
                    transaction.__exit__(type(exc), exc, exc.__traceback__)
                else:
                    transaction.__exit__(None, None, None)
            except Exception:
                pass
        session = self.session
        if session is not None:
            self.session = None
            try:
                data = self.isolation_scope._d
                if data.session is session:
                    self.isolation_scope._w().session = None
                session.close()
                self.client.capture_session(session)
            except Exception:
                pass
        if self._segment_token is not None:
            _restore(_server_segment, self._segment_token)
            self._segment_token = None
        _restore(_current_scope, self._current_token)
        _restore(_isolation_scope, self._isolation_token)
        self._current_token = self._isolation_token = None


class _RequestSession(Session):
    """A request-mode session, made for every request: only what aggregates need.

    Request sessions are counted into per-minute aggregates (release, environment,
    status, errors): no user, no `did`; the `sid` is made only if something asks.
    Unlike sentry_sdk, a session the scope inherited (an application session of the
    process) is left running, not ended by each request.
    """

    def __init__(self, release: str | None, environment: str | None) -> None:
        now = clock.now()
        self._sid: str | None = None
        self.did = None
        self.started = now
        self.timestamp = now
        self.release = release
        self.environment = environment
        self.duration = None
        self.user_agent = None
        self.ip_address = None
        self.session_mode = "request"
        self.errors = 0
        self.status = "ok"
        self._init = True

    @property
    def sid(self) -> str:
        """The session id (made on first use)."""
        if self._sid is None:
            import uuid  # rarely asked for: not worth loading up front

            self._sid = str(uuid.uuid4())
        return self._sid

    @sid.setter
    def sid(self, value: str) -> None:
        self._sid = value

    def close(self, status: str | None = None) -> None:
        """End the session: "exited" unless it already ended otherwise."""
        if status is None and self.status == "ok":
            status = "exited"
        if status is not None:
            self.status = status
            self.timestamp = clock.now()


def _set_attributes(target: Any, attributes: Callable[[], Mapping[str, Any]]) -> None:
    try:  # a failure here must not cost the request its transaction
        target.set_attributes(dict(attributes()))
    except Exception:
        pass


def _restore(var: Any, token: Token[Any] | None) -> None:
    if token is None:
        return
    try:
        var.reset(token)
    except ValueError:  # exited in another context than the one it was entered in
        var.set(token.old_value if token.old_value is not Token.MISSING else None)


# -- the event's `request` ---------------------------------------------------------------


def checked_transaction_style(style: str, allowed: tuple[str, ...]) -> str:
    """`style` if it is one of `allowed` (an integration's ``transaction_style``).

    Raises:
        ValueError: Any other value, with sentry_sdk's message.
    """
    if style not in allowed:
        raise ValueError(f"Invalid value for transaction_style: {style} (must be in {allowed})")
    return style


def should_capture_status(status: int, codes: Container[int]) -> bool:
    """Whether a response with `status` is reported (`failed_request_status_codes`)."""
    return status in codes


def failed_status_codes(value: Any) -> Container[int]:
    """`failed_request_status_codes` as given (a set of ints), or sentry_sdk 1.x's list
    of ints and ranges; None means the default (5xx)."""
    if value is None:
        return DEFAULT_FAILED_REQUEST_STATUS_CODES
    if isinstance(value, (set, frozenset)):
        return frozenset(value)
    codes: set[int] = set()
    for entry in value:
        if isinstance(entry, int):
            codes.add(entry)
        elif isinstance(entry, Iterable):
            codes.update(entry)
    return frozenset(codes)


def request_part(
    options: Mapping[str, Any],
    *,
    method: str,
    url: str,
    query_string: str | None,
    headers: Mapping[str, Any],
    env: Mapping[str, Any] | None = None,
    cookies: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The event's `request` (no body): the personal parts only as the options allow.

    As sentry_sdk: keys in its order; a `query_string` given (even empty) is kept
    unless `data_collection` filters it away; `cookies` given are kept with
    `send_default_pii` (even empty) or as `data_collection` filters them (if any left).
    """
    out: dict[str, Any] = {"url": url, "method": method}
    if env:
        out["env"] = dict(env)
    out["headers"] = _data_collection.request_headers(
        headers, options, AnnotatedValue.removed_because_over_size_limit()
    )
    if query_string is not None:
        if _data_collection.enabled(options):
            query = _data_collection.request_query(query_string, options)
            if query:
                out["query_string"] = query
        else:
            out["query_string"] = query_string
    if cookies is not None:
        kept = _data_collection.request_cookies(cookies, options)
        if kept is not None:
            out["cookies"] = kept
    return out


may_send_user = _data_collection.user_info  # whether the user's IP and identity may go


def request_scope_attributes(
    options: Mapping[str, Any],
    *,
    client_address: str | None,
    host: str | None,
    forwarded_host: str | None,
    user_agent: str | None,
    url_host: str | None = None,
    user_address: str | None = None,
    with_user: bool = True,
) -> dict[str, Any]:
    """What a request's logs, metrics and streamed spans carry (its isolation scope's
    attributes, as sentry_sdk sets them in both modes): whether it came from this
    machine and its user agent; under span streaming, and as the options allow, the
    user's address (`user_address`, by default `client_address`; none if not
    `with_user`)."""
    out: dict[str, Any] = {
        "sentry.is_localhost": is_localhost(client_address, url_host, host, forwarded_host)
    }
    if user_agent:
        out["user_agent.original"] = user_agent
    address = user_address if user_address is not None else client_address
    if with_user and address and span_streaming_enabled(options) and may_send_user(options):
        out["user.ip_address"] = address
    return out


def client_ip(headers: Mapping[str, Any], remote_addr: str | None) -> str | None:
    """The client's address: the first `X-Forwarded-For` hop, `X-Real-Ip`, else the peer.

    `headers` is keyed in lower case.
    """
    forwarded = headers.get("x-forwarded-for")
    if forwarded:
        return str(forwarded).split(",")[0].strip()
    real = headers.get("x-real-ip")
    if real:
        return str(real)
    return remote_addr


def body_part(
    options: Mapping[str, Any],
    content_length: int,
    read: Callable[[], Any],
) -> Any:
    """The body as the event carries it, or None to leave it out.

    `read()` returns the parsed body (a dict for JSON or forms), raw bytes/str, or
    None; it is called only when a body of `content_length` bytes may be collected.
    A body too large becomes an empty value marked removed for its size; a raw body
    one marked removed as raw data (as sentry_sdk). A request without a length (a
    chunked body) is read too, as sentry_sdk reads it; under ``"never"`` every request's
    body, even an empty one, is marked removed, as sentry_sdk marks it.
    """
    decision = _data_collection.body_decision(options, "incoming_request", content_length)
    if decision == "off":
        return None
    if decision == "too_large":
        return AnnotatedValue.removed_because_over_size_limit()
    try:
        parsed = read()
    except Exception:
        return None
    if parsed is None:
        return None
    if isinstance(parsed, (bytes, bytearray, str)):
        return AnnotatedValue.removed_because_raw_data() if parsed else None
    return parsed


def attach_request(event: dict[str, Any], part: Mapping[str, Any]) -> None:
    """Merge `part` into the event's `request` (its `AnnotatedValue`s are settled into
    values and ``_meta`` by the serializer)."""
    request = event.get("request")
    if request is None:
        event["request"] = dict(part)
    else:
        request.update(part)
