"""Spark driver integration: the SparkContext's facts on events, jobs and stages as breadcrumbs.

As sentry_sdk 2.75's ``SparkIntegration``:

- once a `SparkContext` exists (already, or when `SparkContext._do_init` finishes),
  a Spark listener is registered through Py4J's callback server, and the local
  properties ``sentry_app_name`` / ``sentry_application_id`` are set (Spark hands them
  to the tasks, where `SparkWorkerIntegration` tags its events with them);
- events of the isolation scope the context was made in get, while the context is
  active, ``user.id`` (the Spark user), the tags ``executor.id``,
  ``spark-submit.deployMode``, ``driver.host``, ``driver.port``, ``spark_version``,
  ``app_name``, ``application_id``, ``master``, ``spark_home`` and
  ``extra["web_url"]``, each only where the event has no value of its own;
- the listener turns jobs and stages into breadcrumbs: ``Job N Started`` (which first
  clears the breadcrumbs), ``Stage N Submitted`` / ``Completed`` (data ``name``,
  ``attemptId``), ``Stage N Failed`` (warning, data ``reason``), ``Job N Ended`` /
  ``Failed`` (warning; data ``result``).

Difference, on purpose: the breadcrumbs go to the isolation scope the context was made
in, so the driver's events carry them. sentry_sdk 2.75 records them in the scope of
Py4J's callback thread, where no event of the driver's threads sees them.
"""

from __future__ import annotations

import functools
from types import ModuleType
from typing import Any, Callable, Optional

from tripwire.integrations import DidNotEnable, Integration
from tripwire.integrations._common._hooks import when_imported
from tripwire.integrations._patch import patch_once
from tripwire.scope._current import get_client, get_isolation_scope
from tripwire.utils import capture_internal_exceptions, logger

_MARK = "__tripwire_spark__"


class SparkIntegration(Integration):
    """SparkContext facts on the driver's events; jobs and stages as breadcrumbs."""

    identifier = "spark"

    @staticmethod
    def setup_once() -> None:
        """Hook the active SparkContext, or the next one made (once PySpark is imported).

        Raises:
            DidNotEnable: PySpark is not installed.
        """
        import importlib.util

        if importlib.util.find_spec("pyspark") is None:
            raise DidNotEnable("PySpark is not installed")
        when_imported("pyspark", _hook_context)


def _hook_context(pyspark: ModuleType) -> None:
    spark_context = pyspark.SparkContext
    active = spark_context._active_spark_context
    if active is not None:
        _activate(active)
    else:
        patch_once(spark_context, "_do_init", _wrap_do_init, _MARK)


