"""Frames for events: names, source context, vars, in_app and hidden frames."""

from __future__ import annotations

import collections.abc
import importlib
import json
import linecache
import os
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from types import TracebackType
from typing import Any, Callable

import _sample_frames as sample
import pytest

from tripwire.event import frames as frames_module
from tripwire.event.frames import (
    FrameOptions,
    frames_from_stack,
    frames_from_traceback,
    stacktrace_for_current_thread,
)

SAMPLE_PATH = os.path.abspath(sample.__file__)
SAMPLE_LINES = Path(SAMPLE_PATH).read_text().splitlines()
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def render(values: Any) -> dict[str, Any]:
    return {key: repr(value) for key, value in values.items()}


def options(**kwargs: Any) -> FrameOptions:
    kwargs.setdefault("vars_renderer", render)
    kwargs.setdefault("project_root", ROOT)
    return FrameOptions(**kwargs)


def traceback_of(fn: Callable[[], object]) -> TracebackType:
    try:
        fn()
    except BaseException as exc:
        assert exc.__traceback__ is not None
        return exc.__traceback__
    raise AssertionError("did not raise")


def raising_code(module: object, filename: str, source: str | None = None) -> Callable[..., Any]:
    """A function `boom` compiled as if it lived in `filename`, in module `module`."""
    namespace: dict[str, Any] = {"__name__": module}
    code = source or "def boom():\n    raise ValueError('boom')\n"
    exec(compile(code, filename, "exec"), namespace)
    return namespace["boom"]  # type: ignore[no-any-return]


def last_frame(fn: Callable[[], object], opts: FrameOptions | None = None) -> dict[str, Any]:
    return frames_from_traceback(traceback_of(fn), opts or options())[-1]


# --- the frames of sample code --------------------------------------------------------


def test_traceback_frames_oldest_first_with_context_and_vars() -> None:
    tb = traceback_of(sample.outer)
    frames = frames_from_traceback(tb, options())

    assert [f["function"] for f in frames] == ["traceback_of", "outer", "inner"]
    assert frames[1] == {
        "filename": "_sample_frames.py",
        "abs_path": SAMPLE_PATH,
        "function": "outer",
        "module": "_sample_frames",
        "lineno": 11,
        "pre_context": [
            '    raise ValueError(f"bad {y}")',
            "",
            "",
            "def outer() -> None:",
            "    a = 1",
        ],
        "context_line": "    inner(a)",
        "post_context": [
            "",
            "",
            "def hidden_caller() -> None:",
            "    __traceback_hide__ = True  # read from the frame locals",
            "    outer()",
        ],
        "vars": {"a": "1"},
        "in_app": True,
    }
    assert frames[2] == {
        "filename": "_sample_frames.py",
        "abs_path": SAMPLE_PATH,
        "function": "inner",
        "module": "_sample_frames",
        "lineno": 6,
        "pre_context": SAMPLE_LINES[0:5],
        "context_line": '    raise ValueError(f"bad {y}")',
        "post_context": ["", "", "def outer() -> None:", "    a = 1", "    inner(a)"],
        "vars": {"x": "1", "y": "2"},
        "in_app": True,
    }
    # The key order is part of the output sentry-sdk users see.
    assert list(frames[2]) == [
        "filename",
        "abs_path",
        "function",
        "module",
        "lineno",
        "pre_context",
        "context_line",
        "post_context",
        "vars",
        "in_app",
    ]


def test_context_near_the_top_of_a_file_is_short() -> None:
    # Source registered with linecache the way IPython does for its cells.
    code = "def boom():\n    raise ValueError('x')\n"
    filename = "/virtual/tw_cell_1.py"
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    try:
        frame = last_frame(raising_code("cell", filename, code))
    finally:
        linecache.cache.pop(filename, None)
    assert frame["pre_context"] == ["def boom():"]
    assert frame["context_line"] == "    raise ValueError('x')"
    assert frame["post_context"] == []


def test_context_lines_option() -> None:
    frame = last_frame(sample.outer, options(context_lines=1))
    assert frame["pre_context"] == ["    y = x * 2"]
    assert frame["post_context"] == [""]
    none = last_frame(sample.outer, options(context_lines=0))
    assert (none["pre_context"], none["post_context"]) == ([], [])


