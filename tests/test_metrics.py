"""Trace metrics: `tripwire.metrics.count/gauge/distribution` as `trace_metric` items.

What reaches a real loopback receiver (item shape, attributes, trace link, batching by
size and time, at exit, overflow outcomes), `before_send_metric`, and side-by-side runs
of one script on sentry-sdk 2.75 and on tripwire (each in its own interpreter)
compared item by item.
"""

from __future__ import annotations

import json
import logging
import re
import subprocess
import sys
import textwrap
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _receiver import Receiver, wait_until
from _side_by_side import of_type, run_both

import tripwire
from tripwire import metrics
from tripwire._json import loads
from tripwire.testing import MemoryTransport

ROOT = Path(__file__).resolve().parent.parent
SDK_KEYS = {"sentry.sdk.name", "sentry.sdk.version"}


def received(rx: Receiver) -> list[dict[str, Any]]:
    """Every metric of every ``trace_metric`` item the receiver got, in order."""
    out: list[dict[str, Any]] = []
    for item in rx.items("trace_metric"):
        payload = loads(item.get_bytes())
        assert payload["version"] == 2
        assert item.headers["item_count"] == len(payload["items"])
        assert item.headers["content_type"] == "application/vnd.sentry.items.trace-metric+json"
        out.extend(payload["items"])
    return out


def memory_metrics(memory: MemoryTransport) -> list[dict[str, Any]]:
    return [m for item in memory.items("trace_metric") for m in loads(item.get_bytes())["items"]]


def test_metrics_reach_the_receiver_linked_to_the_trace(rx: Receiver) -> None:
    tripwire.init(
        dsn=rx.dsn(),
        release="r1",
        environment="prod",
        server_name="host-1",
        traces_sample_rate=1.0,
    )
    metrics.count("orders", 2, attributes={"shop": "eu", "n": 1, "ratio": 0.5, "ok": True})
    with tripwire.start_transaction(name="checkout") as transaction:
        with tripwire.start_span(op="db") as span:
            metrics.gauge("pool.size", 12, unit="connection")
        metrics.distribution("latency", 3.5, unit="millisecond", attributes={"tags": ["a", "b"]})
    tripwire.flush()
    rx.wait_for(2)
    first, second, third = received(rx)

    assert first["name"] == "orders"
    assert first["type"] == "counter"
    assert first["value"] == 2.0
    assert "unit" not in first
    assert "span_id" not in first  # no active span: the propagation context's trace only
    assert first["trace_id"] == tripwire.get_current_scope().get_trace_context()["trace_id"]
    attributes = first["attributes"]
    assert attributes["shop"] == {"value": "eu", "type": "string"}
    assert attributes["n"] == {"value": 1, "type": "integer"}
    assert attributes["ratio"] == {"value": 0.5, "type": "double"}
    assert attributes["ok"] == {"value": True, "type": "boolean"}
    assert attributes["sentry.sdk.name"]["value"] == tripwire.consts.SDK_NAME
    assert attributes["sentry.release"] == {"value": "r1", "type": "string"}
    assert attributes["sentry.environment"] == {"value": "prod", "type": "string"}
    assert attributes["server.address"] == {"value": "host-1", "type": "string"}
    assert attributes["process.runtime.name"]["type"] == "string"
    assert not any(key.startswith("user.") for key in attributes)

    assert (second["name"], second["type"], second["unit"]) == ("pool.size", "gauge", "connection")
    assert second["trace_id"] == transaction.trace_id
    assert second["span_id"] == span.span_id
    assert third["span_id"] == transaction.span_id
    assert third["attributes"]["tags"] == {"value": ["a", "b"], "type": "array"}


