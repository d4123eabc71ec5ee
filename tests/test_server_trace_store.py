"""Streamed spans in the store and gen_ai totals: the edges, over real HTTP on 127.0.0.1.

Span items are built as sentry-sdk 2.75 sends them (a v2 container, typed attributes);
`test_server_trace_stream` covers what the SDKs themselves send.
"""

from __future__ import annotations

import http.client
import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pytest

pytest.importorskip("starlette", reason="the server extra is not installed")
pytest.importorskip("uvicorn", reason="the server extra is not installed")

from tripwire.envelope import Envelope
from tripwire.server.app import ServerThread
from tripwire.server.genai import format_cost, model_price
from tripwire.server.retention import Retention
from tripwire.server.schema import MIGRATIONS, SCHEMA_VERSION
from tripwire.server.store import Store

TRACE = "5b8efff798038103d269b633813fc60c"
T0 = 1_700_000_000.0


def post(server: ServerThread, body: bytes) -> tuple[int, Any]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        key = server.store.default_project()["public_key"]
        conn.request(
            "POST",
            "/api/1/envelope/",
            body=body,
            headers={"X-Sentry-Auth": f"Sentry sentry_key={key}, sentry_version=7"},
        )
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"{}")
    finally:
        conn.close()


def get(server: ServerThread, path: str) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        data = response.read()
        assert response.status == 200, data[:500]
        if response.getheader("content-type", "").startswith("application/json"):
            return json.loads(data)
        return data.decode()
    finally:
        conn.close()


def attrs(**values: Any) -> dict[str, Any]:
    kinds = {bool: "boolean", int: "integer", float: "double", str: "string"}
    return {
        k.replace("__", "."): {"type": kinds.get(type(v), "string"), "value": v}
        for k, v in values.items()
    }


def span(
    span_id: str,
    name: str,
    start: float,
    end: float,
    parent: Optional[str] = None,
    segment: bool = False,
    trace_id: str = TRACE,
    **attributes: Any,
) -> dict[str, Any]:
    found: dict[str, Any] = {
        "trace_id": trace_id,
        "span_id": span_id,
        "name": name,
        "status": "ok",
        "is_segment": segment,
        "start_timestamp": T0 + start,
        "end_timestamp": T0 + end,
        "attributes": attrs(**attributes),
    }
    if parent:
        found["parent_span_id"] = parent
    return found


def span_envelope(*spans: dict[str, Any]) -> bytes:
    payload = json.dumps({"version": 2, "items": list(spans)}).encode()
    header = {
        "type": "span",
        "item_count": len(spans),
        "content_type": "application/vnd.sentry.items.span.v2+json",
        "length": len(payload),
    }
    return b"{}\n" + json.dumps(header).encode() + b"\n" + payload + b"\n"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerThread]:
    with ServerThread(db=tmp_path / "spans.db") as s:
        yield s


def test_known_models_and_their_snapshots_are_priced_others_are_not() -> None:
    assert model_price("gpt-4o") == ("gpt-4o", (2.50, 10.0))
    assert model_price("gpt-4o-2024-08-06") == ("gpt-4o", (2.50, 10.0))
    assert model_price("gpt-4o-mini-2024-07-18") == ("gpt-4o-mini", (0.15, 0.60))
    assert model_price("claude-3-5-sonnet-20241022") == ("claude-3-5-sonnet", (3.0, 15.0))
    assert model_price("models/gemini-2.0-flash-001") == ("gemini-2.0-flash", (0.10, 0.40))
    assert model_price("claude-sonnet-4-5-20250929") == ("claude-sonnet-4-5", (3.0, 15.0))
    # Not the model: a variant priced differently, or unknown.
    assert model_price("gpt-4o-audio-preview") is None
    assert model_price("llama3") is None
    assert model_price(None) is None
    assert format_cost(0.000048) == "$0.000048"
    assert format_cost(0.0123) == "$0.0123"
    assert format_cost(12.5) == "$12.50"


