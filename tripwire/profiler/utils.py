"""Stack helpers of sentry_sdk.profiler.utils (2.75), and the platform metadata.

The sampler itself (`_sampler`) keys stacks by code object and builds no frame
dicts while sampling; these functions keep sentry_sdk's per-frame API for code that
calls it directly.
"""

from __future__ import annotations

import os
import sys
from collections import deque
from types import FrameType
from typing import Any

from tripwire.event.frames import _short_filename
from tripwire.profiler._sampler import DEFAULT_SAMPLING_FREQUENCY, MAX_STACK_DEPTH

FrameId = tuple[str, int, str]


def get_frame_name(frame: FrameType) -> str:
    """The frame's function name, qualified with its class where Python knows it."""
    code = frame.f_code
    return getattr(code, "co_qualname", None) or code.co_name


def frame_id(raw_frame: FrameType) -> FrameId:
    """(file, line, function): what identifies a frame in sentry_sdk's profiles."""
    return (raw_frame.f_code.co_filename, raw_frame.f_lineno, get_frame_name(raw_frame))


def extract_frame(fid: FrameId, raw_frame: FrameType, cwd: str) -> dict[str, Any]:
    """A profile frame dict: abs_path, module, filename, function, lineno."""
    abs_path = raw_frame.f_code.co_filename
    try:
        module = raw_frame.f_globals["__name__"]
    except Exception:
        module = None
    try:
        filename = _short_filename(module, abs_path) or None
    except Exception:
        filename = abs_path or None
    return {
        "abs_path": os.path.join(cwd, abs_path),
        "module": module,
        "filename": filename,
        "function": fid[2],
        "lineno": raw_frame.f_lineno,
    }


def extract_stack(
    raw_frame: FrameType | None,
    cache: Any,
    cwd: str,
    max_stack_depth: int = MAX_STACK_DEPTH,
) -> tuple[tuple[int, int], tuple[FrameId, ...], list[dict[str, Any]]]:
    """(stack id, frame ids, frame dicts) for the stack from `raw_frame` outwards.

    `cache` is anything with `get(key)` / `set(key, value)` (sentry_sdk's LRUCache)
    or None. Past `max_stack_depth` the outermost frames are kept.
    """
    raw_frames: deque[FrameType] = deque(maxlen=max_stack_depth)
    while raw_frame is not None:
        raw_frames.append(raw_frame)
        raw_frame = raw_frame.f_back
    frame_ids = tuple(frame_id(f) for f in raw_frames)
    frames = []
    for i, fid in enumerate(frame_ids):
        frame = cache.get(fid) if cache is not None else None
        if frame is None:
            frame = extract_frame(fid, raw_frames[i], cwd)
            if cache is not None:
                cache.set(fid, frame)
        frames.append(frame)
    return (len(raw_frames), hash(frame_ids)), frame_ids, frames


_platform: dict[str, Any] | None = None


def platform_info() -> dict[str, Any]:
    """device/os/runtime of a profile, without importing `platform` (computed once)."""
    global _platform
    if _platform is None:
        try:
            uname = os.uname()
            machine, system, release = uname.machine, uname.sysname, uname.release
        except AttributeError:  # Windows
            machine = os.environ.get("PROCESSOR_ARCHITECTURE", "")
            system, release = "Windows", ""
        impl = sys.implementation.name
        names = {"cpython": "CPython", "pypy": "PyPy", "ironpython": "IronPython"}
        _platform = {
            "device": {"architecture": machine},
            "os": {"name": system, "version": release},
            "runtime": {
                "name": names.get(impl, impl),
                "version": "%d.%d.%d" % sys.version_info[:3],
            },
        }
    return {key: dict(value) for key, value in _platform.items()}


__all__ = [
    "DEFAULT_SAMPLING_FREQUENCY",
    "MAX_STACK_DEPTH",
    "extract_frame",
    "extract_stack",
    "frame_id",
    "get_frame_name",
]
