"""Attributes streamed spans start with, for the web, task, GraphQL, database, redis and
agent integrations, side by side with sentry-sdk 2.75.

Under ``trace_lifecycle="stream"`` sentry_sdk's integrations pass some attributes when
they start a span (`traces.start_span(attributes=...)`): a segment's `traces_sampler`
sees them (``transaction_context["data"]``) and `ignore_spans`' attribute rules match
them, for any span; attributes set later are seen by neither. One script, run once per
SDK (forked from a zygote that imported the libraries), drives every integration with a
sampler that notes what it saw and drops some segments by their start attributes, and
with attribute rules that ignore some child spans:

- segments: ASGI (``network.protocol.name`` only: the method comes later), aiohttp
  (method, url, client address, headers), Huey / RQ / arq / Dramatiq (``messaging.*``),
  a database query without a parent (``db.query.text``), LangGraph and Pydantic AI
  (``gen_ai.operation.name``);
- child spans: Starlette's middleware spans (``middleware.name``), Graphene's and
  Strawberry's operations (``graphql.*``), SQLAlchemy and `record_sql_queries`
  (``db.query.text``), redis commands and cache spans, Huey's submit span, aiohttp's
  client spans (``url.*``, with `send_default_pii`), LangChain's embeddings, OpenAI
  Agents' tools and handoffs, Pydantic AI's chat and tools, TypeSafe.

A second scenario runs the same calls in transaction mode, where ``attributes=`` must
not reach the transaction-model API: the same transactions as sentry_sdk's. Without
``redis-server`` the redis, RQ, arq and Dramatiq parts are left out (both SDKs alike).
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Optional

import pytest
from _redis_server import keyspace_fixture, redis_server_fixture  # noqa: F401 (fixtures)
from _side_by_side import of_type, run_each
from _stream_shapes import assert_same, op_of, outline
from fakes import langchain_llm_server, openai_agents_server, typesafe_server

TESTS = str(Path(__file__).parent)

SCRIPT = """
import asyncio, logging, re, sqlite3, sys, warnings
warnings.simplefilter("ignore")
logging.disable(logging.CRITICAL)
sys.path.insert(0, TESTS)
import graphene
import openai
import strawberry
from agents import Agent, OpenAIResponsesModel, Runner, function_tool, handoff
from agents import set_tracing_disabled
from aiohttp import web
from aiohttp.test_utils import TestClient as AioClient, TestServer as AioServer
from huey import MemoryHuey
from langchain_core.messages import HumanMessage
from langchain_openai import OpenAIEmbeddings
from langgraph.graph import END, START, MessagesState, StateGraph
from pydantic_ai import Agent as PydanticAgent
from pydantic_ai.models.openai import OpenAIChatModel
from pydantic_ai.providers.openai import OpenAIProvider
from sqlalchemy import create_engine, text
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.responses import PlainTextResponse
from starlette.routing import Route
from starlette.testclient import TestClient as StarletteClient
from typesafe_sdk import Noul, TypeSafeClient
if PORT is not None:
    import dramatiq
    from arq import create_pool
    from arq.connections import RedisSettings
    from dramatiq.brokers.redis import RedisBroker
    from redis import Redis
    from rq import Queue, SimpleWorker
import sentry_sdk.traces
from sentry_sdk.integrations.aiohttp import AioHttpIntegration
from sentry_sdk.integrations.asgi import SentryAsgiMiddleware
from sentry_sdk.integrations.graphene import GrapheneIntegration
from sentry_sdk.integrations.huey import HueyIntegration
from sentry_sdk.integrations.langchain import LangchainIntegration
from sentry_sdk.integrations.langgraph import LanggraphIntegration
from sentry_sdk.integrations.openai_agents import OpenAIAgentsIntegration
from sentry_sdk.integrations.pydantic_ai import PydanticAIIntegration
from sentry_sdk.integrations.sqlalchemy import SqlalchemyIntegration
from sentry_sdk.integrations.starlette import StarletteIntegration
from sentry_sdk.integrations.strawberry import StrawberryIntegration
from sentry_sdk.integrations.typesafe import TypeSafeIntegration
from sentry_sdk.tracing_utils import record_sql_queries

