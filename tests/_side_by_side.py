"""Run one script on sentry_sdk 2.75 and on tripwire (``import sentry_sdk`` aliased).

Each run is a fresh interpreter: sentry_sdk's logging integration patches `logging`
for the whole process, and the alias must not shadow the real sentry_sdk that the
test process imports for other differential tests. The script calls
``sentry_sdk.init(transport=KEEP, ...)`` and ``finish()``; what reached the
transport comes back as a list of envelope items, ``{"type": ..., "payload": ...}``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import _zygote

_PRELUDE = """
import json
import sys

if sys.argv[1] == "tripwire":
    import tripwire.alias

    tripwire.alias.install()

import sentry_sdk
from sentry_sdk.transport import Transport


class Keep(Transport):
    def __init__(self, options=None):
        super().__init__(options)
        self.raw = []

    def capture_envelope(self, envelope):
        self.raw.append(envelope.serialize())


KEEP = Keep()
NOTES = []


def finish():
    sentry_sdk.flush()
    items = []
    for raw in KEEP.raw:
        lines = raw.split(b"\\n")
        for header, payload in zip(lines[1::2], lines[2::2]):
            items.append({"type": json.loads(header)["type"], "payload": json.loads(payload)})
    print(json.dumps({"items": items, "notes": NOTES}))


def next_scenario():
    # finish() this scenario; the next starts as in a fresh process: the client closed,
    # the scopes cleared, nothing kept (see `run_each`).
    finish()
    sentry_sdk.get_client().close()
    for scope in (
        sentry_sdk.get_isolation_scope(),
        sentry_sdk.get_current_scope(),
        sentry_sdk.get_global_scope(),
    ):
        scope.clear()
    sentry_sdk.get_global_scope().set_client(None)
    KEEP.raw.clear()
    NOTES.clear()
