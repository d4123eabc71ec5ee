"""The ``tripwire`` command, run as a user runs it (a subprocess), against real servers."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import textwrap
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tripwire.cli import build_parser

server_extra = pytest.mark.skipif(
    not all(__import__("importlib").util.find_spec(m) for m in ("starlette", "uvicorn", "jinja2")),
    reason="the server extra is not installed",
)


def tripwire_cmd(
    *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    for name in ("SENTRY_DSN", "TRIPWIRE_DB"):
        if env is None or name not in env:
            full_env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "tripwire.cli", *args],
        env=full_env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


def api(url: str, path: str) -> Any:
    with urllib.request.urlopen(url + path, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture
def server(tmp_path: Path):
    from tripwire.server.app import ServerThread

    s = ServerThread(db=tmp_path / "cli.db")
    yield s
    s.stop()


def test_help_lists_the_commands():
    help_text = build_parser().format_help()
    for command in ("server", "demo", "run", "send-event", "issues"):
        assert command in help_text
    proc = tripwire_cmd()
    assert proc.returncode == 2
    assert "usage: tripwire" in proc.stdout


@server_extra
def test_demo_sends_through_the_real_sdk_and_prints_the_grouped_issues():
    proc = tripwire_cmd("demo")
    assert proc.returncode == 0, proc.stderr
    out = proc.stdout
    assert "tripwire demo: backend on http://127.0.0.1:" in out
    # Two checkouts failing the same way are one issue with two users.
    (line,) = [line for line in out.splitlines() if "KeyError: 'kiwi'" in line]
    assert line.split()[:2] == ["2", "2"]
    assert "ValueError: invalid literal for int()" in out
    # Not on a terminal, the server stops: no dead link, but the command that shows
    # the data again, and that command's database really holds it.
    assert "open http://127.0.0.1:" not in out
    last = out.splitlines()[-1]
    assert last.startswith("to see it: tripwire server --db "), last
    db = Path(shlex.split(last.split("tripwire server --db ", 1)[1])[0])
    try:
        assert db.is_file()
        from tripwire.server.app import ServerThread

        with ServerThread(db=db) as again:
            titles = [i["title"] for i in api(again.url, "/api/0/issues/?status=all")]
        assert any("KeyError: 'kiwi'" in t for t in titles), titles
    finally:
        shutil.rmtree(db.parent, ignore_errors=True)
    # What the SDK build could not send yet is said, not hidden.
    stored = next(line for line in out.splitlines() if line.startswith("stored:"))
    for kind in ("transactions", "logs", "check-ins"):
        if f" 0 {kind}" in stored:
            assert "note:" in out


APP = """
    import sys
    import tripwire
    tripwire.capture_message("hello from a program that never imported the SDK itself")

    def crash():
        raise LookupError("unhandled in the program")

    crash()
"""


@server_extra
def test_run_initialises_the_sdk_in_an_unchanged_program(server, tmp_path):
    app = tmp_path / "app.py"
    app.write_text(
        textwrap.dedent(APP)
        .replace("import tripwire\n", "")
        .replace(
            'tripwire.capture_message("hello from a program that never imported the SDK itself")\n',
            "",
        )
    )
    # An existing sitecustomize keeps working (ours hands over to it).
    other = tmp_path / "site"
    other.mkdir()
    (other / "sitecustomize.py").write_text(
        "import os\nopen(os.environ['MARKER'], 'w').write('ran')\n"
    )
    marker = tmp_path / "marker"
    proc = tripwire_cmd(
        "run",
        "--dsn",
        server.dsn,
        "--release",
        "app@3",
        "--",
        sys.executable,
        str(app),
        env={"PYTHONPATH": str(other), "MARKER": str(marker)},
    )
    # The program's own failure is its exit status, as without tripwire.
    assert proc.returncode == 1
    assert "LookupError: unhandled in the program" in proc.stderr
    assert marker.read_text() == "ran"
    (issue,) = api(server.url, "/api/0/issues/")
    assert issue["title"] == "LookupError: unhandled in the program"
    event = api(server.url, f"/api/0/events/{issue['last_event_id']}/")["data"]
    assert event["release"] == "app@3"
    assert event["exception"]["values"][-1]["mechanism"]["handled"] is False


SENTRY_SDK_APP = """
    import sentry_sdk

    sentry_sdk.init(release="legacy@1")  # the DSN comes from the environment
    sentry_sdk.set_tag("written_for", "sentry_sdk")
    sentry_sdk.capture_message("hello from code written for sentry_sdk")
    sentry_sdk.flush()
