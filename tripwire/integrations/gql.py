"""GQL integration: the GraphQL request and its errors on events of `gql.Client.execute`.

As sentry_sdk 2.75's ``gql`` integration (it makes no spans of its own: the HTTP
client integrations trace the request the transport sends):

- a `TransportQueryError` (the server answered with GraphQL errors) is an event
  (mechanism ``gql``, handled false), then raised on;
- events of an execution carry ``request.api_target = "graphql"``, the transport's
  method (``POST`` unless it says otherwise) and URL (credentials filtered; query
  values too unless `data_collection` filters them by its ``url_query_params``);
- when the document may be collected, ``request.data`` holds the printed document,
  its ``operationName`` and (when variables may be collected) the operation's
  variable definitions, and ``contexts.response`` the server's errors.
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import Any, Callable

from tripwire._data_collection import filter_query_string
from tripwire.integrations import DidNotEnable, Integration, _check_minimum_version
from tripwire.integrations._common import graphql as gql_rules
from tripwire.integrations._common._hooks import when_imported
from tripwire.integrations._patch import patch_once
from tripwire.scope._current import get_client, get_isolation_scope
from tripwire.utils import capture_internal_exceptions, parse_url

_MARK = "__tripwire_gql__"

# Bound by setup_once (nothing here imports gql at import time).
_TransportQueryError: type[BaseException] = Exception
_GraphQLRequest: Any = None


class GQLIntegration(Integration):
    """Request data and errors for the gql client."""

    identifier = "gql"

    @staticmethod
    def setup_once() -> None:
        """Patch `gql.Client.execute`.

        Raises:
            DidNotEnable: gql is missing or older than 3.4.1.
        """
        import importlib.util

        from tripwire.utils import package_version

        if importlib.util.find_spec("gql") is None:
            raise DidNotEnable("gql is not installed")
        _check_minimum_version(GQLIntegration, package_version("gql"))
        when_imported("gql.client", _patch_module)


def _patch_module(module: ModuleType) -> None:
    global _TransportQueryError, _GraphQLRequest
    _TransportQueryError = module.TransportQueryError
    # gql 4 passes a GraphQLRequest (document + variables) where 3.x passed a document.
    _GraphQLRequest = getattr(module, "GraphQLRequest", None)
    patch_once(module.Client, "execute", _wrap_execute, _MARK)


def _wrap_execute(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def execute(self: Any, document: Any, *args: Any, **kwargs: Any) -> Any:
        if get_client().get_integration(GQLIntegration) is None:
            return original(self, document, *args, **kwargs)
        with capture_internal_exceptions():
            get_isolation_scope().add_event_processor(_processor(self, document))
        try:
            return original(self, document, *args, **kwargs)
        except _TransportQueryError as exc:
            gql_rules.capture_errors((exc,), GQLIntegration.identifier)
            raise

    return execute


def _document_data(document: Any, variables: bool) -> dict[str, Any]:
    from graphql import get_operation_ast, print_ast

    try:
        data: dict[str, Any] = {"query": print_ast(document)}
        operation = get_operation_ast(document)
        if operation is not None:
            if variables:
                data["variables"] = operation.variable_definitions
            if operation.name is not None:
                data["operationName"] = operation.name.value
    except (AttributeError, TypeError):
        return {}
    return data


def _transport_info(transport: Any) -> dict[str, str]:
    if transport is None:
        return {}
    info = {"method": getattr(transport, "method", "POST")}
    try:
        url = transport.url
    except AttributeError:
        return info
    with capture_internal_exceptions():
        options = get_client().options
        filtered = gql_rules.uses_data_collection(options)
        parsed = parse_url(str(url), sanitize=not filtered)
        info["url"] = parsed.url
        query: str | None = parsed.query
        if filtered and query:
            query = filter_query_string(query, options["data_collection"]["url_query_params"])
        if query:
            info["query_string"] = query
    return info


def _processor(client: Any, document: Any) -> Callable[[Any, Any], Any]:
    def processor(event: dict[str, Any], hint: Any) -> dict[str, Any]:
        try:
            errors = hint["exc_info"][1].errors
        except (AttributeError, KeyError, TypeError, IndexError):
            errors = None
        request = event.setdefault("request", {})
        request["api_target"] = "graphql"
        request.update(_transport_info(client.transport))
        options = get_client().options
        if gql_rules.collect_document(options):
            node = document
            if _GraphQLRequest is not None and isinstance(document, _GraphQLRequest):
                node = document.document
            request["data"] = _document_data(node, gql_rules.collect_variables(options))
            response = event.setdefault("contexts", {}).setdefault("response", {})
            response["data"] = {"errors": errors}
        return event

    return processor
