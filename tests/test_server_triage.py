"""Triage in the local backend, over real HTTP on 127.0.0.1: what a user clicks and sees.

Resolve, resolve in the next release, ignore (forever, for a while, until N more
events), unresolve; regressions; status filters and search; bulk actions on the
list; the same through the JSON API; and a database of schema 1 upgraded in place.
"""

from __future__ import annotations

import html
import http.client
import json
import re
import sqlite3
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Optional
from urllib.parse import urlencode

import pytest

pytest.importorskip("starlette", reason="the server extra is not installed")
pytest.importorskip("uvicorn", reason="the server extra is not installed")

from tripwire.envelope import Envelope
from tripwire.server import queries
from tripwire.server.app import ServerThread
from tripwire.server.schema import MIGRATIONS, SCHEMA_VERSION
from tripwire.server.store import Store
from tripwire.server.triage import Action

EVIL = "https://evil.example"


class Reply:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.headers = headers
        self.body = body

    @property
    def text(self) -> str:
        return self.body.decode("utf-8")

    def json(self) -> Any:
        return json.loads(self.body)


def request(
    server: ServerThread,
    method: str,
    path: str,
    body: Optional[bytes] = None,
    headers: Optional[dict[str, str]] = None,
) -> Reply:
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        found = {k.lower(): v for k, v in response.getheaders()}
        return Reply(response.status, found, response.read())
    finally:
        conn.close()


def send_event(server: ServerThread, **event: Any) -> str:
    """Store an error event through the ingest endpoint; its id."""
    event_id = uuid.uuid4().hex
    event.setdefault("level", "error")
    env = Envelope(headers={"event_id": event_id})
    env.add_event({"event_id": event_id, **event})
    key = server.store.default_project()["public_key"]
    reply = request(
        server,
        "POST",
        "/api/1/envelope/",
        env.serialize(),
        {"X-Sentry-Auth": f"Sentry sentry_key={key}, sentry_version=7"},
    )
    assert reply.status == 200, reply.body
    return event_id


def error(kind: str, value: str = "boom", **extra: Any) -> dict[str, Any]:
    """An exception event of type `kind` (one issue per kind)."""
    return {
        "exception": {
            "values": [
                {
                    "type": kind,
                    "value": value,
                    "stacktrace": {
                        "frames": [{"function": "handle", "module": "shop.views", "in_app": True}]
                    },
                }
            ]
        },
        **extra,
    }


def page(server: ServerThread, path: str) -> str:
    reply = request(server, "GET", path)
    assert reply.status == 200, reply.body
    return reply.text


def form_token(document: str) -> str:
    (token,) = set(re.findall(r'name="token" value="([^"]+)"', document))
    return token


def post_form(
    server: ServerThread, path: str, fields: list[tuple[str, str]], origin: Optional[str] = None
) -> Reply:
    """POST a form as the browser does from the server's own page (Origin: its own)."""
    return request(
        server,
        "POST",
        path,
        urlencode(fields).encode(),
        {
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": origin or server.url,
            "Sec-Fetch-Site": "same-origin" if origin is None else "cross-site",
        },
    )


def issue_row(server: ServerThread, issue_id: int) -> sqlite3.Row:
    row = (
        server.store.connection()
        .execute("SELECT * FROM issues WHERE id = ?", (issue_id,))
        .fetchone()
    )
    assert row is not None
    return row


def issue_ids_on(document: str) -> list[int]:
    return [int(i) for i in re.findall(r'<tr class="issue" data-issue-id="(\d+)"', document)]


def the_issue(server: ServerThread, kind: str) -> dict[str, Any]:
    found = [
        i for i in request(server, "GET", "/api/0/issues/?status=all").json() if i["type"] == kind
    ]
    assert len(found) == 1, found
    return dict(found[0])


def text_of(document: str, element_id: str) -> str:
    match = re.search(rf'id="{element_id}"[^>]*>(.*?)</', document, re.S)
    assert match, element_id
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", match.group(1))).split())


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerThread]:
    s = ServerThread(db=tmp_path / "triage.db")
    yield s
    s.stop()


# -- one issue, from its page ---------------------------------------------------------------------