def test_source_context_and_vars_can_be_switched_off() -> None:
    tb = traceback_of(sample.outer)
    bare = frames_from_traceback(
        tb, options(include_source_context=False, include_local_variables=False)
    )
    assert bare[-1] == {
        "filename": "_sample_frames.py",
        "abs_path": SAMPLE_PATH,
        "function": "inner",
        "module": "_sample_frames",
        "lineno": 6,
        "in_app": True,
    }
    no_renderer = frames_from_traceback(tb, FrameOptions(project_root=ROOT))
    assert "vars" not in no_renderer[-1]
    assert no_renderer[-1]["context_line"] == '    raise ValueError(f"bad {y}")'


def test_frames_without_a_locals_dict_get_empty_vars() -> None:
    frame = last_frame(lambda: sample.deep(0))
    assert frame["function"] == "deep"
    assert frame["vars"] == {"n": "0"}
    frame = last_frame(raising_code("m", "/nowhere/m.py"))
    assert frame["vars"] == {}


# --- hidden frames ----------------------------------------------------------------------


def test_frames_with_traceback_hide_are_left_out() -> None:
    frames = frames_from_traceback(traceback_of(sample.visible_caller), options())
    assert [f["function"] for f in frames] == ["traceback_of", "visible_caller", "outer", "inner"]
    frames = frames_from_traceback(traceback_of(sample.pytest_style_hidden), options())
    assert [f["function"] for f in frames] == ["traceback_of", "outer", "inner"]


def test_tripwire_frames_never_appear() -> None:
    wrapper = raising_code(
        "tripwire.fake_wrapper",
        "/somewhere/tripwire/fake_wrapper.py",
        "def boom(callback):\n    return callback()\n",
    )
    frames = frames_from_traceback(traceback_of(lambda: wrapper(sample.outer)), options())
    assert [f["function"] for f in frames] == ["traceback_of", "<lambda>", "outer", "inner"]
    assert not any(str(f["module"]).startswith("tripwire.") for f in frames)

    # The package's own name (no dot) is someone else's module, as in sentry-sdk.
    lookalike = raising_code("tripwire", "/somewhere/tripwire.py")
    assert last_frame(lookalike)["module"] == "tripwire"


def test_all_frames_hidden_gives_no_frames() -> None:
    hidden = raising_code("tripwire.x", "/somewhere/tripwire/x.py")
    try:
        hidden()
    except ValueError as exc:
        tb = exc.__traceback__
    assert tb is not None
    assert frames_from_traceback(tb.tb_next, options()) == []


# --- file names and modules ------------------------------------------------------------


def test_filename_is_relative_to_the_top_package() -> None:
    json_dir = os.path.dirname(json.__file__)
    inside = last_frame(raising_code("json.fake", os.path.join(json_dir, "fake.py")))
    assert inside["filename"] == "json/fake.py"
    assert inside["module"] == "json.fake"

    elsewhere = last_frame(raising_code("json.fake", "/some/where/else/x.py"))
    assert elsewhere["filename"] == "some/where/else/x.py"

    unknown_top = last_frame(raising_code("nosuch_pkg.mod", "/a/b/c/d.py"))
    assert unknown_top["filename"] == "/a/b/c/d.py"

    single = last_frame(raising_code("single", "/a/b/c.py"))
    assert single["filename"] == "c.py"

    compiled = last_frame(raising_code("json.decoder2", os.path.join(json_dir, "decoder2.pyc")))
    assert compiled["filename"] == "json/decoder2.py"
    assert compiled["abs_path"].endswith("decoder2.pyc")


def test_exec_code_and_missing_module_names() -> None:
    frame = last_frame(raising_code(None, "<string>"))
    assert frame["filename"] == "<string>"
    assert frame["abs_path"] == os.path.join(os.getcwd(), "<string>")
    assert frame["module"] is None
    assert frame["pre_context"] == []
    assert frame["context_line"] is None
    assert frame["post_context"] == []
    assert "in_app" not in frame or frame["in_app"] is True

    odd = last_frame(raising_code(42, "/a/b.py"))
    assert (odd["module"], odd["filename"]) == (42, "/a/b.py")

    # Globals without __name__ at all.
    namespace: dict[str, Any] = {}
    exec(compile("def boom():\n    raise KeyError(1)\n", "<dyn>", "exec"), namespace)
    del namespace["__builtins__"]
    frame = last_frame(namespace["boom"])
    assert (frame["module"], frame["filename"], frame["function"]) == (None, "<dyn>", "boom")