def test_an_agent_run_summing_its_calls_is_counted_once(server: ServerThread) -> None:
    usage = {"gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 10}
    env = Envelope()
    env.add_transaction(
        {
            "event_id": "e" * 32,
            "type": "transaction",
            "transaction": "agent",
            "start_timestamp": T0,
            "timestamp": T0 + 2,
            "contexts": {"trace": {"trace_id": TRACE, "span_id": "1" * 16}},
            "spans": [
                {
                    "span_id": "2" * 16,
                    "parent_span_id": "1" * 16,
                    "op": "gen_ai.invoke_agent",
                    "description": "invoke_agent helper",
                    "start_timestamp": T0,
                    "timestamp": T0 + 2,
                    "data": {
                        "gen_ai.operation.name": "invoke_agent",
                        "gen_ai.agent.name": "helper",
                        "gen_ai.request.model": "gpt-4o",
                        "gen_ai.usage.input_tokens": 200,
                        "gen_ai.usage.output_tokens": 20,
                    },
                },
                *(
                    {
                        "span_id": str(n) * 16,
                        "parent_span_id": "2" * 16,
                        "op": "gen_ai.chat",
                        "description": "chat gpt-4o",
                        "start_timestamp": T0 + n / 10,
                        "timestamp": T0 + n / 10 + 0.05,
                        "data": {"gen_ai.request.model": "gpt-4o", **usage},
                    }
                    for n in (3, 4)
                ),
            ],
        }
    )
    assert post(server, env.serialize())[0] == 200
    trace = get(server, f"/api/0/traces/{TRACE}/")
    totals = trace["gen_ai"]
    assert (totals["calls"], totals["input_tokens"], totals["output_tokens"]) == (2, 200, 20)
    assert totals["cost"] == pytest.approx((200 * 2.5 + 20 * 10.0) / 1e6)
    agent = next(s for s in trace["spans"] if s["op"] == "gen_ai.invoke_agent")["gen_ai"]
    assert agent["counted"] is False
    assert agent["agent"] == "helper"
    assert agent["cost"] is None  # not a model call: no price of its own
    page = get(server, f"/traces/{TRACE}/")
    assert "counted at the calls" in page


def test_a_resent_batch_is_stored_once_and_bad_spans_are_refused(server: ServerThread) -> None:
    batch = span_envelope(
        span("a" * 16, "root", 0, 1, segment=True),
        span("b" * 16, "child", 0.1, 0.2, parent="a" * 16, sentry__segment__id="a" * 16),
    )
    assert post(server, batch) == (200, {})
    status, body = post(server, batch)
    assert status == 200
    assert body["dropped"] == [
        {"type": "span", "reason": "duplicate", "detail": "2 spans already stored"}
    ]
    assert len(get(server, f"/api/0/traces/{TRACE}/")["spans"]) == 2
    # No span with valid ids: the request says so.
    status, body = post(server, span_envelope({**span("c" * 16, "x", 0, 1), "trace_id": "zz"}))
    assert status == 400
    assert "span" in body["detail"]
    status, body = post(server, span_envelope(span("d" * 16, "ok", 0, 1), {"span_id": 3}))
    assert status == 200
    assert body["dropped"][0]["reason"] == "invalid"


def test_streamed_span_text_is_escaped_on_the_page(server: ServerThread) -> None:
    script = "<script>alert(1)</script>"
    post(
        server,
        span_envelope(
            span(
                "a" * 16,
                f"root {script}",
                0,
                1,
                segment=True,
                gen_ai__request__model="gpt-4o",
                gen_ai__request__messages=json.dumps([{"role": "user", "content": script}]),
                gen_ai__usage__input_tokens=3,
                note=script,
            )
        ),
    )
    page = get(server, f"/traces/{TRACE}/")
    assert script not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_retention_forgets_old_streamed_spans(tmp_path: Path) -> None:
    with ServerThread(db=tmp_path / "r.db") as server:
        post(server, span_envelope(span("a" * 16, "old", 0, 1, segment=True)))
        post(
            server,
            span_envelope(
                span("b" * 16, "new", 10 * 86400, 10 * 86400 + 1, segment=True, trace_id="f" * 32)
            ),
        )
        server.store.retention = Retention(days=5)
        deleted = server.store.prune(now=T0 + 10 * 86400)
        assert deleted == {"spans": 1}
        assert get(server, f"/api/0/traces/{TRACE}/")["spans"] == []
        assert len(get(server, f"/api/0/traces/{'f' * 32}/")["spans"]) == 1


def test_span_items_kept_raw_by_an_older_server_become_spans(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    for script in MIGRATIONS[:3]:
        conn.executescript(script)
    conn.execute("INSERT INTO projects VALUES (1, 'default', 'k', 0)")
    conn.execute(
        "INSERT INTO transactions (project_id, event_id, received, trace_id, span_id, name, "
        "start_time, end_time, data) VALUES (1, ?, 1, ?, ?, 'GET /chat', ?, ?, '{}')",
        ("e" * 32, TRACE, "1" * 16, T0, T0 + 1),
    )
    payload = json.dumps(
        {
            "items": [
                span(
                    "2" * 16,
                    "chat gpt-4o",
                    0.1,
                    0.5,
                    parent="1" * 16,
                    sentry__op="gen_ai.chat",
                    sentry__segment__id="1" * 16,
                    gen_ai__response__streaming=True,
                    gen_ai__request__model="gpt-4o",
                    gen_ai__usage__input_tokens=10,
                )
            ]
        }
    )
    for body in (payload.encode(), b"not json"):
        conn.execute(
            "INSERT INTO items (project_id, received, type, headers, payload) "
            "VALUES (1, 1, 'span', '{}', ?)",
            (body,),
        )
    conn.execute("PRAGMA user_version = 3")
    conn.commit()
    conn.close()

    with Store(path) as store, ServerThread(db=store) as server:
        db = store.connection()
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        # The convertible item is gone from the raw items; the other one stays.
        assert [r[0] for r in db.execute("SELECT payload FROM items")] == [b"not json"]
        detail = get(server, f"/api/0/transactions/{'e' * 32}/")
        (chat,) = [s for s in detail["trace"]["spans"] if s["op"] == "gen_ai.chat"]
        assert chat["description"] == "chat gpt-4o"
        assert chat["parent_span_id"] == "1" * 16
        assert chat["data"]["gen_ai.response.streaming"] is True
        assert chat["gen_ai"]["input_tokens"] == 10
