"""The Ariadne integration: a real Ariadne WSGI app on 127.0.0.1, events at a receiver.

The differential test runs Ariadne's `graphql_sync` on sentry_sdk 2.75 and on
tripwire under each collection setting and compares the events they send.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _graphql_side import compare
from _receiver import Receiver
from _wsgi_serve import request, served

import tripwire
from tripwire.integrations.ariadne import AriadneIntegration
from tripwire.integrations.wsgi import SentryWsgiMiddleware
from tripwire.testing import reset

if TYPE_CHECKING:
    from ariadne import QueryType, make_executable_schema
    from ariadne.wsgi import GraphQL


@pytest.fixture(autouse=True, scope="module")
def _ariadne() -> None:
    """Ariadne is imported when the module's tests start, not at collection (every xdist
    worker collects every module; tests/_lazy.py)."""
    global QueryType, make_executable_schema, GraphQL
    from ariadne import QueryType, make_executable_schema
    from ariadne.wsgi import GraphQL


TYPE_DEFS = "type Query { hello(name: String!): String  boom: String }"


def _schema() -> Any:
    query = QueryType()

    @query.field("hello")
    def hello(*_: Any, name: str) -> str:
        return f"hi {name}"

    @query.field("boom")
    def boom(*_: Any) -> str:
        raise ZeroDivisionError("resolver failed")

    return make_executable_schema(TYPE_DEFS, query)


def test_resolver_error_reaches_the_receiver_with_the_request(rx: Receiver) -> None:
    tripwire.init(dsn=rx.dsn(), send_default_pii=True, integrations=[AriadneIntegration()])
    body = {"query": "query Q($n: String!) { hello(name: $n) boom }", "variables": {"n": "x"}}
    with served(SentryWsgiMiddleware(GraphQL(_schema()))) as port:
        status, _ = request(port, "POST", "/graphql", json_body=body)
    assert status == 200
    tripwire.flush()
    rx.wait_for(1)
    (event,) = rx.events()
    # The resolver's exception is the cause of the GraphQL error that carries it.
    cause, error = event["exception"]["values"]
    assert (cause["type"], cause["value"]) == ("ZeroDivisionError", "resolver failed")
    assert (error["type"], error["mechanism"]["type"]) == ("GraphQLError", "ariadne")
    assert error["mechanism"]["handled"] is False
    assert event["request"]["api_target"] == "graphql"
    assert event["request"]["data"] == body
    response = event["contexts"]["response"]["data"]
    assert response["errors"][0]["message"] == "resolver failed"
    assert response["data"] == {"hello": "hi x", "boom": None}


def test_quiet_without_the_integration_and_reset_unpatches(init_memory: Any) -> None:
    module = importlib.import_module("ariadne.graphql")
    original = module.parse_query
    init_memory(integrations=[AriadneIntegration()])
    assert module.parse_query is not original
    memory = init_memory(auto_enabling_integrations=False)  # a later client without it
    from ariadne import graphql_sync

    ok, _ = graphql_sync(_schema(), {"query": "{ boom }"})
    assert ok
    tripwire.flush()
    assert memory.events == []
    reset()
    assert module.parse_query is original


SCRIPT = """
from ariadne import MutationType, QueryType, graphql_sync, make_executable_schema
from sentry_sdk.integrations.ariadne import AriadneIntegration

query = QueryType()
mutation = MutationType()

@query.field("hello")
def hello(*_, name):
    return "hi " + name

@query.field("boom")
def boom(*_):
    raise ZeroDivisionError("resolver failed")

@mutation.field("add")
def add(*_, a):
    return a + 1

schema = make_executable_schema(
    "type Query { hello(name: String!): String  boom: String } "
    "type Mutation { add(a: Int!): Int }",
    query,
    mutation,
)
sentry_sdk.init(
    dsn="https://key@example.com/1",
    transport=KEEP,
    default_integrations=False,
    traces_sample_rate=1.0,
    integrations=[AriadneIntegration()],
    **OPTS,
)
bodies = [
    {"query": "query Q($n: String!) { hello(name: $n) boom }", "variables": {"n": "x"},
     "operationName": "Q"},
    {"query": "mutation { add(a: 1) }"},
    {"query": "query Bad { nope }"},
    {"query": "{ boom }", "headers": {"Content-Length": "20000"}},
]
with sentry_sdk.start_transaction(name="tx"):
    for body in bodies:
        NOTES.append(graphql_sync(schema, body))
finish()
"""


def test_same_events_as_sentry_sdk(tmp_path: Path) -> None:
    # One interpreter per setting: after a second init() in one interpreter, sentry_sdk
    # 2.75 leaves the request off the validation error's event (tripwire does not).
    runs = compare(SCRIPT, tmp_path, one_interpreter=False)
    # Two resolver errors and a validation error, under every setting.
    assert all(len([i for i in run["items"] if i["type"] == "event"]) == 3 for run in runs)