def _wrap_do_init(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    def _do_init(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = original(self, *args, **kwargs)
        if get_client().get_integration(SparkIntegration) is not None:
            _activate(self)
        return result

    return _do_init


def _activate(sc: Any) -> None:
    with capture_internal_exceptions():
        scope = get_isolation_scope()
        _add_listener(sc, scope)
        _set_app_properties(sc)
        scope.add_event_processor(_ContextFacts(sc))


def _add_listener(sc: Any, scope: Any) -> None:
    from pyspark.java_gateway import ensure_callback_server_started

    ensure_callback_server_started(sc._gateway)  # type: ignore[no-untyped-call]
    sc._jsc.sc().addSparkListener(SentryListener(scope))


def _set_app_properties(sc: Any) -> None:
    """Local properties Spark passes to the tasks (the worker integration's tags)."""
    sc.setLocalProperty("sentry_app_name", sc.appName)
    sc.setLocalProperty("sentry_application_id", sc.applicationId)


class _ContextFacts:
    """Event processor: the SparkContext's user, tags and web URL while it is active."""

    def __init__(self, sc: Any) -> None:
        self.sc = sc
        self.facts: Optional[tuple[Any, dict[str, Any], Any]] = None

    def __call__(self, event: dict[str, Any], hint: Any) -> dict[str, Any]:
        with capture_internal_exceptions():
            if get_client().get_integration(SparkIntegration) is None:
                return event
            if type(self.sc)._active_spark_context is None:  # stopped
                return event
            if self.facts is None:  # fixed for the context's life: asked once over Py4J
                self.facts = self._read()
            user, tags, web_url = self.facts
            event.setdefault("user", {}).setdefault("id", user)
            event_tags = event.setdefault("tags", {})
            for key, value in tags.items():
                event_tags.setdefault(key, value)
            event.setdefault("extra", {}).setdefault("web_url", web_url)
        return event

    def _read(self) -> tuple[Any, dict[str, Any], Any]:
        sc = self.sc
        conf = sc._conf
        tags = {
            "executor.id": conf.get("spark.executor.id"),
            "spark-submit.deployMode": conf.get("spark.submit.deployMode"),
            "driver.host": conf.get("spark.driver.host"),
            "driver.port": conf.get("spark.driver.port"),
            "spark_version": sc.version,
            "app_name": sc.appName,
            "application_id": sc.applicationId,
            "master": sc.master,
            "spark_home": sc.sparkHome,
        }
        return sc.sparkUser(), tags, sc.uiWebUrl


class SparkListener:
    """A `SparkListenerInterface` for Py4J: every callback it does not define is a no-op."""

    def __getattr__(self, name: str) -> Callable[..., None]:
        # Spark calls every method of the interface, and each version adds some.
        if name.startswith("on"):
            return _ignore
        raise AttributeError(name)

    class Java:
        implements = ["org.apache.spark.scheduler.SparkListenerInterface"]


def _ignore(*args: Any) -> None:
    return None


class SentryListener(SparkListener):
    """Jobs and stages as breadcrumbs on the scope the SparkContext was made in."""

    def __init__(self, scope: Any = None) -> None:
        self.scope = scope if scope is not None else get_isolation_scope()

    def _crumb(self, level: str, message: str, data: Optional[dict[str, Any]] = None) -> None:
        self.scope.add_breadcrumb(level=level, message=message, data=data)

    # Spark's method and argument names.
    def onJobStart(self, jobStart: Any) -> None:
        with capture_internal_exceptions():
            self.scope.clear_breadcrumbs()
            self._crumb("info", f"Job {jobStart.jobId()} Started")
            _set_active_app_properties()

    def onJobEnd(self, jobEnd: Any) -> None:
        with capture_internal_exceptions():
            result = jobEnd.jobResult().toString()
            if result == "JobSucceeded":
                self._crumb("info", f"Job {jobEnd.jobId()} Ended", {"result": result})
            else:
                self._crumb("warning", f"Job {jobEnd.jobId()} Failed", {"result": result})

    def onStageSubmitted(self, stageSubmitted: Any) -> None:
        with capture_internal_exceptions():
            info = stageSubmitted.stageInfo()
            self._crumb("info", f"Stage {info.stageId()} Submitted", _stage_data(info))
            _set_active_app_properties()

    def onStageCompleted(self, stageCompleted: Any) -> None:
        from py4j.protocol import Py4JJavaError  # type: ignore[import-untyped]

        with capture_internal_exceptions():
            info = stageCompleted.stageInfo()
            data = _stage_data(info)
            try:
                # A Scala Option: `get` of None raises on the Java side.
                data["reason"] = info.failureReason().get()
            except Py4JJavaError:
                self._crumb("info", f"Stage {info.stageId()} Completed", data)
            else:
                self._crumb("warning", f"Stage {info.stageId()} Failed", data)


def _stage_data(info: Any) -> dict[str, Any]:
    data: dict[str, Any] = {"name": info.name()}
    attempt = _attempt_id(info)
    if attempt is not None:
        data["attemptId"] = attempt
    return data


def _attempt_id(info: Any) -> Optional[int]:
    for name in ("attemptId", "attemptNumber"):  # renamed in Spark 2.3
        try:
            value: int = getattr(info, name)()
        except Exception:  # noqa: S112 - absent in this Spark version
            continue
        return value
    return None


def _set_active_app_properties() -> None:
    from pyspark import SparkContext

    sc = SparkContext._active_spark_context
    if sc is not None:
        try:
            _set_app_properties(sc)
        except Exception:
            logger.debug("Could not set Spark local properties", exc_info=True)
