"""What the GraphQL integrations share: the collection rules and the error events.

sentry_sdk 2.75's Ariadne, Graphene, Strawberry and GQL integrations decide alike:
with `data_collection` given, its ``graphql`` flags (document, variables) and
``http_bodies`` (``outgoing_response``) decide; otherwise `send_default_pii` does.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from tripwire.api import capture_event
from tripwire.consts import OP
from tripwire.scope._current import get_client, should_send_default_pii
from tripwire.utils import capture_internal_exceptions, event_from_exception

NO_OPERATION_NAME = "<unknown graphql operation>"
_KINDS = (("mutation", OP.GRAPHQL_MUTATION), ("subscription", OP.GRAPHQL_SUBSCRIPTION))


def _collection(options: Mapping[str, Any]) -> Mapping[str, Any] | None:
    config = options.get("data_collection")
    if isinstance(config, Mapping) and config.get("provided_by_user"):
        return config
    return None


def collect_document(options: Mapping[str, Any]) -> bool:
    """Whether a GraphQL document (the query text) may be sent."""
    config = _collection(options)
    if config is not None:
        return bool(config["graphql"]["document"])
    return should_send_default_pii()


def collect_variables(options: Mapping[str, Any]) -> bool:
    """Whether a GraphQL operation's variables may be sent."""
    config = _collection(options)
    if config is not None:
        return bool(config["graphql"]["variables"])
    return should_send_default_pii()


def collect_response(options: Mapping[str, Any]) -> bool:
    """Whether a GraphQL response body may be sent (the event's ``response`` context)."""
    config = _collection(options)
    if config is not None:
        return "outgoing_response" in config["http_bodies"]
    return should_send_default_pii()


def uses_data_collection(options: Mapping[str, Any]) -> bool:
    """Whether the user configured `data_collection`."""
    return _collection(options) is not None


def operation_kind(document: str | None) -> tuple[str, str]:
    """(operation type, span op) of a document, read from its first word as sentry_sdk does."""
    text = (document or "").strip()
    for kind, op in _KINDS:
        if text.startswith(kind):
            return kind, op
    return "query", OP.GRAPHQL_QUERY


def capture_errors(errors: Iterable[BaseException], mechanism: str) -> None:
    """One unhandled event per GraphQL error (its original error's traceback when it has one)."""
    client = get_client()
    if not client.is_active():
        return
    with capture_internal_exceptions():
        for error in errors:
            event, hint = event_from_exception(
                error,
                client_options=client.options,
                mechanism={"type": mechanism, "handled": False},
            )
            capture_event(event, hint=hint)
