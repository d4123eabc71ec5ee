"""The Strawberry integration: its schema extensions and the HTTP views' errors.

A Strawberry Flask view is served on 127.0.0.1 (Flask instrumented too) and events
reach a receiver; the differential test runs the sync extension (Flask view) and the
async one (Starlette, ASGI) on sentry_sdk 2.75 and on tripwire per collection setting.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _graphql_side import SETTINGS, compare
from _receiver import Receiver
from _wsgi_serve import request, served

import tripwire
from tripwire.integrations.flask import FlaskIntegration
from tripwire.integrations.strawberry import StrawberryIntegration

if TYPE_CHECKING:
    import strawberry
    from flask import Flask
    from strawberry.flask.views import GraphQLView

    Query: type


@pytest.fixture(autouse=True, scope="module")
def _strawberry() -> None:
    """Strawberry and Flask are imported when the module's tests start, not at collection
    (every xdist worker collects every module; tests/_lazy.py); the query type is made here."""
    global strawberry, Flask, GraphQLView, Query
    import strawberry
    from flask import Flask
    from strawberry.flask.views import GraphQLView

    @strawberry.type
    class Query:
        @strawberry.field
        def hello(self, name: str) -> str:
            return "hi " + name

        @strawberry.field
        def boom(self) -> str:
            raise ZeroDivisionError("resolver failed")


def _extension_names(schema: strawberry.Schema) -> list[str]:
    return [getattr(e, "__name__", type(e).__name__) for e in schema.extensions]


def test_named_operation_names_the_transaction_at_the_receiver(rx: Receiver) -> None:
    tripwire.init(
        dsn=rx.dsn(),
        traces_sample_rate=1.0,
        integrations=[StrawberryIntegration(async_execution=False), FlaskIntegration()],
    )
    app = Flask(__name__)
    schema = strawberry.Schema(query=Query)
    app.add_url_rule("/graphql", view_func=GraphQLView.as_view("graphql", schema=schema))
    body = {"query": 'query Q { hello(name: "x") boom }', "operationName": "Q"}
    with served(app) as port:
        status, _ = request(port, "POST", "/graphql", json_body=body)
    assert status == 200
    tripwire.flush()
    rx.wait_for(2)
    (event,) = rx.events()
    assert event["exception"]["values"][-1]["mechanism"] == {"type": "strawberry", "handled": False}
    assert event["transaction"] == "Q"  # the operation's, as its transaction (not the route)
    # Without send_default_pii: no document, no response body.
    assert "api_target" not in event["request"] and "data" not in event["request"]
    assert "response" not in event["contexts"]
    (transaction,) = [item.payload.json for item in rx.items("transaction")]
    assert transaction["transaction"] == "Q"
    assert transaction["transaction_info"] == {"source": "component"}
    assert transaction["contexts"]["trace"]["op"] == "graphql.query"
    ops = sorted((s["op"], s["description"]) for s in transaction["spans"])
    assert ops == [
        ("graphql.parse", "parsing"),
        ("graphql.query", "query Q"),
        ("graphql.resolve", "resolving Query.boom"),
        ("graphql.resolve", "resolving Query.hello"),
        ("graphql.validate", "validation"),
    ]


def test_extension_choice(init_memory: Any) -> None:
    with pytest.raises(ValueError, match="async_execution"):
        StrawberryIntegration(async_execution="yes")  # type: ignore[arg-type]
    init_memory(integrations=[StrawberryIntegration(async_execution=True)])
    assert _extension_names(strawberry.Schema(query=Query))[0] == "SentryAsyncExtension"
    tripwire.testing.reset()
    init_memory(integrations=[StrawberryIntegration()])
    with pytest.warns(UserWarning, match="Assuming strawberry is running sync"):
        schema = strawberry.Schema(query=Query)
    assert _extension_names(schema)[0] == "SentrySyncExtension"
    tripwire.testing.reset()
    init_memory(auto_enabling_integrations=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _extension_names(strawberry.Schema(query=Query)) == []


SCRIPT = """
from sentry_sdk.integrations.flask import FlaskIntegration
from sentry_sdk.integrations.starlette import StarletteIntegration
from sentry_sdk.integrations.strawberry import StrawberryIntegration

sentry_sdk.init(
    dsn="https://key@example.com/1",
    transport=KEEP,
    default_integrations=False,
    traces_sample_rate=1.0,
    integrations=[
        StrawberryIntegration(async_execution=ASYNC),
        FlaskIntegration(),
        StarletteIntegration(),
    ],
    **OPTS,
)

import strawberry  # after init: patched when imported

@strawberry.type
class Query:
    @strawberry.field
    def hello(self, name: str) -> str:
        return "hi " + name

    @strawberry.field
    def boom(self) -> str:
        raise ZeroDivisionError("resolver failed")

@strawberry.type
class Mutation:
    @strawberry.mutation
    def add(self, a: int) -> int:
        return a + 1

schema = strawberry.Schema(query=Query, mutation=Mutation)
bodies = [
    {"query": "query Q($n: String!) { hello(name: $n) boom }", "variables": {"n": "x"},
     "operationName": "Q"},
    {"query": "mutation { add(a: 1) }"},
    {"query": "query Bad { nope }"},
]
if ASYNC:
    from starlette.applications import Starlette
    from starlette.routing import Route
    from starlette.testclient import TestClient
    from strawberry.asgi import GraphQL

    with TestClient(Starlette(routes=[Route("/graphql", GraphQL(schema))])) as client:
        for body in bodies:
            NOTES.append(client.post("/graphql", json=body).json())
else:
    from flask import Flask
    from strawberry.flask.views import GraphQLView

    app = Flask(__name__)
    app.add_url_rule("/graphql", view_func=GraphQLView.as_view("graphql", schema=schema))
    client = app.test_client()
    for body in bodies:
        NOTES.append(client.post("/graphql", json=body).json)
finish()
"""


@pytest.mark.parametrize("use_async", [False, True], ids=["sync", "async"])
def test_same_spans_and_events_as_sentry_sdk(tmp_path: Path, use_async: bool) -> None:
    settings = SETTINGS if use_async else SETTINGS[:2]
    runs = compare(f"ASYNC = {use_async}\n{SCRIPT}", tmp_path, settings)
    for run in runs:
        names = [i["payload"]["transaction"] for i in run["items"] if i["type"] == "transaction"]
        assert names[0] == "Q"
        events = [i["payload"] for i in run["items"] if i["type"] == "event"]
        assert events[0]["transaction"] == "Q"  # the resolver error, named as its transaction
        # The resolver error and the validation error.
        assert [i["type"] for i in run["items"]].count("event") == 2
