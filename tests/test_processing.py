"""Options that shape processing: sampling, hooks, ignore rules, scrubbing, limits, attachments."""

from __future__ import annotations

import logging
from typing import Any

import pytest

import tripwire
from tripwire.scrubber import DEFAULT_DENYLIST, EventScrubber
from tripwire.testing import MemoryTransport


def test_unknown_option_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match="max_breadcrumb"):
        tripwire.init(max_breadcrumb=10)


def test_wrong_option_type_is_a_clear_error() -> None:
    with pytest.raises(TypeError, match="max_breadcrumbs"):
        tripwire.init(max_breadcrumbs="often")
    with pytest.raises((TypeError, ValueError), match="before_send"):
        tripwire.init(before_send=5)


def test_malformed_dsn_is_a_clear_error() -> None:
    from tripwire.dsn import BadDsn

    with pytest.raises(BadDsn):
        tripwire.init(dsn="https://sentry.example.com/1")  # no public key


def test_sample_rate_zero_drops_and_counts(init_memory) -> None:  # type: ignore[no-untyped-def]
    memory = init_memory(sample_rate=0.0)
    assert tripwire.capture_message("never") is None
    assert memory.events == []
    assert tripwire.get_client().outcomes.snapshot() == {("sample_rate", "error"): 1}


def test_error_sampler_sees_the_event_and_hint(init_memory) -> None:  # type: ignore[no-untyped-def]
    seen: list[Any] = []

    def sampler(event: dict[str, Any], hint: dict[str, Any]) -> float:
        seen.append((event.get("message"), hint.get("exc_info") is not None))
        return 0.0 if event.get("message") == "drop" else 1.0

    memory = init_memory(error_sampler=sampler)
    tripwire.capture_message("drop")
    tripwire.capture_message("keep")
    assert [e["message"] for e in memory.events] == ["keep"]
    assert seen == [("drop", False), ("keep", False)]


def test_before_send_can_modify_and_drop(init_memory) -> None:  # type: ignore[no-untyped-def]
    def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any] | None:
        if event.get("message") == "secret":
            return None
        event["message"] = event["message"] + " (edited)"
        return event

    memory = init_memory(before_send=before_send)
    assert tripwire.capture_message("secret") is None
    assert tripwire.capture_message("hello") is not None
    assert [e["message"] for e in memory.events] == ["hello (edited)"]
    assert tripwire.get_client().outcomes.snapshot() == {("before_send", "error"): 1}


def test_before_send_that_raises_drops_and_logs(init_memory, caplog) -> None:  # type: ignore[no-untyped-def]
    def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        raise RuntimeError("filter bug")

    memory = init_memory(before_send=before_send)
    with caplog.at_level(logging.DEBUG, logger="tripwire.errors"):
        assert tripwire.capture_message("x") is None
    assert memory.events == []
    assert "filter bug" in caplog.text


def test_before_send_that_logs_does_not_recurse(init_memory) -> None:  # type: ignore[no-untyped-def]
    log = logging.getLogger("app.hooks")

    def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        log.error("inside before_send: %s", event.get("message"))
        return event

    memory = init_memory(before_send=before_send)
    tripwire.capture_message("once")
    assert [e.get("message") for e in memory.events] == ["once"]


def test_ignore_errors_by_class_and_name(init_memory) -> None:  # type: ignore[no-untyped-def]
    class AppError(Exception):
        pass

    memory = init_memory(ignore_errors=[KeyError, "AppError"])
    for exc in (KeyError("k"), LookupError("parent is not ignored"), AppError("by name")):
        try:
            raise exc
        except Exception:
            tripwire.capture_exception()
    assert [e["exception"]["values"][-1]["type"] for e in memory.events] == ["LookupError"]


def test_debug_true_says_why_an_event_was_dropped(init_memory, caplog) -> None:  # type: ignore[no-untyped-def]
    init_memory(sample_rate=0.0, debug=True)
    with caplog.at_level(logging.DEBUG, logger="tripwire.errors"):
        tripwire.capture_message("x")
    assert "sample_rate" in caplog.text


