"""Start-up cost: ``import X`` and ``import X; X.init(dsn=...)`` in fresh interpreters.

Run from the repository root with the dev virtualenv::

    .venv/bin/python bench/startup.py            # 15 repetitions per case
    .venv/bin/python bench/startup.py --quick    # 5 repetitions per case
    .venv/bin/python bench/startup.py --json startup.json

Every sample is a new ``python -c`` process (import-time profiling off). The child
times itself with perf_counter around the import and around init; the parent also
times the whole process (interpreter start, import, init, shutdown). See README.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from typing import Any, Callable, Optional

from _harness import (
    BENCH_DIR,
    DSN,
    SDK_MODULES,
    SENTRY,
    TRIPWIRE,
    child_env,
    fmt_ratio,
    fmt_time,
    machine_facts,
    machine_line,
    median,
    ratio,
    render_table,
    spread_pct,
    write_json,
)

# The child reports: import seconds, init seconds, modules added by import, by init.
CHILD = """\
import sys, time
m0 = len(sys.modules)
t0 = time.perf_counter()
import {module} as sdk
t1 = time.perf_counter()
m1 = len(sys.modules)
if {do_init}:
    sdk.init(dsn={dsn!r})
t2 = time.perf_counter()
m2 = len(sys.modules)
sys.stdout.write("BENCH %r %r %d %d\\n" % (t1 - t0, t2 - t1, m1 - m0, m2 - m1))
"""

BARE = "pass"


class Sample:
    def __init__(self, wall: float, imp: float, init: float, mods_imp: int, mods_init: int):
        self.wall = wall
        self.imp = imp
        self.init = init
        self.mods_imp = mods_imp
        self.mods_init = mods_init


def run_child(code: str, env: dict[str, str]) -> Sample:
    """Run one fresh interpreter; raise RuntimeError with its stderr if it fails."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        cwd=str(BENCH_DIR),  # not the repo root: see BENCH_DIR
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        lines = proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"]
        raise RuntimeError(lines[-1][:120])
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH "):
            imp, init, mods_imp, mods_init = line.split()[1:5]
            return Sample(wall, float(imp), float(init), int(mods_imp), int(mods_init))
    if code == BARE:
        return Sample(wall, 0.0, 0.0, 0, 0)
    raise RuntimeError("child printed no result")


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="5 repetitions instead of 15")
    parser.add_argument("--repeat", type=int, help="repetitions per case")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    args = parser.parse_args(argv)
    repeat = args.repeat or (5 if args.quick else 15)
    env = child_env()
    started = time.perf_counter()

    facts = machine_facts()
    print("tripwire vs sentry-sdk: start-up cost (fresh interpreter per sample)")
    print(machine_line(facts))

    # case key -> child code
    cases: dict[str, str] = {"bare": BARE}
    for label in (SENTRY, TRIPWIRE):
        module = SDK_MODULES[label][0]
        for kind, do_init in (("import", False), ("init", True)):
            cases[f"{label}/{kind}"] = CHILD.format(module=module, do_init=do_init, dsn=DSN)

    samples: dict[str, list[Sample]] = {key: [] for key in cases}
    errors: dict[str, str] = {}
    # One unmeasured run per case: writes .pyc files and tells us what works.
    for key, code in cases.items():
        try:
            run_child(code, env)
        except Exception as exc:
            errors[key] = str(exc)
    for key in (f"{SENTRY}/import", f"{TRIPWIRE}/import"):
        if key in errors:
            print(f"{key.split('/')[0]}: NOT BENCHMARKED ({errors[key]})")
    print(f"{repeat} samples per case, SDK order alternating per repetition")
    print()

    for rep in range(repeat):
        order = list(cases)
        if rep % 2:
            # Reverse the SDK order (keeping the bare baseline first).
            order = [order[0], *reversed(order[1:])]
        for key in order:
            if key in errors:
                continue
            try:
                samples[key].append(run_child(cases[key], env))
            except Exception as exc:
                errors[key] = str(exc)

    def per_sample(key: str, fn: Callable[[Sample], float]) -> list[float]:
        return [float(fn(s)) for s in samples[key]] if key not in errors else []

    def cell(key: str, value: Optional[float], fmt: Callable[[Optional[float]], str]) -> str:
        return "error" if key in errors else fmt(value)

    def spread(values: list[float]) -> str:
        pct = spread_pct(values)
        return "" if pct is None else f"±{pct:.0f}%"

    def count(v: Optional[float]) -> str:
        return "-" if v is None else f"{v:.0f}"

    # (row, case kind, the figure of one sample, formatter, show the ± column)
    specs: list[tuple[str, str, Callable[[Sample], float], Callable[[Optional[float]], str], bool]]
    specs = [
        ("import (in child)", "import", lambda s: s.imp, fmt_time, True),
        ("init() after import (in child)", "init", lambda s: s.init, fmt_time, True),
        ("import + init (in child)", "init", lambda s: s.imp + s.init, fmt_time, True),
        ("whole process: import", "import", lambda s: s.wall, fmt_time, True),
        ("whole process: import + init", "init", lambda s: s.wall, fmt_time, True),
        ("modules added by import", "import", lambda s: s.mods_imp, count, False),
        ("modules added by init", "init", lambda s: s.mods_init, count, False),
    ]
    rows: list[list[str]] = []
    figures: dict[str, dict[str, Optional[float]]] = {}
    for name, kind, fn, fmt, with_spread in specs:
        s_key, t_key = f"{SENTRY}/{kind}", f"{TRIPWIRE}/{kind}"
        s_vals, t_vals = per_sample(s_key, fn), per_sample(t_key, fn)
        sv, tv = median(s_vals), median(t_vals)
        rows.append(
            [
                name,
                cell(s_key, sv, fmt),
                spread(s_vals) if with_spread else "",
                cell(t_key, tv, fmt),
                spread(t_vals) if with_spread else "",
                fmt_ratio(ratio(tv, sv)),
            ]
        )
        figures[name] = {SENTRY: sv, TRIPWIRE: tv, "ratio": ratio(tv, sv)}
    print("Medians over fresh interpreters")
    print(
        render_table(["case", SENTRY, "±", TRIPWIRE, "±", "tripwire/sentry"], rows, {1, 2, 3, 4, 5})
    )
    bare = median(per_sample("bare", lambda s: s.wall))
    print(f"\nbare interpreter (python -c pass), whole process: {fmt_time(bare)}")
    for key, err in errors.items():
        print(f"error: {key}: {err}")
    print("ratio < 1 means tripwire is cheaper than sentry-sdk.")
    elapsed = time.perf_counter() - started
    print(f"\ntotal benchmark time: {elapsed:.1f} s")

    if args.json:
        out: dict[str, Any] = {
            "benchmark": "startup",
            "machine": facts,
            "config": {"repeat": repeat, "dsn": DSN},
            "cases": {},
            "rows": figures,
            "bare_interpreter_s": bare,
            "errors": errors,
            "elapsed_s": elapsed,
        }
        for key, items in samples.items():
            out["cases"][key] = [vars(s) for s in items]
        write_json(args.json, out)
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
