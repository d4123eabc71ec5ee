"""Tracing helpers at sentry_sdk's import path (`sentry_sdk.tracing_utils`).

The span-streaming helpers of sentry_sdk 2.75 (`has_span_streaming_enabled`,
`is_ignored_span`, `create_streaming_span_decorator`) come from `tripwire.traces`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from types import FrameType
from typing import TYPE_CHECKING, Any, Optional

from tripwire import api
from tripwire._data_collection import filter_query_string
from tripwire._enums import SPANTEMPLATE
from tripwire.event.frames import _is_external
from tripwire.scope._current import get_current_scope, get_isolation_scope
from tripwire.scope._scope import Scope
from tripwire.traces import create_streaming_span_decorator
from tripwire.traces import start_span as start_streaming_span
from tripwire.tracing._api import sdk_start_span, sdk_start_transaction
from tripwire.tracing._consts import (
    BAGGAGE_HEADER_NAME,
    LOW_QUALITY_TRANSACTION_SOURCES,
    OP,
    SENTRY_TRACE_HEADER_NAME,
    SPANDATA,
)
from tripwire.tracing._decorator import trace
from tripwire.tracing._propagation import (
    SENTRY_TRACE_REGEX,
    Baggage,
    EnvironHeaders,
    PropagationContext,
    extract_sentrytrace_data,
    match_regex_list,
    normalize_incoming_data,
    should_propagate_trace,
)
from tripwire.tracing._sampling import (
    has_span_streaming_enabled,
    has_tracing_enabled,
    is_valid_sample_rate,
)
from tripwire.tracing._span import Span
from tripwire.tracing._streamed import LOW_QUALITY_SEGMENT_SOURCES, StreamedSpan, is_ignored_span
from tripwire.utils import (
    _module_in_list,
    capture_internal_exceptions,
    filename_for_module,
    has_data_collection_enabled,
    is_sentry_url,
    logger,
    qualname_from_function,
    safe_repr,
    to_string,
    try_convert,
)

if TYPE_CHECKING:
    from tripwire._client_base import BaseClient
    from tripwire.utils import ParsedUrl


def should_truncate_gen_ai_input(options: Optional[dict[str, Any]]) -> bool:
    """Whether gen_ai inputs are cut to their last message (as sentry_sdk 2.75).

    Only when gen_ai spans go out inside their transaction (`stream_gen_ai_spans`
    off, no span streaming); no options at all means truncate.
    """
    if options is None:
        return True
    lifecycle = options.get("trace_lifecycle")
    if lifecycle is None:
        lifecycle = (options.get("_experiments") or {}).get("trace_lifecycle")
    return not options.get("stream_gen_ai_spans", True) and lifecycle != "stream"


def get_current_span(scope: object = None) -> Span | None:
    """The active span of `scope` (default: the current scope), or None."""
    target = scope if isinstance(scope, Scope) else get_current_scope()
    span = target.span
    return span if isinstance(span, Span) else None


def add_sentry_baggage_to_headers(headers: dict[str, str], sentry_baggage: str) -> None:
    """Merge our `sentry-*` baggage into an outgoing request's existing `baggage` header.

    Another SDK's `sentry-*` entries are replaced (one trace, one DSC); third-party
    entries are kept.
    """
    existing = headers.get(BAGGAGE_HEADER_NAME, "")
    kept = Baggage.strip_sentry_baggage(existing) if existing else ""
    headers[BAGGAGE_HEADER_NAME] = ",".join(part for part in (kept, sentry_baggage) if part)


def _format_sql(cursor: Any, sql: Any) -> Optional[str]:
    # psycopg2 queries may be Composed objects: the cursor renders the real text.
    real: Any = None
    try:
        if hasattr(cursor, "mogrify"):
            real = cursor.mogrify(sql)
            if isinstance(real, bytes):
                real = real.decode(cursor.connection.encoding)
    except Exception:
        real = None
    return real or to_string(sql)


def _sql_params_wanted(options: dict[str, Any]) -> bool:
    if has_data_collection_enabled(options):
        return bool(options["data_collection"].get("database_query_data"))
    return bool((options.get("_experiments") or {}).get("record_sql_params", False))


@contextmanager
def record_sql_queries(
    cursor: Any,
    query: Any,
    params_list: Any,
    paramstyle: Optional[str],
    executemany: bool,
    record_cursor_repr: bool = False,
    span_origin: str = "manual",
    span_op_override_value: Optional[str] = None,
) -> Iterator[Any]:
    """Record a database query: a ``query`` breadcrumb and a ``db`` span around the block.

    Parameters are kept only when ``_experiments={"record_sql_params": True}`` (or the
    data_collection option allows query data), as sentry_sdk 2.75. Under span streaming,
    as there: the span starts with ``db.query.text`` (named ``<unknown SQL query>``
    without a statement), is a segment of its own without a parent, and carries no
    parameters (the breadcrumb does).
    """
    client = api.get_client()
    if _sql_params_wanted(client.options):
        if not params_list or params_list == [None]:
            params_list = None
        if paramstyle == "pyformat":
            paramstyle = "format"
    else:
        params_list = None
        paramstyle = None
    text = _format_sql(cursor, query)
    data: dict[str, Any] = {}
    if params_list is not None:
        data["db.params"] = params_list
    if paramstyle is not None:
        data["db.paramstyle"] = paramstyle
    if executemany:
        data["db.executemany"] = True
    if record_cursor_repr and cursor is not None:
        data["db.cursor"] = cursor
    with capture_internal_exceptions():
        api.add_breadcrumb(message=text, category="query", data=data)
    op = span_op_override_value if span_op_override_value is not None else OP.DB
    if has_span_streaming_enabled(client.options):
        # As sentry_sdk's streaming path: a streamed span (a segment without a parent)
        # that starts with the statement, so `traces_sampler` and `ignore_spans` see it;
        # the parameters stay on the breadcrumb. The SDK's `sdk_start_*` calls give it, so
        # the span keeps `set_data` for the callers that add connection data.
        attributes = {SPANDATA.DB_QUERY_TEXT: text} if text is not None else {}
        kwargs: dict[str, Any] = {
            "op": op,
            "name": "<unknown SQL query>" if text is None else text,
            "origin": span_origin,
            "attributes": attributes,
        }
        scope = get_current_scope()
        parent = scope._d.span or get_isolation_scope()._d.span
        if getattr(parent, "_streamed", False):
            started = sdk_start_span(**kwargs)
        else:
            started = sdk_start_transaction(**kwargs)
        with started as span:
            yield span
        return
    with sdk_start_span(op=op, name=text, origin=span_origin) as span:
        for key, value in data.items():
            span.set_data(key, value)
        yield span


def add_http_breadcrumb(status_code: Optional[int], data: dict[str, Any]) -> None:
    """Record an outgoing HTTP request as an ``httplib`` breadcrumb (level from the status)."""
    crumb: dict[str, Any] = {"type": "http", "category": "httplib", "data": data}
    if status_code:
        if 500 <= status_code <= 599:
            crumb["level"] = "error"
        elif 400 <= status_code <= 499:
            crumb["level"] = "warning"
    api.add_breadcrumb(**crumb)


def get_url_attributes(client: BaseClient, parsed_url: Optional[ParsedUrl]) -> dict[str, Any]:
    """The ``url.full`` / ``url.query`` / ``url.fragment`` data of an outgoing request.

    Only with the user's consent: the ``data_collection`` option (its query rules apply)
    or, without it, `send_default_pii`.
    """
    if parsed_url is None:
        return {}
    query: Optional[str]
    if has_data_collection_enabled(client.options):
        query = None
        if parsed_url.query:
            behaviour = client.options["data_collection"]["url_query_params"]
            query = filter_query_string(parsed_url.query, behaviour)
    elif client.should_send_default_pii():
        query = parsed_url.query
    else:
        return {}
    attributes: dict[str, Any] = {}
    full = parsed_url.url
    if query:
        attributes[SPANDATA.URL_QUERY] = query
        full += "?" + query
    if parsed_url.fragment:
        attributes[SPANDATA.URL_FRAGMENT] = parsed_url.fragment
        full += "#" + parsed_url.fragment
    attributes[SPANDATA.URL_FULL] = full
    return attributes


def _is_app_frame(
    frame: FrameType,
    project_root: Optional[str],
    in_app_include: Optional[list[str]],
    in_app_exclude: Optional[list[str]],
) -> bool:
    path = frame.f_code.co_filename
    module = frame.f_globals.get("__name__")
    if isinstance(module, str) and module.startswith(("tripwire.", "sentry_sdk.")):
        return False
    if _module_in_list(module, in_app_include):
        return True
    external = _is_external(path)
    if external or _module_in_list(module, in_app_exclude):
        return False
    return project_root is not None and path.startswith(project_root)


# The code location's keys on a streamed span (sentry_sdk 2.75's streaming names).
_STREAMED_SOURCE_KEYS = {
    SPANDATA.CODE_LINENO: SPANDATA.CODE_LINE_NUMBER,
    SPANDATA.CODE_FILEPATH: SPANDATA.CODE_FILE_PATH,
}


def add_source(
    span: Any,
    project_root: Optional[str],
    in_app_include: Optional[list[str]],
    in_app_exclude: Optional[list[str]],
) -> None:
    """Set ``code.*`` data on `span`: the innermost application frame of the caller's stack.

    A streamed span gets them as attributes (``code.line.number``, ``code.file.path``,
    ``code.namespace``, ``code.function``).
    """
    frame: Optional[FrameType] = sys._getframe()
    while frame is not None:
        try:
            if _is_app_frame(frame, project_root, in_app_include, in_app_exclude):
                break
        except Exception:  # a frame that cannot be inspected is not the app's
            pass
        frame = frame.f_back
    if frame is None:
        return
    if getattr(span, "_streamed", False):

        def put(key: str, value: Any) -> None:
            if value is not None:  # an attribute has a value
                span.set_attribute(_STREAMED_SOURCE_KEYS.get(key, key), value)

    else:
        put = span.set_data
    put(SPANDATA.CODE_LINENO, frame.f_lineno)
    namespace = frame.f_globals.get("__name__")
    if namespace is not None:
        put(SPANDATA.CODE_NAMESPACE, namespace)
    path = frame.f_code.co_filename
    if namespace is not None:
        shown = filename_for_module(namespace, path)
    elif project_root is not None and path.startswith(project_root):
        shown = path.replace(project_root, "").lstrip(os.sep)
    else:
        shown = path
    put(SPANDATA.CODE_FILEPATH, shown)
    put(SPANDATA.CODE_FUNCTION, frame.f_code.co_name)


def _add_source_if_slow(span: Any, enabled_option: str, threshold_option: str) -> None:
    client = api.get_client()
    if not client.is_active():
        return
    if getattr(span, "_streamed", False):
        # A streamed span is measured up to now: its attributes must be set before it ends.
        end: Optional[datetime] = span.end_timestamp
    else:
        end = span.timestamp
        if end is None:
            return
    start = span.start_timestamp
    if start is None:
        return
    options = client.options
    if not options.get(enabled_option, True):
        return
    elapsed_ms = ((end or datetime.now(timezone.utc)) - start) / timedelta(milliseconds=1)
    if elapsed_ms <= options.get(threshold_option, 0):
        return
    add_source(
        span,
        project_root=options.get("project_root"),
        in_app_include=options.get("in_app_include"),
        in_app_exclude=options.get("in_app_exclude"),
    )


def add_query_source(span: Any) -> None:
    """`add_source` for a finished database span slower than ``db_query_source_threshold_ms``
    (a streamed span: one still running, measured up to now)."""
    _add_source_if_slow(span, "enable_db_query_source", "db_query_source_threshold_ms")


def add_http_request_source(span: Any) -> None:
    """`add_source` for a finished HTTP client span slower than the request threshold
    (a streamed span: one still running, measured up to now)."""
    _add_source_if_slow(span, "enable_http_request_source", "http_request_source_threshold_ms")


def propagate_trace_headers(client: BaseClient, request: Any) -> None:
    """Add ``sentry-trace`` and ``baggage`` to an outgoing request (with ``url`` and
    ``headers``) if its URL matches ``trace_propagation_targets``."""
    if not hasattr(request, "url") or not hasattr(request, "headers"):
        logger.warning("cannot propagate trace headers: the request has no url or headers")
        return
    if not should_propagate_trace(client, str(request.url)):
        return
    for key, value in api.get_current_scope().iter_trace_propagation_headers():
        if key == BAGGAGE_HEADER_NAME:
            add_sentry_baggage_to_headers(request.headers, value)
        else:
            request.headers[key] = value


def create_span_decorator(
    op: Optional[str] = None,
    name: Optional[str] = None,
    attributes: Optional[dict[str, Any]] = None,
    template: Any = SPANTEMPLATE.DEFAULT,
) -> Any:
    """The decorator `@trace(op=..., name=..., attributes=...)` builds (as in sentry_sdk)."""
    return trace(op=op, name=name, attributes=attributes, template=template)


__all__ = [
    "BAGGAGE_HEADER_NAME",
    "LOW_QUALITY_SEGMENT_SOURCES",
    "LOW_QUALITY_TRANSACTION_SOURCES",
    "OP",
    "SENTRY_TRACE_HEADER_NAME",
    "SENTRY_TRACE_REGEX",
    "SPANDATA",
    "SPANTEMPLATE",
    "Baggage",
    "EnvironHeaders",
    "PropagationContext",
    "StreamedSpan",
    "add_http_breadcrumb",
    "add_http_request_source",
    "add_query_source",
    "add_sentry_baggage_to_headers",
    "add_source",
    "create_span_decorator",
    "create_streaming_span_decorator",
    "extract_sentrytrace_data",
    "filename_for_module",
    "get_current_span",
    "get_url_attributes",
    "has_span_streaming_enabled",
    "has_tracing_enabled",
    "is_ignored_span",
    "is_sentry_url",
    "is_valid_sample_rate",
    "match_regex_list",
    "normalize_incoming_data",
    "propagate_trace_headers",
    "qualname_from_function",
    "record_sql_queries",
    "safe_repr",
    "should_propagate_trace",
    "should_truncate_gen_ai_input",
    "start_streaming_span",
    "to_string",
    "try_convert",
]
