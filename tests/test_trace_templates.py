"""`@trace(template=...)`: the AI span templates, side by side with sentry_sdk 2.75."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests._side_by_side import of_type, run_both

SCRIPT = """
import asyncio
import warnings
warnings.simplefilter("ignore", DeprecationWarning)  # send_default_pii
from sentry_sdk.consts import SPANTEMPLATE as T

sentry_sdk.init(transport=KEEP, traces_sample_rate=1.0, default_integrations=False,
                auto_enabling_integrations=False, stream_gen_ai_spans=False, {options})


class Reply:
    model = "reply-model"

    class usage:
        input_tokens = 5
        output_tokens = 6
        total_tokens = 11


class Odd:
    @property
    def usage(self):
        raise RuntimeError("no usage here")

    def __repr__(self):
        raise RuntimeError("no repr either")


@sentry_sdk.trace(template=T.AI_CHAT)
def chat(messages, model="gpt-4o", temperature=0.5, max_tokens=10, top_p=0.9, top_k=3,
         frequency_penalty=0.1, presence_penalty=0.2, system_prompt=None, prompt=None):
    return {{"model": "gpt-4o-2024",
            "usage": {{"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}}}}


@sentry_sdk.trace(template=T.AI_CHAT, name="named")
def chat_object(prompt, model_name="m2"):
    return Reply()


@sentry_sdk.trace(template=T.AI_AGENT)
def agent(task, agent_name="bond"):
    chat([{{"role": "user", "content": task}}], model="gpt-4o", temperature=0.2,
         max_tokens=7, top_p=0.5, top_k=2, frequency_penalty=0.3, presence_penalty=0.4,
         system_prompt="be brief", prompt=task)
    return "done"


@sentry_sdk.trace(template=T.AI_TOOL)
def weather(city, unit="c"):
    \"\"\"The weather in a city.\"\"\"
    return {{"temp": 3}}


@sentry_sdk.trace(template="ai_tool", op="custom.op", attributes={{"extra": 1}})
async def odd_tool(x):
    return Odd()


@sentry_sdk.trace(template=T.AI_TOOL)
def failing():
    raise ValueError("tool broke")


with sentry_sdk.start_transaction(name="ai work"):
    agent("plan a trip", agent_name="planner")
    chat_object("hello", model_name="small")
    weather("Paris")
    asyncio.run(odd_tool(3))
    try:
        failing()
    except ValueError:
        pass
finish()
"""


def spans(found: dict[str, Any]) -> list[dict[str, Any]]:
    (tx,) = of_type(found, "transaction")
    by_id = {s["span_id"]: s for s in tx["spans"]}
    out = []
    for span in tx["spans"]:
        data = {k: v for k, v in (span.get("data") or {}).items() if not k.startswith("thread.")}
        parent = by_id.get(span.get("parent_span_id"))
        out.append(
            {
                "op": span["op"],
                "description": span["description"],
                "status": span.get("status"),
                "parent": parent["description"] if parent else None,
                "data": data,
            }
        )
    return out


@pytest.mark.parametrize(
    "options",
    [
        "send_default_pii=True",
        "send_default_pii=False",
        "data_collection={'gen_ai': {'inputs': False, 'outputs': False}}",
    ],
)
def test_same_spans_as_sentry_sdk(tmp_path: Path, options: str) -> None:
    sentry, ours = run_both(SCRIPT.format(options=options), tmp_path)
    expected, found = spans(sentry), spans(ours)
    assert json.dumps(found, indent=1, sort_keys=True) == json.dumps(
        expected, indent=1, sort_keys=True
    )
    by_name = {s["description"]: s for s in found}
    chat = by_name["chat gpt-4o"]
    assert chat["op"] == "gen_ai.chat"
    assert chat["parent"] == "invoke_agent __main__.agent"
    assert by_name["invoke_agent __main__.agent"]["data"]["gen_ai.agent.name"] == "planner"
    assert chat["data"]["gen_ai.usage.input_tokens"] == 3
    assert chat["data"]["gen_ai.response.model"] == "gpt-4o-2024"
    assert by_name["chat small"]["data"]["gen_ai.usage.total_tokens"] == 11
    assert by_name["execute_tool __main__.failing"]["status"] == "internal_error"
    if options == "send_default_pii=True":
        weather = by_name["execute_tool __main__.weather"]["data"]
        assert weather["gen_ai.tool.output"] == "{'temp': 3}"
        assert weather["gen_ai.tool.description"] == "The weather in a city."
        assert "be brief" in chat["data"]["gen_ai.request.messages"]
    else:
        weather = by_name["execute_tool __main__.weather"]["data"]
        assert "gen_ai.tool.output" not in weather
        assert "gen_ai.tool.input" not in weather
    if options.startswith("data_collection"):
        assert "gen_ai.request.messages" not in chat["data"]


GEN_AI_ITEMS = """
from sentry_sdk.consts import SPANTEMPLATE as T

sentry_sdk.init(transport=KEEP, traces_sample_rate=1.0, default_integrations=False,
                auto_enabling_integrations=False, release="r1", environment="e",
                server_name="host", {options})
sentry_sdk.set_user({{"id": "u1", "username": "ann", "email": "a@example.com"}})


@sentry_sdk.trace(template=T.AI_TOOL)
def tool(city):
    return {{"temp": 3}}


@sentry_sdk.trace(template=T.AI_TOOL)
def failing():
    raise ValueError("no")


with sentry_sdk.start_transaction(name="with ai", op="task"):
    with sentry_sdk.start_span(op="db", name="select") as span:
        span.set_data("rows", [1, 2])
    tool("Paris")
    with sentry_sdk.start_span(op="gen_ai.chat", name="chat m") as span:
        span.set_data("gen_ai.request.messages", [{{"role": "user", "content": "hi"}}])
        span.set_data("mixed", [1, "a"])
        span.set_data("nothing", None)
        span.set_tag("tagged", "yes")
    try:
        failing()
    except ValueError:
        pass
with sentry_sdk.start_transaction(name="no ai"):
    with sentry_sdk.start_span(op="http.client", name="GET /"):
        pass
finish()
"""


def _comparable_v2(span: dict[str, Any], segment: dict[str, str]) -> dict[str, Any]:
    attributes = dict(span["attributes"])
    for key in ("thread.id", "sentry.sdk.name", "sentry.sdk.version"):
        attributes.pop(key)
    assert attributes.pop("sentry.segment.id")["value"] == segment["span_id"]
    assert span["parent_span_id"] == segment["span_id"]
    assert span["end_timestamp"] >= span["start_timestamp"] > 1e9
    return {
        "name": span["name"],
        "status": span["status"],
        "is_segment": span["is_segment"],
        "attributes": attributes,
    }


@pytest.mark.parametrize("options", ["", "stream_gen_ai_spans=False"])
def test_gen_ai_spans_leave_the_transaction_as_sentry_sdk_sends_them(
    tmp_path: Path, options: str
) -> None:
    sentry, ours = run_both(GEN_AI_ITEMS.format(options=options), tmp_path)
    for found in (sentry, ours):
        assert [item["type"] for item in found["items"]] == (
            ["transaction", "transaction"]
            if options
            else ["transaction", "span", "transaction"]
        )
        with_ai, without = of_type(found, "transaction")
        kept = [span["op"] for span in with_ai["spans"]]
        if options:
            assert sorted(kept) == sorted(
                ["db", "gen_ai.execute_tool", "gen_ai.chat", "gen_ai.execute_tool"]
            )
            continue
        assert kept == ["db"]
        assert [span["op"] for span in without["spans"]] == ["http.client"]
    if options:
        return
    (expected,) = of_type(sentry, "span")
    (got,) = of_type(ours, "span")
    assert got["version"] == expected["version"] == 2
    segment = of_type(ours, "transaction")[0]["contexts"]["trace"]
    sentry_segment = of_type(sentry, "transaction")[0]["contexts"]["trace"]
    assert [_comparable_v2(s, segment) for s in got["items"]] == [
        _comparable_v2(s, sentry_segment) for s in expected["items"]
    ]
    chat = next(s for s in got["items"] if s["name"] == "chat m")["attributes"]
    assert chat["user.email"] == {"value": "a@example.com", "type": "string"}
    assert chat["mixed"] == {"value": '[1, "a"]', "type": "string"}
    assert "nothing" not in chat
    failing = next(s for s in got["items"] if s["name"].endswith("failing"))
    assert failing["status"] == "error"
