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

The core's `tracing_utils.record_sql_queries` / `add_query_source` stay the public,
sentry_sdk-shaped helpers; these are their hot-path form (one function call each, the
duration compared on the span's float clock).
"""

from __future__ import annotations

from typing import Any, Optional

from tripwire.api import add_breadcrumb, start_span
from tripwire.consts import OP
from tripwire.scope._current import get_client
from tripwire.tracing_utils import _format_sql, add_source
from tripwire.utils import has_data_collection_enabled

QUERY = "query"  # the breadcrumb category of every query


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
    span = start_span(op=op, name=text, origin=origin)
    for key, value in data.items():
        span.set_data(key, value)
    span.__enter__()
    return span


def end_query(span: Any) -> None:
    """Finish the span entered by `begin_query`; add the query source if it was slow."""
    span.__exit__(None, None, None)
    add_source_if_slow(span)


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
    "statement_text",
]
