"""Shared plumbing for the side-by-side benchmarks: SDK loading, transports, formatting.

Both SDKs expose the sentry_sdk 2.x API, so the benchmark code only ever talks to a
module object (``sdk.init``, ``sdk.set_tag``...). Everything here is deliberately
defensive: a missing or half-built tripwire must never stop the sentry-sdk numbers
from being printed.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Optional

ROOT = Path(__file__).resolve().parent.parent
# The working directory of child interpreters. Not the repo root: `python -c` puts the
# cwd first on sys.path, which would shadow PYTHONPATH; bench/ is also what sys.path[0]
# is for `python bench/core.py`, so `_harness` imports there.
BENCH_DIR = ROOT / "bench"

# Port 9 is "discard" on loopback; nothing is sent anyway because every benchmark that
# captures events installs an in-memory transport.
DSN = "https://abc@127.0.0.1:9/1"

SENTRY = "sentry-sdk"
TRIPWIRE = "tripwire"

# (label, importable module, module holding the Transport base class)
SDK_MODULES: dict[str, tuple[str, str]] = {
    SENTRY: ("sentry_sdk", "sentry_sdk.transport"),
    TRIPWIRE: ("tripwire", "tripwire.transport"),
}

# The API the core benchmark needs; an SDK lacking any of these is skipped as a whole.
REQUIRED_API = ("init", "flush")


def ensure_repo_on_path() -> None:
    """Make the working tree's ``tripwire`` importable when run as ``python bench/x.py``.

    Appended, not prepended: an installed (editable) tripwire or PYTHONPATH wins.
    """
    root = str(ROOT)
    if root not in sys.path:
        sys.path.append(root)


def add_sdk_option(parser: argparse.ArgumentParser) -> None:
    """The ``--sdk both|sentry|tripwire`` option; read it with ``selected_labels``."""
    parser.add_argument(
        "--sdk", choices=("both", "sentry", "tripwire"), default="both", help="what to run"
    )


def selected_labels(choice: str) -> list[str]:
    """The SDK labels an ``--sdk`` value selects, sentry-sdk first."""
    return {"both": [SENTRY, TRIPWIRE], "sentry": [SENTRY], "tripwire": [TRIPWIRE]}[choice]


def child_env() -> dict[str, str]:
    """The environment for a fresh benchmark interpreter (start-up and delivery children)."""
    env = dict(os.environ)
    # Import-time profiling would distort the numbers (and floods stderr); SENTRY_*
    # variables would make init do different things (both SDKs read them) from one
    # machine to the next.
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    # Installed packages have bytecode caches (pip compiles at install); without them
    # the working tree's tripwire would be compiled from source on every sample.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    for key in list(env):
        if key.startswith("SENTRY_"):
            del env[key]
    # The working tree's tripwire must be importable; appended so PYTHONPATH wins.
    paths = [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    if str(ROOT) not in paths:
        paths.append(str(ROOT))
    env["PYTHONPATH"] = os.pathsep.join(paths)
    return env


def describe_error(exc: BaseException) -> str:
    """One-line description of an exception for a table cell."""
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    if len(first) > 70:
        first = first[:67] + "..."
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def sdk_version(module: ModuleType) -> str:
    """Best-effort version string of an SDK module."""
    for attr in ("VERSION", "__version__"):
        value = getattr(module, attr, None)
        if isinstance(value, str):
            return value
    consts = sys.modules.get(module.__name__ + ".consts")
    value = getattr(consts, "VERSION", None)
    return value if isinstance(value, str) else "unknown"


class LoadedSdk:
    """An imported SDK, its transport base class, or the reason it is unavailable."""

    def __init__(
        self,
        label: str,
        module: Optional[ModuleType],
        transport_base: Optional[type],
        error: Optional[str],
    ) -> None:
        self.label = label
        self.module = module
        self.transport_base = transport_base
        self.error = error

    @property
    def version(self) -> str:
        return sdk_version(self.module) if self.module is not None else "-"


def load_sdk(label: str, need_transport: bool = True) -> LoadedSdk:
    """Import one SDK and check it offers what the benchmark needs."""
    mod_name, transport_mod_name = SDK_MODULES[label]
    try:
        module = importlib.import_module(mod_name)
    except Exception as exc:
        return LoadedSdk(label, None, None, f"import {mod_name} failed: {describe_error(exc)}")
    missing = [name for name in REQUIRED_API if not callable(getattr(module, name, None))]
    if missing:
        return LoadedSdk(label, module, None, f"{mod_name} lacks {', '.join(missing)}")
    base: Optional[type] = None
    if need_transport:
        try:
            transport_mod = importlib.import_module(transport_mod_name)
        except Exception as exc:
            reason = f"import {transport_mod_name} failed: {describe_error(exc)}"
            return LoadedSdk(label, module, None, reason)
        candidate = getattr(transport_mod, "Transport", None)
        if not isinstance(candidate, type):
            return LoadedSdk(label, module, None, f"{transport_mod_name}.Transport missing")
        base = candidate
    return LoadedSdk(label, module, base, None)


def make_memory_transport(base: type) -> Any:
    """Instantiate an in-memory subclass of an SDK's own ``Transport``.

    ``capture_envelope`` serializes the envelope to bytes (so serialization is part of
    every measured capture) and keeps only counters, unless ``keep`` is set to a list.
    """

    class MemoryTransport(base):  # type: ignore[misc]
        def __init__(self) -> None:
            try:
                super().__init__()
            except TypeError:
                # A base that insists on an options argument.
                super().__init__({})
            self.envelopes = 0
            self.total_bytes = 0
            self.keep: Optional[list[bytes]] = None
            # An SDK may swallow transport errors (it must never raise into the app);
            # remember them so the report can say why events went missing.
            self.errors = 0
            self.last_error: Optional[str] = None

        def capture_envelope(self, envelope: Any) -> None:
            try:
                data = envelope.serialize()
            except Exception as exc:
                self.errors += 1
                self.last_error = describe_error(exc)
                raise
            self.envelopes += 1
            self.total_bytes += len(data)
            if self.keep is not None:
                self.keep.append(data)

    MemoryTransport.__name__ = f"Memory{base.__name__}"
    return MemoryTransport()


def machine_facts() -> dict[str, Any]:
    """Facts that make a benchmark result interpretable later."""
    usable: Optional[int] = None
    if hasattr(os, "sched_getaffinity"):
        usable = len(os.sched_getaffinity(0))
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "platform": f"{platform.system()} {platform.release()} {platform.machine()}",
        "cpu_count": os.cpu_count(),
        "cpu_usable": usable,
        "gil_enabled": getattr(sys, "_is_gil_enabled", lambda: True)(),
    }


def machine_line(facts: dict[str, Any]) -> str:
    usable = facts.get("cpu_usable")
    cpus = f"{facts['cpu_count']} CPUs" + (f" ({usable} usable)" if usable is not None else "")
    return f"{facts['implementation']} {facts['python']} on {facts['platform']}, {cpus}"


def median(values: list[float]) -> Optional[float]:
    return statistics.median(values) if values else None


def spread_pct(values: list[float]) -> Optional[float]:
    """Half the range of the values as a percentage of their median (noise indicator)."""
    med = median(values)
    if med is None or med == 0 or len(values) < 2:
        return None
    return 50.0 * (max(values) - min(values)) / med


def fmt_time(seconds: Optional[float]) -> str:
    if seconds is None:
        return "-"
    if seconds < 1e-6:
        return f"{seconds * 1e9:.0f} ns"
    if seconds < 1e-3:
        return f"{seconds * 1e6:.2f} µs"
    if seconds < 1.0:
        return f"{seconds * 1e3:.2f} ms"
    return f"{seconds:.2f} s"


def fmt_bytes(n: Optional[float]) -> str:
    if n is None:
        return "-"
    if abs(n) < 1024:
        return f"{n:.0f} B"
    if abs(n) < 1024 * 1024:
        return f"{n / 1024:.1f} KiB"
    return f"{n / (1024 * 1024):.2f} MiB"


def ratio(tripwire: Optional[float], sentry: Optional[float]) -> Optional[float]:
    if tripwire is None or sentry is None or sentry == 0:
        return None
    return tripwire / sentry


def fmt_ratio(value: Optional[float]) -> str:
    return "-" if value is None else f"{value:.2f}"


def render_table(headers: list[str], rows: list[list[str]], right: set[int]) -> str:
    """Plain-text table; columns whose index is in ``right`` are right-aligned."""
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row):
            widths[i] = max(widths[i], len(cell))

    def line(cells: list[str]) -> str:
        out = []
        for i, cell in enumerate(cells):
            out.append(cell.rjust(widths[i]) if i in right else cell.ljust(widths[i]))
        return "  ".join(out).rstrip()

    sep = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), sep, *(line(r) for r in rows)])


def write_json(path: str, data: dict[str, Any]) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        json.dump(data, fh, indent=2, sort_keys=False)
        fh.write("\n")


def run_child(code: str) -> dict[str, float]:
    """Run `code` in a fresh interpreter (bench dir, `child_env()`); the JSON object on
    its last line of output."""
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=BENCH_DIR,
        env=child_env(),
        timeout=600,
    )
    found: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return found


def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def start_redis(
    data_dir: str, missing: str = "redis-server is not installed (Debian package redis-server)"
) -> tuple[subprocess.Popen[bytes], int]:
    """redis-server on a free loopback port; returns once it answers PING.

    Exits with `missing` when the binary is not installed.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit(missing)
    port = free_port()
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    args += ["--appendonly", "no", "--dir", data_dir]
    server = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"redis-server exited with status {server.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    return server, port
        except OSError:
            pass
        time.sleep(0.02)  # polling interval, bounded by the deadline
    server.kill()
    raise SystemExit("redis-server did not answer within 15 s")


