"""The ``tripwire`` command.

    tripwire server [--host H] [--port P] [--db PATH]   run the local backend
    tripwire demo [--serve]                             see the whole loop in one command
    tripwire run [--dsn DSN] -- python app.py           run a program with the SDK on
    tripwire send-event -m "message"                    send one event
    tripwire issues                                     list the issues of a server

The server is imported only by the commands that start one, so that the rest works
without the ``server`` extra.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import threading
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Optional

if TYPE_CHECKING:
    from tripwire.server.app import ServerThread

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8969
INSTALL_HINT = "the tripwire server needs its extra: pip install 'tripwire[server]'"


def _default_url() -> str:
    # Where the commands look for a running server; $TRIPWIRE_SERVER_URL overrides.
    return os.environ.get("TRIPWIRE_SERVER_URL") or f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"


def _out(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def _err(text: str) -> None:
    sys.stderr.write(f"tripwire: {text}\n")
    sys.stderr.flush()


class _MissingExtra(Exception):
    pass


def _server_module() -> Any:
    """`tripwire.server.app`, or `_MissingExtra` with the install hint."""
    try:
        import jinja2  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise _MissingExtra(f"{INSTALL_HINT} ({exc.name} is missing)") from None
    from tripwire.server import app

    return app


# -- talking to a server ------------------------------------------------------------------------


def _base_url(url_or_dsn: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url_or_dsn)
    host = parts.hostname or DEFAULT_HOST
    host = f"[{host}]" if ":" in host else host
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme or 'http'}://{host}{port}"


def _get_json(url: str, timeout: float = 5.0) -> Any:
    import urllib.request

    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 -- http(s) URLs built here
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        return json.loads(response.read())


def _running_server_dsn(url: str) -> Optional[str]:
    """The DSN a tripwire server at `url` hands out, or None if none answers there."""
    try:
        projects = _get_json(url + "/api/0/projects/", timeout=2.0)
    except (OSError, ValueError):
        return None
    if isinstance(projects, list) and projects and isinstance(projects[0], dict):
        dsn = projects[0].get("dsn")
        return dsn if isinstance(dsn, str) else None
    return None


def init_sdk(dsn: str, **options: Any) -> list[str]:
    """`tripwire.init` with `options`, leaving out those this SDK build rejects.

    Returns notes on what was left out or replaced (for the user to see).
    """
    import tripwire

    notes: list[str] = []
    while True:
        try:
            tripwire.init(dsn=dsn, **options)
            return notes
        except TypeError as exc:
            rejected = [name for name in options if f"'{name}'" in str(exc)]
            if not rejected or rejected[0] in ("transport",):
                raise
            options.pop(rejected[0])
            notes.append(f"option {rejected[0]} is not supported yet: left out")


def _add_allow_origin(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--allow-origin",
        action="append",
        metavar="ORIGIN",
        help="let pages of this origin (e.g. http://localhost:3000, a separate UI or a "
        "browser SDK) read and send data; the server's own pages always may (repeatable)",
    )


def _byte_size(text: str) -> int:
    """``500M`` -> bytes (K, M, G: powers of 1024); for argparse."""
    units = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}
    value = text.strip().upper().removesuffix("B")
    number, unit = value, ""
    if value and value[-1] in "KMG":
        number, unit = value[:-1], value[-1]
    try:
        size = int(float(number) * units[unit])
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a size: {text!r} (e.g. 500M, 2G)") from None
    if size < 0:
        raise argparse.ArgumentTypeError(f"not a size: {text!r}")
    return size


# -- commands -----------------------------------------------------------------------------------


def cmd_server(args: argparse.Namespace) -> int:
    """``tripwire server``."""
    app = _server_module()
    from tripwire.server.store import default_db_path

    db = args.db or str(default_db_path())

    def ready(dsn: str, url: str) -> None:
        _out(f"tripwire server listening on {url}  (database: {db})")
        _out(f"  DSN:    {dsn}")
        _out(f"  issues: {url}/issues/")
        _out(f'  use it: tripwire.init(dsn="{dsn}")  or  SENTRY_DSN={dsn}')
        _out("  stop with Ctrl-C")

    try:
        app.serve(
            host=args.host,
            port=args.port,
            db=db,
            on_ready=ready,
            rate_limits=args.rate_limit or (),
            log_level=args.log_level,
            allow_origins=args.allow_origin or (),
            max_db_bytes=args.max_db_size or None,
            retention_days=args.retention_days,
            retention_bytes=args.retention_size or None,
        )
    except ValueError as exc:
        _err(f"tripwire server: {exc}")
        return 2
    except OSError as exc:
        _err(f"cannot listen on {args.host}:{args.port}: {exc}")
        return 1
    except KeyboardInterrupt:
        pass
    return 0


def _demo_app(notes: list[str]) -> None:
    """Run the demo shop as the application module "shop" (see `_demo_shop`)."""
    import runpy

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_demo_shop.py")
    runpy.run_path(path, run_name="shop")["main"](notes)


def _plural(count: int, noun: str) -> str:
    """``1 issue``, ``2 issues``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def _interactive() -> bool:
    """Whether a person is at the terminal (stdin and stdout both are one)."""
    try:
        return sys.stdin is not None and sys.stdin.isatty() and sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False


