"""Stack frames for events: file names, source context, local variables and in_app.

This is the hottest part of ``capture_exception``, so everything that never changes
for a code object (its file name forms, module, ``in_app`` verdict, whether it can be
hidden) is computed once and cached on the `FrameOptions`, and source lines come from
`linecache` plus a small cache of ready-made context windows. Files are re-checked for
changes at most once a second, never re-read per frame.

Frame dicts have the keys (in this order) ``filename``, ``abs_path``, ``function``,
``module``, ``lineno``, then ``pre_context``/``context_line``/``post_context`` when
source context is on, ``vars`` when local variables are on, and ``in_app`` when a rule
decided it. Frames of tripwire itself (modules ``tripwire.*``) and frames whose locals
set a truthy ``__traceback_hide__`` (or pytest's ``__tracebackhide__``) are left out.
"""

from __future__ import annotations

import linecache
import os
import sys
from collections.abc import Mapping, Sequence
from time import monotonic
from types import CodeType, FrameType, TracebackType
from typing import Any, Callable, Optional

VarsRenderer = Callable[[Mapping[str, object]], "dict[str, Any]"]

# Locals that hide their frame when truthy: the common convention and pytest's.
_HIDE_NAMES = ("__traceback_hide__", "__tracebackhide__")
_OWN_PREFIX = "tripwire."
_CO_OPTIMIZED = 0x0001  # inspect.CO_OPTIMIZED: locals live in fast slots (functions)

# How a code object's frames may be hidden.
_SHOWN = 0  # never hidden
_HIDDEN = 1  # always hidden (tripwire's own code)
_CHECK = 2  # hidden when the frame's locals hold a truthy __traceback_hide__

_CACHE_LIMIT = 4096  # entries per cache before it is dropped and rebuilt
_RECHECK_SECONDS = 1.0  # how stale a cached source file may be

# Per (code object, module): (code, module, filename, abs_path, function, in_app, hide).
# The code object is kept in the entry so its id() cannot be reused while cached.
_Static = tuple[CodeType, object, Optional[str], Optional[str], str, Optional[bool], int]
# Per (file, line): (the linecache list it came from, pre, line, post).
_Context = tuple[object, tuple[str, ...], Optional[str], tuple[str, ...]]
# A frame picked for an event: (frame, lineno, static info).
_Raw = tuple[FrameType, Optional[int], _Static]


class FrameOptions:
    """Per-client settings for building frames, plus the caches that go with them.

    Args:
        include_source_context: Add ``pre_context``/``context_line``/``post_context``.
        include_local_variables: Add ``vars`` (rendered by `vars_renderer`).
        in_app_include: Module prefixes whose frames are always in_app.
        in_app_exclude: Module prefixes whose frames are never in_app.
        project_root: Files under this path are in_app. ``None`` (or ``""``) turns the
            rule off; the client passes the resolved option, which defaults to the
            working directory at init like sentry-sdk.
        max_stack_frames: With `add_full_stack`, keep only this many newest frames.
        add_full_stack: Prepend the frames above the capture point to exceptions.
        vars_renderer: Turns a frame's locals into the ``vars`` dict; ``None`` means
            no ``vars`` at all.
        context_lines: Lines of source kept before and after the current line.
    """

    __slots__ = (
        "_code_cache",
        "_context_cache",
        "_files",
        "add_full_stack",
        "context_lines",
        "in_app_exclude",
        "in_app_include",
        "include_local_variables",
        "include_source_context",
        "max_stack_frames",
        "project_root",
        "vars_renderer",
    )

    def __init__(
        self,
        *,
        include_source_context: bool = True,
        include_local_variables: bool = True,
        in_app_include: Sequence[str] = (),
        in_app_exclude: Sequence[str] = (),
        project_root: str | None = None,
        max_stack_frames: int | None = 100,
        add_full_stack: bool = False,
        vars_renderer: VarsRenderer | None = None,
        context_lines: int = 5,
    ) -> None:
        self.include_source_context = bool(include_source_context)
        self.include_local_variables = bool(include_local_variables)
        self.in_app_include: tuple[str, ...] = _prefixes(in_app_include)
        self.in_app_exclude: tuple[str, ...] = _prefixes(in_app_exclude)
        self.project_root: str | None = project_root if isinstance(project_root, str) else None
        self.max_stack_frames: int | None = (
            max_stack_frames if isinstance(max_stack_frames, int) else None
        )
        self.add_full_stack = bool(add_full_stack)
        self.vars_renderer: VarsRenderer | None = vars_renderer if include_local_variables else None
        lines: object = context_lines  # checked at run time: options come from users
        self.context_lines = max(0, lines) if isinstance(lines, int) else 5
        self._code_cache: dict[tuple[int, object], _Static] = {}
        self._context_cache: dict[tuple[str, int], _Context] = {}
        self._files: dict[str, tuple[float, list[str]]] = {}


