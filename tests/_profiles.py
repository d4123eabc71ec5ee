"""Shared helpers of the profiler tests: real workloads and a profile-shape checker."""

from __future__ import annotations

import re
import time
from typing import Any, Callable

HEX32 = re.compile(r"^[0-9a-f]{32}$")


def busy_work(n: int) -> int:
    """CPU-bound Python: the function the profiles must name."""
    total = 0
    for i in range(n):
        total += i * i
    return total


def run_until(
    condition: Callable[[], bool], work: Callable[[], Any], deadline: float = 20.0
) -> None:
    """Call `work` until `condition()` holds (a deadline bounds a failure, not the test)."""
    end = time.monotonic() + deadline
    while not condition():
        if time.monotonic() > end:
            raise AssertionError("condition not reached before the deadline")
        work()


def stacks_of(profile: dict[str, Any], thread_id: str) -> list[list[str]]:
    """The function names of each of `thread_id`'s samples, innermost first."""
    frames, stacks = profile["frames"], profile["stacks"]
    return [
        [frames[i]["function"] for i in stacks[s["stack_id"]]]
        for s in profile["samples"]
        if s["thread_id"] == thread_id
    ]


def share(stacks: list[list[str]], function: str) -> float:
    """The fraction of samples in which `function` is on the stack."""
    return sum(1 for names in stacks if any(n.endswith(function) for n in names)) / max(
        len(stacks), 1
    )


def check_sampled_profile(profile: dict[str, Any], stamp_key: str) -> None:
    """What Relay's profiling processor rejects or strips: indices out of range, bad ids,
    threads without metadata are allowed; fewer than two samples are not."""
    frames, stacks, samples = profile["frames"], profile["stacks"], profile["samples"]
    assert len(samples) >= 2
    for frame in frames:
        assert isinstance(frame["function"], str) and frame["function"]
        assert isinstance(frame["lineno"], int)
        assert isinstance(frame["abs_path"], str)
    for stack in stacks:
        assert all(0 <= i < len(frames) for i in stack)
    last: dict[str, Any] = {}
    for sample in samples:
        assert 0 <= sample["stack_id"] < len(stacks)
        assert isinstance(sample["thread_id"], str) and sample["thread_id"].isdigit()
        stamp = sample[stamp_key]
        value = int(stamp) if isinstance(stamp, str) else stamp
        assert value >= last.get(sample["thread_id"], value)  # in time order per thread
        last[sample["thread_id"]] = value
    for tid, meta in profile["thread_metadata"].items():
        assert tid.isdigit() and isinstance(meta["name"], str)
