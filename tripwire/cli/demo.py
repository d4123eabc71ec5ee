"""``tripwire demo``: a backend, the demo shop's errors sent to it, and what it stored."""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import tempfile
import threading
import warnings
from typing import TYPE_CHECKING

from tripwire.cli._common import err, init_sdk, interactive, out, plural, server_module

if TYPE_CHECKING:
    from tripwire.server.app import ServerThread


def _demo_app(notes: list[str]) -> None:
    """Run the demo shop as the application module "shop" (see `_demo_shop`)."""
    import runpy

    package = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    path = os.path.join(package, "_demo_shop.py")
    runpy.run_path(path, run_name="shop")["main"](notes)


def cmd_demo(args: argparse.Namespace) -> int:
    """``tripwire demo``."""
    app = server_module()
    from tripwire.server import queries

    tmp = None
    db = args.db
    if db is None:
        tmp = tempfile.mkdtemp(prefix="tripwire-demo-")
        db = os.path.join(tmp, "demo.db")
    try:
        server: ServerThread = app.ServerThread(
            db=db, port=args.port, allow_origins=args.allow_origin or ()
        )
    except ValueError as exc:
        err(f"tripwire demo: {exc}")
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        return 2
    try:
        out(f"tripwire demo: backend on {server.url} (DSN {server.dsn})")
        with warnings.catch_warnings():
            # send_default_pii is deprecated in sentry_sdk 2.75, but it is still the
            # option the integrations read; the demo wants the user's address shown.
            warnings.simplefilter("ignore", DeprecationWarning)
            notes = init_sdk(
                server.dsn,
                release="tripwire-demo@1.0.0",
                environment="demo",
                traces_sample_rate=1.0,
                enable_logs=True,
                send_default_pii=True,
                in_app_include=["shop"],
            )
        import tripwire

        _demo_app(notes)
        tripwire.flush(timeout=10.0)
        counts = queries.stats(server.store)
        for kind, name in (
            ("transactions", "transaction"),
            ("logs", "log"),
            ("check_ins", "check-in"),
        ):
            if counts[kind] == 0:
                notes.append(f"no {name} arrived: that part of the SDK may not be finished yet")
        issues = queries.list_issues(server.store, status=None)
        for note in notes:
            out(f"  note: {note}")
        out()
        out(
            f"stored: {plural(counts['events'], 'error event')} in "
            f"{plural(counts['issues'], 'issue')}, "
            f"{plural(counts['transactions'], 'transaction')} "
            f"({plural(counts['spans'], 'span')}), "
            f"{plural(counts['logs'], 'log')}, {plural(counts['check_ins'], 'check-in')}"
        )
        out()
        out(f"{'EVENTS':>6}  {'USERS':>5}  ISSUE")
        for issue in issues:
            culprit = f"  ({issue['culprit']})" if issue.get("culprit") else ""
            out(f"{issue['count']:>6}  {issue['users']:>5}  {issue['title']}{culprit}")
        out()
        if args.serve or interactive():
            # The link is printed only while it leads somewhere.
            out(f"open {server.url}/issues/ to see them (serving until Ctrl-C)")
            try:
                threading.Event().wait()
            except KeyboardInterrupt:
                pass
            return 0
        # Not on a terminal: the server stops now, so no link; the database stays,
        # with the command that shows it again.
        if tmp is not None:
            tmp = None  # kept: the user is told where
        out(f"the server has stopped; the data is kept in {db}")
        out(f"to see it: tripwire server --db {shlex.quote(str(db))}")
        return 0
    finally:
        try:
            import tripwire

            tripwire.get_client().close()
        except Exception:
            pass
        server.stop()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
