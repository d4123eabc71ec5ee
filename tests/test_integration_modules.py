"""The modules integration: installed distributions on error events, read cheaply."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import tripwire
from tripwire.integrations import modules


def test_the_list_is_what_importlib_metadata_finds() -> None:
    assert modules._scan(sys.path) == modules._from_importlib()
    assert modules.installed_packages()["sentry-sdk"] == "2.75.0"


def test_odd_metadata_is_skipped_not_fatal(tmp_path: Path) -> None:
    good = tmp_path / "good_pkg-1.2.dist-info"
    good.mkdir()
    # Headers end at the blank line: the "Name" in the description is not read.
    (good / "METADATA").write_text("Metadata-Version: 2.1\nName: Good-Pkg\nVersion: 1.2\n\nName: x")
    empty = tmp_path / "empty-0.1.dist-info"
    empty.mkdir()  # no METADATA at all
    headless = tmp_path / "headless-0.2.dist-info"
    headless.mkdir()
    (headless / "METADATA").write_bytes(b"\xff\xfe garbage\n")
    (tmp_path / "old.egg-info").write_text("Name: old\nVersion: 0.9\n")  # an egg-info file
    assert modules._scan([str(tmp_path), str(tmp_path / "missing")]) == {
        "good-pkg": "1.2",
        "old": "0.9",
    }


def test_error_events_carry_them(init_memory: Any) -> None:
    memory = init_memory(
        default_integrations=False,
        integrations=[modules.ModulesIntegration()],
        traces_sample_rate=1.0,
    )
    tripwire.capture_message("with modules")
    with tripwire.start_transaction(name="tx"):
        pass
    tripwire.flush()
    (event,) = memory.events
    assert event["modules"]["sentry-sdk"] == "2.75.0"
    assert "modules" not in memory.transactions[0]


def test_the_first_error_imports_no_importlib_metadata() -> None:
    # importlib.metadata costs ~20 ms to import and its parser ~0.5 ms a distribution:
    # the first error event used to wait 100-400 ms for the list.
    code = textwrap.dedent(
        """
        import sys, tripwire
        from tripwire.testing import MemoryTransport
        memory = MemoryTransport()
        tripwire.init(transport=memory)
        tripwire.capture_message("first")
        tripwire.flush()
        assert memory.events[0]["modules"], memory.events
        print("importlib.metadata" in sys.modules)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "False"
