"""Shared fixtures: every test starts from the just-imported state."""

from __future__ import annotations

import faulthandler
import json
import os
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import _zygote
import pytest
from _receiver import LeakCheck, Receiver, assert_sdk_threads_ended, sdk_threads

import tripwire
from tripwire.testing import MemoryTransport, reset

# Their libraries need Python 3.10+ (pyproject's test extras install them only there).
collect_ignore = (
    [
        f"test_integration_{name}.py"
        for name in (
            "langchain langgraph openai_agents pydantic_ai google_genai mcp litellm "
            "mistral quart httpx2 pyreqwest beam ray"
        ).split()
    ]
    if sys.version_info < (3, 10)
    else []
) + (["test_integration_spark.py"] if sys.version_info < (3, 11) else [])


@pytest.fixture(autouse=True, scope="session")
def _stop_the_zygotes() -> Iterator[None]:
    """sentry_sdk's zygote (tests/_side_by_side.py) serves every module of the session."""
    yield
    _zygote.stop()


@pytest.fixture(autouse=True, scope="module")
def _stop_the_zygote(_stop_the_zygotes: None) -> Iterator[None]:
    """A test module's zygote for its scripts' headers (tests/_zygote.py) ends with it."""
    yield
    _zygote.stop(sentry_sdk=False)


@pytest.fixture(autouse=True)
def _fresh_sdk() -> Iterator[None]:
    """Reset before and after; a test that leaves an SDK thread running fails here.

    `reset()` closes only the current client: a client replaced by a second `init()`
    without being closed keeps its threads (its monitor checks every 10 s, forever).
    """
    reset()
    before = set(sdk_threads())
    yield
    reset()
    assert_sdk_threads_ended(before)


@pytest.fixture
def transport() -> MemoryTransport:
    """tripwire initialised on an in-memory transport (wire bytes kept)."""
    memory = MemoryTransport()
    tripwire.init(transport=memory)
    return memory


@pytest.fixture
def init_memory() -> object:
    """Call with options: returns the MemoryTransport tripwire was initialised on."""

    def _init(**options: object) -> MemoryTransport:
        memory = MemoryTransport()
        tripwire.init(transport=memory, **options)
        return memory

    return _init


@pytest.fixture
def rx() -> Iterator[Receiver]:
    """A real HTTP receiver on 127.0.0.1; afterwards no SDK thread or socket may be left."""
    leaks = LeakCheck()
    receiver = Receiver().start()
    yield receiver
    # This teardown runs before `_fresh_sdk`'s: stop the SDK's threads first.
    reset()
    receiver.stop()
    leaks.assert_clean()


# The files that take longest (wall time; most wait on real servers or subprocesses),
# longest first. `--dist loadfile` hands files to workers in collection order: these
# go first, so that no worker is still running one of them while the others idle.
_LONG_FILES_FIRST = """
    test_integration_ray test_integration_spark test_integration_celery
    test_logging_side_by_side test_integration_stdlib test_streaming_ai
    test_integration_openai_agents test_integration_langchain test_integration_litellm
    test_serializer test_integration_anthropic test_server_hardening test_server_ingest
    test_streaming_data test_integration_pydantic_ai test_integration_openai
    test_integration_cloud_resource_context test_streaming_start_attributes
    test_streaming_outgoing test_integration_beam
""".split()


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """`-n auto`: one worker more than the usable cores. Much of the suite waits on
    subprocesses and servers (an interpreter per SDK run of a differential test), which a
    spare worker fills: on 2 cores 3 workers took ~200 s where 2 took ~230-245 s."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return cores + 1


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    rank = {f"{name}.py": i for i, name in enumerate(_LONG_FILES_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: the rest as is


# Past pytest-timeout's limit (pyproject: 150 s): a test whose process no thread can run
# Python in any more (a thread holds the GIL and waits forever, as in CPython gh-106883)
# never lets pytest-timeout's thread fire. faulthandler's watchdog is C: it dumps every
# thread's stack and ends the worker, which xdist reports as a failure (and replaces)
# instead of CI hanging until its own limit.
_WATCHDOG_SECONDS = 240


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    faulthandler.dump_traceback_later(_WATCHDOG_SECONDS, exit=True)
    try:
        yield
    finally:
        faulthandler.cancel_dump_traceback_later()


def pytest_configure(config: pytest.Config) -> None:
    # Test subprocesses load tests/_sentry_site/sitecustomize.py (see its docstring).
    site = str(Path(__file__).parent / "_sentry_site")
    current = os.environ.get("PYTHONPATH")
    if site not in (current or "").split(os.pathsep):
        os.environ["PYTHONPATH"] = site + (os.pathsep + current if current else "")
    # Some machines (CI's among them) set PYTHONDONTWRITEBYTECODE: then every test
    # subprocess and xdist worker compiles tripwire and the test modules from source
    # again (~0.4 s of CPU each, hundreds of times). Let them cache their bytecode.
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sys.dont_write_bytecode = False
    if not hasattr(config, "workerinput"):  # once, in the process xdist's workers inherit
        _list_distributions_for_sentry_sdk(config)


def _list_distributions_for_sentry_sdk(config: pytest.Config) -> None:
    """The installed distributions as sentry_sdk lists them, for its runs in subprocesses.

    See `_known_distributions` in tests/_sentry_site/sitecustomize.py.
    """
    from sentry_sdk.utils import _generate_installed_modules

    folders = [
        os.path.abspath(folder)
        for folder in sys.path
        if os.path.isdir(folder)
        and any(n.endswith((".dist-info", ".egg-info")) for n in os.listdir(folder))
    ]
    known = {"folders": folders, "modules": dict(_generate_installed_modules())}
    fd, path = tempfile.mkstemp(prefix="tripwire-tests-", suffix=".json")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(known, f)
    os.environ["TRIPWIRE_TESTS_SENTRY_MODULES"] = path
    config.add_cleanup(lambda: os.unlink(path))
