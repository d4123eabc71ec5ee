"""Span streaming (``trace_lifecycle="stream"``): `tripwire.traces` and ``span`` items.

What reaches a real loopback receiver (the v2 span container, its item headers, the
trace header, the SDK and segment attributes), sampling and propagation, ignore_spans,
before_send_span, the batcher (bounded, at exit, after a fork, a hook that logs while
a batch is built), the transaction-model API integrations call (`sdk_start_*`)
streaming under the option, and
side-by-side runs of one script on sentry-sdk 2.75 and on tripwire compared span by span.

Relay: the `sentry_relay` Python bindings normalize events only (`StoreNormalizer`);
they expose no span (v2) normalizer, so the span items are checked against the
shape sentry-sdk 2.75 sends instead.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path
from typing import Any, cast

import pytest
from _receiver import Receiver, wait_until
from _side_by_side import run_both
from _stream_shapes import id_labels, masked, notes, values

import tripwire
from tripwire import traces
from tripwire._json import loads
from tripwire.tracing import _span_stream
from tripwire.tracing._api import sdk_start_span, sdk_start_transaction

ROOT = Path(__file__).resolve().parent.parent
CONTENT_TYPE = "application/vnd.sentry.items.span.v2+json"


def spans_of(rx: Receiver) -> list[dict[str, Any]]:
    """Every span of every ``span`` item the receiver got, checking the container."""
    out: list[dict[str, Any]] = []
    for item in rx.items("span"):
        payload = loads(item.get_bytes())
        assert payload["version"] == 2
        assert item.headers["content_type"] == CONTENT_TYPE
        assert item.headers["item_count"] == len(payload["items"])
        out.extend(payload["items"])
    return out


def init(rx: Receiver, **options: Any) -> None:
    options.setdefault("traces_sample_rate", 1.0)
    tripwire.init(
        dsn=rx.dsn(),
        trace_lifecycle="stream",
        release="r1",
        environment="prod",
        server_name="host-1",
        auto_enabling_integrations=False,
        **options,
    )


def test_a_segment_and_its_children_reach_the_receiver(rx: Receiver) -> None:
    init(rx, dist="7")
    with traces.start_span(name="checkout", attributes={"cart.items": 3}) as segment:
        with traces.start_span(name="db query", attributes={"sentry.op": "db"}) as child:
            child.set_attribute("ratio", 0.5)
            child.set_attributes({"flag": True, "ids": [1, 2]})
            child.status = traces.SpanStatus.ERROR
            assert traces.get_current_span() is child
        assert traces.get_current_span() is segment
    assert traces.get_current_span() is None
    tripwire.flush()
    wait_until(lambda: len(spans_of(rx)) == 2, what="two spans")
    first, second = spans_of(rx)
    assert (first["name"], second["name"]) == ("db query", "checkout")
    assert first["is_segment"] is False and second["is_segment"] is True
    assert first["parent_span_id"] == second["span_id"]
    assert "parent_span_id" not in second
    assert first["trace_id"] == second["trace_id"]
    assert first["status"] == "error" and second["status"] == "ok"
    assert first["start_timestamp"] <= first["end_timestamp"] <= second["end_timestamp"]
    attrs = first["attributes"]
    assert attrs["ratio"] == {"value": 0.5, "type": "double"}
    assert attrs["flag"] == {"value": True, "type": "boolean"}
    assert attrs["ids"] == {"value": [1, 2], "type": "array"}
    assert attrs["sentry.op"] == {"value": "db", "type": "string"}
    child_values, segment_values = values(first), values(second)
    assert child_values["sentry.segment.id"] == second["span_id"]
    assert child_values["sentry.segment.name"] == "checkout"
    assert child_values["sentry.trace_lifecycle"] == "stream"
    assert child_values["sentry.origin"] == "manual"
    for key, value in {
        "sentry.release": "r1",
        "sentry.environment": "prod",
        "server.address": "host-1",
        "sentry.sdk.name": tripwire.consts.SDK_NAME,
    }.items():
        assert child_values[key] == segment_values[key] == value
    # Only the segment carries the segment attributes.
    assert segment_values["sentry.platform"] == "python"
    assert segment_values["sentry.segment.name.source"] == "custom"
    assert segment_values["sentry.dist"] == "7"
    assert segment_values["cart.items"] == 3
    assert "stdlib" in segment_values["sentry.sdk.integrations"]
    assert "sentry.platform" not in child_values
    # One envelope per trace, its header the segment's dynamic sampling context.
    (request,) = [r for r in rx.requests if "span" in r.item_types]
    trace = request.envelope.headers["trace"]
    assert trace["trace_id"] == second["trace_id"]
    assert trace["transaction"] == "checkout"
    assert trace["sampled"] == "true"
    assert trace["public_key"] == "public"


def test_events_and_outgoing_headers_inside_a_streamed_span(rx: Receiver) -> None:
    init(rx)
    with traces.start_span(name="job") as segment:
        headers = dict(tripwire.get_current_scope().iter_trace_propagation_headers())
        tripwire.capture_message("inside")
    tripwire.flush()
    rx.wait_for(2)
    assert headers["sentry-trace"] == f"{segment.trace_id}-{segment.span_id}-1"
    assert f"sentry-trace_id={segment.trace_id}" in headers["baggage"]
    assert "sentry-transaction=job" in headers["baggage"]
    (event,) = rx.events()
    assert event["contexts"]["trace"]["span_id"] == segment.span_id
    assert event["transaction"] == "job"


def test_an_incoming_trace_is_continued_and_its_sample_rate_kept(rx: Receiver) -> None:
    init(rx, traces_sample_rate=0.0)
    traces.continue_trace(
        {
            "sentry-trace": "771a43a4192642f0b136d5159a501700-1234567890abcdef-1",
            "baggage": "sentry-trace_id=771a43a4192642f0b136d5159a501700,sentry-sample_rate=0.5,"
            "sentry-sample_rand=0.25,sentry-release=up",
        }
    )
    with traces.start_span(name="continued"):
        pass
    traces.new_trace()
    with traces.start_span(name="fresh") as fresh:  # rate 0: not sampled
        assert isinstance(fresh, traces.NoOpStreamedSpan)
        assert fresh.sampled is False
    tripwire.flush()
    wait_until(lambda: len(spans_of(rx)) == 1, what="the continued span")
    (span,) = spans_of(rx)
    assert span["trace_id"] == "771a43a4192642f0b136d5159a501700"
    assert span["parent_span_id"] == "1234567890abcdef"
    assert span["is_segment"] is True
    (request,) = [r for r in rx.requests if "span" in r.item_types]
    assert request.envelope.headers["trace"]["release"] == "up"  # the incoming DSC, frozen
    assert request.envelope.headers["trace"]["sample_rand"] == "0.25"


def test_traces_sampler_sees_name_and_attributes(rx: Receiver) -> None:
    seen: list[dict[str, Any]] = []

    def sampler(context: dict[str, Any]) -> float:
        seen.append(context)
        return 0.0 if context["transaction_context"]["name"] == "drop" else 1.0

    init(rx, traces_sampler=sampler, traces_sample_rate=None)
    tripwire.get_current_scope().set_custom_sampling_context({"tenant": "t1"})
    with traces.start_span(name="keep", attributes={"sentry.op": "task", "k": 1}):
        with traces.start_span(name="child"):  # children inherit: no second call
            pass
    with traces.start_span(name="drop"):
        pass
    tripwire.flush()
    wait_until(lambda: len(spans_of(rx)) == 2, what="the sampled segment")
    assert [s["name"] for s in spans_of(rx)] == ["child", "keep"]
    assert len(seen) == 2
    context = seen[0]["transaction_context"]
    assert (context["name"], context["op"], context["data"]["k"]) == ("keep", "task", 1)
    assert seen[0]["tenant"] == "t1"


def test_ignore_spans_and_before_send_span(rx: Receiver) -> None:
    def hook(span: dict[str, Any], hint: dict[str, Any]) -> Any:
        if span["name"] == "secret":
            span["name"] = "redacted"
            span["attributes"] = {"kept": True}
        if span["name"] == "broken":
            raise RuntimeError("hook bug")
        if span["name"] == "bad-return":
            return None  # spans cannot be dropped: kept as they were
        return span

    init(
        rx,
        ignore_spans=[
            "health",
            re.compile(r"poll-\d+"),
            {"name": "q", "attributes": {"db.system": "redis"}},
            {"attributes": {"noisy": True}},
        ],
        before_send_span=hook,
    )
    with traces.start_span(name="root"):
        for name, attrs in [
            ("health", None),
            ("poll-12", None),
            ("poll-x", None),
            ("q", {"db.system": "redis"}),
            ("q", {"db.system": "postgresql"}),
            ("other", {"noisy": True}),
            ("secret", {"password": "hunter2"}),
            ("broken", None),
            ("bad-return", None),
        ]:
            with traces.start_span(name=name, attributes=attrs):
                pass
        with traces.start_span(name="health"):
            # An ignored child never becomes the active span (as sentry-sdk): this
            # one is the root's child.
            with traces.start_span(name="under-ignored"):
                pass
    tripwire.flush()
    wait_until(lambda: len(spans_of(rx)) == 7, what="seven spans")
    found = spans_of(rx)
    assert [s["name"] for s in found] == [
        "poll-x",
        "q",
        "redacted",
        "broken",
        "bad-return",
        "under-ignored",
        "root",
    ]
    assert found[5]["parent_span_id"] == found[6]["span_id"]
    assert values(found[1])["db.system"] == "postgresql"
    assert found[2]["attributes"] == {"kept": {"value": True, "type": "boolean"}}
    assert "sentry.segment.id" in values(found[3])  # the hook raised: unchanged
    assert tripwire.tracing_utils.is_ignored_span("health", None)
    assert not tripwire.tracing_utils.is_ignored_span("poll-1x", None)


def test_options_that_need_streaming_warn_without_it() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        tripwire.init(ignore_spans=["x"], before_send_span=lambda s, h: s)
    assert [str(w.message) for w in caught] == [
        "The `ignore_spans` parameter only works when `trace_lifecycle` is set to `stream`.",
        "The `before_send_span` parameter only works when `trace_lifecycle` is set to `stream`.",
    ]
    assert all(w.category is UserWarning for w in caught)
    assert caught[0].filename == __file__
    with pytest.warns(UserWarning, match="span streaming API in non-span-streaming mode"):
        span = traces.start_span(name="x")
    assert isinstance(span, traces.NoOpStreamedSpan)
    assert not tripwire.tracing_utils.has_span_streaming_enabled(tripwire.get_client().options)
    assert tripwire.tracing_utils.has_span_streaming_enabled(
        {"_experiments": {"trace_lifecycle": "stream"}}
    )
    assert not tripwire.tracing_utils.has_span_streaming_enabled(
        {"trace_lifecycle": "static", "_experiments": {"trace_lifecycle": "stream"}}
    )


def test_the_sdk_transaction_api_streams_under_the_option(rx: Receiver) -> None:
    # What integrations call (the public API warns and gives no-op spans there, as
    # sentry_sdk 2.75's: test_streaming_legacy_api.py).
    init(rx)
    with sdk_start_transaction(name="tx", op="task", source="task") as transaction:
        with sdk_start_span(op="db", name="select 1") as span:
            span.set_data("db.system", "postgresql")
            span.set_tag("tag", "v")
            with span.start_child(op="cache.get", description="key") as grandchild:
                grandchild.set_status("internal_error")
        with sdk_start_span(op="http.client", name="GET /") as http:
            http.set_http_status(503)
        transaction.set_http_status(200)
    tripwire.flush()
    wait_until(lambda: len(spans_of(rx)) == 4, what="four spans")
    grandchild_, db, http_, segment = spans_of(rx)
    assert isinstance(cast(Any, transaction), traces.StreamedSpan)
    assert values(segment)["sentry.op"] == "task"
    assert values(segment)["sentry.segment.name.source"] == "task"
    assert values(segment)["http.response.status_code"] == 200
    assert segment["is_segment"] is True
    assert (db["name"], values(db)["sentry.op"]) == ("select 1", "db")
    assert values(db)["db.system"] == "postgresql"
    assert values(db)["tag"] == "v"
    assert grandchild_["parent_span_id"] == db["span_id"]
    assert grandchild_["name"] == "key" and grandchild_["status"] == "error"
    assert http_["status"] == "error"
    assert values(http_)["http.response.status_code"] == 503
    assert {s["trace_id"] for s in (grandchild_, db, http_)} == {segment["trace_id"]}


def test_unsampled_and_ignored_transaction_api_spans_send_nothing(rx: Receiver) -> None:
    init(rx, traces_sample_rate=0.0, ignore_spans=["ignored-tx"])
    with sdk_start_transaction(name="tx", op="task") as started:
        transaction: Any = started  # a streamed span under the option
        assert isinstance(cast(Any, started), traces.NoOpStreamedSpan)
        transaction.set_http_status(500)
        transaction.set_tag("t", 1)
        with sdk_start_span(op="db", name="q") as span:
            span.set_data("k", 1)
            span.set_status("internal_error")
            with span.start_child(op="child") as child:
                child.set_data("x", 2)
        headers = dict(tripwire.get_current_scope().iter_trace_propagation_headers())
    assert headers["sentry-trace"].endswith("-0")
    with sdk_start_transaction(name="ignored-tx") as ignored:
        assert ignored.sampled is False
    tripwire.get_client().close()
    wait_until(lambda: rx.discarded(), what="the client report")
    assert rx.items("span") == []
    assert rx.discarded() == {("sample_rate", "span"): 3}  # "ignored" is local only


def test_nothing_changes_without_the_option(rx: Receiver) -> None:
    tripwire.init(dsn=rx.dsn(), traces_sample_rate=1.0, auto_enabling_integrations=False)
    with tripwire.start_transaction(name="tx") as transaction:
        with tripwire.start_span(op="db"):
            pass
    tripwire.flush()
    rx.wait_for(1)
    assert type(transaction) is tripwire.tracing.Transaction
    assert rx.items("span") == []
    assert len(rx.items("transaction")) == 1


def test_the_batcher_is_bounded(rx: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_span_stream, "MAX_SIZE", 5)
    monkeypatch.setattr(_span_stream, "FLUSH_SIZE", 5)
    init(rx)
    client = tripwire.get_client()
    batcher = _span_stream._state(client).batcher
    with batcher._flush_lock:  # the flusher waits: the queue fills up
        with traces.start_span(name="root"):
            for index in range(9):
                with traces.start_span(name=f"child-{index}"):
                    pass
    tripwire.flush()
    wait_until(lambda: len(spans_of(rx)) == 5, what="the five queued spans")
    assert [s["name"] for s in spans_of(rx)] == [f"child-{i}" for i in range(5)]
    wait_until(lambda: rx.discarded(), what="the client report")
    assert rx.discarded() == {("queue_overflow", "span"): 5}


def test_pending_spans_are_sent_at_exit(rx: Receiver, tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import tripwire
            from tripwire import traces
            tripwire.init(dsn={rx.dsn()!r}, traces_sample_rate=1.0, trace_lifecycle="stream",
                          auto_enabling_integrations=False)
            with traces.start_span(name="root"):
                for i in range(3):
                    traces.start_span(name=f"child-{{i}}").end()
            """
        )
    )
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    wait_until(lambda: len(spans_of(rx)) == 4, what="the spans sent at exit")
    assert [s["name"] for s in spans_of(rx)] == ["child-0", "child-1", "child-2", "root"]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_sends_its_own_spans_only(rx: Receiver, tmp_path: Path) -> None:
    script = tmp_path / "app.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import os
            import tripwire
            from tripwire import traces
            tripwire.init(dsn={rx.dsn()!r}, traces_sample_rate=1.0, trace_lifecycle="stream",
                          auto_enabling_integrations=False)
            root = traces.start_span(name="parent-root")
            traces.start_span(name="before-fork").end()
            pid = os.fork()
            if pid == 0:
                with traces.start_span(name="child-root", parent_span=None):
                    pass
                tripwire.flush()
                os._exit(0)
            os.waitpid(pid, 0)
            root.end()
            """
        )
    )
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=60, cwd=ROOT
    )
    assert result.returncode == 0, result.stderr
    wait_until(lambda: len(spans_of(rx)) == 3, what="three spans")
    names = sorted(s["name"] for s in spans_of(rx))
    assert names == ["before-fork", "child-root", "parent-root"]  # nothing twice


def test_a_hook_that_logs_while_a_batch_is_built_does_not_deadlock(rx: Receiver) -> None:
    sdk_log = logging.getLogger("app")

    class Loud:
        def __repr__(self) -> str:
            sdk_log.error("repr called while encoding")
            return "Loud()"

    def hook(span: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        sdk_log.error("before_send_span ran for %s", span["name"])
        return span

    init(rx, enable_logs=True, before_send_span=hook)
    with traces.start_span(name="root") as root:
        root.set_attribute("loud", Loud())  # its repr runs now, not in the flusher
        for index in range(3):
            with traces.start_span(name=f"child-{index}"):
                sdk_log.warning("inside %d", index)
    tripwire.flush()
    wait_until(lambda: len(spans_of(rx)) == 4, what="four spans")
    assert values(spans_of(rx)[-1])["loud"] == "Loud()"


def test_logging_and_spans_made_during_a_flush_do_not_deadlock(rx: Receiver) -> None:
    from tripwire.transport._http_transport import HttpTransport

    app_log = logging.getLogger("app.transport")

    class Chatty(HttpTransport):
        def capture_envelope(self, envelope: Any) -> None:
            if any(item.type == "span" for item in envelope.items):
                # On the span flusher's thread, inside its flush: a log record (the
                # logs batcher) and a new span (this very batcher).
                app_log.error("sending %d items", len(envelope.items))
                with traces.start_span(name="made-in-flush", parent_span=None):
                    pass
            super().capture_envelope(envelope)

    init(rx, enable_logs=True, transport=Chatty)
    with traces.start_span(name="root"):
        pass
    tripwire.flush()
    wait_until(
        lambda: {"root", "made-in-flush"} <= {s["name"] for s in spans_of(rx)},
        what="both spans",
    )
    # What is logged while a batch is built and handed over is not fed back into
    # the SDK (the logging integration is suppressed there, for every batcher).
    tripwire.flush()
    assert not rx.items("log")


# -- side by side with sentry-sdk 2.75 -------------------------------------------------------

SCRIPT = """
import re
import warnings
from sentry_sdk import traces

