"""Hostile input and misbehaving peers: the SDK half of the hardening issue.

Signals come from a real interval timer in a real interpreter; servers are real
sockets on 127.0.0.1 that refuse, reset, fail TLS or never answer.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Optional

import pytest
from _receiver import Receiver, Reply, TlsFiles, tls_unavailable

import tripwire

ROOT = Path(__file__).resolve().parent.parent


def run_python(code: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTRY_")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.run(
        [sys.executable, "-c", code, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=str(ROOT),
        timeout=timeout,
        check=False,
    )


# -- captures from a signal handler ------------------------------------------------------

SIGNAL_STORM = """
import faulthandler, logging, signal, sys
import tripwire
import tripwire.event.exceptions, tripwire.tracing  # (the lazy imports are another test)
from tripwire.crons import capture_checkin

faulthandler.enable()  # a crash shows where
faulthandler.dump_traceback_later(20, exit=True)  # a hang shows where, then exits 1
interval = float(sys.argv[1])
in_handler = False

def handler(signum, frame):
    # A handler slower than the interval (a loaded machine) would otherwise be
    # interrupted by the next signal, and so on until the C stack overflows.
    global in_handler
    if in_handler:
        return
    in_handler = True
    try:
        capture_checkin(monitor_slug="from-handler", status="ok")
        tripwire.capture_message("from handler")
    finally:
        in_handler = False

signal.signal(signal.SIGALRM, handler)
for trial in range(int(sys.argv[2])):
    # A new client each time: its worker thread starts on the first capture, which
    # is when the timer is most likely to interrupt it.
    tripwire.init(dsn="http://k@127.0.0.1:9/1", default_integrations=False, shutdown_timeout=0)
    signal.setitimer(signal.ITIMER_REAL, interval, interval)
    for i in range(5):
        capture_checkin(monitor_slug="main", status="ok")
        tripwire.capture_message("main")
    signal.setitimer(signal.ITIMER_REAL, 0)
    tripwire.get_client().close(timeout=0)
print("done")
"""


def test_captures_from_a_signal_handler_never_wait_on_the_code_they_interrupted() -> None:
    # Before: the handler's check-in waited for the worker's start lock (or the wake
    # event's lock) that the interrupted capture held: a deadlock.
    proc = run_python(SIGNAL_STORM, "0.0003", "150", timeout=60)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "done"


FIRST_CAPTURE_IMPORTS = """
import sys
import tripwire

tripwire.init(dsn="http://k@127.0.0.1:9/1", default_integrations=False, shutdown_timeout=0)
assert "logging" in sys.modules  # bound at init, not by the first SDK log line
before = set(sys.modules)
tripwire.capture_message("first")
try:
    1 / 0
except ZeroDivisionError:
    tripwire.capture_exception()
tripwire.add_breadcrumb(message="crumb")
tripwire.capture_event({"message": "event"})
print(",".join(sorted(set(sys.modules) - before)))
"""


def test_the_first_capture_imports_nothing() -> None:
    proc = run_python(FIRST_CAPTURE_IMPORTS)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == ""


MID_IMPORT_SIGNAL = """
import signal, sys
import tripwire

tripwire.init(dsn="http://k@127.0.0.1:9/1", default_integrations=False, shutdown_timeout=0)
errors = []

def handler(signum, frame):
    try:
        tripwire.capture_message("from handler")
        tripwire.capture_exception(ValueError("from handler"))
    except BaseException as exc:  # the API must never raise into the application
        errors.append(repr(exc))

signal.signal(signal.SIGALRM, handler)
signal.setitimer(signal.ITIMER_REAL, float(sys.argv[1]), float(sys.argv[1]))
try:
    1 / 0
except ZeroDivisionError:
    tripwire.capture_exception()
for i in range(50):
    tripwire.capture_message("main")
