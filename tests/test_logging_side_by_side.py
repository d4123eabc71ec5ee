"""`logging` and `sentry_sdk.logger` on tripwire and on sentry_sdk 2.75, side by side.

Each scenario runs in a fresh interpreter (sentry_sdk's logging integration patches
`logging` for the whole process), once on sentry_sdk and once on tripwire through
`tripwire.alias`; the items that reached the transport must match.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from _side_by_side import dumps, events, log_shape, logs, run_both

# A logger at DEBUG that handles its records itself (no lastResort output).
_APP_LOGGER = """
import logging
from sentry_sdk.integrations.logging import LoggingIntegration

app = logging.getLogger("app")
app.setLevel(logging.DEBUG)
app.propagate = False
app.addHandler(logging.NullHandler())


def records():
    app.debug("debug %s", 1)
    app.info("info %s", 2, extra={"request_id": "r-1"})
    app.warning("warning %(n)s", {"n": 3})
    app.error("error")
"""


def _both_logs(script: str, tmp_path: Path) -> tuple[list[Any], list[Any]]:
    theirs, ours = run_both(script, tmp_path)
    assert events(ours) == events(theirs), dumps([events(theirs), events(ours)])
    return [log_shape(log) for log in logs(theirs)], [log_shape(log) for log in logs(ours)]


@pytest.mark.parametrize(
    ("options", "expected_bodies"),
    [
        # sentry_sdk.logger records whatever enable_logs says; `logging` needs it.
        ("", ["hello ada"]),
        ("enable_logs=False", ["hello ada"]),
        ("enable_logs=True", ["hello ada", "info 2", "warning 3", "error"]),
        (
            "enable_logs=True,"
            " integrations=[LoggingIntegration(sentry_logs_level=logging.WARNING)]",
            ["hello ada", "warning 3", "error"],
        ),
        # sentry_logs_level alone does not opt in ...
        ("integrations=[LoggingIntegration(sentry_logs_level=logging.DEBUG)]", ["hello ada"]),
        # ... capture_sentry_logs=True does, and False wins over enable_logs.
        (
            "integrations=[LoggingIntegration(capture_sentry_logs=True)]",
            ["hello ada", "info 2", "warning 3", "error"],
        ),
        (
            "enable_logs=True, integrations=[LoggingIntegration(capture_sentry_logs=False)]",
            ["hello ada"],
        ),
        (
            "enable_logs=True, integrations=[LoggingIntegration(sentry_logs_level=None)]",
            ["hello ada"],
        ),
        ("_experiments={'enable_logs': True}", ["hello ada", "info 2", "warning 3", "error"]),
    ],
)
def test_which_logs_are_sent(options: str, expected_bodies: list[str], tmp_path: Path) -> None:
    script = (
        _APP_LOGGER
        + f"""
sentry_sdk.init(transport=KEEP, release="r1", environment="test", {options})
sentry_sdk.logger.info("hello {{name}}", name="ada")
records()
finish()
"""
    )
    theirs, ours = _both_logs(script, tmp_path)
    assert [log["body"] for log in theirs] == expected_bodies
    assert ours == theirs, dumps([theirs, ours])


def test_logger_templates_attributes_and_levels(tmp_path: Path) -> None:
    script = """
import warnings

with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # 2.75 deprecates send_default_pii
    sentry_sdk.init(transport=KEEP, release="r1", send_default_pii=True)
sentry_sdk.set_user({"id": "u1", "username": "ada", "ip_address": "10.0.0.1"})
sentry_sdk.get_isolation_scope().set_attribute("tenant", "acme")
log = sentry_sdk.logger
log.trace("t {a}", a=1)
log.debug("missing {a} and {b}", a=[1, 2])
log.info("no parameters {x}")
log.warning("attrs only", attributes={"k": (1, 2), "nan": float("nan"), "obj": object})
log.error("bad {", a=1)
log.fatal("params win {x}", x=5, attributes={"sentry.message.parameter.x": "mine"})
log.info("user wins", attributes={"user.id": "me", "tenant": "t2"})
with sentry_sdk.start_transaction(name="tx", sampled=True):
    with sentry_sdk.start_span(op="work"):
        log.info("inside a span")
finish()
"""
    theirs, ours = _both_logs(script, tmp_path)
    assert len(theirs) == 8
    assert ours == theirs, dumps([theirs, ours])


def test_before_send_log(tmp_path: Path) -> None:
    script = (
        _APP_LOGGER
        + """
def before_send_log(log, hint):
    NOTES.append(sorted(log) + [repr(hint)])
    if log["body"] == "drop":
        return None
    if log["body"] == "raise":
        raise RuntimeError("hook failed")
    log["attributes"]["hooked"] = True
    log["body"] = log["body"].upper()
    return log