def _prefixes(items: object) -> tuple[str, ...]:
    if isinstance(items, str):
        return (items,) if items else ()
    if not isinstance(items, (list, tuple, set, frozenset)):
        return ()
    return tuple(item for item in items if isinstance(item, str))


def _in_list(module: object, prefixes: tuple[str, ...]) -> bool:
    """Whether `module` is one of `prefixes` or inside one of them (dotted)."""
    if not prefixes or not isinstance(module, str):
        return False
    return any(module == prefix or module.startswith(prefix + ".") for prefix in prefixes)


def _is_external(abs_path: str) -> bool:
    # Installed third-party code, wherever the environment lives (even inside the project).
    path = abs_path.replace("\\", "/")
    return "/site-packages/" in path or "/dist-packages/" in path


def _in_app(opts: FrameOptions, module: object, abs_path: str | None) -> bool | None:
    if _in_list(module, opts.in_app_include):
        return True
    if _in_list(module, opts.in_app_exclude):
        return False
    if abs_path:
        if _is_external(abs_path):
            return False
        root = opts.project_root
        if root and abs_path.startswith(root):
            return True
    return None


def _short_filename(module: object, path: str) -> str | None:
    """The path as shown in the UI: relative to where the module's top package lives."""
    if not path:
        return None
    if not module or not isinstance(module, str):
        return path
    if path.endswith(".pyc"):
        path = path[:-1]
    if "." not in module:
        return os.path.basename(path)
    top = sys.modules.get(module.split(".", 1)[0])
    top_file = getattr(top, "__file__", None)
    if not isinstance(top_file, str) or not top_file:
        return path
    # The directory that holds the top package: strip "<package>/__init__.py".
    base = top_file.rsplit(os.sep, 2)[0]
    if not base:
        return path
    at = path.find(base)
    if at < 0:
        return path.lstrip(os.sep)
    return path[at + len(base) :].lstrip(os.sep)


def _hide_mode(code: CodeType, module: object) -> int:
    if isinstance(module, str) and module.startswith(_OWN_PREFIX):
        return _HIDDEN
    if not code.co_flags & _CO_OPTIMIZED:
        # Module, class and exec code: locals are a plain mapping, cheap to look into.
        return _CHECK
    for name in _HIDE_NAMES:
        if name in code.co_varnames or name in code.co_cellvars or name in code.co_freevars:
            return _CHECK
    return _SHOWN


def _make_static(opts: FrameOptions, code: CodeType, module: object) -> _Static:
    raw_path = code.co_filename
    abs_path: str | None
    try:
        abs_path = os.path.abspath(raw_path) if raw_path else None
    except Exception:  # the working directory vanished
        abs_path = raw_path or None
    try:
        filename = _short_filename(module, raw_path)
    except Exception:
        filename = raw_path or None
    try:
        in_app = _in_app(opts, module, abs_path)
    except Exception:
        in_app = None
    return (code, module, filename, abs_path, code.co_name, in_app, _hide_mode(code, module))


def _static_for(opts: FrameOptions, frame: FrameType) -> _Static:
    code = frame.f_code
    module = frame.f_globals.get("__name__")
    if module is not None and not isinstance(module, str):
        return _make_static(opts, code, module)  # odd __name__: not worth caching
    key = (id(code), module)
    cache = opts._code_cache
    entry = cache.get(key)
    if entry is not None and entry[0] is code:
        return entry
    entry = _make_static(opts, code, module)
    # Relative file names resolve against the current directory, which may change.
    if os.path.isabs(code.co_filename):
        if len(cache) >= _CACHE_LIMIT:
            cache.clear()
        cache[key] = entry
    return entry


def _hidden(frame: FrameType, mode: int) -> bool:
    if mode == _SHOWN:
        return False
    if mode == _HIDDEN:
        return True
    try:
        local_vars = frame.f_locals
        return any(local_vars.get(name) for name in _HIDE_NAMES)
    except Exception:  # a broken locals mapping must not break the capture
        return False


def _collect_traceback(tb: TracebackType | None, opts: FrameOptions) -> list[_Raw]:
    """The visible frames of `tb`, oldest first, with no per-frame rendering yet."""
    raw: list[_Raw] = []
    append = raw.append
    while tb is not None:
        frame = tb.tb_frame
        static = _static_for(opts, frame)
        if static[6] == _SHOWN or not _hidden(frame, static[6]):
            append((frame, tb.tb_lineno, static))
        tb = tb.tb_next
    return raw


def _collect_stack(
    frame: FrameType | None, opts: FrameOptions, hide_own: bool = True
) -> list[_Raw]:
    """The visible frames from `frame` up to the outermost one, oldest first."""
    raw: list[_Raw] = []
    append = raw.append
    while frame is not None:
        static = _static_for(opts, frame)
        mode = static[6]
        if mode == _HIDDEN and not hide_own:
            mode = _CHECK
        if mode == _SHOWN or not _hidden(frame, mode):
            append((frame, frame.f_lineno, static))
        frame = frame.f_back
    raw.reverse()
    return raw