def test_user_attributes_need_send_default_pii(init_memory: Any) -> None:
    user = {"id": "42", "username": "ada", "email": "ada@example.com", "ip_address": "10.0.0.1"}
    for pii, expected in ((False, {}), (True, {"user.id": "42", "user.name": "ada"})):
        memory = init_memory(send_default_pii=pii)
        tripwire.set_user(user)
        metrics.count("c", 1, attributes={"user.email": "given"})
        tripwire.flush()
        (metric,) = memory_metrics(memory)
        found = {k: v["value"] for k, v in metric["attributes"].items() if k.startswith("user.")}
        if pii:
            expected = {**expected, "user.email": "given", "user.ip_address": "10.0.0.1"}
        else:
            expected = {"user.email": "given"}
        assert found == expected
        tripwire.get_client().close()


def test_scope_attributes_rank_below_the_call_and_above_the_sdk(init_memory: Any) -> None:
    memory = init_memory(release="r1")
    tripwire.get_global_scope().set_attribute("sentry.release", "from-scope")
    tripwire.get_global_scope().set_attribute("layer", "global")
    tripwire.get_isolation_scope().set_attribute("layer", "isolation")
    with tripwire.new_scope() as scope:
        scope.set_attribute("only_current", [1, 2])
        metrics.count("c", 1, attributes={"layer": "call"})
    metrics.count("d", 1)
    tripwire.flush()
    first, second = memory_metrics(memory)
    values = {k: v["value"] for k, v in first["attributes"].items()}
    assert values["layer"] == "call"
    assert values["only_current"] == [1, 2]
    assert values["sentry.release"] == "from-scope"
    assert len(first["attributes"]) == len(values)  # no key twice once spliced
    assert second["attributes"]["layer"]["value"] == "isolation"
    assert "only_current" not in second["attributes"]


def test_before_send_metric_changes_drops_and_survives_errors(rx: Receiver) -> None:
    seen: list[dict[str, Any]] = []

    def before(metric: dict[str, Any], hint: dict[str, Any]) -> Any:
        seen.append(dict(metric))
        if metric["name"] == "drop":
            return None
        if metric["name"] == "boom":
            raise RuntimeError("hook failed")
        metric["attributes"]["added"] = "yes"
        del metric["attributes"]["sentry.release"]
        return metric

    tripwire.init(dsn=rx.dsn(), release="r1", before_send_metric=before)
    for name in ("keep", "drop", "boom"):
        metrics.count(name, 1)
    tripwire.flush()
    tripwire.get_client().close()  # the client report goes out at close
    wait_until(lambda: rx.discarded(), what="a client report")
    (metric,) = received(rx)
    assert metric["name"] == "keep"
    assert metric["attributes"]["added"] == {"value": "yes", "type": "string"}
    assert "sentry.release" not in metric["attributes"]
    assert [m["name"] for m in seen] == ["keep", "drop", "boom"]
    assert set(seen[0]) == {
        "timestamp",
        "trace_id",
        "span_id",
        "name",
        "type",
        "value",
        "unit",
        "attributes",
    }
    assert rx.discarded() == {
        ("before_send", "trace_metric"): 1,
        ("callback_error", "trace_metric"): 1,
    }


def test_a_batch_of_1000_goes_without_flush_and_the_rest_on_flush(rx: Receiver) -> None:
    tripwire.init(dsn=rx.dsn())
    for i in range(1000):
        metrics.count("c", i)
    # The flusher wakes once 1000 wait: no flush() called yet.
    rx.wait_for(1)
    assert len(received(rx)) == 1000
    metrics.count("c", 1000)
    tripwire.flush()
    rx.wait_for(2)
    assert [m["value"] for m in received(rx)] == [float(i) for i in range(1001)]


def test_timed_flush(rx: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "INTERVAL", 0.05)
    tripwire.init(dsn=rx.dsn())
    metrics.gauge("g", 1)
    rx.wait_for(1)  # never flushed by hand: the timer sent it
    assert [m["name"] for m in received(rx)] == ["g"]


