"""Outgoing HTTP requests: the rules every HTTP client integration shares.

- `request_url`: the URL a client connection is about to request (an absolute
  request target, as sent to a proxy, is taken as it is; the default port is left out).
- `outgoing_trace_headers`: the ``sentry-trace`` / ``baggage`` headers to add, as
  sentry_sdk 2.75 decides: none with ``propagate_traces=False``, to a URL outside
  ``trace_propagation_targets`` or to the SDK's own DSN host; with tracing enabled,
  only inside a transaction (the request's span speaks for the trace); without
  tracing, the scope's propagation context.
- `span_data`: the span and breadcrumb data of a request (credentials filtered).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from tripwire.consts import SPANDATA
from tripwire.tracing._consts import BAGGAGE_HEADER_NAME, SENTRY_TRACE_HEADER_NAME
from tripwire.tracing._propagation import should_propagate_trace
from tripwire.tracing._sampling import has_tracing_enabled
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
    from tripwire.scope._current import get_current_scope

    if has_tracing_enabled(options):
        if span is None or getattr(span, "containing_transaction", None) is None:
            return []  # tracing, but no transaction: nothing speaks for the trace
        return list(get_current_scope().iter_trace_propagation_headers(span=span))
    return list(get_current_scope().iter_trace_propagation_headers())


__all__ = ["TRACE_HEADERS", "outgoing_trace_headers", "request_url", "span_data"]
