"""SQLAlchemy: a span and a breadcrumb for every statement an `Engine` sends.

As sentry_sdk 2.75's ``sqlalchemy`` integration, through SQLAlchemy's own engine
events (``before_cursor_execute``, ``after_cursor_execute``, ``handle_error``) on the
`Engine` class, so sync engines and the engines inside `AsyncEngine` alike:

- a ``query`` breadcrumb whose message is the statement (``db.executemany`` for an
  ``executemany``; parameters only as `_common.db.params_wanted` allows);
- a ``db`` span named by the statement, origin ``auto.db.sqlalchemy``, with
  ``db.system`` (from the dialect's name: sqlite, postgresql, mysql...),
  ``db.driver.name`` (the DBAPI driver), ``db.name``, ``server.address`` and
  ``server.port`` as the engine's URL has them; the query's code location when
  slower than ``db_query_source_threshold_ms``;
- a statement that fails ends its span with status ``internal_error`` (no code
  location: SQLAlchemy reports no end for it).

Under span streaming the span is sentry_sdk 2.75's streaming one (`_common.db`), its
connection data ``db.system.name`` and ``db.namespace``.

The listeners are added when SQLAlchemy is imported (nothing imports it here) and
removed by `tripwire.testing.reset()`; they return at once when the active client lacks
this integration. Unlike sentry_sdk's, a span whose query started under this
integration is finished even if the client changed meanwhile.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any, Optional

from tripwire.consts import SPANDATA, SPANSTATUS
from tripwire.integrations import DidNotEnable, Integration, _check_minimum_version
from tripwire.integrations._common._hooks import when_imported
from tripwire.scope._current import get_client

ORIGIN = "auto.db.sqlalchemy"
# `_common.db`, bound when SQLAlchemy is imported: it loads the tracing helpers, which
# `init()` alone does not need.
_db: Any = None
# The execution context's attribute holding the query's span.
_SPAN = "_tripwire_sql_span"

# sentry_sdk's `db.system` for a dialect name: the first of these found in it.
_SYSTEMS = (
    ("sqlite", "sqlite"),
    ("postgres", "postgresql"),
    ("mariadb", "mariadb"),
    ("mysql", "mysql"),
    ("oracle", "oracle"),
    ("snowflake", "snowflake"),
    ("clickhouse", "clickhouse"),
    ("mongodb", "mongodb"),
    ("cockroachdb", "cockroachdb"),
)


class SqlalchemyIntegration(Integration):
    """Spans and breadcrumbs for the statements of SQLAlchemy engines."""

    identifier = "sqlalchemy"
    origin = ORIGIN

    @staticmethod
    def setup_once() -> None:
        """Listen to `Engine`'s cursor events once SQLAlchemy is imported.

        Raises:
            DidNotEnable: SQLAlchemy is not installed, or older than 1.2.
        """
        import importlib.util

        from tripwire.utils import package_version

        if importlib.util.find_spec("sqlalchemy") is None:
            raise DidNotEnable("SQLAlchemy not installed.")
        _check_minimum_version(SqlalchemyIntegration, package_version("sqlalchemy"), "SQLAlchemy")
        when_imported("sqlalchemy", _listen)


def _listen(module: ModuleType) -> None:
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    from tripwire.integrations._common import db
    from tripwire.integrations._patch import on_undo

    global _db
    _db = db
    listeners = (
        ("before_cursor_execute", _before_cursor_execute),
        ("after_cursor_execute", _after_cursor_execute),
        ("handle_error", _handle_error),
    )
    for name, listener in listeners:
        if not event.contains(Engine, name, listener):
            event.listen(Engine, name, listener)

    def remove() -> None:
        for name, listener in listeners:
            if event.contains(Engine, name, listener):
                event.remove(Engine, name, listener)

    on_undo(remove)


def _before_cursor_execute(
    conn: Any,
    cursor: Any,
    statement: Any,
    parameters: Any,
    context: Any,
    executemany: bool,
    *args: Any,
) -> None:
    client = get_client()
    if client.get_integration(SqlalchemyIntegration) is None or context is None:
        return
    try:
        dialect = context.dialect
        db = _db
        data = db.query_data(
            client.options,
            parameters,
            dialect.paramstyle if dialect is not None else None,
            executemany,
        )
        span = db.begin_query(db.statement_text(cursor, statement), data, ORIGIN)
        setattr(context, _SPAN, span)
        _set_db_data(span, conn)
    except Exception:  # instrumentation must not break the query
        pass


def _after_cursor_execute(
    conn: Any, cursor: Any, statement: Any, parameters: Any, context: Any, *args: Any
) -> None:
    try:
        span = context.__dict__.pop(_SPAN, None)
    except Exception:
        return
    if span is not None:
        try:
            _db.end_query(span)
        except Exception:
            pass


def _handle_error(exception_context: Any, *args: Any) -> None:
    # No `after_cursor_execute` comes for a statement that failed.
    try:
        span = exception_context.execution_context.__dict__.pop(_SPAN, None)
    except Exception:
        return
    if span is not None:
        try:
            span.set_status(SPANSTATUS.INTERNAL_ERROR)
            span.__exit__(None, None, None)
        except Exception:
            pass


def _db_system(name: Any) -> Optional[str]:
    name = str(name)
    for part, system in _SYSTEMS:
        if part in name:
            return system
    return None


def _set_db_data(span: Any, conn: Any) -> None:
    # sentry_sdk's keys, in its order (a streamed span: their streaming names).
    engine = conn.engine
    found: dict[str, Any] = {}
    system = _db_system(engine.name)
    if system is not None:
        found[SPANDATA.DB_SYSTEM] = system
    try:
        driver = conn.dialect.driver
        if driver:
            found[SPANDATA.DB_DRIVER_NAME] = driver
    except Exception:
        pass
    url = engine.url
    if url is not None:
        database = url.database
        if database is not None:
            found[SPANDATA.DB_NAME] = database
        host = url.host
        if host is not None:
            found[SPANDATA.SERVER_ADDRESS] = host
        port = url.port
        if port is not None:
            found[SPANDATA.SERVER_PORT] = port
    _db.set_connection_data(span, found)


__all__ = ["SqlalchemyIntegration"]
