"""Issues 16 and 17 in a real browser: each page of the local backend in headless Chromium.

One server is filled the way users fill it: sentry-sdk 2.75 and tripwire, each run
as a program of its own against it, and an envelope as sentry-cli sends it (an
attachment under a dashed event id). One browser then walks the pages a user
opens, with several checks per page load: the issue list (search, status, project
filter, plurals), the issue page (formatted message, the sender's IP, locals quoted
once, breadcrumbs without ANSI escapes, feature flags, attachments, a regression),
triage, the releases page, the trace waterfall and an error-only trace, the
envelope inspector, the favicon, projects created from the page, and the metrics
charts with values from both SDKs.

It is a single test on purpose: under pytest-xdist each test may run in a worker of
its own, and this keeps it to one browser and one server.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from _lazy import skip_module_without

pytest.importorskip("starlette", reason="the server extra is not installed")
pytest.importorskip("uvicorn", reason="the server extra is not installed")
skip_module_without("selenium", reason="selenium is not installed")
skip_module_without("sentry_sdk", reason="sentry-sdk is not installed")

from tripwire.server.app import ServerThread  # noqa: E402

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
pytestmark = pytest.mark.skipif(
    not (os.path.exists(CHROMIUM) and os.path.exists(CHROMEDRIVER)),
    reason="headless Chromium and chromedriver are not installed",
)

DASHED = "9EC79C33-EC99-42AB-8353-589FCB2E04DC"
PLAIN = DASHED.replace("-", "").lower()
ERROR_ONLY_TRACE = "9" * 32

# The application run with sentry-sdk 2.75: an exception with locals, a breadcrumb
# with terminal colours, a message with parameters, flags, a nested transaction,
# a session, and metrics.
SENTRY_APP = """
import logging, os, sentry_sdk
from sentry_sdk.feature_flags import add_feature_flag

sentry_sdk.init(dsn=os.environ["DSN"], release="shop@1.0", environment="prod",
                traces_sample_rate=1.0, send_default_pii=True)
sentry_sdk.set_user({"id": "u1", "ip_address": "{{auto}}"})
add_feature_flag("new-checkout", True)
add_feature_flag("dark-mode", False)
scope = sentry_sdk.get_isolation_scope()
scope.start_session()
logging.getLogger("shop").warning("\\x1b[31mcard <b>declined</b>\\x1b[0m")

def checkout(cart):
    prices = {"apple": "1.20"}
    name = "kiwi"
    return prices[name]

with sentry_sdk.start_transaction(name="POST /checkout", op="http.server") as txn:
    with sentry_sdk.start_span(op="db", name="SELECT cart"):
        with sentry_sdk.start_span(op="db.fetch", name="fetch rows"):
            pass
    try:
        checkout(["kiwi", "apple"])
    except KeyError:
        sentry_sdk.capture_exception()
    print(txn.trace_id)
logging.getLogger("shop").error("Payment failed for %s", "acme")
for region in ("eu", "eu", "us"):
    sentry_sdk.metrics.count("checkout.completed", 1, attributes={"region": region})
sentry_sdk.metrics.distribution("cart.size", 3, unit="item")
sentry_sdk.metrics.distribution("cart.size", 5, unit="item")
scope.end_session()
sentry_sdk.flush()
"""

# The worker run with tripwire, to the project created in the browser.
TRIPWIRE_APP = """
import os, tripwire
from tripwire.feature_flags import add_feature_flag

tripwire.init(dsn=os.environ["DSN"], release="worker@2", default_integrations=False)
add_feature_flag("fast-queue", True)
tripwire.metrics.count("jobs.done", 2, attributes={"queue": "high"})
tripwire.metrics.gauge("queue.depth", 7)
try:
    {}["job"]
except KeyError:
    tripwire.capture_exception()
