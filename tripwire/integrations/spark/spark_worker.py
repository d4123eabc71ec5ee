"""Spark worker integration: a task's exception in a Python worker becomes an event.

Used from a custom PySpark daemon module (``spark.python.use.daemon=true``,
``spark.python.daemon.module=<your module>``) that initialises the SDK with
`SparkWorkerIntegration` and then runs ``pyspark.daemon.manager()``. As sentry_sdk
2.75's ``SparkWorkerIntegration``:

- the worker's entry point (``pyspark.worker.main``) is wrapped; when a task fails
  PySpark reports the error to the JVM and exits with `SystemExit`: the exceptions
  behind it (not `SystemExit`, `EOFError` or `ConnectionResetError`) become one event,
  mechanism ``spark``, handled false;
- the event is tagged from the task's `TaskContext`: ``stageId``, ``partitionId``,
  ``attemptNumber``, ``taskAttemptId``, and (set by the driver's `SparkIntegration`)
  ``app_name`` and ``application_id``; ``extra["callSite"]`` is Spark's short call site.

Differences, on purpose: PySpark 3.x bound the entry point in ``pyspark.daemon``
(``worker_main``), which is what sentry_sdk 2.75 replaces; PySpark 4 looks up
``pyspark.worker.main`` for each task, so sentry_sdk reports nothing there, while this
integration wraps both. The `SystemExit` goes on (sentry_sdk swallows it, and the
failed worker is then reused), and the event is flushed first: the forked worker
leaves with ``os._exit``.
"""

from __future__ import annotations

import functools
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any, Callable, cast

from tripwire.api import capture_event
from tripwire.integrations import DidNotEnable, Integration
from tripwire.integrations._common._hooks import when_imported
from tripwire.integrations._patch import patch_once
from tripwire.scope._current import get_client
from tripwire.utils import (
    capture_internal_exceptions,
    event_hint_with_exc_info,
    single_exception_from_error_tuple,
    walk_exception_chain,
)

if TYPE_CHECKING:
    from tripwire.types import Event

_MARK = "__tripwire_spark_worker__"
_NOT_REPORTED = (SystemExit, EOFError, ConnectionResetError)
_FLUSH_TIMEOUT = 2.0  # seconds: the worker process exits right after


class SparkWorkerIntegration(Integration):
    """Report the exceptions of PySpark tasks from the worker processes."""

    identifier = "spark_worker"

    @staticmethod
    def setup_once() -> None:
        """Wrap PySpark's worker entry point (once the worker module is imported).

        Raises:
            DidNotEnable: PySpark is not installed.
        """
        import importlib.util

        if importlib.util.find_spec("pyspark") is None:
            raise DidNotEnable("PySpark is not installed")
        # The daemon imports the worker module only after it forks (threads that the
        # import may start must not cross a fork): wrap it then, in the child.
        when_imported("pyspark.worker", _patch_worker)
        daemon = sys.modules.get("pyspark.daemon")
        if daemon is not None and hasattr(daemon, "worker_main"):  # PySpark 3.x
            patch_once(daemon, "worker_main", _wrap_main, _MARK)


def _patch_worker(module: ModuleType) -> None:
    patch_once(module, "main", _wrap_main, _MARK)


def _wrap_main(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def main(*args: Any, **kwargs: Any) -> Any:
        try:
            return original(*args, **kwargs)
        except SystemExit:
            client = get_client()
            if client.get_integration(SparkWorkerIntegration) is not None:
                with capture_internal_exceptions():
                    _capture(sys.exc_info(), client)
                    client.flush(timeout=_FLUSH_TIMEOUT)
            raise

    return main


def _capture(exc_info: Any, client: Any) -> None:
    mechanism = {"type": "spark", "handled": False}
    values = [
        single_exception_from_error_tuple(exc_type, exc_value, tb, client.options, mechanism)
        for exc_type, exc_value, tb in walk_exception_chain(exc_info)
        if exc_type not in _NOT_REPORTED
    ]
    if not values:
        return
    values.reverse()
    event: dict[str, Any] = {"level": "error", "exception": {"values": values}}
    _add_task_context(event)
    capture_event(cast("Event", event), hint=event_hint_with_exc_info(exc_info))


def _add_task_context(event: dict[str, Any]) -> None:
    from pyspark.taskcontext import TaskContext

    task = TaskContext.get()
    if task is None:
        return
    tags = event.setdefault("tags", {})
    tags["stageId"] = str(task.stageId())
    tags["partitionId"] = str(task.partitionId())
    tags["attemptNumber"] = str(task.attemptNumber())
    tags["taskAttemptId"] = str(task.taskAttemptId())
    properties = task._localProperties or {}
    if "sentry_app_name" in properties:
        tags["app_name"] = properties["sentry_app_name"]
        tags["application_id"] = properties["sentry_application_id"]
    if "callSite.short" in properties:
        event["extra"] = {"callSite": properties["callSite.short"]}