# Bench cases run in a child per sample: the baseline and the two SDKs (module to import).
SDK_CASES = [("no SDK", ""), ("tripwire", "tripwire"), ("sentry-sdk", "sentry_sdk")]


def added_cpu_bench(
    argv: Optional[list[str]],
    description: str,
    run_case: Callable[[str, bool, int], dict[str, float]],
    variants: list[tuple[str, bool]],
    sizes: tuple[int, int],
    title: str,
    first_header: str,
) -> int:
    """The command of a bench measuring CPU per call on the calling thread and the process.

    `run_case(module, variant_flag, n)` runs one child sample and returns its
    ``thread`` and ``process`` CPU per call; the cases alternate order every round.
    Reports each SDK's added CPU over the no-SDK median and tripwire's over sentry-sdk's.
    `sizes`: n for --quick and for a full run; `title` is formatted with rounds and n.
    """
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args(argv)
    rounds, n = (3, sizes[0]) if args.quick else (5, sizes[1])
    samples: dict[str, dict[str, list[dict[str, float]]]] = {
        variant: {label: [] for label, _ in SDK_CASES} for variant, _ in variants
    }
    for round_no in range(rounds):
        order = SDK_CASES if round_no % 2 == 0 else list(reversed(SDK_CASES))
        for variant, flag in variants:
            for label, module in order:
                samples[variant][label].append(run_case(module, flag, n))
    facts = machine_facts()
    print(machine_line(facts))
    print(title.format(rounds=rounds, n=n))
    rows: list[list[str]] = []
    report: dict[str, Any] = {"machine": facts}
    for variant, _ in variants:
        runs_of = samples[variant]
        entry: dict[str, Any] = {}
        for measure in ("thread", "process"):
            cpu = {label: median([s[measure] for s in runs]) for label, runs in runs_of.items()}
            base = cpu["no SDK"] or 0.0
            added = {label: (value or 0.0) - base for label, value in cpu.items()}
            added_ratio = (
                added["tripwire"] / added["sentry-sdk"] if added["sentry-sdk"] > 0 else None
            )
            entry[measure] = {"cpu": cpu, "added_cpu": added, "added_ratio": added_ratio}
        rows.extend(
            [
                variant,
                label,
                fmt_time(entry["thread"]["added_cpu"][label]) if label != "no SDK" else "-",
                fmt_time(entry["process"]["added_cpu"][label]) if label != "no SDK" else "-",
                fmt_ratio(entry["thread"]["added_ratio"]) if label == "tripwire" else "",
                fmt_ratio(entry["process"]["added_ratio"]) if label == "tripwire" else "",
            ]
            for label, _ in SDK_CASES
        )
        report[variant] = entry
    headers = [
        first_header,
        "case",
        "added CPU (thread)",
        "added CPU (process)",
        "thread vs sentry",
        "process vs sentry",
    ]
    print(render_table(headers, rows, {2, 3, 4, 5}))
    if args.json:
        write_json(args.json, report)
    return 0
