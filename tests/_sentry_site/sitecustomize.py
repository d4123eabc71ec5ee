"""Loaded by every test subprocess (tests/conftest.py puts this folder on PYTHONPATH).

sentry_sdk 2.75's `init()` imports every installed library it has an auto-enabling
integration for: with this project's test extras (LangChain, LiteLLM, pydantic-ai...)
that is ~9 s of CPU per process, and some of those imports warn, which the
differential tests' ``-W error`` turns into a failed `init()`. Here sentry_sdk
auto-enables only the integrations of libraries the program has imported when it
calls `init()`: what it would do in an application that has only those installed.
tripwire needs no such help (it patches a library when the application imports it).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import json
import os
import sys
from typing import Any

# Integration module -> the modules whose import means "the application uses it".
_LIBRARIES = {
    "google_genai": ("google.genai",),
    "openai_agents": ("agents",),
    "langchain": ("langchain", "langchain_core"),
    "huggingface_hub": ("huggingface_hub",),
}


def _wanted(path: str) -> bool:
    name = path.split(".")[2]
    return any(lib in sys.modules for lib in _LIBRARIES.get(name, (name,)))


def _trim(module: Any) -> None:
    if not hasattr(module, "setup_integrations"):
        return
    everything = list(module._AUTO_ENABLING_INTEGRATIONS)
    setup = module.setup_integrations

    def setup_integrations(*args: Any, **kwargs: Any) -> Any:
        listed = module._AUTO_ENABLING_INTEGRATIONS
        listed[:] = [p for p in everything if _wanted(p)]
        try:
            return setup(*args, **kwargs)
        finally:
            listed[:] = everything  # as sentry_sdk has it, for whoever reads the list

    module.setup_integrations = setup_integrations


def _known_distributions(utils: Any) -> None:
    """Hand sentry_sdk the installed distributions the test run already listed.

    sentry_sdk's modules integration lists them on the first event by parsing every
    METADATA file (~0.35 s of CPU with this project's test extras, in every run). The
    pytest process lists them once (tests/conftest.py) with the same sentry_sdk code,
    with the folders it found them in; a run whose path lacks one of those or adds a
    folder holding others lists them itself.
    """
    path = os.environ.get("TRIPWIRE_TESTS_SENTRY_MODULES")
    if not path or getattr(utils, "_installed_modules", "absent") is not None:
        return
    try:
        with open(path, encoding="utf-8") as f:
            known = json.load(f)
        here = {os.path.abspath(folder) for folder in sys.path}
        there = set(known["folders"])
        if not there <= here or any(_holds_distributions(f) for f in here - there):
            return
    except (OSError, ValueError, KeyError):
        return
    utils._installed_modules = dict(known["modules"])


def _holds_distributions(folder: str) -> bool:
    try:
        names = os.listdir(folder)
    except OSError:
        return False
    return any(name.endswith((".dist-info", ".egg-info")) for name in names)


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != "sentry_sdk.integrations":
            return None
        parent = sys.modules.get("sentry_sdk")
        if getattr(parent, "__name__", None) != "sentry_sdk":
            return None  # tripwire under the alias: nothing to trim
        sys.meta_path.remove(self)
        try:
            spec = importlib.machinery.PathFinder.find_spec(name, path)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        execute = loader.exec_module

        def exec_module(module: Any) -> None:
            execute(module)
            _trim(module)
            _known_distributions(sys.modules.get("sentry_sdk.utils"))

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


sys.meta_path.insert(0, _Finder())
