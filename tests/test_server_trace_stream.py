"""Streamed spans and gen_ai spans on the trace pages, sent by the real SDKs.

sentry-sdk 2.75 and tripwire run in subprocesses (each SDK installs global hooks)
against the server and a fake OpenAI API, both in this process on 127.0.0.1:

- sentry-sdk, transaction mode: ``GET /chat`` makes OpenAI calls; its gen_ai spans
  go out as ``span`` items beside the transaction (``stream_gen_ai_spans``).
- sentry-sdk, ``trace_lifecycle="stream"``: a segment that continues that trace from
  a span of the transaction, with nested spans, attributes, an error and a model call.
- tripwire: a transaction whose gen_ai spans travel inside it, without prompts.

The JSON API and the pages are read back; one headless Chromium opens the trace page
and clicks spans open.
"""

from __future__ import annotations

import html
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _lazy import skip_module_without

pytest.importorskip("starlette", reason="the server extra is not installed")
pytest.importorskip("uvicorn", reason="the server extra is not installed")
skip_module_without("openai", reason="openai is not installed")
skip_module_without("sentry_sdk", reason="sentry-sdk is not installed")

from fakes.llm_server import serving  # noqa: E402

from tripwire.server.app import ServerThread  # noqa: E402
from tripwire.server.genai import format_cost  # noqa: E402

SENTRY_SCRIPT = """
    import os, sys, warnings
    warnings.simplefilter("ignore", DeprecationWarning)
    import openai, sentry_sdk
    from sentry_sdk.integrations.openai import OpenAIIntegration

    llm = openai.OpenAI(api_key="k", base_url=os.environ["LLM"] + "/v1", max_retries=0)
    msgs = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hi there"}]

    sentry_sdk.init(
        dsn=os.environ["DSN"], traces_sample_rate=1.0, send_default_pii=True,
        default_integrations=False, integrations=[OpenAIIntegration()], release="shop@3",
    )
    with sentry_sdk.start_transaction(name="GET /chat", op="http.server") as tx:
        llm.chat.completions.create(model="gpt-4o-mini", messages=msgs)
        for _ in llm.chat.completions.create(
            model="gpt-4o", messages=msgs[1:], stream=True, stream_options={"include_usage": True}
        ):
            pass
        llm.embeddings.create(model="text-embedding-3-small", input="hello")
        with sentry_sdk.start_span(op="queue.publish", name="enqueue job") as publish:
            headers = dict(publish.iter_headers())
    print(tx.trace_id, publish.span_id, tx.span_id)
    sentry_sdk.flush()
    sentry_sdk.get_client().close()

    sentry_sdk.init(
        dsn=os.environ["DSN"], traces_sample_rate=1.0, send_default_pii=True,
        default_integrations=False, integrations=[OpenAIIntegration()], release="shop@3",
        trace_lifecycle="stream",
    )
    from sentry_sdk import traces
    traces.continue_trace(headers)
    with traces.start_span(name="process job", attributes={"job.kind": "report"}) as segment:
        with traces.start_span(name="load rows", attributes={"db.system": "sqlite", "rows": 42}):
            with traces.start_span(name="decode"):
                pass
        llm.chat.completions.create(model="house-model", messages=msgs[1:])
        with traces.start_span(name="render report") as render:
            try:
                raise ValueError("no template")
            except ValueError:
                sentry_sdk.capture_exception()
                render.status = "error"
    print(segment.span_id, render.span_id)
    sentry_sdk.flush()
    sentry_sdk.get_client().close()
"""

TRIPWIRE_SCRIPT = """
    import os
    import openai, tripwire
    from tripwire.integrations.openai import OpenAIIntegration

    tripwire.init(
        dsn=os.environ["DSN"], traces_sample_rate=1.0, default_integrations=False,
        integrations=[OpenAIIntegration()],
    )
    llm = openai.OpenAI(api_key="k", base_url=os.environ["LLM"] + "/v1", max_retries=0)
    with tripwire.start_transaction(name="POST /summarize", op="http.server") as tx:
        llm.chat.completions.create(
            model="claude-3-5-haiku-20241022", messages=[{"role": "user", "content": "secret"}]
        )
    print(tx.trace_id)
    tripwire.flush()
    tripwire.get_client().close()
"""


