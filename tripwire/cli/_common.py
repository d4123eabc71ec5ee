"""What the commands share: output, the server extra, talking to a server, `init_sdk`."""

from __future__ import annotations

import json
import os
import sys
from typing import Any, Optional

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8969
INSTALL_HINT = "the tripwire server needs its extra: pip install 'tripwire[server]'"


def default_url() -> str:
    # Where the commands look for a running server; $TRIPWIRE_SERVER_URL overrides.
    return os.environ.get("TRIPWIRE_SERVER_URL") or f"http://{DEFAULT_HOST}:{DEFAULT_PORT}"


def out(text: str = "") -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def err(text: str) -> None:
    sys.stderr.write(f"tripwire: {text}\n")
    sys.stderr.flush()


class MissingExtra(Exception):
    """The server extra is not installed (exit status 3)."""


def server_module() -> Any:
    """`tripwire.server.app`, or `MissingExtra` with the install hint."""
    try:
        import jinja2  # noqa: F401
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError as exc:
        raise MissingExtra(f"{INSTALL_HINT} ({exc.name} is missing)") from None
    from tripwire.server import app

    return app


def base_url(url_or_dsn: str) -> str:
    from urllib.parse import urlsplit

    parts = urlsplit(url_or_dsn)
    host = parts.hostname or DEFAULT_HOST
    host = f"[{host}]" if ":" in host else host
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme or 'http'}://{host}{port}"


def get_json(url: str, timeout: float = 5.0) -> Any:
    import urllib.request

    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 -- http(s) URLs built here
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        return json.loads(response.read())


def running_server_dsn(url: str) -> Optional[str]:
    """The DSN a tripwire server at `url` hands out, or None if none answers there."""
    try:
        projects = get_json(url + "/api/0/projects/", timeout=2.0)
    except (OSError, ValueError):
        return None
    if isinstance(projects, list) and projects and isinstance(projects[0], dict):
        dsn = projects[0].get("dsn")
        return dsn if isinstance(dsn, str) else None
    return None


def post_json(url: str, body: Any, timeout: float = 10.0) -> Any:
    import urllib.request

    request = urllib.request.Request(  # noqa: S310 -- http(s) URLs built here
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Accept": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        return json.loads(response.read())


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


def plural(count: int, noun: str) -> str:
    """``1 issue``, ``2 issues``."""
    return f"{count} {noun}" if count == 1 else f"{count} {noun}s"


def interactive() -> bool:
    """Whether a person is at the terminal (stdin and stdout both are one)."""
    try:
        return sys.stdin is not None and sys.stdin.isatty() and sys.stdout.isatty()
    except (AttributeError, ValueError):
        return False