INTEGRATIONS = [
    AioHttpIntegration(), GrapheneIntegration(), HueyIntegration(), LangchainIntegration(),
    LanggraphIntegration(), OpenAIAgentsIntegration(), PydanticAIIntegration(),
    SqlalchemyIntegration(), StarletteIntegration(middleware_spans=True),
    StrawberryIntegration(async_execution=False),
    TypeSafeIntegration(),
]
if PORT is not None:
    from sentry_sdk.integrations.arq import ArqIntegration
    from sentry_sdk.integrations.dramatiq import DramatiqIntegration
    from sentry_sdk.integrations.redis import RedisIntegration
    from sentry_sdk.integrations.rq import RqIntegration

    from start_attrs_jobs import job as rq_job  # beside the script, not the zygote's

    INTEGRATIONS += [
        ArqIntegration(), DramatiqIntegration(), RedisIntegration(cache_prefixes=[K + "c"]),
        RqIntegration(),
    ]
    URL = "redis://127.0.0.1:%d/0" % PORT
set_tracing_disabled(True)

# What a segment starts with decides: each value below drops the segments that carry it.
DROP = {
    "http.request.method": "DELETE",  # aiohttp gives it at start; ASGI only later
    "messaging.destination.name": "dropq",
    "messaging.message.id": "job-drop",
    "db.query.text": "SELECT 3",
    "gen_ai.operation.name": "invoke_agent",  # with a name ending in "drop"
}


def sampler(context):
    span = context["transaction_context"]
    data = span.get("data") or {}
    NOTES.append([span["name"], sorted(data)])
    for key, value in DROP.items():
        found = str(data.get(key, ""))
        if found == value or (found.endswith(value) and key.startswith("messaging")):
            if key != "gen_ai.operation.name" or span["name"].endswith("drop"):
                return 0.0
    return 1.0


IGNORE = [
    {"attributes": {"middleware.name": "SkipMiddleware"}},
    {"attributes": {"graphql.operation.type": "mutation"}},
    {"attributes": {"db.query.text": "SELECT 2"}},
    {"attributes": {"db.query.text": re.compile(".*skip.*")}},
    {"attributes": {"messaging.destination.name": "skipq"}},
    {"attributes": {"http.request.header.x-skip": "1"}},
    {"attributes": {"url.query": "skip=1", "sentry.op": "http.client"}},
    {"attributes": {"gen_ai.operation.name": "embeddings"}},
    {"attributes": {"gen_ai.tool.name": "forecast"}},
    {"attributes": {"gen_ai.operation.name": "handoff"}},
    {"attributes": {"gen_ai.provider.name": "typesafe"}},
    {"attributes": {"gen_ai.operation.name": "chat", "gen_ai.response.streaming": False}},
]


def span(name):
    if STREAM:
        return sentry_sdk.traces.start_span(name=name)
    return sentry_sdk.start_transaction(name=name, op="parent")