def cmd_demo(args: argparse.Namespace) -> int:
    """``tripwire demo``."""
    app = _server_module()
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
        _err(f"tripwire demo: {exc}")
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
        return 2
    try:
        _out(f"tripwire demo: backend on {server.url} (DSN {server.dsn})")
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
            _out(f"  note: {note}")
        _out()
        _out(
            f"stored: {_plural(counts['events'], 'error event')} in "
            f"{_plural(counts['issues'], 'issue')}, "
            f"{_plural(counts['transactions'], 'transaction')} "
            f"({_plural(counts['spans'], 'span')}), "
            f"{_plural(counts['logs'], 'log')}, {_plural(counts['check_ins'], 'check-in')}"
        )
        _out()
        _out(f"{'EVENTS':>6}  {'USERS':>5}  ISSUE")
        for issue in issues:
            culprit = f"  ({issue['culprit']})" if issue.get("culprit") else ""
            _out(f"{issue['count']:>6}  {issue['users']:>5}  {issue['title']}{culprit}")
        _out()
        if args.serve or _interactive():
            # The link is printed only while it leads somewhere.
            _out(f"open {server.url}/issues/ to see them (serving until Ctrl-C)")
            try:
                threading.Event().wait()
            except KeyboardInterrupt:
                pass
            return 0
        # Not on a terminal: the server stops now, so no link; the database stays,
        # with the command that shows it again.
        if tmp is not None:
            tmp = None  # kept: the user is told where
        _out(f"the server has stopped; the data is kept in {db}")
        _out(f"to see it: tripwire server --db {shlex.quote(str(db))}")
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
        _err("nothing to run: tripwire run -- python app.py")
        return 2
    dsn = args.dsn or os.environ.get("SENTRY_DSN")
    server = None
    if not dsn:
        url = _default_url()
        dsn = _running_server_dsn(url)
        if dsn is None:
            # No server running: start one for the program's lifetime, on the default
            # database, so that what it sends is there for `tripwire server` later.
            try:
                app = _server_module()
            except _MissingExtra as exc:
                _err(f"no DSN given and no local server: {exc}; running without tripwire")
                return subprocess.call(command)  # noqa: S603 -- the user's own command
            server = app.ServerThread(db=args.db, port=0)
            dsn = server.dsn
            _err(f"no server on {url}: started one on {server.url} for this run")
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
        package_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (boot, env.get("PYTHONPATH"), package_root) if p
        )
        try:
            code = subprocess.call(command, env=env)  # noqa: S603 -- the user's own command
        except OSError as exc:
            _err(f"cannot run {command[0]!r}: {exc}")
            return 127
        if server is not None:
            from tripwire.server import queries

            issues = queries.list_issues(server.store, status=None, limit=10)
            found = _plural(len(issues), "issue")
            _err(f"{found} in {server.store.path}; browse them with `tripwire server`")
            for issue in issues:
                _err(f"  {issue['count']:>4}  {issue['title']}")
        return code
    finally:
        shutil.rmtree(boot, ignore_errors=True)
        if server is not None:
            server.stop()


def _local_dsn(args: argparse.Namespace) -> Optional[str]:
    dsn: Optional[str] = getattr(args, "dsn", None) or os.environ.get("SENTRY_DSN")
    if dsn:
        return dsn
    return _running_server_dsn(getattr(args, "url", None) or _default_url())


