"""The loguru integration: loguru's real logger, envelopes on a loopback receiver.

The differential test runs one script on sentry_sdk 2.75 and on tripwire, each in
its own interpreter (both add sinks to loguru's global logger).
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _receiver import Receiver
from _side_by_side import run_both
from loguru import logger

import tripwire
from tripwire.integrations.loguru import (
    LoguruBreadcrumbHandler,
    LoguruEventHandler,
    LoguruIntegration,
)
from tripwire.testing import MemoryTransport, reset


def init(**options: Any) -> MemoryTransport:
    integration = options.pop("integration", None) or LoguruIntegration()
    memory = MemoryTransport()
    tripwire.init(
        dsn="http://key@example.com/1",
        transport=memory,
        integrations=[integration],
        default_integrations=False,
        **options,
    )
    return memory


def logs_of(memory: MemoryTransport) -> list[dict[str, Any]]:
    return [log for item in memory.items("log") for log in json.loads(item.get_bytes())["items"]]


def test_levels_become_breadcrumbs_events_and_logs(rx: Receiver) -> None:
    tripwire.init(
        dsn=rx.dsn(),
        integrations=[LoguruIntegration(level=5)],
        default_integrations=False,
        enable_logs=True,
    )
    logger.trace("tracing {}", 1)
    logger.success("done")
    logger.bind(user="ann", n=3).warning("careful {what}", what="x")
    try:
        1 / 0
    except ZeroDivisionError:
        logger.exception("it broke")
    logger.critical("down")
    tripwire.flush()
    events = sorted(rx.events(), key=lambda e: e["timestamp"])  # requests may interleave
    assert [e["level"] for e in events] == ["error", "critical"]
    broke, down = events
    (exception,) = broke["exception"]["values"]
    assert exception["type"] == "ZeroDivisionError"
    assert exception["mechanism"] == {"type": "logging", "handled": True}
    assert broke["logger"] == __name__
    assert " | ERROR    | " in broke["logentry"]["message"]
    assert broke["logentry"]["message"].split(" - ", 1)[1].startswith("it broke\n")
    assert broke["extra"] == {"extra": {}}
    crumbs = down["breadcrumbs"]["values"]
    assert [(c["level"], c["message"].split(" - ")[1][:9]) for c in crumbs] == [
        ("debug", "tracing 1"),
        ("info", "done"),
        ("warning", "careful x"),
        ("error", "it broke\n"),
        ("critical", "down"),  # the breadcrumb sink comes first, as in sentry_sdk
    ]
    assert crumbs[2]["data"] == {"extra": {"user": "ann", "n": 3, "what": "x"}}
    assert all(c["category"] == __name__ and c["type"] == "log" for c in crumbs)
    logs = [log for item in rx.items("log") for log in json.loads(item.get_bytes())["items"]]
    logs.sort(key=lambda log: log["timestamp"])
    # sentry_logs_level stays INFO: no log for TRACE.
    assert [(log["body"], log["level"]) for log in logs] == [
        ("done", "info"),
        ("careful x", "warn"),
        ("it broke", "error"),
        ("down", "fatal"),
    ]
    attributes = logs[1]["attributes"]
    assert attributes["sentry.origin"] == {"value": "auto.log.loguru", "type": "string"}
    assert attributes["sentry.severity_number"]["value"] == 13
    assert attributes["sentry.message.parameter.user"] == {"value": "ann", "type": "string"}
    assert attributes["sentry.message.parameter.n"] == {"value": 3, "type": "integer"}
    assert attributes["logger.name"]["value"] == __name__
    assert (
        attributes["code.function.name"]["value"]
        == "test_levels_become_breadcrumbs_events_and_logs"
    )
    assert logs[0]["attributes"]["sentry.severity_number"]["value"] == 11  # SUCCESS


def test_options_none_and_capture_sentry_logs() -> None:
    memory = init(
        integration=LoguruIntegration(level=None, event_level=None, capture_sentry_logs=True)
    )
    logger.error("only a log")
    tripwire.capture_message("after")
    tripwire.flush()
    (event,) = memory.events
    assert "breadcrumbs" not in event or event["breadcrumbs"]["values"] == []
    assert [log["body"] for log in logs_of(memory)] == ["only a log"]
    reset()
    memory = init(enable_logs=True, integration=LoguruIntegration(capture_sentry_logs=False))
    logger.info("no log")
    tripwire.flush()
    assert logs_of(memory) == []


def test_quiet_without_the_integration_and_reset_removes_the_sinks() -> None:
    before = len(logger._core.handlers)  # type: ignore[attr-defined]
    init()
    assert len(logger._core.handlers) == before + 3  # type: ignore[attr-defined]
    tripwire.get_client().close()
    memory = MemoryTransport()
    tripwire.init(dsn="http://key@example.com/1", transport=memory, default_integrations=False)
    logger.error("nobody listens")
    tripwire.flush()
    assert memory.events == []
    reset()
    assert len(logger._core.handlers) == before  # type: ignore[attr-defined]


def test_handlers_added_by_hand() -> None:
    memory = MemoryTransport()
    tripwire.init(dsn="http://key@example.com/1", transport=memory, default_integrations=False)
    ids = [
        logger.add(LoguruEventHandler(), level="ERROR", format="{message}"),
        logger.add(LoguruBreadcrumbHandler(), level="INFO", format="{message}"),
    ]
    try:
        logger.success("fine")
        logger.error("bad")
    finally:
        for sink in ids:
            logger.remove(sink)
    (event,) = memory.events
    assert (event["level"], event["logentry"]["message"]) == ("error", "bad")
    assert [(c["level"], c["message"]) for c in event["breadcrumbs"]["values"]] == [
        ("info", "fine")
    ]


_SCRIPT = """
from loguru import logger
from sentry_sdk.integrations.loguru import LoguruIntegration