warnings.simplefilter("ignore", DeprecationWarning)  # send_default_pii: both SDKs warn


def before(span, hint):
    if span["name"] == "rename-me":
        span["name"] = "renamed"
        span["attributes"]["hooked"] = True
    return span


def sampler(context):
    tc = context["transaction_context"]
    NOTES.append({"sampled " + tc["name"]: [tc["op"], tc["source"], sorted(tc["data"])]})
    return 0.0 if tc["name"] == "unsampled" else 1.0


sentry_sdk.init(
    dsn="https://key@example.com/1",
    transport=KEEP,
    release="r1",
    environment="prod",
    server_name="host-1",
    send_default_pii=True,
    traces_sampler=sampler,
    trace_lifecycle="stream",
    auto_enabling_integrations=False,
    ignore_spans=[
        "skip-me",
        re.compile(r"noise-\\d+"),
        {"name": "db", "attributes": {"db.system": "redis"}},
    ],
    before_send_span=before,
)
sentry_sdk.set_user({"id": "42", "username": "ada"})
sentry_sdk.get_isolation_scope().set_attribute("layer", "isolation")
attributes = {
    "sentry.op": "task", "n": 1, "r": 0.5, "ok": True, "l": [1, 2], "m": [1, "a"], "d": {"k": 1}
}
with traces.start_span(name="seg", attributes=attributes) as seg:
    NOTES.append({"seg": seg.span_id, "trace": seg.trace_id})
    with traces.start_span(name="child") as child:
        NOTES.append({"child": child.span_id})
        child.set_attribute("x", "y")
        child.set_attributes({"a": 1, "b": None})
        child.remove_attribute("a")
        child.status = traces.SpanStatus.ERROR
        child.status = "unknown"  # ignored
    with traces.start_span(name="skip-me") as skipped:
        NOTES.append({"skipped": repr(skipped)})
        with traces.start_span(name="under-skipped"):
            pass
    for name, attrs in [
        ("noise-12", None), ("db", {"db.system": "redis"}), ("db", {"db.system": "pg"})
    ]:
        with traces.start_span(name=name, attributes=attrs):
            pass
    with traces.start_span(name="rename-me"):
        pass
    try:
        with traces.start_span(name="boom"):
            raise ValueError("x")
    except ValueError:
        pass
    inactive = traces.start_span(name="inactive", active=False)
    with traces.start_span(name="after-inactive"):
        pass
    inactive.end()
    seg.name = "seg-final"
    sentry_sdk.capture_message("inside")
