"""The Rust `tracing` integration, driven as a pyo3 extension's subscriber drives it.

There is no Rust extension here: `FakeExtension` plays the
``pyo3-python-tracing-subscriber`` bridge. Its `initialize_tracing` is the
`initializer` (it receives the layer), and it calls the layer with the JSON strings
the bridge sends: span attributes with their metadata, events, recorded values, and
the state `on_new_span` returned passed back on record and close. The differential
test feeds one sequence to sentry_sdk 2.75's layer and tripwire's and compares the
envelopes.
"""

from __future__ import annotations

import json
import warnings
from typing import Any, Optional

import pytest
from _sentry_side import DSN, Ids, SentryCapture, normalise, parse_envelopes, reset_sentry

import tripwire
from tripwire.integrations.rust_tracing import (
    EventTypeMapping,
    RustTracingIntegration,
    RustTracingLayer,
    RustTracingLevel,
    default_event_type_mapping,
    default_span_filter,
)
from tripwire.testing import MemoryTransport


class FakeExtension:
    """A native extension's `tracing` output, as the pyo3 bridge hands it to the layer."""

    def __init__(self) -> None:
        self.layer: Any = None
        self.open: list[Any] = []  # states of the entered spans, innermost last
        self.next_id = 0

    def initialize_tracing(self, layer: Any) -> None:
        self.layer = layer

    @staticmethod
    def metadata(
        level: str, name: Optional[str], fields: dict[str, Any], **more: Any
    ) -> dict[str, Any]:
        found = {
            "level": level,
            "name": name,
            "target": "demo_ext::orders",
            "module_path": "demo_ext::orders",
            "file": "src/orders.rs",
            "line": 42,
            "fields": list(fields),
        }
        found.update(more)
        return {key: value for key, value in found.items() if value is not None}

    def event(self, level: str, message: str, **fields: Any) -> None:
        payload = {
            "metadata": self.metadata(level, f"event src/orders.rs:{len(message)}", fields),
            "message": message,
            **fields,
        }
        self.layer.on_event(json.dumps(payload), self.open[-1] if self.open else None)

    def new_span(
        self,
        level: str,
        name: Optional[str],
        message: Optional[str] = None,
        module_path: Optional[str] = "demo_ext::orders",
        **fields: Any,
    ) -> tuple[str, Any]:
        self.next_id += 1
        span_id = str(self.next_id)
        metadata = self.metadata(level, name, fields, module_path=module_path)
        attrs: dict[str, Any] = {"metadata": metadata, **fields}
        if message is not None:
            attrs["message"] = message
        state = self.layer.on_new_span(json.dumps(attrs), span_id)
        self.open.append(state)
        return span_id, state

    def record(self, span: tuple[str, Any], **values: Any) -> None:
        self.layer.on_record(span[0], json.dumps(values), span[1])

    def close(self, span: tuple[str, Any]) -> None:
        self.open.remove(span[1])
        self.layer.on_close(span[0], span[1])


def init(ext: FakeExtension, **options: Any) -> MemoryTransport:
    memory = MemoryTransport()
    integration_options = {
        k: options.pop(k)
        for k in ("event_type_mapping", "span_filter", "include_tracing_fields")
        if k in options
    }
    tripwire.init(
        transport=memory,
        default_integrations=False,
        integrations=[
            RustTracingIntegration("demo_ext", ext.initialize_tracing, **integration_options)
        ],
        **options,
    )
    return memory


def test_the_initializer_receives_the_layer_and_identifier_is_per_extension() -> None:
    first, second = FakeExtension(), FakeExtension()
    memory = MemoryTransport()
    tripwire.init(
        transport=memory,
        default_integrations=False,
        integrations=[
            RustTracingIntegration("first_ext", first.initialize_tracing),
            RustTracingIntegration("second_ext", second.initialize_tracing),
        ],
    )
    assert isinstance(first.layer, RustTracingLayer)
    assert first.layer is not second.layer
    assert {"first_ext", "second_ext"} <= set(tripwire.get_client().integrations)
    assert first.layer.origin == "auto.function.rust_tracing.first_ext"


