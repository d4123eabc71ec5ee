"""Span streaming in the core helpers: decorators, feature flags, tracing_utils, the API.

Under ``trace_lifecycle="stream"``: functions_to_trace and `traces.trace` start a
segment when no span is active; a feature flag evaluated in a streamed span becomes
its attribute (no limit); `tracing_utils.add_source` and friends write the streaming
``code.*`` attributes; `get_current_span` / `update_current_span` do not see a span of
`traces.start_span`; logs and metrics in an unsampled span carry no span id. Checked
side by side with sentry-sdk 2.75, plus in-process checks of what tripwire sends.
"""

from __future__ import annotations

import asyncio
import json
import textwrap
import warnings
from pathlib import Path
from typing import Any

import pytest
from _profiles import busy_work, run_until
from _receiver import Receiver, wait_until
from _side_by_side import run_both
from _stream_shapes import id_labels, masked, notes, values

import tripwire
from tripwire import traces
from tripwire._json import loads
from tripwire.profiler import continuous_profiler
from tripwire.testing import MemoryTransport


def spans_of(rx: Receiver) -> list[dict[str, Any]]:
    """Every span of every ``span`` item the receiver got."""
    return [span for item in rx.items("span") for span in loads(item.get_bytes())["items"]]


def init(rx: Receiver, **options: Any) -> None:
    options.setdefault("traces_sample_rate", 1.0)
    tripwire.init(
        dsn=rx.dsn(), trace_lifecycle="stream", auto_enabling_integrations=False, **options
    )


# functions_to_trace needs an importable module: written next to the script.
TRACED_MODULE = """
def plain():
    return 1


async def coro():
    return 2


class Box:
    def method(self):
        return 3

    @staticmethod
    def static():
        return 4

    @classmethod
    def klass(cls):
        return 5


alias = plain
"""

SCRIPT = """
import asyncio
import warnings

warnings.simplefilter("ignore", DeprecationWarning)  # send_default_pii: both SDKs warn
from sentry_sdk import traces, tracing_utils
from sentry_sdk.feature_flags import add_feature_flag


def note(label, fn):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            found = fn()
        except Exception as exc:  # a crash is a difference too
            found = "raised " + type(exc).__name__
    if not isinstance(found, (str, int, float, bool, type(None), list, dict)):
        found = type(found).__name__
    NOTES.append({label: [found, [str(w.message) for w in caught]]})


def sampler(context):
    return 0.0 if context["transaction_context"]["name"] == "unsampled" else 1.0


sentry_sdk.init(
    dsn="https://key@example.com/1",
    transport=KEEP,
    release="r1",
    environment="prod",
    traces_sampler=sampler,
    trace_lifecycle="stream",
    auto_enabling_integrations=False,
    enable_logs=True,
    in_app_include=["__main__"],
    functions_to_trace=[
        {"qualified_name": "traced_module.plain"},
        {"qualified_name": "traced_module.coro"},
        {"qualified_name": "traced_module.Box.method"},
        {"qualified_name": "traced_module.Box.static"},
        {"qualified_name": "traced_module.Box.klass"},
        {"qualified_name": "traced_module.alias"},
    ],
)
import traced_module

# No active span: each traced function starts its own segment.
traced_module.plain()
asyncio.run(traced_module.coro())
traced_module.Box().method()
traced_module.Box.static()
traced_module.Box.klass()
traced_module.alias()


@sentry_sdk.trace
def legacy():
    pass


@traces.trace(name="streamed-fn", attributes={"k": "v"})
def streamed_fn():
    pass


legacy()  # the transaction-model decorator: no span without an active one
streamed_fn()

with traces.start_span(name="seg", attributes={"sentry.op": "task"}) as seg:
    NOTES.append({"seg": seg.span_id, "trace": seg.trace_id})
    traced_module.plain()  # a child now
    legacy()
    for i in range(12):  # more than a transaction-model span keeps
        add_feature_flag("flag-%d" % i, i % 2 == 0)
    note("api span", lambda: sentry_sdk.get_current_span())
    note("utils span", lambda: tracing_utils.get_current_span())
    note("traces span", lambda: traces.get_current_span() is seg)
    note("update", lambda: sentry_sdk.update_current_span(op="o", name="n", attributes={"u": 1}))
    note("traceparent", lambda: sentry_sdk.get_traceparent().split("-")[2])
    with traces.start_span(name="child", attributes={"sentry.op": "db"}) as child:
        NOTES.append({"child": child.span_id})
        add_feature_flag("in-child", True)
        note("query source", lambda: tracing_utils.add_query_source(child))
        note("request source", lambda: tracing_utils.add_http_request_source(child))
        sentry_sdk.capture_message("in child")
    with traces.start_span(name="sourced") as sourced:
        note("source", lambda: tracing_utils.add_source(sourced, None, ["__main__"], None))

traces.new_trace()
with traces.start_span(name="unsampled") as unsampled:
    NOTES.append({"unsampled trace": unsampled.trace_id})
    with traces.start_span(name="unsampled child"):
        sentry_sdk.logger.info("in an unsampled span")
        sentry_sdk.metrics.count("counted", 1)
        note("unsampled traceparent", lambda: sentry_sdk.get_traceparent().split("-")[2])
finish()
"""

