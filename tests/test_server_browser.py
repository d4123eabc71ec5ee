"""The web UI in a real browser: headless Chromium renders the issue page.

It must show the stack trace (with source context and local variables) and must
not run script that arrived inside an event: every payload below would mark the
document with ``data-pwned`` if it ran.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("starlette", reason="the server extra is not installed")
pytest.importorskip("jinja2", reason="the server extra is not installed")

from tripwire.envelope import Envelope
from tripwire.server.app import ServerThread
from tripwire.server.store import StoredItem as Item

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if os.path.exists("/usr/bin/chromium") else None
)
pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="headless Chromium is not installed (apt-get install chromium chromium-driver)",
)

SCRIPT = "<script>document.documentElement.setAttribute('data-pwned','script')</script>"
IMG = "<img src=x onerror=\"document.documentElement.setAttribute('data-pwned','img')\">"
ATTR = "\"><svg onload=\"document.documentElement.setAttribute('data-pwned','attr')\">"


def _xss_event() -> dict:
    return {
        "event_id": "5" * 32,
        "level": "error",
        "release": f"1.0{ATTR}",
        "environment": "prod",
        "transaction": f"/cart{IMG}",
        "tags": {"payload": SCRIPT, f"k{ATTR}": "v"},
        "user": {"id": "u1", "username": IMG},
        "request": {
            "method": "POST",
            "url": f"http://shop.local/{SCRIPT}",
            "headers": {"X-Evil": IMG},
        },
        "breadcrumbs": {"values": [{"category": "ui", "message": SCRIPT, "timestamp": 1.0}]},
        "contexts": {"custom": {"html": IMG}},
        "exception": {
            "values": [
                {
                    "type": "ValueError",
                    "value": f"bad input {SCRIPT}",
                    "stacktrace": {
                        "frames": [
                            {
                                "filename": f"app/{IMG}.py",
                                "function": "handle_checkout",
                                "module": "app.views",
                                "lineno": 42,
                                "in_app": True,
                                "pre_context": ["def handle_checkout(cart):", "    total = 0"],
                                "context_line": f"    raise ValueError('bad input' + {SCRIPT!r})",
                                "post_context": ["    return total"],
                                "vars": {"cart": f"['{IMG}']", "total": "0"},
                            }
                        ]
                    },
                }
            ]
        },
    }


def dump_dom(url: str, profile: Path) -> str:
    assert CHROMIUM is not None
    proc = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-dev-shm-usage",
            "--no-first-run",
            f"--user-data-dir={profile}",
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_issue_page_shows_the_stack_trace_and_no_event_script_runs(tmp_path):
    with ServerThread(db=tmp_path / "ui.db") as server:
        envelope = Envelope(headers={"event_id": "5" * 32})
        envelope.add_event(_xss_event())
        items = [Item(i.type or "", i.headers, i.get_bytes()) for i in envelope.items]
        result = server.store.save(1, items, envelope.headers)
        (issue_id,) = result.issue_ids

        dom = dump_dom(f"{server.url}/issues/{issue_id}/", tmp_path / "profile")

    # The page rendered, with the stack trace, source context and local variables.
    assert 'id="issue-title"' in dom
    assert '<ol class="stacktrace">' in dom
    assert '<span class="function">handle_checkout</span>' in dom
    assert '<span class="lineno">42</span>' in dom
    assert "def handle_checkout(cart):" in dom
    assert "Local variables" in dom
    # Nothing from the event ran ...
    assert "data-pwned" not in dom.split(">", 2)[1]  # the <html> element's attributes
    assert "data-pwned=" not in dom
    # ... because it is text: the payload shows escaped, and made no elements.
    assert "bad input &lt;script&gt;document.documentElement" in dom
    assert "&lt;img src=x onerror=" in dom
    assert "<img" not in dom
    assert "<svg onload" not in dom
    assert dom.count("<script") == 0


def test_live_page_shows_arrivals_as_they_come_as_text(tmp_path):
    # The live page is filled by script from a stream: drive a real browser through it.
    pytest.importorskip("selenium", reason="selenium is not installed")
    chromedriver = shutil.which("chromedriver") or "/usr/bin/chromedriver"
    if not os.path.exists(chromedriver):
        pytest.skip("chromedriver is not installed (apt-get install chromium-driver)")
    import urllib.request

    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

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
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(flag)
    with ServerThread(db=tmp_path / "live.db") as server:
        driver = webdriver.Chrome(options=options, service=Service(chromedriver))
        try:
            driver.get(f"{server.url}/live/")
            WebDriverWait(driver, 30).until(
                lambda d: d.find_element(By.ID, "live-status").text == "connected"
            )
            body = Envelope()
            body.add_event({"event_id": "6" * 32, "message": f"live {IMG}{SCRIPT}"})
            request = urllib.request.Request(
                f"{server.url}/stream",
                data=body.serialize(),
                headers={"Content-Type": "application/x-sentry-envelope"},
                method="POST",
            )
            with urllib.request.urlopen(request, timeout=30) as response:
                assert response.status == 200
            (row,) = WebDriverWait(driver, 30).until(
                lambda d: d.find_elements(By.CSS_SELECTOR, "#live-rows tr")
            )
            assert f"live {IMG}{SCRIPT}" in row.text
            assert (
                driver.execute_script("return document.querySelectorAll('#live-rows img').length")
                == 0
            )
            assert (
                driver.execute_script("return document.documentElement.getAttribute('data-pwned')")
                is None
            )
        finally:
            driver.quit()