tripwire.flush()
"""


def run_app(source: str, dsn: str, tmp_path: Path, name: str) -> str:
    script = tmp_path / f"{name}.py"
    script.write_text(textwrap.dedent(source))
    env = {**os.environ, "DSN": dsn, "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("SENTRY_DSN", None)
    proc = subprocess.run(
        [sys.executable, str(script)],
        env=env,
        cwd=str(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def send(server: ServerThread, items: list[tuple[dict[str, Any], bytes]], header: dict) -> None:
    """An envelope as sentry-cli and the SDKs send it, to the default project."""
    dsn = urlsplit(server.dsn)
    lines = [json.dumps(header).encode()]
    for item_header, payload in items:
        lines += [json.dumps({**item_header, "length": len(payload)}).encode(), payload]
    request = urllib.request.Request(
        f"{server.url}/api{dsn.path}/envelope/",
        data=b"\n".join(lines) + b"\n",
        headers={"X-Sentry-Auth": f"Sentry sentry_key={dsn.username}, sentry_version=7"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200


def api(server: ServerThread, path: str) -> Any:
    with urllib.request.urlopen(f"{server.url}/api/0{path}", timeout=30) as response:
        return json.loads(response.read())


def event(payload: dict[str, Any]) -> tuple[dict[str, Any], bytes]:
    return {"type": "event"}, json.dumps(payload).encode()


class Browser:
    """One headless Chromium, driven through chromedriver."""

    def __init__(self, tmp_path: Path, base: str) -> None:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service

        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in (
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-dev-shm-usage",
            "--no-first-run",
            "--window-size=1280,2000",
            f"--user-data-dir={tmp_path / 'profile'}",
        ):
            options.add_argument(flag)
        self.base = base
        self.driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))

    def open(self, path: str) -> str:
        """Load `path`; the page's text as the user reads it (hidden parts too)."""
        self.driver.get(self.base + path)
        return self.text("main")

    def text(self, selector: str) -> str:
        found = self.driver.execute_script(
            "const e = document.querySelector(arguments[0]); return e ? e.textContent : null",
            selector,
        )
        assert found is not None, f"{selector} is not on {self.driver.current_url}"
        return " ".join(str(found).split())

    def texts(self, selector: str) -> list[str]:
        found = self.driver.execute_script(
            "return [...document.querySelectorAll(arguments[0])].map(e => e.textContent)",
            selector,
        )
        return [" ".join(str(t).split()) for t in found]

    def count(self, selector: str) -> int:
        return int(
            self.driver.execute_script(
                "return document.querySelectorAll(arguments[0]).length", selector
            )
        )

    def click_and_wait(self, selector: str, until: str) -> None:
        """Click, then wait for the next page to have an element matching `until`."""
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.common.by import By
        from selenium.webdriver.support.ui import WebDriverWait

        # A marker on the old page's window tells the pages apart; selenium's
        # staleness_of asks the old element, which Chromium may answer with an
        # inspector error (not a stale-element one) mid-navigation.
        self.driver.execute_script("window.__twOldPage = true")
        self.driver.find_element(By.CSS_SELECTOR, selector).click()
        # A script run mid-navigation may fail: ask again.
        wait = WebDriverWait(self.driver, 60, ignored_exceptions=[WebDriverException])
        wait.until(
            lambda d: d.execute_script(
                "return !window.__twOldPage && document.readyState === 'complete'"
            )
        )
        wait.until(lambda d: d.find_elements(By.CSS_SELECTOR, until))

    def quit(self) -> None:
        self.driver.quit()


def issue_id(server: ServerThread, title_part: str, **params: str) -> int:
    query = "&".join(f"{k}={v}" for k, v in {"status": "all", **params}.items())
    found = [i for i in api(server, f"/issues/?{query}") if title_part in i["title"]]
    assert len(found) == 1, found
    return int(found[0]["id"])


