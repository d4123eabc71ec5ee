"""Attributes streamed spans start with, for Google GenAI, Mistral, Anthropic,
clickhouse-driver, PyMongo and Django, side by side with sentry-sdk 2.75.

Under ``trace_lifecycle="stream"`` sentry_sdk gives these at a span's start, so a
segment's `traces_sampler` sees them (``transaction_context["data"]``) and the attribute
rules of `ignore_spans` match them:

- Google GenAI: ``gen_ai.operation.name``, ``gen_ai.system``, ``gen_ai.request.model``
  (and ``gen_ai.response.streaming`` for `generate_content_stream`); its tool spans
  ``gen_ai.tool.name``;
- Mistral: ``gen_ai.provider.name`` and ``gen_ai.operation.name``;
- Anthropic: ``gen_ai.response.streaming`` on the spans of `messages.stream()` (not on
  `create(stream=True)`'s);
- clickhouse-driver: ``db.query.text``; PyMongo: the span's first data (collection,
  operation, query...);
- Django: ``middleware.name`` on middleware spans, ``code.function.name`` on signal
  receivers' spans.

One script, run once per SDK (forked from a zygote that imported the libraries): the
model calls without a parent are segments the sampler keeps or drops by their start
attributes; under a parent, rules ignore some children. A second scenario runs the same
calls in transaction mode, where ``attributes=`` must not reach the transaction-model
API: the same transactions as sentry_sdk's. Without ``clickhouse-server`` its part is
left out (both SDKs alike).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Optional

import pytest
from _side_by_side import of_type, run_each
from _stream_shapes import assert_same, outline
from fakes import clickhouse_server, gemini_server, llm_server, mistral_server, mongo

TESTS = str(Path(__file__).parent)

SCRIPT = """
import asyncio, logging, re, sys, warnings
warnings.simplefilter("ignore")
logging.disable(logging.CRITICAL)
sys.path.insert(0, TESTS)
import anthropic
import pymongo
from google import genai
from google.genai import types
from mistralai.client import Mistral
import django_app

django_app.configure()
from django.core.handlers.wsgi import WSGIHandler
from werkzeug.test import Client as WsgiClient
if CLICKHOUSE is not None:
    from clickhouse_driver import Client as ClickhouseClient
import sentry_sdk.traces
from sentry_sdk.integrations.anthropic import AnthropicIntegration
from sentry_sdk.integrations.django import DjangoIntegration
from sentry_sdk.integrations.google_genai import GoogleGenAIIntegration
from sentry_sdk.integrations.mistral import MistralIntegration
from sentry_sdk.integrations.pymongo import PyMongoIntegration

INTEGRATIONS = [
    AnthropicIntegration(), DjangoIntegration(middleware_spans=True),
    GoogleGenAIIntegration(), MistralIntegration(), PyMongoIntegration(),
]
if CLICKHOUSE is not None:
    from sentry_sdk.integrations.clickhouse_driver import ClickhouseDriverIntegration

    INTEGRATIONS.append(ClickhouseDriverIntegration())


def sampler(context):
    span = context["transaction_context"]
    data = span.get("data") or {}
    NOTES.append([span["name"], sorted(data)])
    if data.get("gen_ai.request.model") == "gemini-drop":
        return 0.0
    if data.get("gen_ai.provider.name") == "mistral" and span["name"].endswith("drop"):
        return 0.0
    if data.get("gen_ai.response.streaming") is True and span["name"].endswith("drop"):
        return 0.0
    return 1.0


IGNORE = [
    {"attributes": {"gen_ai.request.model": "gemini-skip"}},
    {"attributes": {"gen_ai.system": "gcp.gemini", "gen_ai.response.streaming": True}},
    {"attributes": {"gen_ai.tool.name": "skip_tool"}},
    {"name": re.compile(".*skip"), "attributes": {"gen_ai.provider.name": "mistral"}},
    {"name": re.compile("chat claude.*"), "attributes": {"gen_ai.response.streaming": True}},
    {"attributes": {"db.query.text": "SELECT 2"}},
    {"attributes": {"db.collection.name": "skipped"}},
    {"attributes": {"middleware.name": "django.middleware.csrf.CsrfViewMiddleware"}},
    {"attributes": {"code.function.name": "django.db.reset_queries"}},
]


