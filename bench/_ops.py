"""The in-process op runner shared by core.py and tracing.py.

Both benchmarks import the two SDKs into one process, give each an in-memory
transport, calibrate an iteration count per (SDK, op), time interleaved rounds and
take tracemalloc figures. A script supplies only its workload: the ``Op`` list, the
init options, how to prime the scope, the report and the JSON field names.
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
    add_sdk_option,
    describe_error,
    ensure_repo_on_path,
    load_sdk,
    machine_facts,
    machine_line,
    make_memory_transport,
    median,
    ratio,
    selected_labels,
    spread_pct,
    write_json,
)

OpFn = Callable[[ModuleType, int], None]


# The error of a row that `--only` left out: shown as "-", without a footnote.
NOT_SELECTED = "not selected (--only)"


class Op:
    """One benchmark row: ``fn(sdk, n)`` makes ``n`` calls in its own loop.

    Args:
        name: the row label.
        fn: the workload; the harness overhead per call is one ``for`` step in ``fn``.
        sends: what each call hands to the transport ("event", "transaction"), or
            None. A sending op is flushed after each batch (the flush is in its CPU
            figure), runs at least 5 calls, and fails its row if a batch delivers no
            envelope: timing an SDK that sends nothing would flatter it.
        silent: nothing may reach the transport; a batch that sends fails the row.
        options: init() options the op runs under; None keeps the current ones.

    CPU per call and the call/delivery counts are recorded for ops that are
    ``sends`` or ``silent`` (the ops whose deliveries are checked).
    """

    def __init__(
        self,
        name: str,
        fn: OpFn,
        *,
        sends: Optional[str] = None,
        silent: bool = False,
        options: Optional[dict[str, Any]] = None,
    ) -> None:
        self.name = name
        self.fn = fn
        self.sends = sends
        self.silent = silent
        self.options = options

    @property
    def checked(self) -> bool:
        return self.sends is not None or self.silent


class Config:
    """Run lengths; ``retained`` adds the retained-memory measurement."""

    def __init__(self, quick: bool, rounds: Optional[int], retained: bool = False) -> None:
        self.quick = quick
        self.rounds = rounds or (3 if quick else 5)
        self.block_seconds = 0.06 if quick else 0.4  # target wall time of one op batch
        self.calibrate_seconds = 0.005 if quick else 0.02
        self.peak_samples = 10 if quick else 50
        self.retained_events: Optional[int] = (30 if quick else 200) if retained else None

    @property
    def mode(self) -> str:
        return "quick" if self.quick else "full"

    def as_dict(self, workload: dict[str, Any]) -> dict[str, Any]:
        """The configuration for the JSON file, with the script's workload facts."""
        out: dict[str, Any] = {
            "mode": self.mode,
            "rounds": self.rounds,
            "block_seconds": self.block_seconds,
            **workload,
            "peak_samples": self.peak_samples,
        }
        if self.retained_events is not None:
            out["retained_events"] = self.retained_events
        out["dsn"] = DSN
        return out


class OpResult:
    """Everything measured for one (SDK, op) pair."""

    def __init__(self) -> None:
        self.iterations = 0
        self.round_means: list[float] = []  # wall seconds per call, one per round
        self.round_cpu: list[float] = []  # process CPU seconds per call incl. flush
        self.envelope_bytes: list[float] = []
        self.peak_bytes: Optional[float] = None
        self.retained_bytes: Optional[float] = None
        self.error: Optional[str] = None
        self.notes: list[str] = []
        self.calls = 0  # calls made during the timed rounds (checked ops only)
        self.delivered = 0  # envelopes that reached the transport meanwhile

    def note(self, text: str) -> None:
        if text not in self.notes:
            self.notes.append(text)


class SdkUnderTest:
    """One initialised SDK, its in-memory transport and its results per op."""

    def __init__(
        self, label: str, module: ModuleType, transport: Any, version: str, ops: list[Op]
    ) -> None:
        self.label = label
        self.module = module
        self.transport = transport
        self.version = version
        self.current_options: Optional[dict[str, Any]] = None
        self.results: dict[str, OpResult] = {op.name: OpResult() for op in ops}

    def configure(self, options: Optional[dict[str, Any]]) -> None:
        """(Re-)initialise with ``options`` unless it already runs with them (untimed)."""
        if options is not None and self.current_options is not options:
            self.module.init(dsn=DSN, transport=self.transport, **options)
            self.current_options = options


# --------------------------------------------------------------------------- setup


