"""Ingest over real HTTP on 127.0.0.1: auth, encodings, limits, bad input, rate limits.

Each test starts its own server (on a free port, a fresh database) and stops it.
"""

from __future__ import annotations

import base64
import gzip
import http.client
import json
import zlib
from pathlib import Path
from typing import Any, Optional

import pytest

pytest.importorskip("starlette", reason="the server extra is not installed")
pytest.importorskip("uvicorn", reason="the server extra is not installed")

from tripwire.envelope import Envelope, Item, PayloadRef
from tripwire.server.app import ServerThread

LIMIT = 64 * 1024  # the body limit the test servers run with
INFLATED_LIMIT = 256 * 1024


@pytest.fixture
def server(tmp_path: Path):
    s = ServerThread(
        db=tmp_path / "ingest.db", max_body_bytes=LIMIT, max_decompressed_bytes=INFLATED_LIMIT
    )
    yield s
    s.stop()


class Reply:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def detail(self) -> str:
        return str(self.json().get("detail"))


def request(
    server: ServerThread,
    method: str,
    path: str,
    body: Optional[bytes] = None,
    headers: Optional[dict[str, str]] = None,
    chunked: bool = False,
) -> Reply:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        if chunked:
            conn.putrequest(method, path)
            for k, v in (headers or {}).items():
                conn.putheader(k, v)
            conn.putheader("Transfer-Encoding", "chunked")
            conn.endheaders()
            assert body is not None
            for i in range(0, len(body), 8192):
                piece = body[i : i + 8192]
                try:
                    conn.send(b"%x\r\n%s\r\n" % (len(piece), piece))
                except (BrokenPipeError, ConnectionResetError):
                    break  # the server answered and closed early: read its answer
            else:
                conn.send(b"0\r\n\r\n")
        else:
            conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        return Reply(
            response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
        )
    finally:
        conn.close()


def get_json(server: ServerThread, path: str) -> Any:
    reply = request(server, "GET", path)
    assert reply.status == 200, reply.body
    return reply.json()


def key(server: ServerThread) -> str:
    return str(server.store.default_project()["public_key"])


def auth(server: ServerThread) -> dict[str, str]:
    return {"X-Sentry-Auth": f"Sentry sentry_key={key(server)}, sentry_version=7"}


def envelope(*events: dict[str, Any], headers: Optional[dict[str, Any]] = None) -> bytes:
    env = Envelope(headers=headers or {})
    for event in events:
        env.add_event(event)
    return env.serialize()


def error_event(event_id: str, value: str = "boom") -> dict[str, Any]:
    return {
        "event_id": event_id,
        "level": "error",
        "exception": {"values": [{"type": "RuntimeError", "value": value}]},
    }


def post_envelope(server: ServerThread, body: bytes, **headers: str) -> Reply:
    all_headers = {**auth(server), "Content-Type": "application/x-sentry-envelope", **headers}
    return request(server, "POST", "/api/1/envelope/", body, all_headers)


def stored_event_ids(server: ServerThread) -> set[str]:
    ids = set()
    for issue in get_json(server, "/api/0/issues/?status=all"):
        for event in get_json(server, f"/api/0/issues/{issue['id']}/events/?limit=1000"):
            ids.add(event["event_id"])
    return ids


# -- authentication -----------------------------------------------------------------------------


def test_envelope_with_auth_header_is_stored_and_answered_with_its_id(server):
    reply = post_envelope(server, envelope(error_event("a" * 32), headers={"event_id": "a" * 32}))
    assert reply.status == 200
    assert reply.json() == {"id": "a" * 32}
    event = get_json(server, f"/api/0/events/{'a' * 32}/")
    assert event["data"]["exception"]["values"][0]["value"] == "boom"
    assert event["title"] == "RuntimeError: boom"


def test_sentry_key_query_parameter_authenticates(server):
    reply = request(
        server,
        "POST",
        f"/api/1/envelope/?sentry_key={key(server)}",
        envelope(error_event("b" * 32)),
    )
    assert reply.status == 200
    assert stored_event_ids(server) == {"b" * 32}


def test_envelope_header_dsn_authenticates(server):
    body = envelope(error_event("c" * 32), headers={"dsn": server.dsn})
    assert request(server, "POST", "/api/1/envelope/", body).status == 200
    assert stored_event_ids(server) == {"c" * 32}