def cmd_send_event(args: argparse.Namespace) -> int:
    """``tripwire send-event -m MESSAGE``."""
    dsn = _local_dsn(args)
    if not dsn:
        _err(
            f"no DSN: pass --dsn, set SENTRY_DSN, or start `tripwire server` "
            f"(looked on {_default_url()})"
        )
        return 2
    import tripwire

    options: dict[str, Any] = {"default_integrations": False, "debug": args.debug}
    if args.release:
        options["release"] = args.release
    if args.environment:
        options["environment"] = args.environment
    for note in init_sdk(dsn, **options):
        _err(note)
    with tripwire.new_scope() as scope:
        for tag in args.tag or ():
            key, _, value = tag.partition("=")
            scope.set_tag(key, value)
        event_id = tripwire.capture_message(args.message, level=args.level)
    tripwire.flush(timeout=10.0)
    tripwire.get_client().close()
    if event_id is None:
        _err("the event was not sent (dropped by the SDK)")
        return 1
    _out(event_id)
    return 0


def cmd_issues(args: argparse.Namespace) -> int:
    """``tripwire issues``: list the issues of a server."""
    url = _base_url(args.url or args.dsn or _default_url())
    from urllib.parse import urlencode

    query = urlencode({"query": args.query or "", "status": args.status, "limit": args.limit})
    try:
        issues = _get_json(f"{url}/api/0/issues/?{query}")
    except (OSError, ValueError) as exc:
        _err(f"cannot reach a tripwire server at {url}: {exc}")
        return 1
    if args.json:
        _out(json.dumps(issues, indent=2))
        return 0
    if not issues:
        _out("no issues")
        return 0
    _out(f"{'ID':>5}  {'EVENTS':>6}  {'USERS':>5}  {'LEVEL':<8} ISSUE")
    for issue in issues:
        _out(
            f"{issue['id']:>5}  {issue['count']:>6}  {issue['users']:>5}  {issue['level']:<8} "
            f"{issue['title']}"
        )
    _out(f"\n{url}/issues/")
    return 0


