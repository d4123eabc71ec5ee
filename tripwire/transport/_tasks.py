"""Which asyncio tasks are the SDK's own (`mark_sentry_task_internal`).

The asyncio integration leaves these tasks alone (no span, no scope fork, no
capture): the async transport's sender and flush tasks would otherwise show up in
the application's traces. As sentry_sdk 2.75's ``utils`` names (re-exported there);
kept here, in the transport's layer, because the transport and worker use it.
"""

from __future__ import annotations

import contextvars
from collections.abc import Coroutine, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import asyncio

# A task copies the context it was created in, so a task created while this is True
# (and every task it creates in turn) is internal.
_internal: ContextVar[bool] = ContextVar("tripwire_internal_task", default=False)


def is_internal_task() -> bool:
    """True inside a task the SDK created for itself."""
    return _internal.get()


@contextmanager
def mark_sentry_task_internal() -> Iterator[None]:
    """Tasks created inside this block are the SDK's own (see `is_internal_task`)."""
    token = _internal.set(True)
    try:
        yield
    finally:
        _internal.reset(token)


def create_own_task(
    loop: asyncio.AbstractEventLoop, coro: Coroutine[Any, Any, None]
) -> asyncio.Task[None]:
    """`loop.create_task(coro)` for the SDK: internal, and in a context of its own.

    A task copies the context it is created in. The async transport's sender, created
    by a capture inside a transaction, took that transaction's scopes with it: its DNS
    lookups and executor calls became spans of the transaction, which it kept alive.
    """
    context = contextvars.Context()
    context.run(_internal.set, True)
    return context.run(loop.create_task, coro)


__all__ = ["create_own_task", "is_internal_task", "mark_sentry_task_internal"]