# --- in_app ----------------------------------------------------------------------------


SITE = "/opt/venv/lib/python3.11/site-packages/lib/mod.py"
DIST = "/usr/lib/python3/dist-packages/lib/mod.py"


@pytest.mark.parametrize(
    ("module", "filename", "kwargs", "expected"),
    [
        # project_root: files below it are in_app, others are undecided (no key).
        ("app.views", "/srv/app/views.py", {"project_root": "/srv"}, True),
        ("app.views", "/srv/app/views.py", {"project_root": "/elsewhere"}, None),
        ("app.views", "/srv/app/views.py", {"project_root": None}, None),
        # Installed packages are never in_app by location, even below the project root.
        ("lib.mod", SITE, {"project_root": "/"}, False),
        ("lib.mod", DIST, {"project_root": "/"}, False),
        # Explicit lists by module prefix (dotted): include wins over everything.
        ("lib.mod", SITE, {"in_app_include": ["lib"]}, True),
        ("lib.mod", SITE, {"in_app_include": ["lib.mod"]}, True),
        ("lib.mod", SITE, {"in_app_include": ["li"]}, False),
        (
            "app.views",
            "/srv/app/views.py",
            {"project_root": "/srv", "in_app_exclude": ["app"]},
            False,
        ),
        (
            "app.views",
            "/srv/app/views.py",
            {"project_root": "/srv", "in_app_exclude": ["ap"]},
            True,
        ),
        ("app.views", "/srv/x.py", {"in_app_include": ["app"], "in_app_exclude": ["app"]}, True),
        (None, "/srv/x.py", {"in_app_include": ["app"], "project_root": "/srv"}, True),
        # A plain string prefix test on the path, as sentry-sdk does.
        ("app.views", "/srvx/app/views.py", {"project_root": "/srv"}, True),
    ],
)
def test_in_app_rules(
    module: str | None, filename: str, kwargs: dict[str, Any], expected: bool | None
) -> None:
    frame = last_frame(raising_code(module, filename), options(**kwargs))
    assert frame.get("in_app") is expected
    if expected is None:
        assert "in_app" not in frame


# --- source that is odd, gone or elsewhere ---------------------------------------------


@pytest.fixture
def tmp_import_path(tmp_path: Path) -> Iterator[Path]:
    sys.path.insert(0, str(tmp_path))
    before = set(sys.modules)
    try:
        yield tmp_path
    finally:
        sys.path.remove(str(tmp_path))
        for name in set(sys.modules) - before:
            del sys.modules[name]
        importlib.invalidate_caches()


def test_latin1_source_is_decoded(tmp_import_path: Path) -> None:
    (tmp_import_path / "tw_latin1_mod.py").write_bytes(
        b"# -*- coding: latin-1 -*-\ndef f():\n    s = 'caf\xe9'\n    raise ValueError(s)\n"
    )
    module = importlib.import_module("tw_latin1_mod")
    frame = last_frame(module.f)
    assert frame["pre_context"] == ["# -*- coding: latin-1 -*-", "def f():", "    s = 'café'"]
    assert frame["context_line"] == "    raise ValueError(s)"
    assert frame["vars"] == {"s": "'café'"}


def test_undecodable_source_gives_no_context(tmp_import_path: Path) -> None:
    path = tmp_import_path / "tw_badenc_mod.py"
    path.write_text("def f():\n    raise ValueError('x')\n")
    module = importlib.import_module("tw_badenc_mod")
    path.write_bytes(b"# -*- coding: no-such-codec -*-\n\xff\xfe\n")
    linecache.checkcache(str(path))
    frame = last_frame(module.f)
    assert (frame["pre_context"], frame["context_line"], frame["post_context"]) == ([], None, [])
    assert frame["lineno"] == 2


