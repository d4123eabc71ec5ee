"""Threads: scopes follow a thread from `start()`, and exceptions escaping `run()` are captured.

As sentry_sdk 2.x: with ``propagate_scope=True`` (the default) a thread runs in
forks of the isolation and current scopes of the code that started it, taken at
`Thread.start()`; what the thread sets stays in the thread. With False it starts
from fresh scopes (the global scope still applies). An exception escaping `run()`
is captured with mechanism ``{"type": "threading", "handled": false}`` and
re-raised, so `threading.excepthook` still reports it.

`Thread.start` is patched (not `run`, which subclasses override): the patched
`start` wraps the instance's `run` before the thread begins.

`concurrent.futures.ThreadPoolExecutor.submit` (and so `map`) is patched too, as
sentry_sdk 2.75 does: each task runs in scopes taken when it is submitted, not in
those of the worker thread, which may have started long before (with
``propagate_scope=False``, in fresh scopes of its own). A span started in a task is
a child of the span active at `submit`. An exception in a task stays in its future.
"""

from __future__ import annotations

import functools
import sys
import threading
import types
from typing import TYPE_CHECKING, Any, Callable

from tripwire.integrations import Integration
from tripwire.integrations._common.unhandled import capture_unhandled
from tripwire.scope._current import (
    get_client,
    get_current_scope,
    get_isolation_scope,
    use_isolation_scope,
    use_scope,
)
from tripwire.scope._scope import Scope, ScopeType

if TYPE_CHECKING:
    from tripwire.types import ExcInfo


class ThreadingIntegration(Integration):
    """Propagates scopes into threads and captures their uncaught exceptions.

    Args:
        propagate_hub: Deprecated alias of `propagate_scope` (sentry_sdk 1.x).
        propagate_scope: Run threads in forks of the starting code's scopes.
    """

    identifier = "threading"

    def __init__(self, propagate_hub: bool | None = None, propagate_scope: bool = True) -> None:
        self.propagate_scope = propagate_scope if propagate_hub is None else bool(propagate_hub)

    @staticmethod
    def setup_once() -> None:
        """Patch `threading.Thread.start` (undone by `tripwire.testing.reset`)."""
        from tripwire.integrations._patch import patch

        original_start = threading.Thread.start
        if getattr(original_start, _MARK, False):
            return  # set up already (a second call wraps nothing twice)

        @functools.wraps(original_start)
        def start(self: threading.Thread, *args: Any, **kwargs: Any) -> Any:
            integration = get_client().get_integration(ThreadingIntegration)
            if integration is not None:
                try:
                    _wrap_run(self, integration.propagate_scope)
                except Exception:  # never stop a thread from starting
                    pass
            return original_start(self, *args, **kwargs)

        setattr(start, _MARK, True)
        patch(threading.Thread, "start", start)

        from tripwire.integrations._common._hooks import when_imported

        when_imported("concurrent.futures.thread", _patch_pool)


_MARK = "__tripwire_threading__"


def _patch_pool(module: types.ModuleType) -> None:
    from tripwire.integrations._patch import patch

    pool = module.ThreadPoolExecutor
    original_submit = pool.submit
    if getattr(original_submit, _MARK, False):
        return

    @functools.wraps(original_submit)
    def submit(self: Any, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
        integration = get_client().get_integration(ThreadingIntegration)
        if integration is None:
            return original_submit(self, fn, *args, **kwargs)
        try:
            task = _in_scopes(fn, integration.propagate_scope)
        except Exception:  # never stop a task from being submitted
            task = fn
        return original_submit(self, task, *args, **kwargs)

    setattr(submit, _MARK, True)
    patch(pool, "submit", submit)


def _scopes_for(propagate: bool) -> tuple[Scope, Scope]:
    if propagate:
        return get_isolation_scope().fork(), get_current_scope().fork()
    return Scope(ty=ScopeType.ISOLATION), Scope(ty=ScopeType.CURRENT)


def _in_scopes(fn: Callable[..., Any], propagate: bool) -> Callable[..., Any]:
    isolation, current = _scopes_for(propagate)

    @functools.wraps(fn)
    def task(*args: Any, **kwargs: Any) -> Any:
        with use_isolation_scope(isolation), use_scope(current):
            return fn(*args, **kwargs)

    return task


def _wrap_run(thread: threading.Thread, propagate: bool) -> None:
    # Forked now, in the starting context: later changes on either side stay apart.
    # Without propagation, explicitly fresh: where threads inherit the context
    # (free-threaded builds, sys.flags.thread_inherit_context) they would otherwise
    # share the parent's.
    isolation, current = _scopes_for(propagate)
    run: Callable[[], Any] = thread.run

    @functools.wraps(run)
    def run_in_scopes(_thread: threading.Thread) -> Any:
        with use_isolation_scope(isolation), use_scope(current):
            try:
                return run()
            except Exception:
                _capture(sys.exc_info())
                raise

    # A bound method, not a bare closure: other wrappers of Thread.start (sentry_sdk's,
    # when both SDKs run in one process) call `thread.run.__func__(thread)`.
    thread.run = types.MethodType(run_in_scopes, thread)  # type: ignore[method-assign]


def _capture(exc_info: ExcInfo) -> None:
    try:
        client = get_client()
        if client.get_integration(ThreadingIntegration) is None:
            return
        capture_unhandled(client, exc_info, "threading")
    except Exception:  # reporting must not replace the thread's own exception
        pass


__all__ = ["ThreadingIntegration"]
