"""The commands that talk to a server: ``send-event``, ``issues``, ``projects``."""

from __future__ import annotations

import argparse
import json
import os
from typing import Any, Optional

from tripwire.cli._common import (
    base_url,
    default_url,
    err,
    get_json,
    init_sdk,
    out,
    post_json,
    running_server_dsn,
    server_module,
)


def _local_dsn(args: argparse.Namespace) -> Optional[str]:
    dsn: Optional[str] = getattr(args, "dsn", None) or os.environ.get("SENTRY_DSN")
    if dsn:
        return dsn
    return running_server_dsn(getattr(args, "url", None) or default_url())


def cmd_send_event(args: argparse.Namespace) -> int:
    """``tripwire send-event -m MESSAGE``."""
    dsn = _local_dsn(args)
    if not dsn:
        err(
            f"no DSN: pass --dsn, set SENTRY_DSN, or start `tripwire server` "
            f"(looked on {default_url()})"
        )
        return 2
    import tripwire

    options: dict[str, Any] = {"default_integrations": False, "debug": args.debug}
    if args.release:
        options["release"] = args.release
    if args.environment:
        options["environment"] = args.environment
    for note in init_sdk(dsn, **options):
        err(note)
    with tripwire.new_scope() as scope:
        for tag in args.tag or ():
            key, _, value = tag.partition("=")
            scope.set_tag(key, value)
        event_id = tripwire.capture_message(args.message, level=args.level)
    tripwire.flush(timeout=10.0)
    tripwire.get_client().close()
    if event_id is None:
        err("the event was not sent (dropped by the SDK)")
        return 1
    out(event_id)
    return 0


def cmd_issues(args: argparse.Namespace) -> int:
    """``tripwire issues``: list the issues of a server."""
    url = base_url(args.url or args.dsn or default_url())
    from urllib.parse import urlencode

    query = urlencode({"query": args.query or "", "status": args.status, "limit": args.limit})
    try:
        issues = get_json(f"{url}/api/0/issues/?{query}")
    except (OSError, ValueError) as exc:
        err(f"cannot reach a tripwire server at {url}: {exc}")
        return 1
    if args.json:
        out(json.dumps(issues, indent=2))
        return 0
    if not issues:
        out("no issues")
        return 0
    out(f"{'ID':>5}  {'EVENTS':>6}  {'USERS':>5}  {'LEVEL':<8} ISSUE")
    for issue in issues:
        out(
            f"{issue['id']:>5}  {issue['count']:>6}  {issue['users']:>5}  {issue['level']:<8} "
            f"{issue['title']}"
        )
    out(f"\n{url}/issues/")
    return 0


def cmd_projects(args: argparse.Namespace) -> int:
    """``tripwire projects [list]`` and ``tripwire projects create NAME``.

    Against a running server (``--url``), or with ``--db`` straight in a database
    file (the DSN then names ``--url``, by default the server's usual address).
    """
    url = base_url(args.url or args.dsn or default_url())
    creating = args.action == "create"
    if creating and not args.name:
        err("name the project: tripwire projects create NAME")
        return 2
    if args.db:
        server_module()
        from tripwire.server.store import Store

        with Store(args.db) as store:
            try:
                made = [store.add_project(args.name)] if creating else None
            except ValueError as exc:
                err(str(exc))
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
                projects = [post_json(f"{url}/api/0/projects/", {"name": args.name})]
            else:
                projects = get_json(f"{url}/api/0/projects/")
        except urllib.error.HTTPError as exc:
            detail = exc.read(2000).decode("utf-8", "replace")
            exc.close()
            err(f"the server at {url} refused: {exc.code} {detail}")
            return 1
        except (OSError, ValueError) as exc:
            err(f"cannot reach a tripwire server at {url} ({exc}); or pass --db")
            return 1
    if creating:
        # The DSN alone on stdout: DSN=$(tripwire projects create shop) works.
        out(projects[0]["dsn"])
        return 0
    if args.json:
        out(json.dumps(projects, indent=2))
        return 0
    out(f"{'ID':>4}  {'NAME':<24} DSN")
    for project in projects:
        out(f"{project['id']:>4}  {project['name']:<24} {project['dsn']}")
    return 0
