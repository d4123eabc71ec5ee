"""The ``db.redis`` command span: description and database data (Sentry's Queries page)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tripwire.consts import OP, SPANDATA
from tripwire.integrations._common.web import streamed
from tripwire.integrations.redis.utils import _get_safe_command, _truncate

if TYPE_CHECKING:
    from tripwire.integrations.redis import RedisIntegration


def _compile_db_span_properties(
    integration: RedisIntegration, redis_command: str, args: Sequence[Any]
) -> dict[str, Any]:
    """The op and description of a command's span."""
    return {
        "op": OP.DB_REDIS,
        "description": _get_db_span_description(integration, redis_command, args),
    }


def _get_db_span_description(
    integration: RedisIntegration, command_name: str, args: Sequence[Any]
) -> str:
    """The command with its arguments, cut to the integration's ``max_data_size``."""
    try:
        description = _get_safe_command(command_name, args)
    except Exception:
        description = command_name
    return _truncate(description, integration.max_data_size)


def _set_db_data_on_span(span: Any, connection_params: Mapping[str, Any]) -> None:
    """``db.system``, ``db.driver.name``, then ``db.name``, ``server.address`` and
    ``server.port`` from a connection's parameters (those it has).

    A streamed span gets sentry_sdk 2.75's streaming names: ``db.system.name`` and
    ``db.namespace``.
    """
    db = connection_params.get("db")
    if streamed(span) is not None:
        span.set_data(SPANDATA.DB_SYSTEM_NAME, "redis")
        span.set_data(SPANDATA.DB_DRIVER_NAME, "redis-py")
        if db is not None:
            span.set_data(SPANDATA.DB_NAMESPACE, str(db))
    else:
        span.set_data(SPANDATA.DB_SYSTEM, "redis")
        span.set_data(SPANDATA.DB_DRIVER_NAME, "redis-py")
        if db is not None:
            span.set_data(SPANDATA.DB_NAME, str(db))
    host = connection_params.get("host")
    if host is not None:
        span.set_data(SPANDATA.SERVER_ADDRESS, host)
    port = connection_params.get("port")
    if port is not None:
        span.set_data(SPANDATA.SERVER_PORT, port)


def _set_db_data(span: Any, redis_instance: Any) -> None:
    """The database data of a client (or pipeline) with a connection pool."""
    try:
        params = redis_instance.connection_pool.connection_kwargs
    except AttributeError:
        return
    _set_db_data_on_span(span, params)
