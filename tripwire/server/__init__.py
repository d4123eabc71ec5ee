"""The local backend: ingest, SQLite store, grouping, web pages and ``/stream``.

Needs the ``server`` extra (``pip install 'tripwire[server]'``): Starlette, uvicorn
and Jinja2. `tripwire.server.store` and `tripwire.server.grouping` use only the
standard library, so the CLI can read a database without the extra.

    from tripwire.server import ServerThread
    with ServerThread(db="errors.db") as server:
        tripwire.init(dsn=server.dsn)
"""

from __future__ import annotations

from typing import Any

INSTALL_HINT = "the tripwire server needs its extra: pip install 'tripwire[server]'"

__all__ = ["INSTALL_HINT", "ServerThread", "create_app", "serve"]


def __getattr__(name: str) -> Any:
    # The app pulls in Starlette, uvicorn and Jinja2: only when asked for.
    if name in ("ServerThread", "create_app", "serve"):
        from tripwire.server import app

        return getattr(app, name)
    raise AttributeError(f"module 'tripwire.server' has no attribute {name!r}")