def test_resolve_from_the_issue_page_then_a_new_event_is_a_regression(server):
    send_event(server, **error("KeyError", "'kiwi'", release="1.0"))
    issue = the_issue(server, "KeyError")
    path = f"/issues/{issue['id']}/"
    document = page(server, path)
    assert 'value="resolve"' in document and 'value="unresolve"' not in document

    reply = post_form(
        server,
        f"{path}triage/",
        [("token", form_token(document)), ("action", "resolve")],
    )
    assert reply.status == 303
    assert reply.headers["location"] == path
    assert issue_row(server, issue["id"])["status"] == "resolved"

    document = page(server, path)
    assert text_of(document, "issue-status").startswith("resolved")
    assert "A new event reopens it as a regression" in text_of(document, "status-note")
    assert 'value="unresolve"' in document
    # Gone from the default list (unresolved), there under "resolved".
    assert issue_ids_on(page(server, "/issues/")) == []
    assert issue_ids_on(page(server, "/issues/?status=resolved")) == [issue["id"]]

    send_event(server, **error("KeyError", "'kiwi'", release="1.0"))
    row = issue_row(server, issue["id"])
    assert (row["status"], row["substatus"]) == ("unresolved", "regressed")
    document = page(server, "/issues/")
    assert issue_ids_on(document) == [issue["id"]]
    assert 'class="status status-regressed"' in document
    assert issue_ids_on(page(server, "/issues/?query=is%3Aregressed")) == [issue["id"]]
    document = page(server, path)
    assert "Regression: this issue was resolved and happened again" in text_of(
        document, "regression"
    )
    kinds = re.findall(r'<span class="kind kind-(\w+)">', document)
    assert kinds == ["regression", "resolved"]
    assert request(server, "GET", f"/api/0/issues/{issue['id']}/").json()["substatus"] == (
        "regressed"
    )


def test_an_event_that_happened_before_the_fix_does_not_reopen_it(server):
    send_event(server, **error("OSError"))
    issue = the_issue(server, "OSError")
    server.store.triage([issue["id"]], Action("resolved"))
    # Sent late (spooled while offline): it happened an hour before the resolution.
    send_event(server, **error("OSError"), timestamp=time.time() - 3600)
    row = issue_row(server, issue["id"])
    assert (row["status"], row["times_seen"]) == ("resolved", 2)


def test_resolved_in_the_next_release_reopens_only_for_a_newer_release(server):
    send_event(server, **error("TimeoutError", release="shop@1.0"))
    issue = the_issue(server, "TimeoutError")
    document = page(server, f"/issues/{issue['id']}/")
    post_form(
        server,
        f"/issues/{issue['id']}/triage/",
        [("token", form_token(document)), ("action", "resolve_next")],
    )
    row = issue_row(server, issue["id"])
    assert (row["status"], row["in_next_release"], row["resolved_release"]) == (
        "resolved",
        1,
        "shop@1.0",
    )
    note = text_of(page(server, f"/issues/{issue['id']}/"), "status-note")
    assert "in the next release after shop@1.0" in note

    # The release that still has the bug, and events with no release: expected.
    send_event(server, **error("TimeoutError", release="shop@1.0"))
    send_event(server, **error("TimeoutError"))
    assert issue_row(server, issue["id"])["status"] == "resolved"
    # The next release still has it: a regression.
    send_event(server, **error("TimeoutError", release="shop@1.1"))
    row = issue_row(server, issue["id"])
    assert (row["status"], row["substatus"]) == ("unresolved", "regressed")
    activity = request(server, "GET", f"/api/0/issues/{issue['id']}/").json()["activity"]
    assert activity[0]["kind"] == "regression"
    assert "release shop@1.1" in activity[0]["detail"]
    assert activity[1]["detail"] == "resolved in the next release (after shop@1.0)"


