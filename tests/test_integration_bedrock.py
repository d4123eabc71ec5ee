"""boto3's Bedrock runtime calls as gen_ai spans: real boto3 against a loopback Bedrock.

`fakes.bedrock_server` answers ``Converse``, ``ConverseStream`` (AWS's binary event
stream), ``InvokeModel`` and ``InvokeModelWithResponseStream`` over HTTP on 127.0.0.1;
botocore signs, sends and parses as against AWS. One script runs every scenario on
sentry_sdk 2.75 and on tripwire (one interpreter each): transaction mode with and
without consent (``send_default_pii``, `data_collection`'s ``gen_ai`` inputs/outputs),
and span streaming. The spans that reach the transport must match; the tests below
then check what a user relies on in tripwire's own items.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest
from _side_by_side import dumps, of_type, run_each
from _stream_shapes import assert_same, sent, spans, values
from fakes.bedrock_server import BedrockServer, serving

import tripwire
from tripwire.integrations.boto3 import Boto3Integration
from tripwire.testing import reset

if TYPE_CHECKING:
    import botocore.client
    import botocore.eventstream


@pytest.fixture(autouse=True, scope="module")
def _botocore() -> None:
    """botocore is imported when the module's tests start, not at collection (every xdist
    worker collects every module; tests/_lazy.py)."""
    global botocore
    import botocore.client
    import botocore.eventstream


SCRIPT = """
import warnings
warnings.simplefilter("ignore", DeprecationWarning)  # send_default_pii

import boto3
from sentry_sdk.integrations.boto3 import Boto3Integration

URL = {url!r}
MESSAGES = [
    {{"role": "user", "content": [
        {{"text": "Hi"}},
        {{"image": {{"format": "png", "source": {{"bytes": b"png"}}}}}},
        {{"document": {{"name": "d", "source": {{"s3Location": {{"uri": "s3://b/d.pdf"}}}}}}}},
    ]}},
    {{"role": "assistant", "content": [
        {{"toolUse": {{"toolUseId": "t0", "name": "weather", "input": {{"city": "Rome"}}}}}},
        {{"reasoningContent": {{"reasoningText": {{"text": "hmm"}}}}}},
    ]}},
    {{"role": "user", "content": [
        {{"toolResult": {{"toolUseId": "t0", "content": [
            {{"json": {{"t": 20}}}},
            {{"image": {{"format": "png", "source": {{"bytes": b"p"}}}}}},
        ]}}}},
    ]}},
]
TOOLS = {{"tools": [
    {{"toolSpec": {{
        "name": "weather", "description": "w", "inputSchema": {{"json": {{"type": "object"}}}}
    }}}},
    {{"systemTool": {{"name": "web_search"}}}},
]}}
client = boto3.session.Session(
    aws_access_key_id="a", aws_secret_access_key="b", region_name="us-east-1"
).client("bedrock-runtime", endpoint_url=URL)


def init(**options):
    sentry_sdk.init(
        dsn="https://key@o1.ingest.sentry.io/1", transport=KEEP, traces_sample_rate=1.0,
        default_integrations=False, integrations=[Boto3Integration()], **options
    )


def chat():
    client.converse(
        modelId="amazon.nova-cache", messages=MESSAGES, system=[{{"text": "be brief"}}],
        inferenceConfig={{"maxTokens": 10, "temperature": 0.5, "topP": 0.9}}, toolConfig=TOOLS,
    )
    response = client.converse_stream(
        modelId="nova-stream", messages=MESSAGES[:1], system=[{{"text": "s"}}], toolConfig=TOOLS
    )
    for _ in response["stream"]:
        pass


def every_call(span):
    chat()
    for _ in client.converse_stream(modelId="think", messages=MESSAGES[:1])["stream"]:
        pass
    try:
        client.converse(modelId="fail", messages=MESSAGES[:1])
    except client.exceptions.ValidationException:
        NOTES.append("converse failed")
    response = client.converse_stream(modelId="broken", messages=MESSAGES[:1])
    try:
        for _ in response["stream"]:
            pass
    except Exception as error:
        NOTES.append(type(error).__name__)
    client.invoke_model(modelId="titan", body=b'{{"prompt": "x"}}')["body"].read()
    for _ in client.invoke_model_with_response_stream(modelId="titan", body=b"{{}}")["body"]:
        pass
    # Read two events, a span in between, then closed: the span ends at close().
    stream = client.converse_stream(modelId="closed", messages=MESSAGES[:1])["stream"]
    events = iter(stream)
    next(events)
    with span("between"):
        next(events)
    stream.close()
    # A loop left early, never closed: the span never ends.
    for _ in client.converse_stream(modelId="left", messages=MESSAGES[:1])["stream"]:
        break


# 1. transaction mode, send_default_pii
init(send_default_pii=True)
with sentry_sdk.start_transaction(name="tx"):
    every_call(lambda name: sentry_sdk.start_span(op=name))
client.converse(modelId="outside", messages=MESSAGES[:1])
next_scenario()

