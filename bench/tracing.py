"""Side-by-side micro-benchmark of tracing: tripwire vs sentry-sdk in one process.

Run from the repository root with the dev virtualenv::

    .venv/bin/python bench/tracing.py            # full run (about 30 s)
    .venv/bin/python bench/tracing.py --quick    # smoke run (a few seconds)
    .venv/bin/python bench/tracing.py --json out.json

See bench/README.md for what every number means.
"""

from __future__ import annotations

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

CHILD_SPANS = 10

# What a modern SDK upstream sends: a decision, its rate and its sample_rand, plus
# a third-party baggage entry that must be kept.
INCOMING = {
    "sentry-trace": "771a43a4192642f0b136d5159a501700-1234567890abcdef-1",
    "baggage": (
        "sentry-trace_id=771a43a4192642f0b136d5159a501700,sentry-public_key=abc,"
        "sentry-release=upstream%401.0,sentry-environment=production,sentry-sample_rate=0.5,"
        "sentry-sample_rand=0.250000,sentry-sampled=true,vendor=abc"
    ),
}

# What `continue_trace only` gets: a sentry-trace and a 7-entry baggage of Sentry
# entries only, as a current Sentry SDK upstream sends them.
INCOMING_SENTRY_ONLY = {
    "sentry-trace": INCOMING["sentry-trace"],
    "baggage": INCOMING["baggage"].rsplit(",", 1)[0],
}

# The same entries as many HTTP stacks hand them over: blanks after the commas (as
# when a proxy joins header lines) and a third-party entry first.
INCOMING_BLANKS = {
    "sentry-trace": INCOMING["sentry-trace"],
    "baggage": "vendor=abc, " + ", ".join(INCOMING_SENTRY_ONLY["baggage"].split(",")),
}

TRACING_ON: dict[str, Any] = {"traces_sample_rate": 1.0}
TRACING_OFF: dict[str, Any] = {}
# Tracing on, nothing sampled: every transaction is counted as lost (client report).
TRACING_ZERO: dict[str, Any] = {"traces_sample_rate": 0.0}


# --------------------------------------------------------------------------- workload
# Every op takes the SDK module and an iteration count and runs its own loop.


def op_transaction(sdk: ModuleType, n: int) -> None:
    start_transaction = sdk.start_transaction
    start_span = sdk.start_span
    for _ in range(n):
        with start_transaction(name="bench", op="task"):
            for _ in range(CHILD_SPANS):
                with start_span(op="db", name="SELECT 1"):
                    pass


def op_continue_trace(sdk: ModuleType, n: int) -> None:
    isolation_scope = sdk.isolation_scope
    continue_trace = sdk.continue_trace
    get_current_scope = sdk.get_current_scope
    for _ in range(n):
        with isolation_scope():
            continue_trace(INCOMING, op="http.server", name="GET /items")
            dict(get_current_scope().iter_trace_propagation_headers())


def op_continue_trace_only(sdk: ModuleType, n: int) -> None:
    continue_trace = sdk.continue_trace
    for _ in range(n):
        continue_trace(INCOMING_SENTRY_ONLY)


def op_continue_trace_blanks(sdk: ModuleType, n: int) -> None:
    continue_trace = sdk.continue_trace
    for _ in range(n):
        continue_trace(INCOMING_BLANKS)


OPS = [
    Op(
        f"transaction + {CHILD_SPANS} spans, sampled",
        op_transaction,
        sends="transaction",
        options=TRACING_ON,
    ),
    Op(
        f"transaction + {CHILD_SPANS} spans, tracing off",
        op_transaction,
        silent=True,
        options=TRACING_OFF,
    ),
    Op(
        f"transaction + {CHILD_SPANS} spans, traces_sample_rate=0",
        op_transaction,
        silent=True,
        options=TRACING_ZERO,
    ),
    # Default options (no traces_sample_rate), as a service that only continues traces.
    Op("continue_trace only", op_continue_trace_only, silent=True, options=TRACING_OFF),
    Op(
        "continue_trace only, blanks + third-party entry",
        op_continue_trace_blanks,
        silent=True,
        options=TRACING_OFF,
    ),
    Op("continue_trace + outgoing headers", op_continue_trace, silent=True, options=TRACING_ON),
]

REQUIRED = ("start_transaction", "start_span", "continue_trace", "isolation_scope")


def setup(label: str) -> tuple[Optional[SdkUnderTest], Optional[str], str]:
    return setup_sdk(label, OPS, TRACING_ON, required=REQUIRED)


def result_json(res: OpResult) -> dict[str, Any]:
    return {
        "iterations_per_round": res.iterations,
        "median_s": median(res.round_means),
        "round_means_s": res.round_means,
        "cpu_per_call_s": median(res.round_cpu),
        "round_cpu_per_call_s": res.round_cpu,
        "envelope_bytes": median(res.envelope_bytes),
        "peak_bytes_per_call": res.peak_bytes,
        "calls": res.calls,
        "envelopes_delivered": res.delivered,
        "error": res.error,
    }


# --------------------------------------------------------------------------- report


def render(sentry: Optional[SdkUnderTest], trip: Optional[SdkUnderTest]) -> str:
    cells = Cells()
    metrics: list[tuple[str, Getter, Formatter]] = [
        ("wall time per call", lambda r: median(r.round_means), fmt_time),
        ("CPU per call, incl. flush", lambda r: median(r.round_cpu), fmt_time),
        ("peak traced memory per call", lambda r: r.peak_bytes, fmt_bytes),
        ("serialized envelope size", lambda r: median(r.envelope_bytes), fmt_bytes),
    ]
    rows = []
    for op in OPS:
        for i, (label, fn, fmt) in enumerate(metrics):
            if label == "serialized envelope size" and op.sends is None:
                continue
            s_val, t_val = cells.value(sentry, op, fn), cells.value(trip, op, fn)
            rows.append(
                [
                    op.name if i == 0 else "",
                    label,
                    cells.cell(sentry, op, fn, fmt),
                    cells.spread(sentry, op) if i == 0 else "",
                    cells.cell(trip, op, fn, fmt),
                    cells.spread(trip, op) if i == 0 else "",
                    fmt_ratio(ratio(t_val, s_val)),
                ]
            )
    out = [
        "Per call (median of per-round means; ± = half the range of the round means)",
        render_table(
            ["operation", "metric", SENTRY, "±", TRIPWIRE, "±", "tripwire/sentry"],
            rows,
            {2, 3, 4, 5, 6},
        ),
    ]
    if cells.footnotes:
        out.append("")
        out += cells.footnote_lines()
    out += ["", "ratio < 1 means tripwire is cheaper than sentry-sdk."]
    return "\n".join(out)


# --------------------------------------------------------------------------- main


def main(argv: Optional[list[str]] = None) -> int:
    return run(
        argv,
        description=__doc__.splitlines()[0] if __doc__ else None,
        quick_help="fast smoke run",
        benchmark="tracing",
        title="tracing",
        ops=OPS,
        setup=setup,
        ready="default options, in-memory transport",
        show_unselected=False,
        intro=[],
        retained=False,
        memory_ops=lambda op: True,
        memory_fatal=True,
        workload={
            "child_spans": CHILD_SPANS,
            "incoming_headers": INCOMING,
            "continue_trace_only_headers": INCOMING_SENTRY_ONLY,
            "continue_trace_blanks_headers": INCOMING_BLANKS,
        },
        render=render,
        result_json=result_json,
    )


if __name__ == "__main__":
    sys.exit(main())
