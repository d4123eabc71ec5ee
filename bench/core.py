"""Side-by-side micro-benchmark of the core API: tripwire vs sentry-sdk in one process.

Run from the repository root with the dev virtualenv::

    .venv/bin/python bench/core.py            # full run (well under 2 minutes)
    .venv/bin/python bench/core.py --quick    # smoke run (a few seconds)
    .venv/bin/python bench/core.py --json out.json

See bench/README.md for what every number means.
"""

from __future__ import annotations

import logging
import sys
from types import ModuleType
from typing import Any, Optional

from _harness import (
    SENTRY,
    TRIPWIRE,
    fmt_bytes,
    fmt_ratio,
    fmt_time,
    median,
    ratio,
    render_table,
)
from _ops import Cells, Formatter, Getter, Op, OpResult, SdkUnderTest, run, setup_sdk

BREADCRUMBS = 100  # sentry-sdk's default max_breadcrumbs; the buffer is kept full
EXC_DEPTH = 10


# --------------------------------------------------------------------------- workload
# Every op takes the SDK module and an iteration count and runs its own loop, so the
# per-call overhead of the harness is one `for` step (identical for both SDKs).


def op_set_tag(sdk: ModuleType, n: int) -> None:
    set_tag = sdk.set_tag
    for _ in range(n):
        set_tag("bench.tag", "value")


def op_set_user(sdk: ModuleType, n: int) -> None:
    set_user = sdk.set_user
    for _ in range(n):
        set_user({"id": "42", "email": "jane@example.com"})


def op_add_breadcrumb(sdk: ModuleType, n: int) -> None:
    add_breadcrumb = sdk.add_breadcrumb
    for _ in range(n):
        add_breadcrumb(category="bench", message="step", level="info")


def op_new_scope(sdk: ModuleType, n: int) -> None:
    new_scope = sdk.new_scope
    for _ in range(n):
        with new_scope():
            pass


def op_capture_message(sdk: ModuleType, n: int) -> None:
    capture_message = sdk.capture_message
    for _ in range(n):
        capture_message("hello")


def _raise_at(depth: int) -> None:
    if depth <= 1:
        raise ValueError("benchmark failure")
    _raise_at(depth - 1)


def op_capture_exception(sdk: ModuleType, n: int) -> None:
    capture_exception = sdk.capture_exception
    for _ in range(n):
        try:
            _raise_at(EXC_DEPTH)
        except ValueError:
            capture_exception()


def _bench_logger(sdk: ModuleType) -> logging.Logger:
    """A logger at INFO with a NullHandler and propagate=False, one per SDK."""
    own = "tripwire" if sdk.__name__ == "tripwire" else "sentry"
    log = logging.getLogger(f"bench.logging.{own}")
    if not log.handlers:
        log.addHandler(logging.NullHandler())
        log.propagate = False
        log.setLevel(logging.INFO)
    return log


# `logging.Logger.callHandlers` as each SDK's logging integration left it, with only
# that SDK's patch over the stdlib method (see `setup`).
_STDLIB_CALL_HANDLERS = logging.Logger.callHandlers
_OWN_CALL_HANDLERS: dict[str, Any] = {}


def op_logger_info(sdk: ModuleType, n: int) -> None:
    # A user runs one SDK: its patch alone is installed while the op runs, so neither
    # column pays for the other SDK's patch.
    info = _bench_logger(sdk).info
    saved = logging.Logger.callHandlers
    logging.Logger.callHandlers = _OWN_CALL_HANDLERS.get(sdk.__name__, saved)  # type: ignore[method-assign]
    try:
        for _ in range(n):
            info("request %s done", "abc")
    finally:
        logging.Logger.callHandlers = saved  # type: ignore[method-assign]


OPS = [
    Op("set_tag", op_set_tag),
    Op("set_user", op_set_user),
    Op("add_breadcrumb", op_add_breadcrumb),
    Op("logger.info (stdlib, NullHandler)", op_logger_info),
    Op("new_scope enter/exit", op_new_scope),
    Op("capture_message", op_capture_message, sends="event"),
    Op(f"capture_exception ({EXC_DEPTH} deep)", op_capture_exception, sends="event"),
]

# Default options: init(dsn=..., transport=...) and nothing else.
DEFAULT_OPTIONS: dict[str, Any] = {}


# The scope state every op runs with: a tag, a user, a full breadcrumb buffer.
PRIMES = ((op_set_tag, 1), (op_set_user, 1), (op_add_breadcrumb, BREADCRUMBS))


def setup(label: str) -> tuple[Optional[SdkUnderTest], Optional[str], str]:
    # Each SDK patches the stdlib method itself (not the other SDK's patch), and the
    # patch it made is kept for `op_logger_info`.
    before = logging.Logger.callHandlers
    logging.Logger.callHandlers = _STDLIB_CALL_HANDLERS  # type: ignore[method-assign]
    try:
        result = setup_sdk(label, OPS, DEFAULT_OPTIONS, primes=PRIMES)
    finally:
        patched = logging.Logger.callHandlers
        logging.Logger.callHandlers = before if patched is _STDLIB_CALL_HANDLERS else patched  # type: ignore[method-assign]
    sut = result[0]
    if sut is not None and patched is not _STDLIB_CALL_HANDLERS:
        _OWN_CALL_HANDLERS[sut.module.__name__] = patched
    return result