# 2. transaction mode, no consent
init()
with sentry_sdk.start_transaction(name="tx"):
    chat()
next_scenario()

# 3. data_collection: inputs only
init(data_collection={{"gen_ai": {{"inputs": True, "outputs": False}}}})
with sentry_sdk.start_transaction(name="tx"):
    chat()
next_scenario()

# 4. data_collection: outputs only
init(data_collection={{"gen_ai": {{"inputs": False, "outputs": True}}}})
with sentry_sdk.start_transaction(name="tx"):
    chat()
next_scenario()

# 5. span streaming, send_default_pii; outside a span a call is a segment of its own
init(send_default_pii=True, trace_lifecycle="stream")
with sentry_sdk.traces.start_span(name="parent"):
    every_call(lambda name: sentry_sdk.traces.start_span(name=name))
client.converse(modelId="outside", messages=MESSAGES[:1])
client.invoke_model(modelId="outside-invoke", body=b"{{}}")
next_scenario()

# 6. span streaming, no consent
init(trace_lifecycle="stream")
with sentry_sdk.traces.start_span(name="parent"):
    chat()
finish()
"""

# Attributes that differ by SDK, process, port or clock, not by what was traced.
_VOLATILE = {
    "sentry.sdk.name",
    "sentry.sdk.version",
    "process.pid",
    "process.runtime.name",
    "process.runtime.version",
    "thread.id",
    "thread.name",
    "server.address",
    "server.port",
    "url.full",
    "aws.request.url",
    "gen_ai.response.time_to_first_chunk",
}


@pytest.fixture(scope="module")
def server() -> Iterator[BedrockServer]:
    with serving() as running:
        yield running


@pytest.fixture(scope="module")
def runs(server: BedrockServer, tmp_path_factory: pytest.TempPathFactory) -> list[Any]:
    """(sentry_sdk's, tripwire's) items of each scenario of `SCRIPT`."""
    tmp_path = tmp_path_factory.mktemp("bedrock")
    return run_each(SCRIPT.format(url=server.url), tmp_path, timeout=120)


def _shape(found: dict[str, Any]) -> dict[str, Any]:
    """The transactions' spans and every streamed or gen_ai span, volatile values masked."""
    shaped = spans(found)
    for span in shaped:
        attributes = span["attributes"]
        for key in _VOLATILE & set(attributes):
            attributes[key] = "?"
    transaction_spans = [
        {
            "op": span["op"],
            "description": span["description"],
            "origin": span["origin"],
            "status": span.get("status"),
            "tags": span.get("tags"),
            "data": {k: v for k, v in span["data"].items() if k not in _VOLATILE},
        }
        for transaction in of_type(found, "transaction")
        for span in transaction["spans"]
    ]
    return {"spans": shaped, "transaction_spans": transaction_spans, "notes": found["notes"]}


