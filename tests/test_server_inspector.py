"""The envelope inspector, over real HTTP on 127.0.0.1: each envelope as an SDK sent it.

Listed and viewable (headers, item headers, each payload decoded), with what the
server made of it; linked from the live page's feed; bounded in bytes.
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
from tripwire.server.limits import INSPECT_ITEM_BYTES


def request(
    server: ServerThread, method: str, path: str, body: Optional[bytes] = None
) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        headers = {}
        if body is not None:
            key = server.store.default_project()["public_key"]
            headers["X-Sentry-Auth"] = f"Sentry sentry_key={key}, sentry_version=7"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def envelope(headers: dict[str, Any], *items: tuple[dict[str, Any], bytes]) -> bytes:
    lines = [json.dumps(headers).encode()]
    for item_headers, payload in items:
        lines += [json.dumps({**item_headers, "length": len(payload)}).encode(), payload]
    return b"\n".join(lines) + b"\n"


def post(server: ServerThread, body: bytes) -> dict[str, Any]:
    status, answer = request(server, "POST", "/api/1/envelope/", body)
    assert status == 200, answer
    result: dict[str, Any] = json.loads(answer)
    return result


def get(server: ServerThread, path: str) -> Any:
    status, body = request(server, "GET", path)
    assert status == 200, (path, body)
    return json.loads(body) if path.startswith("/api/") else body.decode()


def pre_texts(document: str) -> list[str]:
    return [html.unescape(m) for m in re.findall(r"<pre[^>]*>(.*?)</pre>", document, re.S)]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerThread]:
    with ServerThread(db=tmp_path / "inspect.db") as s:
        yield s


EVENT_ID = "5b2c8a1e0f3d4c6b9a7e8d1c2b3a4f5e"


def test_an_envelope_is_listed_and_each_item_decoded(server):
    event = {"event_id": EVENT_ID, "message": "hello <script>alert(1)</script>", "level": "info"}
    header = {
        "event_id": EVENT_ID,
        "sent_at": "2024-05-01T10:00:00Z",
        "sdk": {"name": "sentry.python", "version": "2.75.0"},
    }
    body = envelope(
        header,
        ({"type": "event"}, json.dumps(event).encode()),
        ({"type": "attachment", "filename": "core.bin"}, bytes(range(40))),
        ({"type": "session"}, b'{"sid": "x"}'),  # no release: the server drops it
    )
    post(server, body)

    (listed,) = get(server, "/api/0/envelopes/")
    assert (listed["path"], listed["size"]) == ("/api/1/envelope/", len(body))
    assert listed["item_types"] == "event, attachment, session"
    document = get(server, "/envelopes/")
    assert f'<a href="/envelopes/{listed["id"]}/">' in document

    found = get(server, f"/api/0/envelopes/{listed['id']}/")
    assert found["headers"] == header
    event_item, attachment, _session = found["items"]
    assert event_item["headers"] == {"type": "event", "length": len(json.dumps(event))}
    assert event_item["json"] == event
    assert (attachment["size"], attachment["hex"]) == (40, bytes(range(40)).hex())
    assert found["outcome"]["stored"] == {"event": 1, "attachment": 1}
    assert found["outcome"]["dropped"] == [
        {"type": "session", "reason": "invalid", "detail": "session without sid or attrs.release"}
    ]

    document = get(server, f"/envelopes/{listed['id']}/")
    texts = pre_texts(document)
    assert json.loads(texts[0]) == header  # the envelope headers, pretty
    assert json.loads(texts[2]) == event  # the event, decoded
    assert "<script>alert(1)</script>" not in document
    # The binary attachment as a hex dump: offset, bytes, printable characters.
    assert texts[4].splitlines()[0] == (
        "00000000  00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f  ................"
    )
    assert "session: invalid (session without sid or attrs.release)" in html.unescape(document)
    assert f'href="/events/{EVENT_ID}/"' in document


def test_the_live_feed_links_each_arrival_to_its_envelope(server):
    post(server, envelope({}, ({"type": "event"}, b'{"message": "live one"}')))
    (listed,) = get(server, "/api/0/envelopes/")
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request("GET", "/live/feed")
        response = conn.getresponse()
        line = response.fp.readline()
        while not line.startswith(b"data:"):
            line = response.fp.readline()
    finally:
        conn.close()
    arrival = json.loads(line[5:])
    assert (arrival["id"], arrival["summary"]) == (listed["id"], "live one")
    live = get(server, "/live/")
    assert 'href="/envelopes/"' in live


def test_what_is_kept_is_bounded_in_bytes(server):
    big = b'{"message": "' + b"x" * (INSPECT_ITEM_BYTES * 2) + b'"}'
    post(server, envelope({}, ({"type": "event"}, big)))
    (listed,) = get(server, "/api/0/envelopes/")
    (item,) = get(server, f"/api/0/envelopes/{listed['id']}/")["items"]
    assert item["truncated"] is True
    assert (item["size"], len(item["text"])) == (len(big), INSPECT_ITEM_BYTES)
    assert "json" not in item
    document = get(server, f"/envelopes/{listed['id']}/")
    assert f"The first {INSPECT_ITEM_BYTES} bytes of {len(big)} are kept." in document
    assert listed["kept"] < INSPECT_ITEM_BYTES + 2000

    # Together: the newest envelopes within the count and the bytes; the oldest go.
    server.store.inspect_count = 3
    for n in range(5):
        post(server, envelope({}, ({"type": "event"}, json.dumps({"message": f"m{n}"}).encode())))
    kept = get(server, "/api/0/envelopes/")
    assert len(kept) == 3
    server.store.inspect_total_bytes = 2 * kept[0]["kept"] + 10
    post(server, envelope({}, ({"type": "event"}, b'{"message": "last"}')))
    kept = get(server, "/api/0/envelopes/")
    assert len(kept) == 2
    status, _ = request(server, "GET", f"/envelopes/{listed['id']}/")
    assert status == 404
    stored = server.store.connection().execute("SELECT sum(kept) FROM envelopes").fetchone()[0]
    assert stored <= server.store.inspect_total_bytes
