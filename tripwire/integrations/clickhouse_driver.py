"""clickhouse-driver: a span and a breadcrumb per query of a `clickhouse_driver.Client`.

As sentry_sdk 2.75's ``clickhouse_driver`` integration (origin
``auto.db.clickhouse_driver``), for every query sent (``Connection.send_query``) and
ended (``Client.receive_result``, ``receive_end_of_query``,
``receive_end_of_insert_query``):

- inside a span, a ``db`` span named by the query (not entered: the query's span is
  not the parent of what runs while its rows are read), data ``db.query_id`` (if
  given), ``db.params``, ``db.system`` (``clickhouse``), ``db.name``,
  ``db.driver.name`` (``clickhouse-driver``), ``server.address``, ``server.port``,
  ``db.user``, and ``db.result`` (the rows);
- a ``query`` breadcrumb (message: the query) with the span's data, thread included.

Under span streaming (sentry_sdk 2.75's streaming form) the span has ``db.query.text``,
``db.system.name``, ``db.namespace``, ``db.driver.name``, ``server.address``,
``server.port`` and ``db.user`` only, and the breadcrumb the connection's data (and,
with the setting below, the result), no thread.

The query parameters, the rows an ``INSERT`` sends (a generator is followed as it is
consumed) and the result are sent only with ``send_default_pii`` or
``data_collection``'s ``database_query_data``.

Unlike sentry_sdk, whose span of a query the server rejects is never finished (and so
never sent), such a query's span ends ``internal_error``, with its breadcrumb; outside
a span no span is made (sentry_sdk makes one that is never sent), the breadcrumb is the
same. The methods are patched when ``clickhouse_driver`` is imported and fall through
when the active client lacks this integration.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from types import ModuleType
from typing import Any, Callable, Optional

from tripwire.api import add_breadcrumb
from tripwire.consts import OP, SPANDATA, SPANSTATUS
from tripwire.integrations import DidNotEnable, Integration, _check_minimum_version
from tripwire.integrations._common._hooks import when_imported
from tripwire.integrations._common.web import streamed
from tripwire.options import span_streaming_enabled
from tripwire.scope._current import get_client
from tripwire.tracing._api import start_child

ORIGIN = "auto.db.clickhouse_driver"
_MARK = "__tripwire_clickhouse_driver__"
_ATTR = "_tripwire_query"
_thread_data: Any = None  # tripwire.tracing._span._thread_data, bound at patch time


class ClickhouseDriverIntegration(Integration):
    """Spans and breadcrumbs for clickhouse-driver queries."""

    identifier = "clickhouse_driver"
    origin = ORIGIN

    @staticmethod
    def setup_once() -> None:
        """Patch clickhouse-driver's connection and client once it is imported.

        Raises:
            DidNotEnable: clickhouse-driver is not installed, or older than 0.2.0.
        """
        import importlib.util

        from tripwire.utils import package_version

        if importlib.util.find_spec("clickhouse_driver") is None:
            raise DidNotEnable("clickhouse-driver not installed.")
        _check_minimum_version(
            ClickhouseDriverIntegration, package_version("clickhouse-driver"), "clickhouse-driver"
        )
        when_imported("clickhouse_driver", _patch)


def _patch(module: ModuleType) -> None:
    from clickhouse_driver.client import Client
    from clickhouse_driver.connection import Connection

    from tripwire.integrations._patch import patch_once
    from tripwire.tracing._span import _thread_data as thread_data

    global _thread_data
    _thread_data = thread_data
    patch_once(Connection, "send_query", _wrap_send_query, _MARK)
    patch_once(Client, "send_data", _wrap_send_data, _MARK)
    for name in ("receive_result", "receive_end_of_query", "receive_end_of_insert_query"):
        if hasattr(Client, name):
            patch_once(Client, name, _wrap_end, _MARK)


class _Query:
    """One query in flight on a connection: its span (if any) and data so far."""

    __slots__ = ("data", "pii", "span", "streamed", "text")

    def __init__(
        self, text: Any, span: Any, data: dict[str, Any], pii: bool, streamed: bool = False
    ) -> None:
        self.text = text
        self.span = span
        self.data = data
        self.pii = pii
        self.streamed = streamed

    def end(self, result: Any, error: bool) -> None:
        if self.streamed:
            self._end_streamed(result, error)
            return
        data = self.data
        if self.pii and result is not None:
            data["db.result"] = result
        span = self.span
        if span is not None:
            for key, value in data.items():
                span.set_data(key, value)
            if error:
                span.set_status(SPANSTATUS.INTERNAL_ERROR)
            span.finish()
        crumb = _thread_data()
        crumb.update(data)
        add_breadcrumb(message=self.text, category="query", data=crumb)

    def _end_streamed(self, result: Any, error: bool) -> None:
        # sentry_sdk 2.75 under streaming: the span has its attributes from the start;
        # the breadcrumb has the connection's data (and the rows), no thread.
        span = self.span
        if span is not None:
            if error:
                span.set_status(SPANSTATUS.INTERNAL_ERROR)
            span.finish()
        crumb = self.data
        if self.pii:  # even a None result, as sentry_sdk 2.75 here
            crumb = {"db.result": result, **crumb}
        add_breadcrumb(message=self.text, category="query", data=crumb)


def _params_wanted(options: dict[str, Any]) -> bool:
    collection = options.get("data_collection")
    if collection and collection.get("provided_by_user"):
        return bool(collection["database_query_data"])
    return bool(options.get("send_default_pii"))


def _connection_data(connection: Any) -> dict[str, Any]:
    return {
        SPANDATA.DB_SYSTEM: "clickhouse",
        SPANDATA.DB_NAME: connection.database,
        SPANDATA.DB_DRIVER_NAME: "clickhouse-driver",
        SPANDATA.SERVER_ADDRESS: connection.host,
        SPANDATA.SERVER_PORT: connection.port,
        SPANDATA.DB_USER: connection.user,
    }


def _wrap_send_query(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def send_query(*args: Any, **kwargs: Any) -> Any:
        client = get_client()
        if client.get_integration(ClickhouseDriverIntegration) is None:
            return original(*args, **kwargs)
        connection = args[0]
        try:
            text = args[1] if len(args) > 1 else kwargs.get("query")
            query_id = args[2] if len(args) > 2 else kwargs.get("query_id")
            params = args[3] if len(args) > 3 else kwargs.get("params")
            pii = _params_wanted(client.options)
            if span_streaming_enabled(client.options):
                _send_streamed(connection, text, pii)
                return original(*args, **kwargs)
            data: dict[str, Any] = {}
            if query_id:
                data["db.query_id"] = query_id
            if params and pii:
                data["db.params"] = params
            data.update(_connection_data(connection))
            span = start_child(op=OP.DB, name=text, origin=ORIGIN)
            setattr(connection, _ATTR, _Query(text, span, data, pii))
        except Exception:
            pass
        return original(*args, **kwargs)

    return send_query


def _send_streamed(connection: Any, text: Any, pii: bool) -> None:
    """sentry_sdk 2.75's streaming span: no query id, parameters or rows on it."""
    data = _connection_data(connection)
    # The query at start, as sentry_sdk's: `ignore_spans` sees it.
    span = start_child(
        op=OP.DB, name=text, origin=ORIGIN, attributes={SPANDATA.DB_QUERY_TEXT: str(text)}
    )
    if (stream := streamed(span)) is not None:
        stream.set_attributes(
            {
                SPANDATA.DB_QUERY_TEXT: str(text),
                SPANDATA.DB_SYSTEM_NAME: "clickhouse",
                SPANDATA.DB_NAMESPACE: connection.database,
                SPANDATA.DB_DRIVER_NAME: "clickhouse-driver",
                SPANDATA.SERVER_ADDRESS: connection.host,
                SPANDATA.SERVER_PORT: connection.port,
                SPANDATA.DB_USER: connection.user,
            }
        )
    setattr(connection, _ATTR, _Query(text, span, data, pii, streamed=True))


