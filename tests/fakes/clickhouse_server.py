"""A real clickhouse-server on 127.0.0.1 (not a fake): started, waited for and stopped.

Debian packages ClickHouse (``clickhouse-server``, which ``.ci/run`` installs), so the
clickhouse-driver tests run against the real server: a minimal configuration (native
protocol only, on a free loopback port, data in a temporary directory, user
``default`` without a password). `start` returns once a native-protocol handshake
succeeds; `find_binary` is None where the package is missing (the tests skip).
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

_START_DEADLINE = 30.0  # seconds for the server to accept a native connection

_CONFIG = """<?xml version="1.0"?>
<yandex>
    <logger><level>warning</level><console>1</console></logger>
    <tcp_port>{port}</tcp_port>
    <listen_host>127.0.0.1</listen_host>
    <path>{data}/data/</path>
    <tmp_path>{data}/tmp/</tmp_path>
    <user_files_path>{data}/user_files/</user_files_path>
    <format_schema_path>{data}/format_schemas/</format_schema_path>
    <users_config>users.xml</users_config>
    <default_profile>default</default_profile>
    <default_database>default</default_database>
    <mark_cache_size>5368709</mark_cache_size>
    <uncompressed_cache_size>8589934</uncompressed_cache_size>
</yandex>
"""

_USERS = """<?xml version="1.0"?>
<yandex>
    <profiles><default></default></profiles>
    <users>
        <default>
            <password></password>
            <networks><ip>127.0.0.1</ip></networks>
            <profile>default</profile>
            <quota>default</quota>
        </default>
    </users>
    <quotas><default></default></quotas>
</yandex>
"""


@dataclass(frozen=True)
class ClickhouseServer:
    """A running clickhouse-server: where it listens."""

    host: str
    port: int
    process: subprocess.Popen[bytes]
    data_dir: Path

    def stop(self) -> None:
        """Terminate the server, wait for it and remove its data."""
        self.process.terminate()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=30)
        shutil.rmtree(self.data_dir, ignore_errors=True)


def find_binary() -> Optional[str]:
    """The clickhouse-server executable, or None."""
    return shutil.which("clickhouse-server") or (
        "/usr/sbin/clickhouse-server" if Path("/usr/sbin/clickhouse-server").exists() else None
    )


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _ready(port: int) -> bool:
    from clickhouse_driver import Client

    client = Client("127.0.0.1", port=port, connect_timeout=1)
    try:
        return bool(client.execute("SELECT 1") == [(1,)])
    except Exception:
        return False
    finally:
        client.disconnect()


def start() -> ClickhouseServer:
    """Start clickhouse-server on a free loopback port; returns once it answers."""
    binary = find_binary()
    if binary is None:
        raise RuntimeError("clickhouse-server is not installed (Debian package clickhouse-server)")
    data_dir = Path(tempfile.mkdtemp(prefix="tripwire-clickhouse-"))
    port = _free_port()
    (data_dir / "config.xml").write_text(_CONFIG.format(port=port, data=data_dir))
    (data_dir / "users.xml").write_text(_USERS)
    process = subprocess.Popen(
        [binary, f"--config-file={data_dir / 'config.xml'}"],
        cwd=data_dir,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = ClickhouseServer("127.0.0.1", port, process, data_dir)
    deadline = time.monotonic() + _START_DEADLINE
    while time.monotonic() < deadline:
        if process.poll() is not None:
            server.stop()
            raise RuntimeError(f"clickhouse-server exited with status {process.returncode}")
        if _ready(port):
            return server
        time.sleep(0.05)  # polling interval, bounded by the deadline
    server.stop()
    raise RuntimeError(f"clickhouse-server did not answer within {_START_DEADLINE:.0f} s")