def run(script: str, env: dict[str, str], folder: Path, name: str) -> list[str]:
    path = folder / f"{name}.py"
    path.write_text(textwrap.dedent(script))
    proc = subprocess.run(
        [sys.executable, str(path)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout.split()


def get(server: ServerThread, path: str) -> Any:
    with urllib.request.urlopen(server.url + path, timeout=60) as response:
        body = response.read()
        if response.headers.get("content-type", "").startswith("application/json"):
            return json.loads(body)
        return body.decode()


class World:
    server: ServerThread
    trace_id: str
    publish_span: str
    transaction_span: str
    segment_span: str
    render_span: str
    tripwire_trace: str


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    folder = tmp_path_factory.mktemp("trace_stream")
    w = World()
    with serving() as llm, ServerThread(db=folder / "traces.db") as server:
        env = {"DSN": server.dsn, "LLM": llm.url}
        out = run(SENTRY_SCRIPT, env, folder, "sentry_app")
        w.trace_id, w.publish_span, w.transaction_span, w.segment_span, w.render_span = out
        (w.tripwire_trace,) = run(TRIPWIRE_SCRIPT, env, folder, "tripwire_app")
        w.server = server
        yield w


def by_name(trace: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {s["description"]: s for s in trace["spans"]}


def test_streamed_spans_nest_under_their_parents_in_the_joint_trace(world: World) -> None:
    trace = get(world.server, f"/api/0/traces/{world.trace_id}/")
    spans = by_name(trace)
    # The streamed segment continues the trace under the transaction's span.
    segment = spans["process job"]
    assert segment["span_id"] == world.segment_span
    assert segment["is_segment"] == 1
    assert segment["transaction_event_id"] is None
    assert segment["parent_span_id"] == world.publish_span
    assert segment["depth"] == spans["enqueue job"]["depth"] + 1
    assert spans["load rows"]["parent_span_id"] == world.segment_span
    assert spans["decode"]["depth"] == segment["depth"] + 2
    # Attributes are the span's data, with their values.
    assert spans["load rows"]["data"]["db.system"] == "sqlite"
    assert spans["load rows"]["data"]["rows"] == 42
    assert segment["data"]["job.kind"] == "report"
    assert spans["render report"]["status"] == "error"
    # sentry.op becomes the op: the model call made in streaming mode.
    (house,) = [
        s for s in trace["spans"] if s["op"] == "gen_ai.chat" and s["transaction_event_id"] is None
    ]
    assert house["parent_span_id"] == world.segment_span
    # Tree order: every span after its parent.
    seen: set[str] = set()
    for span in trace["spans"]:
        parent = span["parent_span_id"]
        assert (
            parent is None or parent in seen or parent not in {s["span_id"] for s in trace["spans"]}
        )
        seen.add(span["span_id"])
    # The error happened in the streamed span that raised.
    (error,) = trace["errors"]
    assert error["span_id"] == world.render_span


def test_gen_ai_spans_streamed_beside_a_transaction_belong_to_it(world: World) -> None:
    (txn,) = [t for t in get(world.server, "/api/0/transactions/") if t["name"] == "GET /chat"]
    detail = get(world.server, f"/api/0/transactions/{txn['event_id']}/")
    ops = sorted(s["op"] for s in detail["trace"]["spans"] if (s["op"] or "").startswith("gen_ai."))
    assert ops == ["gen_ai.chat", "gen_ai.chat", "gen_ai.embeddings"]
    # Only this transaction's spans: the streamed segment is not part of it.
    assert "process job" not in by_name(detail["trace"])
    assert txn["spans"] == len(detail["trace"]["spans"])


def test_gen_ai_model_tokens_prompts_and_cost_per_trace(world: World) -> None:
    trace = get(world.server, f"/api/0/traces/{world.trace_id}/")
    totals = trace["gen_ai"]
    calls = [s for s in trace["spans"] if s.get("gen_ai")]
    assert len(calls) == 4
    assert totals["calls"] == 4
    assert totals["input_tokens"] == sum(s["gen_ai"]["input_tokens"] for s in calls)
    assert totals["output_tokens"] == sum(s["gen_ai"]["output_tokens"] or 0 for s in calls)
    mini = next(s["gen_ai"] for s in calls if s["gen_ai"]["request_model"] == "gpt-4o-mini")
    assert mini["model"] == "gpt-4o-mini-2024"
    assert mini["priced_as"] == "gpt-4o-mini"
    expected = (mini["input_tokens"] * 0.15 + mini["output_tokens"] * 0.60) / 1e6
    assert mini["cost"] == pytest.approx(expected)
    # The prompt as sent (send_default_pii), system instructions first, and the answer.
    assert mini["prompt"] == [
        {"role": "system", "text": "be brief"},
        {"role": "user", "text": "hi there"},
    ]
    assert [m["text"] for m in mini["response"]] == ["Hello there!"]
    # An unknown model has tokens but no cost; the totals say which calls are priced.
    house = next(s["gen_ai"] for s in calls if s["gen_ai"]["request_model"] == "house-model")
    assert house["input_tokens"] > 0
    assert house["cost"] is None
    assert totals["priced_calls"] == 3
    assert totals["unpriced_models"] == ["house-model-2024"]
    assert totals["cost"] == pytest.approx(sum(s["gen_ai"]["cost"] or 0 for s in calls))


def test_tripwire_gen_ai_spans_inside_a_transaction_without_prompts(world: World) -> None:
    trace = get(world.server, f"/api/0/traces/{world.tripwire_trace}/")
    (call,) = [s for s in trace["spans"] if s.get("gen_ai")]
    info = call["gen_ai"]
    assert call["transaction_event_id"] is not None
    assert info["priced_as"] == "claude-3-5-haiku"
    assert info["prompt"] == [] and info["response"] == []
    assert trace["gen_ai"]["cost"] == pytest.approx(
        (info["input_tokens"] * 0.80 + info["output_tokens"] * 4.0) / 1e6
    )
    page = get(world.server, f"/traces/{world.tripwire_trace}/")
    assert "No prompt or response was sent" in page
    assert "secret" not in page


def test_traces_list_shows_streamed_segments_with_transactions(world: World) -> None:
    page = get(world.server, "/traces/")
    assert '<tr class="segment">' in page
    assert f'<a href="/traces/{world.trace_id}/">process job</a>' in page
    assert "GET /chat" in page
    # Per row, the tokens of its gen_ai calls, and a cost only where every model is known.
    trace = get(world.server, f"/api/0/traces/{world.trace_id}/")
    calls = [s["gen_ai"] for s in trace["spans"] if s.get("gen_ai")]
    chat = [c for c in calls if c["request_model"] != "house-model"]
    (house,) = [c for c in calls if c["request_model"] == "house-model"]
    cells = {
        name: html.unescape(re.sub(r"<[^>]+>", "", cell))
        for name, cell in re.findall(
            r'<tr class="\w+">\s*<td><a href="[^"]+">([^<]+)</a>.*?'
            r'<td class="num genai-usage">(.*?)</td>',
            page,
            re.S,
        )
    }
    tokens = sum(c["input_tokens"] + (c["output_tokens"] or 0) for c in chat)
    cost = sum(c["cost"] for c in chat)
    assert cells["GET /chat"] == f"{tokens:,} tokens · ≈ {format_cost(cost)}"
    assert cells["process job"] == f"{house['input_tokens'] + house['output_tokens']:,} tokens"
    searched = get(world.server, "/traces/?query=process")
    assert "process job" in searched
    assert "GET /chat" not in searched


TRIPWIRE_STREAM_SCRIPT = """
    import os, tripwire
    from tripwire import traces

    tripwire.init(
        dsn=os.environ["DSN"], traces_sample_rate=1.0, default_integrations=False,
        trace_lifecycle="stream",
    )
    with traces.start_span(name="nightly sync", attributes={"batch": 7}) as segment:
        with traces.start_span(name="fetch page"):
            pass
    print(segment.trace_id, segment.span_id)
    tripwire.flush()
    tripwire.get_client().close()
"""


def test_tripwire_streamed_spans_are_assembled_too(world: World, tmp_path: Path) -> None:
    pytest.importorskip("tripwire.traces", reason="tripwire has no span streaming yet")
    trace_id, segment_id = run(TRIPWIRE_STREAM_SCRIPT, {"DSN": world.server.dsn}, tmp_path, "tw")
    trace = get(world.server, f"/api/0/traces/{trace_id}/")
    assert [(s["description"], s["depth"], s["is_segment"]) for s in trace["spans"]] == [
        ("nightly sync", 0, 1),
        ("fetch page", 1, 0),
    ]
    assert trace["spans"][0]["span_id"] == segment_id
    assert trace["spans"][0]["data"]["batch"] == 7


# -- in a browser -------------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None
)
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@pytest.mark.skipif(
    CHROMIUM is None or not os.path.exists(CHROMEDRIVER),
    reason="headless Chromium and chromedriver are not installed",
)
def test_trace_page_in_a_browser_shows_ai_totals_and_span_details_on_click(
    world: World, tmp_path: Path
) -> None:
    pytest.importorskip("selenium", reason="selenium is not installed")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM or ""
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--window-size=1300,1000",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    try:
        driver.get(f"{world.server.url}/traces/{world.trace_id}/")
        summary = driver.find_element(By.ID, "genai-summary")
        assert "4 model calls" in summary.text
        assert "estimate" in summary.text
        assert "no price known for house-model-2024" in summary.text
        models = [r.text for r in summary.find_elements(By.CSS_SELECTOR, "tbody td:first-child")]
        assert set(models) == {
            "gpt-4o-mini-2024",
            "gpt-4o-2024",
            "text-embedding-3-small",
            "house-model-2024",
        }

        # A streamed span's attributes are hidden until its row is clicked.
        row = driver.find_element(By.CSS_SELECTOR, f'tr[data-span-id="{world.segment_span}"]')
        attributes = row.find_element(By.CSS_SELECTOR, "table.span-data")
        assert not attributes.is_displayed()
        row.find_element(By.TAG_NAME, "summary").click()
        assert attributes.is_displayed()
        assert "job.kind" in attributes.text and "report" in attributes.text
        assert "streamed (segment root)" in attributes.text

        # A model call: the chip on the row, the prompt and response once opened.
        chat = next(
            r
            for r in driver.find_elements(By.CSS_SELECTOR, "tr.span")
            if "gpt-4o-mini-2024 ·" in r.find_element(By.TAG_NAME, "summary").text
        )
        prompt = chat.find_element(By.CSS_SELECTOR, ".genai-prompt")
        assert not prompt.is_displayed()
        chat.find_element(By.TAG_NAME, "summary").click()
        assert prompt.is_displayed()
        assert "be brief" in prompt.text and "hi there" in prompt.text
        assert "Hello there!" in chat.find_element(By.CSS_SELECTOR, ".genai-response").text
        assert "estimate" in chat.find_element(By.CSS_SELECTOR, "table.genai").text
    finally:
        driver.quit()
