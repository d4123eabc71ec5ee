"""Capture-path behaviours compared side by side with sentry_sdk 2.75.

Each differential test runs the same scenario through sentry_sdk and tripwire, each
on a transport subclass of its own SDK, and compares what reached the transport:
envelopes (as wire bytes, parsed back) and `record_lost_event` calls.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
import textwrap
import warnings
from collections.abc import Iterator
from typing import Any, Callable

import pytest
from _receiver import Receiver

import tripwire
from tripwire import _data_collection as dc
from tripwire.outcomes import DataCategory, DropReason
from tripwire.scope._breadcrumbs import Ring, append_counted
from tripwire.spotlight import DEFAULT_URL, resolve_url
from tripwire.testing import MemoryTransport
from tripwire.transport import Transport

sentry_sdk = pytest.importorskip("sentry_sdk")
from _sentry_side import payloads, reset_sentry  # noqa: E402
from sentry_sdk.transport import Transport as SentryTransport  # noqa: E402

Lost = tuple[str, str, int]


def _recording(base: type) -> type:
    class Recording(base):  # type: ignore[valid-type,misc]
        def __init__(self, options: Any = None) -> None:
            super().__init__(options)
            self.raw: list[bytes] = []
            self.lost: list[Lost] = []

        def capture_envelope(self, envelope: Any) -> None:
            self.raw.append(envelope.serialize())

        def record_lost_event(
            self, reason: str, data_category: Any = None, item: Any = None, *, quantity: int = 1
        ) -> None:
            self.lost.append((reason, str(data_category), quantity))

    return Recording


SentryRecording = _recording(SentryTransport)
TripwireRecording = _recording(Transport)


def run_both(scenario: Callable[[Any], None], **options: Any) -> tuple[Any, Any]:
    """Run `scenario(sdk)` on both SDKs; return both recording transports."""
    theirs = SentryRecording()
    sentry_sdk.init(transport=theirs, default_integrations=False, release="r1", **options)
    try:
        scenario(sentry_sdk)
    finally:
        reset_sentry()
    ours = TripwireRecording()
    tripwire.init(transport=ours, default_integrations=False, release="r1", **options)
    scenario(tripwire)
    return theirs, ours


def _message(sdk: Any) -> None:
    sdk.capture_message("m")


def _error(sdk: Any) -> None:
    try:
        raise KeyError("k")
    except KeyError:
        sdk.capture_exception()


def _transaction(sdk: Any) -> None:
    with sdk.start_transaction(name="t"):
        with sdk.start_span(op="a"):
            pass
        with sdk.start_span(op="b"):
            pass


def _drop_in_processor(sdk: Any) -> None:
    with sdk.new_scope() as scope:
        scope.add_event_processor(lambda event, hint: None)
        sdk.capture_message("m")
        _transaction(sdk)


def _trim_spans_in_processor(sdk: Any) -> None:
    def trim(event: dict[str, Any], hint: Any) -> dict[str, Any]:
        event["spans"] = []
        return event

    with sdk.new_scope() as scope:
        scope.add_event_processor(trim)
        _transaction(sdk)


def _keep_one_span(event: dict[str, Any], hint: Any) -> dict[str, Any]:
    event["spans"] = event["spans"][:1]
    return event


def _raise(event: Any, hint: Any) -> Any:
    raise RuntimeError("hook failed")


LOST_CASES: list[tuple[str, Callable[[Any], None], dict[str, Any]]] = [
    ("sample_rate", _message, {"sample_rate": 0.0}),
    ("before_send", _message, {"before_send": lambda e, h: None}),
    ("before_send_raises", _message, {"before_send": _raise}),
    ("ignore_errors", _error, {"ignore_errors": [KeyError]}),
    ("error_sampler", _message, {"error_sampler": lambda e, h: 0.0}),
    ("event_processor", _drop_in_processor, {"traces_sample_rate": 1.0}),
    ("processor_trims_spans", _trim_spans_in_processor, {"traces_sample_rate": 1.0}),
    (
        "before_send_transaction",
        _transaction,
        {"traces_sample_rate": 1.0, "before_send_transaction": lambda e, h: None},
    ),
    (
        "before_send_transaction_raises",
        _transaction,
        {"traces_sample_rate": 1.0, "before_send_transaction": _raise},
    ),
    (
        "before_send_transaction_trims",
        _transaction,
        {"traces_sample_rate": 1.0, "before_send_transaction": _keep_one_span},
    ),
    ("traces_sample_rate", _transaction, {"traces_sample_rate": 0.0}),
]


@pytest.mark.parametrize(
    ("scenario", "options"),
    [pytest.param(s, o, id=name) for name, s, o in LOST_CASES],
)
def test_client_drops_reach_record_lost_event(
    scenario: Callable[[Any], None], options: dict[str, Any]
) -> None:
    theirs, ours = run_both(scenario, **options)
    assert ours.lost == theirs.lost
    assert len(ours.raw) == len(theirs.raw)
    # client.outcomes still counts them (ignore_errors locally only).
    counted = tripwire.get_client().outcomes.snapshot()
    expected: dict[tuple[str, str], int] = {}
    for reason, category, quantity in ours.lost:
        key = (reason, category)
        expected[key] = expected.get(key, 0) + quantity
    if options.get("ignore_errors"):
        expected[("ignored", "error")] = 1
    assert counted == expected


def test_an_override_calling_super_is_counted_once() -> None:
    seen: list[str] = []

    class Calling(MemoryTransport):
        def record_lost_event(self, reason: str, *args: Any, **kwargs: Any) -> None:
            seen.append(reason)
            super().record_lost_event(reason, *args, **kwargs)

    tripwire.init(transport=Calling(), sample_rate=0.0)
    tripwire.capture_message("dropped")
    assert seen == ["sample_rate"]
    assert tripwire.get_client().outcomes.snapshot() == {("sample_rate", "error"): 1}


def test_unknown_reasons_and_categories_are_counted() -> None:
    memory = MemoryTransport()
    tripwire.init(transport=memory)
    memory.record_lost_event("made_up_reason", "made_up_category", quantity=3)
    memory.record_lost_event(DropReason.QUEUE_OVERFLOW, DataCategory.ERROR)
    assert tripwire.get_client().outcomes.snapshot() == {
        ("made_up_reason", "made_up_category"): 3,
        ("queue_overflow", "error"): 1,
    }


def test_client_reports_carry_client_side_drops(rx: Receiver) -> None:
    tripwire.init(rx.dsn(), sample_rate=0.0, default_integrations=False)
    tripwire.capture_message("dropped")
    tripwire.flush(10)
    tripwire.get_client().close()
    assert rx.discarded() == {("sample_rate", "error"): 1}


# -- 2. re-entrancy ---------------------------------------------------------------------------

_REENTRANT = """
import sys
from collections.abc import Mapping
sys.setrecursionlimit(400)
import {sdk} as sdk
from {transport_module} import Transport

