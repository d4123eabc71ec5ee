"""Side-by-side micro-benchmark of the core API: tripwire vs sentry-sdk in one process.

Run from the repository root with the dev virtualenv::

    .venv/bin/python bench/core.py            # full run (well under 2 minutes)
    .venv/bin/python bench/core.py --quick    # smoke run (a few seconds)
    .venv/bin/python bench/core.py --json out.json

See bench/README.md for what every number means.
"""

from __future__ import annotations

import argparse
import contextlib
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


class Op:
    def __init__(
        self, name: str, fn: Callable[[ModuleType, int], None], capture: bool = False
    ) -> None:
        self.name = name
        self.fn = fn
        self.capture = capture


OPS = [
    Op("set_tag", op_set_tag),
    Op("set_user", op_set_user),
    Op("add_breadcrumb", op_add_breadcrumb),
    Op("new_scope enter/exit", op_new_scope),
    Op("capture_message", op_capture_message, capture=True),
    Op(f"capture_exception ({EXC_DEPTH} deep)", op_capture_exception, capture=True),
]


class Config:
    def __init__(self, quick: bool, rounds: Optional[int]) -> None:
        self.quick = quick
        self.rounds = rounds or (3 if quick else 5)
        self.block_seconds = 0.06 if quick else 0.4  # target wall time of one op batch
        self.calibrate_seconds = 0.005 if quick else 0.02
        self.peak_samples = 10 if quick else 50
        self.retained_events = 30 if quick else 200

    def as_dict(self) -> dict[str, Any]:
        return {
            "mode": "quick" if self.quick else "full",
            "rounds": self.rounds,
            "block_seconds": self.block_seconds,
            "breadcrumbs_in_scope": BREADCRUMBS,
            "exception_depth": EXC_DEPTH,
            "peak_samples": self.peak_samples,
            "retained_events": self.retained_events,
            "dsn": DSN,
        }


class OpResult:
    """Everything measured for one (SDK, op) pair."""

    def __init__(self) -> None:
        self.iterations = 0
        self.round_means: list[float] = []  # wall seconds per call, one per round
        self.round_cpu: list[float] = []  # process CPU seconds per event incl. flush
        self.envelope_bytes: list[float] = []
        self.peak_bytes: Optional[float] = None
        self.retained_bytes: Optional[float] = None
        self.error: Optional[str] = None
        self.notes: list[str] = []
        self.events_captured = 0  # capture calls made during the timed rounds
        self.events_delivered = 0  # envelopes that reached the transport meanwhile

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)

    def as_dict(self) -> dict[str, Any]:
        return {
            "iterations_per_round": self.iterations,
            "median_s": median(self.round_means),
            "round_means_s": self.round_means,
            "cpu_per_event_s": median(self.round_cpu),
            "round_cpu_per_event_s": self.round_cpu,
            "envelope_bytes": median(self.envelope_bytes),
            "peak_bytes_per_capture": self.peak_bytes,
            "retained_bytes_per_event": self.retained_bytes,
            "events_captured": self.events_captured,
            "events_delivered": self.events_delivered,
            "error": self.error,
            "notes": self.notes,
        }


class SdkUnderTest:
    def __init__(self, label: str, module: ModuleType, transport: Any, version: str) -> None:
        self.label = label
        self.module = module
        self.transport = transport
        self.version = version
        self.results: dict[str, OpResult] = {op.name: OpResult() for op in OPS}


# --------------------------------------------------------------------------- setup


def setup_sdk(label: str) -> tuple[Optional[SdkUnderTest], Optional[str], str]:
    """Import, init with the in-memory transport, and prime the scope of one SDK."""
    loaded = load_sdk(label)
    if loaded.error is not None or loaded.module is None or loaded.transport_base is None:
        return None, loaded.error or "unavailable", loaded.version
    module = loaded.module
    try:
        transport = make_memory_transport(loaded.transport_base)
    except Exception as exc:
        return None, f"creating the transport failed: {describe_error(exc)}", loaded.version
    try:
        module.init(dsn=DSN, transport=transport)
    except Exception as exc:
        return None, f"init failed: {describe_error(exc)}", loaded.version
    get_client = getattr(module, "get_client", None)
    if callable(get_client):
        try:
            if not get_client().is_active():
                return None, "client not active after init", loaded.version
        except Exception:
            pass  # not part of what we benchmark; the ops will show real problems
    # Give the scope the state the ops run with: a tag, a user, a full breadcrumb buffer.
    primes: list[tuple[Callable[[ModuleType, int], None], int]] = [
        (op_set_tag, 1),
        (op_set_user, 1),
        (op_add_breadcrumb, BREADCRUMBS),
    ]
    for prime, count in primes:
        # A failure here is reported by the matching op in its own row.
        with contextlib.suppress(Exception):
            prime(module, count)
    return SdkUnderTest(label, module, transport, loaded.version), None, loaded.version