# Differ between the SDKs (name, version, integrations), between runs, or with argv.
_VOLATILE = {
    "sentry.sdk.name",
    "sentry.sdk.version",
    "sentry.sdk.integrations",
    "thread.id",
    "process.command_args",
    "server.address",
}


def _spans(found: dict[str, Any]) -> list[dict[str, Any]]:
    """Each span without times; ids as labels; sorted (the batcher's order is its own)."""
    labels = id_labels(found)
    segments: dict[str, str] = {}
    out = []
    for item in found["items"]:
        if item["type"] != "span":
            continue
        for span in item["payload"]["items"]:
            attributes = masked(values(span), _VOLATILE)
            segment_id = attributes.pop("sentry.segment.id")
            segments.setdefault(segment_id, f"segment {len(segments)}")
            shape = {
                "name": span["name"],
                "status": span["status"],
                "is_segment": span["is_segment"],
                "parent": labels.get(span.get("parent_span_id", ""), span.get("parent_span_id")),
                "trace": labels.get(span["trace_id"], "own"),
                "attributes": attributes,
            }
            out.append(shape)
    return sorted(out, key=lambda s: json.dumps(s, sort_keys=True))


def _telemetry(found: dict[str, Any]) -> dict[str, Any]:
    """Logs and metrics: which trace, whether a span id; the event's trace context."""
    labels = id_labels(found)
    out: dict[str, Any] = {}
    for item in found["items"]:
        payload = item["payload"]
        if item["type"] in ("log", "trace_metric"):
            for entry in payload["items"]:
                label = entry.get("body") or entry.get("name")
                out[label] = [labels.get(entry["trace_id"]), "span_id" in entry]
        elif item["type"] == "event":
            trace = payload["contexts"]["trace"]
            out[payload["message"]] = {
                "trace": {k: labels.get(v, v) for k, v in trace.items() if k != "data"},
                "transaction": payload.get("transaction"),
                "flags": payload["contexts"].get("flags"),
            }
    return out


