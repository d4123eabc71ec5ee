"""aiomysql integration: spans and breadcrumbs for MySQL queries and connects.

As sentry_sdk 2.75's ``aiomysql`` integration:

- `Cursor.execute` / `Cursor.executemany`: a ``query`` breadcrumb and a ``db`` span
  named by the statement (whitespace collapsed), origin ``auto.db.aiomysql``, with
  ``db.system`` ``mysql``, ``db.driver.name``, ``server.address`` / ``server.port``,
  ``db.name`` and ``db.user`` of the connection; ``db.executemany`` for the second.
  The statements `executemany` runs through `execute` are not recorded again.
  Parameters go along only when allowed: the ``data_collection`` option's
  ``database_query_data``, else ``record_params=True`` and
  ``_experiments={"record_sql_params": True}``;
- `Connection._connect` (connect, pools, reconnects): a ``connect`` span and
  breadcrumb with the connection's data.

Under span streaming the spans are sentry_sdk 2.75's streaming ones (`_common.db`;
``db.system.name``, ``db.namespace``, on the connect breadcrumb too); a ``connect``
outside a span makes no span.

The classes are patched when aiomysql is imported (at once if it is); set-up raises
`DidNotEnable` if aiomysql is missing or older than 0.3.0.
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import Any, Callable, Optional

from tripwire.consts import OP, SPANDATA
from tripwire.integrations import DidNotEnable, Integration, _check_minimum_version
from tripwire.integrations._common._hooks import when_imported
from tripwire.integrations._common.web import streamed
from tripwire.options import span_streaming_enabled
from tripwire.scope._current import get_client, get_current_scope
from tripwire.utils import has_data_collection_enabled

ORIGIN = "auto.db.aiomysql"
_MARK = "__tripwire_aiomysql__"
# Set on a cursor while `executemany` runs: the `execute` calls it makes are its own.
_IN_EXECUTEMANY = "_tripwire_in_executemany"
# `_common.db`, bound when aiomysql is imported (it loads the tracing helpers).
_db: Any = None


class AioMySQLIntegration(Integration):
    """Spans and breadcrumbs for aiomysql queries and connects.

    Args:
        record_params: Send query arguments (see the module docstring).
    """

    identifier = "aiomysql"
    origin = ORIGIN
    # A class attribute, as sentry_sdk: the last instance made decides.
    _record_params = False

    def __init__(self, *, record_params: bool = False) -> None:
        AioMySQLIntegration._record_params = record_params

    @staticmethod
    def setup_once() -> None:
        """Patch aiomysql's cursor and connection once aiomysql is imported.

        Raises:
            DidNotEnable: aiomysql is not installed, or older than 0.3.0.
        """
        import importlib.util

        from tripwire.utils import package_version

        if importlib.util.find_spec("aiomysql") is None:
            raise DidNotEnable("aiomysql not installed.")
        _check_minimum_version(AioMySQLIntegration, package_version("aiomysql"), "aiomysql")
        when_imported("aiomysql", _patch_aiomysql)


def _patch_aiomysql(_module: ModuleType) -> None:
    import importlib

    from tripwire.integrations._common import db
    from tripwire.integrations._patch import patch_once

    global _db
    _db = db
    # By name: aiomysql ships no type information.
    connection = importlib.import_module("aiomysql.connection")
    cursors = importlib.import_module("aiomysql.cursors")
    patch_once(cursors.Cursor, "execute", _wrap_execute, _MARK)
    patch_once(cursors.Cursor, "executemany", _wrap_executemany, _MARK)
    patch_once(connection.Connection, "_connect", _wrap_connect, _MARK)


def _normalize(query: Any) -> str:
    if isinstance(query, (bytes, bytearray)):
        query = query.decode("utf-8", errors="replace")
    return " ".join(str(query).split())


def _params_allowed(options: dict[str, Any]) -> bool:
    if has_data_collection_enabled(options):
        return bool(options["data_collection"].get("database_query_data"))
    return AioMySQLIntegration._record_params


def _begin(cursor: Any, query: Any, params: Any, executemany: bool) -> Optional[Any]:
    """The entered span of a query (None if instrumentation failed)."""
    try:
        options = get_client().options
        if not _params_allowed(options):
            params = None
        db = _db
        data = db.query_data(options, params, "pyformat" if params else None, executemany)
        span = db.begin_query(_normalize(query), data, ORIGIN)
        connection = getattr(cursor, "connection", None)
        if connection is not None:
            db.set_connection_data(span, _connection_data(connection))
        return span
    except Exception:
        return None


async def _run(span: Optional[Any], original: Callable[..., Any], args: Any, kwargs: Any) -> Any:
    if span is None:
        return await original(*args, **kwargs)
    try:
        result = await original(*args, **kwargs)
    except BaseException as exc:
        span.__exit__(type(exc), exc, exc.__traceback__)
        raise
    _db.end_query(span)
    return result


def _query_and_params(args: Any, kwargs: Any, params_name: str) -> tuple[Any, Any]:
    query = args[1] if len(args) > 1 else kwargs.get("query", "")
    params = args[2] if len(args) > 2 else kwargs.get(params_name)
    return query, params


def _wrap_execute(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def execute(*args: Any, **kwargs: Any) -> Any:
        if get_client().get_integration(AioMySQLIntegration) is None:
            return await original(*args, **kwargs)
        cursor = args[0]
        if getattr(cursor, _IN_EXECUTEMANY, False):
            return await original(*args, **kwargs)
        query, params = _query_and_params(args, kwargs, "args")
        return await _run(_begin(cursor, query, params, False), original, args, kwargs)

    return execute


def _wrap_executemany(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def executemany(*args: Any, **kwargs: Any) -> Any:
        if get_client().get_integration(AioMySQLIntegration) is None:
            return await original(*args, **kwargs)
        cursor = args[0]
        query, params = _query_and_params(args, kwargs, "args")
        span = _begin(cursor, query, params, True)
        try:
            setattr(cursor, _IN_EXECUTEMANY, True)
        except Exception:
            pass
        try:
            return await _run(span, original, args, kwargs)
        finally:
            try:
                setattr(cursor, _IN_EXECUTEMANY, False)
            except Exception:
                pass

    return executemany


def _wrap_connect(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def connect(self: Any, *args: Any, **kwargs: Any) -> Any:
        if get_client().get_integration(AioMySQLIntegration) is None:
            return await original(self, *args, **kwargs)
        from tripwire.api import add_breadcrumb
        from tripwire.tracing._api import sdk_start_span

        try:
            found = _connection_data(self)
            if span_streaming_enabled(get_client().options):
                return await _connect_streamed(self, found, original, args, kwargs)
        except Exception:
            return await original(self, *args, **kwargs)
        with sdk_start_span(op=OP.DB, name="connect", origin=ORIGIN) as span:
            for key, value in found.items():
                span.set_data(key, value)
            try:
                add_breadcrumb(message="connect", category="query", data=dict(found))
            except Exception:
                pass
            return await original(self, *args, **kwargs)

    return connect


async def _connect_streamed(
    connection: Any, found: dict[str, Any], original: Callable[..., Any], args: Any, kwargs: Any
) -> Any:
    """sentry_sdk 2.75 under streaming: streaming names, and no span outside a span."""
    from tripwire.api import add_breadcrumb
    from tripwire.tracing._api import sdk_start_span

    found = _db.streamed_names(found)
    try:
        add_breadcrumb(message="connect", category="query", data=dict(found))
    except Exception:
        pass
    if get_current_scope()._d.span is None:
        return await original(connection, *args, **kwargs)
    with sdk_start_span(op=OP.DB, name="connect", origin=ORIGIN) as span:
        if (stream := streamed(span)) is not None:
            stream.set_attributes(found)
        return await original(connection, *args, **kwargs)


def _connection_data(connection: Any) -> dict[str, Any]:
    data: dict[str, Any] = {SPANDATA.DB_SYSTEM: "mysql", SPANDATA.DB_DRIVER_NAME: "aiomysql"}
    for attribute, key in (
        ("host", SPANDATA.SERVER_ADDRESS),
        ("port", SPANDATA.SERVER_PORT),
        ("db", SPANDATA.DB_NAME),
        ("user", SPANDATA.DB_USER),
    ):
        value = getattr(connection, attribute, None)
        if value is not None:
            data[key] = value
    return data


__all__ = ["AioMySQLIntegration"]
