"""The logging integration: real loggers, real records, the JSON that reaches the transport."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from typing import Any

import pytest

import tripwire
from tripwire.integrations.logging import (
    BreadcrumbHandler,
    EventHandler,
    LoggingIntegration,
    SentryLogsHandler,
    ignore_logger,
    ignore_logger_for_sentry_logs,
    unignore_logger,
)
from tripwire.testing import MemoryTransport, reset


@pytest.fixture(autouse=True)
def _reset_sdk() -> Iterator[None]:
    yield
    reset()


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    """A real logger at DEBUG with no handlers of its own (records reach lastResort)."""
    log = logging.getLogger("tests.tripwire.app")
    log.setLevel(logging.DEBUG)
    log.propagate = False
    # Keep lastResort's stderr output out of the test run.
    log.addHandler(logging.NullHandler())
    yield log
    log.handlers.clear()
    log.setLevel(logging.NOTSET)
    log.propagate = True


def init(**options: Any) -> MemoryTransport:
    memory = MemoryTransport()
    tripwire.init(transport=memory, **options)
    return memory


def logs(memory: MemoryTransport) -> list[dict[str, Any]]:
    tripwire.flush()
    found: list[dict[str, Any]] = []
    for item in memory.items("log"):
        found.extend(json.loads(item.get_bytes())["items"])
    return found


def attrs(log: dict[str, Any]) -> dict[str, Any]:
    return {key: value["value"] for key, value in log["attributes"].items()}


# -- events and breadcrumbs ----------------------------------------------------------------


def test_error_record_becomes_an_event_with_logentry(logger: logging.Logger) -> None:
    memory = init()
    logger.error("user %s failed %d times", "ada", 3, extra={"request_id": "r-1"})

    (event,) = memory.events
    assert event["level"] == "error"
    assert event["logger"] == "tests.tripwire.app"
    assert event["logentry"] == {
        "message": "user %s failed %d times",
        "formatted": "user ada failed 3 times",
        "params": ["ada", 3],
    }
    assert event["extra"]["request_id"] == "r-1"
    assert "exception" not in event


def test_dict_args_and_non_string_messages(logger: logging.Logger) -> None:
    memory = init()
    logger.error("%(who)s left", {"who": "bob"})
    logger.error(42)

    first, second = memory.events
    assert first["logentry"] == {
        "message": "%(who)s left",
        "formatted": "bob left",
        "params": {"who": "bob"},
    }
    assert second["logentry"] == {"message": "42", "formatted": "42", "params": []}


def test_exception_record_becomes_an_exception_event(logger: logging.Logger) -> None:
    memory = init()
    lookup: dict[str, str] = {}
    try:
        lookup["missing"]
    except KeyError:
        logger.exception("lookup failed")
    try:
        raise ValueError("bad")
    except ValueError:
        logger.critical("giving up", exc_info=True)

    first, second = memory.events
    (value,) = first["exception"]["values"]
    assert value["type"] == "KeyError"
    assert value["mechanism"] == {"type": "logging", "handled": True}
    assert value["stacktrace"]["frames"][-1]["function"] == (
        "test_exception_record_becomes_an_exception_event"
    )
    assert first["level"] == "error"
    assert first["logentry"]["formatted"] == "lookup failed"
    assert second["level"] == "fatal"
    assert second["exception"]["values"][0]["type"] == "ValueError"


def test_stack_info_or_exc_info_without_exception_attach_the_stack(
    logger: logging.Logger,
) -> None:
    memory = init()
    logger.error("with stack", stack_info=True)
    logger.error("nothing raised", exc_info=True)

    for event in memory.events:
        (thread,) = event["threads"]["values"]
        assert thread["crashed"] is False
        assert thread["current"] is True
        functions = [frame["function"] for frame in thread["stacktrace"]["frames"]]
        assert "test_stack_info_or_exc_info_without_exception_attach_the_stack" in functions
        assert "exception" not in event


def test_records_become_breadcrumbs_after_their_own_event(logger: logging.Logger) -> None:
    memory = init()
    logger.debug("too low")
    logger.info("step %d", 1, extra={"user": "ada"})
    logger.warning("careful")
    logger.error("first error")
    logger.error("second error")

    first, second = memory.events
    crumbs = first["breadcrumbs"]["values"]
    assert [c["message"] for c in crumbs] == ["step 1", "careful"]
    assert crumbs[0]["type"] == "log"
    assert crumbs[0]["level"] == "info"
    assert crumbs[0]["category"] == "tests.tripwire.app"
    assert crumbs[0]["data"] == {"user": "ada"}
    assert crumbs[1]["level"] == "warning"
    assert crumbs[1]["timestamp"].endswith("Z")
    # An error record is a breadcrumb too, recorded after its own event.
    assert [c["message"] for c in second["breadcrumbs"]["values"]][-1] == "first error"


def test_custom_levels(logger: logging.Logger) -> None:
    memory = init()
    logger.log(25, "between info and warning")
    logger.log(45, "between error and critical")

    (event,) = memory.events
    assert "level" not in event  # sentry_sdk leaves unknown levels to the server
    assert event["breadcrumbs"]["values"][0]["level"] == "level 25"


def test_configured_levels(logger: logging.Logger) -> None:
    memory = init(integrations=[LoggingIntegration(level=logging.WARNING, event_level=None)])
    logger.info("no crumb")
    logger.warning("crumb")
    logger.critical("no event either")
    tripwire.capture_message("probe")

    (event,) = memory.events
    assert [c["message"] for c in event["breadcrumbs"]["values"]] == [
        "crumb",
        "no event either",
    ]


def test_loggers_that_do_not_propagate_are_captured(logger: logging.Logger) -> None:
    memory = init()
    assert logger.propagate is False
    logging.getLogger("tests.tripwire.app.child").error("from a child")

    (event,) = memory.events
    assert event["logger"] == "tests.tripwire.app.child"


def test_ignore_logger(logger: logging.Logger) -> None:
    memory = init(enable_logs=True)
    ignore_logger("tests.tripwire.app")
    ignore_logger("tests.tripwire.app.noisy.*")
    logger.error("ignored")
    logging.getLogger("tests.tripwire.app.noisy.db").error("ignored by pattern")
    logging.getLogger("tests.tripwire.app.other").error("kept")
    unignore_logger("tests.tripwire.app")
    logger.error("kept again")

    assert [e["logentry"]["message"] for e in memory.events] == ["kept", "kept again"]
    # Structured logs have their own list: ignore_logger does not touch them.
    assert "ignored" in [log["body"] for log in logs(memory)]


def test_ignore_logger_for_sentry_logs_only(logger: logging.Logger) -> None:
    memory = init(enable_logs=True)
    ignore_logger_for_sentry_logs("tests.tripwire.app")
    logger.error("event but no log")

    assert len(memory.events) == 1
    assert logs(memory) == []


def test_sdk_own_logger_is_never_captured() -> None:
    memory = init(enable_logs=True)
    own = logging.getLogger("tripwire.errors")
    own.error("internal problem")
    tripwire.capture_message("probe")

    (event,) = memory.events
    assert event["message"] == "probe"
    assert event["breadcrumbs"]["values"] == []
    assert logs(memory) == []


def test_logging_inside_before_send_does_not_recurse(logger: logging.Logger) -> None:
    seen: list[str] = []

    def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        seen.append(event["logentry"]["message"])
        logger.error("logged from before_send")
        return event

    memory = init(before_send=before_send, enable_logs=True)
    logger.error("original")

    assert seen == ["original"]
    assert [e["logentry"]["message"] for e in memory.events] == ["original"]
    assert [log["body"] for log in logs(memory)] == ["original"]


def test_repr_that_logs_does_not_recurse(logger: logging.Logger) -> None:
    class Chatty:
        def __repr__(self) -> str:
            logger.error("repr called")
            return "<Chatty>"

    memory = init(enable_logs=True)
    logger.error("with a chatty extra", extra={"obj": Chatty()})

    (event,) = memory.events
    assert event["extra"]["obj"] == "<Chatty>"
    (log,) = logs(memory)
    assert attrs(log)["obj"] == "<Chatty>"


def test_bad_format_arguments_do_not_raise(
    logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    # pytest's capture handler re-raises formatting errors; production handlers do not.
    monkeypatch.setattr(logging, "raiseExceptions", False)
    memory = init(enable_logs=True)
    logger.error("needs a number: %d", "not a number")
    tripwire.capture_message("after")

    # As sentry_sdk 2.75: a record that cannot be formatted is neither an event, a
    # breadcrumb nor a log.
    (event,) = memory.events
    assert event["message"] == "after"
    assert event.get("breadcrumbs", {"values": []})["values"] == []
    assert logs(memory) == []


def test_no_capture_without_client_or_when_disabled(logger: logging.Logger) -> None:
    logger.error("before init")  # no client: nothing happens, nothing raises
    memory = init(disabled_integrations=[LoggingIntegration])
    logger.error("integration disabled")
    assert memory.events == []


def test_reset_restores_logging() -> None:
    original = logging.Logger.callHandlers
    init()
    assert logging.Logger.callHandlers is not original
    reset()
    assert logging.Logger.callHandlers is original


def test_concurrent_logging_from_threads(logger: logging.Logger) -> None:
    memory = init(enable_logs=True)
    start = threading.Barrier(8)

    def work(n: int) -> None:
        start.wait()
        for i in range(25):
            logger.error("thread %d record %d", n, i)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(memory.events) == 200
    assert len(logs(memory)) == 200


def test_handlers_work_without_the_integration() -> None:
    memory = init(default_integrations=False, enable_logs=True)
    log = logging.getLogger("tests.tripwire.handlers")
    log.propagate = False
    log.setLevel(logging.DEBUG)
    handlers = [
        EventHandler(level=logging.WARNING),
        BreadcrumbHandler(level=logging.DEBUG),
        SentryLogsHandler(level=logging.INFO),
    ]
    try:
        for handler in handlers:
            log.addHandler(handler)
        log.debug("d")
        log.warning("w")
    finally:
        for handler in handlers:
            log.removeHandler(handler)

    (event,) = memory.events
    assert event["logentry"]["message"] == "w"
    assert event["level"] == "warning"
    assert [c["message"] for c in event["breadcrumbs"]["values"]] == ["d"]
    assert [log["body"] for log in logs(memory)] == ["w"]


# -- structured logs from records --------------------------------------------------------------


def test_records_become_structured_logs(logger: logging.Logger) -> None:
    memory = init(enable_logs=True, release="1.0", environment="test", server_name="host")
    logger.debug("below sentry_logs_level")
    logger.info("hello %s, %d", "ada", 3, extra={"tags_list": [1, 2], "pair": (1, 2)})
    logger.warning("%(who)s", {"who": "bob", "ids": [1]})

    first, second = logs(memory)
    assert first["level"] == "info"
    assert first["body"] == "hello ada, 3"
    values = attrs(first)
    assert values["sentry.origin"] == "auto.log.stdlib"
    assert values["sentry.message.template"] == "hello %s, %d"
    assert values["sentry.message.parameter.0"] == "ada"
    assert values["sentry.message.parameter.1"] == 3
    assert values["logger.name"] == "tests.tripwire.app"
    assert values["code.function.name"] == "test_records_become_structured_logs"
    assert values["thread.name"] == threading.current_thread().name
    assert values["sentry.release"] == "1.0"
    assert values["sentry.environment"] == "test"
    assert values["server.address"] == "host"
    assert first["attributes"]["tags_list"] == {"value": [1, 2], "type": "array"}
    assert first["attributes"]["pair"] == {"value": "(1, 2)", "type": "string"}
    assert second["level"] == "warn"
    assert attrs(second)["sentry.message.parameter.ids"] == "[1]"
    assert attrs(second)["sentry.severity_number"] == 13


@pytest.mark.parametrize(
    ("levelno", "text", "number"),
    [
        (5, "default", 0),
        (logging.DEBUG, "debug", 5),
        (15, "debug", 5),
        (logging.INFO, "info", 9),
        (35, "warn", 13),
        (logging.ERROR, "error", 17),
        (logging.CRITICAL, "fatal", 21),
        (70, "fatal", 21),
    ],
)
def test_log_severity_of_levels(
    logger: logging.Logger, levelno: int, text: str, number: int
) -> None:
    memory = init(
        enable_logs=True,
        integrations=[LoggingIntegration(sentry_logs_level=1, level=None, event_level=None)],
    )
    logger.setLevel(1)
    logger.log(levelno, "x")

    (log,) = logs(memory)
    assert (log["level"], attrs(log)["sentry.severity_number"]) == (text, number)


def test_structured_logs_need_enable_logs_and_can_be_turned_off(logger: logging.Logger) -> None:
    memory = init()
    logger.error("no logs without enable_logs")
    assert logs(memory) == []
    reset()
    memory = init(enable_logs=True, integrations=[LoggingIntegration(capture_sentry_logs=False)])
    logger.error("turned off")
    assert logs(memory) == []
    reset()
    memory = init(enable_logs=True, integrations=[LoggingIntegration(sentry_logs_level=None)])
    logger.error("turned off too")
    assert logs(memory) == []


# -- differential: the same records through sentry-sdk 2.75 --------------------------------------


def _records() -> list[logging.LogRecord]:
    log = logging.getLogger("tests.diff")
    records = [
        log.makeRecord("tests.diff", logging.ERROR, "app.py", 10, "plain", (), None),
        log.makeRecord(
            "tests.diff",
            logging.ERROR,
            "app.py",
            11,
            "hi %s #%d",
            ("ada", 3),
            None,
            extra={"request_id": "r1", "n": 2, "nested": {"a": [1, 2]}},
        ),
        log.makeRecord("tests.diff", logging.CRITICAL, "app.py", 12, "%(a)s", ({"a": 1},), None),
        log.makeRecord("tests.diff", logging.ERROR, "app.py", 13, 42, (), None),
        log.makeRecord("tests.diff", 45, "app.py", 14, "custom", (), None),
    ]
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        records.append(
            log.makeRecord("tests.diff", logging.ERROR, "app.py", 15, "failed", (), sys.exc_info())
        )
    return records


def _event_shape(event: dict[str, Any]) -> dict[str, Any]:
    extra = {k: v for k, v in (event.get("extra") or {}).items() if k != "sys.argv"}
    shape: dict[str, Any] = {
        "level": event.get("level"),
        "logger": event.get("logger"),
        "logentry": event.get("logentry"),
        "extra": extra,
    }
    if "exception" in event:
        shape["exception"] = [
            {k: v[k] for k in ("type", "value", "mechanism")} for v in event["exception"]["values"]
        ]
    return shape


def test_event_shape_matches_sentry_sdk() -> None:
    from _sample_sentry import sentry_client
    from sentry_sdk.integrations.logging import EventHandler as SentryEventHandler

    records = _records()
    with sentry_client() as captured:
        handler = SentryEventHandler()
        for record in records:
            handler.handle(record)
    theirs: list[dict[str, Any]] = []
    for raw in captured.raw:
        for line in raw.split(b"\n"):
            try:
                item = json.loads(line)
            except ValueError:
                continue
            if isinstance(item, dict) and "logentry" in item:
                theirs.append(_event_shape(item))

    memory = init()
    for record in records:
        logging.getLogger(record.name).handle(record)
    ours = [_event_shape(event) for event in memory.events]

    assert ours == theirs
    assert len(ours) == len(records)


def _log_shape(log: dict[str, Any]) -> dict[str, Any]:
    volatile = {
        "sentry.sdk.name",
        "sentry.sdk.version",
        "server.address",
        "sentry.release",
    }
    return {
        "level": log["level"],
        "body": log["body"],
        "timestamp": log["timestamp"],
        # Attribute order is part of what the server stores: compare it too.
        "attributes": [(k, v) for k, v in log["attributes"].items() if k not in volatile],
    }


def test_log_payload_matches_sentry_sdk() -> None:
    from _sample_sentry import sentry_client
    from sentry_sdk.integrations.logging import SentryLogsHandler as SentryLogs

    records = _records()
    with sentry_client(enable_logs=True) as captured:
        handler = SentryLogs()
        for record in records:
            handler.handle(record)
        import sentry_sdk

        sentry_sdk.flush()
    theirs: list[dict[str, Any]] = []
    for raw in captured.raw:
        lines = raw.split(b"\n")
        for header, payload in zip(lines[1::2], lines[2::2]):
            if json.loads(header).get("type") == "log":
                theirs.extend(_log_shape(log) for log in json.loads(payload)["items"])

    memory = init(enable_logs=True)
    for record in records:
        logging.getLogger(record.name).handle(record)
    ours = [_log_shape(log) for log in logs(memory)]

    assert ours == theirs
    assert len(ours) == len(records)


def test_broken_extras_never_break_the_caller(
    logger: logging.Logger, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(logging, "raiseExceptions", False)  # see test_bad_format_arguments

    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

        def __str__(self) -> str:
            raise RuntimeError("no str")

    memory = init(enable_logs=True)
    logger.error("with a broken extra", extra={"broken": Broken()})
    logger.error(Broken())

    # A message that cannot be made a string is not captured (as sentry_sdk 2.75).
    (first,) = memory.events
    assert first["logentry"]["formatted"] == "with a broken extra"
    assert "broken" in first["extra"]
    assert len(logs(memory)) == 1


def test_before_send_that_raises_does_not_reach_the_caller(logger: logging.Logger) -> None:
    def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("bug in hook")

    memory = init(before_send=before_send)
    logger.error("still fine")
    assert memory.events == []
