"""Structured logs (`tripwire.logger`) and the batcher that sends them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

import tripwire
from tripwire._batcher import Batcher
from tripwire._json import dumps
from tripwire.envelope import Envelope
from tripwire.logger import format_attribute, wire_form
from tripwire.outcomes import DataCategory
from tripwire.testing import MemoryTransport, frozen_clock, reset


@pytest.fixture(autouse=True)
def _reset_sdk() -> Iterator[None]:
    yield
    reset()


def init(**options: Any) -> MemoryTransport:
    memory = MemoryTransport()
    tripwire.init(transport=memory, **options)
    return memory


def log_items(memory: MemoryTransport) -> list[Any]:
    tripwire.flush()
    return memory.items("log")


def logs(memory: MemoryTransport) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for item in log_items(memory):
        found.extend(json.loads(item.get_bytes())["items"])
    return found


def attrs(log: dict[str, Any]) -> dict[str, Any]:
    return {key: value["value"] for key, value in log["attributes"].items()}


def test_logger_records_whatever_enable_logs_says() -> None:
    # As sentry_sdk 2.75: enable_logs only concerns records of `logging`.
    tripwire.logger.info("before init")
    memory = init(enable_logs=False)
    tripwire.logger.info("not enabled")
    assert [log["body"] for log in logs(memory)] == ["not enabled"]


def test_log_item_and_payload() -> None:
    frozen_clock(1_700_000_000.5)
    memory = init(enable_logs=True, release="1.2", environment="staging", server_name="web-1")
    tripwire.logger.info("Hello {name}, you have {count} new", name="Ada", count=3)

    (item,) = log_items(memory)
    assert item.headers["type"] == "log"
    assert item.headers["content_type"] == "application/vnd.sentry.items.log+json"
    assert item.headers["item_count"] == 1
    payload = json.loads(item.get_bytes())
    assert payload["version"] == 2
    (log,) = payload["items"]
    trace_id = tripwire.get_current_scope().get_active_propagation_context().trace_id
    assert log["trace_id"] == trace_id
    assert "span_id" not in log
    assert log["timestamp"] == 1_700_000_000.5
    assert log["level"] == "info"
    assert log["body"] == "Hello Ada, you have 3 new"
    assert log["attributes"] == {
        "sentry.message.parameter.name": {"value": "Ada", "type": "string"},
        "sentry.message.parameter.count": {"value": 3, "type": "integer"},
        "sentry.message.template": {
            "value": "Hello {name}, you have {count} new",
            "type": "string",
        },
        "sentry.sdk.name": {"value": "tripwire.python", "type": "string"},
        "sentry.sdk.version": {"value": tripwire.VERSION, "type": "string"},
        "process.runtime.name": {
            "value": log["attributes"]["process.runtime.name"]["value"],
            "type": "string",
        },
        "process.runtime.version": {"value": "%d.%d.%d" % sys.version_info[:3], "type": "string"},
        "server.address": {"value": "web-1", "type": "string"},
        "sentry.environment": {"value": "staging", "type": "string"},
        "sentry.release": {"value": "1.2", "type": "string"},
        "sentry.severity_number": {"value": 9, "type": "integer"},
        "sentry.severity_text": {"value": "info", "type": "string"},
    }


@pytest.mark.parametrize(
    ("name", "level", "number"),
    [
        ("trace", "trace", 1),
        ("debug", "debug", 5),
        ("info", "info", 9),
        ("warning", "warn", 13),
        ("error", "error", 17),
        ("fatal", "fatal", 21),
    ],
)
def test_levels(name: str, level: str, number: int) -> None:
    memory = init(enable_logs=True)
    getattr(tripwire.logger, name)("message")
    (log,) = logs(memory)
    assert log["level"] == level
    assert attrs(log)["sentry.severity_number"] == number
    assert attrs(log)["sentry.severity_text"] == level
    # No parameters: the body is the template, unformatted, and no template attribute.
    assert "sentry.message.template" not in attrs(log)


def test_template_edge_cases() -> None:
    memory = init(enable_logs=True)
    tripwire.logger.info("braces {0} stay without arguments")
    tripwire.logger.info("missing {key}", other=1)
    tripwire.logger.info("positional {} and {}", "a", 2)

    first, second, third = logs(memory)
    assert first["body"] == "braces {0} stay without arguments"
    assert second["body"] == "missing {key}"
    assert attrs(second)["sentry.message.parameter.other"] == 1
    assert third["body"] == "positional a and 2"
    assert attrs(third)["sentry.message.parameter.0"] == "a"
    assert attrs(third)["sentry.message.parameter.1"] == 2


def test_attribute_types() -> None:
    class Thing:
        def __repr__(self) -> str:
            return "<Thing>"

    memory = init(enable_logs=True)
    tripwire.logger.warning(
        "typed",
        attributes={
            "s": "x",
            "b": True,
            "i": 7,
            "f": 1.5,
            "none": None,
            "obj": Thing(),
            "strs": ["a", "b"],
            "ints": (1, 2),
            "mixed": [1, "a"],
            "int_and_bool": [1, True],
            "empty": [],
            "dict": {"a": 1},
        },
    )
    (log,) = logs(memory)
    a = log["attributes"]
    assert a["s"] == {"value": "x", "type": "string"}
    assert a["b"] == {"value": True, "type": "boolean"}
    assert a["i"] == {"value": 7, "type": "integer"}
    assert a["f"] == {"value": 1.5, "type": "double"}
    assert a["none"] == {"value": "None", "type": "string"}
    assert a["obj"] == {"value": "<Thing>", "type": "string"}
    assert a["strs"] == {"value": ["a", "b"], "type": "array"}
    assert a["ints"] == {"value": [1, 2], "type": "array"}
    assert a["mixed"] == {"value": "[1, 'a']", "type": "string"}
    assert a["int_and_bool"] == {"value": "[1, True]", "type": "string"}
    assert a["empty"] == {"value": [], "type": "array"}
    assert a["dict"] == {"value": "{'a': 1}", "type": "string"}


@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text() | st.binary(),
        lambda inner: st.lists(inner) | st.tuples(inner) | st.dictionaries(st.text(), inner),
        max_leaves=8,
    )
)
def test_any_attribute_value_becomes_one_of_the_wire_types(value: object) -> None:
    formatted = format_attribute(value)
    wired = wire_form({"severity_text": "info", "body": "b", "attributes": {"k": value}})
    assert wired is not None
    typed = wired["attributes"]["k"]
    assert typed["type"] in {"string", "boolean", "integer", "double", "array"}
    assert typed["value"] == formatted or formatted != formatted  # NaN never equals itself
    if typed["type"] == "array":
        assert len({type(v) for v in typed["value"]}) <= 1
    dumps(wired)  # always encodable


def test_broken_repr_never_raises() -> None:
    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    memory = init(enable_logs=True)
    tripwire.logger.info("x {b}", b=Broken(), attributes={"broken": Broken()})
    tripwire.logger.info(Broken())  # type: ignore[arg-type]
    first, second = logs(memory)
    assert attrs(first)["broken"] == "<broken repr>"
    assert second["body"] == "<broken repr>"


def test_scope_attributes_user_and_precedence() -> None:
    memory = init(enable_logs=True, send_default_pii=True)
    tripwire.get_global_scope().set_attribute("region", "eu")
    tripwire.get_isolation_scope().set_attribute("tenant", "acme")
    tripwire.get_current_scope().set_attribute("shared", "scope")
    tripwire.set_user(
        {"id": "42", "username": "ada", "email": "ada@example.com", "ip_address": "1.2.3.4"}
    )
    tripwire.logger.info("x", attributes={"shared": "call", "sentry.environment": "mine"})

    (log,) = logs(memory)
    values = attrs(log)
    assert values["region"] == "eu"
    assert values["tenant"] == "acme"
    assert values["shared"] == "call"
    assert values["sentry.environment"] == "mine"
    assert values["user.id"] == "42"
    assert values["user.name"] == "ada"
    assert values["user.email"] == "ada@example.com"
    assert values["user.ip_address"] == "1.2.3.4"


def test_user_attributes_need_send_default_pii() -> None:
    memory = init(enable_logs=True)
    tripwire.set_user({"id": "42", "email": "ada@example.com"})
    tripwire.logger.info("x")
    (log,) = logs(memory)
    assert not any(key.startswith("user.") for key in attrs(log))


def test_before_send_log_can_change_and_drop() -> None:
    seen: list[tuple[dict[str, Any], dict[str, Any]]] = []

    def before_send_log(log: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any] | None:
        seen.append((dict(log), hint))
        if log["body"] == "drop me":
            return None
        log["attributes"]["added"] = "yes"
        log["body"] = log["body"].upper()
        return log

    memory = init(enable_logs=True, before_send_log=before_send_log)
    tripwire.logger.error("keep me")
    tripwire.logger.error("drop me")

    (log,) = logs(memory)
    assert log["body"] == "KEEP ME"
    assert attrs(log)["added"] == "yes"
    first, _ = seen
    assert set(first[0]) == {
        "severity_text",
        "severity_number",
        "attributes",
        "body",
        "time_unix_nano",
        "trace_id",
        "span_id",
    }
    assert first[1] == {}
    assert tripwire.get_client().outcomes.snapshot() == {("before_send", "log_item"): 1}


def test_before_send_log_that_raises_drops_the_log() -> None:
    def broken(log: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        raise ValueError("bug in hook")

    memory = init(enable_logs=True, before_send_log=broken)
    tripwire.logger.info("x")
    assert logs(memory) == []


def test_experiments_flags_still_work() -> None:
    memory = init(
        _experiments={
            "enable_logs": True,
            "before_send_log": lambda log, hint: {**log, "body": "via experiments"},
        }
    )
    tripwire.logger.info("x")
    assert [log["body"] for log in logs(memory)] == ["via experiments"]


def test_logs_are_batched_into_one_envelope() -> None:
    memory = init(enable_logs=True)
    for i in range(30):
        tripwire.logger.info("n{i}", i=i)
    assert memory.items("log") == []  # held by the batcher until a flush
    (item,) = log_items(memory)
    assert item.headers["item_count"] == 30
    assert [log["body"] for log in json.loads(item.get_bytes())["items"]] == [
        f"n{i}" for i in range(30)
    ]


def test_close_sends_pending_logs_and_later_logs_are_dropped() -> None:
    memory = init(enable_logs=True)
    tripwire.logger.info("pending")
    tripwire.get_client().close()
    assert [json.loads(i.get_bytes())["items"][0]["body"] for i in memory.items("log")] == [
        "pending"
    ]
    tripwire.logger.info("after close")
    assert len(memory.items("log")) == 1


def test_logs_from_many_threads() -> None:
    memory = init(enable_logs=True)

    def work(n: int) -> None:
        for i in range(50):
            tripwire.logger.info("t{n} {i}", n=n, i=i)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(logs(memory)) == 300


# -- the batcher --------------------------------------------------------------------------------


class _Signalling(MemoryTransport):
    def __init__(self) -> None:
        super().__init__()
        self.sent = threading.Event()

    def capture_envelope(self, envelope: Envelope) -> None:
        super().capture_envelope(envelope)
        self.sent.set()


def _build(items: list[int]) -> Envelope:
    from tripwire.envelope import Item, PayloadRef

    envelope = Envelope()
    envelope.add_item(Item(payload=PayloadRef(json=items), type="log"))
    return envelope


def test_batcher_flusher_thread_sends_when_full() -> None:
    transport = _Signalling()
    tripwire.init(transport=transport)
    batcher: Batcher[int] = Batcher(
        tripwire.get_client(), _build, DataCategory.LOG_ITEM, flush_size=10, interval=3600
    )
    for i in range(9):
        batcher.add(i)
    assert transport.raw == []
    batcher.add(9)  # reaching flush_size wakes the flusher thread
    assert transport.sent.wait(timeout=10)
    assert json.loads(transport.items()[0].get_bytes()) == list(range(10))
    batcher.kill()
    assert batcher._thread is None


def test_batcher_drops_and_counts_beyond_max_size() -> None:
    memory = init()
    client = tripwire.get_client()
    batcher: Batcher[int] = Batcher(
        client, _build, DataCategory.LOG_ITEM, flush_size=5, max_size=5, interval=3600
    )
    # Hold the flusher off: it flushes under this lock.
    with batcher._flush_lock:
        for i in range(8):
            batcher.add(i)
    batcher.kill()
    sent = [n for item in memory.items() for n in json.loads(item.get_bytes())]
    assert sent == [0, 1, 2, 3, 4]
    assert client.outcomes.snapshot() == {("queue_overflow", "log_item"): 3}
    batcher.add(99)  # killed: ignored
    batcher.flush()
    assert len(memory.items()) == 1


def test_batcher_failing_build_is_counted_not_raised() -> None:
    init()
    client = tripwire.get_client()

    def broken(items: list[int]) -> Envelope:
        raise RuntimeError("cannot build")

    batcher: Batcher[int] = Batcher(client, broken, DataCategory.LOG_ITEM, interval=3600)
    batcher.add(1)
    batcher.kill()
    assert client.outcomes.snapshot() == {("internal_sdk_error", "log_item"): 1}


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_batcher_after_fork_child_keeps_only_its_own_logs() -> None:
    script = textwrap.dedent(
        """
        import json, os, sys, warnings
        warnings.simplefilter("ignore")  # fork() with threads: the case under test
        import tripwire
        from tripwire.testing import MemoryTransport
        memory = MemoryTransport()
        tripwire.init(transport=memory, enable_logs=True, default_integrations=False)
        tripwire.logger.info("parent pending")
        pid = os.fork()
        if pid == 0:
            tripwire.logger.info("child")
            tripwire.flush()
            bodies = [
                log["body"]
                for item in memory.items("log")
                for log in json.loads(item.get_bytes())["items"]
            ]
            os.write(1, ("CHILD " + json.dumps(bodies) + "\\n").encode())
            os._exit(0)
        os.waitpid(pid, 0)
        tripwire.flush()
        bodies = [
            log["body"]
            for item in memory.items("log")
            for log in json.loads(item.get_bytes())["items"]
        ]
        print("PARENT " + json.dumps(bodies))
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True
    ).stdout
    lines = dict(line.split(" ", 1) for line in out.strip().splitlines())
    assert json.loads(lines["CHILD"]) == ["child"]
    assert json.loads(lines["PARENT"]) == ["parent pending"]


