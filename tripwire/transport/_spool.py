"""The offline spool: envelopes kept on disk while the server cannot take them.

Opt-in with the ``spool_dir`` option. Each DSN gets its own sub-directory, so the
next process started with the same DSN finds and sends what an earlier one left.

On-disk protocol (every step is one atomic rename, so a crash at any point leaves
either a complete file or a stray temporary that is never sent):

- write: ``.tmp-<pid>-<token>`` is written, fsync'ed, then renamed to
  ``<created_us>-<pid>-<token>.env`` (names sort oldest first);
- claim: a sender renames ``X.env`` to ``X.env.claimed-<pid>-<token>``; only one
  process can win that rename, so no two processes send the same file;
- done: the claimed file is deleted; retry later: it is renamed back;
- a claim left by a process that died (or older than `STALE_CLAIM`) is renamed
  back by the next process that looks.

A file holds a magic line, one JSON line of metadata (encoding, what it holds for
client reports, creation time, attempts) and the request body, exactly as it
would have been POSTed.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from typing import Callable, Optional

from tripwire._ids import getrandbits
from tripwire._json import dumps, loads
from tripwire._log import logger
from tripwire.outcomes import DropReason
from tripwire.transport._policy import Entry

MAGIC = b"tripwire-spool 1\n"
SUFFIX = ".env"
CLAIM = ".claimed-"
TMP_PREFIX = ".tmp-"
# A send never takes longer than the request timeout: a claim this old is abandoned.
STALE_CLAIM = 600.0
# Give up on a file the server keeps refusing with 5xx after this many tries.
MAX_ATTEMPTS = 20

_Lost = Callable[["Entry", DropReason], None]


def spool_key(dsn: object) -> str:
    """The sub-directory name for a DSN (a hash: the key does not end up in a path)."""
    return hashlib.sha256(str(dsn).encode("utf-8")).hexdigest()[:24]


class Spool:
    """A bounded directory of envelopes waiting to be sent.

    Args:
        directory: The ``spool_dir`` option.
        key: Sub-directory for this DSN (see `spool_key`).
        max_bytes: Size bound; the oldest files are dropped (cache_overflow) past it.
        max_age: Seconds; older files are dropped (network_error) instead of sent.
        lost: Called to count what a dropped file held.
        clock: Unix time (a seam for tests).
    """

    __slots__ = ("_bytes", "_lock", "_lost", "_token", "clock", "max_age", "max_bytes", "path")

    def __init__(
        self,
        directory: str,
        key: str,
        max_bytes: int,
        max_age: float,
        lost: _Lost,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = os.path.join(directory, key)
        self.max_bytes = max_bytes
        self.max_age = max_age
        self._lost = lost
        self.clock = clock
        self._lock = threading.Lock()
        self._token = "%08x" % getrandbits(32)
        self._bytes = -1  # unknown until the first scan

    # -- writing -----------------------------------------------------------------------

    def put(self, entry: Entry, body: bytes, encoding: Optional[str]) -> bool:
        """Store `entry` as the request `body` durably; False if it could not be written."""
        if not entry.created:
            entry.created = self.clock()
        created = entry.created
        head = self._head(entry, encoding)
        size = len(head) + len(body)
        if size > self.max_bytes:
            return False
        name = "%016d-%d-%s-%08x%s" % (
            int(created * 1_000_000),
            os.getpid(),
            self._token,
            getrandbits(32),
            SUFFIX,
        )
        with self._lock:
            try:
                os.makedirs(self.path, mode=0o700, exist_ok=True)
                self._make_room(size)
                self._write(name, head, body)
            except OSError as exc:
                logger.warning("could not write to the spool %s: %s", self.path, exc)
                return False
            if self._bytes >= 0:
                self._bytes += size
        return True

    @staticmethod
    def _head(entry: Entry, encoding: Optional[str]) -> bytes:
        meta = {
            "encoding": encoding,
            "summary": [list(pair) for pair in entry.summary],
            "categories": sorted(entry.categories),
            "low_priority": entry.low_priority,
            "created": entry.created,
            "attempts": entry.attempts,
        }
        return MAGIC + dumps(meta) + b"\n"

    def _write(self, name: str, head: bytes, body: bytes) -> None:
        tmp = os.path.join(self.path, f"{TMP_PREFIX}{os.getpid()}-{self._token}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, head)
            view = memoryview(body)
            while view:
                written = os.write(fd, view)
                view = view[written:]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, os.path.join(self.path, name))
        _fsync_dir(self.path)

    def _make_room(self, size: int) -> None:
        if self._bytes < 0 or self._bytes + size > self.max_bytes:
            self._bytes = self._scan_size()
        if self._bytes + size <= self.max_bytes:
            return
        for name in self._ready_names():
            if self._bytes + size <= self.max_bytes:
                return
            path = os.path.join(self.path, name)
            entry, length = self._read(path)
            try:
                os.unlink(path)
            except OSError:
                continue  # claimed or removed by another process meanwhile
            self._bytes -= length
            if entry is not None:
                self._lost(entry, DropReason.CACHE_OVERFLOW)

    # -- reading -----------------------------------------------------------------------

    def has_ready(self) -> bool:
        """True if a file is waiting to be sent (by any process)."""
        try:
            with os.scandir(self.path) as it:
                return any(e.name.endswith(SUFFIX) for e in it)
        except OSError:
            return False

    def claim(self) -> Optional[tuple[str, Entry]]:
        """Take the oldest sendable file for this process: (claimed path, entry), or None.

        Files past `max_age` or that failed `MAX_ATTEMPTS` times are dropped and
        counted; unreadable ones are deleted.
        """
        now = self.clock()
        for name in self._ready_names():
            path = os.path.join(self.path, name)
            claimed = f"{path}{CLAIM}{os.getpid()}-{self._token}"
            try:
                os.rename(path, claimed)
            except OSError:
                continue  # another process claimed it first
            entry, length = self._read(claimed)
            if entry is None:
                logger.warning("dropping an unreadable spool file %s", name)
                self._remove(claimed, length)
                continue
            if now - entry.created > self.max_age:
                self._remove(claimed, length)
                self._lost(entry, DropReason.NETWORK_ERROR)
                continue
            return claimed, entry
        return None

    def done(self, claimed: str) -> None:
        """The claimed file was sent (or given up on): delete it."""
        try:
            size = os.stat(claimed).st_size
        except OSError:
            size = 0
        self._remove(claimed, size)

    def release(self, claimed: str, entry: Entry) -> None:
        """Sending the claimed file failed: keep it for a later try (or give up)."""
        entry.attempts += 1
        if entry.attempts >= MAX_ATTEMPTS:
            self.done(claimed)
            self._lost(entry, DropReason.SEND_ERROR)
            return
        ready = claimed.partition(CLAIM)[0]
        try:
            # Rewritten under its old name with the new attempt count (same crash-safe
            # write), then the claim is dropped; the name keeps its place in the order.
            with self._lock:
                self._write(os.path.basename(ready), self._head(entry, entry.encoding), entry.data)
            os.unlink(claimed)
        except OSError:
            logger.debug("could not put back spool file %s", claimed, exc_info=True)

    def recover(self) -> None:
        """Put back claims abandoned by dead processes; remove stale temporaries."""
        now = time.time()
        try:
            with os.scandir(self.path) as it:
                entries = list(it)
        except OSError:
            return
        for e in entries:
            name = e.name
            try:
                if name.startswith(TMP_PREFIX):
                    # A write interrupted by a crash: never complete, never sent.
                    if now - e.stat().st_mtime > STALE_CLAIM:
                        os.unlink(e.path)
                    continue
                base, sep, owner = name.partition(CLAIM)
                if not sep:
                    continue
                pid_text = owner.partition("-")[0]
                pid = int(pid_text) if pid_text.isdigit() else 0
                if not _alive(pid) or now - e.stat().st_mtime > STALE_CLAIM:
                    os.rename(e.path, os.path.join(self.path, base))
            except OSError:
                continue

    def _read(self, path: str) -> tuple[Optional[Entry], int]:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError:
            return None, 0
        if not data.startswith(MAGIC):
            return None, len(data)
        end = data.find(b"\n", len(MAGIC))
        if end < 0:
            return None, len(data)
        try:
            meta = loads(data[len(MAGIC) : end])
            entry = Entry(
                data[end + 1 :],
                meta.get("encoding"),
                tuple((str(c), int(q)) for c, q in meta.get("summary") or ()),
                frozenset(str(c) for c in meta.get("categories") or ()),
                bool(meta.get("low_priority")),
                float(meta.get("created") or 0.0),
            )
            entry.attempts = int(meta.get("attempts") or 0)
        except (ValueError, TypeError, AttributeError):
            return None, len(data)
        return entry, len(data)

    def _remove(self, path: str, size: int) -> None:
        try:
            os.unlink(path)
        except OSError:
            return
        with self._lock:
            if self._bytes >= 0:
                self._bytes = max(self._bytes - size, 0)

    def _ready_names(self) -> list[str]:
        try:
            with os.scandir(self.path) as it:
                return sorted(e.name for e in it if e.name.endswith(SUFFIX))
        except OSError:
            return []

    def _scan_size(self) -> int:
        total = 0
        try:
            with os.scandir(self.path) as it:
                for e in it:
                    try:
                        total += e.stat().st_size
                    except OSError:
                        continue
        except OSError:
            return 0
        return total

    def reset_after_fork(self) -> None:
        """A fresh lock and token in a forked child."""
        self._lock = threading.Lock()
        self._token = "%08x" % getrandbits(32)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists, owned by someone else
    return True


def _fsync_dir(path: str) -> None:
    # Makes the rename itself durable; not possible on every platform (Windows).
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
