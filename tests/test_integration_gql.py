"""The GQL integration: the gql client against a real GraphQL server on 127.0.0.1.

The server is a Strawberry schema behind a Flask view (both instrumented), so one
trace covers the client's HTTP span and the server's transaction. The differential
test runs the client (against an uninstrumented Ariadne WSGI app) on sentry_sdk 2.75
and on tripwire per collection setting.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _graphql_side import SETTINGS, compare
from _receiver import Receiver
from _wsgi_serve import served

import tripwire
from tripwire.integrations.flask import FlaskIntegration
from tripwire.integrations.gql import GQLIntegration
from tripwire.integrations.strawberry import StrawberryIntegration
from tripwire.testing import reset

if TYPE_CHECKING:
    import gql
    import strawberry
    from flask import Flask
    from gql.transport.exceptions import TransportQueryError
    from gql.transport.requests import RequestsHTTPTransport
    from strawberry.flask.views import GraphQLView

    Query: type


@pytest.fixture(autouse=True, scope="module")
def _gql() -> None:
    """gql, Strawberry and Flask are imported when the module's tests start, not at
    collection (every xdist worker collects every module; tests/_lazy.py); the schema's
    query type is made here too."""
    global gql, strawberry, Flask, TransportQueryError, RequestsHTTPTransport, GraphQLView
    global Query
    import gql
    import strawberry
    from flask import Flask
    from gql.transport.exceptions import TransportQueryError
    from gql.transport.requests import RequestsHTTPTransport
    from strawberry.flask.views import GraphQLView

    @strawberry.type
    class Query:
        @strawberry.field
        def boom(self) -> str:
            raise ZeroDivisionError("resolver failed")


def _app() -> Flask:
    app = Flask(__name__)
    schema = strawberry.Schema(query=Query)
    app.add_url_rule("/graphql", view_func=GraphQLView.as_view("graphql", schema=schema))
    return app


def test_client_error_and_one_trace_with_the_server(rx: Receiver) -> None:
    tripwire.init(
        dsn=rx.dsn(),
        traces_sample_rate=1.0,
        send_default_pii=True,
        integrations=[
            GQLIntegration(),
            StrawberryIntegration(async_execution=False),
            FlaskIntegration(),
        ],
    )
    with served(_app()) as port:
        url = f"http://127.0.0.1:{port}/graphql"
        client = gql.Client(transport=RequestsHTTPTransport(url=url))
        with tripwire.start_transaction(name="client"), pytest.raises(TransportQueryError):
            client.execute(gql.gql("query B { boom }"))
    tripwire.flush()
    rx.wait_for(4)
    events = {e["exception"]["values"][-1]["mechanism"]["type"]: e for e in rx.events()}
    assert set(events) == {"gql", "strawberry"}
    mine = events["gql"]
    assert mine["exception"]["values"][-1]["type"] == "TransportQueryError"
    assert mine["request"]["api_target"] == "graphql"
    assert (mine["request"]["method"], mine["request"]["url"]) == ("POST", url)
    assert mine["request"]["data"] == {
        "query": "query B {\n  boom\n}",
        "operationName": "B",
        "variables": [],  # the operation's variable definitions, as sentry_sdk sends them
    }
    errors = mine["contexts"]["response"]["data"]["errors"]
    assert errors[0]["message"] == "resolver failed"
    transactions = {t["transaction"]: t for t in (i.payload.json for i in rx.items("transaction"))}
    (http_span,) = [s for s in transactions["client"]["spans"] if s["op"] == "http.client"]
    assert http_span["description"] == f"POST {url}"
    server = transactions["B"]["contexts"]["trace"]
    assert server["trace_id"] == transactions["client"]["contexts"]["trace"]["trace_id"]
    assert server["parent_span_id"] == http_span["span_id"]


def test_quiet_without_the_integration_and_reset_unpatches(init_memory: Any) -> None:
    original = gql.Client.execute
    init_memory(integrations=[GQLIntegration()])
    assert gql.Client.execute is not original
    memory = init_memory(auto_enabling_integrations=False)
    with served(_app()) as port:
        client = gql.Client(transport=RequestsHTTPTransport(url=f"http://127.0.0.1:{port}/graphql"))
        with pytest.raises(TransportQueryError):
            client.execute(gql.gql("{ boom }"))
    tripwire.flush()
    assert memory.events == []
    reset()
    assert gql.Client.execute is original


SCRIPT = """
import sys

from _wsgi_serve import served
from ariadne import QueryType, make_executable_schema
from ariadne.wsgi import GraphQL
from gql import Client, gql
from gql.transport.exceptions import TransportQueryError
from gql.transport.requests import RequestsHTTPTransport
from sentry_sdk.integrations.gql import GQLIntegration
from sentry_sdk.integrations.stdlib import StdlibIntegration

query = QueryType()

@query.field("hello")
def hello(*_, name):
    return "hi " + name

@query.field("boom")
def boom(*_):
    raise ZeroDivisionError("resolver failed")

schema = make_executable_schema("type Query { hello(name: String!): String  boom: String }", query)
sentry_sdk.init(
    dsn="https://key@example.com/1",
    transport=KEEP,
    default_integrations=False,
    traces_sample_rate=1.0,
    integrations=[GQLIntegration(), StdlibIntegration()],
    # No code location on the http.client spans: whether a request is slower than the
    # default 100 ms threshold depends on the machine's load, in either SDK's run.
    http_request_source_threshold_ms=60_000,
    **OPTS,
)
with served(GraphQL(schema)) as port:
    url = f"http://user:pw@127.0.0.1:{port}/graphql?token=abc&x=1"
    client = Client(transport=RequestsHTTPTransport(url=url))
    with sentry_sdk.start_transaction(name="tx"):
        document = gql("query Q($n: String!) { hello(name: $n) }")
        NOTES.append(client.execute(document, variable_values={"n": "x"}))
        try:
            client.execute(gql("query B($n: String) { boom }"), variable_values={"n": "y"})
        except TransportQueryError as exc:
            NOTES.append(str(exc))
finish()
"""


def test_same_events_as_sentry_sdk(tmp_path: Path) -> None:
    tests_dir = str(Path(__file__).parent)
    script = f"import sys\nsys.path.insert(0, {tests_dir!r})\n{SCRIPT}"
    runs = compare(script, tmp_path, SETTINGS)
    assert all(len([i for i in run["items"] if i["type"] == "event"]) == 1 for run in runs)