def test_core_streaming_helpers_match_sentry_sdk(tmp_path: Path) -> None:
    (tmp_path / "traced_module.py").write_text(textwrap.dedent(TRACED_MODULE))
    theirs, ours = run_both(SCRIPT, tmp_path)
    their_spans, our_spans = _spans(theirs), _spans(ours)
    # `@sentry_sdk.trace` in a streamed span makes no span, as sentry_sdk 2.75's.
    assert [s for s in our_spans if s["name"] == "__main__.legacy"] == []
    assert json.dumps(our_spans, indent=1) == json.dumps(their_spans, indent=1)
    names = [s["name"] for s in our_spans]
    for expected in (
        "traced_module.plain",
        "traced_module.coro",
        "traced_module.Box.method",
        "traced_module.Box.static",
        "traced_module.Box.klass",
        "streamed-fn",
        "seg",
        "child",
        "sourced",
    ):
        assert expected in names, names
    # The aliased function is named after itself, segments of their own without a span.
    assert names.count("traced_module.plain") == 3
    by_name = {s["name"]: s for s in our_spans}
    seg = by_name["seg"]["attributes"]
    assert [seg[f"flag.evaluation.flag-{i}"] for i in range(12)] == [i % 2 == 0 for i in range(12)]
    assert by_name["child"]["attributes"]["flag.evaluation.in-child"] is True
    assert by_name["sourced"]["attributes"]["code.function"] == "<lambda>"
    assert by_name["sourced"]["attributes"]["code.file.path"] == "scenario.py"
    assert _telemetry(ours) == _telemetry(theirs)
    assert _telemetry(ours)["in an unsampled span"] == ["unsampled trace", False]
    their_notes, our_notes = notes(theirs), notes(ours)
    for key in (
        "api span",
        "utils span",
        "traces span",
        "update",
        "traceparent",
        "query source",
        "request source",
        "source",
        "unsampled traceparent",
    ):
        assert our_notes[key] == their_notes[key], key
    assert our_notes["api span"] == [None, []]
    assert our_notes["update"][1], "update_current_span warns in streaming mode"


# -- in process: what tripwire sends ------------------------------------------------------------


def test_trace_decorator_in_a_streamed_span_makes_no_span(rx: Receiver) -> None:
    # As sentry_sdk 2.75's: the transaction-model decorator does nothing under span
    # streaming (`traces.trace` is its decorator there).
    init(rx)

    @tripwire.trace(op="work", attributes={"n": 1})
    def work() -> int:
        return 1

    @tripwire.trace
    async def async_work() -> int:
        return 2

    @tripwire.trace(template=tripwire.consts.SPANTEMPLATE.AI_TOOL)
    def tool(city: str) -> str:
        return "sunny"

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning either
        assert work() == 1  # no span active: runs without a span
        with traces.start_span(name="seg") as seg:
            assert work() == 1
            assert asyncio.run(async_work()) == 2
            assert tool(city="Paris") == "sunny"
    tripwire.flush()
    wait_until(lambda: len(spans_of(rx)) == 1, what="the segment")
    (segment,) = spans_of(rx)
    assert segment["span_id"] == seg.span_id and segment["is_segment"] is True


def test_functions_to_trace_without_streaming_stay_child_spans(
    rx: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "traced_module_txn.py").write_text(textwrap.dedent(TRACED_MODULE))
    monkeypatch.syspath_prepend(str(tmp_path))
    tripwire.init(
        dsn=rx.dsn(),
        traces_sample_rate=1.0,
        auto_enabling_integrations=False,
        functions_to_trace=[{"qualified_name": "traced_module_txn.plain"}],
    )
    import traced_module_txn  # type: ignore[import-not-found]

    traced_module_txn.plain()  # no transaction: no span, nothing sent
    with tripwire.start_transaction(name="tx"):
        traced_module_txn.plain()
    tripwire.flush()
    wait_until(lambda: rx.items("transaction"), what="the transaction")
    (item,) = rx.items("transaction")
    spans = json.loads(item.get_bytes())["spans"]
    assert [(s["op"], s["description"]) for s in spans] == [("function", "traced_module_txn.plain")]
    assert rx.items("span") == []


def test_add_query_source_on_a_running_streamed_span(rx: Receiver) -> None:
    init(rx, db_query_source_threshold_ms=0, in_app_include=[__name__])
    from tripwire import tracing_utils

    with traces.start_span(name="query", attributes={"sentry.op": "db"}) as span:
        tracing_utils.add_query_source(span)  # still running: measured up to now
    tripwire.flush()
    wait_until(lambda: len(spans_of(rx)) == 1, what="the span")
    (query,) = spans_of(rx)
    found = values(query)
    assert found["code.function"] == "test_add_query_source_on_a_running_streamed_span"
    assert found["code.namespace"] == __name__
    assert isinstance(found["code.line.number"], int)
    assert found["code.file.path"].endswith("test_streaming_core.py")
    assert "code.lineno" not in found and "code.filepath" not in found