def test_global_event_processor(transport: MemoryTransport) -> None:
    from tripwire.scope import add_global_event_processor

    @add_global_event_processor
    def tag_everything(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
        event.setdefault("tags", {})["global"] = "yes"
        return event

    try:
        tripwire.capture_message("x")
    finally:
        from tripwire.scope import global_event_processors

        global_event_processors.remove(tag_everything)
    assert transport.events[0]["tags"]["global"] == "yes"


def test_default_scrubbing_of_extras_and_vars(transport: MemoryTransport) -> None:
    def login(password: str) -> None:
        token = "t0k3n"  # noqa: F841 - the scrubber must hide this local
        raise PermissionError("denied")

    tripwire.set_extra("password", "hunter2")
    try:
        login("hunter2")
    except PermissionError:
        tripwire.capture_exception()
    event = transport.events[0]
    assert event["extra"]["password"] == "[Filtered]"
    assert event["_meta"]["extra"]["password"] == {"": {"rem": [["!config", "s"]]}}
    frame_vars = event["exception"]["values"][0]["stacktrace"]["frames"][-1]["vars"]
    assert frame_vars["password"] == "[Filtered]"
    assert frame_vars["token"] == "[Filtered]"


def test_custom_scrubber_and_pii(init_memory) -> None:  # type: ignore[no-untyped-def]
    scrubber = EventScrubber(
        denylist=[*DEFAULT_DENYLIST, "order_secret"], recursive=True, send_default_pii=True
    )
    memory = init_memory(event_scrubber=scrubber, send_default_pii=True)
    tripwire.set_extra("nested", {"order_secret": "x", "fine": 1})
    tripwire.set_user({"id": 1, "ip_address": "127.0.0.1"})
    tripwire.capture_message("x")
    event = memory.events[0]
    assert event["extra"]["nested"] == {"order_secret": "[Filtered]", "fine": 1}
    assert event["user"]["ip_address"] == "127.0.0.1"


def test_without_locals_and_source(init_memory) -> None:  # type: ignore[no-untyped-def]
    memory = init_memory(include_local_variables=False, include_source_context=False)
    try:
        raise ValueError("x")
    except ValueError:
        tripwire.capture_exception()
    frame = memory.events[0]["exception"]["values"][0]["stacktrace"]["frames"][-1]
    assert "vars" not in frame
    assert "context_line" not in frame


def test_long_message_is_trimmed_with_meta(init_memory) -> None:  # type: ignore[no-untyped-def]
    memory = init_memory(max_value_length=100)
    tripwire.capture_message("m" * 5000)
    event = memory.events[0]
    assert len(event["message"]) == 100
    assert event["_meta"]["message"][""]["len"] == 5000


def test_huge_extra_is_bounded(transport: MemoryTransport) -> None:
    tripwire.set_extra("huge", list(range(1_000_000)))
    tripwire.set_extra("blob", "x" * 5_000_000)
    tripwire.capture_message("x")
    raw = transport.raw[0]
    assert len(raw) < 300_000
    event = transport.events[0]
    assert event["_meta"]["extra"]["huge"][""]["len"] == 1_000_000


def test_custom_repr_is_used_for_locals(init_memory) -> None:  # type: ignore[no-untyped-def]
    class Money:
        def __init__(self, cents: int) -> None:
            self.cents = cents

    def custom_repr(value: object) -> str | None:
        return f"${value.cents / 100:.2f}" if isinstance(value, Money) else None

    memory = init_memory(custom_repr=custom_repr)

    def pay(amount: Money) -> None:
        raise ValueError("declined")

    try:
        pay(Money(1999))
    except ValueError:
        tripwire.capture_exception()
    frame = memory.events[0]["exception"]["values"][0]["stacktrace"]["frames"][-1]
    assert frame["vars"]["amount"] == "$19.99"


def test_attachments_go_into_the_envelope(transport: MemoryTransport, tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "report.txt"
    path.write_bytes(b"line one\nline two\n")
    tripwire.add_attachment(bytes=b"\x00\x01binary", filename="blob.bin")
    tripwire.add_attachment(path=str(path))
    tripwire.capture_message("with files")
    items = transport.items("attachment")
    assert [(i.headers["filename"], i.get_bytes()) for i in items] == [
        ("blob.bin", b"\x00\x01binary"),
        ("report.txt", b"line one\nline two\n"),
    ]


def test_hooks_attach_files_through_the_hint(init_memory) -> None:  # type: ignore[no-untyped-def]
    # hint["attachments"] is always a list (as sentry_sdk's), so a hook can add to it
    # with no attachment on the scope.
    from tripwire.attachments import Attachment

    def before_send(event: Any, hint: Any) -> Any:
        hint["attachments"].append(Attachment(bytes=b"state", filename="state.txt"))
        return event

    memory = init_memory(before_send=before_send)
    tripwire.capture_message("with a file from the hook")
    assert [(i.headers["filename"], i.get_bytes()) for i in memory.items("attachment")] == [
        ("state.txt", b"state")
    ]


def test_envelope_header_carries_trace(transport: MemoryTransport) -> None:
    event_id = tripwire.capture_message("x")
    envelope = transport.envelopes[0]
    assert envelope.headers["event_id"] == event_id
    trace_id = transport.events[0]["contexts"]["trace"]["trace_id"]
    assert envelope.headers["trace"]["trace_id"] == trace_id
    assert "sent_at" in envelope.headers
    assert "dynamic_sampling_context" not in transport.events[0]["contexts"]["trace"]


def test_repr_that_logs_during_capture_does_not_recurse(transport: MemoryTransport) -> None:
    from tripwire._log import suppressed

    seen: list[bool] = []

    class Noisy:
        def __repr__(self) -> str:
            seen.append(suppressed())
            logging.getLogger("app.model").error("repr called")
            return "<Noisy>"

    def handler(item: Noisy) -> None:
        raise ValueError("bad item")

    try:
        handler(Noisy())
    except ValueError:
        tripwire.capture_exception()
    assert len(transport.events) == 1
    assert seen and all(seen)  # the SDK marked itself busy while running user code