def test_no_key_is_401_with_a_reason(server):
    reply = request(server, "POST", "/api/1/envelope/", envelope(error_event("d" * 32)))
    assert reply.status == 401
    assert "X-Sentry-Auth" in reply.detail


def test_wrong_key_and_wrong_project_are_403_and_nothing_is_stored(server):
    wrong = {"X-Sentry-Auth": "Sentry sentry_key=0123456789abcdef, sentry_version=7"}
    reply = request(server, "POST", "/api/1/envelope/", envelope(error_event("e" * 32)), wrong)
    assert reply.status == 403
    assert "unknown public key" in reply.detail
    other = server.store.add_project("other")
    reply = request(
        server,
        "POST",
        "/api/1/envelope/",
        envelope(error_event("f" * 32)),
        {"X-Sentry-Auth": f"Sentry sentry_key={other['public_key']}"},
    )
    assert reply.status == 403
    assert "project 1" in reply.detail
    # The same key on its own project is fine.
    reply = request(
        server,
        "POST",
        f"/api/{other['id']}/envelope/",
        envelope(error_event("f" * 32)),
        {"X-Sentry-Auth": f"Sentry sentry_key={other['public_key']}"},
    )
    assert reply.status == 200
    assert stored_event_ids(server) == {"f" * 32}
    refused = get_json(server, "/api/0/outcomes/")["rejections"]
    assert sorted(r["status"] for r in refused) == [403, 403]


# -- encodings and limits -----------------------------------------------------------------------


def _brotli(data: bytes) -> bytes:
    brotli = pytest.importorskip("brotli")
    return bytes(brotli.compress(data))


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda d: zlib.compress(d)[2:-4]),  # raw deflate, as some clients send
        ("br", _brotli),
        ("identity", lambda d: d),
        ("gzip, br", lambda d: _brotli(gzip.compress(d))),
    ],
)
def test_compressed_bodies(server, encoding, compress):
    body = compress(envelope(error_event("1" * 32)))
    reply = post_envelope(server, body, **{"Content-Encoding": encoding})
    assert reply.status == 200, reply.body
    assert stored_event_ids(server) == {"1" * 32}


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [("gzip", gzip.compress), ("deflate", zlib.compress), ("br", _brotli)],
)
def test_decompression_bombs_are_refused_and_the_server_carries_on(server, encoding, compress):
    # 50 MB of newlines compresses to well under the body limit.
    bomb = compress(b"{}\n" + b"\n" * (50 * 1024 * 1024))
    assert len(bomb) < LIMIT
    reply = post_envelope(server, bomb, **{"Content-Encoding": encoding})
    assert reply.status == 413
    assert "decompresses to more than" in reply.detail
    good = post_envelope(
        server, gzip.compress(envelope(error_event("2" * 32))), **{"Content-Encoding": "gzip"}
    )
    assert good.status == 200
    assert stored_event_ids(server) == {"2" * 32}


def test_oversized_bodies_are_413_declared_or_chunked(server):
    big = envelope(error_event("3" * 32, value="x" * (LIMIT * 2)))
    reply = post_envelope(server, big)
    assert reply.status == 413
    assert "over the limit" in reply.detail
    reply = request(server, "POST", "/api/1/envelope/", big, auth(server), chunked=True)
    assert reply.status == 413
    assert post_envelope(server, envelope(error_event("4" * 32))).status == 200
    assert stored_event_ids(server) == {"4" * 32}


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "empty"),
        (b"not json\n", "envelope header"),
        (b"[1, 2]\n", "expected a JSON object"),
        (b'{}\n{"type":"event","length":100}\n{"short":1}\n', "truncated"),
        (b'{}\n{"type":"event","length":-1}\n{}\n', "invalid item length"),
        (b'{}\n{"type":"event"}\n{broken\n', "not JSON"),
        (b'{}\n{"type":"event","length":2}\n{}X\n', "newline"),
    ],
)
def test_malformed_envelopes_are_400_with_the_reason(server, body, reason):
    reply = post_envelope(server, body)
    assert reply.status == 400
    assert reply.detail.startswith("malformed envelope")
    assert reason in reply.detail
    assert get_json(server, "/api/0/outcomes/")["rejections"][0]["status"] == 400


