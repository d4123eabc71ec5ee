"""A real redis-server on 127.0.0.1, started once per test session (per xdist worker).

Test modules re-export the fixtures they use (``from _redis_server import
redis_server_fixture  # noqa: F401``); the fixtures' names are:

- `redis_server`: a plain server (``--save '' --appendonly no``, data in a temporary
  directory) on a free port; tests share it, so each uses its own keys (`keyspace`).
- `redis_cluster`: a one-node cluster (``--cluster-enabled yes``, all 16384 slots on
  that node): what redis-py's `RedisCluster` needs, in one process.

Without the ``redis-server`` binary (Debian package ``redis-server``, which ``.ci/run``
installs) the tests that use them are skipped. The servers are spoken to in raw RESP,
so a user of these fixtures needs no redis client library.
"""

from __future__ import annotations

import itertools
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import pytest
from _owned_processes import stop_server, tied_to_us

_START_DEADLINE = 15.0  # seconds for a server to answer PING (or the cluster to be ok)


@dataclass(frozen=True)
class RedisServer:
    """A running redis-server: where it listens and what it was started with."""

    host: str
    port: int
    data_dir: Path
    process: subprocess.Popen[bytes]

    def url(self, db: int = 0) -> str:
        """A ``redis://`` URL of database `db`."""
        return f"redis://{self.host}:{self.port}/{db}"

    def command(self, *args: Any) -> Any:
        """Send one command (raw RESP) and return its decoded reply."""
        return command(self.host, self.port, *args)


def _encode(args: tuple[Any, ...]) -> bytes:
    out = [b"*%d\r\n" % len(args)]
    for arg in args:
        raw = arg if isinstance(arg, bytes) else str(arg).encode()
        out.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(out)


def _read(stream: Any) -> Any:
    line = stream.readline()
    if not line:
        raise ConnectionError("redis-server closed the connection")
    kind, rest = line[:1], line[1:-2]
    if kind == b"+":
        return rest.decode()
    if kind == b"-":
        raise RuntimeError(rest.decode())
    if kind == b":":
        return int(rest)
    if kind == b"$":
        size = int(rest)
        return None if size < 0 else stream.read(size + 2)[:-2]
    if kind == b"*":
        size = int(rest)
        return None if size < 0 else [_read(stream) for _ in range(size)]
    raise ValueError(f"unexpected RESP reply {line!r}")


def command(host: str, port: int, *args: Any) -> Any:
    """One command on a new connection: its reply (``-ERR`` replies raise RuntimeError)."""
    with socket.create_connection((host, port), timeout=5) as sock:
        sock.sendall(_encode(args))
        with sock.makefile("rb") as stream:
            return _read(stream)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _wait_for_ping(process: subprocess.Popen[bytes], port: int) -> bool:
    """True once the server answers PING; False if it exited (its port was taken)."""
    deadline = time.monotonic() + _START_DEADLINE
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            if command("127.0.0.1", port, "PING") == "PONG":
                return True
        except (OSError, RuntimeError):
            pass  # not listening yet, or still loading
        time.sleep(0.02)  # polling interval, bounded by the deadline
    raise TimeoutError(f"redis-server on port {port} did not answer within {_START_DEADLINE}s")


def start(data_dir: Path, *extra: str) -> RedisServer:
    """Start redis-server on a free loopback port (retrying if another process took it)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (Debian package redis-server; .ci/run adds it)")
    data_dir.mkdir(parents=True, exist_ok=True)
    for attempt in itertools.count():
        port = _free_port()
        log = data_dir / f"redis-{port}.log"
        process = subprocess.Popen(
            [
                *tied_to_us(),
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(data_dir),
                "--logfile",
                str(log),
                "--daemonize",
                "no",
                *extra,
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        if _wait_for_ping(process, port):
            return RedisServer("127.0.0.1", port, data_dir, process)
        if attempt >= 4:
            text = log.read_text(errors="replace") if log.exists() else ""
            raise RuntimeError(f"redis-server did not start: {text[-2000:]}")
    raise AssertionError("unreachable")


def stop(server: Optional[RedisServer]) -> None:
    """Stop a server started by `start` (SIGTERM, then SIGKILL after 10 s)."""
    if server is not None:
        stop_server(server.process, 10)


@pytest.fixture(scope="session", name="redis_server")
def redis_server_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A plain redis-server for the whole session (this xdist worker's own)."""
    server = start(tmp_path_factory.mktemp("redis"))
    try:
        yield server
    finally:
        stop(server)


@pytest.fixture(scope="session", name="redis_cluster")
def redis_cluster_fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A one-node redis cluster (all slots on the node) for the whole session."""
    data_dir = tmp_path_factory.mktemp("redis-cluster")
    server = start(
        data_dir,
        "--cluster-enabled", "yes",
        "--cluster-config-file", str(data_dir / "nodes.conf"),
    )  # fmt: skip
    try:
        server.command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        deadline = time.monotonic() + _START_DEADLINE
        while b"cluster_state:ok" not in server.command("CLUSTER", "INFO"):
            if time.monotonic() > deadline:
                raise TimeoutError("the one-node redis cluster did not become ok")
            time.sleep(0.02)  # polling interval, bounded by the deadline
        yield server
    finally:
        stop(server)


_keyspaces = itertools.count()


@pytest.fixture(name="keyspace")
def keyspace_fixture() -> str:
    """A key prefix no other test of the session uses (the servers are shared)."""
    return f"rt{next(_keyspaces)}:"
