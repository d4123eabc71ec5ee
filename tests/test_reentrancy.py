"""No lock of tripwire deadlocks its own thread.

A signal handler runs on the main thread between two bytecodes of whatever it
interrupts, and a finalizer (`__del__`, a weakref callback) runs on the thread that
allocates when a collection is due: both may run inside one of tripwire's locked
blocks, and both may call tripwire again (log, count a metric, capture, flush).

Each case runs in a subprocess bounded by a timeout, so a regression fails instead
of hanging the suite. The nested call is placed deterministically: a trace function
(`sys.settrace`) runs it at a chosen line inside the locked block, on the same
thread, at a point where a signal handler can run; the finalizer case uses a
`gc.callbacks` callback; one case uses a real signal and loops until the handler
landed inside the block. The nested call first checks that its thread holds the
lock at that moment, so each case shows that it ran inside the section.
Envelopes go to a real receiver on 127.0.0.1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import pytest
from _receiver import Receiver, Reply

# Seconds a case may take; the cases take about one (a hang is the regression).
TIMEOUT = 60

# Helpers every script starts with.
PRELUDE = '''
import inspect, json, os, sys, threading, time
import tripwire

DSN = os.environ["DSN"]


def owned(lock):
    """Whether this thread holds `lock` (an RLock knows; a Lock is held by someone)."""
    is_owned = getattr(lock, "_is_owned", None)
    return is_owned() if is_owned is not None else lock.locked()


def run_at(func, text, action, after=None):
    """Call `action()` once, on this thread, when `func` is about to run its first line
    holding `text` (after the line holding `after`, if given): the nested call a signal
    handler would make there. Returns the list that receives `action`'s result."""
    lines, start = inspect.getsourcelines(func)
    first = 0 if after is None else 1 + next(i for i, line in enumerate(lines) if after in line)
    target = start + next(i for i, line in enumerate(lines) if i >= first and text in line)
    code = func.__code__
    fired = []

    def local(frame, event, arg):
        if event == "line" and frame.f_lineno == target and not fired:
            fired.append(action())  # the tracer is off meanwhile: nothing nested is traced
        return local

    def tracer(frame, event, arg):
        return local if frame.f_code is code else None

    sys.settrace(tracer)
    return fired


def done(**result):
    sys.settrace(None)
    print("RESULT " + json.dumps(result))