# --------------------------------------------------------------------------- measuring


def run_batch(sut: SdkUnderTest, op: Op, n: int) -> tuple[float, float, int, int]:
    """Run ``n`` calls; return (wall s, cpu s incl. flush, envelopes, envelope bytes)."""
    tr = sut.transport
    envelopes0, bytes0, errors0 = tr.envelopes, tr.total_bytes, tr.errors
    gc.collect()  # don't let the other SDK's garbage be collected on our clock
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    op.fn(sut.module, n)
    wall = time.perf_counter() - t0
    if op.capture:
        sut.module.flush()
    cpu = time.process_time() - cpu0
    if tr.errors != errors0:
        sut.results[op.name].note(f"envelope.serialize() raised: {tr.last_error}")
    return wall, cpu, tr.envelopes - envelopes0, tr.total_bytes - bytes0


def calibrate(sut: SdkUnderTest, op: Op, cfg: Config) -> int:
    """Warm the op up and pick the iteration count that fills ``cfg.block_seconds``."""
    run_batch(sut, op, 1)  # the first call may pay one-off costs (lazy imports, caches)
    n = 2
    while True:
        wall, _, _, _ = run_batch(sut, op, n)
        if wall >= cfg.calibrate_seconds or n >= 1 << 22:
            break
        grow = int(n * cfg.calibrate_seconds / wall * 1.2) if wall > 0 else n * 10
        n = max(n * 2, min(n * 10, grow))
    per_call = wall / n
    target = int(cfg.block_seconds / per_call) if per_call > 0 else 1 << 20
    return max(5 if op.capture else 100, min(target, 1 << 24))


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
        if op.capture:
            res.round_cpu.append(cpu / res.iterations)
            res.events_captured += res.iterations
            res.events_delivered += envelopes
            if envelopes == 0:
                # Timing an SDK that delivers nothing would flatter it: fail the row.
                why = f" ({res.notes[-1]})" if res.notes else ""
                res.error = f"no event reached the transport{why}"
            if envelopes:
                res.envelope_bytes.append(nbytes / envelopes)


def measure_memory(sut: SdkUnderTest, op: Op, cfg: Config) -> None:
    """tracemalloc figures for one capture op (see README for the definitions)."""
    res = sut.results[op.name]
    if res.error is not None or res.iterations == 0:
        return
    mod = sut.module
    gc.collect()
    tracemalloc.start(1)
    try:
        op.fn(mod, 3)  # warm caches that are only filled under tracing
        mod.flush()
        peaks = []
        for _ in range(cfg.peak_samples):
            tracemalloc.reset_peak()
            base = tracemalloc.get_traced_memory()[0]
            op.fn(mod, 1)
            mod.flush()
            peaks.append(tracemalloc.get_traced_memory()[1] - base)
        res.peak_bytes = median([float(p) for p in peaks])
        gc.collect()
        base = tracemalloc.get_traced_memory()[0]
        op.fn(mod, cfg.retained_events)
        mod.flush()
        gc.collect()
        res.retained_bytes = (tracemalloc.get_traced_memory()[0] - base) / cfg.retained_events
    except Exception as exc:
        res.note(f"memory measurement failed: {describe_error(exc)}")
    finally:
        tracemalloc.stop()


# --------------------------------------------------------------------------- report


Getter = Callable[[OpResult], Optional[float]]
Formatter = Callable[[Optional[float]], str]


