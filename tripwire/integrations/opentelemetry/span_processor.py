"""`SentrySpanProcessor`: OpenTelemetry spans become Sentry transactions and spans.

With `instrumenter="otel"`, OTel does the instrumenting: each root OTel span (or one
continuing a remote parent) starts a Sentry transaction, each child a child span, keyed
by the OTel span id. At the end the OTel name, kind, status and attributes are turned
into Sentry's op, description, status and data (HTTP and DB spans get Sentry's usual
shapes), and the transaction carries the attributes as `contexts.otel`. Errors captured
while an OTel span is current are linked to its Sentry span.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any, Optional, Union
from urllib.parse import urlsplit

from tripwire import api
from tripwire.consts import INSTRUMENTER, SPANSTATUS
from tripwire.integrations import DidNotEnable
from tripwire.integrations._patch import on_undo
from tripwire.integrations.opentelemetry.consts import SENTRY_BAGGAGE_KEY, SENTRY_TRACE_KEY
from tripwire.scope import add_global_event_processor
from tripwire.tracing import Span as SentrySpan
from tripwire.tracing import Transaction
from tripwire.tracing._api import sdk_start_transaction
from tripwire.tracing_utils import has_span_streaming_enabled

try:
    from opentelemetry.context import get_value
    from opentelemetry.sdk.trace import ReadableSpan as OTelSpan
    from opentelemetry.sdk.trace import SpanProcessor
    from opentelemetry.trace import (
        INVALID_SPAN_ID,
        INVALID_TRACE_ID,
        SpanKind,
        format_span_id,
        format_trace_id,
        get_current_span,
    )
except ImportError:
    raise DidNotEnable("opentelemetry not installed") from None

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import SpanContext

OPEN_TELEMETRY_CONTEXT = "otel"
SPAN_MAX_TIME_OPEN_MINUTES = 10
SPAN_ORIGIN = "auto.otel"

# OpenTelemetry semantic-convention attribute names (the pre-1.20 HTTP/DB ones, which
# the OTel instrumentations still emit by default).
_HTTP_METHOD = "http.method"
_HTTP_URL = "http.url"
_HTTP_TARGET = "http.target"
_HTTP_STATUS_CODE = "http.status_code"
_NET_PEER_NAME = "net.peer.name"
_DB_SYSTEM = "db.system"
_DB_STATEMENT = "db.statement"

AnySpan = Union[Transaction, SentrySpan]


def _instrumenter_is_otel() -> bool:
    return bool(api.get_client().options.get("instrumenter") == INSTRUMENTER.OTEL)


def link_trace_context_to_error_event(
    event: dict[str, Any], otel_span_map: dict[str, AnySpan]
) -> dict[str, Any]:
    """Give an error event the trace context of the Sentry span of the current OTel span."""
    if not _instrumenter_is_otel() or event.get("type") == "transaction":
        return event
    span_context = get_current_span().get_span_context()
    if span_context.trace_id == INVALID_TRACE_ID or span_context.span_id == INVALID_SPAN_ID:
        return event
    sentry_span = otel_span_map.get(format_span_id(span_context.span_id))
    if sentry_span is None:
        return event
    contexts = event.setdefault("contexts", {})
    contexts.setdefault("trace", {}).update(sentry_span.get_trace_context())
    return event


def _http_op(otel_span: OTelSpan) -> str:
    if otel_span.kind == SpanKind.SERVER:
        return "http.server"
    if otel_span.kind == SpanKind.CLIENT:
        return "http.client"
    return "http"


def _http_description(method: str, attributes: Any) -> str:
    """`GET <peer> <target>`, or `GET <url without query>` when neither is known."""
    parts = [method]
    peer = attributes.get(_NET_PEER_NAME)
    target = attributes.get(_HTTP_TARGET)
    if peer:
        parts.append(str(peer))
    if target:
        parts.append(str(target))
    url = attributes.get(_HTTP_URL)
    if not peer and not target and url:
        split = urlsplit(str(url))
        host = split.hostname or ""
        if split.port is not None:
            host = f"{host}:{split.port}"
        parts.append(f"{split.scheme}://{host}{split.path}")
    return " ".join(parts)


class SentrySpanProcessor(SpanProcessor):
    """Turns OTel spans into Sentry spans (one instance per process)."""

    # OTel span id (hex) -> the Sentry span made for it, while it is open.
    otel_span_map: dict[str, AnySpan] = {}
    # Minute of start -> ids of spans still open; spans left open longer than
    # SPAN_MAX_TIME_OPEN_MINUTES are forgotten (an OTel span never ended).
    open_spans: dict[int, set[str]] = {}
    initialized: bool = False
    instance: SentrySpanProcessor
    # Re-entrant: a signal handler or a finalizer (`__del__`) runs on the thread it
    # interrupts, also inside these blocks (they allocate), and it may start or end an
    # OTel span. A nested prune may remove what the interrupted one is looking at.
    _lock = threading.RLock()

    def __new__(cls) -> SentrySpanProcessor:
        if not hasattr(cls, "instance"):
            cls.instance = super().__new__(cls)
        return cls.instance

    def __init__(self) -> None:
        if self.initialized:
            return
        span_map = self.otel_span_map

        def link_errors(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
            return link_trace_context_to_error_event(event, span_map)

        add_global_event_processor(link_errors)
        type(self).initialized = True

        def forget() -> None:
            # `tripwire.testing.reset` drops the global processors: register again.
            type(self).initialized = False

        on_undo(forget)

    def _prune_old_spans(self) -> None:
        now_minutes = int(time.time() / 60)
        with self._lock:
            for minute in list(self.open_spans):
                ids = self.open_spans.get(minute)
                if not ids:
                    self.open_spans.pop(minute, None)
                elif now_minutes - minute > SPAN_MAX_TIME_OPEN_MINUTES:
                    self.open_spans.pop(minute, None)
                    for span_id in list(ids):
                        self.otel_span_map.pop(span_id, None)

    def on_start(self, otel_span: Any, parent_context: Optional[Context] = None) -> None:
        try:
            self._start(otel_span, parent_context)
        except Exception:
            pass  # never break the application's span

    def on_end(self, otel_span: OTelSpan) -> None:
        try:
            self._end(otel_span)
        except Exception:
            pass

    def _start(self, otel_span: Any, parent_context: Optional[Context]) -> None:
        client = api.get_client()
        if client.parsed_dsn is None or not _instrumenter_is_otel():
            return
        if has_span_streaming_enabled(client.options):
            # As sentry_sdk 2.75: OTel spans are not bridged under span streaming (its
            # transactions are no-ops there), even with the processor added by hand.
            return
        span_context = otel_span.get_span_context()
        if span_context is None or not span_context.is_valid or self._is_sentry_span(otel_span):
            return
        data = self._get_trace_data(span_context, otel_span.parent, parent_context)
        span_id = data["span_id"]
        parent_id = data["parent_span_id"]
        parent = self.otel_span_map.get(parent_id) if parent_id else None
        start = otel_span.start_time / 1e9 if otel_span.start_time is not None else None
        sentry_span: AnySpan
        if parent is not None:
            sentry_span = parent.start_child(
                span_id=span_id,
                name=otel_span.name,
                start_timestamp=start,
                instrumenter=INSTRUMENTER.OTEL,
                origin=SPAN_ORIGIN,
            )
        else:
            sentry_span = sdk_start_transaction(
                name=otel_span.name,
                span_id=span_id,
                parent_span_id=parent_id,
                trace_id=data["trace_id"],
                baggage=data["baggage"],
                start_timestamp=start,
                instrumenter=INSTRUMENTER.OTEL,
                origin=SPAN_ORIGIN,
            )
        self.otel_span_map[span_id] = sentry_span
        if otel_span.start_time is not None:
            minute = int(otel_span.start_time / 1e9 / 60)
            with self._lock:
                self.open_spans.setdefault(minute, set()).add(span_id)
        self._prune_old_spans()

    def _end(self, otel_span: OTelSpan) -> None:
        if not _instrumenter_is_otel():
            return
        span_context = otel_span.get_span_context()
        if span_context is None or not span_context.is_valid:
            return
        span_id = format_span_id(span_context.span_id)
        sentry_span = self.otel_span_map.pop(span_id, None)
        if sentry_span is None:
            return
        sentry_span.op = otel_span.name
        self._update_span_with_otel_status(sentry_span, otel_span)
        if isinstance(sentry_span, Transaction):
            sentry_span.name = otel_span.name
            sentry_span.set_context(OPEN_TELEMETRY_CONTEXT, self._get_otel_context(otel_span))
            self._update_transaction_with_otel_data(sentry_span, otel_span)
        else:
            self._update_span_with_otel_data(sentry_span, otel_span)
        end = otel_span.end_time / 1e9 if otel_span.end_time is not None else None
        sentry_span.finish(end_timestamp=end)
        if otel_span.start_time is not None:
            minute = int(otel_span.start_time / 1e9 / 60)
            with self._lock:
                self.open_spans.setdefault(minute, set()).discard(span_id)
        self._prune_old_spans()

    def _is_sentry_span(self, otel_span: Any) -> bool:
        """Whether the span is a request to Sentry itself (reporting it would loop)."""
        attributes = otel_span.attributes
        url = attributes.get(_HTTP_URL) if attributes else None
        dsn = api.get_client().parsed_dsn
        return bool(url and dsn is not None and dsn.netloc in str(url))

    def _get_otel_context(self, otel_span: OTelSpan) -> dict[str, Any]:
        """`contexts.otel`: the span's attributes and its resource's."""
        context: dict[str, Any] = {}
        if otel_span.attributes:
            context["attributes"] = dict(otel_span.attributes)
        if otel_span.resource.attributes:
            context["resource"] = dict(otel_span.resource.attributes)
        return context

    def _get_trace_data(
        self,
        span_context: SpanContext,
        parent_span_context: Optional[SpanContext],
        parent_context: Optional[Context],
    ) -> dict[str, Any]:
        """Ids of the span and its parent, and what the propagator left in the context."""
        incoming = get_value(SENTRY_TRACE_KEY, parent_context)
        parent_sampled = incoming.get("parent_sampled") if isinstance(incoming, dict) else None
        return {
            "span_id": format_span_id(span_context.span_id),
            "trace_id": format_trace_id(span_context.trace_id),
            "parent_span_id": (
                format_span_id(parent_span_context.span_id) if parent_span_context else None
            ),
            "parent_sampled": parent_sampled,
            "baggage": get_value(SENTRY_BAGGAGE_KEY, parent_context),
        }

    def _update_span_with_otel_status(self, sentry_span: AnySpan, otel_span: OTelSpan) -> None:
        status = otel_span.status
        if status.is_unset:
            return
        sentry_span.set_status(SPANSTATUS.OK if status.is_ok else SPANSTATUS.INTERNAL_ERROR)

    def _update_span_with_otel_data(self, sentry_span: AnySpan, otel_span: OTelSpan) -> None:
        sentry_span.set_data("otel.kind", otel_span.kind)
        op = description = otel_span.name
        attributes = otel_span.attributes
        if attributes is not None:
            for key, value in attributes.items():
                sentry_span.set_data(key, value)
            method = attributes.get(_HTTP_METHOD)
            if method:
                op = _http_op(otel_span)
                description = _http_description(str(method), attributes)
                status_code = attributes.get(_HTTP_STATUS_CODE)
                if status_code and isinstance(status_code, int):
                    sentry_span.set_http_status(status_code)
            elif attributes.get(_DB_SYSTEM):
                op = "db"
                statement = attributes.get(_DB_STATEMENT)
                if statement:
                    description = str(statement)
        sentry_span.op = op
        sentry_span.description = description

    def _update_transaction_with_otel_data(self, sentry_span: AnySpan, otel_span: OTelSpan) -> None:
        attributes = otel_span.attributes
        if attributes is None or not attributes.get(_HTTP_METHOD):
            return
        status_code = attributes.get(_HTTP_STATUS_CODE)
        if status_code and isinstance(status_code, int):
            sentry_span.set_http_status(status_code)
        sentry_span.op = _http_op(otel_span)


__all__ = [
    "OPEN_TELEMETRY_CONTEXT",
    "SPAN_MAX_TIME_OPEN_MINUTES",
    "SPAN_ORIGIN",
    "SentrySpanProcessor",
    "link_trace_context_to_error_event",
]
