"""Ariadne integration: resolver errors as events, the GraphQL request and response on them.

As sentry_sdk 2.75's ``ariadne`` integration (it makes no spans):

- each error of a query's result, and each error of a query that does not parse or
  validate, is an event (mechanism ``ariadne``, handled false);
- events of the request carry ``request.api_target = "graphql"`` and ``request.data``
  (the posted JSON: ``query`` when the document may be collected and the body is
  within `max_request_body_size`, ``variables`` when they may be), otherwise any
  ``request.data`` a web framework put there is removed;
- when the response has errors and response bodies may be collected, it goes on the
  event as ``contexts.response.data``;
- the ``ariadne`` logger is ignored (its errors are already events).

The rules come from `data_collection`'s ``graphql`` and ``http_bodies``, or from
`send_default_pii` (see `_common/graphql.py`).
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import Any, Callable

from tripwire.integrations import DidNotEnable, Integration, _check_minimum_version
from tripwire.integrations._common import graphql as gql_rules
from tripwire.integrations._common._hooks import when_imported
from tripwire.integrations._patch import patch_once
from tripwire.scope._current import get_client, get_isolation_scope
from tripwire.utils import capture_internal_exceptions

_MARK = "__tripwire_ariadne__"
_BODY_LIMITS = {"never": -1, "small": 10**3, "medium": 10**4}


class AriadneIntegration(Integration):
    """Errors and request data for Ariadne's GraphQL execution."""

    identifier = "ariadne"

    @staticmethod
    def setup_once() -> None:
        """Patch `ariadne.graphql`'s query parsing and result handling.

        Raises:
            DidNotEnable: Ariadne is missing or older than 0.20.
        """
        import importlib.util

        from tripwire.integrations.logging import ignore_logger
        from tripwire.utils import package_version

        if importlib.util.find_spec("ariadne") is None:
            raise DidNotEnable("ariadne is not installed")
        _check_minimum_version(AriadneIntegration, package_version("ariadne"))
        ignore_logger("ariadne")
        # The module, not the package's `graphql` function of the same name.
        when_imported("ariadne.graphql", _patch_module)


def _patch_module(module: ModuleType) -> None:
    patch_once(module, "parse_query", _wrap_parse_query, _MARK)
    patch_once(module, "handle_graphql_errors", _wrap_handle_errors, _MARK)
    patch_once(module, "handle_query_result", _wrap_handle_result, _MARK)


def _enabled() -> bool:
    return get_client().get_integration(AriadneIntegration) is not None


def _wrap_parse_query(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def parse_query(context_value: Any, query_parser: Any, data: Any) -> Any:
        if _enabled():
            get_isolation_scope().add_event_processor(_request_processor(data))
        return original(context_value, query_parser, data)

    return parse_query


def _wrap_handle_errors(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def handle_graphql_errors(errors: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(errors, *args, **kwargs)
        if _enabled():
            _after(result, errors)
        return result

    return handle_graphql_errors


def _wrap_handle_result(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def handle_query_result(result: Any, *args: Any, **kwargs: Any) -> Any:
        query_result = original(result, *args, **kwargs)
        if _enabled():
            _after(query_result, getattr(result, "errors", None))
        return query_result

    return handle_query_result


def _after(result: Any, errors: Any) -> None:
    with capture_internal_exceptions():
        get_isolation_scope().add_event_processor(_response_processor(result[1]))
    gql_rules.capture_errors(errors or (), AriadneIntegration.identifier)


def _within_bounds(options: dict[str, Any], length: int) -> bool:
    limit = _BODY_LIMITS.get(options.get("max_request_body_size", "medium"))
    return limit is None or length <= limit


def _request_processor(data: Any) -> Callable[[Any, Any], Any]:
    def processor(event: dict[str, Any], hint: Any) -> dict[str, Any]:
        if not isinstance(data, dict):
            return event
        with capture_internal_exceptions():
            try:
                length = int((data.get("headers") or {}).get("Content-Length", 0))
            except (TypeError, ValueError):
                return event
            options = get_client().options
            if gql_rules.uses_data_collection(options):
                variables = gql_rules.collect_variables(options)
                document = gql_rules.collect_document(options) and _within_bounds(options, length)
            else:
                variables = document = gql_rules.collect_document(options) and _within_bounds(
                    options, length
                )
            if document or variables:
                request = event.setdefault("request", {})
                request["api_target"] = "graphql"
                request["data"] = {
                    key: value
                    for key, value in data.items()
                    if (key != "query" or document) and (key != "variables" or variables)
                }
            elif (event.get("request") or {}).get("data"):
                del event["request"]["data"]
        return event

    return processor


def _response_processor(response: Any) -> Callable[[Any, Any], Any]:
    def processor(event: dict[str, Any], hint: Any) -> dict[str, Any]:
        with capture_internal_exceptions():
            if gql_rules.collect_response(get_client().options) and response.get("errors"):
                event.setdefault("contexts", {})["response"] = {"data": response}
        return event

    return processor