def test_the_transaction_model_api_does_not_see_a_traces_span(rx: Receiver) -> None:
    init(rx)
    with traces.start_span(name="seg") as seg:
        assert tripwire.get_current_span() is None
        with pytest.warns(DeprecationWarning, match="update_current_span"):
            tripwire.update_current_span(name="renamed", attributes={"a": 1})
        assert seg.name == "seg" and "a" not in seg.get_attributes()
        # The transaction-model API is not available under streaming (sentry_sdk 2.75).
        with pytest.warns(DeprecationWarning, match="Scope.start_span is not available"):
            child = tripwire.start_span(op="db", name="q")
        with child:
            assert type(child) is tripwire.tracing.NoOpSpan
            assert tripwire.get_current_span() is None
            tripwire.feature_flags.add_feature_flag("f", True)
    tripwire.flush()
    wait_until(lambda: len(spans_of(rx)) == 1, what="the segment")
    (segment,) = spans_of(rx)
    assert values(segment)["flag.evaluation.f"] is True


def test_a_segment_runs_the_trace_lifecycle_profiler() -> None:
    # As a transaction does (test_continuous_profiler): a sampled segment holds the
    # "trace" lifecycle profiler; its spans carry its id; the chunk follows.
    memory = MemoryTransport()
    tripwire.init(
        dsn="http://key@127.0.0.1:1/1",
        transport=memory,
        default_integrations=False,
        traces_sample_rate=1.0,
        trace_lifecycle="stream",
        profile_session_sample_rate=1.0,
        profile_lifecycle="trace",
    )
    assert continuous_profiler.get_profiler_id() is None
    with traces.start_span(name="seg") as seg:
        profiler_id = continuous_profiler.get_profiler_id()
        assert profiler_id is not None
        with traces.start_span(name="child") as child:
            run_until(
                lambda: len(continuous_profiler._scheduler.buffer.chunk._ticks) >= 10,  # type: ignore[union-attr]
                lambda: busy_work(20_000),
            )
    assert seg.get_attributes()["sentry.profiler_id"] == profiler_id
    assert child.get_attributes()["sentry.profiler_id"] == profiler_id

    def chunks() -> list[dict[str, Any]]:
        return [
            json.loads(item.get_bytes())
            for envelope in list(memory.envelopes)
            for item in envelope.items
            if item.headers.get("type") == "profile_chunk"
        ]

    # Released with the segment: the sampler ends the chunk at its next tick.
    run_until(
        lambda: continuous_profiler.get_profiler_id() is None and bool(chunks()),
        lambda: busy_work(20_000),
    )
    tripwire.flush()
    assert [chunk["profiler_id"] for chunk in chunks()] == [profiler_id]


@pytest.mark.parametrize(
    ("options", "sent"),
    [
        ({"data_collection": {"user_info": True}}, True),
        ({"data_collection": {"user_info": False}, "send_default_pii": True}, False),
        ({"send_default_pii": True}, True),
        ({}, False),
    ],
)
def test_user_attributes_follow_data_collection(
    rx: Receiver, options: dict[str, Any], sent: bool
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # send_default_pii
        init(rx, **options)
    tripwire.set_user({"id": "7", "email": "a@b.c"})
    with traces.start_span(name="seg"):
        pass
    tripwire.flush()
    wait_until(lambda: len(spans_of(rx)) == 1, what="the span")
    found = values(spans_of(rx)[0])
    expected = {"user.id": "7", "user.email": "a@b.c"} if sent else {}
    assert {k: v for k, v in found.items() if k.startswith("user.")} == expected
