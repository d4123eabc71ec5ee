"""The ``tripwire`` command.

    tripwire server [--host H] [--port P] [--db PATH]   run the local backend
    tripwire demo [--serve]                             see the whole loop in one command
    tripwire run [--dsn DSN] -- python app.py           run a program with the SDK on
    tripwire send-event -m "message"                    send one event
    tripwire issues                                     list the issues of a server
    tripwire projects [list | create NAME]              a server's projects and DSNs

One module per command (`serve`, `demo`, `run`, `remote` for the commands that talk
to a server), what they share in `_common`. The server is imported only by the
commands that start one, so that the rest works without the ``server`` extra.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Optional

from tripwire.cli._common import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    MissingExtra,
    err,
    init_sdk,
)
from tripwire.cli.demo import cmd_demo
from tripwire.cli.remote import cmd_issues, cmd_projects, cmd_send_event
from tripwire.cli.run import cmd_run
from tripwire.cli.serve import add_allow_origin, byte_size, cmd_server

__all__ = ["build_parser", "init_sdk", "main"]


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
    add_allow_origin(p)
    p.add_argument(
        "--max-db-size",
        type=byte_size,
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
        type=byte_size,
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
    add_allow_origin(p)
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
    except MissingExtra as exc:
        err(str(exc))
        return 3
    except KeyboardInterrupt:
        return 130
    return code
