"""Tasks run by a real Celery worker (and by the test process as producer).

A worker process started by the tests gets its settings from the environment:

- ``CELERY_TEST_BROKER``: the broker URL (the tests' redis-server);
- ``CELERY_TEST_DSN``: if set, the SDK is initialised here, at import, as an
  application does in its Celery module (before the pool forks);
- ``CELERY_TEST_SDK``: ``tripwire`` (default) or ``sentry`` (sentry_sdk 2.75);
- ``CELERY_TEST_PARENT_LOAD``: if set, the worker's main process captures messages in a
  thread for as long as it runs, so pool processes fork while it is sending.

Without ``CELERY_TEST_DSN`` (the test process) nothing is initialised.
"""

from __future__ import annotations

import faulthandler
import os
import signal
import threading
from typing import Any

from celery import Celery, signals
from celery.exceptions import Ignore

# A test that finds the worker hung sends SIGUSR1 first: every process of it (the
# pool children too) writes its threads' stacks to the log.
faulthandler.register(signal.SIGUSR1, all_threads=True)

app = Celery("celery_app.tasks")
app.conf.update(
    broker_url=os.environ.get("CELERY_TEST_BROKER", "memory://"),
    broker_connection_retry_on_startup=True,
    worker_hijack_root_logger=False,
    task_default_queue=os.environ.get("CELERY_TEST_QUEUE", "celery"),
)

sdk: Any = None
_stop_load = threading.Event()


def _init_sdk() -> None:
    global sdk
    name = os.environ.get("CELERY_TEST_SDK", "tripwire")
    if name == "sentry":
        import sentry_sdk as chosen
        from sentry_sdk.integrations.celery import CeleryIntegration
    else:
        import tripwire as chosen
        from tripwire.integrations.celery import CeleryIntegration
    sdk = chosen
    sdk.init(
        dsn=os.environ["CELERY_TEST_DSN"],
        release="r1",
        server_name="worker",
        traces_sample_rate=1.0,
        default_integrations=False,
        integrations=[CeleryIntegration(monitor_beat_tasks=True)],
    )


def _parent_load() -> None:
    # Not a synchronisation: the pause only paces the load so the receiver keeps up.
    i = 0
    while not _stop_load.wait(0.005):
        sdk.capture_message(f"parent-load-{i}")
        i += 1


@signals.worker_ready.connect
def _start_parent_load(**kwargs: Any) -> None:
    if sdk is not None and os.environ.get("CELERY_TEST_PARENT_LOAD"):
        threading.Thread(target=_parent_load, name="parent-load", daemon=True).start()


@signals.worker_shutting_down.connect
def _stop_parent_load(**kwargs: Any) -> None:
    _stop_load.set()


if os.environ.get("CELERY_TEST_DSN"):
    _init_sdk()


@app.task
def add(x: int, y: int) -> int:
    """A task that succeeds."""
    return x + y


@app.task
def boom(x: int) -> None:
    """A task that fails."""
    raise ValueError(f"boom {x}")


@app.task
def capture(i: int) -> int:
    """A task that captures a message of its own (the prefork load test counts them)."""
    sdk.capture_message(f"task-{i}", tags={"pid": os.getpid()})
    return os.getpid()


@app.task
def fan_out(n: int) -> None:
    """A task that sends `n` more tasks: propagation from a worker to a worker."""
    for i in range(n):
        add.delay(i, i)


@app.task(bind=True, max_retries=1, default_retry_delay=0)
def flaky(self: Any) -> str:
    """Fails once, then succeeds after a retry (the retry is no error)."""
    if self.request.retries == 0:
        raise self.retry(exc=RuntimeError("try again"), countdown=0)
    return "ok"


@app.task
def ignored() -> None:
    """Ignored by Celery (not reported)."""
    raise Ignore()


@app.task(throws=(KeyError,))
def expected_failure() -> None:
    """Fails with an exception the task declares in `throws` (not reported)."""
    raise KeyError("expected")