def test_overflow_is_dropped_and_counted(rx: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(metrics, "FLUSH_SIZE", 20)
    monkeypatch.setattr(metrics, "MAX_SIZE", 20)
    tripwire.init(dsn=rx.dsn())
    metrics.count("c", -1)
    tripwire.flush()
    batcher = metrics._state(tripwire.get_client()).batcher
    # While a flush is in progress nothing leaves the buffer: 20 fit, 5 overflow.
    with batcher._flush_lock:
        for i in range(25):
            metrics.count("c", i)
    tripwire.get_client().close()
    wait_until(lambda: len(received(rx)) == 21 and rx.discarded(), what="metrics and report")
    assert rx.discarded() == {("queue_overflow", "trace_metric"): 5}
    assert [m["value"] for m in received(rx)] == [float(i) for i in range(-1, 20)]


def test_not_a_number_and_no_client_never_raise(init_memory: Any) -> None:
    metrics.count("before-init", 1)  # no client: nothing happens
    memory = init_memory()
    metrics.count("bad", "x")  # type: ignore[arg-type]
    metrics.distribution("bad", None)  # type: ignore[arg-type]
    metrics.count("good", "3")  # type: ignore[arg-type]  # a numeric string, as float()
    metrics.count("attrs", 1, attributes={"obj": object(), "mixed": [1, "a"], "nan": float("nan")})
    tripwire.flush()
    good, attrs = memory_metrics(memory)
    assert (good["name"], good["value"]) == ("good", 3.0)
    assert attrs["attributes"]["mixed"] == {"value": "[1, 'a']", "type": "string"}
    assert attrs["attributes"]["nan"] == {"value": "nan", "type": "string"}
    assert attrs["attributes"]["obj"]["value"].startswith("<object object")


def test_enable_metrics_false_changes_nothing_but_warns(
    init_memory: Any, caplog: pytest.LogCaptureFixture
) -> None:
    memory = init_memory(enable_metrics=False)
    with caplog.at_level(logging.WARNING, logger="tripwire"):
        metrics.count("c", 1)
    tripwire.flush()
    assert [m["name"] for m in memory_metrics(memory)] == ["c"]
    assert "enable_metrics option has no effect" in caplog.text


def test_pending_metrics_are_sent_at_exit(rx: Receiver, tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import tripwire
            from tripwire import metrics
            tripwire.init(dsn={rx.dsn()!r})
            for i in range(3):
                metrics.count("at-exit", i)
            """
        )
    )
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    rx.wait_for(1)
    assert [m["value"] for m in received(rx)] == [0.0, 1.0, 2.0]


# -- side by side with sentry-sdk 2.75 -------------------------------------------------------

SCRIPT = """
import warnings
from sentry_sdk import metrics

warnings.simplefilter("ignore", DeprecationWarning)  # send_default_pii: both SDKs warn

def before(metric, hint):
    if metric["name"] == "dropped":
        return None
    metric["attributes"]["seen"] = sorted(metric)
    return metric

sentry_sdk.init(
    dsn="https://key@example.com/1",
    transport=KEEP,
    release="r1",
    environment="prod",
    server_name="host-1",
    send_default_pii=PII,
    traces_sample_rate=1.0,
    before_send_metric=HOOK,
)
sentry_sdk.set_user({"id": "42", "username": "ada", "email": "a@example.com"})
sentry_sdk.get_global_scope().set_attribute("sentry.release", "scoped")
sentry_sdk.get_isolation_scope().set_attribute("layer", "isolation")
metrics.count("orders", 2, attributes={"shop": "eu", "n": 1, "r": 0.5, "ok": True, "l": [1, 2]})
metrics.count("dropped", 1)
with sentry_sdk.start_transaction(name="checkout") as tx:
    NOTES.append({"trace": tx.trace_id, "root": tx.span_id})
    with sentry_sdk.start_span(op="db") as span:
        NOTES.append({"child": span.span_id})
        metrics.gauge("pool", 12, unit="connection", attributes={"layer": "call"})
    with sentry_sdk.new_scope() as scope:
        scope.set_attribute("current", "yes")
        metrics.distribution("latency", 3, unit="millisecond", attributes={"t": ("a", "b")})
metrics.count("mixed", 1.5, attributes={"m": [1, "a"], "e": [], "x": {"k": 1}})
finish()
"""


def _metric_shapes(found: dict[str, Any]) -> list[dict[str, Any]]:
    notes: dict[str, str] = {}
    for note in found["notes"]:
        notes.update(note)
    names = {notes["trace"]: "tx-trace", notes["root"]: "tx-root", notes["child"]: "child"}
    out = []
    for payload in of_type(found, "trace_metric"):
        for metric in payload["items"]:
            shape = {k: v for k, v in metric.items() if k not in ("timestamp", "attributes")}
            for key in ("trace_id", "span_id"):
                if key in shape:
                    shape[key] = names.get(shape[key], "other")
            shape["attributes"] = {
                k: ("?" if k in SDK_KEYS else v) for k, v in metric["attributes"].items()
            }
            out.append(shape)
    return out


@pytest.mark.parametrize(("pii", "hook"), [(False, False), (True, True)])
def test_items_match_sentry_sdk(tmp_path: Path, pii: bool, hook: bool) -> None:
    script = SCRIPT.replace("PII", str(pii)).replace("HOOK", "before" if hook else "None")
    theirs, ours = run_both(script, tmp_path)
    their_shapes, our_shapes = _metric_shapes(theirs), _metric_shapes(ours)
    assert json.dumps(our_shapes, sort_keys=True, indent=1) == json.dumps(
        their_shapes, sort_keys=True, indent=1
    )
    names = [m["name"] for m in our_shapes]
    assert names == (
        ["orders", "pool", "latency", "mixed"]
        if hook
        else ["orders", "dropped", "pool", "latency", "mixed"]
    )
    pool = our_shapes[names.index("pool")]
    assert (pool["trace_id"], pool["span_id"]) == ("tx-trace", "child")
    assert our_shapes[0]["attributes"]["sentry.release"]["value"] == "scoped"
    assert ("user.id" in our_shapes[0]["attributes"]) is pii


# -- the local backend ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def backend(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """tripwire's local backend on a free loopback port, its database in a temp dir."""
    pytest.importorskip("uvicorn", reason="the server extra is not installed")
    from tripwire.server.app import ServerThread

    server = ServerThread(db=tmp_path_factory.mktemp("backend") / "metrics.db")
    yield server
    server.stop()


def test_the_metrics_page_lists_them_with_a_series_per_name(backend: Any) -> None:
    # Not auto-enabling: the backend in this process is a Starlette app the SDK would watch.
    tripwire.init(dsn=backend.dsn, auto_enabling_integrations=False)
    for value in (3, 1, 4):
        metrics.gauge("queue.depth", value, unit="job", attributes={"queue": "mail"})
    metrics.count("page.served", 1)
    tripwire.flush()
    tripwire.get_client().close()
    with urllib.request.urlopen(backend.url + "/metrics/", timeout=30) as response:
        page = response.read().decode()
    section = r'<section class="metric-chart" data-metric="queue.depth">(.*?)</section>'
    (chart,) = re.findall(section, page, re.S)
    assert "gauge" in chart and "job" in chart
    (points,) = re.findall(r'<polyline points="([^"]+)"', chart)
    ys = [float(pair.split(",")[1]) for pair in points.split()]
    assert len(ys) in (1, 2, 3)  # one point per interval the three values fell in
    (last,) = re.findall(r'<tr class="series-row">.*?</tr>', chart, re.S)
    assert re.findall(r'<td class="num">([^<]*)</td>', last)[-1] == "4"  # the last gauge value
    assert page.count('<tr class="metric">') == 4