def test_ignore_forever_until_n_more_events_and_for_a_while(server):
    for kind in ("ValueError", "TypeError", "LookupError"):
        send_event(server, **error(kind))
    forever, counted, timed = (
        the_issue(server, k)["id"] for k in ("ValueError", "TypeError", "LookupError")
    )
    document = page(server, f"/issues/{forever}/")
    token = form_token(document)
    post_form(server, f"/issues/{forever}/triage/", [("token", token), ("action", "ignore")])
    post_form(server, f"/issues/{counted}/triage/", [("token", token), ("action", "ignore_10")])
    post_form(server, f"/issues/{timed}/triage/", [("token", token), ("action", "ignore_1h")])
    assert issue_ids_on(page(server, "/issues/")) == []
    assert sorted(issue_ids_on(page(server, "/issues/?status=ignored"))) == sorted(
        [forever, counted, timed]
    )
    assert "until further notice" in text_of(page(server, f"/issues/{forever}/"), "status-note")
    assert "until it has 11 events (1 now)" in text_of(
        page(server, f"/issues/{counted}/"), "status-note"
    )

    # Nine more: still ignored; the tenth brings it back. Forever stays ignored.
    for _ in range(9):
        send_event(server, **error("TypeError"))
        send_event(server, **error("ValueError"))
    assert issue_row(server, counted)["status"] == "ignored"
    send_event(server, **error("TypeError"))
    row = issue_row(server, counted)
    assert (row["status"], row["substatus"]) == ("unresolved", "unignored")
    assert issue_row(server, forever)["status"] == "ignored"
    assert issue_ids_on(page(server, "/issues/")) == [counted]

    # An ignore for a while ends when the while is over, new event or not.
    server.store.triage([timed], Action("ignored", ignore_minutes=1), now=time.time() - 120)
    assert sorted(issue_ids_on(page(server, "/issues/"))) == sorted([counted, timed])
    assert the_issue(server, "LookupError")["status"] == "unresolved"


def test_unresolve_puts_it_back_on_the_list(server):
    send_event(server, **error("ZeroDivisionError"))
    issue_id = the_issue(server, "ZeroDivisionError")["id"]
    server.store.triage([issue_id], Action("resolved"))
    document = page(server, f"/issues/{issue_id}/")
    reply = post_form(
        server,
        f"/issues/{issue_id}/triage/",
        [("token", form_token(document)), ("action", "unresolve")],
    )
    assert reply.status == 303
    assert issue_row(server, issue_id)["status"] == "unresolved"
    assert issue_ids_on(page(server, "/issues/")) == [issue_id]


# -- the forms are this server's own --------------------------------------------------------------


def test_triage_forms_from_other_sites_or_without_the_pages_token_change_nothing(server):
    send_event(server, **error("PermissionError"))
    issue_id = the_issue(server, "PermissionError")["id"]
    token = form_token(page(server, "/issues/"))
    target = f"/issues/{issue_id}/triage/"
    refused = [
        post_form(server, target, [("token", token), ("action", "resolve")], origin=EVIL),
        post_form(server, target, [("token", "guessed"), ("action", "resolve")]),
        post_form(server, target, [("action", "resolve")]),
        post_form(
            server,
            "/issues/triage/",
            [("token", token), ("action", "resolve"), ("id", str(issue_id))],
            origin=EVIL,
        ),
        request(
            server,
            "PUT",
            f"/api/0/issues/{issue_id}/",
            b'{"status": "resolved"}',
            {"Content-Type": "application/json", "Origin": EVIL},
        ),
        # A form can post text/plain cross-site without a preflight: the API wants JSON.
        request(server, "PUT", f"/api/0/issues/{issue_id}/", b'{"status": "resolved"}'),
    ]
    assert [r.status for r in refused] == [403, 403, 403, 403, 403, 415]
    assert "reload the page" in refused[1].text
    assert issue_row(server, issue_id)["status"] == "unresolved"
    # The form may only send the browser back to this server.
    reply = post_form(
        server,
        target,
        [("token", token), ("action", "ignore"), ("next", "//evil.example/x")],
    )
    assert (reply.status, reply.headers["location"]) == (303, "/issues/")
    # Unknown actions are refused, and the body is bounded.
    assert post_form(server, target, [("token", token), ("action", "delete")]).status == 400
    huge = post_form(server, target, [("token", token), ("x", "a" * 100_000)])
    assert huge.status == 403
    many = post_form(server, "/issues/triage/", [("token", token)] + [("id", "1")] * 2000)
    assert many.status == 403


# -- the list: filters, search, bulk ---------------------------------------------------------------