def test_every_page_in_chromium(tmp_path: Path) -> None:
    with ServerThread(db=tmp_path / "ui.db") as server:
        trace_id = run_app(SENTRY_APP, server.dsn, tmp_path, "shop").strip()
        assert re.fullmatch(r"[0-9a-f]{32}", trace_id)
        # As sentry-cli sends them: the event, then its attachment, under a dashed id.
        send(server, [event({"message": "with a log file", "level": "info"})], {"event_id": DASHED})
        send(
            server,
            [
                (
                    {"type": "attachment", "filename": "app.log", "content_type": "text/plain"},
                    b"tail",
                )
            ],
            {"event_id": DASHED},
        )
        send(
            server,
            [
                event(
                    {
                        "message": "payment webhook failed",
                        "level": "error",
                        "contexts": {"trace": {"trace_id": ERROR_ONLY_TRACE, "span_id": "6" * 16}},
                    }
                )
            ],
            {},
        )
        browser = Browser(tmp_path, server.url)
        try:
            check_issue_list(browser, server)
            check_issue_page(browser, server)
            check_triage_and_regression(browser, server)
            check_releases(browser, server)
            check_traces(browser, trace_id)
            check_inspector(browser, server)
            check_projects(browser, server, tmp_path)
            check_metrics(browser, server)
        finally:
            browser.quit()


def check_issue_list(browser: Browser, server: ServerThread) -> None:
    text = browser.open("/issues/")
    # The message is titled formatted, not by its template; counts of one are singular.
    assert "Payment failed for acme" in text and "Payment failed for %s" not in text
    assert browser.text("#issue-total") == "4 issues"
    titles = browser.texts("tr.issue a.title")
    assert len(titles) == 4
    # A search as users type it.
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    box = browser.driver.find_element(By.CSS_SELECTOR, "input[name=query]")
    box.clear()
    box.send_keys("is:unresolved level:error release:shop@1.0", Keys.ENTER)
    browser.driver.implicitly_wait(0)
    _wait(browser, lambda: "query=" in browser.driver.current_url)
    found = browser.texts("tr.issue a.title")
    assert sorted(found) == sorted(["KeyError: 'kiwi'", "Payment failed for acme"]), found
    assert browser.text("#issue-total") == "2 issues"
    browser.open("/issues/?query=kiwi")
    assert browser.text("#issue-total") == "1 issue"
    # One project so far: no project filter to choose from.
    assert browser.count("select[name=project]") == 0


def check_issue_page(browser: Browser, server: ServerThread) -> None:
    text = browser.open(f"/issues/{issue_id(server, 'kiwi')}/")
    # Locals as Python shows them: strings quoted once, inside lists and dicts too.
    variables = dict(zip(browser.texts("table.vars th"), browser.texts("table.vars td")))
    assert variables["cart"] == "['kiwi', 'apple']", variables
    assert variables["prices"] == "{'apple': '1.20'}"
    assert variables["name"] == "'kiwi'"
    # The breadcrumb's colours are gone; its markup is text.
    crumbs = browser.text("table.breadcrumbs")
    assert "card <b>declined</b>" in crumbs and "[31m" not in crumbs
    assert browser.count("table.breadcrumbs b") == 0
    # The user's "{{auto}}" IP is the sender's address.
    assert "{{auto}}" not in text and "127.0.0.1" in text
    # Issue 16: the flags evaluated before the error, in order.
    flags = list(zip(browser.texts("table.flags th"), browser.texts("table.flags td")))
    assert flags == [("new-checkout", "true"), ("dark-mode", "false")]

    # The attachment sent under a dashed event id is the event's, one click away.
    browser.open(f"/events/{DASHED}/")
    assert browser.text("#issue-title") == "with a log file"
    (link,) = browser.driver.execute_script(
        "return [...document.querySelectorAll('a[href^=\"/api/0/attachments/\"]')]"
        ".map(a => [a.textContent, a.href])"
    )
    assert link[0] == "app.log"
    assert "(4 bytes, text/plain)" in browser.text("main")
    with urllib.request.urlopen(link[1], timeout=30) as response:
        assert response.read() == b"tail"
    # The favicon the browser asks for exists.
    status = browser.driver.execute_async_script(
        "const done = arguments[0]; fetch('/favicon.ico').then(r => done(r.status))"
    )
    assert status == 200