def span(name):
    if STREAM:
        return sentry_sdk.traces.start_span(name=name)
    return sentry_sdk.start_transaction(name=name, op="parent")


def keep_tool(city: str) -> str:
    '''Weather of a city.'''
    return "sunny in " + city


def skip_tool(city: str) -> str:
    '''Rain in a city.'''
    return "rain in " + city


def gemini_calls():
    client = genai.Client(api_key="k", http_options={"base_url": URLS["gemini"]})
    for model in ("gemini-keep", "gemini-drop"):
        client.models.generate_content(model=model, contents="hi")
    with span("gemini parent"):
        client.models.generate_content(model="gemini-x", contents="hi")
        client.models.generate_content(model="gemini-skip", contents="hi")
        list(client.models.generate_content_stream(model="gemini-s", contents="hi"))
        client.models.embed_content(model="gemini-e", contents=["one"])
        for tool in (keep_tool, skip_tool):
            config = types.GenerateContentConfig(tools=[tool])
            client.models.generate_content(model="gemini-t", contents="w?", config=config)


def mistral_calls():
    hi = [{"role": "user", "content": "hi"}]
    with Mistral(api_key="k", server_url=URLS["mistral"]) as client:
        for model in ("m-keep", "m-drop"):
            client.chat.complete(model=model, messages=hi)
        with span("mistral parent"):
            client.chat.complete(model="m-x", messages=hi)
            client.chat.complete(model="m-skip", messages=hi)
            list(client.chat.stream(model="m-stream-skip", messages=hi))


def anthropic_calls():
    hi = [{"role": "user", "content": "hi"}]
    client = anthropic.Anthropic(api_key="k", base_url=URLS["anthropic"], max_retries=0)
    for model in ("keep", "drop"):
        with client.messages.stream(model="s-" + model, max_tokens=8, messages=hi) as s:
            list(s.text_stream)
        list(client.messages.create(model="c-" + model, max_tokens=8, messages=hi, stream=True))
    with span("anthropic parent"):
        client.messages.create(model="claude-x", max_tokens=8, messages=hi)
        list(client.messages.create(model="claude-y", max_tokens=8, messages=hi, stream=True))
        with client.messages.stream(model="claude-z", max_tokens=8, messages=hi) as s:
            list(s.text_stream)
    client.close()


def db_calls():
    client = pymongo.MongoClient("127.0.0.1", MONGO, serverSelectionTimeoutMS=10000)
    db = client["attrs" + ("s" if STREAM else "t")]
    with span("mongo parent"):
        db.kept.insert_one({"a": 1})
        db.skipped.insert_one({"a": 1})
        list(db.kept.find({"a": 1}))
    client.close()
    if CLICKHOUSE is not None:
        ch = ClickhouseClient("127.0.0.1", port=CLICKHOUSE)
        with span("clickhouse parent"):
            for query in ("SELECT 1", "SELECT 2"):
                ch.execute(query)
        ch.disconnect()


def django_calls():
    WsgiClient(WSGIHandler()).get("/query/")


def everything():
    gemini_calls()
    mistral_calls()
    anthropic_calls()
    db_calls()
    django_calls()


STREAM = True
sentry_sdk.init(
    transport=KEEP, release="r", default_integrations=False, auto_enabling_integrations=False,
    integrations=INTEGRATIONS, trace_lifecycle="stream", traces_sampler=sampler,
    ignore_spans=IGNORE,
)
everything()
next_scenario()

