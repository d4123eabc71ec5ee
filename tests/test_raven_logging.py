"""tripwire.raven: SentryHandler, setup_logging, breadcrumbs and the logging hook."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from tripwire.raven import Client, setup_logging
from tripwire.raven import breadcrumbs as raven_breadcrumbs
from tripwire.raven.breadcrumbs import BreadcrumbBuffer, make_buffer
from tripwire.raven.conf import EXCLUDE_LOGGER_DEFAULTS
from tripwire.raven.context import Context
from tripwire.raven.handlers.logging import SentryHandler
from tripwire.testing import MemoryTransport


def make(**options: Any) -> tuple[Client, MemoryTransport]:
    memory = MemoryTransport()
    options.setdefault("install_sys_hook", False)
    return Client(transport=memory, **options), memory


def crumbs(event: dict[str, Any]) -> list[dict[str, Any]]:
    values: list[dict[str, Any]] = event.get("breadcrumbs", {}).get("values", [])
    return values


@pytest.fixture
def app_logger() -> Iterator[logging.Logger]:
    """A private logger (not propagating) whose handlers are removed afterwards."""
    log = logging.getLogger("raventest.app")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    yield log
    for handler in list(log.handlers):
        log.removeHandler(handler)


@pytest.fixture
def clean_logging() -> Iterator[None]:
    """Restore the root logger and the loggers setup_logging changes."""
    root = logging.getLogger()
    saved_root = list(root.handlers)
    saved = {
        name: (logging.getLogger(name).propagate, list(logging.getLogger(name).handlers))
        for name in EXCLUDE_LOGGER_DEFAULTS
    }
    yield
    root.handlers[:] = saved_root
    for name, (propagate, handlers) in saved.items():
        logging.getLogger(name).propagate = propagate
        logging.getLogger(name).handlers[:] = handlers


# -- SentryHandler ----------------------------------------------------------------------------


def test_handler_sends_message_event(app_logger: logging.Logger) -> None:
    client, memory = make()
    app_logger.addHandler(SentryHandler(client, level=logging.WARNING, tags={"h": "1"}))
    app_logger.info("below the handler's level")
    app_logger.warning(
        "warn %s %r",
        "a",
        {"b": 1},
        extra={
            "foo": "bar",
            "tags": {"tk": "tv"},
            "data": {"dk": 1},
            "fingerprint": ["f1"],
            "culprit": "C",
            "user": {"id": 9},
            "server_name": "S",
        },
    )
    [event] = memory.events
    assert event["level"] == "warning"
    assert event["logger"] == "raventest.app"
    assert event["logentry"] == {
        "message": "warn %s %r",
        "params": ["a", {"b": 1}],
        "formatted": "warn a {'b': 1}",
    }
    assert "message" not in event
    assert event["tags"] == {"h": "1", "tk": "tv"}
    assert event["fingerprint"] == ["f1"]
    assert event["culprit"] == "C"
    assert event["user"] == {"id": 9}
    assert event["server_name"] == "S"
    # The caller's data comes first (the server keeps the first 10 extra keys).
    assert list(event["extra"])[:2] == ["dk", "foo"]
    assert event["extra"]["foo"] == "bar"
    assert event["extra"]["lineno"] > 0
    assert event["extra"]["threadName"] == threading.current_thread().name
    # The record itself is the last breadcrumb, as raven recorded it.
    assert crumbs(event)[-1]["message"] == "warn a {'b': 1}"
    assert crumbs(event)[-1]["category"] == "raventest.app"


def test_handler_sends_exception_event(app_logger: logging.Logger) -> None:
    client, memory = make()
    app_logger.addHandler(SentryHandler(client=client))
    try:
        dict[str, int]()["missing"]
    except KeyError:
        app_logger.exception("lookup failed for %s", "missing")
    [event] = memory.events
    assert event["level"] == "error"
    assert event["exception"]["values"][0]["type"] == "KeyError"
    assert event["logentry"]["formatted"] == "lookup failed for missing"


def test_handler_skips_exception_already_captured(app_logger: logging.Logger) -> None:
    client, memory = make()
    app_logger.addHandler(SentryHandler(client))
    try:
        1 / 0
    except ZeroDivisionError:
        client.captureException()
        app_logger.exception("logged after capture")
    assert len(memory.events) == 1


def test_handler_stack_true_starts_at_the_logging_call(app_logger: logging.Logger) -> None:
    client, memory = make()
    app_logger.addHandler(SentryHandler(client))
    app_logger.error("with stack", extra={"stack": True})
    frames = memory.events[0]["threads"]["values"][0]["stacktrace"]["frames"]
    assert frames[-1]["function"] == "test_handler_stack_true_starts_at_the_logging_call"
    assert not any(f.get("module") == "logging" for f in frames)


def test_handler_builds_its_own_client() -> None:
    memory = MemoryTransport()
    handler = SentryHandler(
        "https://pub@sentry.example.com/43", transport=memory, install_sys_hook=False, level="ERROR"
    )
    assert handler.level == logging.ERROR
    assert isinstance(handler.client, Client)
    assert handler.client.remote.project == "43"
    with pytest.raises(ValueError, match="Client instance or a DSN"):
        SentryHandler(5)


def test_handler_ignores_sdk_loggers_and_never_raises() -> None:
    client, memory = make()
    handler = SentryHandler(client)
    for name in ("tripwire.errors", "raven.base", "sentry.errors"):
        handler.handle(logging.LogRecord(name, logging.ERROR, __file__, 1, "x", (), None))
    bad = logging.LogRecord("app", logging.ERROR, __file__, 1, "%d", ("not a number",), None)
    handler.handle(bad)  # a broken format string is sent unformatted
    assert [e["logentry"]["formatted"] for e in memory.events] == ["%d"]


def test_handler_no_recursion_when_a_processor_logs(app_logger: logging.Logger) -> None:
    class Chatty:
        def process(self, data: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
            app_logger.error("logged from inside the pipeline")
            return data

    client, memory = make(processors=[Chatty()])
    app_logger.addHandler(SentryHandler(client))
    app_logger.error("outer")
    assert [e["logentry"]["formatted"] for e in memory.events] == ["outer"]


def test_setup_logging(clean_logging: None) -> None:
    client, memory = make()
    handler = SentryHandler(client)
    assert setup_logging(handler) is True
    assert setup_logging(handler) is False
    assert setup_logging(SentryHandler(client)) is False
    assert handler in logging.getLogger().handlers
    for name in EXCLUDE_LOGGER_DEFAULTS:
        assert logging.getLogger(name).propagate is False
    logging.getLogger("raventest.root").error("to the root")
    logging.getLogger("gunicorn").error("excluded")
    assert [e["logentry"]["formatted"] for e in memory.events] == ["to the root"]


# -- breadcrumbs ------------------------------------------------------------------------------


def test_logging_hook_records_breadcrumbs(app_logger: logging.Logger) -> None:
    client, memory = make()
    app_logger.info("step %d", 1, extra={"order": 5})
    app_logger.debug("debug too")
    logging.getLogger("tripwire.errors").warning("the SDK's own logger is left out")
    client.captureMessage("m")
    values = crumbs(memory.events[0])
    assert [(c["message"], c["level"], c["category"]) for c in values] == [
        ("step 1", "info", "raventest.app"),
        ("debug too", "debug", "raventest.app"),
    ]
    assert values[0]["data"] == {"order": 5}
    assert values[0]["timestamp"].endswith("Z")


def test_ignore_logger_and_special_handlers(app_logger: logging.Logger) -> None:
    client, memory = make()
    raven_breadcrumbs.ignore_logger("raventest.noisy")
    raven_breadcrumbs.ignore_logger(logging.getLogger("raventest.some"), allow_level=logging.ERROR)
    seen: list[Any] = []

    def special(log: logging.Logger, level: int, msg: Any, args: Any, kwargs: Any) -> bool:
        seen.append((log.name, level, msg))
        return True

    raven_breadcrumbs.register_special_log_handler("raventest.special", special)
    try:
        logging.getLogger("raventest.noisy").error("dropped")
        logging.getLogger("raventest.some").warning("dropped too")
        logging.getLogger("raventest.some").error("allowed")
        logging.getLogger("raventest.special").error("handled by callback")
        client.captureMessage("m")
    finally:
        raven_breadcrumbs._ignored.clear()
        raven_breadcrumbs._special.clear()
    assert [c["message"] for c in crumbs(memory.events[0])] == ["allowed"]
    assert seen == [("raventest.special", logging.ERROR, "handled by callback")]


def test_record_goes_to_active_contexts_only() -> None:
    client, memory = make()
    standalone = Context()
    raven_breadcrumbs.record(message="before activation")
    standalone.activate()
    raven_breadcrumbs.record(message="both", category="c", data={"k": 1}, level="warning")
    other_thread: list[Any] = []

    def worker() -> None:
        raven_breadcrumbs.record(message="from a thread nobody activated")
        other_thread.append(client.context.breadcrumbs.get_buffer())

    thread = threading.Thread(target=worker)
    thread.start()
    thread.join()
    assert [c["message"] for c in standalone.breadcrumbs.get_buffer()] == ["both"]
    assert other_thread == [[]]
    client.captureMessage("m")
    values = crumbs(memory.events[0])
    assert [c["message"] for c in values] == ["before activation", "both"]
    assert values[1] == {
        "type": "default",
        "timestamp": values[1]["timestamp"],
        "level": "warning",
        "message": "both",
        "category": "c",
        "data": {"k": 1},
    }
    standalone.deactivate()


def test_capture_breadcrumb_and_processor() -> None:
    client, memory = make()

    def processor(crumb: dict[str, Any]) -> None:
        crumb["data"] = {"processed": True}

    client.captureBreadcrumb("clicked", category="ui.click", type="user", level="info")
    client.capture_breadcrumb(message="lazy", processor=processor)
    client.captureMessage("m")
    values = crumbs(memory.events[0])
    assert values[0]["type"] == "user" and values[0]["category"] == "ui.click"
    assert values[1]["data"] == {"processed": True}


def test_breadcrumbs_disabled() -> None:
    client, memory = make(enable_breadcrumbs=False)
    client.captureBreadcrumb(message="kept nowhere")
    raven_breadcrumbs.record(message="nor here")
    client.captureMessage("m")
    assert crumbs(memory.events[0]) == []


def test_without_logging_hook_no_log_breadcrumbs(app_logger: logging.Logger) -> None:
    client, memory = make(install_logging_hook=False)
    app_logger.warning("not a breadcrumb")
    client.captureMessage("m")
    assert crumbs(memory.events[0]) == []


def test_breadcrumb_buffer_limits() -> None:
    buffer = BreadcrumbBuffer(limit=2, message_max_length=5)
    for text in ("first", "second", "third-long"):
        buffer.record(message=text, timestamp=1.5)
    assert [c["message"] for c in buffer.get_buffer()] == ["secon", "third"]
    assert buffer.get_buffer()[0]["timestamp"] == 1.5
    buffer.clear()
    assert buffer.get_buffer() == []
    blackhole = make_buffer(enabled=False)
    blackhole.record(message="x")
    assert blackhole.get_buffer() == []
