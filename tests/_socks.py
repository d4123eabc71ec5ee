"""A SOCKS5 proxy on 127.0.0.1 for transport tests: CONNECT only, no authentication.

It records every target it is asked for (`targets`: (address type, host, port))
and relays bytes both ways. `stop()` closes every socket and joins every thread.
"""

from __future__ import annotations

import socket
import struct
import threading
from typing import Any, Optional

_ATYP_NAMES = {1: "ipv4", 3: "domain", 4: "ipv6"}


class Socks5Proxy:
    def __init__(self) -> None:
        self.targets: list[tuple[str, str, int]] = []
        self._lock = threading.Lock()
        self._socks: set[socket.socket] = set()
        self._threads: list[threading.Thread] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._spawn(self._accept_loop)

    @property
    def url(self) -> str:
        return f"socks5://127.0.0.1:{self.port}"

    def __enter__(self) -> Socks5Proxy:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        listener, self._listener = self._listener, None  # type: ignore[assignment]
        if listener is not None:
            _shut(listener)
            listener.close()
        with self._lock:
            socks = list(self._socks)
        for sock in socks:
            _shut(sock)
        for thread in list(self._threads):
            thread.join(10)
        for sock in socks:
            sock.close()

    def _spawn(self, target: Any, *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _track(self, sock: socket.socket) -> None:
        with self._lock:
            self._socks.add(sock)

    def _accept_loop(self) -> None:
        listener = self._listener
        while True:
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            self._track(conn)
            self._spawn(self._serve, conn)

    def _serve(self, conn: socket.socket) -> None:
        try:
            upstream = self._handshake(conn)
        except (OSError, ValueError):
            _shut(conn)
            return
        if upstream is None:
            _shut(conn)
            return
        self._track(upstream)
        self._spawn(_pump, upstream, conn)
        _pump(conn, upstream)

    def _handshake(self, conn: socket.socket) -> Optional[socket.socket]:
        version, count = _read(conn, 2)
        if version != 5:
            raise ValueError("not SOCKS5")
        methods = _read(conn, count)
        if 0 not in methods:
            conn.sendall(b"\x05\xff")
            return None
        conn.sendall(b"\x05\x00")
        version, command, _, atyp = _read(conn, 4)
        if atyp == 1:
            host = socket.inet_ntop(socket.AF_INET, _read(conn, 4))
        elif atyp == 3:
            host = _read(conn, _read(conn, 1)[0]).decode("idna")
        elif atyp == 4:
            host = socket.inet_ntop(socket.AF_INET6, _read(conn, 16))
        else:
            raise ValueError("bad address type")
        (port,) = struct.unpack("!H", _read(conn, 2))
        with self._lock:
            self.targets.append((_ATYP_NAMES[atyp], host, port))
        if command != 1 or host not in ("127.0.0.1", "localhost"):
            conn.sendall(b"\x05\x02\x00\x01\x00\x00\x00\x00\x00\x00")  # not allowed: loopback only
            return None
        upstream = socket.create_connection(("127.0.0.1", port), timeout=10)
        upstream.settimeout(None)
        conn.sendall(b"\x05\x00\x00\x01\x7f\x00\x00\x01" + struct.pack("!H", port))
        return upstream


def _read(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ValueError("connection closed during the handshake")
        data += chunk
    return data


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while True:
            data = source.recv(65536)
            if not data:
                break
            sink.sendall(data)
    except OSError:
        pass
    _shut(sink)


def _shut(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