def check_triage_and_regression(browser: Browser, server: ServerThread) -> None:
    number = issue_id(server, "webhook")
    browser.open(f"/issues/{number}/")
    browser.click_and_wait("form.triage .triage-resolve", "#status-note")
    assert browser.text("#issue-status").startswith("resolved")
    # It happens again: a regression, said on the page and findable.
    send(
        server,
        [
            event(
                {
                    "message": "payment webhook failed",
                    "level": "error",
                    "timestamp": time.time() + 1,
                }
            )
        ],
        {},
    )
    browser.open(f"/issues/{number}/")
    assert browser.text("#issue-status").startswith("unresolved")
    assert browser.text("#regression").startswith("Regression: this issue was resolved")
    browser.open("/issues/?status=regressed")
    assert browser.texts("tr.issue a.title") == ["payment webhook failed"]
    assert api(server, f"/issues/{number}/")["substatus"] == "regressed"


def check_releases(browser: Browser, server: ServerThread) -> None:
    browser.open("/releases/")
    row = browser.text('tr.release[data-release="shop@1.0"]')
    # Events and issues of the release, and health from the session sent.
    assert re.search(r"\b2\b", row), row
    assert "100" in browser.text('tr.release[data-release="shop@1.0"] td.crash-free')
    (release,) = [r for r in api(server, "/releases/") if r["release"] == "shop@1.0"]
    assert release["crash_free_rate"] == 100.0


def check_traces(browser: Browser, trace_id: str) -> None:
    browser.open(f"/traces/{trace_id}/")
    waterfall = browser.text("main")
    for name in ("POST /checkout", "SELECT cart", "fetch rows", "KeyError"):
        assert name in waterfall, name
    assert browser.count("tr.trace-error") == 1
    # Nested: the fetch is drawn further in than the query, the query than the request
    # (the stylesheet indents each depth).
    indents = browser.driver.execute_script(
        "return [...document.querySelectorAll('tr[data-span-id]')].map(r => [r.textContent,"
        " r.dataset.depth, r.querySelector('td').getBoundingClientRect().left"
        " + parseFloat(getComputedStyle(r.querySelector('td')).paddingLeft)])"
    )
    by_name = {
        name: (int(depth), left)
        for text, depth, left in indents
        for name in ("POST /checkout", "SELECT cart", "fetch rows")
        if name in text
    }
    assert [by_name[n][0] for n in ("POST /checkout", "SELECT cart", "fetch rows")] == [0, 1, 2]
    assert by_name["POST /checkout"][1] < by_name["SELECT cart"][1] < by_name["fetch rows"][1]
    text = browser.open(f"/traces/{ERROR_ONLY_TRACE}/")
    assert "1970" not in text
    assert browser.text("#no-spans").startswith("No transaction or span of this trace")


def check_inspector(browser: Browser, server: ServerThread) -> None:
    browser.open("/envelopes/")
    assert browser.count("tr.envelope") >= 5
    # The newest: the regression's event, decoded.
    browser.click_and_wait("tr.envelope a", "#envelope-headers")
    assert "event" in browser.text("#envelope-summary")
    payloads = browser.texts("section.envelope-item pre.payload")
    assert any('"message": "payment webhook failed"' in p for p in payloads), payloads