# -- web ---------------------------------------------------------------------------------------
async def raw_app(scope, receive, send):
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def asgi_calls():
    app = SentryAsgiMiddleware(raw_app)

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        pass

    for method, path in (("GET", "/asgi"), ("DELETE", "/asgi-delete")):
        await app(
            {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "scheme": "http", "path": path, "raw_path": path.encode(),
             "query_string": b"q=1", "root_path": "", "headers": [(b"host", b"localhost")],
             "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 80)},
            receive, send,
        )


async def aiohttp_calls():
    async def hello(request):
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_route("*", "/aio", hello)
    async with AioServer(app, host="127.0.0.1") as server:
        async with AioClient(server) as client:
            await (await client.get("/aio")).text()
            await (await client.delete("/aio")).text()
            await (await client.get("/aio", headers={"X-Skip": "1"})).text()
            with span("aiohttp parent"):  # client spans, by their url attributes
                await (await client.get("/aio?skip=1")).text()
                await (await client.get("/aio?keep=1")).text()


class SkipMiddleware:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        await self.app(scope, receive, send)


class KeepMiddleware(SkipMiddleware):
    pass


def starlette_calls():
    app = Starlette(
        routes=[Route("/star", lambda request: PlainTextResponse("ok"))],
        middleware=[Middleware(SkipMiddleware), Middleware(KeepMiddleware)],
    )
    with StarletteClient(app) as client:
        client.get("/star")


# -- graphql -------------------------------------------------------------------------------------
class Query(graphene.ObjectType):
    hello = graphene.String()

    def resolve_hello(root, info):
        return "hi"


class Bump(graphene.Mutation):
    ok = graphene.Boolean()

    def mutate(root, info):
        return Bump(ok=True)


class Mutation(graphene.ObjectType):
    bump = Bump.Field()


@strawberry.type
class SQuery:
    @strawberry.field
    def hello(self) -> str:
        return "hi"


@strawberry.type
class SMutation:
    @strawberry.mutation
    def bump(self) -> bool:
        return True


def graphql_calls():
    schema = graphene.Schema(query=Query, mutation=Mutation)
    sschema = strawberry.Schema(query=SQuery, mutation=SMutation)
    with span("graphql parent"):
        schema.execute("query Q { hello }")
        schema.execute("mutation M { bump { ok } }")
        sschema.execute_sync("query SQ { hello }")
        sschema.execute_sync("mutation SM { bump }")


# -- databases -----------------------------------------------------------------------------------
def db_calls():
    engine = create_engine("sqlite://")
    connection = sqlite3.connect(":memory:")
    cursor = connection.cursor()
    with engine.connect() as conn:
        with span("db parent"):
            conn.execute(text("SELECT 1"))
            conn.execute(text("SELECT 2"))
            for query in ("SELECT 1", "SELECT 2"):
                with record_sql_queries(cursor, query, None, None, False, span_origin="manual.q"):
                    cursor.execute(query)
        # Without a parent: under streaming sentry_sdk makes each a segment.
        conn.execute(text("SELECT 3"))
        conn.execute(text("SELECT 4"))
        with record_sql_queries(cursor, "SELECT 5", None, None, False, span_origin="manual.q"):
            cursor.execute("SELECT 5")
    connection.close()
    engine.dispose()


def redis_calls():
    client = Redis.from_url(URL)
    with span("redis parent"):
        client.set(K + "keep", 1)
        client.get(K + "skip")
        client.get(K + "c-keep")  # cache keys: a cache span around the command's
        client.get(K + "c-skip")
    client.close()


# -- tasks ---------------------------------------------------------------------------------------
def huey_calls():
    keep, skip, drop = (MemoryHuey(name, immediate=True) for name in ("keepq", "skipq", "dropq"))
    tasks = [queue.task(name="huey_" + queue.name)(lambda: None) for queue in (keep, skip, drop)]
    with span("huey parent"):
        for task in tasks:
            task()


def rq_calls():
    connection = Redis.from_url(URL)
    queues = [Queue(K + name, connection=connection) for name in ("keepq", "dropq")]
    for queue in queues:
        queue.enqueue(rq_job, job_id=J + queue.name.replace(":", "-"))
    SimpleWorker(queues, connection=connection).work(burst=True)
    connection.close()


async def arq_job(ctx):
    return 1


async def arq_calls():
    from arq.worker import create_worker  # sentry_sdk replaces it at init

    pool = await create_pool(RedisSettings(host="127.0.0.1", port=PORT),
                             default_queue_name=K + "arq")
    for job_id in ("job-keep", "job-drop"):
        await pool.enqueue_job("arq_job", _job_id=K + job_id)
    worker = create_worker(
        {"functions": [arq_job], "redis_pool": pool, "queue_name": K + "arq", "burst": True,
         "poll_delay": 0, "max_jobs": 1, "handle_signals": False, "keep_result": 0}
    )
    await worker.main()
    await pool.aclose()


def dramatiq_calls():
    broker = RedisBroker(url=URL, namespace=K + ("dramatiq-s" if STREAM else "dramatiq-t"))
    actors = [
        dramatiq.actor(lambda: None, broker=broker, actor_name="dq_" + name, queue_name=name,
                       max_retries=0)
        for name in ("keepq", "dropq")
    ]
    for actor in actors:
        actor.send()
    worker = dramatiq.Worker(broker, worker_threads=1, worker_timeout=50)
    worker.start()
    for name in ("keepq", "dropq"):
        broker.join(name, timeout=30000)
    worker.join()
    worker.stop()
    broker.close()


# -- agents --------------------------------------------------------------------------------------
@function_tool
def forecast(city: str) -> str:
    '''Weather of a city.'''
    return "sunny in " + city


def graph(name):
    g = StateGraph(MessagesState)
    g.add_node("node", lambda state: {"messages": []})
    g.add_edge(START, "node")
    g.add_edge("node", END)
    return g.compile(name=name)


async def agent_calls():
    c = openai.AsyncOpenAI(api_key="k", base_url=URLS["agents"] + "/v1", max_retries=0)
    model = OpenAIResponsesModel(model="gpt-4o", openai_client=c)
    other = Agent(name="B", model=model)
    with span("agents parent"):
        await Runner.run(Agent(name="A", model=model, tools=[forecast]), "hello")
        await Runner.run(Agent(name="H", model=model, handoffs=[handoff(other)]), "hand")
    p = OpenAIProvider(openai_client=c)
    for name in ("pkeep", "pdrop"):
        await PydanticAgent(OpenAIChatModel("gpt-4o", provider=p), name=name).run("hello")
    await c.close()


def ai_calls():
    with span("ai parent"):
        OpenAIEmbeddings(model="emb", api_key="k", base_url=URLS["langchain"] + "/v1",
                         check_embedding_ctx_length=False).embed_query("one")
        with TypeSafeClient(api_key="k", base_url=URLS["typesafe"], compression=False) as client:
            client.system_one("I was charged twice", {"billing": Noul(instructions="billing?")})
    for name in ("keep", "drop"):
        graph(name).invoke({"messages": [HumanMessage("hi")]})
    asyncio.run(agent_calls())


def everything():
    asyncio.run(asgi_calls())
    asyncio.run(aiohttp_calls())
    starlette_calls()
    graphql_calls()
    db_calls()
    huey_calls()
    if PORT is not None:
        redis_calls()
        rq_calls()
        asyncio.run(arq_calls())
        dramatiq_calls()
    ai_calls()


STREAM = True
sentry_sdk.init(
    transport=KEEP, release="r", default_integrations=False, auto_enabling_integrations=False,
    integrations=INTEGRATIONS, trace_lifecycle="stream", traces_sampler=sampler,
    send_default_pii=True,
    ignore_spans=IGNORE,
)
everything()
next_scenario()

# Transaction mode: no `attributes=` may reach the transaction-model calls.
STREAM = False
sentry_sdk.init(
    transport=KEEP, release="r", default_integrations=False, auto_enabling_integrations=False,
    integrations=INTEGRATIONS, traces_sample_rate=1.0, send_default_pii=True,
)
everything()
finish()
"""

JOBS = """
def job():
    return 1
"""

_PORT = re.compile(r":\d{2,5}\b")
_TIME = re.compile(r"\d{4}-\d\d-\d\dT[\d:.]+Z?")  # in a redis command (with PII)


@pytest.fixture(scope="module")
def urls() -> Iterator[dict[str, str]]:
    with ExitStack() as stack:
        yield {
            name: stack.enter_context(module.serving()).url
            for name, module in (
                ("agents", openai_agents_server),
                ("langchain", langchain_llm_server),
                ("typesafe", typesafe_server),
            )
        }


@pytest.fixture
def redis_port(request: pytest.FixtureRequest) -> Optional[int]:
    """The session's redis-server port; None without the binary (those parts left out)."""
    if shutil.which("redis-server") is None:
        return None
    server = request.getfixturevalue("redis_server")
    return int(server.port)


def _name(span: dict[str, Any]) -> str:
    # A wrapped ASGI `send`'s qualified name is each SDK's own function.
    op = op_of(span) or ""
    if op.startswith("middleware.starlette."):
        return "<" + op + ">"
    return _masked(span["name"])


def _masked(name: str) -> str:
    return _PORT.sub(":PORT", _TIME.sub("<time>", name))


def _outline(found: dict[str, Any]) -> list[str]:
    """`outline` with names masked and the task workers' own redis commands left out."""
    return outline(found, _name, _in_a_worker)


def _in_a_worker(span: dict[str, Any], by_id: dict[str, dict[str, Any]]) -> bool:
    """A redis command of a task queue's worker (its heartbeats and job bookkeeping):
    how many it sends depends on timing, and the jobs here send none of their own."""
    if op_of(span) != "db.redis":
        return False
    parent = by_id.get(span.get("parent_span_id") or "")
    while parent is not None:
        if str(op_of(parent)).startswith("queue.task"):
            return True
        parent = by_id.get(parent.get("parent_span_id") or "")
    return False


def _transactions(found: dict[str, Any]) -> list[str]:
    """Each transaction's name and its spans' ops and descriptions."""
    out = []
    for event in of_type(found, "transaction"):
        worker = str(event.get("contexts", {}).get("trace", {}).get("op")).startswith("queue.task")
        children = sorted(
            f"{span.get('op')} {_masked(str(span.get('description')))}"
            for span in event.get("spans", [])
            if not str(span.get("op")).startswith("middleware.starlette.")
            and not (worker and span.get("op") == "db.redis")  # see `_in_a_worker`
        )
        out.append(json.dumps([_masked(event["transaction"]), children]))
    return sorted(out)


def _notes(found: dict[str, Any]) -> list[Any]:
    return sorted([_masked(name), keys] for name, keys in found["notes"])


def test_start_attributes_reach_sampler_and_ignore_spans_as_sentry_sdk(
    tmp_path: Path, urls: dict[str, str], redis_port: Optional[int], keyspace: str
) -> None:
    (tmp_path / "start_attrs_jobs.py").write_text(JOBS)
    script = (
        f"TESTS = {TESTS!r}\nURLS = {urls!r}\nPORT = {redis_port!r}\n"
        f"K = {keyspace!r}\nJ = K.replace(':', '-')\n" + SCRIPT
    )
    (stream_sentry, stream_ours), (tx_sentry, tx_ours) = run_each(
        script, tmp_path, timeout=180, preload=True
    )
    assert_same(_notes(stream_ours), _notes(stream_sentry))
    assert_same(_outline(stream_ours), _outline(stream_sentry))
    assert_same(_transactions(tx_ours), _transactions(tx_sentry))
    _check_what_was_covered(stream_ours, tx_ours, redis_port is not None)


def _check_what_was_covered(stream: dict[str, Any], tx: dict[str, Any], redis: bool) -> None:
    """What the start attributes decided, and that transaction mode kept every span."""
    seen = {name: keys for name, keys in _notes(stream)}
    assert "http.request.method" in seen["generic AIOHTTP request"]  # given at start
    assert seen["http://127.0.0.1/asgi-delete"] == [  # the method comes later
        "network.protocol.name",
        "sentry.op",
        "sentry.origin",
        "sentry.segment.name.source",
    ]
    assert "messaging.message.system" in seen["huey_keepq"]
    assert "db.query.text" in seen["SELECT 3"]
    assert "gen_ai.operation.name" in seen["invoke_agent pdrop"]
    if redis:
        for task in ("start_attrs_jobs.job", "unknown arq task", "dq_keepq"):
            assert any(key.startswith("messaging.") for key in seen[task]), task
    shapes = [json.loads(shape) for shape in _outline(stream)]
    names = [shape["name"] for shape in shapes]
    # Dropped by the sampler: the aiohttp DELETE, the "dropq" tasks, SELECT 3, the
    # "drop" agents; ignored: the X-Skip request, an aiohttp client request by its query,
    # SkipMiddleware, the mutations, SELECT 2, the "skip" redis keys,
    # the "skipq" task, the embeddings, the tool, the handoff, TypeSafe, Pydantic AI's chat.
    # Of five aiohttp requests: the DELETE dropped, the X-Skip one ignored.
    assert names.count("__main__.aiohttp_calls.<locals>.hello") == 3
    # Of the two client requests, the one by its url.query (given at start) ignored.
    assert [s["parent"] for s in shapes if s["op"] == "http.client"] == ["aiohttp parent"]
    assert names.count("http://127.0.0.1/asgi-delete") == 1
    assert "KeepMiddleware" in names and "SkipMiddleware" not in names
    assert names.count("SELECT 1") == 2 and "SELECT 2" not in names
    assert "SELECT 3" not in names and "SELECT 4" in names and "SELECT 5" in names
    assert [s["segment"] for s in shapes if s["name"] in ("SELECT 4", "SELECT 5")] == [True] * 2
    assert "resolving SQuery.hello" in names and "graphql.mutation" not in str(shapes)
    assert [n for n in names if n.startswith("huey_")].count("huey_keepq") == 2
    dropped = [s for s in shapes if "skipq" in s["name"] or s["name"].endswith("drop")]
    dropped += [s for s in shapes if "dropq" in s["name"] and s["segment"]]
    assert dropped == []  # huey_dropq's submit span stays: the sampler decides segments
    assert "invoke_agent keep" in names and "invoke_agent pkeep" in names
    assert not [n for n in names if n.startswith(("embeddings", "execute_tool", "evaluate"))]
    assert [s["parent"] for s in shapes if s["op"] == "gen_ai.chat"].count(
        "invoke_agent pkeep"
    ) == 0
    if redis:
        assert [n for n in names if n.startswith("SET ")] and not [n for n in names if "skip" in n]
        cache = [s for s in shapes if s["op"] == "cache.get"]
        assert len(cache) == 1 and cache[0]["name"].endswith("c-keep")
        assert "start_attrs_jobs.job" in names and "arq_job" in names and "dq_keepq" in names
    # Transaction mode: nothing ignored (the option is a streaming one), every span there.
    transactions = dict(json.loads(t) for t in _transactions(tx))
    assert transactions["db parent"] == ["db SELECT 1", "db SELECT 1", "db SELECT 2", "db SELECT 2"]
    assert "middleware.starlette SkipMiddleware" in transactions["/star"]
    assert "huey_skipq" in transactions and "invoke_agent drop" in transactions
