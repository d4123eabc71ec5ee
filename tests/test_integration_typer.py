"""The Typer integration: a real Typer app whose command raises.

In-process, the app's exception is handed to `sys.excepthook` (the hook Typer
installed) as Python does at exit; the differential test lets it escape for real in
a script run on sentry_sdk 2.75 and on tripwire.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _side_by_side import run

import tripwire
from tripwire.integrations.typer import TyperIntegration
from tripwire.testing import MemoryTransport, reset

if TYPE_CHECKING:
    import typer
    import typer.main


@pytest.fixture(autouse=True, scope="module")
def _typer() -> None:
    """Typer is imported when the module's tests start, not at collection (every xdist
    worker collects every module; tests/_lazy.py)."""
    global typer
    import typer
    import typer.main


def make_app() -> typer.Typer:
    app = typer.Typer()

    @app.command()
    def main(name: str) -> None:
        raise ValueError("bad " + name)

    return app


def run_app(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Run the app as `prog bob`; hand its exception to the excepthook Typer set."""
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)  # Typer replaces it
    monkeypatch.setattr(sys, "argv", ["prog", "bob"])
    monkeypatch.setenv("TYPER_STANDARD_TRACEBACK", "1")  # plain output, no rich
    with pytest.raises(ValueError) as caught:
        make_app()()
    sys.excepthook(caught.type, caught.value, caught.tb)
    assert "ValueError: bad bob" in capsys.readouterr().err  # Typer's hook still ran


def init(**options: Any) -> MemoryTransport:
    memory = MemoryTransport()
    tripwire.init(
        dsn="http://key@example.com/1", transport=memory, default_integrations=False, **options
    )
    return memory


def test_uncaught_exception_is_captured_then_typer_reports_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    memory = init(integrations=[TyperIntegration()])
    run_app(monkeypatch, capsys)
    (event,) = memory.events
    assert event["level"] == "error"
    (exception,) = event["exception"]["values"]
    assert (exception["type"], exception["value"]) == ("ValueError", "bad bob")
    assert exception["mechanism"] == {"type": "typer", "handled": False}
    assert exception["stacktrace"]["frames"][-1]["function"] == "main"


def test_quiet_without_the_integration_and_reset_undoes_the_patch(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    original = typer.main.except_hook
    init(integrations=[TyperIntegration()])
    assert typer.main.except_hook is not original
    tripwire.get_client().close()
    memory = init()
    run_app(monkeypatch, capsys)
    assert memory.events == []
    reset()
    assert typer.main.except_hook is original


_SCRIPT = """
import atexit
import typer
from sentry_sdk.integrations.typer import TyperIntegration

sentry_sdk.init(transport=KEEP, integrations=[TyperIntegration()])
atexit.register(finish)
app = typer.Typer()


@app.command()
def main(name: str):
    raise ValueError("bad " + name)


sys.argv = ["prog", "bob"]
app()
"""

_VOLATILE = {"event_id", "timestamp", "sdk", "os", "vars", "trace_id", "span_id"}


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if k not in _VOLATILE}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def test_same_as_sentry_sdk(tmp_path: Path) -> None:
    # The app's exception ends the script (status 1); atexit reports what was sent.
    sentry = run(_SCRIPT, "sentry", tmp_path, returncode=1)
    ours = run(_SCRIPT, "tripwire", tmp_path, returncode=1)
    assert [i["type"] for i in ours["items"]] == ["event"]
    assert _plain(ours["items"]) == _plain(sentry["items"])
