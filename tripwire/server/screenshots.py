"""Screenshots of the web UI, for anyone to look at: ``python -m tripwire.server.screenshots``.

Starts a backend on a new database in a temporary folder, fills it with a small
shop's data (an issue with its stack trace, a regression, a trace across two
services with an error and a log on it, two releases with sessions, an envelope),
and has headless Chromium (``$CHROMIUM``, else ``chromium`` on the ``PATH``) take a
picture of each page into the folder given (default ``./tripwire-screenshots``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

from tripwire.server.app import ServerThread
from tripwire.server.store import Store, StoredItem
from tripwire.server.triage import Action

__all__ = ["PAGES", "fill", "main", "take"]

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"

# File name -> page, once `fill` has run ({issue} and {envelope} are filled in).
PAGES = {
    "issues.png": "/issues/",
    "issue.png": "/issues/{issue}/",
    "trace.png": f"/traces/{TRACE_ID}/",
    "releases.png": "/releases/",
    "envelope.png": "/envelopes/{envelope}/",
    "metrics.png": "/metrics/",
}


def _item(kind: str, payload: dict[str, Any]) -> StoredItem:
    return StoredItem(kind, {"type": kind}, json.dumps(payload).encode())


def _error(kind: str, value: str, release: str, at: float, **extra: Any) -> StoredItem:
    frames = [
        {
            "filename": "shop/views.py",
            "function": "checkout",
            "module": "shop.views",
            "lineno": 42,
            "in_app": True,
            "pre_context": ["def checkout(cart):", "    total = 0"],
            "context_line": "    price = PRICES[item]",
            "post_context": ["    total += price"],
            "vars": {"item": "'kiwi'", "cart": ["'apple'", "'kiwi'"], "total": 3},
        }
    ]
    return _item(
        "event",
        {
            "timestamp": at,
            "level": "error",
            "release": release,
            "environment": "production",
            "tags": {"browser": "Firefox 128"},
            "user": {"id": "ana"},
            "exception": {
                "values": [{"type": kind, "value": value, "stacktrace": {"frames": frames}}]
            },
            **extra,
        },
    )


def fill(store: Store, now: Optional[float] = None) -> dict[str, int]:
    """Store the sample data; the ids the pages need (``issue``, ``envelope``)."""
    t = time.time() if now is None else now
    store.save(1, [_error("KeyError", "'kiwi'", "shop@1.0", t - 7200)])
    store.save(1, [_error("TimeoutError", "payment service", "shop@1.0", t - 7000)])
    (issue_id,) = [
        row[0]
        for row in store.connection().execute("SELECT id FROM issues WHERE type = 'TimeoutError'")
    ]
    store.triage([issue_id], Action("resolved"), now=t - 3600)
    store.save(1, [_error("TimeoutError", "payment service", "shop@1.1", t - 60)])
    trace = {"trace_id": TRACE_ID, "span_id": "1" * 16, "op": "http.server"}
    spans = [
        ("2" * 16, "1" * 16, "db", "SELECT * FROM cart WHERE id = ?", 0.05, 0.25),
        ("3" * 16, "2" * 16, "db.fetch", "fetch rows", 0.15, 0.2),
        ("4" * 16, "1" * 16, "http.client", "POST http://payments/charge", 0.3, 0.9),
    ]
    store.save(
        1,
        [
            _item(
                "transaction",
                {
                    "type": "transaction",
                    "transaction": "POST /checkout",
                    "release": "shop@1.1",
                    "start_timestamp": t - 30,
                    "timestamp": t - 29,
                    "contexts": {"trace": trace},
                    "spans": [
                        {
                            "span_id": span_id,
                            "parent_span_id": parent,
                            "op": op,
                            "description": description,
                            "start_timestamp": t - 30 + begin,
                            "timestamp": t - 30 + end,
                            "data": {"thread.name": "MainThread"},
                        }
                        for span_id, parent, op, description, begin, end in spans
                    ],
                },
            ),
            _item(
                "log",
                {
                    "items": [
                        {
                            "timestamp": t - 30 + 0.18,
                            "trace_id": TRACE_ID,
                            "level": "warn",
                            "body": "cart query took 100 ms",
                            "attributes": {
                                "sentry.trace.parent_span_id": {"value": "3" * 16},
                            },
                        }
                    ]
                },
            ),
        ],
    )
    store.save(
        1,
        [
            _item(
                "transaction",
                {
                    "type": "transaction",
                    "transaction": "POST /charge",
                    "release": "payments@3",
                    "start_timestamp": t - 30 + 0.35,
                    "timestamp": t - 30 + 0.85,
                    "contexts": {
                        "trace": {
                            "trace_id": TRACE_ID,
                            "span_id": "5" * 16,
                            "parent_span_id": "4" * 16,
                            "op": "http.server",
                            "status": "deadline_exceeded",
                        }
                    },
                },
            ),
            _error(
                "TimeoutError",
                "card network did not answer",
                "payments@3",
                t - 30 + 0.8,
                contexts={"trace": {"trace_id": TRACE_ID, "span_id": "5" * 16}},
            ),
        ],
    )
    for n, status in enumerate(["exited"] * 18 + ["crashed"] * 2):
        release = "shop@1.0" if n % 2 else "shop@1.1"
        store.save(
            1,
            [
                _item(
                    "session",
                    {
                        "sid": f"s{n}",
                        "did": f"user{n % 7}",
                        "status": status,
                        "started": t - 7200,
                        "timestamp": t - 7100,
                        "attrs": {"release": release, "environment": "production"},
                    },
                )
            ],
        )
    # An hour of checkout metrics, every minute, by region (the metrics page's charts).
    metrics = []
    for minute in range(60):
        at = t - 3600 + minute * 60
        for region, base in (("eu", 12), ("us", 7)):
            metrics.append(
                {
                    "timestamp": at,
                    "name": "checkout.completed",
                    "type": "counter",
                    "value": base + (minute * 7 + len(region)) % 5,
                    "attributes": {"region": {"type": "string", "value": region}},
                }
            )
        metrics.append(
            {
                "timestamp": at,
                "name": "checkout.duration",
                "type": "distribution",
                "unit": "millisecond",
                "value": 180 + (minute * 37) % 90,
                "attributes": {},
            }
        )
    store.save(1, [_item("trace_metric", {"items": metrics})])
    from tripwire.server import inspector

    body = b'{"sdk":{"name":"sentry.python","version":"2.75.0"}}\n{"type":"event"}\n'
    body += json.dumps({"message": "hello from the inspector", "level": "info"}).encode()
    result = store.save(
        1,
        [_item("event", {"message": "hello from the inspector", "level": "info"})],
        inspect=inspector.record("/api/1/envelope/", body),
    )
    return {"issue": issue_id, "envelope": result.envelope_id or 0}


def find_chromium() -> Optional[str]:
    """Headless Chromium: ``$CHROMIUM``, else one on the ``PATH``."""
    configured = os.environ.get("CHROMIUM")
    if configured:
        return configured
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        found = shutil.which(name)
        if found:
            return found
    return None


def take(chromium: str, url: str, target: Path, profile: Path) -> None:
    """One screenshot of `url` into `target` (PNG)."""
    subprocess.run(  # noqa: S603 -- a browser the user named, on our own loopback URL
        [
            chromium,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            "--window-size=1400,1000",
            f"--user-data-dir={profile}",
            f"--screenshot={target}",
            url,
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


def main(argv: Optional[list[str]] = None) -> int:
    """Fill a new database, serve it on loopback, photograph each page; 0 on success."""
    parser = argparse.ArgumentParser(prog="python -m tripwire.server.screenshots")
    parser.add_argument("folder", nargs="?", default="tripwire-screenshots")
    args = parser.parse_args(argv)
    chromium = find_chromium()
    if chromium is None:
        print("needs headless Chromium: install chromium or set $CHROMIUM", file=sys.stderr)  # noqa: T201
        return 2
    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    with (
        tempfile.TemporaryDirectory() as work,
        ServerThread(db=Path(work) / "screenshots.db") as server,
    ):
        ids = fill(server.store)
        for name, page in PAGES.items():
            target = folder / name
            take(chromium, server.url + page.format(**ids), target, Path(work) / "profile")
            print(target)  # noqa: T201
    return 0


if __name__ == "__main__":
    sys.exit(main())