def test_bulk_actions_on_the_ticked_issues(server):
    for kind in ("AError", "BError", "CError"):
        send_event(server, **error(kind))
    a, b, c = (the_issue(server, k)["id"] for k in ("AError", "BError", "CError"))
    document = page(server, "/issues/?query=Error")
    assert 'id="pick-all"' in document and '<script src="/static/issues.js">' in document
    reply = post_form(
        server,
        "/issues/triage/",
        [
            ("token", form_token(document)),
            ("next", "/issues/?query=Error"),
            ("id", str(a)),
            ("id", str(c)),
            ("action", "resolve"),
        ],
    )
    assert (reply.status, reply.headers["location"]) == (303, "/issues/?query=Error")
    assert [issue_row(server, i)["status"] for i in (a, b, c)] == [
        "resolved",
        "unresolved",
        "resolved",
    ]
    assert issue_ids_on(page(server, "/issues/?query=Error")) == [b]

    # The API takes the same, as Sentry's bulk mutate does.
    reply = request(
        server,
        "PUT",
        f"/api/0/issues/?id={a}&id={b}&id={c}",
        json.dumps({"status": "ignored", "statusDetails": {"ignoreCount": 5}}).encode(),
        {"Content-Type": "application/json"},
    )
    assert reply.json() == {"updated": 3}
    assert {issue_row(server, i)["status"] for i in (a, b, c)} == {"ignored"}
    assert issue_row(server, a)["ignore_until_count"] == 6
    assert (
        request(server, "PUT", "/api/0/issues/", b"{}", {"Content-Type": "application/json"}).status
        == 400
    )


def test_search_by_status_level_release_tags_and_text(server):
    send_event(
        server,
        **error("KeyError", release="1.0", tags={"browser": "Chrome 120", "plan": "pro"}),
        environment="production",
    )
    send_event(server, **error("ValueError", release="1.2", tags={"browser": "Firefox"}))
    send_event(server, **error("IndexError", release="1.0"), level="warning")
    send_event(server, message="disk full on /var", level="error", release="1.0")
    ids = {k: the_issue(server, k)["id"] for k in ("KeyError", "ValueError", "IndexError")}
    server.store.triage([ids["IndexError"]], Action("resolved"))

    def found(query: str, **params: str) -> list[str]:
        issues = request(
            server, "GET", "/api/0/issues/?" + urlencode({"query": query, **params})
        ).json()
        via_page = issue_ids_on(page(server, "/issues/?" + urlencode({"query": query, **params})))
        assert via_page == [i["id"] for i in issues]
        return sorted(i["title"].split(":")[0] for i in issues)

    assert found("is:unresolved level:error release:1.0") == ["KeyError", "disk full on /var"]
    assert found("release:1.2") == ["ValueError"]
    assert found("is:resolved") == ["IndexError"]
    assert found("is:all release:1.0") == ["IndexError", "KeyError", "disk full on /var"]
    assert found('browser:"Chrome 120"') == ["KeyError"]
    assert found("browser:Chrome") == []
    assert found("plan:pro environment:production") == ["KeyError"]
    # Free text: the title, the culprit (where it happened) and the value.
    assert found("disk full") == ["disk full on /var"]
    assert found("shop.views") == ["KeyError", "ValueError"]
    assert found("shop.views release:1.2") == ["ValueError"]
    # The dropdowns and the search box together.
    assert found("", release="1.0", status="all") == ["IndexError", "KeyError", "disk full on /var"]
    # What was typed is shown back, escaped.
    document = page(server, "/issues/?" + urlencode({"query": 'x"><b>y'}))
    assert 'value="x&#34;&gt;&lt;b&gt;y"' in document
    assert "No unresolved issues match these filters" in document


# -- an existing database -------------------------------------------------------------------------


def test_a_schema_1_database_is_upgraded_and_its_tags_are_searchable(tmp_path):
    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0])
    conn.execute("INSERT INTO projects VALUES (1, 'default', 'k' || hex(randomblob(8)), 0)")
    conn.execute(
        "INSERT INTO issues (id, project_id, hash, title, culprit, type, value, level, status, "
        "first_seen, last_seen, times_seen, last_event_id) "
        "VALUES (7, 1, 'h', 'KeyError: x', 'app', 'KeyError', 'x', 'error', 'resolved', "
        "1, 2, 2, 'e2')"
    )
    for event_id, tags in (
        ("e1", {"browser": "Chrome", "n": 3}),
        ("e2", [["browser", "Chrome"], ["region", "eu"]]),
    ):
        conn.execute(
            "INSERT INTO events (project_id, event_id, issue_id, received, timestamp, level, "
            "title, release, data) VALUES (1, ?, 7, 1, 1, 'error', 't', '0.9', ?)",
            (event_id, json.dumps({"tags": tags})),
        )
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()

    with Store(path) as store:
        db = store.connection()
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        tags = {
            (r["key"], r["value"]): r["times_seen"]
            for r in db.execute("SELECT * FROM issue_tags WHERE issue_id = 7")
        }
        assert tags == {
            ("browser", "Chrome"): 2,
            ("n", "3"): 1,
            ("region", "eu"): 1,
            ("release", "0.9"): 2,
            ("level", "error"): 2,
        }
        (issue,) = queries.list_issues(store, query="is:resolved browser:Chrome region:eu")
        assert (issue["id"], issue["status"]) == (7, "resolved")
        assert queries.list_issues(store, query="browser:Chrome") == []


