"""Redis commands with no parent span, side by side with sentry-sdk 2.75.

sentry_sdk 2.75's redis integration makes a span for a command only under an active
span, in both tracing models: under span streaming (``trace_lifecycle="stream"``) a
command, a pipeline's ``execute`` or an asyncio client's command with no current
streamed span makes no segment of its own (unlike a database query, see
test_streaming_start_attributes_more.py), asks `traces_sampler` nothing and sends no
``span`` item; in transaction mode such a command makes no transaction. Either way it
leaves its ``redis`` breadcrumb. Inside a span it is a child, as before.

One script, run once per SDK against the session's real redis-server, in two
scenarios (streaming, then transaction mode), drives the same calls: with no parent
(sync client, pipeline, cache key, asyncio client and pipeline), inside a parent, inside
a segment the sampler drops, and inside a segment that is not active (``active=False``:
no parent either). An error event at the end carries the breadcrumbs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("redis")
pytest.importorskip("redis.asyncio")
from _redis_server import (  # noqa: F401 (fixtures)
    RedisServer,
    keyspace_fixture,
    redis_server_fixture,
)
from _side_by_side import of_type, run_each
from _stream_shapes import assert_same, canonical, crumbs, spans

SCRIPT = """
import asyncio
import warnings
import redis
import redis.asyncio
warnings.simplefilter("ignore")
import sentry_sdk.traces
from sentry_sdk.integrations.redis import RedisIntegration


def sampler(context):
    span = context["transaction_context"]
    NOTES.append([span.get("name"), sorted(span.get("data") or {})])
    return 0.0 if span.get("name") == "dropped" else 1.0


def parent(name, **kwargs):
    if STREAM:
        return sentry_sdk.traces.start_span(name=name, **kwargs)
    return sentry_sdk.start_transaction(name=name, op="parent")


def sync_calls(tag):
    client = redis.Redis(host="127.0.0.1", port=PORT)
    client.set(K + tag, "v")
    client.get(K + "c:" + tag)  # a cache key: a cache span around the command's
    pipe = client.pipeline()
    pipe.set(K + tag + ":p", 1)
    pipe.get(K + tag + ":p")
    pipe.execute()
    client.close()


async def async_calls(tag):
    client = redis.asyncio.Redis(host="127.0.0.1", port=PORT)
    await client.get(K + "a:" + tag)
    pipe = client.pipeline()
    pipe.get(K + "a:" + tag)
    await pipe.execute()
    await (client.aclose() if hasattr(client, "aclose") else client.close())


def calls(tag):
    sync_calls(tag)
    asyncio.run(async_calls(tag))


def everything():
    calls("orphan")  # no parent
    with parent("parent"):
        calls("child")
    if STREAM:
        with parent("dropped"):  # sampled out: its commands are not sent
            calls("dropped")
        with parent("inactive", active=False):  # not the current span: no parent
            calls("inactive")
    sentry_sdk.capture_message("done")


OPTIONS = dict(
    transport=KEEP, release="r", default_integrations=False, auto_enabling_integrations=False,
    integrations=[RedisIntegration(cache_prefixes=[K + "c:"])], traces_sampler=sampler,
)
STREAM = True
sentry_sdk.init(trace_lifecycle="stream", **OPTIONS)
everything()
next_scenario()

STREAM = False
sentry_sdk.init(**OPTIONS)
everything()
finish()
"""


def _transactions(found: dict[str, Any]) -> list[Any]:
    """Each transaction: its name and its spans' op, description, tags and data."""
    out = []
    for event in of_type(found, "transaction"):
        children = sorted(
            (
                json.dumps(
                    {
                        "op": span.get("op"),
                        "description": span.get("description"),
                        "origin": span.get("origin"),
                        "tags": {k: str(v) for k, v in (span.get("tags") or {}).items()},
                        "data": {
                            k: v
                            for k, v in (span.get("data") or {}).items()
                            if not k.startswith("thread.")
                        },
                    },
                    sort_keys=True,
                )
                for span in event.get("spans", [])
            ),
        )
        out.append([event["transaction"], children])
    return sorted(out)


def _children(shapes: list[dict[str, Any]]) -> list[Any]:
    """The spans that are not segments: name, op and their parent's name."""
    return sorted(
        (s["name"], s["attributes"].get("sentry.op"), shapes[s["parent"]]["name"])
        for s in shapes
        if not s["is_segment"]
    )


def test_redis_without_a_parent_starts_nothing_as_sentry_sdk(
    tmp_path: Path, redis_server: RedisServer, keyspace: str
) -> None:
    script = f"PORT = {redis_server.port!r}\nK = {keyspace!r}\n" + SCRIPT
    (stream_sentry, stream_ours), (tx_sentry, tx_ours) = run_each(script, tmp_path, preload=True)

    # Span streaming: the same spans, sampler questions and breadcrumbs.
    shapes = canonical(spans(stream_ours))
    assert_same(shapes, canonical(spans(stream_sentry)))
    assert_same(stream_ours["notes"], stream_sentry["notes"])
    assert_same(crumbs(stream_ours), crumbs(stream_sentry))
    # Only the manual spans are segments; every redis span is in "parent" (the cache
    # key's command under its cache span), and the sampler was asked of the manual
    # segments alone.
    assert sorted(s["name"] for s in shapes if s["is_segment"]) == ["inactive", "parent"]
    k = keyspace
    assert _children(shapes) == sorted(
        [
            (f"GET '{k}a:child'", "db.redis", "parent"),
            (f"GET '{k}c:child'", "db.redis", f"{k}c:child"),
            (f"SET '{k}child' [Filtered]", "db.redis", "parent"),
            (f"{k}c:child", "cache.get", "parent"),
            ("redis.pipeline.execute", "db.redis", "parent"),
            ("redis.pipeline.execute", "db.redis", "parent"),
        ]
    )
    assert {s["attributes"]["sentry.segment.name"] for s in shapes} == {"inactive", "parent"}
    assert [name for name, _ in stream_ours["notes"]] == ["parent", "dropped", "inactive"]
    assert of_type(stream_ours, "transaction") == []
    # The commands without a parent still left their breadcrumbs.
    (trail,) = crumbs(stream_ours)
    messages = [crumb["message"] for crumb in trail]
    assert f"SET '{k}orphan' [Filtered]" in messages
    assert f"GET '{k}a:orphan'" in messages and f"GET '{k}a:inactive'" in messages

    # Transaction mode: one transaction ("parent"), the commands without one sent nowhere.
    transactions = _transactions(tx_ours)
    assert_same(transactions, _transactions(tx_sentry))
    assert_same(tx_ours["notes"], tx_sentry["notes"])
    assert_same(crumbs(tx_ours), crumbs(tx_sentry))
    assert [name for name, _ in transactions] == ["parent"]
    assert len(transactions[0][1]) == 6
    assert of_type(tx_ours, "span") == []