class Report:
    """Builds the text tables; errors become numbered footnotes (one per distinct error)."""

    def __init__(self, sentry: Optional[SdkUnderTest], trip: Optional[SdkUnderTest]) -> None:
        self.sentry = sentry
        self.trip = trip
        self.footnotes: dict[str, int] = {}

    @staticmethod
    def value(sut: Optional[SdkUnderTest], op: Op, getter: Getter) -> Optional[float]:
        if sut is None or sut.results[op.name].error is not None:
            return None
        return getter(sut.results[op.name])

    def cell(self, sut: Optional[SdkUnderTest], op: Op, getter: Getter, fmt: Formatter) -> str:
        if sut is None:
            return "n/a"
        res = sut.results[op.name]
        if res.error is not None:
            text = f"{sut.label} {op.name}: {res.error}"
            number = self.footnotes.setdefault(text, len(self.footnotes) + 1)
            return f"error [{number}]"
        return fmt(getter(res))

    @staticmethod
    def spread(sut: Optional[SdkUnderTest], op: Op) -> str:
        if sut is None or sut.results[op.name].error is not None:
            return ""
        pct = spread_pct(sut.results[op.name].round_means)
        return "" if pct is None else f"±{pct:.0f}%"

    @staticmethod
    def dropped(sut: Optional[SdkUnderTest], op: Op) -> bool:
        if sut is None or sut.results[op.name].error is not None:
            return False
        res = sut.results[op.name]
        return res.events_delivered < res.events_captured

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

        sentry, trip = self.sentry, self.trip
        rows = [
            [
                op.name,
                self.cell(sentry, op, wall, fmt_time),
                self.spread(sentry, op),
                self.cell(trip, op, wall, fmt_time),
                self.spread(trip, op),
                self.ratio_cell(op, wall),
            ]
            for op in OPS
        ]
        out = [
            "Wall time per call on the calling thread (median of per-round means; "
            "± = half the range of the round means)",
            render_table(
                ["operation", SENTRY, "±", TRIPWIRE, "±", "tripwire/sentry"], rows, {1, 2, 3, 4, 5}
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
            if not op.capture:
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
                if res.events_delivered < res.events_captured:
                    # Dropped events would make an SDK look cheaper than it is.
                    notes.append(
                        f"{sut.label} {op.name}: only {res.events_delivered} of "
                        f"{res.events_captured} captured events reached the transport "
                        "(ratios marked *)"
                    )
                notes.extend(f"{sut.label} {op.name}: {n}" for n in res.notes)
        if self.footnotes or notes:
            out.append("")
            out += [f"[{number}] {text}" for text, number in self.footnotes.items()]
            out += [f"note: {n}" for n in notes]
        out += ["", "ratio < 1 means tripwire is cheaper than sentry-sdk."]
        return "\n".join(out)


# --------------------------------------------------------------------------- main


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="fast smoke run (~10 s)")
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
    print("tripwire vs sentry-sdk: core operations")
    print(machine_line(facts))

    labels = {"both": [SENTRY, TRIPWIRE], "sentry": [SENTRY], "tripwire": [TRIPWIRE]}[args.sdk]
    suts: dict[str, Optional[SdkUnderTest]] = {SENTRY: None, TRIPWIRE: None}
    sdk_info: dict[str, dict[str, Any]] = {}
    for label in (SENTRY, TRIPWIRE):
        if label not in labels:
            sdk_info[label] = {"available": False, "reason": "not selected"}
            print(f"{label}: not selected")
            continue
        sut, reason, version = setup_sdk(label)
        suts[label] = sut
        sdk_info[label] = {"available": sut is not None, "version": version, "reason": reason}
        if sut is None:
            print(f"{label}: NOT BENCHMARKED ({reason})")
        else:
            print(f"{label} {version}: initialised with an in-memory transport")
    active = [s for s in (suts[SENTRY], suts[TRIPWIRE]) if s is not None]
    if not active:
        print("nothing to benchmark", file=sys.stderr)
        return 1
    print(
        f"mode: {'quick' if cfg.quick else 'full'}, {cfg.rounds} rounds, SDK order alternating "
        f"per round, ~{cfg.block_seconds:g} s per op per block"
    )
    print(
        f"scope state for every op: {BREADCRUMBS} breadcrumbs (default max_breadcrumbs, "
        "filled before timing and kept full), a tag and a user"
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
        order = active if rnd % 2 == 0 else list(reversed(active))
        for sut in order:
            measure_round(sut)

    for op in OPS:
        if op.capture:
            for sut in active:
                measure_memory(sut, op, cfg)

    print(Report(suts[SENTRY], suts[TRIPWIRE]).render())
    elapsed = time.perf_counter() - started
    print(f"\ntotal benchmark time: {elapsed:.1f} s")

    if args.json:
        ops_json: dict[str, Any] = {}
        for op in OPS:
            entry: dict[str, Any] = {}
            for label in (SENTRY, TRIPWIRE):
                sut = suts[label]
                entry[label] = sut.results[op.name].as_dict() if sut else None
            s, t = suts[SENTRY], suts[TRIPWIRE]
            if s and t:
                t_med = median(t.results[op.name].round_means)
                entry["ratio_wall"] = ratio(t_med, median(s.results[op.name].round_means))
            else:
                entry["ratio_wall"] = None
            ops_json[op.name] = entry
        write_json(
            args.json,
            {
                "benchmark": "core",
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