'''


@pytest.fixture
def rx() -> Iterator[Receiver]:
    with Receiver() as receiver:
        yield receiver


def run(rx: Receiver, body: str) -> dict[str, Any]:
    """Run PRELUDE + `body` in a fresh interpreter; its `done(...)` result."""
    script = PRELUDE + textwrap.dedent(body)
    env = {**os.environ, "DSN": rx.dsn()}
    try:
        proc = subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            timeout=TIMEOUT,
            env=env,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"the script hung (a lock waited for its own thread): {exc.stderr!r}")
    assert proc.returncode == 0, proc.stderr
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert lines, proc.stdout + proc.stderr
    result: dict[str, Any] = json.loads(lines[-1][len("RESULT ") :])
    return result


def batched(rx: Receiver, item_type: str) -> list[dict[str, Any]]:
    """The entries of every `item_type` item received (logs, metrics)."""
    payloads = [json.loads(item.get_bytes()) for item in rx.items(item_type)]
    return [entry for payload in payloads for entry in payload["items"]]


def log_bodies(rx: Receiver) -> list[str]:
    return [log["body"] for log in batched(rx, "log")]


def transaction_names(rx: Receiver) -> list[str]:
    return sorted(item.payload.json["transaction"] for item in rx.items("transaction"))


# -- the batchers (logs, metrics, streamed spans, sessions) ---------------------------------


def test_a_log_made_inside_another_logs_add_is_kept(rx: Receiver) -> None:
    result = run(
        rx,
        """
        from tripwire._batcher import Batcher
        from tripwire.logger import _batcher

        tripwire.init(dsn=DSN, enable_logs=True, default_integrations=False)
        tripwire.logger.info("first")  # the batcher exists
        batcher = _batcher(tripwire.get_client())

        def nested():
            held = owned(batcher._lock)
            tripwire.logger.warning("nested")
            return held

        fired = run_at(Batcher.add, "self._items.append(item)", nested)
        tripwire.logger.info("outer")
        done(fired=fired)
        tripwire.flush()
        """,
    )
    assert result == {"fired": [True]}
    assert log_bodies(rx) == ["first", "nested", "outer"]


def test_a_signal_handler_landing_inside_tripwire_locks_does_not_hang(rx: Receiver) -> None:
    # The real thing: SIGALRM every half millisecond while the main thread evaluates
    # flags and logs. The handler logs and evaluates a flag when it interrupted
    # FlagBuffer.set or Batcher.add holding their lock (the latter only lands on
    # CPython < 3.11: from 3.11 that block's calls are specialized and never check for
    # signals).
    result = run(
        rx,
        """
        import signal
        from tripwire._batcher import Batcher
        from tripwire.feature_flags import add_feature_flag
        from tripwire.logger import _batcher
        from tripwire.scope._flags import FlagBuffer

        tripwire.init(dsn=DSN, enable_logs=True, default_integrations=False)
        tripwire.logger.info("first")
        add_feature_flag("first", True)
        locks = {
            Batcher.add.__code__: ("add", _batcher(tripwire.get_client())._lock),
            FlagBuffer.set.__code__: ("set", tripwire.get_isolation_scope().flags.lock),
        }
        hits = []
        busy = []

        def handler(signum, frame):
            if busy:  # the next signal, landing in this handler's own calls
                return
            name, lock = locks.get(frame.f_code if frame is not None else None, (None, None))
            if lock is not None and owned(lock):
                busy.append(True)
                hits.append(name)
                tripwire.logger.warning("from the handler")
                add_feature_flag("from the handler", True)
                busy.clear()

        signal.signal(signal.SIGALRM, handler)
        signal.setitimer(signal.ITIMER_REAL, 0.0005, 0.0005)
        deadline = time.monotonic() + 30  # bounds the loop; the result says if it landed
        n = 0
        while len(hits) < 3 and time.monotonic() < deadline:
            add_feature_flag(f"flag {n % 150}", True)
            tripwire.logger.info("main")
            n += 1
            if n % 200 == 0:
                tripwire.flush()  # keeps the log buffer under its bound
        signal.setitimer(signal.ITIMER_REAL, 0)
        tripwire.capture_message("after")
        done(hits=hits)
        tripwire.flush()
        """,
    )
    assert len(result["hits"]) == 3, "the handler never interrupted a locked block: nothing tested"
    assert log_bodies(rx).count("from the handler") == 3
    after = [e for e in rx.events() if e.get("message") == "after"]
    assert {"flag": "from the handler", "result": True} in after[0]["contexts"]["flags"]["values"]


def test_a_log_made_while_a_flush_takes_the_batch_is_kept(rx: Receiver) -> None:
    result = run(
        rx,
        """
        from tripwire._batcher import Batcher
        from tripwire.logger import _batcher

        tripwire.init(dsn=DSN, enable_logs=True, default_integrations=False)
        tripwire.logger.info("first")
        batcher = _batcher(tripwire.get_client())

        def nested():
            held = owned(batcher._lock)
            tripwire.logger.warning("nested")
            return held

        fired = run_at(Batcher.flush, "items, self._items = self._items, []", nested)
        tripwire.flush()
        done(fired=fired)
        tripwire.flush()
        """,
    )
    assert result == {"fired": [True]}
    assert sorted(log_bodies(rx)) == ["first", "nested"]


def test_a_flush_made_inside_a_flush_sends_both_batches(rx: Receiver) -> None:
    # A SIGTERM handler that flushes before exiting, while the main thread flushes.
    result = run(
        rx,
        """
        from tripwire._batcher import Batcher
        from tripwire.logger import _batcher

        tripwire.init(dsn=DSN, enable_logs=True, default_integrations=False)
        tripwire.logger.info("first")
        batcher = _batcher(tripwire.get_client())

        def nested():
            held = owned(batcher._flush_lock)
            tripwire.logger.warning("nested")
            tripwire.flush()
            return held

        fired = run_at(Batcher.flush, "built = self._build(items)", nested)
        tripwire.flush()
        done(fired=fired)
        """,
    )
    assert result == {"fired": [True]}
    # The nested flush sends its newer batch first (two envelopes: either may arrive first).
    assert sorted(log_bodies(rx)) == ["first", "nested"]


def test_a_first_metric_made_inside_the_first_logs_registration_is_kept(rx: Receiver) -> None:
    result = run(
        rx,
        """
        from tripwire import _batcher, metrics

        tripwire.init(dsn=DSN, enable_logs=True, default_integrations=False)

        def nested():
            held = owned(_batcher._registry_lock)
            metrics.count("nested", 1)  # the client's first metric: its batcher is made
            return held

        fired = run_at(
            _batcher._state_for, "_registry.get(client)", nested, after="with _registry_lock"
        )
        tripwire.logger.info("outer")  # the client's first log
        done(fired=fired)
        tripwire.flush()
        """,
    )
    assert result == {"fired": [True]}
    assert log_bodies(rx) == ["outer"]
    assert [metric["name"] for metric in batched(rx, "trace_metric")] == ["nested"]


def test_a_session_ended_inside_another_sessions_add_is_kept(rx: Receiver) -> None:
    # sentry_sdk's stand-alone SessionFlusher (tripwire's client uses a batcher).
    result = run(
        rx,
        """
        from tripwire.session import Session
        from tripwire.sessions import SessionFlusher

        tripwire.init(dsn=DSN, default_integrations=False)
        flusher = SessionFlusher(tripwire.get_client().transport.capture_envelope)

        def nested():
            held = owned(flusher._lock)
            flusher.add_session(Session(release="r", did="nested"))
            return held

        fired = run_at(SessionFlusher.add_session, "session.session_mode", nested)
        flusher.add_session(Session(release="r", did="outer"))
        done(fired=fired)
        flusher.kill()
        flusher.flush()
        tripwire.flush()
        """,
    )
    assert result == {"fired": [True]}
    dids = sorted(json.loads(item.get_bytes())["did"] for item in rx.items("session"))
    assert dids == ["nested", "outer"]


# -- scope data -------------------------------------------------------------------------


def test_a_finalizer_evaluating_a_flag_while_a_capture_copies_the_flags(rx: Receiver) -> None:
    # A collection starts inside FlagBuffer.copy (it allocates under the lock); a
    # `gc.callbacks` callback runs there, as a finalizer (`__del__`) would.
    result = run(
        rx,
        """
        import gc
        from tripwire.feature_flags import add_feature_flag

        tripwire.init(dsn=DSN, default_integrations=False)
        add_feature_flag("outer", True)
        buffer = tripwire.get_isolation_scope().flags
        hits = []

        def on_gc(phase, info):
            if phase == "start" and not hits and owned(buffer.lock):
                hits.append(True)
                add_feature_flag("nested", False)

        gc.callbacks.append(on_gc)
        thresholds = gc.get_threshold()
        gc.set_threshold(1)
        deadline = time.monotonic() + 30  # bounds the loop; the result says if it landed
        while not hits and time.monotonic() < deadline:
            tripwire.capture_message("during")
        gc.set_threshold(*thresholds)
        gc.callbacks.remove(on_gc)
        tripwire.capture_message("after")
        done(hits=hits)
        tripwire.flush()
        """,
    )
    assert result == {"hits": [True]}
    after = [e for e in rx.events() if e.get("message") == "after"]
    assert after[0]["contexts"]["flags"]["values"] == [
        {"flag": "outer", "result": True},
        {"flag": "nested", "result": False},
    ]


# -- tracing: the backpressure monitor, the OpenTelemetry bridge ---------------------------


def test_a_transaction_started_while_the_first_one_starts_the_monitor(rx: Receiver) -> None:
    result = run(
        rx,
        """
        from tripwire.monitor import Monitor

        tripwire.init(dsn=DSN, traces_sample_rate=1.0, default_integrations=False)
        monitor = tripwire.get_client().monitor

        def nested():
            held = owned(monitor._thread_lock)
            with tripwire.start_transaction(name="nested"):
                pass
            return held

        fired = run_at(Monitor._ensure_running, "thread = threading.Thread(", nested)
        with tripwire.start_transaction(name="outer"):
            pass
        done(fired=fired)
        tripwire.flush()
        """,
    )
    assert result == {"fired": [True]}
    assert transaction_names(rx) == ["nested", "outer"]


def test_an_otel_span_started_while_the_processor_prunes(rx: Receiver) -> None:
    result = run(
        rx,
        """
        from opentelemetry.sdk.trace import TracerProvider
        from tripwire.integrations.opentelemetry import SentrySpanProcessor

        tripwire.init(
            dsn=DSN, traces_sample_rate=1.0, default_integrations=False, instrumenter="otel"
        )
        provider = TracerProvider()
        provider.add_span_processor(SentrySpanProcessor())
        tracer = provider.get_tracer("t")

        def nested():
            held = owned(SentrySpanProcessor._lock)
            with tracer.start_as_current_span("nested"):
                pass
            return held

        fired = run_at(SentrySpanProcessor._prune_old_spans, "for minute in", nested)
        with tracer.start_as_current_span("outer"):
            pass
        done(fired=fired)
        provider.shutdown()
        tripwire.flush()
        """,
    )
    assert result == {"fired": [True]}
    assert transaction_names(rx) == ["nested", "outer"]


# -- transport ----------------------------------------------------------------------------


def test_health_asked_while_the_rate_limits_are_pruned(rx: Receiver) -> None:
    rx.reply(Reply(429, {"Retry-After": "60"}))
    result = run(
        rx,
        """
        from tripwire.transport._ratelimit import RateLimits

        tripwire.init(dsn=DSN, default_integrations=False)
        tripwire.capture_message("rate-limited")
        tripwire.flush()
        transport = tripwire.get_client().transport
        limits = transport._delivery.ratelimits

        def nested():
            return [owned(limits._lock), transport.is_healthy()]

        fired = run_at(RateLimits.any_active, "expired = [", nested)
        outer = transport.is_healthy()
        done(fired=fired, outer=outer)
        """,
    )
    assert result == {"fired": [[True, False]], "outer": False}


def test_a_job_submitted_while_the_background_worker_starts_runs(rx: Receiver) -> None:
    # sentry_sdk's BackgroundWorker, for transports written against sentry_sdk.
    result = run(
        rx,
        """
        from tripwire.worker import BackgroundWorker

        worker = BackgroundWorker()
        ran = []

        def nested():
            held = owned(worker._lock)
            worker.submit(lambda: ran.append("nested"))
            return held

        fired = run_at(BackgroundWorker.start, "start_own(thread)", nested)
        worker.submit(lambda: ran.append("outer"))
        sys.settrace(None)
        worker.flush(10)
        worker.kill()
        done(fired=fired, ran=ran)
        """,
    )
    assert result == {"fired": [True], "ran": ["nested", "outer"]}


def test_a_flush_from_the_background_workers_flush_callback(rx: Receiver) -> None:
    # The callback is user code run while a flush waits: it may flush too (as a signal
    # handler landing in the wait would).
    result = run(
        rx,
        """
        from tripwire.worker import BackgroundWorker

        worker = BackgroundWorker()
        go = threading.Event()
        ran = []
        worker.submit(lambda: (go.wait(30), ran.append("slow")))

        def callback(pending, timeout):
            ran.append(f"callback {pending}")
            go.set()
            worker.flush(10)
            ran.append("nested flush done")

        worker.flush(10, callback)
        worker.kill()
        done(ran=ran)
        """,
    )
    assert result == {"ran": ["callback 1", "slow", "nested flush done"]}


def test_a_client_closed_while_a_log_wakes_the_flusher(rx: Receiver) -> None:
    # A SIGTERM handler that closes the client, landing while a log wakes the flusher:
    # closing wakes it too, and must not wait for the wake-up it interrupted.
    result = run(
        rx,
        """
        from tripwire.logger import _batcher

        tripwire.init(dsn=DSN, enable_logs=True, default_integrations=False)
        tripwire.logger.info("first")
        batcher = _batcher(tripwire.get_client())
        batcher._flush_size = 2  # the next log wakes the flusher

        def nested():
            tripwire.get_client().close()
            return True

        wake = type(batcher._wake).set
        lines = inspect.getsource(wake)
        text = "self._cond.notify_all()" if "notify_all" in lines else "self._lock.release()"
        fired = run_at(wake, text, nested)
        tripwire.logger.info("outer")
        done(fired=fired)
        """,
    )
    assert result == {"fired": [True]}
    assert log_bodies(rx) == ["first", "outer"]