with traces.start_span(name="root2", parent_span=None) as root2:
    NOTES.append({"root2": root2.span_id})
traces.continue_trace({
    "sentry-trace": "771a43a4192642f0b136d5159a501700-1234567890abcdef-1",
    "baggage": "sentry-trace_id=771a43a4192642f0b136d5159a501700,sentry-sample_rate=0.5,"
    "sentry-sample_rand=0.25,sentry-release=up,other=1",
})
with traces.start_span(name="continued", attributes={"sentry.segment.name.source": "route"}) as c:
    NOTES.append({"continued": c.span_id})
    NOTES.append({"headers": dict(sentry_sdk.get_current_scope().iter_trace_propagation_headers())})
traces.new_trace()
with traces.start_span(name="unsampled") as unsampled:
    NOTES.append({"unsampled": repr(unsampled)})
    with traces.start_span(name="under-unsampled"):
        pass


@traces.trace
def decorated():
    pass


@traces.trace(name="named", attributes={"k": "v"})
def decorated2():
    pass


decorated()
decorated2()
finish()
"""

# Differ between the SDKs (name, version, integrations), between runs, or with argv.
_VOLATILE = {
    "sentry.sdk.name",
    "sentry.sdk.version",
    "sentry.sdk.integrations",
    "thread.id",
    "process.command_args",
}


_INCOMING = {
    "771a43a4192642f0b136d5159a501700": "incoming-trace",
    "1234567890abcdef": "incoming-parent",
}


def _shapes(found: dict[str, Any]) -> dict[str, Any]:
    labels = id_labels(found, hex_only=True, extra=_INCOMING)
    out: dict[str, Any] = {}
    for item in found["items"]:
        payload = item["payload"]
        if item["type"] == "event":
            trace = payload["contexts"]["trace"]
            out["event"] = {
                "trace": {k: labels.get(v, v) for k, v in trace.items()},
                "transaction": payload.get("transaction"),
                "transaction_info": payload.get("transaction_info"),
            }
            continue
        assert item["type"] == "span"
        for span in payload["items"]:
            shape = {k: v for k, v in span.items() if not k.endswith("timestamp")}
            for key in ("trace_id", "span_id", "parent_span_id"):
                if key in shape:
                    shape[key] = labels.get(shape[key], "other")
            attributes = masked(dict(shape.pop("attributes")), _VOLATILE)
            segment_id = attributes["sentry.segment.id"]["value"]
            attributes["sentry.segment.id"] = labels.get(segment_id, "other")
            shape["attributes"] = attributes
            assert shape["name"] not in out, shape["name"]
            out[shape["name"]] = shape
    return out


def test_spans_match_sentry_sdk(tmp_path: Path) -> None:
    theirs, ours = run_both(SCRIPT, tmp_path)
    their_shapes, our_shapes = _shapes(theirs), _shapes(ours)
    assert json.dumps(our_shapes, sort_keys=True, indent=1) == json.dumps(
        their_shapes, sort_keys=True, indent=1
    )
    assert {"child", "renamed", "boom", "seg-final", "root2", "continued", "named"} <= set(
        our_shapes
    )
    assert not {"skip-me", "noise-12", "unsampled", "under-unsampled"} & set(our_shapes)
    their_notes, our_notes = notes(theirs), notes(ours)
    for key in ("skipped", "unsampled"):
        assert our_notes[key] == their_notes[key]
    for key in [k for k in their_notes if k.startswith("sampled ")]:
        assert our_notes[key] == their_notes[key]
    # The incoming DSC is forwarded with this service's sample rate (as sentry-sdk does).
    assert our_notes["headers"]["baggage"] == their_notes["headers"]["baggage"]


WSGI_SCRIPT = """
import http.client
import http.server
import socket
import threading
import warnings
from wsgiref.simple_server import WSGIRequestHandler, make_server