def setup_sdk(
    label: str,
    ops: list[Op],
    options: dict[str, Any],
    required: tuple[str, ...] = (),
    primes: tuple[tuple[OpFn, int], ...] = (),
) -> tuple[Optional[SdkUnderTest], Optional[str], str]:
    """Import one SDK, init it with ``options`` and the in-memory transport, prime it.

    ``primes`` are (op function, count) pairs run once, untimed, to give the scope the
    state the ops run with. Returns (the SDK, None, version) or (None, why it is not
    benchmarked, version).
    """
    loaded = load_sdk(label)
    if loaded.error is not None or loaded.module is None or loaded.transport_base is None:
        return None, loaded.error or "unavailable", loaded.version
    module = loaded.module
    missing = [name for name in required if not callable(getattr(module, name, None))]
    if missing:
        return None, f"lacks {', '.join(missing)}", loaded.version
    try:
        transport = make_memory_transport(loaded.transport_base)
    except Exception as exc:
        return None, f"creating the transport failed: {describe_error(exc)}", loaded.version
    sut = SdkUnderTest(label, module, transport, loaded.version, ops)
    try:
        sut.configure(options)
    except Exception as exc:
        return None, f"init failed: {describe_error(exc)}", loaded.version
    get_client = getattr(module, "get_client", None)
    if callable(get_client):
        try:
            if not get_client().is_active():
                return None, "client not active after init", loaded.version
        except Exception:
            pass  # not part of what we benchmark; the ops will show real problems
    for prime, count in primes:
        # A failure here is reported by the matching op in its own row.
        with contextlib.suppress(Exception):
            prime(module, count)
    return sut, None, loaded.version


# --------------------------------------------------------------------------- measuring


def run_batch(sut: SdkUnderTest, op: Op, n: int) -> tuple[float, float, int, int]:
    """Run ``n`` calls; return (wall s, cpu s incl. flush, envelopes, envelope bytes)."""
    sut.configure(op.options)
    tr = sut.transport
    envelopes0, bytes0, errors0 = tr.envelopes, tr.total_bytes, tr.errors
    gc.collect()  # don't let the other SDK's garbage be collected on our clock
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    op.fn(sut.module, n)
    wall = time.perf_counter() - t0
    if op.sends is not None:
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
    return max(5 if op.sends is not None else 100, min(target, 1 << 24))


def measure_round(sut: SdkUnderTest, ops: list[Op]) -> None:
    """One timed batch of every op for one SDK."""
    for op in ops:
        res = sut.results[op.name]
        if res.error is not None or res.iterations == 0:
            continue
        try:
            wall, cpu, envelopes, nbytes = run_batch(sut, op, res.iterations)
        except Exception as exc:
            res.error = describe_error(exc)
            continue
        res.round_means.append(wall / res.iterations)
        # CPU is recorded for every op: on a busy machine it is steadier than wall time.
        res.round_cpu.append(cpu / res.iterations)
        if not op.checked:
            continue
        res.calls += res.iterations
        res.delivered += envelopes
        if op.sends is not None:
            if envelopes == 0:
                why = f" ({res.notes[-1]})" if res.notes else ""
                res.error = f"no {op.sends} reached the transport{why}"
            else:
                res.envelope_bytes.append(nbytes / envelopes)
        elif envelopes:
            res.error = f"{envelopes} envelopes sent with nothing to send"


def measure_memory(sut: SdkUnderTest, op: Op, cfg: Config, fatal: bool = False) -> None:
    """tracemalloc figures for one op (see README for the definitions).

    The peak of one call always; the memory kept per call if ``cfg.retained_events``.
    A failure is a note on the row, or the row's error if ``fatal``.
    """
    res = sut.results[op.name]
    if res.error is not None or res.iterations == 0:
        return
    sut.configure(op.options)
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
            peaks.append(float(tracemalloc.get_traced_memory()[1] - base))
        res.peak_bytes = median(peaks)
        count = cfg.retained_events
        if count is not None:
            gc.collect()
            base = tracemalloc.get_traced_memory()[0]
            op.fn(mod, count)
            mod.flush()
            gc.collect()
            res.retained_bytes = (tracemalloc.get_traced_memory()[0] - base) / count
    except Exception as exc:
        text = f"memory measurement failed: {describe_error(exc)}"
        if fatal:
            res.error = text
        else:
            res.note(text)
    finally:
        tracemalloc.stop()


# --------------------------------------------------------------------------- report

Getter = Callable[[OpResult], Optional[float]]
Formatter = Callable[[Optional[float]], str]