def _post_json(url: str, body: Any, timeout: float = 10.0) -> Any:
    import urllib.request

    request = urllib.request.Request(  # noqa: S310 -- http(s) URLs built here
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        return json.loads(response.read())


def cmd_projects(args: argparse.Namespace) -> int:
    """``tripwire projects [list]`` and ``tripwire projects create NAME``.

    Against a running server (``--url``), or with ``--db`` straight in a database
    file (the DSN then names ``--url``, by default the server's usual address).
    """
    url = _base_url(args.url or args.dsn or _default_url())
    creating = args.action == "create"
    if creating and not args.name:
        _err("name the project: tripwire projects create NAME")
        return 2
    if args.db:
        _server_module()
        from tripwire.server.store import Store

        with Store(args.db) as store:
            try:
                made = [store.add_project(args.name)] if creating else None
            except ValueError as exc:
                _err(str(exc))
                return 2
            found = made or store.projects()
        host = url.split("://", 1)
        projects = [
            {**p, "dsn": f"{host[0]}://{p['public_key']}@{host[1]}/{p['id']}"} for p in found
        ]
    else:
        import urllib.error

        try:
            if creating:
                projects = [_post_json(f"{url}/api/0/projects/", {"name": args.name})]
            else:
                projects = _get_json(f"{url}/api/0/projects/")
        except urllib.error.HTTPError as exc:
            detail = exc.read(2000).decode("utf-8", "replace")
            exc.close()
            _err(f"the server at {url} refused: {exc.code} {detail}")
            return 1
        except (OSError, ValueError) as exc:
            _err(f"cannot reach a tripwire server at {url} ({exc}); or pass --db")
            return 1
    if creating:
        # The DSN alone on stdout: DSN=$(tripwire projects create shop) works.
        _out(projects[0]["dsn"])
        return 0
    if args.json:
        _out(json.dumps(projects, indent=2))
        return 0
    _out(f"{'ID':>4}  {'NAME':<24} DSN")
    for project in projects:
        _out(f"{project['id']:>4}  {project['name']:<24} {project['dsn']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``tripwire`` command."""
    from tripwire.consts import VERSION

    parser = argparse.ArgumentParser(
        prog="tripwire", description="Error monitoring for Python, with a local backend."
    )
    parser.add_argument("--version", action="version", version=f"tripwire {VERSION}")
    sub = parser.add_subparsers(dest="command_name", metavar="COMMAND")

    p = sub.add_parser("server", help="run the local backend and print its DSN")
    p.add_argument("--host", default=DEFAULT_HOST, help="address to bind (default %(default)s)")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (default %(default)s)")
    p.add_argument("--db", help="SQLite database (default ./.tripwire/tripwire.db or $TRIPWIRE_DB)")
    p.add_argument(
        "--rate-limit",
        action="append",
        metavar="SPEC",
        help="answer with this rate limit, e.g. 60:error:key (repeatable)",
    )
    p.add_argument("--log-level", default="warning", help="uvicorn log level")
    _add_allow_origin(p)
    p.add_argument(
        "--max-db-size",
        type=_byte_size,
        default=1024 * 1024 * 1024,
        metavar="SIZE",
        help="refuse new data (507) once the database holds this much, e.g. 500M, 2G; "
        "0 for no limit (default 1G)",
    )
    p.add_argument(
        "--retention-days",
        type=float,
        metavar="DAYS",
        help="forget data received longer ago than this (at start, then every minute)",
    )
    p.add_argument(
        "--retention-size",
        type=_byte_size,
        default=0,
        metavar="SIZE",
        help="forget the oldest data while the database holds more than this, e.g. 200M",
    )
    p.set_defaults(func=cmd_server)

    p = sub.add_parser("demo", help="start a backend, send it a demo app's errors, show them")
    p.add_argument(
        "--serve",
        action="store_true",
        help="keep the backend running afterwards (the default on a terminal)",
    )
    p.add_argument("--db", help="database to use (default: a temporary one)")
    p.add_argument("--port", type=int, default=0, help="port (default: any free one)")
    _add_allow_origin(p)
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("run", help="run a program with tripwire initialised from the environment")
    p.add_argument("--dsn", help="where to send (default $SENTRY_DSN, else the local backend)")
    p.add_argument("--db", help="database of the backend started when none is running")
    p.add_argument("--traces-sample-rate", type=float)
    p.add_argument("--release")
    p.add_argument("--environment")
    p.add_argument("--enable-logs", action="store_true")
    p.add_argument(
        "--as-sentry-sdk",
        action="store_true",
        help="serve the program's `import sentry_sdk` from tripwire (tripwire.alias)",
    )
    p.add_argument("command", nargs=argparse.REMAINDER, help="-- program and arguments")
    p.set_defaults(func=cmd_run)

    p = sub.add_parser("send-event", help="send one message event")
    p.add_argument("-m", "--message", required=True)
    p.add_argument("--level", default="info")
    p.add_argument("--dsn", help="default $SENTRY_DSN, else the running local backend")
    p.add_argument("--release")
    p.add_argument("--environment")
    p.add_argument("--tag", action="append", metavar="KEY=VALUE")
    p.add_argument("--debug", action="store_true", help="print what the SDK does")
    p.set_defaults(func=cmd_send_event)

    p = sub.add_parser("issues", help="list the issues of a tripwire server")
    p.add_argument("--url", help=f"server URL (default http://{DEFAULT_HOST}:{DEFAULT_PORT})")
    p.add_argument("--dsn", help="or a DSN of that server")
    p.add_argument("-q", "--query", help="search, e.g. 'level:error timeout'")
    p.add_argument("--status", default="unresolved", help="unresolved, resolved, ignored or all")
    p.add_argument("--limit", type=int, default=50)
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_issues)

    p = sub.add_parser("projects", help="list a server's projects, or create one (prints its DSN)")
    p.add_argument("action", nargs="?", choices=("list", "create"), default="list")
    p.add_argument("name", nargs="?", help="the new project's name (with create)")
    p.add_argument("--url", help=f"server URL (default http://{DEFAULT_HOST}:{DEFAULT_PORT})")
    p.add_argument("--dsn", help="or a DSN of that server")
    p.add_argument("--db", help="work on this database file instead of a running server")
    p.add_argument("--json", action="store_true", help="print JSON (list)")
    p.set_defaults(func=cmd_projects)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``tripwire`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        code: int = func(args)
    except _MissingExtra as exc:
        _err(str(exc))
        return 3
    except KeyboardInterrupt:
        return 130
    return code


if __name__ == "__main__":
    sys.exit(main())
