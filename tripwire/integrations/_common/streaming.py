"""Spans of the outgoing-call integrations under span streaming (``trace_lifecycle="stream"``).

Under streaming sentry_sdk 2.75's outgoing-call integrations (http.client, httpx,
pyreqwest, socket, subprocess, grpc, asyncio tasks) leave the transaction model: a
span is made only as a child of the current streamed span (none outside one, not
even under the isolation scope's span), with the integration's attributes given at
start (``sentry.op``, ``sentry.origin`` and OpenTelemetry-style names such as
``http.request.method``, ``url.full``, ``server.address``, ``rpc.method``). The
helpers here make such spans, so each integration's streaming branch stays a few lines.

- `streaming`: whether the client streams spans (one options lookup);
- `start_child`: a streamed child of the current span (`tracing._api.start_child` in
  the streaming model's form), or None outside one;
- `url_attributes`: `tracing_utils.get_url_attributes` of a URL string.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from tripwire.tracing._api import start_child as _start_child
from tripwire.tracing._sampling import has_span_streaming_enabled
from tripwire.tracing._streamed import StreamedSpan
from tripwire.tracing_utils import get_url_attributes
from tripwire.utils import parse_url

if TYPE_CHECKING:
    from tripwire._client_base import BaseClient


def streaming(client: BaseClient) -> bool:
    """Whether `client` sends streamed spans."""
    return has_span_streaming_enabled(client.options)


def start_child(
    name: str, attributes: dict[str, Any], active: bool = True
) -> Optional[StreamedSpan]:
    """A streamed child of the current span with `attributes`; None if no span is current.

    `active`: the span becomes the current one until it ends (False: a span whose end
    may never come, as a request whose connection failed, must not stay current).
    """
    span: Optional[StreamedSpan] = _start_child(name=name, attributes=attributes, active=active)
    return span


def url_attributes(client: BaseClient, url: str) -> dict[str, Any]:
    """``url.full`` (and ``url.query`` / ``url.fragment``) of `url`, with the user's consent
    (`data_collection`, else `send_default_pii`); {} without it."""
    try:
        return get_url_attributes(client, parse_url(url, sanitize=False))
    except Exception:
        return {}


__all__ = ["start_child", "streaming", "url_attributes"]
