"""The README's screenshot command: each page of the web UI as a PNG (headless Chromium)."""

from __future__ import annotations

import pytest

pytest.importorskip("starlette", reason="the server extra is not installed")
pytest.importorskip("uvicorn", reason="the server extra is not installed")

from tripwire.server import screenshots


@pytest.mark.skipif(screenshots.find_chromium() is None, reason="headless Chromium is missing")
def test_the_screenshot_command_photographs_every_page(tmp_path, capsys):
    assert screenshots.main([str(tmp_path / "shots")]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(tmp_path / "shots" / name) for name in screenshots.PAGES]
    for name in ("issues.png", "issue.png", "trace.png", "releases.png", "envelope.png"):
        data = (tmp_path / "shots" / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        assert len(data) > 10_000  # a page, not a blank