def check_projects(browser: Browser, server: ServerThread, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    browser.open("/projects/")
    browser.driver.find_element(By.CSS_SELECTOR, "input[name=name]").send_keys("worker <jobs>")
    browser.click_and_wait("form button[type=submit]", "#created")
    notice = browser.text("#created")
    assert notice.startswith("Project worker <jobs> created")
    (dsn,) = re.findall(r'dsn="(http://\w+@127\.0\.0\.1:\d+/2)"', notice)
    run_app(TRIPWIRE_APP, dsn, tmp_path, "worker")

    # The issue list: every project, or one.
    browser.open("/issues/")
    assert browser.count("select[name=project] option") == 3
    # Its row names its project (rows seen in the same second may come in any order).
    names = browser.texts("tr.issue .project-name")
    assert any("worker <jobs>" in name for name in names), names
    browser.open("/issues/?project=2")
    assert browser.texts("tr.issue a.title") == ["KeyError: 'job'"]
    browser.open("/issues/?project=1")
    assert "KeyError: 'job'" not in browser.texts("tr.issue a.title")
    assert [i["title"] for i in api(server, "/issues/?project=2")] == ["KeyError: 'job'"]
    browser.open(f"/issues/{issue_id(server, 'job', project='2')}/")
    assert list(zip(browser.texts("table.flags th"), browser.texts("table.flags td"))) == [
        ("fast-queue", "true")
    ]


def check_metrics(browser: Browser, server: ServerThread) -> None:
    browser.open("/metrics/")
    charts = browser.driver.execute_script(
        "return [...document.querySelectorAll('section.metric-chart')].map(s => ["
        "s.dataset.metric, s.querySelectorAll('svg.chart polyline').length,"
        "[...s.querySelectorAll('svg.chart g.series')].map(g => g.dataset.label)])"
    )
    assert charts == [
        ["cart.size", 1, ["all values"]],
        ["checkout.completed", 2, ["region=eu", "region=us"]],
        ["jobs.done", 1, ["queue=high"]],
        ["queue.depth", 1, ["all values"]],
    ], charts
    # The chart is drawn: a dot per bucket with its value on hover, axes labelled.
    eu = browser.text('section[data-metric="checkout.completed"] g[data-label="region=eu"] title')
    assert eu.startswith("region=eu: 2 (sum,")
    box = browser.driver.execute_script(
        "return document.querySelector('section[data-metric=\"cart.size\"] svg.chart')"
        ".getBoundingClientRect().width"
    )
    assert box > 300
    assert browser.count('section[data-metric="cart.size"] text.y-tick') >= 2
    received = browser.texts("tr.metric > td:nth-child(2)")
    assert sorted(set(received)) == ["cart.size", "checkout.completed", "jobs.done", "queue.depth"]
    # Both SDKs' items, as sent.
    sdks = {m["attributes"].get("sentry.sdk.name", "") for m in api(server, "/metrics/")["metrics"]}
    assert any(s.startswith("sentry.python") for s in sdks) and "tripwire.python" in sdks

    # One project, series by another attribute.
    browser.open("/metrics/?project=1&group=sentry.environment")
    assert browser.count("select[name=project]") == 1
    labels = browser.texts('section[data-metric="checkout.completed"] g.series')
    assert browser.driver.execute_script(
        "return [...document.querySelectorAll('section.metric-chart')].map(s => s.dataset.metric)"
    ) == ["cart.size", "checkout.completed"]
    assert browser.driver.execute_script(
        "return [...document.querySelectorAll("
        "'section[data-metric=\"checkout.completed\"] g.series')].map(g => g.dataset.label)"
    ) == ["sentry.environment=prod"], labels
    series = api(server, "/metrics/series/?name=checkout.completed&group=region")
    (metric,) = series["metrics"]
    assert [(s["label"], s["total"]) for s in metric["series"]] == [
        ("region=eu", 2.0),
        ("region=us", 1.0),
    ]


def _wait(browser: Browser, condition: Any) -> None:
    from selenium.webdriver.support.ui import WebDriverWait

    WebDriverWait(browser.driver, 60).until(lambda _d: condition())