def result_json(res: OpResult) -> dict[str, Any]:
    return {
        "iterations_per_round": res.iterations,
        "median_s": median(res.round_means),
        "round_means_s": res.round_means,
        "cpu_per_event_s": median(res.round_cpu),
        "round_cpu_per_event_s": res.round_cpu,
        "envelope_bytes": median(res.envelope_bytes),
        "peak_bytes_per_capture": res.peak_bytes,
        "retained_bytes_per_event": res.retained_bytes,
        "events_captured": res.calls,
        "events_delivered": res.delivered,
        "error": res.error,
        "notes": res.notes,
    }


# --------------------------------------------------------------------------- report


class Report(Cells):
    """Builds the text tables; errors become numbered footnotes (one per distinct error)."""

    def __init__(self, sentry: Optional[SdkUnderTest], trip: Optional[SdkUnderTest]) -> None:
        super().__init__()
        self.sentry = sentry
        self.trip = trip

    @staticmethod
    def dropped(sut: Optional[SdkUnderTest], op: Op) -> bool:
        if sut is None or sut.results[op.name].error is not None:
            return False
        res = sut.results[op.name]
        return res.delivered < res.calls

    def ratio_cell(self, op: Op, getter: Getter, min_sentry: float = 0.0) -> str:
        s_val = self.value(self.sentry, op, getter)
        t_val = self.value(self.trip, op, getter)
        if s_val is not None and s_val < min_sentry:
            return "-"  # e.g. a ratio of near-zero retained sizes is noise
        value = ratio(t_val, s_val)
        text = fmt_ratio(value)
        if value is not None and (self.dropped(self.sentry, op) or self.dropped(self.trip, op)):
            text += " *"  # some events never reached the transport; see the notes
        return text

    def render(self) -> str:
        def wall(r: OpResult) -> Optional[float]:
            return median(r.round_means)

        def cpu(r: OpResult) -> Optional[float]:
            return median(r.round_cpu)

        sentry, trip = self.sentry, self.trip
        rows = [
            [
                op.name,
                self.cell(sentry, op, wall, fmt_time),
                self.spread(sentry, op),
                self.cell(trip, op, wall, fmt_time),
                self.spread(trip, op),
                self.ratio_cell(op, wall),
                self.ratio_cell(op, cpu),
            ]
            for op in OPS
        ]
        out = [
            "Wall time per call on the calling thread (median of per-round means; "
            "± = half the range of the round means); the last column is the ratio of "
            "process CPU per call (steadier on a busy machine)",
            render_table(
                ["operation", SENTRY, "±", TRIPWIRE, "±", "tripwire/sentry", "CPU ratio"],
                rows,
                {1, 2, 3, 4, 5, 6},
            ),
            "",
        ]
        metrics: list[tuple[str, Getter, Formatter, float]] = [
            ("CPU per event, incl. flush", lambda r: median(r.round_cpu), fmt_time, 0.0),
            ("peak traced memory per capture", lambda r: r.peak_bytes, fmt_bytes, 0.0),
            ("retained memory per event", lambda r: r.retained_bytes, fmt_bytes, 64.0),
            ("serialized envelope size", lambda r: median(r.envelope_bytes), fmt_bytes, 0.0),
        ]
        rows = []
        for op in OPS:
            if op.sends is None:
                continue
            for i, (label, getter, fmt, min_sentry) in enumerate(metrics):
                rows.append(
                    [
                        op.name if i == 0 else "",
                        label,
                        self.cell(sentry, op, getter, fmt),
                        self.cell(trip, op, getter, fmt),
                        self.ratio_cell(op, getter, min_sentry),
                    ]
                )
        out += [
            f"Capture cost (scope carries {BREADCRUMBS} breadcrumbs, a tag and a user; "
            "transport serializes every envelope)",
            render_table(["operation", "metric", SENTRY, TRIPWIRE, "ratio"], rows, {2, 3, 4}),
        ]
        notes: list[str] = []
        for sut in (sentry, trip):
            if sut is None:
                continue
            for op in OPS:
                res = sut.results[op.name]
                if res.error is not None:
                    continue  # already a footnote
                if res.delivered < res.calls:
                    # Dropped events would make an SDK look cheaper than it is.
                    notes.append(
                        f"{sut.label} {op.name}: only {res.delivered} of "
                        f"{res.calls} captured events reached the transport "
                        "(ratios marked *)"
                    )
                notes.extend(f"{sut.label} {op.name}: {n}" for n in res.notes)
        if self.footnotes or notes:
            out.append("")
            out += self.footnote_lines()
            out += [f"note: {n}" for n in notes]
        out += ["", "ratio < 1 means tripwire is cheaper than sentry-sdk."]
        return "\n".join(out)


# --------------------------------------------------------------------------- main


def main(argv: Optional[list[str]] = None) -> int:
    return run(
        argv,
        description=__doc__.splitlines()[0] if __doc__ else None,
        quick_help="fast smoke run (~10 s)",
        benchmark="core",
        title="core operations",
        ops=OPS,
        setup=setup,
        ready="initialised with an in-memory transport",
        show_unselected=True,
        intro=[
            f"scope state for every op: {BREADCRUMBS} breadcrumbs (default max_breadcrumbs, "
            "filled before timing and kept full), a tag and a user"
        ],
        retained=True,
        memory_ops=lambda op: op.sends is not None,
        memory_fatal=False,
        workload={"breadcrumbs_in_scope": BREADCRUMBS, "exception_depth": EXC_DEPTH},
        render=lambda sentry, trip: Report(sentry, trip).render(),
        result_json=result_json,
    )


if __name__ == "__main__":
    sys.exit(main())
