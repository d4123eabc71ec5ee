"""Side-by-side micro-benchmark of tracing: tripwire vs sentry-sdk in one process.

Run from the repository root with the dev virtualenv::

    .venv/bin/python bench/tracing.py            # full run (about 30 s)
    .venv/bin/python bench/tracing.py --quick    # smoke run (a few seconds)
    .venv/bin/python bench/tracing.py --json out.json

See bench/README.md for what every number means.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
import tracemalloc
from types import ModuleType
from typing import Any, Callable, Optional

from _harness import (
    DSN,
    SENTRY,
    TRIPWIRE,
    describe_error,
    ensure_repo_on_path,
    fmt_bytes,
    fmt_ratio,
    fmt_time,
    load_sdk,
    machine_facts,
    machine_line,
    make_memory_transport,
    median,
    ratio,
    render_table,
    spread_pct,
    write_json,
)

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

TRACING_ON: dict[str, Any] = {"traces_sample_rate": 1.0}
TRACING_OFF: dict[str, Any] = {}


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


class Op:
    def __init__(
        self,
        name: str,
        fn: Callable[[ModuleType, int], None],
        options: dict[str, Any],
        sends: bool = False,
    ) -> None:
        self.name = name
        self.fn = fn
        self.options = options  # init() options the op runs under
        self.sends = sends  # each call hands one transaction to the transport


OPS = [
    Op(f"transaction + {CHILD_SPANS} spans, sampled", op_transaction, TRACING_ON, sends=True),
    Op(f"transaction + {CHILD_SPANS} spans, tracing off", op_transaction, TRACING_OFF),
    Op("continue_trace + outgoing headers", op_continue_trace, TRACING_ON),
]


class Config:
    def __init__(self, quick: bool, rounds: Optional[int]) -> None:
        self.quick = quick
        self.rounds = rounds or (3 if quick else 5)
        self.block_seconds = 0.06 if quick else 0.4
        self.calibrate_seconds = 0.005 if quick else 0.02
        self.peak_samples = 10 if quick else 50

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": "quick" if self.quick else "full",
            "rounds": self.rounds,
            "block_seconds": self.block_seconds,
            "child_spans": CHILD_SPANS,
            "incoming_headers": INCOMING,
            "peak_samples": self.peak_samples,
            "dsn": DSN,
        }


class OpResult:
    def __init__(self) -> None:
        self.iterations = 0
        self.round_means: list[float] = []
        self.round_cpu: list[float] = []
        self.envelope_bytes: list[float] = []
        self.peak_bytes: Optional[float] = None
        self.calls = 0
        self.delivered = 0
        self.error: Optional[str] = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "iterations_per_round": self.iterations,
            "median_s": median(self.round_means),
            "round_means_s": self.round_means,
            "cpu_per_call_s": median(self.round_cpu),
            "round_cpu_per_call_s": self.round_cpu,
            "envelope_bytes": median(self.envelope_bytes),
            "peak_bytes_per_call": self.peak_bytes,
            "calls": self.calls,
            "envelopes_delivered": self.delivered,
            "error": self.error,
        }


class SdkUnderTest:
    def __init__(self, label: str, module: ModuleType, transport: Any, version: str) -> None:
        self.label = label
        self.module = module
        self.transport = transport
        self.version = version
        self.current_options: Optional[dict[str, Any]] = None
        self.results: dict[str, OpResult] = {op.name: OpResult() for op in OPS}

    def configure(self, options: dict[str, Any]) -> None:
        """(Re-)initialise the SDK with `options` unless it already runs with them (untimed)."""
        if self.current_options is not options:
            self.module.init(dsn=DSN, transport=self.transport, **options)
            self.current_options = options


def setup_sdk(label: str) -> tuple[Optional[SdkUnderTest], Optional[str], str]:
    loaded = load_sdk(label)
    if loaded.error is not None or loaded.module is None or loaded.transport_base is None:
        return None, loaded.error or "unavailable", loaded.version
    missing = [
        name
        for name in ("start_transaction", "start_span", "continue_trace", "isolation_scope")
        if not callable(getattr(loaded.module, name, None))
    ]
    if missing:
        return None, f"lacks {', '.join(missing)}", loaded.version
    try:
        transport = make_memory_transport(loaded.transport_base)
        sut = SdkUnderTest(label, loaded.module, transport, loaded.version)
        sut.configure(TRACING_ON)
    except Exception as exc:
        return None, f"init failed: {describe_error(exc)}", loaded.version
    return sut, None, loaded.version


# --------------------------------------------------------------------------- measuring


def run_batch(sut: SdkUnderTest, op: Op, n: int) -> tuple[float, float, int, int]:
    """Run ``n`` calls; return (wall s, cpu s incl. flush, envelopes, envelope bytes)."""
    sut.configure(op.options)
    tr = sut.transport
    envelopes0, bytes0 = tr.envelopes, tr.total_bytes
    gc.collect()
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    op.fn(sut.module, n)
    wall = time.perf_counter() - t0
    if op.sends:
        sut.module.flush()
    cpu = time.process_time() - cpu0
    return wall, cpu, tr.envelopes - envelopes0, tr.total_bytes - bytes0


def calibrate(sut: SdkUnderTest, op: Op, cfg: Config) -> int:
    run_batch(sut, op, 1)
    n = 2
    while True:
        wall, _, _, _ = run_batch(sut, op, n)
        if wall >= cfg.calibrate_seconds or n >= 1 << 22:
            break
        grow = int(n * cfg.calibrate_seconds / wall * 1.2) if wall > 0 else n * 10
        n = max(n * 2, min(n * 10, grow))
    per_call = wall / n
    target = int(cfg.block_seconds / per_call) if per_call > 0 else 1 << 20
    return max(5 if op.sends else 100, min(target, 1 << 24))


def measure_round(sut: SdkUnderTest) -> None:
    for op in OPS:
        res = sut.results[op.name]
        if res.error is not None or res.iterations == 0:
            continue
        try:
            wall, cpu, envelopes, nbytes = run_batch(sut, op, res.iterations)
        except Exception as exc:
            res.error = describe_error(exc)
            continue
        res.round_means.append(wall / res.iterations)
        res.round_cpu.append(cpu / res.iterations)
        res.calls += res.iterations
        res.delivered += envelopes
        if op.sends:
            if envelopes == 0:
                res.error = "no transaction reached the transport"
            else:
                res.envelope_bytes.append(nbytes / envelopes)
        elif envelopes:
            res.error = f"{envelopes} envelopes sent with nothing to send"


def measure_memory(sut: SdkUnderTest, op: Op, cfg: Config) -> None:
    """Median peak of traced memory for one call (see README)."""
    res = sut.results[op.name]
    if res.error is not None or res.iterations == 0:
        return
    sut.configure(op.options)
    mod = sut.module
    gc.collect()
    tracemalloc.start(1)
    try:
        op.fn(mod, 3)
        mod.flush()
        peaks = []
        for _ in range(cfg.peak_samples):
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            op.fn(mod, 1)
            mod.flush()
            peaks.append(float(tracemalloc.get_traced_memory()[1] - base))
        res.peak_bytes = median(peaks)
    except Exception as exc:
        res.error = f"memory measurement failed: {describe_error(exc)}"
    finally:
        tracemalloc.stop()


# --------------------------------------------------------------------------- report


def render(sentry: Optional[SdkUnderTest], trip: Optional[SdkUnderTest]) -> str:
    footnotes: dict[str, int] = {}

    def cell(sut: Optional[SdkUnderTest], op: Op, value: Optional[float], fmt: Any) -> str:
        if sut is None:
            return "n/a"
        error = sut.results[op.name].error
        if error is not None:
            number = footnotes.setdefault(f"{sut.label} {op.name}: {error}", len(footnotes) + 1)
            return f"error [{number}]"
        return str(fmt(value))

    def get(
        sut: Optional[SdkUnderTest], op: Op, fn: Callable[[OpResult], Optional[float]]
    ) -> Optional[float]:
        if sut is None or sut.results[op.name].error is not None:
            return None
        return fn(sut.results[op.name])

    def spread(sut: Optional[SdkUnderTest], op: Op) -> str:
        if sut is None or sut.results[op.name].error is not None:
            return ""
        pct = spread_pct(sut.results[op.name].round_means)
        return "" if pct is None else f"±{pct:.0f}%"

    metrics: list[tuple[str, Callable[[OpResult], Optional[float]], Any]] = [
        ("wall time per call", lambda r: median(r.round_means), fmt_time),
        ("CPU per call, incl. flush", lambda r: median(r.round_cpu), fmt_time),
        ("peak traced memory per call", lambda r: r.peak_bytes, fmt_bytes),
        ("serialized envelope size", lambda r: median(r.envelope_bytes), fmt_bytes),
    ]
    rows = []
    for op in OPS:
        for i, (label, fn, fmt) in enumerate(metrics):
            if label == "serialized envelope size" and not op.sends:
                continue
            s_val, t_val = get(sentry, op, fn), get(trip, op, fn)
            rows.append(
                [
                    op.name if i == 0 else "",
                    label,
                    cell(sentry, op, s_val, fmt),
                    spread(sentry, op) if i == 0 else "",
                    cell(trip, op, t_val, fmt),
                    spread(trip, op) if i == 0 else "",
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
    if footnotes:
        out.append("")
        out += [f"[{number}] {text}" for text, number in footnotes.items()]
    out += ["", "ratio < 1 means tripwire is cheaper than sentry-sdk."]
    return "\n".join(out)


# --------------------------------------------------------------------------- main


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fast smoke run")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--rounds", type=int, help="override the number of rounds")
    parser.add_argument(
        "--sdk", choices=("both", "sentry", "tripwire"), default="both", help="what to run"
    )
    args = parser.parse_args(argv)
    cfg = Config(args.quick, args.rounds)
    ensure_repo_on_path()
    started = time.perf_counter()

    facts = machine_facts()
    print("tripwire vs sentry-sdk: tracing")
    print(machine_line(facts))
    labels = {"both": [SENTRY, TRIPWIRE], "sentry": [SENTRY], "tripwire": [TRIPWIRE]}[args.sdk]
    suts: dict[str, Optional[SdkUnderTest]] = {SENTRY: None, TRIPWIRE: None}
    sdk_info: dict[str, dict[str, Any]] = {}
    for label in (SENTRY, TRIPWIRE):
        if label not in labels:
            sdk_info[label] = {"available": False, "reason": "not selected"}
            continue
        sut, reason, version = setup_sdk(label)
        suts[label] = sut
        sdk_info[label] = {"available": sut is not None, "version": version, "reason": reason}
        if sut is None:
            print(f"{label}: NOT BENCHMARKED ({reason})")
        else:
            print(f"{label} {version}: default options, in-memory transport")
    active = [s for s in (suts[SENTRY], suts[TRIPWIRE]) if s is not None]
    if not active:
        print("nothing to benchmark", file=sys.stderr)
        return 1
    print(
        f"mode: {'quick' if cfg.quick else 'full'}, {cfg.rounds} rounds, SDK order alternating "
        f"per round, ~{cfg.block_seconds:g} s per op per block"
    )
    print()

    for sut in active:
        for op in OPS:
            res = sut.results[op.name]
            try:
                res.iterations = calibrate(sut, op, cfg)
            except Exception as exc:
                res.error = describe_error(exc)
    for rnd in range(cfg.rounds):
        for sut in active if rnd % 2 == 0 else list(reversed(active)):
            measure_round(sut)
    for op in OPS:
        for sut in active:
            measure_memory(sut, op, cfg)

    print(render(suts[SENTRY], suts[TRIPWIRE]))
    elapsed = time.perf_counter() - started
    print(f"\ntotal benchmark time: {elapsed:.1f} s")

    if args.json:
        ops_json: dict[str, Any] = {}
        for op in OPS:
            entry: dict[str, Any] = {
                label: (sut.results[op.name].as_dict() if sut else None)
                for label, sut in suts.items()
            }
            s, t = suts[SENTRY], suts[TRIPWIRE]
            entry["ratio_wall"] = (
                ratio(
                    median(t.results[op.name].round_means), median(s.results[op.name].round_means)
                )
                if s and t
                else None
            )
            ops_json[op.name] = entry
        write_json(
            args.json,
            {
                "benchmark": "tracing",
                "machine": facts,
                "config": cfg.as_dict(),
                "sdks": sdk_info,
                "ops": ops_json,
                "elapsed_s": elapsed,
            },
        )
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
