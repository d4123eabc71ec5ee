"""asyncio: tasks run in forked scopes, get a span each, and their exceptions are captured.

As sentry_sdk 2.75's ``asyncio`` integration (not a default one: listed in
``integrations=[...]`` or turned on with `enable_asyncio_integration`):

- set up, it installs a task factory on the *running* event loop (set up outside a
  loop, it does nothing: call `init()` or `enable_asyncio_integration()` from inside
  the loop). A task factory the loop already had keeps making the tasks;
- every coroutine turned into a task runs in a fork of the isolation (and current)
  scope it was created in, so what a task sets stays in the task;
- with ``task_spans=True`` (the default) each task runs in a span ``op="function"``
  named after the coroutine's qualified name, origin ``auto.function.asyncio``
  (a child of the span active when the task starts; nothing outside a transaction,
  or under span streaming outside a streamed span);
- an exception escaping the coroutine is captured (mechanism
  ``{"type": "asyncio", "handled": false}``) and re-raised, so whoever awaits the
  task still gets it. Cancellation is not an error;
- `loop.close()` flushes the client first.

The factory and the `close` patch are undone by `tripwire.testing.reset()`.
"""

from __future__ import annotations

import sys
from collections.abc import Coroutine
from inspect import iscoroutine
from typing import TYPE_CHECKING, Any

from tripwire._log import logger
from tripwire.consts import OP
from tripwire.integrations import DidNotEnable, Integration
from tripwire.integrations._common.streaming import start_child, streaming
from tripwire.integrations._common.unhandled import capture_unhandled
from tripwire.scope._current import get_client, isolation_scope
from tripwire.tracing._api import sdk_start_span
from tripwire.transport._tasks import is_internal_task

if TYPE_CHECKING:
    import asyncio

ORIGIN = "auto.function.asyncio"
_MARK = "__tripwire_asyncio__"


class AsyncioIntegration(Integration):
    """Scopes, spans and error capture for asyncio tasks.

    Args:
        task_spans: Start a ``function`` span around every task.
    """

    identifier = "asyncio"
    origin = ORIGIN

    def __init__(self, task_spans: bool = True) -> None:
        self.task_spans = task_spans

    @staticmethod
    def setup_once() -> None:
        """Install the task factory on the running loop (if there is one)."""
        try:
            import asyncio
        except ImportError as exc:  # pragma: no cover - always there on CPython
            raise DidNotEnable("asyncio is not available") from exc
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            logger.warning(
                "There is no running asyncio loop so there is nothing to patch: "
                "initialise the SDK (or call enable_asyncio_integration) inside the loop."
            )
            return
        _patch_loop(loop)


def enable_asyncio_integration(*args: Any, **kwargs: Any) -> None:
    """Turn on `AsyncioIntegration` for the active client, from inside a running loop.

    For programs that call `init()` before their event loop exists: call this once the
    loop runs. The arguments go to `AsyncioIntegration`. Does nothing if the running
    loop is instrumented already; a ``disabled_integrations`` entry is overridden.
    """
    try:
        import asyncio

        loop = asyncio.get_running_loop()
    except RuntimeError:
        logger.warning("enable_asyncio_integration needs a running event loop")
        return
    if getattr(loop.get_task_factory(), _MARK, False):
        return
    client = get_client()
    if not client.is_active():
        return
    integration = AsyncioIntegration(*args, **kwargs)
    client.integrations[integration.identifier] = integration
    from tripwire.integrations import (
        _installed_integrations,
        _installer_lock,
        _processed_integrations,
    )

    with _installer_lock:
        _processed_integrations.add(integration.identifier)
        _installed_integrations.add(integration.identifier)
    _patch_loop(loop)


def _patch_loop(loop: asyncio.AbstractEventLoop) -> None:
    import asyncio

    from tripwire.integrations._patch import on_undo, patch

    previous = loop.get_task_factory()
    if getattr(previous, _MARK, False):
        return
    make_task = asyncio.Task

    def task_factory(
        loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any
    ) -> asyncio.Future[Any]:
        integration = get_client().get_integration(AsyncioIntegration)
        # The SDK's own tasks (the async transport's) get no scope fork, span or capture.
        if integration is not None and iscoroutine(coro) and not is_internal_task():
            try:
                coro = _wrap(coro, integration.task_spans)
            except Exception:  # never stop a task from being created
                pass
        if previous is not None:
            return previous(loop, coro, **kwargs)
        return make_task(coro, loop=loop, **kwargs)

    setattr(task_factory, _MARK, True)
    loop.set_task_factory(task_factory)

    def restore() -> None:
        if loop.get_task_factory() is task_factory and not loop.is_closed():
            loop.set_task_factory(previous)

    on_undo(restore)

    original_close = loop.close

    def close() -> None:
        client = get_client()
        if client.get_integration(AsyncioIntegration) is not None:
            try:
                client.flush()
            except Exception:  # closing the loop must not fail on the SDK's account
                pass
        original_close()

    patch(loop, "close", close)


def _wrap(coro: Coroutine[Any, Any, Any], task_spans: bool) -> Coroutine[Any, Any, Any]:
    name = getattr(coro, "__qualname__", None) or getattr(coro, "__name__", None) or repr(coro)
    wrapped = _in_scopes(coro, name, task_spans)
    # The task shows the user's coroutine, not the SDK's wrapper.
    named: Any = wrapped
    try:
        named.__name__ = getattr(coro, "__name__", named.__name__)
        named.__qualname__ = name
    except (AttributeError, TypeError):  # pragma: no cover - coroutine names are writable
        pass
    return wrapped


# One coroutine per task, at module level: a closure per task, or a second coroutine
# layer around the user's, would allocate objects that live as long as the task does
# (with 10,000 tasks in flight, the garbage collector's full passes are the cost).
async def _in_scopes(coro: Coroutine[Any, Any, Any], name: str, task_spans: bool) -> Any:
    with isolation_scope():
        span = _task_span(name) if task_spans else None
        if span is None:
            try:
                return await coro
            except Exception:
                _capture(sys.exc_info())
                raise
        with span:
            try:
                return await coro
            except Exception:
                _capture(sys.exc_info())
                raise


def _task_span(name: str) -> Any:
    """The task's span; under span streaming (as sentry_sdk 2.75) only inside a span."""
    try:
        client = get_client()
        if streaming(client):
            return start_child(name, {"sentry.op": OP.FUNCTION, "sentry.origin": ORIGIN})
    except Exception:  # no span rather than no task
        return None
    return sdk_start_span(op=OP.FUNCTION, name=name, origin=ORIGIN)


def _capture(exc_info: Any) -> None:
    try:
        client = get_client()
        if client.get_integration(AsyncioIntegration) is None:
            return
        capture_unhandled(client, exc_info, "asyncio")
    except Exception:  # reporting must not replace the task's own exception
        pass


__all__ = ["AsyncioIntegration", "enable_asyncio_integration"]