from sentry_sdk.integrations.wsgi import SentryWsgiMiddleware

warnings.simplefilter("ignore", DeprecationWarning)
sentry_sdk.init(
    dsn="https://key@example.com/1",
    transport=KEEP,
    traces_sample_rate=1.0,
    trace_lifecycle="stream",
    auto_enabling_integrations=False,
    release="r1",
)


class Upstream(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        NOTES.append({"upstream": [self.headers.get("sentry-trace"), self.headers.get("baggage")]})
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args):
        pass


upstream = http.server.HTTPServer(("127.0.0.1", 0), Upstream)
upstream_thread = threading.Thread(target=upstream.serve_forever)
upstream_thread.start()


def app(environ, start_response):
    connection = http.client.HTTPConnection("127.0.0.1", upstream.server_address[1])
    connection.request("GET", "/data")
    connection.getresponse().read()
    connection.close()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]


class Quiet(WSGIRequestHandler):
    def log_message(self, *args):
        pass


server = make_server("127.0.0.1", 0, SentryWsgiMiddleware(app), handler_class=Quiet)
server_thread = threading.Thread(target=server.handle_request)
server_thread.start()
# A raw socket: the request itself must not be instrumented.
with socket.create_connection(server.server_address) as sock:
    sock.sendall(
        b"GET /hello HTTP/1.0\\r\\nHost: localhost\\r\\n"
        b"sentry-trace: 771a43a4192642f0b136d5159a501700-1234567890abcdef-1\\r\\n\\r\\n"
    )
    while sock.recv(65536):
        pass