signal.setitimer(signal.ITIMER_REAL, 0)
print("errors:", errors)
"""


def test_a_signal_handler_capturing_during_the_first_capture_gets_no_exception() -> None:
    proc = run_python(MID_IMPORT_SIGNAL, "0.002")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip() == "errors: []", proc.stdout


# -- exit with an unreachable server -------------------------------------------------------

EXIT_UNREACHABLE = """
import sys, time
import tripwire

options = {"spool_dir": sys.argv[2]} if sys.argv[2] else {}
tripwire.init(dsn=sys.argv[1], shutdown_timeout=10.0, **options)
for i in range(5):
    tripwire.capture_message("exit-%d" % i)
started = time.monotonic()
tripwire.flush()  # as the atexit integration does, with shutdown_timeout
print("%.3f" % (time.monotonic() - started))
lost = tripwire.get_client().outcomes.snapshot().get(("network_error", "error"), 0)
print(lost)
"""


def _exit_unreachable(dsn: str, spool: str = "") -> tuple[float, int]:
    started = time.monotonic()
    proc = run_python(EXIT_UNREACHABLE, dsn, spool, timeout=60)
    elapsed = time.monotonic() - started
    assert proc.returncode == 0, proc.stderr
    # Well under shutdown_timeout=10: before, the flush waited for all of it.
    assert elapsed < 5.0, (elapsed, proc.stdout)
    flush_seconds, lost = proc.stdout.split()
    assert float(flush_seconds) < 5.0
    return float(flush_seconds), int(lost)


def test_exit_with_a_refusing_server_does_not_wait_for_the_shutdown_timeout() -> None:
    with Receiver() as rx:
        rx.down()  # the port refuses connections
        _, lost = _exit_unreachable(rx.dsn())
    assert lost == 5  # counted, not silently gone


def test_exit_with_a_resetting_server_does_not_wait_for_the_shutdown_timeout() -> None:
    with Receiver() as rx:
        rx.reply(*[Reply(action="reset") for _ in range(50)])
        _, lost = _exit_unreachable(rx.dsn())
    assert lost == 5


@pytest.mark.skipif(tls_unavailable() is not None, reason=str(tls_unavailable()))
def test_a_rejected_certificate_is_not_retried_and_exit_is_prompt() -> None:
    tls = TlsFiles()
    try:
        with Receiver(tls=tls) as rx:
            _, lost = _exit_unreachable(rx.dsn())  # the self-signed cert is not trusted
            assert rx.requests == []
    finally:
        tls.cleanup()
    assert lost == 5


def test_exit_with_a_refusing_server_spools_what_is_left(tmp_path: Path) -> None:
    with Receiver() as rx:
        rx.down()
        _exit_unreachable(rx.dsn(), str(tmp_path))
        spooled = [p for p in tmp_path.rglob("*") if p.is_file()]
        assert len(spooled) >= 5, spooled
        # A later process delivers them.
        rx.up()
        proc = run_python(
            "import sys, tripwire\n"
            "tripwire.init(dsn=sys.argv[1], spool_dir=sys.argv[2])\n"
            "tripwire.flush(10)\n",
            rx.dsn(),
            str(tmp_path),
        )
        assert proc.returncode == 0, proc.stderr
        rx.wait_for(5)


# -- every loss is counted -----------------------------------------------------------------


class _BrokenStr:
    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __repr__(self) -> str:
        raise RuntimeError("no repr")


class _BrokenStrGoodRepr(_BrokenStr):
    def __repr__(self) -> str:
        return "<good repr>"


def _with_processor(result: object) -> Callable[[], object]:
    def capture() -> object:
        with tripwire.new_scope() as scope:
            scope.add_event_processor(lambda event, hint: result)
            return tripwire.capture_message("through a processor")

    return capture


def _with_error_processor(result: object) -> Callable[[], object]:
    def capture() -> object:
        with tripwire.new_scope() as scope:
            scope.add_error_processor(lambda event, exc_info: result)
            return tripwire.capture_exception(ValueError("through an error processor"))

    return capture


def _with_bogus_attachment() -> object:
    # A processor that puts something that is not an Attachment in the hint: the
    # envelope cannot be built.
    def processor(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        hint.setdefault("attachments", []).append(object())
        return event

    with tripwire.new_scope() as scope:
        scope.add_event_processor(processor)
        return tripwire.capture_message("with a bogus attachment")


LOSSES: dict[str, tuple[dict[str, Any], Callable[[], object], Optional[str]]] = {
    # name: (init options, capture, reason when dropped / None when sent)
    "before_send returns a str": (
        {"before_send": lambda event, hint: "not an event"},
        lambda: tripwire.capture_message("x"),
        "before_send",
    ),
    "before_send returns a list": (
        {"before_send": lambda event, hint: [event]},
        lambda: tripwire.capture_message("x"),
        "before_send",
    ),
    "an event processor returns a str": ({}, _with_processor("not an event"), "event_processor"),
    "an event processor returns 0": ({}, _with_processor(0), "event_processor"),
    "an error processor returns a list": ({}, _with_error_processor([1]), "event_processor"),
    "a bogus attachment": ({}, _with_bogus_attachment, "internal_sdk_error"),
}


@pytest.mark.parametrize("name", list(LOSSES))
def test_an_event_that_cannot_be_sent_is_counted(name: str, init_memory: Any) -> None:
    options, capture, reason = LOSSES[name]
    memory = init_memory(**options)
    assert capture() is None
    assert memory.events == []
    assert tripwire.get_client().outcomes.snapshot() == {(reason, "error"): 1}


def test_a_message_whose_str_raises_is_sent(init_memory: Any) -> None:
    memory = init_memory()
    first = tripwire.capture_message(_BrokenStr())  # type: ignore[arg-type]
    second = tripwire.capture_message(_BrokenStrGoodRepr())  # type: ignore[arg-type]
    assert first is not None and second is not None
    assert [e["message"] for e in memory.events] == ["<broken repr>", "<good repr>"]
    assert [e["event_id"] for e in memory.events] == [first, second]
    assert tripwire.get_client().outcomes.snapshot() == {}


@pytest.mark.parametrize("where", ["before_send", "event processor"])
def test_a_new_event_dict_without_an_id_gets_the_one_returned(where: str, init_memory: Any) -> None:
    if where == "before_send":
        memory = init_memory(before_send=lambda event, hint: {"message": "replaced"})
        event_id = tripwire.capture_message("original")
    else:
        memory = init_memory()
        event_id = _with_processor({"message": "replaced"})()
    assert isinstance(event_id, str) and len(event_id) == 32
    (event,) = memory.events
    assert event["message"] == "replaced"
    assert event["event_id"] == event_id
    (envelope,) = memory.envelopes
    assert envelope.headers["event_id"] == event_id
    assert tripwire.get_client().outcomes.snapshot() == {}


def test_the_losses_reach_the_server_in_a_client_report(rx: Receiver) -> None:
    tripwire.init(dsn=rx.dsn(), before_send=lambda event, hint: "not an event")
    tripwire.capture_message("dropped by before_send")
    _with_processor([])()
    tripwire.flush(10)
    rx.wait_for(1)
    assert rx.discarded() == {("before_send", "error"): 1, ("event_processor", "error"): 1}


# -- tag values are bounded strings ----------------------------------------------------------


class _ReprOnly:
    def __str__(self) -> str:
        return "str form"

    def __repr__(self) -> str:
        return "<repr form>"


def test_tag_values_are_sent_as_strings_of_at_most_200_characters(init_memory: Any) -> None:
    memory = init_memory()
    values: dict[str, Any] = {
        "int": 7,
        "float": 1.5,
        "bool": True,
        "none": None,
        "dict": {"a": 1},
        "list": [1, "b"],
        "object": _ReprOnly(),
        "broken str": _BrokenStrGoodRepr(),
        "broken both": _BrokenStr(),
        "bytes": b"ab",
        "huge int": 10**5000,
        "long": "x" * 100_000,
        "fits": "y" * 200,
    }
    tripwire.capture_event({"message": "own tags", "tags": {"n": 5, "gone": None, "s": "ok"}})
    for key, value in values.items():
        tripwire.set_tag(key, value)
    tripwire.capture_message("tags")
    second, first = memory.events
    assert first["tags"] == {
        "int": "7",
        "float": "1.5",
        "bool": "True",
        "dict": "{'a': 1}",
        "list": "[1, 'b']",
        "object": "<repr form>",
        "broken str": "<good repr>",
        "broken both": "<broken repr>",
        "bytes": "ab",
        "huge int": "<broken repr>",
        "long": "x" * 197 + "...",
        "fits": "y" * 200,
    }
    assert first["_meta"]["tags"] == {
        "long": {"": {"len": 100_000, "rem": [["!limit", "x", 197, 200]]}}
    }
    assert second["tags"] == {"n": "5", "s": "ok"}
    # What before_send adds is bounded too (the event's full serialization pass).
    memory2 = init_memory(
        before_send=lambda event, hint: {**event, "tags": {"late": "z" * 300, "k": False}}
    )
    tripwire.capture_message("late tags")
    (event,) = memory2.events
    assert event["tags"] == {"late": "z" * 197 + "...", "k": "False"}
    assert event["_meta"]["tags"]["late"][""]["len"] == 300


def test_tag_keys_are_at_most_200_characters(init_memory: Any) -> None:
    memory = init_memory()
    tripwire.set_tag("k" * 100_000, "long key")
    tripwire.set_tag("k" * 200, "fits")
    tripwire.set_tag(("not", "a", "str"), "tuple key")
    tripwire.capture_message("keys")
    (event,) = memory.events
    assert event["tags"] == {
        "k" * 197 + "...": "long key",
        "k" * 200: "fits",
        "('not', 'a', 'str')": "tuple key",
    }


# -- a server that accepts and never answers --------------------------------------------------

SILENT_SERVER = """
import sys, time
import tripwire
from tripwire.transport._http_transport import HttpTransport

