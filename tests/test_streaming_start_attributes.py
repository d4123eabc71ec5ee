"""Attributes a streamed span starts with, side by side with sentry-sdk 2.75.

Under ``trace_lifecycle="stream"`` sentry_sdk's integrations give some attributes when
they start a span (`traces.start_span(attributes=...)`), so `traces_sampler` (the
sampling context's ``transaction_context["data"]``) and the attribute rules of
`ignore_spans` see them; attributes set later are seen by neither. tripwire's
integrations pass the same ones at start. Here: OpenAI's ``gen_ai.system`` and
``gen_ai.response.streaming`` (``gen_ai.operation.name`` comes later, in both SDKs).
AWS Lambda's and Cloud Functions' ``faas.*`` / ``cloud.*`` are in
test_streaming_serverless.py.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _side_by_side import dumps, run_both
from _stream_shapes import sent
from fakes import llm_server

TESTS = str(Path(__file__).parent)

OPENAI_SCRIPT = """
import sys
sys.path.insert(0, TESTS)
import openai
import sentry_sdk.traces
from sentry_sdk.integrations.openai import OpenAIIntegration


def sampler(context):
    span = context["transaction_context"]
    data = span["data"] or {}
    NOTES.append([span["name"], span["op"], sorted(data)])
    # A segment of its own is dropped by what it starts with.
    return 0.0 if data.get("gen_ai.system") == "openai" and "drop" in span["name"] else 1.0


sentry_sdk.init(
    transport=KEEP,
    trace_lifecycle="stream",
    traces_sampler=sampler,
    default_integrations=False,
    integrations=[OpenAIIntegration()],
    ignore_spans=[
        {"attributes": {"gen_ai.system": "openai", "gen_ai.response.streaming": True}},
        # Set after start: matches nothing.
        {"attributes": {"gen_ai.operation.name": "embeddings"}},
    ],
)
client = openai.OpenAI(api_key="k", base_url=URL + "/v1", max_retries=0)
messages = [{"role": "user", "content": "hi"}]
client.chat.completions.create(model="gpt-drop", messages=messages)
client.chat.completions.create(model="gpt-keep", messages=messages)
with sentry_sdk.traces.start_span(name="parent"):
    client.chat.completions.create(model="gpt-4o", messages=messages)
    list(client.chat.completions.create(model="gpt-4o-stream", stream=True, messages=messages))
    client.embeddings.create(model="emb", input="x")
    client.responses.create(model="gpt-4o", input="x")
    for _ in client.responses.create(model="gpt-4o-stream", input="x", stream=True):
        pass
finish()
"""


@pytest.fixture(scope="module")
def llm_url() -> Iterator[str]:
    with llm_server.serving() as server:
        yield server.url


def _spans(found: dict[str, Any]) -> list[str]:
    spans = sent(found)
    names = {span["span_id"]: span["name"] for span in spans}
    return sorted(
        json.dumps(
            {
                "name": span["name"],
                "segment": span["is_segment"],
                "parent": names.get(span.get("parent_span_id")),
                "system": span["attributes"].get("gen_ai.system", {}).get("value"),
            },
            sort_keys=True,
        )
        for span in spans
    )


def test_openai_start_attributes_reach_sampler_and_ignore_spans_as_sentry_sdk(
    tmp_path: Path, llm_url: str
) -> None:
    script = f"TESTS = {TESTS!r}\nURL = {llm_url!r}\n" + OPENAI_SCRIPT
    theirs, ours = run_both(script, tmp_path)
    assert ours["notes"] == theirs["notes"], dumps(
        {"sentry": theirs["notes"], "ours": ours["notes"]}
    )
    assert _spans(ours) == _spans(theirs), dumps({"sentry": _spans(theirs), "ours": _spans(ours)})
    # The sampler saw the start attributes of the segments the calls made.
    seen = {name: keys for name, _op, keys in ours["notes"]}
    assert seen["chat gpt-keep"] == [
        "gen_ai.response.streaming",
        "gen_ai.system",
        "sentry.op",
        "sentry.origin",
    ]
    names = [json.loads(span)["name"] for span in _spans(ours)]
    assert "chat gpt-drop" not in names  # the sampler's answer
    assert "chat gpt-keep" in names
    # Ignored by `gen_ai.response.streaming`; the embeddings rule came too late.
    assert "chat gpt-4o-stream" not in names and "responses gpt-4o-stream" not in names
    assert "embeddings emb" in names and "responses gpt-4o" in names
