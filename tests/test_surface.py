"""sentry_sdk 2.75's importable surface, derived from the pinned package, exists in tripwire.

What counts: every public module of sentry_sdk (integration modules tripwire does not
have yet aside), every public name a module defines at its top level or lists in
`__all__`, and every name real packages were found importing
(`tests/data/sentry_sdk_imports_in_the_wild.txt`). A gap fails the test unless the
README's "Not importable yet" list names it; a README entry that matches no gap fails
too, so the list stays short and true.
"""

from __future__ import annotations

import ast
import fnmatch
import importlib
import pkgutil
import re
from pathlib import Path

import pytest

sentry_sdk = pytest.importorskip("sentry_sdk")

ROOT = Path(__file__).resolve().parent.parent
WILD = Path(__file__).resolve().parent / "data" / "sentry_sdk_imports_in_the_wild.txt"
REFERENCE_VERSION = "2.75.0"


def _public_modules() -> list[str]:
    names = ["sentry_sdk"]
    for info in pkgutil.walk_packages(sentry_sdk.__path__, "sentry_sdk.", onerror=lambda _: None):
        parts = info.name.split(".")[1:]
        if any(part.startswith("_") for part in parts):
            continue
        if parts[0] == "integrations" and len(parts) > 1:
            continue  # integration modules: checked only through the wild list
        names.append(info.name)
    return names


def _defined_names(module_name: str) -> set[str]:
    """Public names the module binds at its top level (outside TYPE_CHECKING) or exports."""
    module = importlib.import_module(module_name)
    names = {n for n in getattr(module, "__all__", ()) if not n.startswith("_")}
    source = Path(module.__file__ or "").read_text(encoding="utf-8")
    for node in ast.parse(source).body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {n for n in names if not n.startswith("_") and n != "TYPE_CHECKING"}


def _wild() -> set[tuple[str, str]]:
    found = set()
    for line in WILD.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            module, name = line.split()
            found.add((module, name))
    return found


def _reference_surface() -> set[tuple[str, str]]:
    """(module, name) pairs; name "" stands for the module itself."""
    surface: set[tuple[str, str]] = set()
    for module_name in _public_modules():
        try:
            names = _defined_names(module_name)
        except ImportError:
            continue  # needs a third-party package that is not installed here
        surface.add((module_name, ""))
        surface.update((module_name, n) for n in names)
    for module_name, name in _wild():
        surface.update({(module_name, ""), (module_name, name)})
    return surface


def _gaps(surface: set[tuple[str, str]]) -> set[str]:
    gaps = set()
    for module_name, name in sorted(surface):
        ours = "tripwire" + module_name[len("sentry_sdk") :]
        try:
            module = importlib.import_module(ours)
        except ImportError:
            gaps.add(module_name)
            continue
        if name and not hasattr(module, name):
            gaps.add(f"{module_name}.{name}")
    return gaps


def _readme_allowances() -> list[str]:
    """The backticked patterns of the README's "Not importable yet" section."""
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    match = re.search(r"^## Not importable yet\n(.*?)(?=^## )", text, re.S | re.M)
    assert match, "README.md has no '## Not importable yet' section"
    return re.findall(r"^- `(sentry_sdk[^`]*)`", match.group(1), re.M)


def test_reference_is_the_pinned_release() -> None:
    assert sentry_sdk.VERSION == REFERENCE_VERSION, "pin the reference: sentry-sdk==2.75.0"


def test_every_gap_is_on_the_readme_list_and_every_entry_is_a_gap() -> None:
    gaps = _gaps(_reference_surface())
    allowed = _readme_allowances()
    unexplained = sorted(g for g in gaps if not any(fnmatch.fnmatchcase(g, p) for p in allowed))
    assert not unexplained, f"importable from sentry_sdk 2.75 but not from tripwire: {unexplained}"
    stale = [p for p in allowed if not any(fnmatch.fnmatchcase(g, p) for g in gaps)]
    assert not stale, f"README lists gaps that are gone (remove them): {stale}"


def test_submodules_sentry_sdk_binds_are_attributes_after_a_bare_import() -> None:
    """`import sentry_sdk; sentry_sdk.serializer.serialize(...)` works without importing it."""
    import subprocess
    import sys

    def run(code: str, *args: str) -> str:
        result = subprocess.run(
            [sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    listed = run(
        "import sentry_sdk, types\n"
        "print(*(n for n, v in vars(sentry_sdk).items() if isinstance(v, types.ModuleType)))"
    ).split()
    allowed = _readme_allowances()
    names = [
        n
        for n in listed
        if not n.startswith("_")
        and not any(fnmatch.fnmatchcase(f"sentry_sdk.{n}", p) for p in allowed)
    ]
    assert "serializer" in names
    run(
        "import sys, tripwire\n"
        "for n in sys.argv[1:]:\n"
        "    assert getattr(tripwire, n).__name__ == 'tripwire.' + n, n\n",
        *names,
    )