sentry_sdk.init(transport=KEEP, enable_logs=True, before_send_log=before_send_log)
sentry_sdk.logger.info("keep")
sentry_sdk.logger.info("drop")
sentry_sdk.logger.info("raise")
app.warning("drop")
app.warning("from logging")
finish()
"""
    )
    theirs, ours = run_both(script, tmp_path)
    assert [log["body"] for log in logs(theirs)] == ["KEEP", "FROM LOGGING"]
    assert [log_shape(log) for log in logs(ours)] == [log_shape(log) for log in logs(theirs)]
    assert ours["notes"] == theirs["notes"]


def test_level_names_and_numbers(tmp_path: Path) -> None:
    script = (
        _APP_LOGGER
        + """
for kwargs in (
    {"event_level": "ERROR", "level": "INFO"},
    {"event_level": "WARNING", "level": "DEBUG"},
    {"event_level": "WARN", "level": 15},
    {"event_level": logging.CRITICAL, "level": None},
    {"event_level": None, "level": "INFO"},
    {"event_level": "error"},
    {"level": "info"},
    {"event_level": 1.5},
    {"sentry_logs_level": "nope"},
):
    try:
        LoggingIntegration(**kwargs)
    except Exception as error:
        NOTES.append([repr(kwargs), type(error).__name__, str(error)])
    else:
        NOTES.append([repr(kwargs), "ok"])

sentry_sdk.init(
    transport=KEEP, integrations=[LoggingIntegration(event_level="WARNING", level="DEBUG")]
)
records()
app.critical("critical")
sentry_sdk.capture_message("crumbs")
finish()
"""
    )
    theirs, ours = run_both(script, tmp_path)
    assert ours["notes"] == theirs["notes"]
    assert [note[1] for note in theirs["notes"]] == ["ok"] * 5 + [
        "ValueError",
        "ValueError",
        "TypeError",
        "ValueError",
    ]
    assert len(events(theirs)) == 4
    assert events(ours) == events(theirs), dumps([events(theirs), events(ours)])


def test_event_levels_of_custom_and_notset_records(tmp_path: Path) -> None:
    script = (
        _APP_LOGGER
        + """
logging.addLevelName(25, "NOTICE")
sentry_sdk.init(transport=KEEP, integrations=[LoggingIntegration(event_level=0, level=0)])
app.setLevel(1)
app.log(25, "notice")
app.log(35, "unnamed")
app.log(5, "below debug")
app.log(0, "notset: below the logger's level 1")
finish()
"""
    )
    theirs, ours = run_both(script, tmp_path)
    assert len(events(theirs)) == 3
    assert events(ours) == events(theirs), dumps([events(theirs), events(ours)])


def test_ignore_logger_forms(tmp_path: Path) -> None:
    script = """
import logging
from sentry_sdk.integrations import logging as sentry_logging


def emit(name, text):
    log = logging.getLogger(name)
    log.propagate = False
    log.addHandler(logging.NullHandler())
    log.error(text)


sentry_logging.ignore_logger(" padded ")
sentry_logging.ignore_logger("plain")
sentry_logging.ignore_logger("jobs.*")
sentry_logging._IGNORED_LOGGERS.add("direct")
sentry_logging._IGNORED_LOGGERS |= {"merged"}
sentry_logging.ignore_logger("temporary")
sentry_logging.unignore_logger("temporary")
sentry_logging.ignore_logger_for_sentry_logs("quiet")
NOTES.append(sorted(sentry_logging._IGNORED_LOGGERS))
NOTES.append(sorted(sentry_logging._IGNORED_LOGGERS_SENTRY_LOGS))
sentry_sdk.init(transport=KEEP, enable_logs=True)
for name in (
    "padded", " padded ", "plain", " plain ", "jobs.nightly", " jobs.x ", "jobsx",
    "direct", "merged", "temporary", "quiet", "sentry_sdk.errors", "tripwire.errors",
):
    emit(name, "from [%s]" % name)
finish()
"""
    theirs, ours = run_both(script, tmp_path)
    # The SDK's own logger is named after the SDK; the rest must be the same.
    own = {"sentry_sdk.errors", "tripwire.errors"}
    assert [n for n in ours["notes"][0] if n not in own] == [
        n for n in theirs["notes"][0] if n not in own
    ]
    theirs_events = [e["logentry"]["message"] for e in events(theirs)]
    assert theirs_events == [
        "from [padded]",
        "from [ padded ]",
        "from [jobsx]",
        "from [temporary]",
        "from [quiet]",
        "from [tripwire.errors]",
    ]
    ours_events = [e["logentry"]["message"] for e in events(ours)]
    assert ours_events == [*theirs_events[:-1], "from [sentry_sdk.errors]"]
    assert [log["body"] for log in logs(theirs)] != []
    theirs_logs = [log["body"] for log in logs(theirs)]
    ours_logs = [log["body"] for log in logs(ours)]
    assert "from [quiet]" not in theirs_logs
    assert ours_logs == [
        body.replace("tripwire.errors", "sentry_sdk.errors") for body in theirs_logs
    ]


def test_handlers_added_by_hand(tmp_path: Path) -> None:
    script = """