class Cells:
    """Table cells for one op; errors become numbered footnotes (one per distinct error)."""

    def __init__(self) -> None:
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
        if res.error == NOT_SELECTED:
            return "-"
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

    def footnote_lines(self) -> list[str]:
        return [f"[{number}] {text}" for text, number in self.footnotes.items()]


# --------------------------------------------------------------------------- driver


def run(
    argv: Optional[list[str]],
    *,
    description: Optional[str],
    quick_help: str,
    benchmark: str,
    title: str,
    ops: list[Op],
    setup: Callable[[str], tuple[Optional[SdkUnderTest], Optional[str], str]],
    ready: str,
    show_unselected: bool,
    intro: list[str],
    retained: bool,
    memory_ops: Callable[[Op], bool],
    memory_fatal: bool,
    workload: dict[str, Any],
    render: Callable[[Optional[SdkUnderTest], Optional[SdkUnderTest]], str],
    result_json: Callable[[OpResult], dict[str, Any]],
) -> int:
    """Parse the options, set both SDKs up, measure, print the report, write the JSON.

    Args:
        setup: ``setup_sdk`` bound to the script's options and priming.
        ready: what the SDK line says after ``label version:`` when set up.
        show_unselected: print ``label: not selected`` for an SDK left out by ``--sdk``.
        intro: lines printed after the mode line, before the measuring starts.
        memory_ops: which ops get the tracemalloc figures.
        workload: the script's facts for the JSON ``config``.
        render: the report, from the sentry-sdk and tripwire results.
        result_json: one (SDK, op) result as JSON.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help=quick_help)
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--rounds", type=int, help="override the number of rounds")
    parser.add_argument(
        "--only",
        metavar="TEXT",
        action="append",
        help="measure only the rows whose name contains TEXT (repeatable)",
    )
    add_sdk_option(parser)
    args = parser.parse_args(argv)
    cfg = Config(args.quick, args.rounds, retained)
    ensure_repo_on_path()
    started = time.perf_counter()

    facts = machine_facts()
    print(f"tripwire vs sentry-sdk: {title}")
    print(machine_line(facts))
    labels = selected_labels(args.sdk)
    suts: dict[str, Optional[SdkUnderTest]] = {SENTRY: None, TRIPWIRE: None}
    sdk_info: dict[str, dict[str, Any]] = {}
    for label in (SENTRY, TRIPWIRE):
        if label not in labels:
            sdk_info[label] = {"available": False, "reason": "not selected"}
            if show_unselected:
                print(f"{label}: not selected")
            continue
        sut, reason, version = setup(label)
        suts[label] = sut
        sdk_info[label] = {"available": sut is not None, "version": version, "reason": reason}
        if sut is None:
            print(f"{label}: NOT BENCHMARKED ({reason})")
        else:
            print(f"{label} {version}: {ready}")
    active = [s for s in (suts[SENTRY], suts[TRIPWIRE]) if s is not None]
    if not active:
        print("nothing to benchmark", file=sys.stderr)
        return 1
    print(
        f"mode: {cfg.mode}, {cfg.rounds} rounds, SDK order alternating "
        f"per round, ~{cfg.block_seconds:g} s per op per block"
    )
    for line in intro:
        print(line)
    print()

    for sut in active:
        for op in ops:
            res = sut.results[op.name]
            if args.only and not any(text in op.name for text in args.only):
                res.error = NOT_SELECTED
                continue
            try:
                res.iterations = calibrate(sut, op, cfg)
            except Exception as exc:
                res.error = describe_error(exc)
    for rnd in range(cfg.rounds):
        # Alternate the SDK order so slow drift in the machine's speed hits both alike.
        for sut in active if rnd % 2 == 0 else list(reversed(active)):
            measure_round(sut, ops)
    for op in ops:
        if memory_ops(op):
            for sut in active:
                measure_memory(sut, op, cfg, memory_fatal)

    print(render(suts[SENTRY], suts[TRIPWIRE]))
    elapsed = time.perf_counter() - started
    print(f"\ntotal benchmark time: {elapsed:.1f} s")

    if args.json:
        ops_json: dict[str, Any] = {}
        for op in ops:
            entry: dict[str, Any] = {
                label: (result_json(sut.results[op.name]) if sut else None)
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
                "benchmark": benchmark,
                "machine": facts,
                "config": cfg.as_dict(workload),
                "sdks": sdk_info,
                "ops": ops_json,
                "elapsed_s": elapsed,
            },
        )
        print(f"wrote {args.json}")
    return 0
