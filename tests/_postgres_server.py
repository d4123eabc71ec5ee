"""A real PostgreSQL for the tests: `initdb` in a temp dir, served on 127.0.0.1.

`serve()` is the body of a session-scoped fixture; a test module declares it as

    @pytest.fixture(scope="session")
    def postgres() -> Iterator[PostgresServer]:
        yield from serve()

One server per test process (each pytest-xdist worker starts its own, on a free port),
shared by every module that uses it: the first use starts it, the end of the session
stops it (the last fixture torn down). Its Unix socket is in the temp dir too, so
nothing outside it is touched.

The server is this process's child, in the foreground (not daemonized by `pg_ctl`),
started `tied_to_us`: a test process killed before its teardown takes the server with
it instead of leaking it.

As root (initdb refuses to run as root) the cluster belongs to the ``postgres`` user
and the server commands run as that user. Without the server binaries (Debian package
``postgresql``, which ``.ci/run`` installs) the tests skip.
"""

from __future__ import annotations

import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Optional

import pytest
from _owned_processes import stop_server, tied_to_us

USER = "tripwire"
DATABASE = "tripwire_test"


def find_bin_dir() -> Optional[Path]:
    """The directory holding `initdb` and `postgres` (newest Debian version first)."""
    found = shutil.which("initdb")
    if found is not None:
        directory = Path(os.path.realpath(found)).parent
        if all((directory / name).exists() for name in _PROGRAMS):
            return directory
    for candidate in sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda path: [int(p) if p.isdigit() else 0 for p in Path(path).parent.name.split(".")],
        reverse=True,
    ):
        if all((Path(candidate) / name).exists() for name in _PROGRAMS):
            return Path(candidate)
    return None


_PROGRAMS = ("initdb", "postgres", "pg_isready", "createdb")
_START_DEADLINE = 60.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class PostgresServer:
    """One running server: where it listens and how to reach its database."""

    def __init__(self, bin_dir: Path, root: Path, run_as: Optional[str]) -> None:
        self.bin_dir = bin_dir
        self.root = root
        self.data = root / "data"
        self.log = root / "server.log"
        self.run_as = run_as
        self.host = "127.0.0.1"
        self.port = 0
        self.user = USER
        self.database = DATABASE
        self.process: Optional[subprocess.Popen[bytes]] = None

    # -- addresses -------------------------------------------------------------------

    def url(self, driver: str = "postgresql+psycopg2") -> str:
        """A SQLAlchemy URL of the test database."""
        return f"{driver}://{self.user}@{self.host}:{self.port}/{self.database}"

    @property
    def dsn(self) -> str:
        """A libpq / asyncpg DSN of the test database."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database}"

    # -- life ------------------------------------------------------------------------

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [*tied_to_us(self.run_as), str(self.bin_dir / argv[0]), *argv[1:]]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if check and result.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(f"{argv[0]} failed: {result.stdout}{result.stderr}\n{log}")
        return result

    def start(self) -> None:
        """initdb (trust auth, no fsync), start on a free port, create the database."""
        self._run(
            "initdb",
            "-D",
            str(self.data),
            "-U",
            self.user,
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        )
        for attempt in range(5):  # another process may take the free port first
            self.port = _free_port()
            with open(self.log, "ab") as log:
                self.process = subprocess.Popen(
                    [
                        *tied_to_us(self.run_as),
                        str(self.bin_dir / "postgres"),
                        "-D", str(self.data),
                        "-p", str(self.port),
                        "-k", str(self.root),
                        "-c", f"listen_addresses={self.host}",
                        "-c", "fsync=off",
                        "-c", "synchronous_commit=off",
                        "-c", "full_page_writes=off",
                    ],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                )  # fmt: skip
            if self._wait_ready():
                break
            self.stop()
            if attempt == 4:
                raise RuntimeError("postgres did not start:\n" + self.log.read_text())
        self._run("createdb", "-h", self.host, "-p", str(self.port), "-U", self.user, self.database)

    def _wait_ready(self) -> bool:
        """Whether the server accepts connections (False: it exited, or the deadline)."""
        deadline = time.monotonic() + _START_DEADLINE
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            ready = self._run("pg_isready", "-h", self.host, "-p", str(self.port), check=False)
            if ready.returncode == 0:
                return True
            time.sleep(0.05)  # polling interval: the server has no "ready" notice
        return False

    def stop(self) -> None:
        """Stop the server (fast shutdown: SIGINT) and wait for it to exit."""
        process, self.process = self.process, None
        stop_server(process, 60, signal.SIGINT)


def _run_as() -> Optional[str]:
    """None when the current user may run the server, else the user to run it as."""
    if os.geteuid() != 0:
        return None
    try:
        import pwd

        pwd.getpwnam("postgres")
    except KeyError:
        pytest.skip("running as root and there is no 'postgres' user to run PostgreSQL as")
    return "postgres"


_server: Optional[PostgresServer] = None
_users = 0


def serve() -> Iterator[PostgresServer]:
    """A PostgreSQL server on 127.0.0.1 with an empty database, for the whole session."""
    global _server, _users
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip(
            "PostgreSQL server binaries (initdb, postgres) not found: "
            "install the Debian package 'postgresql'"
        )
    if _server is None:
        run_as = _run_as()
        root = Path(tempfile.mkdtemp(prefix="tripwire-pg-"))
        if run_as is not None:
            shutil.chown(root, user=run_as)
        server = PostgresServer(bin_dir, root, run_as)
        try:
            server.start()
        except BaseException:
            server.stop()
            shutil.rmtree(root, ignore_errors=True)
            raise
        _server = server
    _users += 1
    try:
        yield _server
    finally:
        _users -= 1
        if _users == 0 and _server is not None:
            server, _server = _server, None
            server.stop()
            shutil.rmtree(server.root, ignore_errors=True)


__all__ = ["PostgresServer", "find_bin_dir", "serve"]