import logging
from sentry_sdk.integrations.logging import (
    BreadcrumbHandler, EventHandler, SentryHandler, SentryLogsHandler, ignore_logger,
)

log = logging.getLogger("manual")
log.propagate = False
log.setLevel(logging.DEBUG)
log.addHandler(BreadcrumbHandler(level=logging.INFO))
log.addHandler(EventHandler(level="WARNING"))
log.addHandler(SentryLogsHandler())
NOTES.append(SentryHandler is EventHandler)
sentry_sdk.init(transport=KEEP, default_integrations=False)
log.debug("debug")
log.info("info %s", "x", extra={"k": 1})
log.warning("warning")
ignore_logger("manual")
log.error("ignored")
finish()
"""
    theirs, ours = run_both(script, tmp_path)
    assert ours["notes"] == theirs["notes"] == [True]
    assert len(events(theirs)) == 1
    assert events(ours) == events(theirs), dumps([events(theirs), events(ours)])
    # Without enable_logs, a SentryLogsHandler added by hand sends nothing either.
    assert logs(theirs) == logs(ours) == []


def test_public_names_match_sentry_sdk() -> None:
    import sentry_sdk.integrations.logging as theirs
    import sentry_sdk.logger as theirs_logger

    import tripwire.integrations.logging as ours
    import tripwire.logger as ours_logger

    for name in (
        "DEFAULT_LEVEL",
        "DEFAULT_EVENT_LEVEL",
        "LOGGING_TO_EVENT_LEVEL",
        "SEVERITY_TO_OTEL_SEVERITY",
    ):
        assert getattr(ours, name) == getattr(theirs, name), name
    for name in (
        "BreadcrumbHandler",
        "EventHandler",
        "SentryHandler",
        "SentryLogsHandler",
        "LoggingIntegration",
        "ignore_logger",
        "unignore_logger",
        "ignore_logger_for_sentry_logs",
        "unignore_logger_for_sentry_logs",
    ):
        assert callable(getattr(ours, name)), name
    assert issubclass(ours.EventHandler, __import__("logging").Handler)
    assert ours.SentryHandler is ours.EventHandler
    assert isinstance(ours._IGNORED_LOGGERS, set)
    assert isinstance(ours._IGNORED_LOGGERS_SENTRY_LOGS, set)
    assert ours.LoggingIntegration.identifier == theirs.LoggingIntegration.identifier
    assert ours_logger.OTEL_RANGES == theirs_logger.OTEL_RANGES
    for name in ("trace", "debug", "info", "warning", "error", "fatal"):
        assert callable(getattr(ours_logger, name)), name


def test_every_way_of_changing_the_ignore_set_is_seen() -> None:
    import logging

    import tripwire
    from tripwire.integrations.logging import _IGNORED_LOGGERS
    from tripwire.testing import MemoryTransport, reset

    log = logging.getLogger("mutations.app")
    log.propagate = False
    log.addHandler(logging.NullHandler())
    memory = MemoryTransport()
    tripwire.init(transport=memory)
    try:
        sent: list[bool] = []

        def check() -> None:
            before = len(memory.events)
            log.error("x")
            sent.append(len(memory.events) > before)

        _IGNORED_LOGGERS.update(["mutations.*"])
        check()
        _IGNORED_LOGGERS.difference_update(["mutations.*"])
        check()
        _IGNORED_LOGGERS |= {"mut*"}
        check()
        _IGNORED_LOGGERS -= {"mut*"}
        check()
        _IGNORED_LOGGERS.symmetric_difference_update({"*.app"})
        check()
        _IGNORED_LOGGERS ^= {"*.app"}
        check()
        _IGNORED_LOGGERS.add("mutations.ap?")
        check()
        _IGNORED_LOGGERS.remove("mutations.ap?")
        check()
        _IGNORED_LOGGERS.add("[m]utations.app")
        check()
        _IGNORED_LOGGERS.clear()
        check()
        assert sent == [False, True, False, True, False, True, False, True, False, True]
    finally:
        log.handlers.clear()
        log.propagate = True
        reset()
    # reset() restores the defaults in the same set object.
    assert "tripwire.errors" in _IGNORED_LOGGERS
