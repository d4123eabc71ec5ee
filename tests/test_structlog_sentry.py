"""structlog-sentry 2.2.1 on tripwire: the same script on sentry_sdk 2.75 and on tripwire.

structlog-sentry imports ``sentry_sdk`` (Scope, get_isolation_scope, `_IGNORED_LOGGERS`,
`capture_internal_exceptions`, `event_from_exception`). Each scenario runs in a fresh
interpreter, once on the real sentry_sdk and once with `tripwire.alias` installed, and
what reached the transport must be the same (minus ids, times and SDK facts).
"""

from __future__ import annotations

from pathlib import Path

from _lazy import skip_module_without
from _side_by_side import dumps, events, of_type, run, run_both

skip_module_without("structlog_sentry")

# structlog writing to a StringIO; structlog-sentry's processor before the renderer.
_STRUCTLOG_SETUP = """
import io
import logging

import structlog
from structlog_sentry import SentryProcessor

OUTPUT = io.StringIO()


def note(logger, name, event_dict):
    NOTES.append({k: event_dict.get(k) for k in ("event", "sentry")} |
                 {"has_sentry_id": "sentry_id" in event_dict})
    return event_dict


def configure(*processors):
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            *processors,
            note,
            structlog.processors.format_exc_info,
            structlog.processors.KeyValueRenderer(),
        ],
        logger_factory=structlog.PrintLoggerFactory(OUTPUT),
        cache_logger_on_first_use=False,
    )


def boom():
    ledger = {"order": "o-2", "total": 12.5}
    raise ZeroDivisionError("no items to divide by")
"""


def test_typical_setup_sends_the_same_events(tmp_path: Path) -> None:
    script = (
        _STRUCTLOG_SETUP
        + """
sentry_sdk.init(transport=KEEP, release="r1", environment="test")
configure(
    SentryProcessor(
        event_level=logging.ERROR,
        level=logging.INFO,
        tag_keys=["order_id", "region"],
        ignore_loggers=["noisy.*"],
        verbose=True,
    )
)
log = structlog.get_logger()
log.debug("not even a breadcrumb", step=0)
log.info("user logged in", user="ada", attempt=2)
log.warning("slow checkout", ms=512, items=["a", "b"])
log.error("payment failed", order_id="o-1", region="eu", amount=9.5, nested={"k": [1, 2]})
try:
    boom()
except ZeroDivisionError:
    log.exception("checkout crashed", order_id="o-2")
log.bind(logger="noisy.db").error("ignored by the processor's own list")
sentry_sdk.integrations.logging.ignore_logger("billing")
log.bind(logger="billing").error("ignored through sentry_sdk's list")
log.error("skipped on request", sentry_skip=True)
log.bind(logger="shop.cart").critical("cart lost", cart_id=7)
finish()
"""
    )
    theirs, ours = run_both(script, tmp_path)
    assert len(of_type(theirs, "event")) == 3
    assert events(ours) == events(theirs), dumps([events(theirs), events(ours)])
    # structlog-sentry's verbose notes: "sent", "ignored", "skipped" and the event ids.
    assert ours["notes"] == theirs["notes"]
    assert [note["sentry"] for note in theirs["notes"]].count("ignored") == 2


def test_tags_for_all_keys_without_context_and_exc_info_forms(tmp_path: Path) -> None:
    script = (
        _STRUCTLOG_SETUP
        + """
sentry_sdk.init(transport=KEEP, release="r1")
configure(SentryProcessor(event_level=logging.WARNING, as_context=False, tag_keys="__all__"))
log = structlog.get_logger()
sentry_sdk.set_user({"id": "u-1"})
sentry_sdk.set_tag("team", "payments")
log.warning("low stock", sku="A-1", left=3)
try:
    boom()
except ZeroDivisionError as error:
    log.error("given the exception", exc_info=error)
    log.error("given a tuple", exc_info=sys.exc_info())
log.error("exc_info True outside an except block", exc_info=True)
finish()
"""
    )
    theirs, ours = run_both(script, tmp_path)
    # The tuple form carries the exception just sent: the dedupe integration drops it.
    assert len(of_type(theirs, "event")) == 3
    assert events(ours) == events(theirs), dumps([events(theirs), events(ours)])


def test_with_the_logging_integration_and_a_stdlib_logger(tmp_path: Path) -> None:
    # structlog on top of the standard library: the rendered line reaches `logging` too,
    # where the logging integration makes its own breadcrumb / event of it.
    script = """
import logging

import structlog
from sentry_sdk.integrations.logging import LoggingIntegration
from structlog_sentry import SentryProcessor

logging.basicConfig(level=logging.INFO, handlers=[logging.NullHandler()])
sentry_sdk.init(
    transport=KEEP,
    release="r1",
    integrations=[LoggingIntegration(event_level="ERROR", level="INFO")],
)
structlog.configure(
    processors=[
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        SentryProcessor(event_level=logging.ERROR, level=logging.INFO),
        structlog.processors.KeyValueRenderer(key_order=["event"]),
    ],
    logger_factory=structlog.stdlib.LoggerFactory(),
    wrapper_class=structlog.stdlib.BoundLogger,
    cache_logger_on_first_use=False,
)
log = structlog.get_logger("shop")
log.info("opened", user="ada")
log.error("failed", order_id="o-9")
sentry_sdk.integrations.logging.ignore_logger("shop")
log.error("the processor reads sentry_sdk's ignore list")
finish()
"""
    theirs, ours = run_both(script, tmp_path)
    assert len(of_type(theirs, "event")) == 2
    assert events(ours) == events(theirs), dumps([events(theirs), events(ours)])


def test_imports_on_tripwire(tmp_path: Path) -> None:
    found = run(
        """
import tripwire
import tripwire.integrations.logging as tw_logging
import structlog_sentry

assert structlog_sentry._IGNORED_LOGGERS is tw_logging._IGNORED_LOGGERS
assert structlog_sentry.Scope is tripwire.Scope
sentry_sdk.init(transport=KEEP)
finish()
""",
        "tripwire",
        tmp_path,
    )
    assert found["items"] == []