server_thread.join()
server.server_close()
upstream.shutdown()
upstream_thread.join()
upstream.server_close()
finish()
"""

# What both SDKs put on the WSGI server span and the http.client span.
_COMMON_KEYS = {
    "sentry.op",
    "sentry.origin",
    "sentry.segment.name",
    "sentry.segment.name.source",
    "sentry.trace_lifecycle",
    "http.response.status_code",
    "sentry.release",
    "sentry.environment",
    "thread.name",
}


def _integration_shapes(found: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for item in found["items"]:
        if item["type"] != "span":
            continue
        for span in item["payload"]["items"]:
            attributes = values(span)
            out.append(
                {
                    "name": re.sub(r":\d+", ":PORT", span["name"]),
                    "status": span["status"],
                    "is_segment": span["is_segment"],
                    "parented": "parent_span_id" in span,
                    "attributes": {k: v for k, v in attributes.items() if k in _COMMON_KEYS},
                }
            )
    return out


def test_the_wsgi_and_http_client_spans_match_sentry_sdk_in_shape(tmp_path: Path) -> None:
    theirs, ours = run_both(WSGI_SCRIPT, tmp_path)
    assert _integration_shapes(ours) == _integration_shapes(theirs)
    (client_span, server_span) = _integration_shapes(ours)
    assert client_span["attributes"]["sentry.op"] == "http.client"
    assert server_span["attributes"]["sentry.op"] == "http.server"
    # Both continue the incoming trace and propagate it to the upstream service.
    our_upstream = next(n["upstream"] for n in ours["notes"] if "upstream" in n)
    assert our_upstream[0].startswith("771a43a4192642f0b136d5159a501700-")
