"""Database spans for Django: every query through a `CursorWrapper`, connects, commits.

As sentry_sdk 2.75: each `execute` / `executemany` gets a ``query`` breadcrumb and a
``db`` span (origin ``auto.db.django``) named by its SQL, with ``db.system`` (the
backend's vendor), ``db.name``, ``server.address``, ``server.port`` and
``server.socket.address`` as the connection has them; after it, the code location
when slower than ``db_query_source_threshold_ms``. Opening a connection gets a
``connect`` breadcrumb and span; commits and rollbacks spans with
``db_transaction_spans``.
"""

from __future__ import annotations

import functools
import inspect
from types import ModuleType
from typing import Any, Callable, Optional

from tripwire.consts import OP, SPANDATA, SPANNAME
from tripwire.integrations._common.web import streamed
from tripwire.integrations._patch import patch_once
from tripwire.integrations.django import _MARK, DjangoIntegration, _integration, _start_span
from tripwire.tracing_utils import add_query_source, record_sql_queries


def patch_cursor_wrapper(module: ModuleType) -> None:
    """`CursorWrapper.execute` and `executemany` (also used by the debug wrapper)."""
    patch_once(module.CursorWrapper, "execute", _wrap_execute, _MARK)
    patch_once(module.CursorWrapper, "executemany", _wrap_executemany, _MARK)


def patch_database_wrapper(module: ModuleType) -> None:
    """`BaseDatabaseWrapper.connect`, `_commit` and `_rollback`."""
    wrapper = module.BaseDatabaseWrapper
    patch_once(wrapper, "connect", _wrap_connect, _MARK)
    patch_once(wrapper, "_commit", lambda f: _wrap_end(f, SPANNAME.DB_COMMIT), _MARK)
    patch_once(wrapper, "_rollback", lambda f: _wrap_end(f, SPANNAME.DB_ROLLBACK), _MARK)


def _wrap_query(original: Callable[..., Any], many: bool) -> Callable[..., Any]:
    @functools.wraps(original)
    def run(self: Any, sql: Any, params: Any = None) -> Any:
        if _integration() is None:
            return original(self, sql, params)
        with record_sql_queries(
            cursor=self.cursor,
            query=sql,
            params_list=params,
            paramstyle="format",
            executemany=many,
            span_origin=DjangoIntegration.origin_db,
        ) as span:
            if span.containing_transaction is not None:
                set_db_data(span, self)
                segment = streamed(span)
                if segment is not None:  # the query text as sentry_sdk's streamed span has it
                    span.set_attribute(SPANDATA.DB_QUERY_TEXT, segment.name)
                    for key in _UNSTREAMED:
                        span.remove_attribute(key)
            result = original(self, sql, params)
        try:
            add_query_source(span)
        except Exception:
            pass
        return result

    return run


def _wrap_execute(original: Callable[..., Any]) -> Callable[..., Any]:
    return _wrap_query(original, many=False)


def _wrap_executemany(original: Callable[..., Any]) -> Callable[..., Any]:
    return _wrap_query(original, many=True)


def _wrap_connect(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def connect(self: Any) -> Any:
        if _integration() is None:
            return original(self)
        from tripwire.api import add_breadcrumb
        from tripwire.tracing._api import sdk_start_span

        try:
            add_breadcrumb(message="connect", category="query")
        except Exception:
            pass
        with sdk_start_span(op=OP.DB, name="connect", origin=DjangoIntegration.origin_db) as span:
            if span.containing_transaction is not None:
                set_db_data(span, self)
            return original(self)

    return connect


def _wrap_end(original: Callable[..., Any], name: str) -> Callable[..., Any]:
    @functools.wraps(original)
    def end(self: Any) -> Any:
        integration = _integration()
        if integration is None or not integration.db_transaction_spans:
            return original(self)
        span = _start_span(OP.DB, name, DjangoIntegration.origin_db)
        if span is None:
            return original(self)
        with span:
            set_db_data(span, self, name)
            return original(self)

    return end


# Query data sentry_sdk keeps off a streamed query span (its breadcrumb has them).
_UNSTREAMED = ("db.params", "db.paramstyle", "db.executemany")
# The vendor, operation and database name keys: span data, and streamed attributes.
_NAMES = (SPANDATA.DB_SYSTEM, SPANDATA.DB_OPERATION, SPANDATA.DB_NAME)
_STREAMED_NAMES = (SPANDATA.DB_SYSTEM_NAME, SPANDATA.DB_OPERATION_NAME, SPANDATA.DB_NAMESPACE)


def set_db_data(span: Any, cursor_or_db: Any, operation: Optional[str] = None) -> None:
    """The connection's vendor, database name and server address on `span`; never raises."""
    try:
        _set_db_data(span, cursor_or_db, operation)
    except Exception:
        pass


def _set_db_data(span: Any, cursor_or_db: Any, operation: Optional[str]) -> None:
    db = cursor_or_db.db if hasattr(cursor_or_db, "db") else cursor_or_db
    # A streamed span takes sentry_sdk's streaming names (OpenTelemetry's).
    names = _STREAMED_NAMES if streamed(span) is not None else _NAMES
    span.set_data(names[0], db.vendor)
    if operation is not None:
        span.set_data(names[1], operation)
    params = _connection_params(cursor_or_db, db)
    name = params.get("dbname") or params.get("database")
    if name is not None:
        span.set_data(names[2], name)
    host = params.get("host")
    if host is not None:
        span.set_data(SPANDATA.SERVER_ADDRESS, host)
    port = params.get("port")
    if port is not None:
        span.set_data(SPANDATA.SERVER_PORT, str(port))
    socket = params.get("unix_socket")
    if socket is not None:
        span.set_data(SPANDATA.SERVER_SOCKET_ADDRESS, socket)


def _connection_params(cursor_or_db: Any, db: Any) -> dict[str, Any]:
    connection = getattr(cursor_or_db, "connection", None)
    # psycopg2 (checked as a real routine: some backends answer any attribute).
    dsn = getattr(connection, "get_dsn_parameters", None)
    if dsn is not None and inspect.isroutine(dsn):
        found: dict[str, Any] = dsn()
        return found
    try:  # psycopg3: only the parameters needed (`get_parameters` is slow)
        info = connection.info  # type: ignore[union-attr]
        params = {"dbname": info.dbname, "port": info.port}
        host = info.host
        if host and not host.startswith("/"):  # a socket directory is not a host
            params["host"] = host
        return params
    except Exception:
        found = db.get_connection_params()
        return found
