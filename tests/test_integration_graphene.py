"""The Graphene integration: operation spans, breadcrumbs and resolver errors.

A Graphene schema is executed sync and async; the differential test runs the same
script on sentry_sdk 2.75 and on tripwire under each collection setting.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _graphql_side import compare
from _receiver import Receiver

import tripwire
from tripwire.integrations.graphene import GrapheneIntegration
from tripwire.testing import reset

if TYPE_CHECKING:
    import graphene  # type: ignore[import-untyped]
    from graphene.types import schema as graphene_schema  # type: ignore[import-untyped]

    Query: type


@pytest.fixture(autouse=True, scope="module")
def _graphene() -> None:
    """Graphene is imported when the module's tests start, not at collection (every xdist
    worker collects every module; tests/_lazy.py); the query type is made here."""
    global graphene, graphene_schema, Query
    import graphene  # type: ignore[import-untyped]
    from graphene.types import schema as graphene_schema  # type: ignore[import-untyped]

    class Query(graphene.ObjectType):  # type: ignore[misc]
        hello = graphene.String(name=graphene.String())
        boom = graphene.String()

        def resolve_hello(root: Any, info: Any, name: str = "") -> str:
            return f"hi {name}"

        def resolve_boom(root: Any, info: Any) -> str:
            raise ZeroDivisionError("resolver failed")


def test_async_execution_span_and_error_at_the_receiver(rx: Receiver) -> None:
    tripwire.init(
        dsn=rx.dsn(),
        traces_sample_rate=1.0,
        send_default_pii=True,
        integrations=[GrapheneIntegration()],
    )
    schema = graphene.Schema(query=Query)
    document = 'query Q { hello(name: "x") boom }'

    async def run() -> Any:
        with tripwire.start_transaction(name="tx"):
            return await schema.execute_async(document, operation_name="Q")

    result = asyncio.run(run())
    assert result.data == {"hello": "hi x", "boom": None}
    tripwire.flush()
    rx.wait_for(2)
    (event,) = rx.events()
    assert event["exception"]["values"][-1]["mechanism"] == {"type": "graphene", "handled": False}
    assert event["request"] == {"api_target": "graphql"}
    crumb = event["breadcrumbs"]["values"][-1]
    assert crumb["category"] == "graphql.operation"
    assert crumb["data"] == {"operation_name": "Q", "operation_type": "query"}
    (transaction,) = [item.payload.json for item in rx.items("transaction")]
    (span,) = transaction["spans"]
    assert (span["op"], span["description"]) == ("graphql.query", "Q")
    assert span["data"]["graphql.document"] == document


def test_quiet_without_the_integration_and_reset_unpatches(init_memory: Any) -> None:
    original = graphene_schema.graphql_sync
    init_memory(integrations=[GrapheneIntegration()])
    assert graphene_schema.graphql_sync is not original
    memory = init_memory(auto_enabling_integrations=False, traces_sample_rate=1.0)
    with tripwire.start_transaction(name="tx"):
        graphene.Schema(query=Query).execute("{ boom }")
    tripwire.flush()
    assert memory.events == []
    assert memory.transactions[0]["spans"] == []
    reset()
    assert graphene_schema.graphql_sync is original


SCRIPT = """
import asyncio

from sentry_sdk.integrations.graphene import GrapheneIntegration

sentry_sdk.init(
    dsn="https://key@example.com/1",
    transport=KEEP,
    default_integrations=False,
    traces_sample_rate=1.0,
    integrations=[GrapheneIntegration()],
    **OPTS,
)

import graphene  # after init: patched when imported

class Query(graphene.ObjectType):
    hello = graphene.String(name=graphene.String())
    boom = graphene.String()

    def resolve_hello(root, info, name=""):
        return "hi " + name

    def resolve_boom(root, info):
        raise ZeroDivisionError("resolver failed")

class Add(graphene.Mutation):
    class Arguments:
        a = graphene.Int()

    out = graphene.Int()

    def mutate(root, info, a):
        return Add(out=a + 1)

class Mutation(graphene.ObjectType):
    add = Add.Field()

schema = graphene.Schema(query=Query, mutation=Mutation)
with sentry_sdk.start_transaction(name="tx"):
    NOTES.append(schema.execute('query Q { hello(name: "x") boom }', operation_name="Q").data)
    NOTES.append(schema.execute("mutation { add(a: 1) { out } }").data)
    NOTES.append(asyncio.run(schema.execute_async("{ boom }")).data)
finish()
"""


def test_same_spans_and_events_as_sentry_sdk(tmp_path: Path) -> None:
    for run in compare(SCRIPT, tmp_path):
        kinds = [item["type"] for item in run["items"]]
        assert sorted(kinds) == ["event", "event", "transaction"]
