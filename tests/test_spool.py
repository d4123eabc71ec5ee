"""The offline spool: kept on disk while the server is down, sent by the next process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from _receiver import Receiver, Reply, make_envelope

from tripwire.options import build_options
from tripwire.outcomes import DropReason
from tripwire.transport import _http_transport as http_module
from tripwire.transport._http_transport import HttpTransport
from tripwire.transport._policy import Entry
from tripwire.transport._spool import MAGIC, Spool, spool_key

ROOT = Path(__file__).resolve().parent.parent


def entry(n: int = 1, created: float = 1000.0) -> Entry:
    return Entry(b"body-%d" % n, None, (("error", 1),), frozenset({"error"}), False, created)


class Lost:
    def __init__(self) -> None:
        self.calls: list[tuple[tuple[tuple[str, int], ...], DropReason]] = []

    def __call__(self, e: Entry, reason: DropReason) -> None:
        self.calls.append((e.summary, reason))


def make_spool(path: Path, lost: Lost, now: float = 1000.0, **kw: Any) -> Spool:
    options: dict[str, Any] = {"max_bytes": 1 << 20, "max_age": 3600.0}
    options.update(kw)
    return Spool(str(path), "k", lost=lost, clock=lambda: now, **options)


def test_put_claim_done(tmp_path: Path) -> None:
    lost = Lost()
    spool = make_spool(tmp_path, lost)
    assert spool.put(entry(1), b"wire-1", "gzip")
    assert spool.put(entry(2, created=1001.0), b"wire-2", None)
    assert spool.has_ready()
    first = spool.claim()
    assert first is not None
    path, got = first
    assert (got.data, got.encoding, got.summary) == (b"wire-1", "gzip", (("error", 1),))
    spool.done(path)
    second = spool.claim()
    assert second is not None and second[1].data == b"wire-2" and second[1].encoding is None
    spool.release(second[0], second[1])  # failed again: back on disk, one more attempt
    third = spool.claim()
    assert third is not None and third[1].attempts == 1
    spool.done(third[0])
    assert spool.claim() is None and not spool.has_ready()
    assert lost.calls == []


def test_half_written_and_corrupt_files_are_never_sent(tmp_path: Path) -> None:
    lost = Lost()
    spool = make_spool(tmp_path, lost)
    spool.put(entry(1), b"good", None)
    directory = tmp_path / "k"
    (directory / ".tmp-123-abc").write_bytes(MAGIC + b'{"summary": [')  # crash mid-write
    (directory / "0000000000000001-1-x-1.env").write_bytes(b"garbage")
    claimed = spool.claim()
    assert claimed is not None and claimed[1].data == b"good"
    spool.done(claimed[0])
    assert spool.claim() is None
    assert sorted(os.listdir(directory)) == [".tmp-123-abc"]


def test_two_claimers_never_take_the_same_file(tmp_path: Path) -> None:
    lost = Lost()
    writer = make_spool(tmp_path, lost)
    for i in range(20):
        writer.put(entry(i, created=1000.0 + i), b"wire-%d" % i, None)
    a, b = make_spool(tmp_path, lost), make_spool(tmp_path, lost)
    taken: list[bytes] = []
    for _ in range(100):  # bounded: claims that never run out fail instead of hanging
        got = [s.claim() for s in (a, b)]
        if got == [None, None]:
            break
        for claimed in got:
            if claimed is not None:
                taken.append(claimed[1].data)
    else:
        pytest.fail(f"the spool never ran out of claims ({len(taken)} taken)")
    assert sorted(taken) == sorted(b"wire-%d" % i for i in range(20))


def test_stale_claims_of_dead_processes_are_recovered(tmp_path: Path) -> None:
    lost = Lost()
    spool = make_spool(tmp_path, lost)
    spool.put(entry(1), b"wire", None)
    claimed = spool.claim()
    assert claimed is not None
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    os.rename(
        claimed[0], claimed[0].rsplit(".claimed-", 1)[0] + f".claimed-{dead.stdout.strip()}-zz"
    )
    assert spool.claim() is None
    spool.recover()
    again = spool.claim()
    assert again is not None and again[1].data == b"wire"


def test_size_bound_drops_oldest_as_cache_overflow(tmp_path: Path) -> None:
    lost = Lost()
    spool = make_spool(tmp_path, lost, max_bytes=400)
    for i in range(6):
        assert spool.put(entry(i, created=1000.0 + i), b"x" * 100, None)
    sizes = sum(p.stat().st_size for p in (tmp_path / "k").iterdir())
    assert sizes <= 400
    assert lost.calls and all(r is DropReason.CACHE_OVERFLOW for _, r in lost.calls)
    kept = len(list((tmp_path / "k").iterdir()))
    assert kept + len(lost.calls) == 6


def test_age_bound_drops_as_network_error(tmp_path: Path) -> None:
    lost = Lost()
    make_spool(tmp_path, lost).put(entry(1, created=1000.0), b"old", None)
    later = make_spool(tmp_path, lost, now=1000.0 + 7200)
    assert later.claim() is None
    assert lost.calls == [((("error", 1),), DropReason.NETWORK_ERROR)]


def test_spool_key_depends_on_the_dsn() -> None:
    assert spool_key("https://a@h/1") == spool_key("https://a@h/1")
    assert spool_key("https://a@h/1") != spool_key("https://a@h/2")


# -- in process ------------------------------------------------------------------------------


def test_5xx_goes_to_the_spool_and_is_delivered_when_the_server_recovers(
    rx: Receiver, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(http_module, "BACKOFF_BASE", 0.001)
    transport = HttpTransport(build_options(dsn=rx.dsn(), spool_dir=str(tmp_path)))
    try:
        rx.reply(Reply(503))
        envelope = make_envelope()
        transport.capture_envelope(envelope)
        transport.flush(10)  # 503: spooled; after the short backoff, resent and delivered
        requests = rx.wait_for(2)
        assert [r.body for r in requests[:2]] == [envelope.serialize()] * 2
        assert transport._outcomes.snapshot() == {}
        assert not list((tmp_path / spool_key(transport.parsed_dsn)).glob("*.env"))
    finally:
        transport.kill()
        transport._worker.join(10)


# -- across processes --------------------------------------------------------------------------

SCRIPT = """
import sys
import tripwire

tripwire.init(dsn=sys.argv[1], spool_dir=sys.argv[2], shutdown_timeout=1.0,
              default_integrations=False)
for i in range(int(sys.argv[3])):
    tripwire.capture_message("spooled-%d" % i)
tripwire.flush(10)
"""


def run(dsn: str, spool: Path, count: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SENTRY_")}
    env["PYTHONPATH"] = str(ROOT)
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, dsn, str(spool), str(count)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def finish(proc: subprocess.Popen[str]) -> None:
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err


def test_down_exit_up_next_process_delivers_everything_exactly_once(
    rx: Receiver, tmp_path: Path
) -> None:
    dsn = rx.dsn()
    rx.down()
    finish(run(dsn, tmp_path, 30))  # nothing listening: everything goes to disk
    files = list(tmp_path.rglob("*.env"))
    assert len(files) == 30
    rx.up()
    # Two processes start at once with the same DSN: each file is sent by one of them.
    first, second = run(dsn, tmp_path, 0), run(dsn, tmp_path, 0)
    finish(first)
    finish(second)
    messages = sorted(e["message"] for e in rx.events())
    assert messages == sorted("spooled-%d" % i for i in range(30))
    assert not list(tmp_path.rglob("*.env")) and not list(tmp_path.rglob("*.claimed-*"))