# Transaction mode: no `attributes=` may reach the transaction-model calls.
STREAM = False
sentry_sdk.init(
    transport=KEEP, release="r", default_integrations=False, auto_enabling_integrations=False,
    integrations=INTEGRATIONS, traces_sample_rate=1.0,
)
everything()
finish()
"""


@pytest.fixture(scope="module")
def urls() -> Iterator[dict[str, str]]:
    with ExitStack() as stack:
        found = {
            name: stack.enter_context(module.serving()).url
            for name, module in (
                ("gemini", gemini_server),
                ("mistral", mistral_server),
                ("anthropic", llm_server),
            )
        }
        found["mongo"] = str(stack.enter_context(mongo.serving()).port)
        yield found


@pytest.fixture(scope="module")
def clickhouse_port() -> Iterator[Optional[int]]:
    """A clickhouse-server's port; None without the binary (that part left out)."""
    if clickhouse_server.find_binary() is None:
        yield None
        return
    server = clickhouse_server.start()
    try:
        yield server.port
    finally:
        server.stop()


def _transactions(found: dict[str, Any]) -> list[str]:
    """Each transaction's name and its spans' ops and descriptions."""
    out = []
    for event in of_type(found, "transaction"):
        children = sorted(f"{s.get('op')} {s.get('description')}" for s in event.get("spans", []))
        out.append(json.dumps([event["transaction"], children]))
    return sorted(out)


def _notes(found: dict[str, Any]) -> list[Any]:
    return sorted(found["notes"])


def test_start_attributes_of_ai_and_db_spans_as_sentry_sdk(
    tmp_path: Path, urls: dict[str, str], clickhouse_port: Optional[int]
) -> None:
    script = (
        f"TESTS = {TESTS!r}\nURLS = {urls!r}\nMONGO = {int(urls['mongo'])}\n"
        f"CLICKHOUSE = {clickhouse_port!r}\n" + SCRIPT
    )
    (stream_sentry, stream_ours), (tx_sentry, tx_ours) = run_each(
        script, tmp_path, timeout=180, preload=True
    )
    assert_same(_notes(stream_ours), _notes(stream_sentry))
    assert_same(outline(stream_ours), outline(stream_sentry))
    assert_same(_transactions(tx_ours), _transactions(tx_sentry))
    _check_what_was_covered(stream_ours, tx_ours, clickhouse_port is not None)


def _check_what_was_covered(stream: dict[str, Any], tx: dict[str, Any], clickhouse: bool) -> None:
    """What the start attributes decided, and that transaction mode kept every span."""
    seen = dict(_notes(stream))
    assert "gen_ai.request.model" in seen["chat gemini-drop"]
    assert "gen_ai.provider.name" in seen["chat m-drop"]
    assert "gen_ai.response.streaming" in seen["chat s-drop"]  # `stream()`'s,
    assert "gen_ai.response.streaming" not in seen["chat c-drop"]  # not `create(stream=True)`'s
    names = [json.loads(shape)["name"] for shape in outline(stream)]
    # Dropped by the sampler: the "drop" segments but `create(stream=True)`'s.
    assert [n for n in names if n.endswith("drop")] == ["chat c-drop"]
    assert "chat gemini-keep" in names and "chat m-keep" in names and "chat s-keep" in names
    # Ignored by their start attributes: Gemini's "skip" model, its stream, its tool;
    # Mistral's "skip" calls; Anthropic's `stream()` under a parent; SELECT 2; the
    # "skipped" collection; CsrfViewMiddleware; the reset_queries receiver.
    assert "execute_tool keep_tool" in names and "execute_tool skip_tool" not in names
    assert not [n for n in names if n.endswith(("skip", "gemini-s", "claude-z"))]
    assert "chat claude-y" in names and "chat m-x" in names and "chat gemini-x" in names
    assert not [n for n in names if "skipped" in n] and [n for n in names if "kept" in n]
    assert not [n for n in names if "CsrfViewMiddleware" in n or "reset_queries" in n]
    assert "django.db.close_old_connections" in names
    if clickhouse:
        assert "SELECT 1" in names and "SELECT 2" not in names
    # Transaction mode: nothing ignored (the option is a streaming one), every span there.
    transactions = dict(json.loads(t) for t in _transactions(tx))
    assert "chat gemini-drop" in transactions and "chat s-drop" in transactions
    assert "event.django django.db.reset_queries" in transactions["/query/"]
    if clickhouse:
        assert transactions["clickhouse parent"] == ["db SELECT 1", "db SELECT 2"]