"""

# A script's `probe(label, call)`: NOTES gets the call's result (or the exception it
# raised) and its warnings, each said to point at the script ("caller") or not ("sdk").
# Needs `import warnings`. sentry_sdk's Hub deprecation is worded differently: left out.
WARNING_PROBE = """
def probe(label, call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = call()
        except Exception as exc:  # recorded: both SDKs must agree
            result = "raised " + type(exc).__name__
    seen = [
        [w.category.__name__, str(w.message), "caller" if w.filename == __file__ else "sdk"]
        for w in caught
        if w.category.__name__ != "SentryHubDeprecationWarning"
    ]
    NOTES.append([label, result, seen])
"""

# What sentry_sdk's zygote imports before the script's own header (tests/_zygote.py):
# what the prelude imports first, and what every `init()` imports (its default
# integrations; Spotlight's support imports django, which turns the Django integration
# on). Imported here, that is ~0.4 s of CPU less per run.
_SENTRY_PRELOAD = """
import json
import sys

import sentry_sdk
from sentry_sdk.transport import Transport

import sentry_sdk.integrations.argv
import sentry_sdk.integrations.atexit
import sentry_sdk.integrations.dedupe
import sentry_sdk.integrations.django
import sentry_sdk.integrations.excepthook
import sentry_sdk.integrations.logging
import sentry_sdk.integrations.modules
import sentry_sdk.integrations.stdlib
import sentry_sdk.integrations.threading
import sentry_sdk.logger
import sentry_sdk.spotlight
"""

# A child of a zygote runs the script's frame with the zygote's as its caller: output
# that shows the whole stack (loguru's backtraces) differs. Such scripts run in a fresh
# interpreter (unless `preload`).
_WHOLE_STACK = re.compile(r"^\s*(?:import|from)\s+loguru\b", re.MULTILINE)


def run(
    script: str, sdk: str, tmp_path: Path, returncode: int = 0, preload: bool = False
) -> dict[str, Any]:
    """Run `script` on `sdk` ("sentry" or "tripwire"); its items and notes.

    `returncode`: the exit status the script must end with (a script may `sys.exit`).
    `preload`: run it in a child of a zygote that ran the script's import header (its
    lines before the first that names sentry_sdk) once: see tests/_zygote.py. Without
    it, sentry_sdk's runs are children of a zygote that imported sentry_sdk.
    """
    result = run_script(script, sdk, tmp_path, 60, preload)
    assert result.returncode == returncode, result.stderr
    found: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return found


def run_both(
    script: str, tmp_path: Path, preload: bool = False
) -> tuple[dict[str, Any], dict[str, Any]]:
    """`script` on sentry_sdk, then on tripwire (`preload`: as for `run`)."""
    return (
        run(script, "sentry", tmp_path, preload=preload),
        run(script, "tripwire", tmp_path, preload=preload),
    )


def run_script(
    script: str, sdk: str, tmp_path: Path, timeout: float, preload: bool
) -> subprocess.CompletedProcess[str]:
    """`script` run on `sdk`: the finished process (`preload`: as for `run`)."""
    # One path for both runs: file paths in frames and log attributes are compared.
    script = textwrap.dedent(script)
    path = tmp_path / "scenario.py"
    path.write_text(_PRELUDE + script)
    if not os.environ.get("TRIPWIRE_TESTS_NO_ZYGOTE"):
        argv = [str(path), sdk]
        if preload:
            # One zygote that imported the script's (heavy) header serves both SDKs.
            return _zygote.run(_zygote.preload_of(script), argv, str(tmp_path), timeout)
        if sdk == "sentry" and not _WHOLE_STACK.search(script):
            # sentry_sdk's runs of the others: a zygote that imported sentry_sdk (most
            # of such a run). Never tripwire's: its runs check what they import.
            return _zygote.run(_SENTRY_PRELOAD, argv, str(tmp_path), timeout, sentry_sdk=True)
    return subprocess.run(
        [sys.executable, "-W", "error", str(path), sdk],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        cwd=tmp_path,
    )


def run_each(
    script: str, tmp_path: Path, timeout: float = 60, preload: bool = False
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """Several scenarios in one interpreter per SDK: (sentry_sdk's, tripwire's) for each.

    The script ends each scenario but the last with ``next_scenario()`` and the last
    with ``finish()``. One interpreter start and one import of a heavy library (the AI
    SDKs take seconds of CPU) serve every scenario. `preload`: as for `run`.
    """
    sentry = _scenarios(script, "sentry", tmp_path, timeout, preload)
    ours = _scenarios(script, "tripwire", tmp_path, timeout, preload)
    assert len(sentry) == len(ours), (len(sentry), len(ours))
    return list(zip(sentry, ours))


def run_gen_ai_settings(
    template: str, tmp_path: Path, timeout: float = 60, **fields: Any
) -> list[tuple[bool, dict[str, Any], dict[str, Any]]]:
    """`template` (a `str.format` template with ``{stream_gen_ai_spans}`` and `fields`)
    with that option off, then on, one after the other in one interpreter per SDK
    forked from its zygote (`run_each` with `preload`): the AI tests' common run.

    Returns (stream_gen_ai_spans, sentry_sdk's, tripwire's) for each setting.
    """
    settings = (False, True)
    scripts = [template.format(stream_gen_ai_spans=on, **fields) for on in settings]
    script = scripts[0].replace("\nfinish()\n", "\nnext_scenario()\n") + scripts[1]
    runs = run_each(script, tmp_path, timeout, preload=True)
    assert len(runs) == len(settings)
    return [(on, sentry, ours) for on, (sentry, ours) in zip(settings, runs)]


def _scenarios(
    script: str, sdk: str, tmp_path: Path, timeout: float, preload: bool
) -> list[dict[str, Any]]:
    """What `run` returns, for each scenario the script finished."""
    result = run_script(script, sdk, tmp_path, timeout, preload)
    assert result.returncode == 0, result.stderr
    found = []
    for line in result.stdout.splitlines():
        if line.startswith('{"items": '):
            found.append(json.loads(line))
    return found


def of_type(found: dict[str, Any], item_type: str) -> list[Any]:
    """The payloads of the items of one type, in order."""
    return [item["payload"] for item in found["items"] if item["type"] == item_type]


def logs(found: dict[str, Any]) -> list[dict[str, Any]]:
    """Every log of every ``log`` item."""
    return [log for payload in of_type(found, "log") for log in payload["items"]]


# Attributes whose values differ between the two SDKs, or between two runs.
_VOLATILE_ATTRIBUTES = {"sentry.sdk.name", "sentry.sdk.version", "thread.id", "process.pid"}


def log_shape(log: dict[str, Any]) -> dict[str, Any]:
    """A log without what differs by design (SDK name, ids, time); attribute order kept."""
    return {
        "level": log["level"],
        "body": log["body"],
        "has_span_id": "span_id" in log,
        "attributes": [
            (key, "?" if key in _VOLATILE_ATTRIBUTES else value)
            for key, value in log["attributes"].items()
        ],
    }


def stored_tags(tags: Any) -> Any:
    """Tags as Sentry keeps them: sentry_sdk sends values as given, tripwire as strings."""
    if not isinstance(tags, dict):
        return tags
    return {k: v if isinstance(v, str) else str(v) for k, v in tags.items() if v is not None}


def event_shape(event: dict[str, Any]) -> dict[str, Any]:
    """What of an event both SDKs must agree on (no ids, times, SDK or host facts)."""
    shape: dict[str, Any] = {
        key: event.get(key)
        for key in ("level", "logger", "message", "logentry", "tags", "user", "fingerprint")
    }
    shape["tags"] = stored_tags(shape["tags"])
    shape["extra"] = {k: v for k, v in (event.get("extra") or {}).items() if k != "sys.argv"}
    contexts = {
        k: v
        for k, v in (event.get("contexts") or {}).items()
        if k not in ("trace", "os", "runtime")
    }
    shape["contexts"] = contexts
    shape["breadcrumbs"] = [
        {k: v for k, v in crumb.items() if k != "timestamp"}
        for crumb in (event.get("breadcrumbs") or {}).get("values", [])
    ]
    values = (event.get("exception") or {}).get("values", [])
    shape["exception"] = [
        {
            "type": value.get("type"),
            "value": value.get("value"),
            "mechanism": value.get("mechanism"),
            "frames": [
                (frame.get("function"), frame.get("lineno"))
                for frame in (value.get("stacktrace") or {}).get("frames", [])
            ],
        }
        for value in values
    ]
    shape["has_threads"] = "threads" in event
    return shape


_EVENT_ID = re.compile(r"\b[0-9a-f]{32}\b")
_ADDRESS = re.compile(r" at 0x[0-9a-f]+>")


def events(found: dict[str, Any]) -> list[dict[str, Any]]:
    """Shapes of the error events that reached the transport (no event ids or addresses)."""
    shapes = [event_shape(event) for event in of_type(found, "event")]
    text = _ADDRESS.sub(" at 0x?>", _EVENT_ID.sub("<id>", json.dumps(shapes)))
    scrubbed: list[dict[str, Any]] = json.loads(text)
    return scrubbed


def dumps(value: Any) -> str:
    """Readable JSON for assertion messages."""
    return json.dumps(value, indent=1, sort_keys=True, default=str)
