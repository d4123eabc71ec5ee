"""Trace waterfalls in the local backend, over real HTTP on 127.0.0.1: what a user sees.

A transaction's page nests its spans by ``parent_span_id`` with offsets and widths to
scale; a trace's page joins its transactions (across services), errors and logs on
one waterfall; a trace with errors only says so instead of showing 1970.
"""

from __future__ import annotations

import html
import http.client
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional

import pytest

pytest.importorskip("starlette", reason="the server extra is not installed")
pytest.importorskip("uvicorn", reason="the server extra is not installed")

from tripwire.envelope import Envelope
from tripwire.server.app import ServerThread

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
T0 = 1_700_000_000.0


def request(server: ServerThread, method: str, path: str, body: Optional[bytes] = None) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        headers = {}
        if body is not None:
            key = server.store.default_project()["public_key"]
            headers["X-Sentry-Auth"] = f"Sentry sentry_key={key}, sentry_version=7"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        assert response.status == 200, (path, data)
        if response.getheader("content-type", "").startswith("application/json"):
            return json.loads(data)
        return data.decode()
    finally:
        conn.close()


def send(server: ServerThread, kind: str, payload: dict[str, Any]) -> None:
    env = Envelope()
    if kind == "log":
        raw = json.dumps(payload).encode()
        body = (
            b'{}\n{"type":"log","item_count":1,"content_type":"application/vnd.sentry.items.log'
            b'+json","length":' + str(len(raw)).encode() + b"}\n" + raw + b"\n"
        )
        request(server, "POST", "/api/1/envelope/", body)
        return
    if kind == "transaction":
        env.add_transaction(payload)
    else:
        env.add_event(payload)
    request(server, "POST", "/api/1/envelope/", env.serialize())


def rows(document: str) -> list[tuple[str, int, str]]:
    """The waterfall's rows: (kind, depth, first words of the label)."""
    body = document.split('<table class="list waterfall">', 1)[1].split("</tbody>", 1)[0]
    found = []
    for kind, depth, cell in re.findall(
        r'<tr class="([\w -]+?)(?: segment)?"(?: data-span-id="\w+")? data-depth="(\d+)">\s*'
        r"<td[^>]*>(.*?)</(?:summary|td)>",
        body,
        re.S,
    ):
        label = " ".join(html.unescape(re.sub(r"<[^>]+>", " ", cell)).split())
        found.append((kind, int(depth), label))
    return found


def bar(document: str, span_id: str) -> tuple[float, float]:
    """The x and width (percent) of a span's bar."""
    row = document.split(f'data-span-id="{span_id}"', 1)[1].split("</svg>", 1)[0]
    x, width = re.search(r'<rect x="([\d.]+)%" y="1" width="([\d.]+)%"', row).groups()
    return float(x), float(width)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerThread]:
    s = ServerThread(db=tmp_path / "traces.db")
    with s:
        # The checkout service: GET /checkout (1 s) -> db (10%..30%) -> db.fetch.
        send(
            s,
            "transaction",
            {
                "event_id": "a" * 32,
                "type": "transaction",
                "transaction": "GET /checkout",
                "start_timestamp": T0,
                "timestamp": T0 + 1.0,
                "release": "shop@2",
                "contexts": {
                    "trace": {"trace_id": TRACE, "span_id": "1" * 16, "op": "http.server"}
                },
                "spans": [
                    {
                        "span_id": "2" * 16,
                        "parent_span_id": "1" * 16,
                        "op": "db",
                        "description": "SELECT * FROM cart <script>x</script>",
                        "start_timestamp": T0 + 0.1,
                        "timestamp": T0 + 0.3,
                        "data": {"db.system": "sqlite", "rows": 3},
                    },
                    {
                        "span_id": "3" * 16,
                        "parent_span_id": "2" * 16,
                        "op": "db.fetch",
                        "start_timestamp": T0 + 0.2,
                        "timestamp": T0 + 0.25,
                    },
                    {
                        "span_id": "4" * 16,
                        "parent_span_id": "1" * 16,
                        "op": "http.client",
                        "description": "POST http://payments/charge",
                        "start_timestamp": T0 + 0.4,
                        "timestamp": T0 + 0.9,
                    },
                ],
            },
        )
        # The payments service, called from span 4: its transaction nests under it.
        send(
            s,
            "transaction",
            {
                "event_id": "b" * 32,
                "type": "transaction",
                "transaction": "POST /charge",
                "start_timestamp": T0 + 0.45,
                "timestamp": T0 + 0.85,
                "contexts": {
                    "trace": {
                        "trace_id": TRACE,
                        "span_id": "5" * 16,
                        "parent_span_id": "4" * 16,
                        "op": "http.server",
                        "status": "internal_error",
                    }
                },
            },
        )
        # An error in the payments transaction, and a log in the db span.
        send(
            s,
            "event",
            {
                "event_id": "c" * 32,
                "timestamp": T0 + 0.8,
                "level": "error",
                "exception": {"values": [{"type": "CardDeclined", "value": "insufficient"}]},
                "contexts": {"trace": {"trace_id": TRACE, "span_id": "5" * 16}},
            },
        )
        send(
            s,
            "log",
            {
                "items": [
                    {
                        "timestamp": T0 + 0.22,
                        "trace_id": TRACE,
                        "level": "warn",
                        "body": "slow query",
                        "attributes": {
                            "sentry.trace.parent_span_id": {"value": "3" * 16, "type": "string"}
                        },
                    }
                ]
            },
        )
        yield s


