"""tripwire.attachments: Attachment and its envelope item."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest

from tripwire.attachments import Attachment
from tripwire.envelope import Envelope


def _wire(*attachments: Attachment) -> Envelope:
    env = Envelope()
    env.add_event({"message": "m"})
    for attachment in attachments:
        env.add_item(attachment.to_envelope_item())
    return Envelope.deserialize(env.serialize())


def test_bytes_attachment_item() -> None:
    item = Attachment(bytes=b"hello", filename="a.txt").to_envelope_item()
    assert item.type == "attachment"
    assert item.data_category == "attachment"
    assert item.headers == {
        "filename": "a.txt",
        "type": "attachment",
        "content_type": "text/plain",
        "attachment_type": "event.attachment",
    }
    assert item.get_bytes() == b"hello"
    assert item.serialize() == (
        b'{"filename":"a.txt","type":"attachment","content_type":"text/plain",'
        b'"attachment_type":"event.attachment","length":5}\nhello\n'
    )


@pytest.mark.parametrize(
    ("filename", "content_type"),
    [
        ("a.png", "image/png"),
        ("a.json", "application/json"),
        ("noext", "application/octet-stream"),
        ("a.unknownext", "application/octet-stream"),
    ],
)
def test_content_type_is_guessed_from_filename(filename: str, content_type: str) -> None:
    item = Attachment(bytes=b"x", filename=filename).to_envelope_item()
    assert item.headers["content_type"] == content_type


def test_explicit_content_type_wins() -> None:
    attachment = Attachment(bytes=b"x", filename="a.json", content_type="x/y")
    assert attachment.content_type == "x/y"
    assert attachment.to_envelope_item().headers["content_type"] == "x/y"
    assert Attachment(bytes=b"x", filename="noext").content_type is None


def test_path_attachment_is_read_at_serialization(tmp_path: Path) -> None:
    f = tmp_path / "report.log"
    f.write_bytes(b"first")
    attachment = Attachment(path=str(f))
    assert attachment.filename == "report.log"
    item = attachment.to_envelope_item()
    f.write_bytes(b"second\n\xff")  # changed after the item was made: the new content goes
    assert item.get_bytes() == b"second\n\xff"
    assert Attachment(path=f).filename == "report.log"  # type: ignore[arg-type]


def test_filename_overrides_path_basename(tmp_path: Path) -> None:
    f = tmp_path / "x.bin"
    f.write_bytes(b"1")
    attachment = Attachment(path=str(f), filename="shown.txt")
    assert attachment.filename == "shown.txt"
    assert attachment.to_envelope_item().headers["content_type"] == "text/plain"


def test_bytes_win_over_path() -> None:
    attachment = Attachment(bytes=b"inline", path="/nonexistent/file.txt")
    assert attachment.filename == "file.txt"
    assert attachment.to_envelope_item().get_bytes() == b"inline"


def test_callable_bytes_are_called_lazily_once() -> None:
    calls = []

    def produce() -> bytes:
        calls.append(1)
        return b"lazy"

    attachment = Attachment(bytes=produce, filename="l.bin")
    item = attachment.to_envelope_item()
    assert calls == []
    env = _wire(attachment)
    assert calls == [1]
    assert env.items[1].get_bytes() == b"lazy"
    assert item.get_bytes() == b"lazy"


def test_missing_file_is_skipped_at_send_time(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    gone = Attachment(path=str(tmp_path / "gone.txt"))  # no error when made
    kept = Attachment(bytes=b"ok", filename="ok.txt")
    with caplog.at_level(logging.DEBUG, logger="tripwire.errors"):
        env = _wire(gone, kept)
    assert [(i.type, i.headers.get("filename")) for i in env] == [
        ("event", None),
        ("attachment", "ok.txt"),
    ]
    assert "gone.txt" in caplog.text


def test_failing_callable_is_skipped() -> None:
    def explode() -> bytes:
        raise OSError("no")

    env = _wire(Attachment(bytes=explode, filename="x"))
    assert [i.type for i in env] == ["event"]


def test_str_and_bytearray_content() -> None:
    item = Attachment(bytes="héllo", filename="t.txt").to_envelope_item()  # type: ignore[arg-type]
    assert item.get_bytes() == "héllo".encode()
    item = Attachment(bytes=bytearray(b"ba"), filename="b").to_envelope_item()  # type: ignore[arg-type]
    assert item.get_bytes() == b"ba"


def test_required_arguments() -> None:
    with pytest.raises(TypeError, match="path or raw bytes"):
        Attachment()
    with pytest.raises(TypeError, match="path or raw bytes"):
        Attachment(filename="f")
    with pytest.raises(TypeError, match="filename"):
        Attachment(bytes=b"x")


def test_attributes_and_repr() -> None:
    attachment = Attachment(bytes=b"x", filename="a.txt", add_to_transactions=True)
    assert attachment.add_to_transactions is True
    assert attachment.path is None
    assert attachment.bytes == b"x"
    assert repr(attachment) == "<Attachment 'a.txt'>"
    assert not hasattr(attachment, "__dict__")


def test_differential_with_sentry_sdk(tmp_path: Path) -> None:
    sentry_attachments = pytest.importorskip("sentry_sdk.attachments")
    f = tmp_path / "data.csv"
    f.write_bytes(b"a,b\n1,2\n")
    cases: list[dict[str, Any]] = [
        {"bytes": b"abc", "filename": "a.txt"},
        {"bytes": b"abc", "filename": "a.unknownext"},
        {"bytes": b"abc", "filename": "a.json", "content_type": "x/y"},
        {"path": str(f)},
        {"path": str(f), "filename": "other.png"},
    ]
    for kwargs in cases:
        ours = Attachment(**kwargs).to_envelope_item()
        theirs = sentry_attachments.Attachment(**kwargs).to_envelope_item()
        our_headers = dict(ours.headers)
        assert our_headers.pop("attachment_type") == "event.attachment"
        assert our_headers == theirs.headers
        assert ours.get_bytes() == theirs.get_bytes()
