"""``tripwire server``: the local backend in the foreground."""

from __future__ import annotations

import argparse

from tripwire.cli._common import err, out, server_module


def add_allow_origin(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--allow-origin",
        action="append",
        metavar="ORIGIN",
        help="let pages of this origin (e.g. http://localhost:3000, a separate UI or a "
        "browser SDK) read and send data; the server's own pages always may (repeatable)",
    )


def byte_size(text: str) -> int:
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


def cmd_server(args: argparse.Namespace) -> int:
    """``tripwire server``."""
    app = server_module()
    from tripwire.server.store import default_db_path

    db = args.db or str(default_db_path())

    def ready(dsn: str, url: str) -> None:
        out(f"tripwire server listening on {url}  (database: {db})")
        out(f"  DSN:    {dsn}")
        out(f"  issues: {url}/issues/")
        out(f'  use it: tripwire.init(dsn="{dsn}")  or  SENTRY_DSN={dsn}')
        out("  stop with Ctrl-C")

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
        err(f"tripwire server: {exc}")
        return 2
    except OSError as exc:
        err(f"cannot listen on {args.host}:{args.port}: {exc}")
        return 1
    except KeyboardInterrupt:
        pass
    return 0