def test_the_api_takes_sentrys_status_bodies_and_refuses_bad_ones(server):
    send_event(server, **error("RuntimeError", release="2.0"))
    issue_id = the_issue(server, "RuntimeError")["id"]
    path = f"/api/0/issues/{issue_id}/"
    headers = {"Content-Type": "application/json"}

    def put(body: Any) -> Reply:
        return request(server, "PUT", path, json.dumps(body).encode(), headers)

    reply = put({"status": "resolvedInNextRelease"})
    assert reply.status == 200
    assert (reply.json()["status"], reply.json()["resolved_release"]) == ("resolved", "2.0")
    reply = put({"status": "ignored", "statusDetails": {"ignoreDuration": 30}})
    assert reply.json()["status"] == "ignored"
    assert reply.json()["ignore_until"] == pytest.approx(time.time() + 1800, abs=60)
    assert put({"status": "unresolved"}).json()["status"] == "unresolved"
    for bad in (
        {"status": "fixed"},
        {"status": "ignored", "statusDetails": {"ignoreCount": -1}},
        {"status": "resolved", "statusDetails": {"ignoreCount": 3}},
        {"status": "ignored", "statusDetails": {"ignoreDuration": "1h"}},
        ["resolved"],
    ):
        reply = put(bad)
        assert reply.status == 400, bad
        assert reply.json()["detail"].startswith("bad request")
    assert (
        request(server, "PUT", "/api/0/issues/999/", b'{"status": "resolved"}', headers).status
        == 404
    )
    assert issue_row(server, issue_id)["status"] == "unresolved"


# -- in a real browser ----------------------------------------------------------------------------


def test_in_chromium_tick_all_and_resolve_then_unresolve_from_the_issue_page(tmp_path):
    import os
    import shutil

    pytest.importorskip("selenium", reason="selenium is not installed")
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    chromedriver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not (os.path.exists(chromium) and os.path.exists(chromedriver)):
        pytest.skip("headless Chromium and chromedriver are not installed")
    from selenium import webdriver
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-dev-shm-usage",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    with ServerThread(db=tmp_path / "browser.db") as server:
        for kind in ("KeyError", "ValueError"):
            send_event(server, **error(kind))
        ids = [the_issue(server, k)["id"] for k in ("KeyError", "ValueError")]
        driver = webdriver.Chrome(options=options, service=Service(chromedriver))
        try:
            driver.get(f"{server.url}/issues/")
            driver.find_element(By.ID, "pick-all").click()
            ticked = driver.find_elements(By.CSS_SELECTOR, "input[name=id]:checked")
            assert len(ticked) == 2
            driver.find_element(By.CSS_SELECTOR, ".bulk-actions .triage-resolve").click()
            WebDriverWait(driver, 30, ignored_exceptions=[WebDriverException]).until(
                lambda d: "No unresolved issues" in d.find_element(By.TAG_NAME, "main").text
            )
            assert [issue_row(server, i)["status"] for i in ids] == ["resolved", "resolved"]

            driver.get(f"{server.url}/issues/{ids[0]}/")
            driver.find_element(By.CSS_SELECTOR, "form.triage .triage-unresolve").click()
            WebDriverWait(driver, 30, ignored_exceptions=[WebDriverException]).until(
                lambda d: d.find_element(By.ID, "issue-status").text.strip() == "unresolved"
            )
            assert issue_row(server, ids[0])["status"] == "unresolved"
            driver.find_element(By.CSS_SELECTOR, "form.triage .ignore-menu summary").click()
            driver.find_element(By.CSS_SELECTOR, "form.triage button[value=ignore_1d]").click()
            WebDriverWait(driver, 30, ignored_exceptions=[WebDriverException]).until(
                lambda d: d.find_element(By.ID, "issue-status").text.startswith("ignored")
            )
            assert issue_row(server, ids[0])["ignore_until"] > time.time() + 23 * 3600
        finally:
            driver.quit()