def test_corrupt_and_truncated_compression_is_400(server):
    good = gzip.compress(envelope(error_event("5" * 32)))
    reply = post_envelope(server, b"\x1f\x8b garbage", **{"Content-Encoding": "gzip"})
    assert reply.status == 400
    assert "gzip body is corrupt" in reply.detail
    reply = post_envelope(server, good[: len(good) // 2], **{"Content-Encoding": "gzip"})
    assert reply.status == 400
    assert "truncated" in reply.detail


def test_unknown_content_encoding_is_415(server):
    reply = post_envelope(server, b"whatever", **{"Content-Encoding": "zstd-ish"})
    assert reply.status == 415


def test_bad_items_are_dropped_and_the_good_ones_kept(server):
    env = Envelope(headers={"event_id": "6" * 32})
    env.add_event(error_event("6" * 32))
    env.add_item(Item(b'{"no sid": true}', type="session"))
    env.add_item(Item(b"not json at all", type="log"))
    env.add_item(Item(PayloadRef(json={"monitor_slug": "job", "status": "ok"}), type="check_in"))
    env.add_item(Item(b"\x00binary profile", type="profile"))
    env.add_item(Item(b"mystery", type="something_new", headers={"extra": "kept"}))
    reply = post_envelope(server, env.serialize())
    assert reply.status == 200
    assert reply.json()["id"] == "6" * 32
    assert sorted(d["type"] for d in reply.json()["dropped"]) == ["log", "session"]
    stats = get_json(server, "/api/0/stats/")
    assert (stats["events"], stats["check_ins"], stats["items"]) == (1, 1, 2)
    kept = {i["type"]: i for i in get_json(server, "/api/0/items/")}
    assert kept["something_new"]["headers"]["extra"] == "kept"
    assert kept["profile"]["size"] == len(b"\x00binary profile")


def test_duplicate_envelopes_are_stored_once(server):
    body = envelope(error_event("7" * 32))
    assert post_envelope(server, body).status == 200
    assert post_envelope(server, body).status == 200
    (issue,) = get_json(server, "/api/0/issues/")
    assert issue["count"] == 1


# -- the legacy store endpoint ------------------------------------------------------------------


@pytest.mark.parametrize(
    "encode",
    [
        lambda d: d,
        zlib.compress,
        lambda d: base64.b64encode(zlib.compress(d)),
    ],
    ids=["json", "zlib", "base64-zlib"],
)
def test_legacy_store_endpoint(server, encode):
    event = {"event_id": "8" * 32, "message": "from raven", "level": "warning"}
    reply = request(
        server, "POST", "/api/1/store/", encode(json.dumps(event).encode()), auth(server)
    )
    assert reply.status == 200, reply.body
    assert reply.json() == {"id": "8" * 32}
    (issue,) = get_json(server, "/api/0/issues/")
    assert (issue["title"], issue["level"]) == ("from raven", "warning")


def test_legacy_store_refuses_bad_bodies_and_keys(server):
    assert request(server, "POST", "/api/1/store/", b"{}").status == 401
    reply = request(server, "POST", "/api/1/store/", b"[1]", auth(server))
    assert (reply.status, reply.detail) == (400, "the store body is not a JSON object")
    reply = request(server, "POST", "/api/1/store/", b"\x78\x9c not zlib", auth(server))
    assert reply.status == 400


# -- rate limits --------------------------------------------------------------------------------


def _set_limits(server: ServerThread, limits: list[str]) -> Reply:
    return request(
        server,
        "PUT",
        "/api/0/rate-limits/",
        json.dumps({"limits": limits}).encode(),
        {"Content-Type": "application/json"},
    )


def test_configured_rate_limits_are_answered_and_enforced(server):
    assert (
        _set_limits(server, ["60:error:key", "30:transaction;span:organization:quota"]).status
        == 200
    )
    reply = post_envelope(server, envelope(error_event("9" * 32)))
    assert reply.status == 429
    assert (
        reply.headers["x-sentry-rate-limits"]
        == "60:error:key, 30:transaction;span:organization:quota"
    )
    assert reply.headers["retry-after"] == "60"
    # Mixed envelope: the log goes through, the error does not; the answer is 200.
    env = Envelope()
    env.add_event(error_event("a1" * 16))
    env.add_item(
        Item(
            PayloadRef(json={"items": [{"timestamp": 1.0, "level": "info", "body": "hi"}]}),
            type="log",
        )
    )
    reply = post_envelope(server, env.serialize())
    assert reply.status == 200
    assert "x-sentry-rate-limits" in reply.headers
    stats = get_json(server, "/api/0/stats/")
    assert (stats["events"], stats["logs"]) == (0, 1)
    drops = get_json(server, "/api/0/outcomes/")["outcomes"]
    assert drops == [
        {"source": "server", "reason": "rate_limited", "category": "error", "quantity": 2}
    ]
    # Lifting them.
    assert _set_limits(server, []).status == 200
    reply = post_envelope(server, envelope(error_event("9" * 32)))
    assert reply.status == 200
    assert "x-sentry-rate-limits" not in reply.headers


def test_rate_limit_api_refuses_bad_input_and_non_json(server):
    assert _set_limits(server, ["soon:error"]).status == 400
    reply = request(
        server,
        "PUT",
        "/api/0/rate-limits/",
        b"limits=60",
        {"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert reply.status == 415
    assert get_json(server, "/api/0/rate-limits/") == {"limits": []}


def test_rate_limits_from_the_constructor(tmp_path):
    with ServerThread(db=tmp_path / "r.db", rate_limits=["10::key"]) as limited:
        reply = post_envelope(limited, envelope(error_event("b" * 32)))
        assert reply.status == 429
        assert reply.headers["x-sentry-rate-limits"] == "10::key"


# -- spotlight sidecar --------------------------------------------------------------------------


@pytest.fixture
def open_server(tmp_path: Path):
    # Pages on localhost:3000 (an app with a browser SDK, Spotlight's overlay) allowed.
    s = ServerThread(
        db=tmp_path / "open.db",
        max_body_bytes=LIMIT,
        max_decompressed_bytes=INFLATED_LIMIT,
        allow_origins=["http://localhost:3000"],
    )
    yield s
    s.stop()


def test_stream_accepts_envelopes_without_a_key_and_streams_them(open_server):
    server = open_server
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        conn.request("GET", "/stream", headers={"Accept": "text/event-stream"})
        stream = conn.getresponse()
        assert stream.status == 200
        assert stream.getheader("content-type", "").startswith("text/event-stream")
        assert stream.readline() == b": tripwire sidecar stream\n"
        assert stream.readline() == b"\n"
        body = envelope({"event_id": "c" * 32, "message": "via spotlight"})
        reply = request(
            server,
            "POST",
            "/stream",
            body,
            {"Content-Type": "application/x-sentry-envelope", "Origin": "http://localhost:3000"},
        )
        assert reply.status == 200
        assert reply.headers["access-control-allow-origin"] == "http://localhost:3000"
        lines = []
        while True:
            line = stream.readline()
            if line == b"\n":
                break
            lines.append(line)
    finally:
        conn.close()
    assert lines[0] == b"event:application/x-sentry-envelope\n"
    data = b"\n".join(line[len(b"data:") :].rstrip(b"\n") for line in lines[1:])
    streamed = Envelope.deserialize(data).get_event()
    assert streamed is not None
    assert streamed["message"] == "via spotlight"
    assert stored_event_ids(server) == {"c" * 32}


def test_stream_preflight_allows_cross_origin_posts(open_server):
    reply = request(
        open_server,
        "OPTIONS",
        "/stream",
        headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "POST"},
    )
    assert reply.status == 204
    assert "POST" in reply.headers["access-control-allow-methods"]
    assert reply.headers["access-control-allow-origin"] == "http://localhost:3000"


def test_requests_for_other_host_names_are_refused(server):
    # DNS rebinding: a page on evil.example resolving to 127.0.0.1 must not read the API.
    reply = request(server, "GET", "/api/0/issues/", headers={"Host": "evil.example"})
    assert reply.status == 400
    assert request(server, "GET", "/api/0/issues/", headers={"Host": "localhost"}).status == 200


def test_attachments_are_always_downloads(server):
    env = Envelope(headers={"event_id": "d" * 32})
    env.add_event({"event_id": "d" * 32, "message": "with file"})
    env.add_item(
        Item(
            b"<script>alert(1)</script>",
            type="attachment",
            filename="x.html",
            content_type="text/html",
        )
    )
    assert post_envelope(server, env.serialize()).status == 200
    (attachment,) = get_json(server, f"/api/0/events/{'d' * 32}/")["attachments"]
    reply = request(server, "GET", f"/api/0/attachments/{attachment['id']}/")
    assert reply.body == b"<script>alert(1)</script>"
    assert reply.headers["content-type"] == "application/octet-stream"
    assert reply.headers["content-disposition"].startswith("attachment;")