class QuickTransport(HttpTransport):
    TIMEOUT = float(sys.argv[2])  # as sentry_sdk's HttpTransport.TIMEOUT

tripwire.init(dsn=sys.argv[1], transport=QuickTransport, spool_dir=sys.argv[3],
              default_integrations=False)
# Both envelopes queued before the worker takes one: on a loaded machine it could
# otherwise send "first" alone and be waiting on its answer when "second" comes. The
# worker thread starts now (its start would hand it the interpreter lock mid-way),
# and the long switch interval keeps the lock here until flush() waits.
tripwire.get_client().transport._worker.start()
time.sleep(0.2)
sys.setswitchinterval(30)
tripwire.capture_message("first")
tripwire.capture_message("second")
sys.setswitchinterval(0.005)
started = time.monotonic()
tripwire.flush(60)  # returns once both are handled: spooled after their failure
print("%.3f" % (time.monotonic() - started))
"""


def test_a_silent_server_costs_one_timeout_for_both_connections(tmp_path: Path) -> None:
    # Both requests go out at once (one per connection) and neither is answered.
    # Before: the second connection's timeout, then the first's read timed out again
    # on its own, then the first was retried at once: three timeouts in series.
    timeout = 3.0
    with Receiver() as rx:
        rx.hold()  # every request is read, none is answered
        proc = run_python(SILENT_SERVER, rx.dsn(), str(timeout), str(tmp_path), timeout=60)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert len(rx.requests) == 2  # two connections, no retry into the silence
        assert rx.connections == 2
    waited = float(proc.stdout)
    assert waited < timeout * 1.7, waited  # one timeout, not two or three
    spooled = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(spooled) >= 2, spooled  # nothing lost: both wait on disk