def test_default_mapping_errors_become_events_warn_and_info_breadcrumbs() -> None:
    ext = FakeExtension()
    memory = init(ext)
    ext.event("TRACE", "very fine")
    ext.event("DEBUG", "fine")
    ext.event("INFO", "order received")
    ext.event("WARN", "stock low", sku="A-1")
    ext.event("ERROR", "payment failed", code=402, retry=False)
    (event,) = memory.events
    assert event["logger"] == "demo_ext::orders"
    assert event["level"] == "error"
    assert event["message"] == "payment failed"
    assert event["contexts"]["rust_tracing_location"] == {
        "module_path": "demo_ext::orders",
        "file": "src/orders.rs",
        "line": 42,
    }
    # Event fields are sent as they are (only span fields count as PII, as in sentry_sdk).
    assert event["contexts"]["rust_tracing_fields"] == {"code": 402, "retry": False}
    crumbs = event["breadcrumbs"]["values"]
    assert [(c["level"], c["message"]) for c in crumbs] == [
        ("info", "order received"),
        ("warning", "stock low"),
    ]


def test_custom_mapping_can_send_events_and_ignore_errors() -> None:
    def mapping(metadata: dict[str, Any]) -> EventTypeMapping:
        if metadata["level"] == "DEBUG":
            return EventTypeMapping.Event
        return EventTypeMapping.Ignore

    ext = FakeExtension()
    memory = init(ext, event_type_mapping=mapping)
    ext.event("ERROR", "ignored now")
    ext.event("DEBUG", "kept")
    (event,) = memory.events
    assert (event["level"], event["message"]) == ("debug", "kept")
    assert "rust_tracing_fields" not in event["contexts"]


def test_spans_are_children_of_the_active_span_and_named_as_sentry_sdk() -> None:
    ext = FakeExtension()
    memory = init(ext, traces_sample_rate=1.0)
    with tripwire.start_transaction(name="rust", op="task") as transaction:
        outer = ext.new_span("INFO", "handle", order_id=7)
        skipped = ext.new_span("DEBUG", "noise")
        inner = ext.new_span("WARN", "query", message="SELECT orders")
        ext.close(inner)
        ext.close(skipped)
        bare = ext.new_span("ERROR", "bare", module_path=None)
        ext.close(bare)
        unnamed = ext.new_span("INFO", None, module_path=None)
        ext.close(unnamed)
        ext.close(outer)
        assert tripwire.get_current_span() is transaction
    assert skipped[1] is None
    (tx,) = memory.transactions
    spans = {span["description"]: span for span in tx["spans"]}
    assert list(spans) == ["demo_ext::orders::handle", "SELECT orders", "bare", "<unknown>"]
    root = tx["contexts"]["trace"]["span_id"]
    handle = spans["demo_ext::orders::handle"]
    assert handle["parent_span_id"] == root
    assert spans["SELECT orders"]["parent_span_id"] == handle["span_id"]
    assert spans["bare"]["parent_span_id"] == handle["span_id"]
    for span in spans.values():
        assert (span["op"], span["origin"]) == ("function", "auto.function.rust_tracing.demo_ext")
    assert handle["data"]["order_id"] == "[Filtered]"


@pytest.mark.parametrize(
    ("options", "shown"),
    [
        ({}, False),
        ({"send_default_pii": True}, True),
        ({"include_tracing_fields": True}, True),
        ({"send_default_pii": True, "include_tracing_fields": False}, False),
    ],
)
def test_span_field_values_are_pii(options: dict[str, Any], shown: bool) -> None:
    ext = FakeExtension()
    memory = init(ext, traces_sample_rate=1.0, **options)
    with tripwire.start_transaction(name="rust"):
        span = ext.new_span("INFO", "handle", user="jane")
        ext.record(span, rows=3)
        ext.close(span)
    (handled,) = memory.transactions[0]["spans"]
    data = {k: v for k, v in handled["data"].items() if not k.startswith("thread.")}
    expected = (
        {"user": "jane", "rows": 3} if shown else {"user": "[Filtered]", "rows": "[Filtered]"}
    )
    assert data == expected


def test_malformed_input_never_raises_into_the_extension() -> None:
    def failing_filter(metadata: dict[str, Any]) -> bool:
        raise RuntimeError("filter bug")

    ext = FakeExtension()
    memory = init(ext, span_filter=failing_filter, traces_sample_rate=1.0)
    layer = ext.layer
    layer.on_event("{not json", None)
    layer.on_event(json.dumps({"metadata": {"level": "LOUD"}}), None)
    assert layer.on_new_span(json.dumps({"metadata": {"level": "INFO"}}), "1") is None
    layer.on_record("1", "[]", None)
    layer.on_close("1", None)
    tripwire.flush()
    assert memory.raw == []


