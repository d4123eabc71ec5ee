"""Spark integrations: a real local Spark (``local[1]``, the machine's Java) per SDK.

One script runs on sentry_sdk 2.75 and on tripwire (one interpreter and one JVM each):
the driver has `SparkIntegration`; PySpark's Python workers come from a daemon module
that initialises the same SDK with `SparkWorkerIntegration` before it runs PySpark's
daemon. A job succeeds, then one fails in a Python worker; the driver captures a
message after the first, the job's error after the second, and a message after
``sc.stop()``. Driver and workers send over HTTP to one receiver on 127.0.0.1; each run
is told apart by its release.

Both SDKs must send the same driver events (SparkContext user, tags and web URL while
the context is active), except where tripwire differs on purpose: the job and stage
breadcrumbs reach the driver's events (sentry_sdk records them in Py4J's callback
thread's scope), and the failed task is reported by the worker (sentry_sdk 2.75 wraps
``pyspark.daemon.worker_main``, which PySpark 4 no longer calls).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _owned_processes import processes_naming, scratch_folder
from _receiver import Receiver
from _side_by_side import dumps, event_shape, run_each

from tripwire.integrations.spark import SparkWorkerIntegration
from tripwire.integrations.spark.spark_worker import _wrap_main
from tripwire.testing import reset

if TYPE_CHECKING:
    import pyspark


@pytest.fixture(autouse=True, scope="module")
def _pyspark() -> None:
    """PySpark is imported when the module's tests start, not at collection (every xdist
    worker collects every module; tests/_lazy.py)."""
    global pyspark
    import pyspark


SCRIPT = """
import os

from pyspark import SparkConf, SparkContext
from sentry_sdk.integrations.spark import SparkIntegration

