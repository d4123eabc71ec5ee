"""A real MariaDB (MySQL protocol) for the tests: a temp data dir, served on 127.0.0.1.

`serve()` is the body of a session-scoped fixture, as `_postgres_server.serve`:
one server per test process on a free port, stopped when its last user is done.
Networking is on 127.0.0.1 only; the socket and pid file are in the temp dir. As root
the server runs as the ``mysql`` user; it is started `tied_to_us`, so a test process killed
before its teardown takes it along. Without the server binaries
(Debian package ``mariadb-server``) the tests skip.
"""

from __future__ import annotations

import os
import shutil
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


def _binary(name: str) -> Optional[str]:
    """The path of a MariaDB program (the server lives in /usr/sbin, maybe not on PATH)."""
    found = shutil.which(name)
    if found is None:
        for directory in ("/usr/sbin", "/usr/bin"):
            if os.access(f"{directory}/{name}", os.X_OK):
                return f"{directory}/{name}"
    return found


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class MySQLServer:
    """One running server: where it listens and its database."""

    def __init__(self, root: Path, run_as: Optional[str]) -> None:
        self.root = root
        self.data = root / "data"
        self.socket = root / "mysqld.sock"
        self.log = root / "server.log"
        self.run_as = run_as
        self.host = "127.0.0.1"
        self.port = 0
        self.user = USER
        self.database = DATABASE
        self.process: Optional[subprocess.Popen[bytes]] = None

    def _client(self, sql: str) -> None:
        result = subprocess.run(
            [_binary("mariadb") or "mariadb", f"--socket={self.socket}", "-uroot", "-e", sql],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        if result.returncode != 0:
            raise RuntimeError(f"mariadb client failed: {result.stderr}")

    def start(self) -> None:
        """Install the system tables, start on a free port, create the user and database."""
        install = [
            _binary("mariadb-install-db") or "mariadb-install-db",
            "--no-defaults",
            f"--datadir={self.data}",
            "--auth-root-authentication-method=socket",
            "--skip-test-db",
        ]
        if self.run_as is not None:
            install.append(f"--user={self.run_as}")
        result = subprocess.run(install, capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"mariadb-install-db failed: {result.stdout}{result.stderr}")
        for attempt in range(5):  # another process may take the free port first
            self.port = _free_port()
            command = [
                _binary("mariadbd") or "mariadbd",
                "--no-defaults",
                f"--datadir={self.data}",
                f"--socket={self.socket}",
                f"--pid-file={self.root / 'mysqld.pid'}",
                f"--port={self.port}",
                f"--bind-address={self.host}",
                f"--log-error={self.log}",
                "--skip-log-bin",
                "--innodb-flush-log-at-trx-commit=0",
                "--innodb-buffer-pool-size=16M",
            ]
            self.process = subprocess.Popen(
                [*tied_to_us(self.run_as), *command],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if self._wait_ready():
                break
            self.stop()
            if attempt == 4:
                raise RuntimeError(
                    "mariadbd did not start: " + self.log.read_text(errors="replace")
                )
        self._client(
            f"CREATE DATABASE {self.database}; "
            f"CREATE USER '{self.user}'@'127.0.0.1' IDENTIFIED BY ''; "
            f"GRANT ALL ON {self.database}.* TO '{self.user}'@'127.0.0.1';"
        )

    def _wait_ready(self) -> bool:
        # Readiness is polled (the server has no "ready" notice for a child process).
        for _ in range(600):
            if self.process is None or self.process.poll() is not None:
                return False
            try:
                with socket.create_connection((self.host, self.port), timeout=1):
                    pass
            except OSError:
                time.sleep(0.05)
                continue
            return self.socket.exists()
        return False

    def stop(self) -> None:
        """Stop the server and wait for it to exit."""
        process, self.process = self.process, None
        stop_server(process, 60)


def _run_as() -> Optional[str]:
    if os.geteuid() != 0:
        return None
    try:
        import pwd

        pwd.getpwnam("mysql")
    except KeyError:
        pytest.skip("running as root and there is no 'mysql' user to run MariaDB as")
    return "mysql"


_server: Optional[MySQLServer] = None
_users = 0


def serve() -> Iterator[MySQLServer]:
    """A MariaDB server on 127.0.0.1 with an empty database, for the whole session."""
    global _server, _users
    if _binary("mariadbd") is None or _binary("mariadb-install-db") is None:
        pytest.skip(
            "MariaDB server binaries not found: install the Debian package 'mariadb-server'"
        )
    if _server is None:
        run_as = _run_as()
        root = Path(tempfile.mkdtemp(prefix="tripwire-mysql-"))
        if run_as is not None:
            shutil.chown(root, user=run_as)
        server = MySQLServer(root, run_as)
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


__all__ = ["MySQLServer", "serve"]
