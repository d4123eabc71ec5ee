"""Graphene integration: an operation span, a breadcrumb and errors for `Schema.execute`.

As sentry_sdk 2.75's ``graphene`` integration, for `graphql_sync` and `graphql` as
`graphene.types.schema` calls them (`Schema.execute`, `Schema.execute_async`):

- a breadcrumb (category ``graphql.operation``) with the operation name and type;
- a span ``graphql.query`` / ``graphql.mutation`` / ``graphql.subscription`` (the
  type read from the document's first word) named by the ``operation_name`` argument
  (``<unknown graphql operation>`` without one), data ``graphql.operation.name``,
  ``graphql.operation.type`` and, when the document may be collected,
  ``graphql.document``;
- each error of the result is an event (mechanism ``graphene``, handled false);
- events get ``request.api_target = "graphql"`` when the document may be collected,
  else any ``request.data`` a web framework put there is removed.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType
from typing import Any, Callable

from tripwire.api import add_breadcrumb
from tripwire.integrations import DidNotEnable, Integration, _check_minimum_version
from tripwire.integrations._common import graphql as gql_rules
from tripwire.integrations._common._hooks import when_imported
from tripwire.integrations._common.start_attributes import child_start
from tripwire.integrations._patch import patch_once
from tripwire.scope._current import get_client, get_isolation_scope
from tripwire.tracing._api import sdk_start_span

_MARK = "__tripwire_graphene__"


class GrapheneIntegration(Integration):
    """Operation spans, breadcrumbs and errors for Graphene schemas."""

    identifier = "graphene"

    @staticmethod
    def setup_once() -> None:
        """Patch the GraphQL entry points `graphene.types.schema` calls.

        Raises:
            DidNotEnable: Graphene is missing or older than 3.3.
        """
        import importlib.util

        from tripwire.utils import package_version

        if importlib.util.find_spec("graphene") is None:
            raise DidNotEnable("graphene is not installed")
        _check_minimum_version(GrapheneIntegration, package_version("graphene"))
        when_imported("graphene.types.schema", _patch_module)


def _patch_module(module: ModuleType) -> None:
    patch_once(module, "graphql_sync", _wrap_sync, _MARK)
    patch_once(module, "graphql", _wrap_async, _MARK)


def _enabled() -> bool:
    return get_client().get_integration(GrapheneIntegration) is not None


def _wrap_sync(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def graphql_sync(schema: Any, source: Any, *args: Any, **kwargs: Any) -> Any:
        if not _enabled():
            return original(schema, source, *args, **kwargs)
        get_isolation_scope().add_event_processor(_event_processor)
        with _operation(source, kwargs):
            result = original(schema, source, *args, **kwargs)
        gql_rules.capture_errors(result.errors or (), GrapheneIntegration.identifier)
        return result

    return graphql_sync


def _wrap_async(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def graphql(schema: Any, source: Any, *args: Any, **kwargs: Any) -> Any:
        if not _enabled():
            return await original(schema, source, *args, **kwargs)
        get_isolation_scope().add_event_processor(_event_processor)
        with _operation(source, kwargs):
            result = await original(schema, source, *args, **kwargs)
        gql_rules.capture_errors(result.errors or (), GrapheneIntegration.identifier)
        return result

    return graphql


def _event_processor(event: dict[str, Any], hint: Any) -> dict[str, Any]:
    if gql_rules.collect_document(get_client().options):
        event.setdefault("request", {})["api_target"] = "graphql"
    elif (event.get("request") or {}).get("data"):
        del event["request"]["data"]
    return event


@contextmanager
def _operation(source: Any, kwargs: dict[str, Any]) -> Iterator[None]:
    name = kwargs.get("operation_name") or gql_rules.NO_OPERATION_NAME
    text = source if isinstance(source, str) else getattr(source, "body", "")
    kind, op = gql_rules.operation_kind(text)
    add_breadcrumb(
        category="graphql.operation",
        data={"operation_name": name, "operation_type": kind},
    )
    given = {"graphql.operation.name": name, "graphql.operation.type": kind}
    if gql_rules.collect_document(get_client().options):
        given["graphql.document"] = source
    # A streamed span starts with them, as sentry_sdk's (`ignore_spans` sees them).
    span = sdk_start_span(op=op, name=name, **child_start(given))
    for key in ("graphql.document", "graphql.operation.name", "graphql.operation.type"):
        if key in given:
            span.set_data(key, given[key])
    span.__enter__()
    try:
        yield
    finally:
        # As sentry_sdk: an exception leaves the span's status alone.
        span.__exit__(None, None, None)