def test_a_transactions_page_nests_its_spans_to_scale(server):
    document = request(server, "GET", f"/transactions/{'a' * 32}/")
    assert rows(document) == [
        ("span", 0, "http.server GET /checkout"),
        ("span", 1, "db SELECT * FROM cart <script>x</script>"),
        ("span", 2, "db.fetch"),
        ("trace-log", 3, "log warn slow query"),
        ("span", 1, "http.client POST http://payments/charge"),
    ]
    assert "<script>x</script>" not in document
    # To scale: the db span starts at 10% of the second and takes 20% of it.
    assert bar(document, "2" * 16) == pytest.approx((10.0, 20.0))
    assert bar(document, "3" * 16) == pytest.approx((20.0, 5.0))
    assert bar(document, "1" * 16) == pytest.approx((0.0, 100.0))
    # A span's data is one click away (a <details> of the row).
    db_row = document.split(f'data-span-id="{"2" * 16}"', 1)[1].split("</svg>", 1)[0]
    assert "<details><summary>" in db_row
    assert "<th>db.system</th><td><pre>sqlite</pre>" in db_row
    assert "+100.0 ms" in db_row and "200.0 ms" in db_row
    summary = " ".join(
        re.sub(r"<[^>]+>", " ", document.split('id="trace-summary">')[1].split("</p>")[0]).split()
    )
    assert "release shop@2" in summary and "1,000.0 ms" in summary and "4 spans" in summary
    assert f'href="/traces/{TRACE}/"' in document

    api = request(server, "GET", f"/api/0/transactions/{'a' * 32}/")
    assert api["name"] == "GET /checkout"
    assert [(r["kind"], r["depth"]) for r in api["trace"]["rows"]] == [
        ("span", 0),
        ("span", 1),
        ("span", 2),
        ("log", 3),
        ("span", 1),
    ]


def test_a_trace_joins_its_transactions_errors_and_logs(server):
    document = request(server, "GET", f"/traces/{TRACE}/")
    assert rows(document) == [
        ("span", 0, "http.server GET /checkout"),
        ("span", 1, "db SELECT * FROM cart <script>x</script>"),
        ("span", 2, "db.fetch"),
        ("trace-log", 3, "log warn slow query"),
        ("span", 1, "http.client POST http://payments/charge"),
        ("span", 2, "http.server POST /charge internal_error"),
        ("trace-error", 3, "error CardDeclined: insufficient"),
    ]
    summary = " ".join(
        re.sub(r"<[^>]+>", " ", document.split('id="trace-summary">')[1].split("</p>")[0]).split()
    )
    assert summary.endswith("· 2 transactions · 1 error · 1 log · 5 spans")
    # The error sits at its moment: 80% of the trace.
    error_row = document.split('<tr class="trace-error"', 1)[1].split("</tr>", 1)[0]
    assert 'x="80.0%"' in error_row
    assert re.search(r'href="/issues/\d+/\?event=c{32}"', error_row)
    assert f'href="/transactions/{"b" * 32}/"' in document
    # The payments transaction's own page has only its span and its error.
    assert rows(request(server, "GET", f"/transactions/{'b' * 32}/")) == [
        ("span", 0, "http.server POST /charge internal_error"),
        ("trace-error", 1, "error CardDeclined: insufficient"),
    ]


def test_a_trace_with_errors_only_says_so_at_the_right_time(server):
    other = "9" * 32
    send(
        server,
        "event",
        {
            "event_id": "d" * 32,
            "timestamp": T0 + 60,
            "message": "payment webhook failed",
            "level": "error",
            "contexts": {"trace": {"trace_id": other, "span_id": "6" * 16}},
        },
    )
    document = request(server, "GET", f"/traces/{other}/")
    assert "1970" not in document
    assert "2023-11-14 22:14:20 UTC" in document
    notice = " ".join(
        re.sub(r"<[^>]+>", " ", document.split('id="no-spans">')[1].split("</p>")[0]).split()
    )
    assert notice.startswith("No transaction or span of this trace was received, only 1 error")
    assert rows(document) == [("trace-error", 0, "error payment webhook failed")]
    api = request(server, "GET", f"/api/0/traces/{other}/")
    assert (api["spans"], len(api["errors"]), api["start"]) == ([], 1, T0 + 60)
    # An unknown trace id: nothing, said plainly.
    assert "Nothing with this trace id was received." in request(
        server, "GET", f"/traces/{'8' * 32}/"
    )
