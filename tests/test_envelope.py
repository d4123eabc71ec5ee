"""tripwire.envelope: building, serializing and parsing Sentry envelopes."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tripwire.envelope import Envelope, Item, PayloadRef


def test_serialize_wire_format() -> None:
    env = Envelope(headers={"event_id": "abc"})
    env.add_event({"event_id": "abc", "message": "héllo"})
    env.add_item(Item(payload=b"raw\nbin\xff", type="attachment", filename="f.bin"))
    assert env.serialize() == (
        b'{"event_id":"abc"}\n'
        b'{"type":"event","content_type":"application/json","length":37}\n'
        + '{"event_id":"abc","message":"héllo"}'.encode()
        + b"\n"
        b'{"filename":"f.bin","type":"attachment",'
        b'"content_type":"application/octet-stream","length":8}\n'
        b"raw\nbin\xff\n"
    )


def test_empty_envelope() -> None:
    assert Envelope().serialize() == b"{}\n"
    for data in (b"{}", b"{}\n", b"{}\n\n", b'{"dsn":"x"}\n'):
        env = Envelope.deserialize(data)
        assert env.items == []
    assert Envelope.deserialize(b'{"dsn":"x"}').headers == {"dsn": "x"}


def test_add_event_defers_encoding_to_serialize() -> None:
    event: dict[str, Any] = {"message": "first"}
    env = Envelope()
    env.add_event(event)
    item = env.items[0]
    assert item.payload.bytes is None  # nothing encoded yet
    assert item.payload.json is event  # no copy either
    event["message"] = "changed before send"
    assert b'"changed before send"' in env.serialize()
    assert item.payload.bytes == b'{"message":"changed before send"}'


def test_add_helpers_set_item_types() -> None:
    env = Envelope()
    env.add_event({"e": 1})
    env.add_transaction({"type": "transaction"})
    env.add_profile({"p": 1})
    env.add_profile_chunk({"c": 1})
    env.add_profile_chunk({"platform": "javascript"})
    env.add_checkin({"check_in_id": "x"})
    env.add_session({"sid": "s"})
    env.add_sessions({"aggregates": []})
    assert [i.type for i in env] == [
        "event",
        "transaction",
        "profile",
        "profile_chunk",
        "profile_chunk",
        "check_in",
        "session",
        "sessions",
    ]
    assert env.items[3].headers["platform"] == "python"
    assert env.items[4].headers["platform"] == "javascript"
    assert all(i.headers["content_type"] == "application/json" for i in env)
    assert env.description == (
        "envelope with 8 items (error, transaction, profile, profile_chunk, profile_chunk, "
        "monitor, session, session)"
    )


def test_add_session_snapshots_session_objects() -> None:
    class Session:
        def __init__(self) -> None:
            self.status = "ok"

        def to_json(self) -> dict[str, Any]:
            return {"status": self.status}

    session = Session()
    env = Envelope()
    env.add_session(session)
    session.status = "crashed"
    assert env.items[0].payload.json == {"status": "ok"}


@pytest.mark.parametrize(
    ("item_type", "category"),
    [
        ("event", "error"),
        ("transaction", "transaction"),
        ("attachment", "attachment"),
        ("session", "session"),
        ("sessions", "session"),
        ("profile", "profile"),
        ("profile_chunk", "profile_chunk"),
        ("check_in", "monitor"),
        ("client_report", "internal"),
        ("log", "log_item"),
        ("span", "span"),
        ("statsd", "metric_bucket"),
        ("trace_metric", "trace_metric"),
        ("replay_event", "replay"),
        ("replay_recording", "replay"),
        ("replay_video", "replay"),
        ("feedback", "user_report_v2"),
        ("something_new", "default"),
        (None, "default"),
    ],
)
def test_data_category(item_type: str | None, category: str) -> None:
    assert Item(b"", type=item_type).data_category == category


def test_data_categories_are_known_outcome_categories() -> None:
    from tripwire.envelope import _DATA_CATEGORIES
    from tripwire.outcomes import DataCategory

    for category in [*_DATA_CATEGORIES.values(), "default"]:
        DataCategory(category)  # raises ValueError for an unknown category


def test_item_headers_and_content_type() -> None:
    assert Item(b"x").headers == {"content_type": "application/octet-stream"}
    assert Item("text").get_bytes() == b"text"
    assert Item(PayloadRef(json={"a": 1})).headers == {"content_type": "application/json"}
    item = Item(b"x", headers={"type": "foo", "length": 5}, type="bar", content_type="a/b")
    assert item.headers == {"type": "bar", "length": 5, "content_type": "a/b"}
    assert item.type == "bar"
    # A given content_type header is kept.
    assert Item(b"x", headers={"content_type": "text/plain"}).headers["content_type"] == (
        "text/plain"
    )
    with pytest.raises(TypeError):
        Item(payload={"not": "bytes"})  # type: ignore[arg-type]


def test_item_serialize_does_not_touch_headers() -> None:
    item = Item(b"abc", type="t")
    assert item.serialize() == (
        b'{"type":"t","content_type":"application/octet-stream","length":3}\nabc\n'
    )
    assert "length" not in item.headers
    buf = io.BytesIO()
    item.serialize_into(buf)
    assert buf.getvalue() == item.serialize()


def test_payload_ref_sources(tmp_path: Path) -> None:
    f = tmp_path / "a.bin"
    f.write_bytes(b"\x00file")
    ref = PayloadRef(path=str(f))
    assert ref.bytes is None  # read lazily
    assert ref.get_bytes() == b"\x00file"
    assert PayloadRef(bytes=b"x", json={"a": 1}).get_bytes() == b"x"
    assert PayloadRef().get_bytes() == b""
    assert PayloadRef(json={"a": 1}).inferred_content_type == "application/json"
    assert repr(PayloadRef(bytes=b"x")) == "<Payload 'application/octet-stream'>"


def test_get_event_and_transaction() -> None:
    env = Envelope()
    env.add_item(Item(b"a", type="attachment"))
    env.add_transaction({"type": "transaction"})
    env.add_event({"message": "m"})
    assert env.get_event() == {"message": "m"}
    assert env.get_transaction_event() == {"type": "transaction"}
    assert Envelope().get_event() is None
    assert Item(PayloadRef(bytes=b'{"x":1}'), type="event").get_event() == {"x": 1}
    assert Item(PayloadRef(bytes=b"nope"), type="event").get_event() is None


def test_deserialize_items_with_and_without_length() -> None:
    data = (
        b'{"event_id":"abc"}\n'
        b'{"type":"event","length":7}\n{"a":1}\n'
        b'{"type":"attachment"}\nhello\n'
        b'{"type":"x","length":3}\na\nb\n'
        b'{"type":"empty"}\n\n'
        b'{"type":"event"}\n{"b":2}'
    )
    env = Envelope.deserialize(data)
    assert env.headers == {"event_id": "abc"}
    assert [(i.type, i.get_bytes()) for i in env] == [
        ("event", b'{"a":1}'),
        ("attachment", b"hello"),
        ("x", b"a\nb"),
        ("empty", b""),
        ("event", b'{"b":2}'),
    ]
    assert env.items[0].get_event() == {"a": 1}
    assert env.items[0].headers["content_type"] == "application/json"
    assert env.items[1].headers["content_type"] == "application/octet-stream"


def test_deserialize_tolerates_blank_lines_and_missing_final_newline() -> None:
    env = Envelope.deserialize(b'{}\n{"type":"a","length":2}\nab\n\n\n{"type":"b"}\nq')
    assert [(i.type, i.get_bytes()) for i in env] == [("a", b"ab"), ("b", b"q")]
    env = Envelope.deserialize(b'{}\n{"type":"a","length":2}\nab')
    assert env.items[0].get_bytes() == b"ab"


def test_unknown_item_types_round_trip_as_is() -> None:
    data = b'{}\n{"type":"future_thing","weird":[1,2],"length":4}\n\x00\n\xff\x01\n'
    env = Envelope.deserialize(data)
    item = env.items[0]
    assert item.headers["weird"] == [1, 2]
    assert item.get_bytes() == b"\x00\n\xff\x01"
    assert item.data_category == "default"
    assert env.serialize() == (
        b"{}\n"
        b'{"type":"future_thing","weird":[1,2],"length":4,'
        b'"content_type":"application/octet-stream"}\n\x00\n\xff\x01\n'
    )


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"\n\n", "empty"),
        (b"not json\n", "envelope header"),
        (b"[1]\n", "JSON object"),
        (b'{}\n{"type":"a"', "item header"),
        (b"{}\n[]\nx\n", "JSON object"),
        (b'{}\n{"type":"a","length":100}\nab', "truncated"),
        (b'{}\n{"type":"a","length":2}\nabXY\n', "newline"),
        (b'{}\n{"type":"a","length":-1}\n', "length"),
        (b'{}\n{"type":"a","length":"2"}\nab\n', "length"),
        (b'{}\n{"type":"a","length":true}\na\n', "length"),
        (b'{}\n{"type":"a","length":1.0}\na\n', "length"),
        (b'{}\n{"type":"event","length":3}\nnot\n', "not JSON"),
        (b"{}\n" + b"[" * 100_000 + b"\n", "item header"),
    ],
)
def test_malformed_input_raises_value_error(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Envelope.deserialize(data)


def test_item_stream_api() -> None:
    f = io.BytesIO(b'{"type":"t","length":3}\nabc\n\n{"type":"u"}\nxyz\n')
    first = Item.deserialize_from(f)
    second = Item.deserialize_from(f)
    assert first is not None and second is not None
    assert (first.type, first.get_bytes()) == ("t", b"abc")
    assert (second.type, second.get_bytes()) == ("u", b"xyz")
    assert Item.deserialize_from(f) is None

    with pytest.raises(ValueError, match="truncated"):
        Item.deserialize_from(io.BytesIO(b'{"type":"t","length":9}\nabc\n'))
    with pytest.raises(ValueError, match="newline"):
        Item.deserialize_from(io.BytesIO(b'{"type":"t","length":1}\nabc\n'))

    item = Item.deserialize(b'{"type":"t","length":3}\nabc\n')
    assert item is not None and item.get_bytes() == b"abc"
    assert Item.deserialize(b"\n") is None


def test_envelope_stream_api() -> None:
    env = Envelope(headers={"a": 1})
    env.add_event({"m": 1})
    buf = io.BytesIO()
    env.serialize_into(buf)
    assert buf.getvalue() == env.serialize()
    buf.seek(0)
    assert Envelope.deserialize_from(buf).get_event() == {"m": 1}


def test_unreadable_payloads_are_left_out(tmp_path: Path) -> None:
    def explode() -> bytes:
        raise RuntimeError("boom")

    lazy = PayloadRef()
    lazy._loader = explode
    env = Envelope()
    env.add_event({"m": 1})
    env.add_item(Item(PayloadRef(path=str(tmp_path / "gone.txt")), type="attachment"))
    env.add_item(Item(lazy, type="attachment"))
    env.add_item(Item(b"kept", type="attachment"))
    parsed = Envelope.deserialize(env.serialize())
    assert [(i.type, i.get_bytes()) for i in parsed] == [
        ("event", b'{"m":1}'),
        ("attachment", b"kept"),
    ]


def test_unencodable_event_values_do_not_break_serialize() -> None:
    env = Envelope()
    event: dict[Any, Any] = {"nan": float("nan"), "s": "a\ud800", "o": object, 1: 2}
    env.add_event(event)
    assert Envelope.deserialize(env.serialize()).get_event() == {
        "nan": None,
        "s": "a\ufffd",
        "o": "<class 'object'>",
        "1": 2,
    }


def test_slots_and_repr() -> None:
    item = Item(b"x", type="event")
    env = Envelope(headers={"a": 1}, items=[item])
    assert not hasattr(item, "__dict__")
    assert not hasattr(env, "__dict__")
    assert not hasattr(PayloadRef(), "__dict__")
    assert repr(item) == (
        "<Item headers={'type': 'event', 'content_type': 'application/octet-stream'} "
        "payload=<Payload 'application/octet-stream'> data_category='error'>"
    )
    assert repr(env) == f"<Envelope headers={{'a': 1}} items=[{item!r}]>"


# -- round trips ----------------------------------------------------------------------

_json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(), children),
    max_leaves=6,
)
_headers = st.dictionaries(st.text(), _json_values, max_size=3)


@st.composite
def _items(draw: st.DrawFn) -> Item:
    kind = draw(st.sampled_from(["event", "transaction", "attachment", "other"]))
    headers = draw(_headers)
    headers.pop("length", None)
    if kind in ("event", "transaction"):
        payload: Any = PayloadRef(json=draw(st.dictionaries(st.text(), _json_values)))
    else:
        payload = draw(st.binary())
    filename = draw(st.none() | st.text())
    return Item(payload=payload, headers=headers, type=kind, filename=filename)


@settings(max_examples=60, deadline=None)
@given(_headers, st.lists(_items(), max_size=4))
def test_serialize_deserialize_serialize_is_identical(
    headers: dict[str, Any], items: list[Item]
) -> None:
    first = Envelope(headers=headers, items=items).serialize()
    parsed = Envelope.deserialize(first)
    assert parsed.serialize() == first
    assert parsed.headers == headers
    assert [i.get_bytes() for i in parsed] == [i.get_bytes() for i in items]
    assert [i.type for i in parsed] == [i.type for i in items]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_deserialize_arbitrary_bytes_parses_or_raises_value_error(data: bytes) -> None:
    try:
        env = Envelope.deserialize(b'{}\n{"type":"a","length":3}\n' + data)
    except ValueError:
        return
    assert isinstance(env, Envelope)


# -- differential: sentry_sdk's Envelope ------------------------------------------------


def _structure(env: Any) -> tuple[dict[str, Any], list[tuple[Any, ...]]]:
    items = []
    for item in env.items:
        headers = {k: v for k, v in item.headers.items() if k != "length"}
        raw = item.payload.get_bytes()
        body: Any = json.loads(raw) if headers["content_type"] == "application/json" else raw
        items.append((headers, body))
    return env.headers, items


def _build(module: Any) -> Any:
    env = module.Envelope(headers={"event_id": "e1", "sent_at": "2024-01-01T00:00:00Z"})
    env.add_event({"event_id": "e1", "message": "héllo ☃", "extra": {"n": [1, 2.5, None]}})
    env.add_transaction({"type": "transaction", "spans": []})
    env.add_profile_chunk({"chunk": 1})
    env.add_checkin({"check_in_id": "c", "status": "ok"})
    env.add_sessions({"aggregates": [{"started": "x", "exited": 1}]})
    env.add_item(module.Item(payload=b"bin\n\xff\x00", type="attachment", filename="a.bin"))
    env.add_item(module.Item(payload="text", type="future_type", headers={"x": 1}))
    return env


def test_differential_with_sentry_sdk() -> None:
    sentry_envelope = pytest.importorskip("sentry_sdk.envelope")
    import tripwire.envelope as ours

    theirs_bytes = _build(sentry_envelope).serialize()
    ours_bytes = _build(ours).serialize()

    # Their bytes through our parser, ours through theirs: the same structure.
    assert _structure(Envelope.deserialize(theirs_bytes)) == _structure(
        sentry_envelope.Envelope.deserialize(theirs_bytes)
    )
    assert _structure(sentry_envelope.Envelope.deserialize(ours_bytes)) == _structure(
        Envelope.deserialize(ours_bytes)
    )
    assert _structure(Envelope.deserialize(ours_bytes)) == _structure(
        Envelope.deserialize(theirs_bytes)
    )
    # And each side's own objects agree with what was parsed.
    assert _structure(_build(ours)) == _structure(Envelope.deserialize(theirs_bytes))
