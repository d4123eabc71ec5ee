"""pymongo: a span and a breadcrumb per command, through pymongo's command monitoring.

As sentry_sdk 2.75's ``pymongo`` integration (origin ``auto.db.pymongo``), for every
command a `MongoClient` created after set-up sends:

- a ``query`` breadcrumb of type ``db`` whose message is the command as JSON (without
  ``$db``, ``$clusterTime``, ``$signature`` and ``lsid``), data ``db.name``,
  ``db.system`` (``mongodb``), ``db.driver.name`` (``pymongo``), ``db.operation``,
  ``db.mongodb.collection``, ``net.peer.name``, ``net.peer.port``;
- inside a span, a ``db`` span named by that JSON, entered while the command runs,
  with the same keys as tags and data, plus ``operation_ids`` (operation, request,
  session), ``server.address`` and ``server.port``; ``ok`` when it succeeds,
  ``internal_error`` when it fails.

The command's values (documents, filters, updates, ``$match`` stages, anything not in
sentry_sdk's list of safe keys) become ``"%s"`` unless ``send_default_pii`` (or the
``data_collection`` option's ``database_query_data``) allows them. Unlike sentry_sdk,
the command is not deep-copied first: the stripped form is built beside it.

Under span streaming (``trace_lifecycle="stream"``) both are sentry_sdk 2.75's
streaming form: the span's attributes (``db.operation.name``, ``db.collection.name``,
``db.query.text``, ``db.system.name``, ``db.namespace``, ``db.driver.name``,
``server.address``, ``server.port``, ``sentry.op``, ``sentry.origin``) are also the
breadcrumb's data.

Outside a span no span is made (sentry_sdk makes one that is never sent). A listener
is registered with `pymongo.monitoring` when pymongo is imported (removed again by
`tripwire.testing.reset()`); it does nothing when the active client lacks this
integration.
"""

from __future__ import annotations

import json
from types import ModuleType
from typing import Any, Optional

from tripwire.api import add_breadcrumb
from tripwire.consts import OP, SPANDATA, SPANSTATUS
from tripwire.integrations import DidNotEnable, Integration, _check_minimum_version
from tripwire.integrations._common._hooks import when_imported
from tripwire.integrations._common.web import streamed
from tripwire.options import span_streaming_enabled
from tripwire.scope._current import get_client
from tripwire.tracing._api import start_child
from tripwire.utils import has_data_collection_enabled

ORIGIN = "auto.db.pymongo"

# sentry_sdk's keys whose values are never personal data.
SAFE_COMMAND_ATTRIBUTES = frozenset(
    {
        "insert",
        "ordered",
        "find",
        "limit",
        "singleBatch",
        "aggregate",
        "createIndexes",
        "indexes",
        "delete",
        "findAndModify",
        "renameCollection",
        "to",
        "drop",
    }
)
_DROPPED = frozenset({"$db", "$clusterTime", "$signature", "lsid"})
_PLACEHOLDER = "%s"


class PyMongoIntegration(Integration):
    """Spans and breadcrumbs for pymongo commands."""

    identifier = "pymongo"
    origin = ORIGIN

    @staticmethod
    def setup_once() -> None:
        """Register the command listener once pymongo is imported.

        Raises:
            DidNotEnable: pymongo is not installed, or older than 3.5.
        """
        import importlib.util

        from tripwire.utils import package_version

        if importlib.util.find_spec("pymongo") is None:
            raise DidNotEnable("Pymongo not installed")
        _check_minimum_version(PyMongoIntegration, package_version("pymongo"), "pymongo")
        when_imported("pymongo", _register)


def _register(module: ModuleType) -> None:
    from pymongo import monitoring

    from tripwire.integrations._patch import on_undo

    listener = _make_listener(monitoring.CommandListener)
    monitoring.register(listener)

    def unregister() -> None:
        try:
            monitoring._LISTENERS.command_listeners.remove(listener)
        except ValueError:
            pass

    on_undo(unregister)


def _strip(command: Any) -> dict[str, Any]:
    """The command with its values replaced by ``%s``, as sentry_sdk's `_strip_pii`."""
    out: dict[str, Any] = {}
    for key, value in command.items():
        if key in _DROPPED:
            continue
        if key in SAFE_COMMAND_ATTRIBUTES or (key == "update" and "findAndModify" not in command):
            out[key] = value
        elif key == "documents":
            out[key] = [dict.fromkeys(doc, _PLACEHOLDER) for doc in value]
        elif key in ("filter", "query", "update"):
            out[key] = dict.fromkeys(value, _PLACEHOLDER)
        elif key == "pipeline":
            out[key] = [_strip_stage(stage) for stage in value]
        else:
            out[key] = _PLACEHOLDER
    return out


def _strip_stage(stage: Any) -> Any:
    if "$match" not in stage:
        return stage
    stripped = dict(stage)
    stripped["$match"] = dict.fromkeys(stage["$match"], _PLACEHOLDER)
    return stripped


