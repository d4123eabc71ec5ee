"""asyncpg: spans and breadcrumbs for the queries and connects of asyncpg connections.

As sentry_sdk 2.75's ``asyncpg`` integration (origin ``auto.db.asyncpg``):

- `Connection.execute` without arguments (a script), `fetch` / `fetchrow` /
  `fetchval` / `execute` with arguments (through `Connection._execute`),
  `executemany` (``db.executemany``) and `prepare`: a ``query`` breadcrumb and a
  ``db`` span named by the statement (whitespace runs made one space), with
  ``db.system`` ``postgresql``, ``db.driver.name`` ``asyncpg``, ``server.address``,
  ``server.port``, ``db.name`` and ``db.user``; the query's code location when slower
  than ``db_query_source_threshold_ms``; ``internal_error`` if it raises;
- cursors: a span per fetch, op ``db.cursor.iter`` (``async for``) or
  ``db.cursor.fetch`` (`Cursor.fetch`), with the cursor as ``db.cursor``;
- opening a connection: a ``connect`` breadcrumb and ``db`` span ``connect``.

Query arguments are sent only with ``AsyncPGIntegration(record_params=True)`` *and*
the SDK's permission for query data (`_common.db.params_wanted`: the
``data_collection`` option, else ``_experiments={"record_sql_params": True}``), as
sentry_sdk 2.75 does. Statements of a `PreparedStatement` (after `prepare`) get no
span, as in sentry_sdk.

Under span streaming the spans are sentry_sdk 2.75's streaming ones (`_common.db`;
``db.system.name``, ``db.namespace``); a ``connect`` outside a span makes no span, and
its breadcrumb's data are the span's attributes.

The methods are patched when asyncpg is imported (nothing imports it here), undone by
`tripwire.testing.reset()`, and fall through when the active client lacks this
integration. Unlike sentry_sdk (which takes the first two characters of the path as
address and port), a connection over a Unix socket gets ``server.socket.address``.
"""

from __future__ import annotations

import functools
import re
from types import ModuleType
from typing import Any, Callable, Optional

from tripwire.api import add_breadcrumb
from tripwire.consts import OP, SPANDATA
from tripwire.integrations import DidNotEnable, Integration, _check_minimum_version
from tripwire.integrations._common._hooks import when_imported
from tripwire.integrations._common.web import streamed
from tripwire.options import span_streaming_enabled
from tripwire.scope._current import get_client, get_current_scope
from tripwire.tracing._api import sdk_start_span

ORIGIN = "auto.db.asyncpg"
_MARK = "__tripwire_asyncpg__"
_SPACES = re.compile(r"\s+")
# `_common.db`, bound when asyncpg is imported: it loads the tracing helpers, which
# `init()` alone does not need.
_db: Any = None

# asyncpg's cursor classes, once it is imported.
_Cursor: Any = None
_CursorIterator: Any = None


class AsyncPGIntegration(Integration):
    """Spans and breadcrumbs for asyncpg queries and connects.

    Args:
        record_params: Send query arguments (also needs the SDK's permission for query
            data, as sentry_sdk 2.75).
    """

    identifier = "asyncpg"
    origin = ORIGIN
    # A class attribute, as sentry_sdk: the last instance made decides.
    _record_params = False

    def __init__(self, *, record_params: bool = False) -> None:
        AsyncPGIntegration._record_params = record_params

    @staticmethod
    def setup_once() -> None:
        """Patch asyncpg's connection and cursor methods once asyncpg is imported.

        Raises:
            DidNotEnable: asyncpg is not installed, or older than 0.23.
        """
        import importlib.util

        from tripwire.utils import package_version

        if importlib.util.find_spec("asyncpg") is None:
            raise DidNotEnable("asyncpg not installed.")
        _check_minimum_version(AsyncPGIntegration, package_version("asyncpg"), "asyncpg")
        when_imported("asyncpg", _patch_asyncpg)


def _patch_asyncpg(module: ModuleType) -> None:
    from asyncpg import connect_utils, cursor

    from tripwire.integrations._common import db
    from tripwire.integrations._patch import patch_once

    global _Cursor, _CursorIterator, _db
    _db = db
    _Cursor, _CursorIterator = cursor.Cursor, cursor.CursorIterator
    connection = module.Connection
    patch_once(connection, "execute", _wrap_execute, _MARK)
    patch_once(connection, "_execute", _wrap_connection_method, _MARK)
    patch_once(connection, "_executemany", _wrap_executemany, _MARK)
    patch_once(connection, "prepare", _wrap_connection_method, _MARK)
    patch_once(cursor.BaseCursor, "_bind_exec", _wrap_cursor_method, _MARK)
    patch_once(cursor.BaseCursor, "_exec", _wrap_cursor_method, _MARK)
    patch_once(connect_utils, "_connect_addr", _wrap_connect_addr, _MARK)


def _normalize(query: Any) -> Any:
    try:
        return _SPACES.sub(" ", query).strip()
    except Exception:
        return query


