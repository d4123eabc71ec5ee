"""The public surface matches sentry_sdk 2.x: names, signatures, module paths."""

from __future__ import annotations

import inspect
import subprocess
import sys

import pytest

import tripwire

sentry_sdk = pytest.importorskip("sentry_sdk")


def test_all_names_match_sentry_sdk() -> None:
    assert set(sentry_sdk.__all__) <= set(tripwire.__all__)
    for name in tripwire.__all__:
        assert hasattr(tripwire, name), name


@pytest.mark.parametrize(
    "name", [n for n in sentry_sdk.__all__ if callable(getattr(sentry_sdk, n, None))]
)
def test_function_signatures_match(name: str) -> None:
    theirs = getattr(sentry_sdk, name)
    ours = getattr(tripwire, name)
    if inspect.isclass(theirs) or inspect.ismodule(theirs):
        return
    try:
        their_params = inspect.signature(theirs).parameters
    except (TypeError, ValueError):
        return
    our_params = inspect.signature(ours).parameters
    for pname, param in their_params.items():
        assert pname in our_params, f"{name}: missing parameter {pname}"
        if param.default is not inspect.Parameter.empty:
            ours_default = our_params[pname].default
            assert ours_default is not inspect.Parameter.empty, f"{name}.{pname} must be optional"


@pytest.mark.parametrize("cls_name", ["Scope", "Hub", "Client", "Transport"])
def test_class_methods_exist(cls_name: str) -> None:
    theirs = getattr(sentry_sdk, cls_name)
    ours = getattr(tripwire, cls_name)
    skip = {
        "start_streamed_span",
        "streamed_span",
        "apply_to_telemetry",
        "set_global_attributes",
        "get_conversation_id",
        "set_conversation_id",
        "remove_conversation_id",
        "set_custom_sampling_context",
        "flags",
        "run_error_processors",
        "run_event_processors",
    }
    for name in vars(theirs):
        if name.startswith("_") or name in skip:
            continue
        assert hasattr(ours, name), f"{cls_name}.{name}"


def test_module_paths_exist() -> None:
    import importlib

    for path in [
        "tripwire.api",
        "tripwire.client",
        "tripwire.scope",
        "tripwire.hub",
        "tripwire.consts",
        "tripwire.types",
        "tripwire.envelope",
        "tripwire.transport",
        "tripwire.scrubber",
        "tripwire.attachments",
        "tripwire.tracing",
        "tripwire.integrations",
    ]:
        importlib.import_module(path)
    from tripwire.types import Breadcrumb, Event, Hint  # noqa: F401


def test_import_is_light() -> None:
    heavy = (
        "urllib3",
        "ssl",
        "certifi",
        "asyncio",
        "importlib.metadata",
        "socket",
        "orjson",
        "brotli",
        "subprocess",
        "logging.handlers",
    )
    code = f"import sys, tripwire\nprint(','.join(m for m in {heavy!r} if m in sys.modules))\n"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_import_has_no_side_effects() -> None:
    code = (
        "import logging, threading, tripwire\n"
        "assert threading.active_count() == 1, threading.enumerate()\n"
        "assert logging.getLogger().handlers == []\n"
        "assert tripwire.is_initialized() is False\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_monitor_name_is_the_crons_decorator_even_after_importing_the_module() -> None:
    code = (
        "import tripwire, tripwire.monitor\n"
        "from tripwire.monitor import Monitor\n"
        "from tripwire.crons import monitor\n"
        "assert tripwire.monitor is monitor, tripwire.monitor\n"
        "tripwire.init(dsn='https://k@127.0.0.1:9/1')\n"  # creates a backpressure Monitor
        "assert tripwire.monitor is monitor, tripwire.monitor\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