def _query(client: Any, command: Any) -> str:
    options = client.options
    if has_data_collection_enabled(options):
        keep = options["data_collection"]["database_query_data"]
    else:
        keep = client.should_send_default_pii()
    shown = {k: v for k, v in command.items() if k not in _DROPPED} if keep else _strip(command)
    return json.dumps(shown, default=str)


def _make_listener(base: type) -> Any:
    class CommandTracer(base):  # type: ignore[misc]
        """Starts a span when a command starts; ends it when the command succeeds or fails."""

        def __init__(self) -> None:
            self._ongoing_operations: dict[int, Any] = {}

        def started(self, event: Any) -> None:
            client = get_client()
            if client.get_integration(PyMongoIntegration) is None:
                return
            try:
                _started(self._ongoing_operations, client, event)
            except Exception:
                pass

        def succeeded(self, event: Any) -> None:
            _ended(self._ongoing_operations, event, SPANSTATUS.OK)

        def failed(self, event: Any) -> None:
            _ended(self._ongoing_operations, event, SPANSTATUS.INTERNAL_ERROR)

    return CommandTracer()


def _started(ongoing: dict[int, Any], client: Any, event: Any) -> None:
    command = event.command
    name = event.command_name
    db_name = event.database_name
    query = _query(client, command)
    if span_streaming_enabled(client.options):
        _started_streamed(ongoing, event, name, db_name, command, query)
        return
    tags: dict[str, Any] = {
        "db.name": db_name,
        SPANDATA.DB_SYSTEM: "mongodb",
        SPANDATA.DB_DRIVER_NAME: "pymongo",
        SPANDATA.DB_OPERATION: name,
        SPANDATA.DB_MONGODB_COLLECTION: command.get(name),
    }
    address: Optional[Any] = None
    port: Optional[Any] = None
    connection_id = event.connection_id
    try:
        address, port = connection_id[0], connection_id[1]
        tags["net.peer.name"] = address
        tags["net.peer.port"] = str(port)
    except TypeError:
        pass
    try:
        add_breadcrumb(message=query, category="query", type=OP.DB, data=tags)
    except Exception:
        pass
    span = start_child(op=OP.DB, name=query, origin=ORIGIN)
    if span is None:
        return
    for key, value in tags.items():
        span.set_tag(key, value)
        span.set_data(key, value)
    ids: dict[str, Any] = {"operation": event.operation_id, "request": event.request_id}
    lsid = command.get("lsid")
    if lsid:
        try:
            ids["session"] = str(lsid["id"])
        except KeyError:
            pass
    span.set_data("operation_ids", ids)
    if address is not None:
        span.set_data(SPANDATA.SERVER_ADDRESS, address)
    if port is not None:
        span.set_data(SPANDATA.SERVER_PORT, port)
    ongoing[event.request_id] = span.__enter__()


def _started_streamed(
    ongoing: dict[int, Any], event: Any, name: str, db_name: Any, command: Any, query: str
) -> None:
    """sentry_sdk 2.75's streaming form: the breadcrumb's data are the span's attributes."""
    attributes: dict[str, Any] = {
        SPANDATA.DB_OPERATION_NAME: name,
        "db.collection.name": command.get(name),
        SPANDATA.DB_QUERY_TEXT: query,
        "sentry.op": OP.DB,
        "sentry.origin": ORIGIN,
        SPANDATA.DB_DRIVER_NAME: "pymongo",
    }
    connection_id = event.connection_id
    if connection_id is not None:
        if connection_id[0] is not None:
            attributes[SPANDATA.SERVER_ADDRESS] = connection_id[0]
        if connection_id[1] is not None:
            attributes[SPANDATA.SERVER_PORT] = connection_id[1]
    attributes[SPANDATA.DB_SYSTEM_NAME] = "mongodb"
    if db_name is not None:
        attributes[SPANDATA.DB_NAMESPACE] = db_name
    try:
        add_breadcrumb(message=query, category="query", type=OP.DB, data=attributes)
    except Exception:
        pass
    # Given at start, as sentry_sdk's: `ignore_spans` sees them (op and origin as keywords).
    first = {key: value for key, value in attributes.items() if not key.startswith("sentry.")}
    span = start_child(op=OP.DB, name=query, origin=ORIGIN, attributes=first)
    if span is None:
        return
    if (stream := streamed(span)) is not None:
        stream.set_attributes(attributes)
    ongoing[event.request_id] = span.__enter__()


def _ended(ongoing: dict[int, Any], event: Any, status: str) -> None:
    if not ongoing:
        return
    span = ongoing.pop(event.request_id, None)
    if span is None:
        return
    try:
        span.set_status(status)
        span.__exit__(None, None, None)
    except Exception:
        pass


__all__ = ["PyMongoIntegration"]