sentry_sdk.init(transport=KEEP, enable_logs=True, default_integrations=False,
                integrations=[LoguruIntegration(level=5)])
logger.level("NOTICE", no=15)
logger.trace("t {}", 1)
logger.log("NOTICE", "custom")
logger.success("ok")
logger.bind(user="x", n=3, obj=object).info("info {a}", a=1)
logger.warning("warn")
try:
    1 / 0
except Exception:
    logger.exception("boom")
logger.level("ALERT", no=45)  # an event, of a level Sentry has no name for
logger.log("ALERT", "alert")
logger.critical("crit")
finish()
"""

_VOLATILE = {"event_id", "timestamp", "sdk", "vars", "time_unix_nano", "trace_id", "span_id"}
_VOLATILE_ATTRIBUTES = {
    "process.pid",
    "thread.id",
    "sentry.sdk.name",
    "sentry.sdk.version",
    "sentry.trace.parent_span_id",
}
_STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}", re.M)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: _plain(v)
            for k, v in value.items()
            if k not in _VOLATILE and k not in _VOLATILE_ATTRIBUTES and k != "os"
        }
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return _STAMP.sub("STAMP", value)
    return value


def test_same_as_sentry_sdk(tmp_path: Path) -> None:
    sentry, ours = run_both(_SCRIPT, tmp_path)
    assert [i["type"] for i in ours["items"]] == [i["type"] for i in sentry["items"]]
    assert _plain(ours["items"]) == _plain(sentry["items"])
    levels = [i["payload"].get("level") for i in ours["items"] if i["type"] == "event"]
    assert levels == ["error", None, "critical"]


@pytest.mark.parametrize("level", [None, 25])
def test_the_last_integration_made_decides(level: Any) -> None:
    LoguruIntegration()
    LoguruIntegration(level=level)
    assert LoguruIntegration.level == level


def test_init_does_not_import_loguru() -> None:
    code = (
        "import sys, tripwire\n"
        "tripwire.init(dsn='http://k@example.com/1', auto_enabling_integrations=True)\n"
        "assert 'loguru' in tripwire.get_client().integrations\n"
        "assert 'loguru' not in sys.modules\n"
        "from loguru import logger\n"
        "names = [h._name for h in logger._core.handlers.values()]\n"
        "assert sum('Loguru' in n or '_logs_sink' in n for n in names) == 3, names\n"
    )
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