def _chat_spans(found: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """tripwire's sent gen_ai spans by model id (the last one of a model wins)."""
    return {
        values(span)["gen_ai.request.model"]: span
        for span in sent(found)
        if values(span).get("sentry.op") == "gen_ai.chat"
    }


def test_same_spans_as_sentry_sdk(runs: list[Any]) -> None:
    # Sent spans per scenario: the chats (and under streaming the rest) of each.
    assert [len(spans(ours)) for _, ours in runs] == [6, 2, 2, 2, 12, 3]
    for number, (theirs, ours) in enumerate(runs, 1):
        expected, found = _shape(theirs), _shape(ours)
        assert_same(found["spans"], expected["spans"])
        assert found["transaction_spans"] == expected["transaction_spans"], (
            number,
            dumps(found["transaction_spans"]),
        )
        assert found["notes"] == expected["notes"]


def test_converse_reports_model_tokens_and_messages_with_consent(runs: list[Any]) -> None:
    _, ours = runs[0]
    chats = _chat_spans(ours)
    converse = values(chats["amazon.nova-cache"])
    assert chats["amazon.nova-cache"]["name"] == "aws.bedrock-runtime.Converse"
    assert converse["sentry.origin"] == "auto.ai.boto3"
    assert converse["gen_ai.provider.name"] == "aws.bedrock"
    assert converse["gen_ai.response.streaming"] is False
    # The input tokens include the cache's read (3) and write (2) tokens.
    assert converse["gen_ai.usage.input_tokens"] == 17
    assert converse["gen_ai.usage.input_tokens.cached"] == 3
    assert converse["gen_ai.usage.input_tokens.cache_write"] == 2
    assert converse["gen_ai.usage.output_tokens"] == 5
    assert converse["gen_ai.usage.total_tokens"] == 22
    assert converse["gen_ai.request.max_tokens"] == 10
    assert converse["gen_ai.response.finish_reasons"] == ["tool_use"]
    messages = json.loads(converse["gen_ai.input.messages"])
    assert messages[0]["parts"] == [
        {"type": "text", "content": "Hi"},
        {"type": "blob", "modality": "image"},  # the bytes are not sent
        {"type": "uri", "modality": "document", "uri": "s3://b/d.pdf"},
    ]
    # Of a tool's result, the JSON and text items.
    (result,) = messages[2]["parts"]
    assert result == {"type": "tool_call_response", "response": [{"json": {"t": 20}}]}
    assert json.loads(converse["gen_ai.system_instructions"]) == [
        {"type": "text", "content": "be brief"}
    ]
    assert json.loads(converse["gen_ai.tool.definitions"])[1] == {"type": "web_search"}
    (output,) = json.loads(converse["gen_ai.output.messages"])
    assert output["parts"][0] == {"type": "text", "content": "Hello from Bedrock"}
    # Outside a transaction nothing is sent.
    assert "outside" not in chats


def test_prompts_only_with_consent(runs: list[Any]) -> None:
    prompts = {"gen_ai.input.messages", "gen_ai.system_instructions"}
    for number in (2, 6):  # no consent: transaction mode, span streaming
        for span in _chat_spans(runs[number - 1][1]).values():
            found = values(span)
            assert not prompts & set(found)
            assert "gen_ai.output.messages" not in found
            # Tool definitions are not prompts: sent unless data_collection denies inputs.
            assert "gen_ai.tool.definitions" in found
            assert found["gen_ai.usage.output_tokens"] == 5
    inputs_only = [values(s) for s in _chat_spans(runs[2][1]).values()]
    outputs_only = [values(s) for s in _chat_spans(runs[3][1]).values()]
    assert all(prompts <= set(v) and "gen_ai.output.messages" not in v for v in inputs_only)
    assert all(
        not prompts & set(v)
        and "gen_ai.tool.definitions" not in v
        and "gen_ai.output.messages" in v
        for v in outputs_only
    )


def test_a_stream_span_ends_when_the_stream_is_consumed_or_closed(runs: list[Any]) -> None:
    _, ours = runs[4]
    chats = _chat_spans(ours)
    stream = values(chats["nova-stream"])
    assert stream["gen_ai.response.streaming"] is True
    assert stream["gen_ai.usage.input_tokens"] == 12
    assert stream["gen_ai.response.finish_reasons"] == ["tool_use"]
    assert isinstance(stream["gen_ai.response.time_to_first_chunk"], float)
    (output,) = json.loads(stream["gen_ai.output.messages"])
    assert output["parts"] == [
        {"type": "text", "content": "Hello from Bedrock"},
        {"type": "tool_call", "name": "weather", "arguments": '{"city": "Oslo"}'},
    ]
    (thought,) = json.loads(values(chats["think"])["gen_ai.output.messages"])
    assert thought["parts"][1:] == [
        {"type": "reasoning", "content": "Let me think"},
        {"type": "tool_call_response", "response": [{"text": "20C"}, {"json": {"t": 20}}]},
        {"type": "uri", "modality": "image", "uri": "s3://b/i.png"},
    ]
    # Closed after two events: ended at close(), after the span made in between.
    (between,) = [s for s in sent(ours) if s["name"] == "between"]
    closed = chats["closed"]
    assert closed["status"] == "ok"
    assert closed["end_timestamp"] >= between["end_timestamp"]
    assert between["parent_span_id"] != closed["span_id"]
    # Left early and never closed: never ended, never sent.
    assert "left" not in chats
    # Outside a span, a segment of its own.
    assert chats["outside"]["is_segment"] is True


def test_failures_end_the_span_with_an_error_status(runs: list[Any]) -> None:
    _, ours = runs[0]
    chats = _chat_spans(ours)
    assert chats["fail"]["status"] == "error"  # transaction mode's internal_error, as sent
    assert values(chats["fail"])["error.type"] == "ValidationException"
    assert values(chats["fail"])["http.response.status_code"] == 400
    assert chats["broken"]["status"] == "error"
    assert ours["notes"] == ["converse failed", "EventStreamError"]
    _, streamed = runs[4]
    streamed_chats = _chat_spans(streamed)
    assert streamed_chats["fail"]["status"] == "error"
    assert streamed_chats["broken"]["status"] == "error"


def test_other_operations_keep_plain_http_client_spans(runs: list[Any]) -> None:
    _, ours = runs[0]
    (transaction,) = of_type(ours, "transaction")
    invokes = [s for s in transaction["spans"] if (s["description"] or "").startswith("aws.")]
    assert [(s["op"], s["description"]) for s in invokes] == [
        ("http.client", "aws.bedrock-runtime.InvokeModel"),
        ("http.client", "aws.bedrock-runtime.InvokeModelWithResponseStream"),
    ]
    assert all(s["origin"] == "auto.http.boto3" for s in invokes)


def test_reset_undoes_the_event_stream_patch() -> None:
    tripwire.init(
        dsn="http://key@example.com/1",
        default_integrations=False,
        integrations=[Boto3Integration()],
    )
    assert getattr(botocore.eventstream.EventStream.__iter__, "__tripwire_boto3__", False)
    reset()
    assert not getattr(botocore.eventstream.EventStream.__iter__, "__tripwire_boto3__", False)
    assert not getattr(botocore.eventstream.EventStream.close, "__tripwire_boto3__", False)