"""


@server_extra
def test_run_as_sentry_sdk_serves_the_programs_sentry_sdk_from_tripwire(server, tmp_path):
    app = tmp_path / "app.py"
    app.write_text(textwrap.dedent(SENTRY_SDK_APP))
    proc = tripwire_cmd(
        "run", "--dsn", server.dsn, "--as-sentry-sdk", "--", sys.executable, str(app)
    )
    assert proc.returncode == 0, proc.stderr
    (issue,) = api(server.url, "/api/0/issues/")
    event = api(server.url, f"/api/0/events/{issue['last_event_id']}/")["data"]
    assert event["message"] == "hello from code written for sentry_sdk"
    assert event["tags"]["written_for"] == "sentry_sdk"
    assert event["release"] == "legacy@1"
    # The real sentry_sdk is installed here too: this event came from tripwire.
    assert event["sdk"]["name"] == "tripwire.python"


@server_extra
def test_run_without_a_server_starts_one_on_the_projects_database(tmp_path):
    app = tmp_path / "app.py"
    app.write_text("raise KeyError('no server around')\n")
    db = tmp_path / "project.db"
    proc = tripwire_cmd(
        "run",
        "--",
        sys.executable,
        str(app),
        env={"TRIPWIRE_DB": str(db), "TRIPWIRE_SERVER_URL": "http://127.0.0.1:9"},
    )
    assert proc.returncode == 1
    assert "started one on http://127.0.0.1:" in proc.stderr
    # After the program, the embedded server says what it stored.
    assert f"1 issue in {db}" in proc.stderr
    assert proc.stderr.splitlines()[-1].split()[1:] == [
        "1",
        "KeyError:",
        "'no",
        "server",
        "around'",
    ]
    from tripwire.server import queries
    from tripwire.server.store import Store

    with Store(db) as store:
        (issue,) = queries.list_issues(store)
        assert issue["title"] == "KeyError: 'no server around'"


@server_extra
def test_send_event_and_issues(server):
    proc = tripwire_cmd(
        "send-event",
        "-m",
        "deploy finished <ok>",
        "--dsn",
        server.dsn,
        "--level",
        "warning",
        "--tag",
        "who=ci",
    )
    assert proc.returncode == 0, proc.stderr
    event_id = proc.stdout.strip()
    assert len(event_id) == 32
    event = api(server.url, f"/api/0/events/{event_id}/")
    assert event["level"] == "warning"
    assert event["data"]["tags"]["who"] == "ci"

    listed = tripwire_cmd("issues", "--url", server.url)
    assert listed.returncode == 0
    assert "deploy finished <ok>" in listed.stdout
    assert "warning" in listed.stdout
    as_json = tripwire_cmd("issues", "--dsn", server.dsn, "--json")
    assert [i["title"] for i in json.loads(as_json.stdout)] == ["deploy finished <ok>"]
    none = tripwire_cmd("issues", "--url", server.url, "-q", "nothing-like-this")
    assert none.stdout.strip() == "no issues"


def test_issues_says_when_no_server_answers():
    proc = tripwire_cmd("issues", "--url", "http://127.0.0.1:9")
    assert proc.returncode == 1
    assert "cannot reach a tripwire server at http://127.0.0.1:9" in proc.stderr


@server_extra
def test_server_command_prints_its_dsn_and_serves(tmp_path):
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tripwire.cli",
            "server",
            "--port",
            "0",
            "--db",
            str(tmp_path / "s.db"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={k: v for k, v in os.environ.items() if k != "SENTRY_DSN"},
    )
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("tripwire server listening on http://127.0.0.1:")
        dsn_line = proc.stdout.readline()
        dsn = dsn_line.split("DSN:", 1)[1].strip()
        url = first.split()[4]
        sent = tripwire_cmd("send-event", "-m", "through the server command", "--dsn", dsn)
        assert sent.returncode == 0, sent.stderr
        assert [i["title"] for i in api(url, "/api/0/issues/")] == ["through the server command"]
    finally:
        proc.terminate()
        proc.communicate(timeout=60)
    assert proc.returncode in (0, -15)


@server_extra
def test_server_retention_options_reach_the_backend(tmp_path):
    db = tmp_path / "r.db"
    command = [sys.executable, "-m", "tripwire.cli", "server", "--port", "0", "--db", str(db)]
    refused = subprocess.run(
        [*command, "--retention-days", "0"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert refused.returncode == 2
    assert "retention days must be more than 0" in refused.stderr


def test_a_missing_server_extra_gives_the_install_hint(tmp_path):
    code = (
        "import sys; sys.modules['starlette'] = None\n"
        "from tripwire.cli import main\n"
        "sys.exit(main(['server', '--port', '0', '--db', sys.argv[1]]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "x.db")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 3
    assert "pip install 'tripwire[server]'" in proc.stderr