SDK = sys.argv[1]
os.environ["TRIPWIRE_TEST_SDK"] = SDK  # for the workers' daemon module
sentry_sdk.init(
    dsn=os.environ["TRIPWIRE_TEST_DSN"],
    integrations=[SparkIntegration()],
    release=SDK,
    environment="driver",
)
conf = (
    SparkConf()
    .setMaster("local[1]")
    .setAppName("tripwire-test")
    .set("spark.ui.enabled", "false")
    .set("spark.driver.host", "127.0.0.1")
    .set("spark.driver.bindAddress", "127.0.0.1")
    # A JVM that lives seconds: the quick compiler only, one GC thread (~30% less CPU).
    .set("spark.driver.extraJavaOptions", "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
    .set("spark.local.dir", os.environ["TRIPWIRE_TEST_SPARK_DIR"])
    .set("spark.python.use.daemon", "true")
    .set("spark.python.daemon.module", os.environ["TRIPWIRE_TEST_DAEMON"])
)
sc = SparkContext(conf=conf)
sc.setLogLevel("ERROR")
bus = sc._jsc.sc().listenerBus()  # the listener's calls are asynchronous: wait for them
try:
    NOTES.append(sc.parallelize([1, 2, 3], 1).map(lambda x: x * 2).sum())
    bus.waitUntilEmpty()
    sentry_sdk.capture_message("after a job")
    try:
        sc.parallelize([1, 2, 3], 1).map(lambda x: 1 // (x - 2)).collect()
    except Exception as exc:
        NOTES.append(type(exc).__name__)
        bus.waitUntilEmpty()
        sentry_sdk.capture_exception(exc)
finally:
    sc.stop()
sentry_sdk.capture_message("after stop")
finish()
"""

DAEMON = """
import os

if os.environ["TRIPWIRE_TEST_SDK"] == "tripwire":
    import tripwire.alias

    tripwire.alias.install()

import pyspark.daemon
import sentry_sdk
from sentry_sdk.integrations.spark import SparkWorkerIntegration

if __name__ == "__main__":
    sentry_sdk.init(
        dsn=os.environ["TRIPWIRE_TEST_DSN"],
        integrations=[SparkWorkerIntegration()],
        release=os.environ["TRIPWIRE_TEST_SDK"],
        environment="worker",
    )
    pyspark.daemon.manager()
"""

# Facts of one run (a port, an id, the host) and of the SDK's own events.
_PER_RUN_TAGS = ("driver.port", "application_id")


@pytest.fixture
def spark_dir() -> Iterator[str]:
    """Spark's scratch folder, named on the JVM's command line: no JVM outlives the test."""
    with scratch_folder("tw-spark-", "Spark") as folder:
        yield folder


def _driver_shape(event: dict[str, Any]) -> dict[str, Any]:
    shape = event_shape(event)
    shape["tags"] = {k: v for k, v in (shape["tags"] or {}).items() if k not in _PER_RUN_TAGS}
    shape["breadcrumbs"] = None  # compared apart: see the module docstring
    return shape


@pytest.mark.skipif(
    shutil.which("java") is None, reason="Spark needs a Java runtime (.ci/run installs it)"
)
def test_spark_driver_and_worker(
    tmp_path: Path,
    rx: Receiver,
    spark_dir: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    daemon = f"tw_spark_daemon_{os.getpid()}"
    (tmp_path / f"{daemon}.py").write_text(DAEMON)
    monkeypatch.setenv("TRIPWIRE_TEST_DSN", rx.dsn())
    monkeypatch.setenv("TRIPWIRE_TEST_SPARK_DIR", spark_dir)
    monkeypatch.setenv("TRIPWIRE_TEST_DAEMON", daemon)
    monkeypatch.setenv("SPARK_LOCAL_IP", "127.0.0.1")
    monkeypatch.setenv("PYSPARK_PYTHON", sys.executable)
    monkeypatch.setenv("PYSPARK_DRIVER_PYTHON", sys.executable)
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}{os.pathsep}{os.environ['PYTHONPATH']}")
    try:
        ((sentry, ours),) = run_each(SCRIPT, tmp_path, timeout=240)
    finally:
        assert not processes_naming(daemon), "a PySpark daemon outlived its JVM"
    assert sentry["notes"] == ours["notes"] == [12, "Py4JJavaError"]

    # sentry_sdk: three driver events; tripwire: the same three and the worker's.
    requests = rx.wait_for(7)
    events: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for request in requests:
        for item in request.envelope.items:
            payload = item.payload.json
            assert isinstance(payload, dict), item
            events.setdefault((payload["release"], payload["environment"]), []).append(payload)
    assert ("sentry", "worker") not in events
    theirs = sorted(events["sentry", "driver"], key=lambda e: e["timestamp"])
    driver = sorted(events["tripwire", "driver"], key=lambda e: e["timestamp"])
    assert [_driver_shape(e) for e in driver] == [_driver_shape(e) for e in theirs], dumps(
        [theirs, driver]
    )

    after_job, failure, after_stop = driver
    assert after_job["message"] == "after a job"
    assert failure["exception"]["values"][-1]["type"] == "Py4JJavaError"
    assert "ZeroDivisionError" in failure["exception"]["values"][-1]["value"]
    for event in (after_job, failure):
        tags = event["tags"]
        assert tags["app_name"] == "tripwire-test"
        assert tags["master"] == "local[1]"
        assert tags["executor.id"] == "driver"
        assert tags["spark-submit.deployMode"] == "client"
        assert tags["driver.host"] == "127.0.0.1"
        assert tags["application_id"].startswith("local-")
        assert tags["spark_version"] == pyspark.__version__
        assert event["user"]["id"]
        assert "web_url" in event["extra"]
    # After sc.stop() the context's facts are gone.
    assert "app_name" not in (after_stop.get("tags") or {})

    # The job trail: each job starts a fresh list.
    def trail(event: dict[str, Any]) -> list[tuple[str, str, Any]]:
        crumbs = event["breadcrumbs"]["values"]
        return [(c["level"], c["message"], c.get("data")) for c in crumbs]

    first = trail(after_job)
    assert [c[:2] for c in first] == [
        ("info", "Job 0 Started"),
        ("info", "Stage 0 Submitted"),
        ("info", "Stage 0 Completed"),
        ("info", "Job 0 Ended"),
    ]
    assert first[1][2] == first[2][2] == {"name": first[1][2]["name"], "attemptId": 0}
    assert first[1][2]["name"].startswith("sum at ")
    assert first[3][2] == {"result": "JobSucceeded"}
    second = trail(failure)
    assert [c[:2] for c in second] == [
        ("info", "Job 1 Started"),
        ("info", "Stage 1 Submitted"),
        ("warning", "Stage 1 Failed"),
        ("warning", "Job 1 Failed"),
    ]
    assert "ZeroDivisionError" in second[2][2]["reason"]
    assert second[3][2]["result"].startswith("JobFailed(")

    # The worker's event: the task's own exception, tagged with the task.
    (worker,) = events["tripwire", "worker"]
    (exception,) = worker["exception"]["values"]
    assert exception["type"] == "ZeroDivisionError"
    assert exception["mechanism"] == {"type": "spark", "handled": False}
    assert exception["stacktrace"]["frames"][-1]["function"] == "<lambda>"
    assert exception["stacktrace"]["frames"][-1]["in_app"] is True
    tags = worker["tags"]
    assert {k: tags[k] for k in ("stageId", "partitionId", "attemptNumber")} == {
        "stageId": "1",
        "partitionId": "0",
        "attemptNumber": "0",
    }
    assert tags["app_name"] == "tripwire-test"
    assert tags["application_id"] == failure["tags"]["application_id"]
    assert worker["extra"]["callSite"].startswith("collect at ")


def test_worker_entry_point_in_process(init_memory: Any) -> None:
    """What PySpark's worker does on a task error, without a JVM: the wrapper's rules."""
    import pyspark.worker

    original = pyspark.worker.main
    memory = init_memory(integrations=[SparkWorkerIntegration()])
    assert pyspark.worker.main is not original

    def failing_main(*args: Any) -> None:
        try:
            raise ValueError("task failed")
        except ValueError:
            sys.exit(-1)  # as pyspark.worker.main, after telling the JVM

    with pytest.raises(SystemExit):  # PySpark's exit code still decides the worker's fate
        _wrap_main(failing_main)()
    (event,) = memory.events
    (exception,) = event["exception"]["values"]  # not the SystemExit
    assert (exception["type"], exception["value"]) == ("ValueError", "task failed")
    assert exception["mechanism"] == {"type": "spark", "handled": False}
    assert "stageId" not in (event.get("tags") or {})  # no TaskContext here

    with pytest.raises(SystemExit):  # a clean exit is no error
        _wrap_main(lambda: sys.exit(0))()
    assert len(memory.events) == 1

    reset()
    assert pyspark.worker.main is original


def test_init_imports_no_pyspark() -> None:
    code = (
        "import sys, tripwire\n"
        "from tripwire.integrations.spark import SparkIntegration, SparkWorkerIntegration\n"
        "tripwire.init(integrations=[SparkIntegration(), SparkWorkerIntegration()])\n"
        "assert 'pyspark' not in sys.modules, 'init() imported pyspark'\n"
    )
    subprocess.run([sys.executable, "-W", "error", "-c", code], check=True, timeout=60)
