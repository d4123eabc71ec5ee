"""`start_own`: how the SDK starts its own threads (none of the caller's context)."""

from __future__ import annotations

import contextvars
from typing import Protocol


class _Startable(Protocol):
    def start(self) -> None: ...


def start_own(thread: _Startable) -> None:
    """Start `thread`, one of the SDK's, from an empty context.

    The thread then runs with scopes of its own. Started from the caller's context it
    could take the caller's scopes along (the threading integration hands them to new
    threads; so does Python 3.14's ``thread_inherit_context``): a transport thread
    first started by a capture inside a transaction made its own DNS lookups and
    connections spans of that transaction, and kept the transaction alive.
    `RuntimeError` (no new threads at interpreter shutdown) is the caller's to handle.
    """
    contextvars.Context().run(thread.start)
