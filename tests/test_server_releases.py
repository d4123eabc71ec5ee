"""Releases and metrics in the local backend, over real HTTP on 127.0.0.1.

Every release seen is listed (events, issues, new issues, transactions), with
crash-free rates once sessions arrive; metrics (``trace_metric`` items, as
sentry-sdk 2.75 sends them) are listed as received, not under Dropped.
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

from tripwire.server.app import ServerThread

T0 = 1_700_000_000.0


def request(server: ServerThread, path: str, body: Optional[bytes] = None) -> Any:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        headers = {}
        if body is not None:
            key = server.store.default_project()["public_key"]
            headers["X-Sentry-Auth"] = f"Sentry sentry_key={key}, sentry_version=7"
        conn.request("POST" if body is not None else "GET", path, body=body, headers=headers)
        response = conn.getresponse()
        data = response.read()
        assert response.status == 200, (path, data)
        if response.getheader("content-type", "").startswith("application/json"):
            return json.loads(data)
        return data.decode()
    finally:
        conn.close()


def send(server: ServerThread, *items: tuple[dict[str, Any], dict[str, Any]]) -> None:
    lines = [b"{}"]
    for headers, payload in items:
        raw = json.dumps(payload).encode()
        lines += [json.dumps({**headers, "length": len(raw)}).encode(), raw]
    request(server, "/api/1/envelope/", b"\n".join(lines) + b"\n")


def error(kind: str, release: str, at: float) -> tuple[dict[str, Any], dict[str, Any]]:
    return (
        {"type": "event"},
        {
            "release": release,
            "timestamp": at,
            "exception": {"values": [{"type": kind, "value": "x"}]},
        },
    )


def session(sid: str, did: str, status: str) -> tuple[dict[str, Any], dict[str, Any]]:
    return (
        {"type": "session"},
        {
            "sid": sid,
            "did": did,
            "status": status,
            "started": T0 + 100,
            "timestamp": T0 + 101,
            "attrs": {"release": "shop@1.1", "environment": "production"},
        },
    )


def cells(document: str, release: str) -> list[str]:
    row = document.split(f'data-release="{release}">', 1)[1].split("</tr>", 1)[0]
    return [
        " ".join(html.unescape(re.sub(r"<[^>]+>", " ", c)).split())
        for c in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)
    ]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerThread]:
    with ServerThread(db=tmp_path / "releases.db") as s:
        yield s


def test_every_release_seen_is_listed_with_its_issues_and_health(server):
    # 1.0: two issues, no sessions. 1.1: one of them again, a new one, a transaction,
    # three sessions of two users (one crashed).
    send(server, error("KeyError", "shop@1.0", T0), error("OSError", "shop@1.0", T0 + 1))
    send(server, error("KeyError", "shop@1.1", T0 + 100), error("ValueError", "shop@1.1", T0 + 101))
    send(
        server,
        (
            {"type": "transaction"},
            {
                "type": "transaction",
                "transaction": "GET /",
                "release": "shop@1.1",
                "start_timestamp": T0 + 100,
                "timestamp": T0 + 102,
                "contexts": {"trace": {"trace_id": "1" * 32, "span_id": "2" * 16}},
            },
        ),
    )
    send(server, session("s1", "ana", "exited"), session("s2", "ana", "exited"))
    send(server, session("s3", "bob", "crashed"))

    newest, oldest = request(server, "/api/0/releases/")
    assert (newest["release"], oldest["release"]) == ("shop@1.1", "shop@1.0")
    assert {k: newest[k] for k in ("events", "issues", "new_issues", "transactions")} == {
        "events": 2,
        "issues": 2,
        "new_issues": 1,
        "transactions": 1,
    }
    assert (newest["sessions"], newest["crashed"], newest["users"]) == (3, 1, 2)
    assert (newest["crash_free_rate"], newest["crash_free_users"]) == (66.67, 50.0)
    assert [e["environment"] for e in newest["environments"]] == ["production"]
    assert (oldest["events"], oldest["new_issues"], oldest["crash_free_rate"]) == (2, 2, None)

    document = request(server, "/releases/")
    assert cells(document, "shop@1.1")[2:] == ["2", "2", "1", "1", "3", "66.67 %", "50.0 %"]
    assert cells(document, "shop@1.0")[2:] == ["2", "2", "2", "0", "0", "no sessions", ""]
    assert cells(document, "shop@1.1")[0] == "shop@1.1 production"
    # The release links to its issues, every status.
    link = re.search(r'<a href="(/issues/\?[^"]+)">shop@1.0</a>', document).group(1)
    issues = request(server, html.unescape(link))
    assert sorted(re.findall(r'class="title" href="/issues/\d+/">(\w+):', issues)) == [
        "KeyError",
        "OSError",
    ]


def test_no_release_yet_says_how_to_set_one(server):
    assert 'Set <code>release="my-app@1.0"</code>' in request(server, "/releases/")


def test_metrics_are_listed_as_received_not_as_dropped(server):
    container = {
        "items": [
            {
                "timestamp": T0 + 5,
                "name": "checkout.completed",
                "type": "counter",
                "value": 1,
                "trace_id": "3" * 32,
                "attributes": {"plan": {"value": "pro", "type": "string"}},
            },
            {
                "timestamp": T0 + 6,
                "name": "checkout.completed",
                "type": "counter",
                "value": 2,
                "attributes": {},
            },
            {
                "timestamp": T0 + 7,
                "name": "cart.size",
                "type": "distribution",
                "value": 3.5,
                "unit": "item",
                "attributes": {},
            },
        ]
    }
    send(
        server,
        (
            {
                "type": "trace_metric",
                "item_count": 3,
                "content_type": "application/vnd.sentry.items.trace-metric+json",
            },
            container,
        ),
    )
    found = request(server, "/api/0/metrics/")
    assert [(m["name"], m["value"]) for m in found["metrics"]] == [
        ("cart.size", 3.5),
        ("checkout.completed", 2),
        ("checkout.completed", 1),
    ]
    assert [(s["name"], s["count"], s["sum"], s["last"]) for s in found["summary"]] == [
        ("cart.size", 1, 3.5, 3.5),
        ("checkout.completed", 2, 3.0, 2),
    ]
    document = request(server, "/metrics/")
    assert document.count('<tr class="metric">') == 3
    assert "3.5 item" in document and 'href="/traces/' + "3" * 32 + '/"' in document
    assert '<a href="/metrics/" class="on">Metrics</a>' in document
    drops = request(server, "/drops/")
    assert "trace_metric" not in drops
    assert request(server, "/api/0/outcomes/")["outcomes"] == []