def _lines_for(opts: FrameOptions, filename: str, module_globals: dict[str, Any]) -> list[str]:
    files = opts._files
    now = monotonic()
    known = files.get(filename)
    if known is not None and now - known[0] <= _RECHECK_SECONDS:
        return known[1]
    # One stat per file per second keeps edited files fresh without re-reading them;
    # linecache reads a file once (through the module's loader for zip imports).
    try:
        linecache.checkcache(filename)
        lines = linecache.getlines(filename, module_globals)
    except Exception:  # e.g. a custom loader's get_source failing: no source, for now
        lines = []
    if len(files) >= _CACHE_LIMIT:
        files.clear()
    files[filename] = (now, lines)
    return lines


_NO_CONTEXT: _Context = (None, (), None, ())


def _context_for(
    opts: FrameOptions, filename: str, lineno: int | None, module_globals: dict[str, Any]
) -> _Context:
    if not filename or lineno is None or lineno < 1:
        return _NO_CONTEXT
    lines = _lines_for(opts, filename, module_globals)
    key = (filename, lineno)
    cache = opts._context_cache
    entry = cache.get(key)
    if entry is not None and entry[0] is lines:
        return entry
    if lineno > len(lines):
        entry = (lines, (), None, ())
    else:
        n = opts.context_lines
        index = lineno - 1
        entry = (
            lines,
            tuple(line.rstrip("\r\n") for line in lines[max(0, index - n) : index]),
            lines[index].rstrip("\r\n"),
            tuple(line.rstrip("\r\n") for line in lines[index + 1 : index + 1 + n]),
        )
    if len(cache) >= _CACHE_LIMIT:
        cache.clear()
    cache[key] = entry
    return entry


def _render(raw: list[_Raw], opts: FrameOptions) -> list[dict[str, Any]]:
    """Turn picked frames into event frame dicts."""
    source = opts.include_source_context
    renderer = opts.vars_renderer
    out: list[dict[str, Any]] = []
    append = out.append
    for frame, lineno, static in raw:
        code, module, filename, abs_path, function, in_app, _mode = static
        item: dict[str, Any] = {
            "filename": filename,
            "abs_path": abs_path,
            "function": function,
            "module": module,
            "lineno": lineno,
        }
        if source:
            _lines, pre, line, post = _context_for(opts, code.co_filename, lineno, frame.f_globals)
            item["pre_context"] = list(pre)
            item["context_line"] = line
            item["post_context"] = list(post)
        if renderer is not None:
            try:
                item["vars"] = renderer(frame.f_locals)
            except Exception:  # broken locals or renderer: keep the frame, lose its vars
                item["vars"] = {}
        if in_app is not None:
            item["in_app"] = in_app
        append(item)
    return out


def _trim(raw: list[_Raw], limit: int | None) -> list[_Raw]:
    if limit is None or len(raw) <= limit:
        return raw
    return raw[len(raw) - limit :]


def _merge_full_stack(stack: list[_Raw], raw: list[_Raw], opts: FrameOptions) -> list[_Raw]:
    """Prepend the capture point's stack to a traceback's frames, like sentry-sdk.

    Stack frames that look the same as a traceback frame (same file, line and function)
    are dropped; the newest `max_stack_frames` of the result are kept.
    """
    seen = {(s[3], lineno, s[4]) for _f, lineno, s in raw}
    merged = [item for item in stack if (item[2][3], item[1], item[2][4]) not in seen]
    merged.extend(raw)
    return _trim(merged, opts.max_stack_frames)


def frames_from_traceback(tb: TracebackType | None, opts: FrameOptions) -> list[dict[str, Any]]:
    """Frames of a traceback, oldest first, as sentry-sdk puts them in an exception.

    Never raises; returns what it could build.
    """
    try:
        return _render(_collect_traceback(tb, opts), opts)
    except Exception:
        return []


def frames_from_stack(frame: FrameType | None, opts: FrameOptions) -> list[dict[str, Any]]:
    """Frames from `frame` up to the outermost caller, oldest first.

    Never raises; returns what it could build.
    """
    try:
        return _render(_collect_stack(frame, opts), opts)
    except Exception:
        return []


def stacktrace_for_current_thread(opts: FrameOptions, skip_internal: bool = True) -> dict[str, Any]:
    """The caller's stack as a ``{"frames": [...]}`` stacktrace (for ``attach_stacktrace``).

    Args:
        opts: Frame options of the client.
        skip_internal: Leave out tripwire's own frames (the default). ``False`` keeps
            them, which only helps when debugging tripwire itself.
    """
    try:
        frame: FrameType | None = sys._getframe(1)
    except Exception:
        frame = None
    try:
        raw = _collect_stack(frame, opts, hide_own=skip_internal)
        return {"frames": _render(raw, opts)}
    except Exception:
        return {"frames": []}