def _wrap_send_data(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def send_data(self: Any, sample_block: Any, data: Any, *args: Any, **kwargs: Any) -> Any:
        query: Optional[_Query] = getattr(self.connection, _ATTR, None)
        if query is not None and query.pii and not query.streamed:
            try:
                found = query.data.get("db.params")
                rows: list[Any] = found if isinstance(found, list) else []
                query.data["db.params"] = rows
                if isinstance(data, (list, tuple)):
                    rows.extend(data)
                else:  # an iterator: the rows are kept as clickhouse-driver reads them
                    data = _following(data, rows)
            except Exception:
                pass
        return original(self, sample_block, data, *args, **kwargs)

    return send_data


def _following(rows: Any, kept: list[Any]) -> Iterator[Any]:
    for row in rows:
        kept.append(row)
        yield row


def _wrap_end(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def end(self: Any, *args: Any, **kwargs: Any) -> Any:
        connection = self.connection
        query: Optional[_Query] = getattr(connection, _ATTR, None)
        if query is None:
            return original(self, *args, **kwargs)
        try:
            result = original(self, *args, **kwargs)
        except BaseException:
            _end(connection, query, None, True)
            raise
        _end(connection, query, result, False)
        return result

    return end


def _end(connection: Any, query: _Query, result: Any, error: bool) -> None:
    try:
        setattr(connection, _ATTR, None)
        query.end(result, error)
    except Exception:
        pass


__all__ = ["ClickhouseDriverIntegration"]