def test_vanished_source_file(tmp_import_path: Path) -> None:
    path = tmp_import_path / "tw_vanish_mod.py"
    path.write_text("def f():\n    raise ValueError('vanish')\n")
    module = importlib.import_module("tw_vanish_mod")
    path.unlink()
    frame = last_frame(module.f)
    assert frame["context_line"] is None
    assert frame["filename"] == "tw_vanish_mod.py"


def test_zipimported_module_source(tmp_path: Path) -> None:
    archive = tmp_path / "mods.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("tw_zipped.py", "def g(callback):\n    x = 1\n    return callback()\n")
    sys.path.insert(0, str(archive))
    try:
        module = importlib.import_module("tw_zipped")
        frames = frames_from_traceback(traceback_of(lambda: module.g(sample.outer)), options())
    finally:
        sys.path.remove(str(archive))
        sys.modules.pop("tw_zipped", None)
    zipped = frames[2]
    assert zipped["abs_path"] == os.path.join(str(archive), "tw_zipped.py")
    assert zipped["filename"] == "tw_zipped.py"
    assert zipped["pre_context"] == ["def g(callback):", "    x = 1"]
    assert zipped["context_line"] == "    return callback()"
    assert zipped["vars"]["x"] == "1"


def test_edited_source_is_picked_up_after_a_second(
    tmp_import_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_import_path / "tw_edited_mod.py"
    path.write_text("def f():\n    raise ValueError('v1')\n")
    module = importlib.import_module("tw_edited_mod")
    now = [1000.0]
    monkeypatch.setattr(frames_module, "monotonic", lambda: now[0])
    opts = options()
    tb = traceback_of(module.f)
    assert frames_from_traceback(tb, opts)[-1]["context_line"] == "    raise ValueError('v1')"

    path.write_text("def f():\n    raise ValueError('v2 edited')  # longer\n")
    now[0] += 0.5  # within the recheck window the cached lines are used
    assert frames_from_traceback(tb, opts)[-1]["context_line"] == "    raise ValueError('v1')"
    now[0] += 1.0
    edited = frames_from_traceback(tb, opts)[-1]["context_line"]
    assert edited == "    raise ValueError('v2 edited')  # longer"


class FailingLoader:
    calls = 0

    def get_source(self, name: str) -> str:
        FailingLoader.calls += 1
        raise RuntimeError("loader bug")


def test_failing_loader_gives_no_context_and_is_not_retried_per_frame(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(frames_module, "monotonic", lambda: 1000.0)
    namespace: dict[str, Any] = {"__name__": "loaded_elsewhere", "__loader__": FailingLoader()}
    source = "def boom():\n    raise ValueError('x')\n"
    exec(compile(source, "/nonexistent/loaded_elsewhere.py", "exec"), namespace)
    tb = traceback_of(namespace["boom"])
    opts = options()
    for _ in range(3):
        frame = frames_from_traceback(tb, opts)[-1]
        assert (frame["context_line"], frame["lineno"]) == (None, 2)
    assert FailingLoader.calls == 1
    linecache.cache.pop("/nonexistent/loaded_elsewhere.py", None)


def test_lines_keep_indentation_and_lose_line_endings(tmp_import_path: Path) -> None:
    (tmp_import_path / "tw_crlf_mod.py").write_bytes(
        b"def f():\r\n\tx = 1   \r\n\traise ValueError(x)\r\n"
    )
    module = importlib.import_module("tw_crlf_mod")
    frame = last_frame(module.f)
    assert frame["pre_context"] == ["def f():", "\tx = 1   "]
    assert frame["context_line"] == "\traise ValueError(x)"


# --- locals that break ------------------------------------------------------------------


class BrokenMapping(collections.abc.MutableMapping):  # type: ignore[type-arg]
    def __getitem__(self, key: object) -> object:
        raise KeyError(key)

    def __setitem__(self, key: object, value: object) -> None:
        pass

    def __delitem__(self, key: object) -> None:
        pass

    def __iter__(self) -> Iterator[object]:
        raise RuntimeError("no iterating")

    def __len__(self) -> int:
        return 1

    def get(self, key: object, default: object = None) -> object:
        raise RuntimeError("no get")


def test_broken_locals_mapping_does_not_break_capture() -> None:
    try:
        exec("raise ValueError('x')", {"__name__": "m"}, BrokenMapping())
    except ValueError as exc:
        tb = exc.__traceback__
    assert tb is not None
    frames = frames_from_traceback(tb, options())
    assert frames[-1]["function"] == "<module>"
    assert frames[-1]["vars"] == {}


def test_failing_renderer_keeps_the_frame() -> None:
    def explode(values: Any) -> dict[str, Any]:
        raise RuntimeError("renderer bug")

    frame = last_frame(sample.outer, options(vars_renderer=explode))
    assert frame["vars"] == {}
    assert frame["context_line"] == '    raise ValueError(f"bad {y}")'


# --- deep stacks ------------------------------------------------------------------------


def test_recursion_error_keeps_every_frame_like_sentry() -> None:
    tb = traceback_of(lambda: sample.recurse(0))
    depth = 0
    walk: TracebackType | None = tb
    while walk is not None:
        depth += 1
        walk = walk.tb_next
    frames = frames_from_traceback(tb, options(max_stack_frames=10))
    # Without add_full_stack sentry-sdk does not cut exception frames.
    assert len(frames) == depth > 100
    assert frames[-1]["function"] == "recurse"
    assert frames[-1]["context_line"] == "    return recurse(n + 1)"
    assert frames[-1]["vars"] == {"n": repr(len(frames) - 3)}
    assert frames[-2]["pre_context"] == frames[-1]["pre_context"]


# --- the current stack ------------------------------------------------------------------


def test_stack_of_the_current_thread() -> None:
    opts = options()
    here = sys._getframe().f_lineno + 1
    stacktrace = stacktrace_for_current_thread(opts)
    frames = stacktrace["frames"]
    assert list(stacktrace) == ["frames"]
    assert frames[-1]["function"] == "test_stack_of_the_current_thread"
    assert frames[-1]["lineno"] == here
    assert frames[-1]["context_line"] == "    stacktrace = stacktrace_for_current_thread(opts)"
    assert "opts" in frames[-1]["vars"]
    assert not any(str(f["module"]).startswith("tripwire.") for f in frames)
    # pytest itself is installed code.
    assert any(f.get("in_app") is False for f in frames)


def test_stack_through_tripwire_code() -> None:
    opts = options(include_source_context=False, include_local_variables=False)
    via = raising_code(
        "tripwire.fake_layer",
        "/somewhere/tripwire/fake_layer.py",
        "def boom(fn, *a):\n    return fn(*a)\n",
    )
    default = via(stacktrace_for_current_thread, opts)["frames"]
    assert default[-1]["function"] == "test_stack_through_tripwire_code"
    everything = via(stacktrace_for_current_thread, opts, False)["frames"]
    assert everything[-1]["module"] == "tripwire.fake_layer"


def test_frames_from_stack_and_nothing() -> None:
    opts = options()
    frames = frames_from_stack(sys._getframe(), opts)
    assert frames[-1]["function"] == "test_frames_from_stack_and_nothing"
    assert frames_from_stack(None, opts) == []
    assert frames_from_traceback(None, opts) == []


# --- the incumbent, side by side --------------------------------------------------------


def test_attach_stacktrace_matches_sentry_sdk() -> None:
    pytest.importorskip("sentry_sdk")
    import sentry_sdk
    from _sample_sentry import sentry_client, vars_keys

    opts = FrameOptions(vars_renderer=render, project_root=os.getcwd())
    with sentry_client(attach_stacktrace=True) as captured:
        sentry_sdk.capture_message("hi"); ours = stacktrace_for_current_thread(opts)  # fmt: skip  # noqa: E702
    event = captured.last()
    thread = event["threads"]["values"][0]
    assert {k: v for k, v in thread.items() if k != "stacktrace"} == {
        "crashed": False,
        "current": True,
    }
    # pytest's own frames with __tracebackhide__ are left out by both.
    assert vars_keys(ours["frames"]) == vars_keys(thread["stacktrace"]["frames"])