def test_level_helpers_follow_sentry_sdk() -> None:
    assert default_span_filter({"level": "INFO"}) is True
    assert default_span_filter({"level": "DEBUG"}) is False
    assert [default_event_type_mapping({"level": level.value}) for level in RustTracingLevel] == [
        EventTypeMapping.Ignore,
        EventTypeMapping.Ignore,
        EventTypeMapping.Breadcrumb,
        EventTypeMapping.Breadcrumb,
        EventTypeMapping.Exc,
    ]


# --------------------------------------------------------------------------- differential


def _sequence(sdk: Any, ext: FakeExtension) -> None:
    ext.event("INFO", "booting")
    with sdk.start_transaction(name="rust", op="task"):
        outer = ext.new_span("INFO", "handle", order_id=7)
        ext.event("INFO", "order received", sku="A-1")
        inner = ext.new_span("WARN", "query", message="SELECT orders", table="orders")
        ext.record(inner, rows=3, cached=False)
        skipped = ext.new_span("DEBUG", "noise", detail="x")
        ext.record(skipped, more=1)
        ext.event("DEBUG", "ignored")
        ext.event("WARN", "slow query")
        ext.close(skipped)
        ext.event("ERROR", "payment failed", code=402)
        ext.close(inner)
        bare = ext.new_span("ERROR", "bare", module_path=None)
        ext.close(bare)
        unnamed = ext.new_span("INFO", None, module_path=None)
        ext.close(unnamed)
        ext.close(outer)
    sdk.capture_message("after")


def _fresh_trace(sdk: Any) -> None:
    # Events outside a transaction carry the scopes' trace: start each run on a new one,
    # whatever an earlier test in this process left on sentry_sdk's scopes (seen in
    # full runs: another test's DSN and release in the "after" event's trace header).
    for scope in (sdk.get_global_scope(), sdk.get_isolation_scope(), sdk.get_current_scope()):
        scope.set_new_propagation_context()


def _run_sentry(**options: Any) -> list[Any]:
    import sentry_sdk
    from sentry_sdk.integrations.rust_tracing import RustTracingIntegration as Theirs

    ext, capture = FakeExtension(), SentryCapture()
    layer_options = {k: options.pop(k) for k in ("include_tracing_fields",) if k in options}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        sentry_sdk.init(
            dsn=DSN,
            transport=capture,
            release="r1",
            default_integrations=False,
            enable_backpressure_handling=False,
            integrations=[Theirs("demo_ext", ext.initialize_tracing, **layer_options)],
            **options,
        )
        try:
            _fresh_trace(sentry_sdk)
            _sequence(sentry_sdk, ext)
            sentry_sdk.flush()
        finally:
            reset_sentry()
    return parse_envelopes(capture.raw)


def _run_tripwire(**options: Any) -> list[Any]:
    ext, memory = FakeExtension(), MemoryTransport()
    layer_options = {k: options.pop(k) for k in ("include_tracing_fields",) if k in options}
    tripwire.init(
        dsn=DSN,
        transport=memory,
        release="r1",
        default_integrations=False,
        integrations=[RustTracingIntegration("demo_ext", ext.initialize_tracing, **layer_options)],
        **options,
    )
    client = tripwire.get_client()
    try:
        _fresh_trace(tripwire)
        _sequence(tripwire, ext)
        tripwire.flush()
    finally:
        client.close()
    return parse_envelopes(memory.raw)


def _normalised(envelopes: list[Any]) -> list[Any]:
    ids = Ids()
    out = []
    for header, items in envelopes:
        norm_items = []
        for item_type, payload in items:
            contexts = dict(payload.get("contexts") or {})
            for key in ("os", "runtime", "device"):  # the machine's, not the integration's
                contexts.pop(key, None)
            payload = {**payload, "contexts": contexts}
            norm_items.append((item_type, normalise(payload, ids, mask_rand=True)))
        out.append((normalise(header, ids, mask_rand=True), norm_items))
    return out


@pytest.mark.parametrize(
    "options",
    [
        {"traces_sample_rate": 1.0},
        {"traces_sample_rate": 1.0, "send_default_pii": True},
        {"traces_sample_rate": 1.0, "include_tracing_fields": True},
        {},  # tracing off: events and breadcrumbs only
    ],
)
def test_same_envelopes_as_sentry_sdk(options: dict[str, Any]) -> None:
    theirs = _normalised(_run_sentry(**options))
    ours = _normalised(_run_tripwire(**options))
    assert ours == theirs
    kinds = [item_type for _, items in ours for item_type, _ in items]
    assert kinds.count("event") == 2
    assert kinds.count("transaction") == (1 if options else 0)