# -- differential: the same calls through sentry-sdk 2.75 ------------------------------------------


def _shape(log: dict[str, Any]) -> dict[str, Any]:
    volatile = {"sentry.sdk.name", "sentry.sdk.version", "server.address", "sentry.release"}
    return {
        "level": log["level"],
        "body": log["body"],
        "keys": sorted(log),
        "attributes": [(k, v) for k, v in log["attributes"].items() if k not in volatile],
    }


def _calls(logger: Any) -> None:
    class Thing:
        def __repr__(self) -> str:
            return "<Thing>"

    logger.trace("trace {a}", a=1.5)
    logger.debug("plain")
    logger.info("Hello {name} {n}", name="bob", n=3, extra_param=[1, 2])
    logger.warning("missing {key}", other=True)
    logger.error(
        "attrs",
        attributes={
            "arr": ["a", "b"],
            "mixed": [1, "a"],
            "tup": (1, 2),
            "none": None,
            "obj": Thing(),
            "d": {"a": 1},
            "big": 2**70,
        },
    )
    logger.fatal("f {o}", o=Thing())


def test_payload_matches_sentry_sdk() -> None:
    import sentry_sdk
    import sentry_sdk.logger
    from _sample_sentry import sentry_client

    def before(log: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        log["attributes"]["added"] = sorted(log)
        return log

    with sentry_client(enable_logs=True, before_send_log=before) as captured:
        sentry_sdk.set_attribute("scope_attr", 5)
        _calls(sentry_sdk.logger)
        sentry_sdk.flush()
    theirs: list[dict[str, Any]] = []
    for raw in captured.raw:
        lines = raw.split(b"\n")
        for header, payload in zip(lines[1::2], lines[2::2]):
            if json.loads(header).get("type") == "log":
                theirs.extend(_shape(log) for log in json.loads(payload)["items"])

    memory = init(enable_logs=True, before_send_log=before)
    tripwire.get_isolation_scope().set_attribute("scope_attr", 5)
    _calls(tripwire.logger)
    ours = [_shape(log) for log in logs(memory)]

    assert ours == theirs
    assert len(ours) == 6
