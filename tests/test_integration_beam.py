"""Apache Beam integration: real pipelines on Beam's DirectRunner (in-process).

One script runs six pipelines, on sentry_sdk 2.75 and on tripwire (one interpreter
each): a DoFn whose ``process`` generator raises, a ``beam.Map`` callable that raises,
DoFns failing in ``start_bundle``, ``finish_bundle`` and ``setup``, and a pipeline that
succeeds followed by two log records (the root logger is ignored, as sentry_sdk does).
Both SDKs must send the same events; the user-facing facts are asserted on tripwire's.
"""

from __future__ import annotations

import inspect
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from _side_by_side import dumps, events, of_type, run_each

from tripwire.integrations.beam import BeamIntegration
from tripwire.testing import reset

if TYPE_CHECKING:
    import apache_beam as beam
    from apache_beam.transforms.core import DoFn, ParDo

    _Fails: type[DoFn]


@pytest.fixture(autouse=True, scope="module")
def _beam() -> None:
    """Beam is imported when the module's tests start, not at collection (every xdist
    worker collects every module; tests/_lazy.py); its DoFn is made here with it."""
    global beam, DoFn, ParDo, _Fails
    import apache_beam as beam
    from apache_beam.transforms.core import DoFn, ParDo

    class _Fails(beam.DoFn):
        def process(self, element: int, stamp: Any = beam.DoFn.TimestampParam) -> Any:
            raise ValueError(f"bad {element}")


SCRIPT = """
import logging

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from sentry_sdk.integrations.beam import BeamIntegration

OPTIONS = ["--direct_running_mode=in_memory", "--direct_num_workers=1"]


class Double(beam.DoFn):
    def process(self, element):
        if element == 3:
            raise ValueError(f"bad element {element}")
        yield element * 2


class BadStart(beam.DoFn):
    def start_bundle(self):
        raise KeyError("no bundle")

    def process(self, element):
        return [element]


class BadFinish(beam.DoFn):
    def process(self, element):
        return [element]

    def finish_bundle(self):
        raise RuntimeError("finish failed")


class BadSetup(beam.DoFn):
    def setup(self):
        raise OSError("no setup")

    def process(self, element):
        return [element]


def divide(x):
    return 10 // (x - 2)


def run(*transforms):
    sentry_sdk.init(transport=KEEP, integrations=[BeamIntegration()])
    try:
        with beam.Pipeline(options=PipelineOptions(OPTIONS)) as p:
            pc = p | beam.Create([1, 2, 3])
            for t in transforms:
                pc = pc | t
        NOTES.append("ok")
    except Exception as exc:
        # What the user's code sees: Beam's own error, naming the step.
        NOTES.append([type(exc).__name__, str(exc).splitlines()[0]])


run(beam.ParDo(Double()))
next_scenario()
run(beam.Map(divide))
next_scenario()
run(beam.ParDo(BadStart()))
next_scenario()
run(beam.ParDo(BadFinish()))
next_scenario()
run(beam.ParDo(BadSetup()))
next_scenario()
run(beam.Map(lambda x: x + 1), beam.FlatMap(lambda x: [x, x]))
logging.error("root logger is ignored")
logging.getLogger("app").error("app logger is not")
finish()
"""

FAILURES = [
    ("ValueError", "bad element 3", "process", "ParDo(Double)"),
    ("ZeroDivisionError", "integer division or modulo by zero", "divide", "Map(divide)"),
    ("KeyError", "'no bundle'", "start_bundle", "ParDo(BadStart)"),
    ("RuntimeError", "finish failed", "finish_bundle", "ParDo(BadFinish)"),
    ("OSError", "no setup", "setup", "ParDo(BadSetup)"),
]


def test_beam_failures_match_sentry_sdk(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each pipeline leaves a ``beam-temp*`` folder in the temporary directory.
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    runs = run_each(SCRIPT, tmp_path, timeout=120)
    assert len(runs) == len(FAILURES) + 1
    for sentry, ours in runs:
        assert events(ours) == events(sentry), dumps([events(sentry), events(ours)])
        assert ours["notes"] == sentry["notes"]
        assert [i["type"] for i in ours["items"]] == [i["type"] for i in sentry["items"]]

    for (_, ours), (exc_type, value, function, step) in zip(runs, FAILURES):
        # The pipeline still fails with Beam's own error: the integration re-raises.
        ((raised, message),) = ours["notes"]
        assert raised == exc_type
        assert f"while running '{step}'" in message
        (event,) = of_type(ours, "event")
        (exception,) = event["exception"]["values"]
        assert (exception["type"], exception["value"]) == (exc_type, value)
        assert exception["mechanism"] == {"type": "beam", "handled": False}
        # The user's frame raised; the SDK's guard is hidden (Map adds Beam's lambda).
        frames: list[dict[str, Any]] = exception["stacktrace"]["frames"]
        assert frames[-1]["function"] == function
        assert frames[-1]["in_app"] is True
        assert not any(f.get("module", "").startswith("tripwire") for f in frames)

    # A pipeline that succeeds sends nothing; the root logger is ignored, others are not.
    _, ours = runs[-1]
    assert ours["notes"] == ["ok"]
    (event,) = of_type(ours, "event")
    assert event["logger"] == "app"
    assert event["logentry"]["message"] == "app logger is not"
    assert "exception" not in event


def test_quiet_without_the_integration_and_reset_unhooks(init_memory: Any) -> None:
    pardo_init = ParDo.__init__
    memory = init_memory(integrations=[BeamIntegration()])
    fn = _Fails()
    beam.ParDo(fn)
    # Beam reads the arguments through the hook: the original's, not the guard's.
    assert fn.get_function_arguments("process") == (
        ["element", "stamp"],
        [beam.DoFn.TimestampParam],
    )
    assert list(inspect.signature(fn.process).parameters) == ["element", "stamp"]
    with pytest.raises(ValueError, match="bad 1"):
        fn.process(1)
    (event,) = memory.events
    assert event["exception"]["values"][0]["mechanism"] == {"type": "beam", "handled": False}

    later = init_memory()  # a client without the integration: the guard only re-raises
    with pytest.raises(ValueError, match="bad 2"):
        fn.process(2)
    assert later.events == []

    reset()
    assert "_inspect_process" not in vars(DoFn)
    assert ParDo.__init__ is pardo_init


def test_init_imports_no_apache_beam() -> None:
    code = (
        "import sys, tripwire\n"
        "from tripwire.integrations.beam import BeamIntegration\n"
        "tripwire.init(integrations=[BeamIntegration()])\n"
        "assert 'apache_beam' not in sys.modules, 'init() imported apache_beam'\n"
    )
    subprocess.run([sys.executable, "-W", "error", "-c", code], check=True, timeout=60)
