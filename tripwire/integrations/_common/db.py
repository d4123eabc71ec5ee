"""Database queries: the rules the database integrations share (SQLAlchemy, asyncpg).

What sentry_sdk 2.75's `record_sql_queries` and `add_query_source` do for a query,
split in two calls so that a library that reports a query through two events
(SQLAlchemy's ``before_cursor_execute`` / ``after_cursor_execute``) needs no context
manager kept open between them:

- `begin_query`: a ``query`` breadcrumb (message: the statement) and a span (``db``
  unless told) named by the statement, entered (the scope's active span while the
  query runs). Parameters go to the breadcrumb and span (``db.params``,
  ``db.paramstyle``) only when `params_wanted` (the ``data_collection`` option's
  ``database_query_data``, else ``_experiments={"record_sql_params": True}``);
- `end_query`: the span finished, then, if it took longer than
  ``db_query_source_threshold_ms`` (and ``enable_db_query_source``, on by default),
  the code location of the query (``code.lineno``, ``code.namespace``,
  ``code.filepath``, ``code.function``: `tripwire.tracing_utils.add_source`).

Under span streaming (``trace_lifecycle="stream"``) the span is as sentry_sdk 2.75's
streaming `record_sql_queries` makes it: the statement as ``db.query.text`` (the name
``<unknown SQL query>`` without one; both given at start, so `traces_sampler` and
`ignore_spans` see them), the parameters on the breadcrumb only, and the
code location (``code.line.number``, ``code.file.path``, ...) set before the span
ends, measured up to then.

The core's `tracing_utils.record_sql_queries` / `add_query_source` stay the public,
sentry_sdk-shaped helpers; these are their hot-path form (one function call each, the
duration compared on the span's float clock).
"""

from __future__ import annotations

from typing import Any, Optional

from tripwire.api import add_breadcrumb
from tripwire.consts import OP, SPANDATA
from tripwire.integrations._common.start_attributes import child_start
from tripwire.integrations._common.web import streamed
from tripwire.options import span_streaming_enabled
from tripwire.scope._current import get_client
from tripwire.tracing._api import sdk_start_span, sdk_start_transaction
from tripwire.tracing_utils import _format_sql, add_query_source, add_source
from tripwire.utils import has_data_collection_enabled

QUERY = "query"  # the breadcrumb category of every query
UNKNOWN = "<unknown SQL query>"  # a streamed query span's name without a statement


def params_wanted(options: dict[str, Any]) -> bool:
    """Whether query parameters may be sent, as sentry_sdk 2.75 decides."""
    if has_data_collection_enabled(options):
        return bool(options["data_collection"].get("database_query_data"))
    experiments = options.get("_experiments")
    return bool(experiments and experiments.get("record_sql_params", False))


def query_data(
    options: dict[str, Any], params: Any, paramstyle: Optional[str], executemany: bool
) -> dict[str, Any]:
    """The breadcrumb (and span) data of a query: parameters only when allowed."""
    data: dict[str, Any] = {}
    if params_wanted(options):
        if params and params != [None]:
            data["db.params"] = params
        if paramstyle is not None:
            data["db.paramstyle"] = "format" if paramstyle == "pyformat" else paramstyle
    if executemany:
        data["db.executemany"] = True
    return data


def statement_text(cursor: Any, statement: Any) -> Optional[str]:
    """The statement as sent (psycopg2 renders its `Composed` queries)."""
    if cursor is None:
        return statement if type(statement) is str else _format_sql(None, statement)
    return _format_sql(cursor, statement)


def begin_query(text: Optional[str], data: dict[str, Any], origin: str, op: str = OP.DB) -> Any:
    """Record the query's breadcrumb, then start and enter its span (returned)."""
    try:
        add_breadcrumb(message=text, category=QUERY, data=data)
    except Exception:
        pass
    # A streamed span starts with its name and statement, as sentry_sdk's
    # (`traces_sampler` and `ignore_spans` see them).
    given = {SPANDATA.DB_QUERY_TEXT: text} if text is not None else {}
    at_start = child_start(given)
    name = UNKNOWN if text is None and at_start else text
    span = sdk_start_span(op=op, name=name, origin=origin, **at_start)
    if (
        getattr(span, "sampled", True) is None  # made without a parent
        and streamed(span) is None
        and span_streaming_enabled(get_client().options)
    ):
        # No span is active: sentry_sdk 2.75's streaming query span is then a segment
        # of its own.
        span = sdk_start_transaction(
            name=UNKNOWN if text is None else text, op=op, origin=origin, attributes=given
        )
    if (stream := streamed(span)) is not None:
        if text is None:
            stream.name = UNKNOWN
        else:
            stream.set_attribute(SPANDATA.DB_QUERY_TEXT, text)
    else:
        for key, value in data.items():
            span.set_data(key, value)
    span.__enter__()
    return span


def end_query(span: Any) -> None:
    """Finish the span entered by `begin_query`; add the query source if it was slow."""
    if streamed(span) is not None:
        try:  # a streamed span's attributes must be set before it ends
            add_query_source(span)
        except Exception:
            pass
        span.__exit__(None, None, None)
        return
    span.__exit__(None, None, None)
    add_source_if_slow(span)


# The connection data whose streamed attribute has another name (sentry_sdk 2.75).
_STREAMED_NAMES = {
    SPANDATA.DB_SYSTEM: SPANDATA.DB_SYSTEM_NAME,
    SPANDATA.DB_NAME: SPANDATA.DB_NAMESPACE,
}


def streamed_names(data: dict[str, Any]) -> dict[str, Any]:
    """Connection data with the streaming names (``db.system.name``, ``db.namespace``)."""
    return {_STREAMED_NAMES.get(key, key): value for key, value in data.items()}


def set_connection_data(span: Any, data: dict[str, Any]) -> None:
    """Connection data on a query span, under the streaming names if it is streamed."""
    if streamed(span) is not None:
        data = streamed_names(data)
    for key, value in data.items():
        span.set_data(key, value)


def add_source_if_slow(span: Any) -> None:
    """The code location of a finished query span slower than the threshold; never raises."""
    try:
        end = getattr(span, "_end", None)
        if end is None:  # a NoOpSpan, or not finished
            return
        options = get_client().options
        if not options.get("enable_db_query_source", True):
            return
        if (end - span._start) * 1000.0 <= options.get("db_query_source_threshold_ms", 0):
            return
        add_source(
            span,
            project_root=options.get("project_root"),
            in_app_include=options.get("in_app_include"),
            in_app_exclude=options.get("in_app_exclude"),
        )
    except Exception:
        pass


__all__ = [
    "QUERY",
    "add_source_if_slow",
    "begin_query",
    "end_query",
    "params_wanted",
    "query_data",
    "set_connection_data",
    "statement_text",
    "streamed_names",
]