class Keep(Transport):
    def __init__(self, *a):
        super().__init__(*a)
        self.events = []
    def capture_envelope(self, envelope):
        self.events.append(envelope.get_event())

class Evil:
    def __repr__(self):
        try:
            raise ValueError("in repr")
        except ValueError:
            sdk.capture_exception()
        sdk.capture_message("from repr")
        return "Evil()"

class EvilMap(Mapping):
    def __getitem__(self, key):
        return 1
    def __len__(self):
        return 1
    def __iter__(self):
        try:
            raise KeyError("in iter")
        except KeyError:
            sdk.capture_exception()
        return iter(["a"])

def fail():
    evil = Evil()
    mapping = EvilMap()
    raise RuntimeError("outer")

keep = Keep()
sdk.init(transport=keep, default_integrations=False,
         before_send=lambda e, h: (sdk.capture_message("from before_send"), e)[1])
try:
    fail()
except RuntimeError:
    sdk.capture_exception()
sdk.set_extra("m", EvilMap())
sdk.capture_message("message")
for event in keep.events:
    print(event.get("message") or event["exception"]["values"][-1]["value"])
"""


@pytest.mark.parametrize("sdk", ["sentry_sdk", "tripwire"])
def test_capture_from_user_code_during_capture_does_not_recurse(sdk: str) -> None:
    code = _REENTRANT.format(sdk=sdk, transport_module=f"{sdk}.transport")
    if sdk == "sentry_sdk":
        # sentry_sdk recurses through before_send (until RecursionError); only the
        # repr / __iter__ part is compared.
        code = code.replace(
            ',\n         before_send=lambda e, h: (sdk.capture_message("from before_send"), e)[1])',
            ")",
        )
    done = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "SENTRY_DSN": ""},
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["outer", "message"]


def test_nested_capture_is_a_no_op_and_the_outer_event_is_whole(
    init_memory: Callable[..., MemoryTransport],
) -> None:
    memory = init_memory()

    class Loud:
        def __repr__(self) -> str:
            assert tripwire.capture_message("nested") is None
            return "Loud()"

    loud = Loud()
    try:
        raise ValueError(str(id(loud)))
    except ValueError:
        assert tripwire.capture_exception() is not None
    (event,) = memory.events
    assert event["exception"]["values"][0]["stacktrace"]["frames"][-1]["vars"]["loud"] == "Loud()"
    # The guard is released: the next capture goes through.
    assert tripwire.capture_message("after") is not None


# -- 3. notes and errno ------------------------------------------------------------------------


def _exc_values(events: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    return [
        [{k: v.get(k) for k in ("type", "value", "mechanism")} for v in e["exception"]["values"]]
        for e in events
    ]


def _notes_and_errno(sdk: Any) -> None:
    def capture(exc: BaseException) -> None:
        try:
            raise exc
        except BaseException:
            sdk.capture_exception()

    capture(FileNotFoundError(2, "nope", "/tmp/x"))
    capture(OSError("no errno"))
    capture(type("Custom", (Exception,), {"errno": 0})("custom errno"))
    try:
        try:
            raise OSError(13, "denied")
        except OSError as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError:
        sdk.capture_exception()
    for notes in (["note one", "note two"], ["kept", 3, None], "not a list", []):
        exc = ValueError("with notes")
        exc.__notes__ = notes  # type: ignore[attr-defined]
        capture(exc)
    empty = ValueError()
    empty.__notes__ = ["only a note"]  # type: ignore[attr-defined]
    capture(empty)
    long = ValueError("x" * 30)
    long.__notes__ = ["y" * 30]  # type: ignore[attr-defined]
    capture(long)


def test_notes_and_errno_as_sentry() -> None:
    theirs, ours = run_both(_notes_and_errno, max_value_length=40)
    assert _exc_values(payloads(ours.raw)) == _exc_values(payloads(theirs.raw))
    values = _exc_values(payloads(ours.raw))
    assert values[0][0]["mechanism"]["meta"] == {"errno": {"number": 2}}
    assert values[4][0]["value"] == "with notes\nnote one\nnote two"


@pytest.mark.skipif(sys.version_info < (3, 11), reason="ExceptionGroup and add_note: 3.11+")
def test_group_notes_and_member_errno_as_sentry() -> None:
    def scenario(sdk: Any) -> None:
        group = ExceptionGroup("group", [OSError(1, "member")])  # noqa: F821
        group.add_note("a note")
        try:
            raise group
        except Exception:
            sdk.capture_exception()

    theirs, ours = run_both(scenario)
    assert _exc_values(payloads(ours.raw)) == _exc_values(payloads(theirs.raw))


def test_a_raising_errno_or_notes_attribute_is_ignored(
    init_memory: Callable[..., MemoryTransport],
) -> None:
    memory = init_memory()

    class Odd(Exception):
        @property
        def errno(self) -> int:
            raise RuntimeError("no")

        @property
        def __notes__(self) -> list[str]:
            raise RuntimeError("no")

    tripwire.capture_exception(Odd("odd"))
    (value,) = memory.events[0]["exception"]["values"]
    assert value["value"] == "odd" and "meta" not in value["mechanism"]


# -- 4. breadcrumbs ----------------------------------------------------------------------------


def _crumbs(events: list[dict[str, Any]]) -> list[Any]:
    return [
        (
            [c.get("message") for c in e["breadcrumbs"]["values"]],
            e.get("_meta", {}).get("breadcrumbs"),
        )
        for e in events
    ]


def _merged_crumbs(sdk: Any) -> None:
    sdk.add_breadcrumb(message="a")
    with sdk.new_scope() as scope:
        scope.add_breadcrumb(message="inner1")
        scope.add_breadcrumb(message="inner2")
        sdk.capture_message("merged")
    sdk.capture_event(
        {"message": "own", "breadcrumbs": {"values": [{"message": f"own{i}"} for i in range(4)]}}
    )


def test_merged_breadcrumbs_are_not_capped_again() -> None:
    theirs, ours = run_both(_merged_crumbs, max_breadcrumbs=2)
    assert _crumbs(payloads(ours.raw)) == _crumbs(payloads(theirs.raw))
    assert len(payloads(ours.raw)[1]["breadcrumbs"]["values"]) == 5


def test_crumbs_that_fell_off_a_ring_give_the_length_annotation(
    init_memory: Callable[..., MemoryTransport],
) -> None:
    memory = init_memory(max_breadcrumbs=3)
    ring = Ring(maxlen=3)
    for i in range(5):
        append_counted(ring, {"message": f"c{i}", "data": {"password": "p"} if i == 4 else {}})
    data = tripwire.get_isolation_scope()._w()
    data.breadcrumbs = ring
    data.owned |= 8  # CRUMBS: the ring is this scope's own
    tripwire.capture_message("m")
    tripwire.capture_message("m", scope=lambda s: s.set_tag("t", "v"))
    for event in memory.events:
        assert event["_meta"]["breadcrumbs"] == {
            "": {"len": 5},
            "values": {"2": {"data": {"password": {"": {"rem": [["!config", "s"]]}}}}},
        }


def test_trimmed_breadcrumbs_meta_as_sentry() -> None:
    def scenario(sdk: Any) -> None:
        for i in range(5):
            sdk.add_breadcrumb(message=f"c{i}")
        sdk.capture_message("m1")
        sdk.get_global_scope().add_breadcrumb(message="g")
        sdk.capture_message("m2")

    theirs, ours = run_both(scenario, max_breadcrumbs=3)
    try:
        assert _crumbs(payloads(ours.raw)) == _crumbs(payloads(theirs.raw))
    finally:
        tripwire.get_global_scope().clear_breadcrumbs()


# -- 5. data_collection ------------------------------------------------------------------------


@pytest.fixture
def sentry_dc() -> Iterator[Any]:
    from sentry_sdk import data_collection

    yield data_collection


_HEADERS = {
    "Authorization": "Bearer x",
    "Content-Type": "json",
    "X-Forwarded-For": "1.2.3.4",
    "foo": "bar",
    "noval": "",
    "x-user": "u",
}
_BEHAVIOURS: list[dict[str, Any]] = [
    {"mode": "off"},
    {"mode": "denylist"},
    {"mode": "denylist", "terms": ["foo", "a"]},
    {"mode": "denylist", "terms": list(dc.PII_TERMS)},
    {"mode": "allowlist"},
    {"mode": "allowlist", "terms": ["FOO", "authorization", "a"]},
]
_QUERIES = [
    "a=1&password=2&token=3&b=",
    "a=1&a=2&auth=x",
    "",
    "noval&x=1",
    "a=%20b&k=z",
    "x=1&&y=2",
]


@pytest.mark.parametrize("behaviour", _BEHAVIOURS, ids=str)
def test_collection_rules_as_sentry(sentry_dc: Any, behaviour: dict[str, Any]) -> None:
    theirs = sentry_dc._apply_key_value_collection_filtering(_HEADERS, behaviour=behaviour)
    assert dc.filter_key_values(_HEADERS, behaviour) == theirs
    for query in _QUERIES:
        expected = sentry_dc._apply_data_collection_filtering_to_query_string(
            query, behaviour=behaviour
        )
        assert dc.filter_query_string(query, behaviour) == expected, query
    for key in _HEADERS:
        assert dc.is_sensitive_key(key, behaviour.get("terms")) == sentry_dc._is_sensitive_key(
            key, behaviour.get("terms")
        )


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"send_default_pii": True},
        {"include_local_variables": False, "include_source_context": False},
        {"data_collection": {}},
        {"data_collection": {"stack_frame_variables": False, "frame_context_lines": 2}},
        {"data_collection": {"cookies": {"mode": "allowlist", "terms": ["a"]}, "http_bodies": []}},
        {"data_collection": {"http_headers": {"request": {"mode": "off"}}, "user_info": False}},
        {"_experiments": {"data_collection": {"gen_ai": {"inputs": False}}}},
    ],
    ids=str,
)
def test_resolved_configuration_as_sentry(options: dict[str, Any]) -> None:
    from sentry_sdk.client import _get_options

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # sentry: send_default_pii
        theirs = _get_options(**options)["data_collection"]
    tripwire.init(transport=MemoryTransport(), **options)
    assert tripwire.get_client().options["data_collection"] == theirs


@pytest.mark.parametrize(
    "bad", ["not a dict", {"cookies": {"mode": "weird"}}, {"frame_context_lines": -1}]
)
def test_invalid_data_collection_is_refused(bad: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        tripwire.init(transport=MemoryTransport(), data_collection=bad)


def test_request_rules_with_and_without_data_collection() -> None:
    legacy = {"data_collection": dc.from_legacy(False, True, True), "send_default_pii": False}
    pii = {"data_collection": dc.from_legacy(True, True, True), "send_default_pii": True}
    chosen = {
        "data_collection": dc.from_user({"cookies": {"mode": "allowlist", "terms": ["theme"]}})
    }
    headers = {"Cookie": "a=b", "X-Real-IP": "1.2.3.4", "Accept": "*/*", "X-Api-Key": "k"}
    assert dc.request_headers(headers, legacy) == {
        "Cookie": "[Filtered]",
        "X-Real-IP": "[Filtered]",
        "Accept": "*/*",
        "X-Api-Key": "[Filtered]",
    }
    assert dc.request_headers(headers, pii) == headers
    assert dc.request_headers(headers, chosen) == {
        "Cookie": "[Filtered]",
        "X-Real-IP": "1.2.3.4",
        "Accept": "*/*",
        "X-Api-Key": "[Filtered]",
    }
    cookies = {"theme": "dark", "sessionid": "s", "other": "o"}
    assert dc.request_cookies(cookies, legacy) is None
    assert dc.request_cookies(cookies, pii) == cookies
    assert dc.request_cookies(cookies, chosen) == {
        "theme": "dark",
        "sessionid": "[Filtered]",
        "other": "[Filtered]",
    }
    assert dc.request_query("a=1&token=t", legacy) == "a=1&token=t"
    assert dc.request_query("a=1&token=t", chosen) == "a=1&token=%5BFiltered%5D"
    no_bodies = {"data_collection": dc.from_user({"http_bodies": ["outgoing_request"]})}
    assert dc.body_decision(legacy, "incoming_request", 10) == "collect"
    assert (
        dc.body_decision({**legacy, "max_request_body_size": "small"}, "incoming_request", 2000)
        == "too_large"
    )
    assert (
        dc.body_decision({**legacy, "max_request_body_size": "never"}, "incoming_request", 0)
        == "too_large"
    )
    assert (
        dc.body_decision({**legacy, "max_request_body_size": "always"}, "incoming_request", 10**7)
        == "collect"
    )
    assert dc.body_decision(no_bodies, "incoming_request", 10) == "off"
    assert dc.body_decision(no_bodies, "outgoing_request", 10) == "collect"


def _frame(events: list[dict[str, Any]]) -> dict[str, Any]:
    frame = events[0]["exception"]["values"][0]["stacktrace"]["frames"][-1]
    return {
        "vars": frame.get("vars"),
        "pre": len(frame.get("pre_context", [])),
        "post": len(frame.get("post_context", [])),
        "line": "context_line" in frame,
        "user": events[0].get("user"),
        "meta": events[0].get("_meta"),
    }


def _fail_with_locals(sdk: Any) -> None:
    sdk.set_user({"id": "1", "ip_address": "1.2.3.4"})

    def fail() -> None:
        password = "hunter2"
        count = 1
        raise ValueError(f"{password}{count}")

    try:
        fail()
    except ValueError:
        sdk.capture_exception()


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"data_collection": {}},
        {"data_collection": {"stack_frame_variables": False}},
        {"data_collection": {"frame_context_lines": 0}},
        {"data_collection": {"frame_context_lines": 2}, "include_source_context": False},
        {"data_collection": {}, "include_local_variables": False},
        {"include_source_context": False, "include_local_variables": False},
    ],
    ids=str,
)
def test_frames_follow_data_collection_as_sentry(options: dict[str, Any]) -> None:
    theirs, ours = run_both(_fail_with_locals, **options)
    expected = _frame(payloads(theirs.raw))
    if "data_collection" in options and expected["vars"] is not None:
        # Deliberately not 2.75: it drops the event scrubber when data_collection is
        # given and sends the `password` local as it is; tripwire still filters it.
        assert expected["vars"]["password"] == "'hunter2'"
        expected["vars"]["password"] = "[Filtered]"
        expected["meta"] = {
            "exception": {
                "values": {
                    "0": {
                        "stacktrace": {
                            "frames": {
                                "1": {"vars": {"password": {"": {"rem": [["!config", "s"]]}}}}
                            }
                        }
                    }
                }
            }
        }
    assert _frame(payloads(ours.raw)) == expected


# -- 6. attachments ----------------------------------------------------------------------------


def test_unusable_attachments_are_left_out_and_the_event_is_sent(
    init_memory: Callable[..., MemoryTransport], tmp_path: Any
) -> None:
    memory = init_memory()

    def broken() -> bytes:
        raise RuntimeError("no content")

    with tripwire.new_scope() as scope:
        scope.add_attachment(path=str(tmp_path / "missing.txt"))
        scope.add_attachment(bytes=broken, filename="broken.txt")
        scope.add_attachment(bytes=5, filename="number.txt")  # type: ignore[arg-type]
        scope.add_attachment(path=str(tmp_path))  # a directory
        scope.add_attachment(bytes=lambda: b"lazy", filename="lazy.txt")
        scope.add_attachment(bytes="text", filename="text.txt")
        assert tripwire.capture_message("with attachments") is not None
    assert [e["message"] for e in memory.events] == ["with attachments"]
    assert [(i.headers["filename"], i.payload.get_bytes()) for i in memory.items("attachment")] == [
        ("lazy.txt", b"lazy"),
        ("text.txt", b"text"),
    ]


def test_attachment_without_a_source_is_refused_as_sentry() -> None:
    for sdk in (sentry_sdk, tripwire):
        with pytest.raises(TypeError):
            sdk.get_isolation_scope().add_attachment()
        with pytest.raises(TypeError):
            sdk.get_isolation_scope().add_attachment(bytes=b"x")


# -- 7. pickle ---------------------------------------------------------------------------------


def test_a_pickled_client_can_send(rx: Receiver) -> None:
    client = tripwire.Client(rx.dsn(), release="r1", default_integrations=False)
    copy = pickle.loads(pickle.dumps(client))
    client.close()
    assert copy.options["release"] == "r1" and copy.dsn == client.dsn
    assert copy.transport is not None and copy.transport is not client.transport
    tripwire.get_global_scope().set_client(copy)
    tripwire.capture_message("from the copy")
    copy.flush(10)
    assert [e["message"] for e in rx.events()] == ["from the copy"]
    copy.close()


def test_a_client_with_a_transport_instance_pickles() -> None:
    client = tripwire.Client(transport=MemoryTransport())
    copy = pickle.loads(pickle.dumps(client))
    assert isinstance(copy.transport, MemoryTransport)
    copy.close()
    client.close()


# -- 8. deprecations ---------------------------------------------------------------------------


def test_init_as_a_context_manager_warns_at_the_callers_line() -> None:
    with pytest.warns(DeprecationWarning) as caught:
        with tripwire.init(transport=MemoryTransport()):
            pass
    assert [w.filename for w in caught] == [__file__]


def test_function_transport_warns_at_the_callers_line() -> None:
    got: list[Any] = []
    with pytest.warns(DeprecationWarning, match="transport") as caught:
        tripwire.init(transport=got.append)
    assert [w.filename for w in caught] == [__file__]
    tripwire.capture_message("still works")
    assert [e["message"] for e in got] == ["still works"]


@pytest.mark.parametrize(
    "options",
    [
        {"profiles_sample_rate": 1.0},
        {"profiles_sampler": lambda c: 1.0},
        {"_experiments": {"profiles_sample_rate": 1.0}},
    ],
    ids=["profiles_sample_rate", "profiles_sampler", "_experiments"],
)
def test_transaction_profiling_options_warn(options: dict[str, Any]) -> None:
    with pytest.warns(DeprecationWarning, match="profiling") as caught:
        tripwire.init(transport=MemoryTransport(), **options)
    assert [w.filename for w in caught] == [__file__]


def test_plain_init_does_not_warn() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        tripwire.init(transport=MemoryTransport(), data_collection={})


# -- 9. spotlight ------------------------------------------------------------------------------


def test_spotlight_precedence_as_sentry(monkeypatch: pytest.MonkeyPatch) -> None:
    from sentry_sdk.spotlight import setup_spotlight

    for option in (None, True, False, "http://opt:1/stream"):
        for env in (None, "1", "0", "false", "http://env:2/stream", ""):
            if env is None:
                monkeypatch.delenv("SENTRY_SPOTLIGHT", raising=False)
            else:
                monkeypatch.setenv("SENTRY_SPOTLIGHT", env)
            spotlight = setup_spotlight({"spotlight": option})
            expected = spotlight.url if spotlight is not None else None
            # tripwire's options hold the environment value when the option is unset.
            stored = env or None if option is None else option
            assert resolve_url(stored, env) == expected, (option, env)
    assert resolve_url(True, None) == DEFAULT_URL


def test_spotlight_true_takes_the_url_from_the_environment(
    rx: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SENTRY_SPOTLIGHT", f"{rx.url}/stream")
    tripwire.init(spotlight=True, default_integrations=False)
    assert tripwire.get_client().should_send_default_pii()  # Spotlight without a DSN
    tripwire.capture_message("to the env url")
    tripwire.flush(10)
    (request,) = rx.wait_for(1)
    assert request.path == "/stream"
    tripwire.get_client().close()


def test_spotlight_gets_every_envelope(rx: Receiver) -> None:
    memory = MemoryTransport()
    tripwire.init(
        transport=memory,
        spotlight=f"{rx.url}/stream",
        default_integrations=False,
        enable_logs=True,
        release="r1",
    )
    tripwire.capture_message("event")
    from tripwire.crons import capture_checkin

    capture_checkin(monitor_slug="job", status="ok")
    tripwire.logger.info("a log")
    tripwire.start_session()
    tripwire.end_session()
    tripwire.flush(10)
    requests = rx.wait_for(4)
    sidecar = sorted({t for r in requests for t in r.item_types if t})
    sent = sorted({item.type for envelope in memory.envelopes for item in envelope.items})
    assert sidecar == sent
    assert {"event", "check_in", "log", "session"} <= set(sidecar)
    tripwire.get_client().close()
