"""``tripwire run``: a program run with tripwire initialised through ``sitecustomize``."""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import tempfile
from typing import Any

from tripwire.cli._common import (
    MissingExtra,
    default_url,
    err,
    plural,
    running_server_dsn,
    server_module,
)

# Written to a temporary directory put first on the child's PYTHONPATH: Python imports
# `sitecustomize` at start-up, so the program runs with the SDK initialised.
_SITECUSTOMIZE = """\
# Written by `tripwire run`: initialise tripwire, then run any other sitecustomize.
import json as _json
import os as _os
import sys as _sys


def _tripwire_run_flush():
    try:
        import tripwire

        tripwire.flush(timeout=2.0)
    except Exception:
        pass


def _tripwire_run_boot():
    here = _os.path.dirname(_os.path.abspath(__file__))
    try:
        if _os.environ.get("TRIPWIRE_RUN_AS_SENTRY_SDK"):
            import tripwire.alias

            tripwire.alias.install()
        options = _json.loads(_os.environ.get("TRIPWIRE_RUN_OPTIONS") or "{}")
        from tripwire.cli import init_sdk

        for note in init_sdk(_os.environ["SENTRY_DSN"], **options):
            if _os.environ.get("TRIPWIRE_RUN_VERBOSE"):
                _sys.stderr.write("tripwire run: " + note + "\\n")
        import atexit

        # Send what is queued (an unhandled exception, above all) before the
        # interpreter exits, whichever integrations this SDK build has.
        atexit.register(_tripwire_run_flush)
    except Exception as exc:
        _sys.stderr.write("tripwire run: could not initialise tripwire: %r\\n" % (exc,))
    # Hand over to the sitecustomize this one shadows, if there is one.
    me = _sys.modules.pop("sitecustomize", None)
    path = [p for p in _sys.path if _os.path.abspath(p or ".") != here]
    saved, _sys.path[:] = _sys.path[:], path
    try:
        import sitecustomize  # noqa: F401
    except ImportError:
        pass
    finally:
        _sys.path[:] = saved
        # The import system looks this module up by name once it has run.
        if me is not None and "sitecustomize" not in _sys.modules:
            _sys.modules["sitecustomize"] = me


_tripwire_run_boot()
"""


def cmd_run(args: argparse.Namespace) -> int:
    """``tripwire run [--dsn DSN] -- program args...``."""
    command = list(args.command)
    if command and command[0] == "--":
        command = command[1:]
    if not command:
        err("nothing to run: tripwire run -- python app.py")
        return 2
    dsn = args.dsn or os.environ.get("SENTRY_DSN")
    server = None
    if not dsn:
        url = default_url()
        dsn = running_server_dsn(url)
        if dsn is None:
            # No server running: start one for the program's lifetime, on the default
            # database, so that what it sends is there for `tripwire server` later.
            try:
                app = server_module()
            except MissingExtra as exc:
                err(f"no DSN given and no local server: {exc}; running without tripwire")
                return subprocess.call(command)  # noqa: S603 -- the user's own command
            server = app.ServerThread(db=args.db, port=0)
            dsn = server.dsn
            err(f"no server on {url}: started one on {server.url} for this run")
    options: dict[str, Any] = {}
    if args.traces_sample_rate is not None:
        options["traces_sample_rate"] = args.traces_sample_rate
    if args.release:
        options["release"] = args.release
    if args.environment:
        options["environment"] = args.environment
    if args.enable_logs:
        options["enable_logs"] = True
    boot = tempfile.mkdtemp(prefix="tripwire-run-")
    try:
        with open(os.path.join(boot, "sitecustomize.py"), "w", encoding="utf-8") as f:
            f.write(_SITECUSTOMIZE)
        env = dict(os.environ)
        env["SENTRY_DSN"] = dsn
        env["TRIPWIRE_RUN_OPTIONS"] = json.dumps(options)
        if args.as_sentry_sdk:
            env["TRIPWIRE_RUN_AS_SENTRY_SDK"] = "1"
        # The boot directory first; tripwire's own location last, as a fallback for a
        # program started with an interpreter tripwire is not installed in.
        package_root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (boot, env.get("PYTHONPATH"), package_root) if p
        )
        try:
            code = subprocess.call(command, env=env)  # noqa: S603 -- the user's own command
        except OSError as exc:
            err(f"cannot run {command[0]!r}: {exc}")
            return 127
        if server is not None:
            from tripwire.server import queries

            issues = queries.list_issues(server.store, status=None, limit=10)
            found = plural(len(issues), "issue")
            err(f"{found} in {server.store.path}; browse them with `tripwire server`")
            for issue in issues:
                err(f"  {issue['count']:>4}  {issue['title']}")
        return code
    finally:
        shutil.rmtree(boot, ignore_errors=True)
        if server is not None:
            server.stop()
