"""Outgoing HTTP requests: the rules every HTTP client integration shares.

- `request_url`: the URL a client connection is about to request (an absolute
  request target, as sent to a proxy, is taken as it is; the default port is left out).
- `outgoing_trace_headers`: the ``sentry-trace`` / ``baggage`` headers to add, as
  sentry_sdk 2.75 decides: none with ``propagate_traces=False``, to a URL outside
  ``trace_propagation_targets`` or to the SDK's own DSN host; with tracing enabled,
  only inside a transaction (the request's span speaks for the trace); without
  tracing, the scope's propagation context.
- `span_data`: the span and breadcrumb data of a request (credentials filtered).
- `headers_left_to_add`: which of those trace headers a request that already wrote
  some headers may still get, as sentry_sdk 2.75 decides for botocore's connections:
  not a second ``sentry-trace``, not a ``baggage`` when one with ``sentry-*`` members is
  there, never one an AWS SigV4 signature covers (`sigv4_signed_headers`).
- `OutgoingRequest`: one request of an HTTP client library (httpx, aiohttp): its
  ``http.client`` span (under the current span, if any), its trace headers, then its
  ``httplib`` breadcrumb and request source once answered.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any, Optional
from urllib.parse import parse_qs, urlsplit

from tripwire.consts import OP, SPANDATA
from tripwire.integrations._common.streaming import start_child, streaming
from tripwire.scope._current import get_client, get_current_scope, get_isolation_scope
from tripwire.tracing._consts import BAGGAGE_HEADER_NAME, SENTRY_TRACE_HEADER_NAME
from tripwire.tracing._propagation import should_propagate_trace
from tripwire.tracing._sampling import has_span_streaming_enabled, has_tracing_enabled
from tripwire.tracing_utils import (
    add_http_breadcrumb,
    add_http_request_source,
    add_sentry_baggage_to_headers,
    get_url_attributes,
)
from tripwire.utils import parse_url

if TYPE_CHECKING:
    from tripwire.client import BaseClient

TRACE_HEADERS = (SENTRY_TRACE_HEADER_NAME, BAGGAGE_HEADER_NAME)


def request_url(scheme: str, host: str, port: Optional[int], default_port: int, target: str) -> str:
    """The full URL of a request to `host:port` for `target` (a path or an absolute URL)."""
    if target.startswith(("http://", "https://")):
        return target
    if port is None or port == default_port:
        return f"{scheme}://{host}{target}"
    return f"{scheme}://{host}:{port}{target}"


def span_data(method: str, url: str) -> tuple[str, dict[str, Any]]:
    """The URL without credentials, query and fragment, and the request's data.

    The data keys are sentry_sdk's, in its order: method, fragment, url, query.
    """
    parsed = parse_url(url, sanitize=False)
    return parsed.url, {
        SPANDATA.HTTP_METHOD: method,
        SPANDATA.HTTP_FRAGMENT: parsed.fragment,
        "url": parsed.url,
        SPANDATA.HTTP_QUERY: parsed.query,
    }


def outgoing_trace_headers(
    client: BaseClient, url: Optional[str], span: Any
) -> list[tuple[str, str]]:
    """The trace headers for a request to `url` made inside `span` (None: no span).

    `url` None skips the ``trace_propagation_targets`` check (a subprocess, not a URL);
    the SDK's own DSN host is then not checked either.
    """
    options = client.options
    if not options.get("propagate_traces", True):
        return []
    if url is not None and not should_propagate_trace(client, url):
        return []
    if has_tracing_enabled(options):
        if span is None and has_span_streaming_enabled(options):
            # sentry_sdk 2.75 under streaming: outside a span, the scope's trace.
            return list(get_current_scope().iter_trace_propagation_headers())
        if span is None or getattr(span, "containing_transaction", None) is None:
            return []  # tracing, but no transaction: nothing speaks for the trace
        return list(get_current_scope().iter_trace_propagation_headers(span=span))
    return list(get_current_scope().iter_trace_propagation_headers())


SIGV4_ALGORITHMS = frozenset(("AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256"))
_TRACE_HEADER_SET = frozenset(TRACE_HEADERS)


def sigv4_signed_headers(authorization: Optional[str], url: str) -> set[str]:
    """The header names (lower case) an AWS SigV4 signature of a request covers.

    They are listed in the ``SignedHeaders=`` parameter of a SigV4 ``Authorization``
    header, or in the ``X-Amz-SignedHeaders`` query parameter of a presigned URL.
    """
    signed: set[str] = set()
    if authorization:
        algorithm, _, parameters = authorization.lstrip().partition(" ")
        if algorithm in SIGV4_ALGORITHMS:
            for part in parameters.split(","):
                part = part.strip()
                if part.startswith("SignedHeaders="):
                    signed.update(name.lower() for name in part[14:].split(";") if name)
                    break
    if "amz-" in url.lower():  # maybe presigned: the names are in the query
        query = {key.lower(): value for key, value in parse_qs(urlsplit(url).query).items()}
        if query.get("x-amz-algorithm", [""])[0] in SIGV4_ALGORITHMS:
            names = query.get("x-amz-signedheaders", [""])[0]
            signed.update(name.lower() for name in names.split(";") if name)
    return signed


def headers_left_to_add(
    pending: list[tuple[str, str]], written: Iterable[tuple[str, str]], url: str
) -> list[tuple[str, str]]:
    """The `pending` trace headers a request to `url` may still get.

    `written` are the (lower-case name, value) headers the request already has. An
    existing ``sentry-trace`` stays the only one; a ``baggage`` with ``sentry-*``
    members means no second one (other ``baggage`` gets ours as a further field);
    a trace header an AWS SigV4 signature covers is never added, as the signature
    would no longer match.
    """
    skip: set[str] = set()
    authorization = None
    for name, value in written:
        if name == SENTRY_TRACE_HEADER_NAME:
            skip.add(name)
        elif name == BAGGAGE_HEADER_NAME:
            if any(part.strip().startswith("sentry-") for part in value.split(",")):
                skip.add(name)
        elif name == "authorization":
            authorization = value
    if authorization is not None or "amz-" in url.lower():
        skip.update(_TRACE_HEADER_SET.intersection(sigv4_signed_headers(authorization, url)))
    if not skip:
        return pending
    return [(key, value) for key, value in pending if key.lower() not in skip]


class OutgoingRequest:
    """One outgoing request of an HTTP client library, from sending to its answer.

    `begin` returns None when the active client lacks the integration (the library
    is then called as if unpatched). Span data keys are in sentry_sdk's order for
    client libraries: method, url, query, fragment (then status code and reason).
    """

    __slots__ = ("fragment", "headers", "method", "query", "span", "streamed", "url")

    def __init__(
        self,
        method: str,
        url: str,
        query: str,
        fragment: str,
        span: Any,
        headers: list[tuple[str, str]],
        streamed: Optional[dict[str, Any]] = None,
    ) -> None:
        self.method = method
        self.url = url
        self.query = query
        self.fragment = fragment
        self.span = span
        self.headers = headers
        # Under span streaming: the request's ``url.*`` attributes ({} without consent).
        self.streamed = streamed

    @classmethod
    def _begin_streamed(
        cls, client: BaseClient, origin: str, method: str, full: str, url_path: Optional[str]
    ) -> OutgoingRequest:
        """`begin` under span streaming, as sentry_sdk 2.75 there: a span only inside a
        span (current until it ends), named as before, with ``http.request.method`` and
        the ``url.*`` attributes (only with the user's consent; so in the breadcrumb)."""
        parsed = parse_url(full, sanitize=False)
        attributes = get_url_attributes(client, parsed)
        given = {
            "sentry.op": OP.HTTP_CLIENT,
            "sentry.origin": origin,
            SPANDATA.HTTP_REQUEST_METHOD: method,
        }
        if url_path is not None and attributes:
            # `url_path` given (aiohttp's): the span starts with the url attributes too,
            # as sentry_sdk's (`ignore_spans` sees them).
            given["url.path"] = url_path
            given.update(attributes)
        span = start_child(f"{method} {parsed.url}", given)
        if span is not None and url_path is None:
            span.set_attributes(attributes)
        headers = outgoing_trace_headers(client, full, span)
        return cls(
            method,
            attributes.get(SPANDATA.URL_FULL, ""),
            attributes.get(SPANDATA.URL_QUERY, ""),
            attributes.get(SPANDATA.URL_FRAGMENT, ""),
            span,
            headers,
            attributes,
        )

    @classmethod
    def begin(
        cls,
        integration: type,
        origin: str,
        method: str,
        url: Any,
        url_path: Optional[str] = None,
    ) -> Optional[OutgoingRequest]:
        """Start the span and decide the trace headers of a `method` request to `url`.

        `url_path`: under streaming, the span starts with ``url.path`` and the other url
        attributes (when they may be sent) instead of getting them after its start.
        """
        client = get_client()
        if client.get_integration(integration) is None:
            return None
        try:
            full = str(url)
            if streaming(client):
                return cls._begin_streamed(client, origin, method, full, url_path)
            parsed = parse_url(full, sanitize=False)
            parent = get_current_scope()._d.span or get_isolation_scope()._d.span
            span = None
            if parent is not None:
                span = parent.start_child(
                    op=OP.HTTP_CLIENT, name=f"{method} {parsed.url}", origin=origin
                )
                span.set_data(SPANDATA.HTTP_METHOD, method)
                span.set_data("url", parsed.url)
                span.set_data(SPANDATA.HTTP_QUERY, parsed.query)
                span.set_data(SPANDATA.HTTP_FRAGMENT, parsed.fragment)
            headers = outgoing_trace_headers(client, full, span)
            return cls(method, parsed.url, parsed.query, parsed.fragment, span, headers)
        except Exception:  # instrumentation must not break the request
            return None

    def merge_headers_into(self, headers: Any) -> None:
        """Set the trace headers on `headers`; an existing ``baggage`` keeps its
        third-party entries, its ``sentry-*`` entries are replaced (httpx)."""
        for key, value in self.headers:
            if key == BAGGAGE_HEADER_NAME:
                add_sentry_baggage_to_headers(headers, value)
            else:
                headers[key] = value

    def add_headers_to(self, headers: Any) -> None:
        """Add the trace headers to `headers`, leaving the caller's alone: an existing
        ``sentry-trace``, or a ``baggage`` with ``sentry-*`` entries, is kept; other
        ``baggage`` is appended to (aiohttp)."""
        existing = headers.get(BAGGAGE_HEADER_NAME)
        if isinstance(existing, bytes):
            existing = existing.decode("latin-1")
        for key, value in self.headers:
            if key == BAGGAGE_HEADER_NAME:
                if not existing:
                    headers[key] = value
                elif not any(part.strip().startswith("sentry-") for part in existing.split(",")):
                    headers[key] = existing + "," + value
            elif key not in headers:
                headers[key] = value

    def failed(self, exc: BaseException) -> None:
        """No answer: the span ends (``internal_error`` for an error); no breadcrumb."""
        span = self.span
        if span is None:
            return
        try:
            span.__exit__(type(exc), exc, exc.__traceback__)
            if self.streamed is None:
                add_http_request_source(span)
        except Exception:
            pass

    def crumb_data(self, status: int, reason: Any, crumb_order: Sequence[str]) -> dict[str, Any]:
        """The breadcrumb's data, its keys in `crumb_order` (under span streaming the URL
        keys only with the user's consent, the URL then in full)."""
        found = {
            SPANDATA.HTTP_METHOD: self.method,
            SPANDATA.HTTP_STATUS_CODE: status,
            "reason": reason,
            "url": self.url,
            SPANDATA.HTTP_QUERY: self.query,
            SPANDATA.HTTP_FRAGMENT: self.fragment,
        }
        if self.streamed is not None and not self.streamed:
            crumb_order = [key for key in crumb_order if key not in _URL_CRUMB_KEYS]
        return {key: found[key] for key in crumb_order}

    def responded(self, status: int, reason: Any, crumb_order: Sequence[str]) -> None:
        """The answer came: status on the span, span finished, breadcrumb added."""
        try:
            self.end_span(status, reason)
            add_http_breadcrumb(status, self.crumb_data(status, reason, crumb_order))
        except Exception:
            pass

    def end_span(self, status: int, reason: Any = None, with_reason: bool = True) -> None:
        """End the span with the response's `status` (and `reason`, but when streamed)."""
        span = self.span
        if span is None:
            return
        if self.streamed is not None:
            span.status = "error" if status >= 400 else "ok"
            span.set_attribute(SPANDATA.HTTP_STATUS_CODE, status)
            add_http_request_source(span)
            span.end()
            return
        span.set_http_status(status)
        if with_reason:
            span.set_data("reason", reason)
        span.finish()
        add_http_request_source(span)


_URL_CRUMB_KEYS = frozenset(("url", SPANDATA.HTTP_QUERY, SPANDATA.HTTP_FRAGMENT))


__all__ = [
    "SIGV4_ALGORITHMS",
    "TRACE_HEADERS",
    "OutgoingRequest",
    "headers_left_to_add",
    "outgoing_trace_headers",
    "request_url",
    "sigv4_signed_headers",
    "span_data",
]
