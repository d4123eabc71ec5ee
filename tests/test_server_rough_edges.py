"""Rough edges a new user of the local backend hit, each driven over real HTTP on 127.0.0.1.

``tripwire demo``'s last words, attachments sent with a dashed event id, messages with
parameters, the ``"{{auto}}"`` IP, and the issue page (frame locals, ANSI escapes in
breadcrumbs, the favicon, plurals).
"""

from __future__ import annotations

import html
import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

pytest.importorskip("starlette", reason="the server extra is not installed")
pytest.importorskip("uvicorn", reason="the server extra is not installed")

from tripwire.server.app import ServerThread


@pytest.fixture
def server(tmp_path: Path):
    s = ServerThread(db=tmp_path / "rough.db")
    yield s
    s.stop()


def send(
    server: ServerThread, items: list[tuple[dict[str, Any], bytes]], header: dict[str, Any]
) -> dict[str, Any]:
    """POST an envelope built from (item header, payload) pairs; the JSON answer."""
    dsn = urlsplit(server.dsn)
    lines = [json.dumps(header).encode()]
    for item_header, payload in items:
        lines.append(json.dumps({**item_header, "length": len(payload)}).encode())
        lines.append(payload)
    request = urllib.request.Request(
        f"{server.url}/api{dsn.path}/envelope/",
        data=b"\n".join(lines) + b"\n",
        headers={"X-Sentry-Auth": f"Sentry sentry_key={dsn.username}, sentry_version=7"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        answer: dict[str, Any] = json.loads(response.read())
    return answer


def event_item(event: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    return {"type": "event"}, json.dumps(event).encode()


def get(server: ServerThread, path: str) -> tuple[int, dict[str, str], bytes]:
    try:
        with urllib.request.urlopen(server.url + path, timeout=30) as response:
            return (
                response.status,
                {k.lower(): v for k, v in response.headers.items()},
                response.read(),
            )
    except urllib.error.HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def api(server: ServerThread, path: str) -> Any:
    status, _headers, body = get(server, "/api/0" + path)
    assert status == 200, body
    return json.loads(body)


def page(server: ServerThread, path: str) -> str:
    status, headers, body = get(server, path)
    assert status == 200, body
    assert "content-security-policy" in headers
    return body.decode("utf-8")


def only_issue(server: ServerThread) -> dict[str, Any]:
    (issue,) = api(server, "/issues/?status=all")
    return dict(issue)


def pre_texts(document: str) -> list[str]:
    """The text of each <pre> of a page, as the user reads it."""
    return [html.unescape(m) for m in re.findall(r"<pre[^>]*>(.*?)</pre>", document, re.S)]


# -- 1. tripwire demo -----------------------------------------------------------------------------


def _read_until(fd: int, wanted: str, timeout: float) -> str:
    seen = b""
    deadline = time.monotonic() + timeout
    while wanted.encode() not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"{wanted!r} never printed; got {seen.decode(errors='replace')}")
        ready, _, _ = select.select([fd], [], [], left)
        if ready:
            try:
                chunk = os.read(fd, 4096)
            except OSError:
                chunk = b""
            if not chunk:
                raise AssertionError(f"exited before {wanted!r}: {seen.decode(errors='replace')}")
            seen += chunk
    return seen.decode(errors="replace")


@pytest.mark.skipif(sys.platform == "win32", reason="needs a pseudo-terminal")
def test_demo_on_a_terminal_keeps_serving_until_ctrl_c_and_its_link_works():
    controller, terminal = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k not in ("SENTRY_DSN", "TRIPWIRE_DB")}
    env["PYTHONFAULTHANDLER"] = "1"  # a SIGABRT prints every thread's stack
    # Ctrl-C reaches a terminal's foreground job. A test run started with SIGINT ignored
    # (a background job, nohup) would hand that on: the demo would never see it.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tripwire.cli", "demo"],
            stdin=terminal,
            stdout=terminal,
            stderr=subprocess.PIPE,
            env=env,
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    os.close(terminal)
    try:
        out = _read_until(controller, "until Ctrl-C", 60)
        (url,) = re.findall(r"open (http://127\.0\.0\.1:\d+/issues/) to see them", out)
        assert "serving until Ctrl-C" in out
        # The link printed is alive while the demo waits.
        with urllib.request.urlopen(url, timeout=30) as response:
            assert response.status == 200
            assert "KeyError: &#39;kiwi&#39;" in response.read().decode()
        proc.send_signal(signal.SIGINT)
        try:
            assert proc.wait(timeout=30) == 0
        except subprocess.TimeoutExpired:
            # Where it hangs: the stacks faulthandler prints on SIGABRT.
            proc.send_signal(signal.SIGABRT)
            _, stacks = proc.communicate(timeout=30)
            raise AssertionError(f"no exit 30 s after Ctrl-C: {stacks.decode()}") from None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(controller)
        assert proc.stderr is not None
        proc.stderr.close()


_SELF_OBSERVED = """
import json
import logging
import sqlite3
import sys
import urllib.request

import tripwire
from tripwire.server.app import ServerThread

with ServerThread(db=sys.argv[1]) as server:
    tripwire.init(dsn=server.dsn, traces_sample_rate=1.0, enable_logs=True)
    with tripwire.start_transaction(name="checkout"):
        logging.getLogger("shop").warning("low stock")
    tripwire.flush()
    with urllib.request.urlopen(server.url + "/issues/", timeout=30) as response:
        response.read()
    # What the backend's own requests made, if anything, is queued or sent by now.
    tripwire.flush()
    db = sqlite3.connect(sys.argv[1])
    print(json.dumps({
        "transactions": [r[0] for r in db.execute("SELECT name FROM transactions")],
        "logs": [r[0] for r in db.execute("SELECT body FROM logs")],
    }))
"""


def test_the_backend_records_nothing_of_itself_in_the_sdks_own_process(tmp_path: Path):
    # The demo, the tests and a script with a ServerThread run the SDK beside the
    # backend: traced, each envelope the backend received sent it another (the idle
    # demo stored ~150 transactions a second of its own ingest requests).
    result = subprocess.run(
        [sys.executable, "-c", _SELF_OBSERVED, str(tmp_path / "self.db")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    stored = json.loads(result.stdout)
    assert stored == {"transactions": ["checkout"], "logs": ["low stock"]}


def test_demo_counts_are_worded_in_the_singular_for_one():
    from tripwire.cli._common import plural as _plural

    assert _plural(1, "issue") == "1 issue"
    assert _plural(0, "issue") == "0 issues"
    assert _plural(2, "check-in") == "2 check-ins"


# -- 2. attachments and dashed event ids ---------------------------------------------------------

DASHED = "9EC79C33-EC99-42AB-8353-589FCB2E04DC"
PLAIN = "9ec79c33ec9942ab8353589fcb2e04dc"


def test_attachments_sent_with_a_dashed_event_id_belong_to_the_event(server):
    # As sentry-cli sends them: the envelope header's event_id with hyphens (and here
    # in capitals), the event first, an attachment in an envelope of its own.
    answer = send(server, [event_item({"message": "with a log file"})], {"event_id": DASHED})
    assert answer["id"] == PLAIN
    send(
        server,
        [({"type": "attachment", "filename": "app.log", "content_type": "text/plain"}, b"tail")],
        {"event_id": DASHED},
    )
    # And one with the event in the same envelope, whose header has no id at all.
    both = send(
        server,
        [
            event_item({"event_id": "0f0f0f0f-0f0f-0f0f-0f0f-0f0f0f0f0f0f", "message": "again"}),
            ({"type": "attachment", "filename": "core.txt"}, b"dump"),
        ],
        {},
    )
    assert both["id"] == "0f" * 16

    for event_id in (DASHED, PLAIN, DASHED.lower()):
        event = api(server, f"/events/{event_id}/")
        assert event["event_id"] == PLAIN
        assert [a["filename"] for a in event["attachments"]] == ["app.log"]
    (attachment,) = api(server, f"/events/{PLAIN}/")["attachments"]
    status, _headers, body = get(server, f"/api/0/attachments/{attachment['id']}/")
    assert (status, body) == (200, b"tail")
    assert [a["filename"] for a in api(server, "/events/" + "0f" * 16 + "/")["attachments"]] == [
        "core.txt"
    ]

    # The issue page the user opens links it.
    issue = next(i for i in api(server, "/issues/?status=all") if i["title"] == "with a log file")
    document = page(server, f"/issues/{issue['id']}/")
    assert f'href="/api/0/attachments/{attachment["id"]}/">app.log</a> (4 bytes' in document


# -- 3. messages with parameters -----------------------------------------------------------------


def test_a_message_with_parameters_is_titled_formatted_and_grouped_by_its_template(server):
    for customer in ("acme", "globex"):
        send(
            server,
            [
                event_item(
                    {
                        "level": "error",
                        "timestamp": time.time(),
                        "logentry": {"message": "Payment failed for %s", "params": [customer]},
                    }
                )
            ],
            {},
        )
        time.sleep(0.01)
    issue = only_issue(server)
    assert issue["count"] == 2  # one template, one issue
    assert issue["title"] == "Payment failed for globex"
    document = page(server, "/issues/")
    assert "Payment failed for globex" in document
    assert "Payment failed for %s" not in document
    assert "Payment failed for globex" in pre_texts(page(server, f"/issues/{issue['id']}/"))


def test_formatted_wins_and_odd_parameters_are_applied_safely(server):
    send(
        server,
        [
            event_item(
                {
                    "logentry": {
                        "message": "%(who)s paid %d%% of %s %999999999d %s",
                        "params": {"who": "bob"},
                    }
                }
            )
        ],
        {},
    )
    send(
        server,
        [
            event_item(
                {
                    "logentry": {
                        "message": "Refund %s of %s",
                        "params": [{"amount": 3}, None],
                        "formatted": "Refund of 3 EUR as sent",
                    }
                }
            )
        ],
        {},
    )
    send(server, [event_item({"message": {"message": "%s left", "params": ["<b>x</b>"]}})], {})
    titles = {i["title"] for i in api(server, "/issues/?status=all")}
    # Named parameters filled, a missing positional one left as written, %% is %, and a
    # huge width is not obeyed.
    assert "bob paid %d% of %s %999999999d %s" in titles
    assert "Refund of 3 EUR as sent" in titles
    assert "<b>x</b> left" in titles
    document = page(server, "/issues/")
    assert "&lt;b&gt;x&lt;/b&gt; left" in document
    assert "<b>x</b>" not in document


# -- 4. the "{{auto}}" IP ------------------------------------------------------------------------


def test_the_auto_ip_is_the_senders_address(server):
    for user_id in ("u1", None):
        user: dict[str, Any] = {"ip_address": "{{auto}}"}
        if user_id:
            user["id"] = user_id
        send(
            server,
            [
                event_item(
                    {
                        "message": "who am I",
                        "user": user,
                        "request": {"url": "http://x/", "env": {"REMOTE_ADDR": "{{auto}}"}},
                    }
                )
            ],
            {},
        )
    issue = only_issue(server)
    assert issue["users"] == 2  # u1, and the one known by its (real) address
    events = api(server, f"/issues/{issue['id']}/events/")
    keys = {e["user_key"] for e in events}
    assert keys == {"id:u1", "ip_address:127.0.0.1"}
    for summary in events:
        event = api(server, f"/events/{summary['event_id']}/")["data"]
        assert event["user"]["ip_address"] == "127.0.0.1"
        assert event["request"]["env"]["REMOTE_ADDR"] == "127.0.0.1"
    document = page(server, f"/issues/{issue['id']}/")
    assert "{{auto}}" not in document
    assert "127.0.0.1" in pre_texts(document)


# -- 5. the issue page ---------------------------------------------------------------------------


def _crash_event() -> dict[str, Any]:
    # Frame locals as the SDKs send them: every string is its repr, inside containers too.
    return {
        "exception": {
            "values": [
                {
                    "type": "KeyError",
                    "value": "'kiwi'",
                    "stacktrace": {
                        "frames": [
                            {
                                "filename": "shop.py",
                                "function": "checkout",
                                "lineno": 3,
                                "in_app": True,
                                "vars": {
                                    "cart": ["'kiwi'", "'apple'"],
                                    "prices": {"apple": "'1.20'", "count": 2, "gone": None},
                                    "name": "'kiwi'",
                                },
                            }
                        ]
                    },
                }
            ]
        },
        "breadcrumbs": {
            "values": [
                {
                    "timestamp": time.time(),
                    "category": "log",
                    "message": "\x1b[31mpayment <b>declined</b>\x1b[0m for \x1b]8;;http://x\x07"
                    "kiwi\x1b]8;;\x07",
                    "data": {"line": "\x1b[1mbold\x1b[22m"},
                }
            ]
        },
    }


def test_the_issue_page_shows_locals_once_quoted_and_breadcrumbs_without_escapes(server):
    send(server, [event_item(_crash_event())], {})
    issue = only_issue(server)
    document = page(server, f"/issues/{issue['id']}/")
    texts = pre_texts(document)
    assert "['kiwi', 'apple']" in texts
    assert "{'apple': '1.20', 'count': 2, 'gone': None}" in texts
    assert "'kiwi'" in texts
    assert not any("\"'" in t for t in texts), texts  # nothing quoted twice
    # Breadcrumbs: the escape sequences are gone, the text stays, and is still escaped.
    assert "payment <b>declined</b> for kiwi" in texts
    assert "&lt;b&gt;declined&lt;/b&gt;" in document
    assert "<b>declined" not in document
    assert "\x1b" not in document and "[31m" not in document and "]8;;" not in document
    assert any('"line": "bold"' in t for t in texts)


def test_favicon_is_served(server):
    status, headers, body = get(server, "/favicon.ico")
    assert status == 200
    assert headers["content-type"] == "image/x-icon"
    assert body[:4] == b"\x00\x00\x01\x00"  # an ICO file
    assert '<link rel="icon" href="/favicon.ico"' in page(server, "/issues/")


def test_counts_of_one_are_singular(server):
    trace_id = "a" * 32
    now = time.time()
    send(
        server,
        [
            (
                {"type": "transaction"},
                json.dumps(
                    {
                        "type": "transaction",
                        "transaction": "GET /",
                        "start_timestamp": now - 1,
                        "timestamp": now,
                        "contexts": {"trace": {"trace_id": trace_id, "span_id": "b" * 16}},
                    }
                ).encode(),
            )
        ],
        {},
    )
    assert re.search(r"· 1 span</p>", page(server, f"/traces/{trace_id}/"))
    send(
        server,
        [
            event_item({"message": "one byte"}),
            ({"type": "attachment", "filename": "b.bin"}, b"x"),
        ],
        {"event_id": PLAIN},
    )
    issue = only_issue(server)
    assert "(1 byte, " in page(server, f"/issues/{issue['id']}/")
