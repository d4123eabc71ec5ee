"""Projects and retention in the local backend, over real HTTP on 127.0.0.1.

A project is created from the UI (or the API) and shows its DSN, which works at
once; retention forgets data by age and by size, at start and as data arrives.
"""

from __future__ import annotations

import http.client
import json
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlencode, urlsplit

import pytest

pytest.importorskip("starlette", reason="the server extra is not installed")
pytest.importorskip("uvicorn", reason="the server extra is not installed")

from tripwire.server.app import ServerThread
from tripwire.server.store import Store
from tripwire.server.store import StoredItem as Item

DAY = 86400.0
EVIL = "https://evil.example"


def request(
    server: ServerThread,
    method: str,
    path: str,
    body: Optional[bytes] = None,
    headers: Optional[dict[str, str]] = None,
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def get(server: ServerThread, path: str) -> Any:
    status, headers, body = request(server, "GET", path)
    assert status == 200, (path, body)
    if headers["content-type"].startswith("application/json"):
        return json.loads(body)
    return body.decode()


def send_with(server: ServerThread, dsn: str, message: str) -> int:
    parts = urlsplit(dsn)
    event_id = uuid.uuid4().hex
    body = b"\n".join(
        [
            json.dumps({"event_id": event_id, "dsn": dsn}).encode(),
            b'{"type":"event"}',
            json.dumps({"message": message}).encode(),
        ]
    )
    status, _h, _b = request(server, "POST", f"/api{parts.path}/envelope/", body)
    return status


def form(server: ServerThread, path: str, fields: dict[str, str], origin: Optional[str] = None):
    return request(
        server,
        "POST",
        path,
        urlencode(fields).encode(),
        {"Content-Type": "application/x-www-form-urlencoded", "Origin": origin or server.url},
    )


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerThread]:
    with ServerThread(db=tmp_path / "projects.db") as s:
        yield s


def test_a_project_created_in_the_ui_shows_its_dsn_which_works_at_once(server):
    document = get(server, "/projects/")
    (token,) = set(re.findall(r'name="token" value="([^"]+)"', document))
    status, headers, _ = form(server, "/projects/", {"token": token, "name": "shop <api>"})
    assert (status, headers["location"]) == (303, "/projects/?created=2")
    document = get(server, "/projects/?created=2")
    (dsn,) = re.findall(r'tripwire\.init\(dsn="(http://\w+@127\.0\.0\.1:\d+/2)"\)', document)
    assert "Project shop &lt;api&gt; created" in document
    assert send_with(server, dsn, "from the new project") == 200
    (issue,) = get(server, "/api/0/issues/")
    assert issue["project_id"] == 2
    row = document = get(server, "/projects/").split('data-project-id="2">', 1)[1].split("</tr>")[0]
    assert re.findall(r'<td class="num">(\d+)</td>', row) == ["1", "1", "0"]
    # The key of project 2 is not one of project 1.
    assert send_with(server, dsn.replace("/2", "/1"), "wrong project") == 403

    # The API: the same, as JSON.
    status, _h, body = request(
        server,
        "POST",
        "/api/0/projects/",
        b'{"name": "worker"}',
        {"Content-Type": "application/json"},
    )
    assert status == 201
    created = json.loads(body)
    assert (created["id"], created["name"]) == (3, "worker")
    assert created["dsn"].endswith(f"@127.0.0.1:{server.port}/3")
    assert [p["name"] for p in get(server, "/api/0/projects/")] == [
        "default",
        "shop <api>",
        "worker",
    ]


def test_project_forms_are_checked(server):
    token = re.findall(r'name="token" value="([^"]+)"', get(server, "/projects/"))[0]
    assert form(server, "/projects/", {"token": token, "name": "x"}, origin=EVIL)[0] == 403
    assert form(server, "/projects/", {"token": "nope", "name": "x"})[0] == 403
    status, _h, body = form(server, "/projects/", {"token": token, "name": "   "})
    assert status == 400 and b"1 to 100 characters" in body
    status, _h, _b = request(
        server, "POST", "/api/0/projects/", b'{"name": ""}', {"Content-Type": "application/json"}
    )
    assert status == 400
    assert [p["id"] for p in get(server, "/api/0/projects/")] == [1]


def _event(message: str) -> Item:
    return Item("event", {"type": "event"}, json.dumps({"message": message}).encode())


def _transaction(trace_id: str) -> Item:
    payload = {
        "type": "transaction",
        "transaction": "GET /",
        "start_timestamp": time.time() - 1,
        "timestamp": time.time(),
        "contexts": {"trace": {"trace_id": trace_id, "span_id": "1" * 16}},
        "spans": [{"span_id": "2" * 16, "parent_span_id": "1" * 16, "op": "db"}],
    }
    return Item("transaction", {"type": "transaction"}, json.dumps(payload).encode())


def test_retention_by_age_forgets_old_data_at_start_and_as_data_arrives(tmp_path):
    path = tmp_path / "old.db"
    old = time.time() - 3 * DAY
    with Store(path) as store:
        store.save(1, [_event("old news"), _transaction("a" * 32)], received=old)
        store.save(
            1,
            [Item("attachment", {"type": "attachment", "filename": "a.txt"}, b"old")],
            {"event_id": "b" * 32},
            received=old,
        )
        store.save(1, [_event("fresh news")])
    with ServerThread(db=path, retention_days=2) as server:
        assert [i["title"] for i in get(server, "/api/0/issues/")] == ["fresh news"]
        stats = get(server, "/api/0/stats/")
        assert (stats["events"], stats["transactions"], stats["spans"]) == (1, 0, 0)
        assert (stats["attachments"], stats["envelopes"]) == (0, 0)
        assert get(server, f"/traces/{'a' * 32}/").count("Nothing with this trace id") == 1

        # As data arrives: what became too old since is forgotten with the next save.
        server.store.save(1, [_event("yesterday's news")], received=time.time() - 3 * DAY)
        server.store.prune_interval = 0.0
        assert send_with(server, server.dsn, "news") == 200
        titles = sorted(i["title"] for i in get(server, "/api/0/issues/"))
        assert titles == ["fresh news", "news"]


def test_retention_by_size_forgets_the_oldest_first(tmp_path):
    path = tmp_path / "big.db"
    start = time.time() - 100 * 60
    with Store(path) as store:
        for n in range(100):
            payload = {"message": f"event {n}", "extra": {"blob": f"{n}" * 20_000}}
            item = Item("event", {"type": "event"}, json.dumps(payload).encode())
            store.save(1, [item], received=start + n * 60)
        full = store.used_bytes()
    assert full > 2_000_000
    with ServerThread(db=path, retention_bytes=full // 2) as server:
        assert server.store.used_bytes() <= full // 2
        (issue,) = get(server, "/api/0/issues/")  # "event <num>": one issue
        events = get(server, f"/api/0/issues/{issue['id']}/events/?limit=200")
        kept = sorted(int(e["title"].split()[1]) for e in events)
        assert 10 <= len(kept) < 60
        # The newest are what is left.
        assert kept == list(range(100 - len(kept), 100))