def _begin(
    query: Any,
    params: Any,
    executemany: bool,
    cursor: Any,
    op: str,
    connection: Any,
) -> Optional[Any]:
    """The entered span of a query (None if instrumentation failed).

    `connection` None: no connection data (sentry_sdk sets none on `execute` scripts).
    """
    try:
        if not AsyncPGIntegration._record_params:
            params = None
        db = _db
        data = db.query_data(
            get_client().options, params, "pyformat" if params else None, executemany
        )
        if cursor is not None:
            data["db.cursor"] = cursor
        span = db.begin_query(_normalize(query), data, ORIGIN, op)
        if connection is not None:
            _set_db_data(span, connection)
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


def _wrap_execute(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def execute(*args: Any, **kwargs: Any) -> Any:
        # With arguments, `execute` goes through `_execute` (recorded there).
        if len(args) > 2 or get_client().get_integration(AsyncPGIntegration) is None:
            return await original(*args, **kwargs)
        span = _begin(args[1], None, False, None, OP.DB, None)
        return await _run(span, original, args, kwargs)

    return execute


def _wrap_query(original: Callable[..., Any], executemany: bool) -> Callable[..., Any]:
    @functools.wraps(original)
    async def run(*args: Any, **kwargs: Any) -> Any:
        if get_client().get_integration(AsyncPGIntegration) is None:
            return await original(*args, **kwargs)
        params = args[2] if len(args) > 2 else None
        span = _begin(args[1], params, executemany, None, OP.DB, args[0])
        return await _run(span, original, args, kwargs)

    return run


def _wrap_connection_method(original: Callable[..., Any]) -> Callable[..., Any]:
    return _wrap_query(original, executemany=False)


def _wrap_executemany(original: Callable[..., Any]) -> Callable[..., Any]:
    return _wrap_query(original, executemany=True)


def _wrap_cursor_method(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def run(*args: Any, **kwargs: Any) -> Any:
        if get_client().get_integration(AsyncPGIntegration) is None:
            return await original(*args, **kwargs)
        cursor = args[0]
        kind = type(cursor)
        if kind is _CursorIterator:
            op = OP.DB_CURSOR_ITERATOR
        elif kind is _Cursor:
            op = OP.DB_CURSOR_FETCH
        else:
            op = OP.DB
        # Cursor queries never carry their arguments (as sentry_sdk).
        span = _begin(cursor._query, None, False, cursor, op, cursor._connection)
        return await _run(span, original, args, kwargs)

    return run


def _wrap_connect_addr(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def connect_addr(*args: Any, **kwargs: Any) -> Any:
        if get_client().get_integration(AsyncPGIntegration) is None:
            return await original(*args, **kwargs)
        try:
            params = kwargs["params"]
            found: dict[str, Any] = {SPANDATA.DB_SYSTEM: "postgresql"}
            _set_address(found, kwargs.get("addr"))
            found[SPANDATA.DB_NAME] = params.database
            found[SPANDATA.DB_USER] = params.user
            found[SPANDATA.DB_DRIVER_NAME] = "asyncpg"
        except Exception:
            return await original(*args, **kwargs)
        if span_streaming_enabled(get_client().options):
            return await _connect_streamed(found, original, args, kwargs)
        with sdk_start_span(op=OP.DB, name="connect", origin=ORIGIN) as span:
            for key, value in found.items():
                span.set_data(key, value)
            try:
                # sentry_sdk's breadcrumb carries the span's data, its thread included.
                from tripwire.tracing._span import _thread_data

                data = _thread_data()
                data.update(found)
                add_breadcrumb(message="connect", category=_db.QUERY, data=data)
            except Exception:
                pass
            return await original(*args, **kwargs)

    return connect_addr


async def _connect_streamed(
    found: dict[str, Any], original: Callable[..., Any], args: Any, kwargs: Any
) -> Any:
    """sentry_sdk 2.75 under streaming: the span's attributes are the breadcrumb's data
    (no thread), and no span is made outside a span."""
    attributes: dict[str, Any] = {"sentry.op": OP.DB, "sentry.origin": ORIGIN}
    attributes.update(_db.streamed_names(found))
    try:
        add_breadcrumb(message="connect", category=_db.QUERY, data=attributes)
    except Exception:
        pass
    if get_current_scope()._d.span is None:
        return await original(*args, **kwargs)
    with sdk_start_span(op=OP.DB, name="connect", origin=ORIGIN) as span:
        if (stream := streamed(span)) is not None:
            stream.set_attributes(attributes)
        return await original(*args, **kwargs)


def _set_address(data: dict[str, Any], addr: Any) -> None:
    if not addr:
        return
    if isinstance(addr, str):  # a Unix socket's path
        data[SPANDATA.SERVER_SOCKET_ADDRESS] = addr
        return
    try:
        data[SPANDATA.SERVER_ADDRESS] = addr[0]
        data[SPANDATA.SERVER_PORT] = addr[1]
    except (IndexError, TypeError):
        pass


def _set_db_data(span: Any, connection: Any) -> None:
    found: dict[str, Any] = {SPANDATA.DB_SYSTEM: "postgresql", SPANDATA.DB_DRIVER_NAME: "asyncpg"}
    _set_address(found, connection._addr)
    params = connection._params
    if params.database:
        found[SPANDATA.DB_NAME] = params.database
    if params.user:
        found[SPANDATA.DB_USER] = params.user
    _db.set_connection_data(span, found)


__all__ = ["AsyncPGIntegration"]
