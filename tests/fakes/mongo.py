"""A loopback MongoDB wire-protocol server, small enough to read, for the real pymongo.

MongoDB has no Debian package, so the pymongo tests talk to this instead: it speaks
the wire protocol pymongo uses (OP_MSG, and OP_QUERY / OP_REPLY for a legacy
handshake), as a standalone server of wire version 21 (MongoDB 7.0) with sessions.
Commands: ``hello`` / ``isMaster``, ``ping``, ``buildInfo``, ``endSessions``,
``insert``, ``find`` (equality filters, one batch), ``delete`` and ``drop``; anything
else answers ``ok: 0`` (CommandNotFound), which pymongo reports as a failed command.
"""

from __future__ import annotations

import datetime
import socketserver
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import bson

OP_REPLY = 1
OP_QUERY = 2004
OP_MSG = 2013
_HEADER = struct.Struct("<iiii")

_HELLO = {
    "ismaster": True,
    "isWritablePrimary": True,
    "maxBsonObjectSize": 16 * 1024 * 1024,
    "maxMessageSizeBytes": 48_000_000,
    "maxWriteBatchSize": 100_000,
    "logicalSessionTimeoutMinutes": 30,
    "connectionId": 1,
    "minWireVersion": 0,
    "maxWireVersion": 21,
    "readOnly": False,
    "ok": 1.0,
}


def _matches(doc: dict[str, Any], query: dict[str, Any]) -> bool:
    return all(doc.get(key) == value for key, value in query.items())


class _Handler(socketserver.BaseRequestHandler):
    server: MongoServer

    def handle(self) -> None:
        sock = self.request
        while True:
            head = _read(sock, 16)
            if head is None:
                return
            length, request_id, _, opcode = _HEADER.unpack(head)
            body = _read(sock, length - 16)
            if body is None:
                return
            if opcode == OP_MSG:
                reply = self._op_msg(body)
                payload = struct.pack("<I", 0) + b"\x00" + bson.encode(reply)
                out_opcode = OP_MSG
            elif opcode == OP_QUERY:
                reply = self._op_query(body)
                payload = struct.pack("<iqii", 0, 0, 0, 1) + bson.encode(reply)
                out_opcode = OP_REPLY
            else:
                return
            sock.sendall(_HEADER.pack(16 + len(payload), 0, request_id, out_opcode) + payload)

    def _op_query(self, body: bytes) -> dict[str, Any]:
        name_end = body.index(b"\x00", 4)
        query = bson.decode(_first_doc(body[name_end + 9 :]))
        return self.server.command(query)

    def _op_msg(self, body: bytes) -> dict[str, Any]:
        (flags,) = struct.unpack_from("<I", body)
        end = len(body) - (4 if flags & 1 else 0)  # checksumPresent
        pos = 4
        command: dict[str, Any] = {}
        while pos < end:
            kind = body[pos]
            pos += 1
            if kind == 0:
                (size,) = struct.unpack_from("<i", body, pos)
                command.update(bson.decode(body[pos : pos + size]))
                pos += size
            else:  # kind 1: a document sequence, e.g. insert's "documents"
                (size,) = struct.unpack_from("<i", body, pos)
                section = body[pos + 4 : pos + size]
                name_end = section.index(b"\x00")
                name = section[:name_end].decode()
                command[name] = bson.decode_all(section[name_end + 1 :])
                pos += size
        return self.server.command(command)


def _first_doc(data: bytes) -> bytes:
    (size,) = struct.unpack_from("<i", data)
    return data[:size]


def _read(sock: Any, n: int) -> bytes | None:
    chunks = []
    while n:
        chunk = sock.recv(n)
        if not chunk:
            return None
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


class MongoServer(socketserver.ThreadingTCPServer):
    """The fake server: ``collections[(db, name)]`` hold the documents inserted."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.collections: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.commands: list[str] = []
        self.lock = threading.Lock()
        self.thread = threading.Thread(target=self.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        port: int = self.server_address[1]
        return port

    def command(self, cmd: dict[str, Any]) -> dict[str, Any]:
        name = next(iter(cmd))
        lowered = name.lower()
        db = cmd.get("$db", "admin")
        if lowered in ("hello", "ismaster"):
            return {**_HELLO, "localTime": datetime.datetime.now(datetime.timezone.utc)}
        with self.lock:
            self.commands.append(name)
            if lowered in ("ping", "endsessions"):
                return {"ok": 1.0}
            if lowered == "buildinfo":
                return {"version": "7.0.0", "versionArray": [7, 0, 0, 0], "ok": 1.0}
            docs = self.collections.setdefault((db, str(cmd[name])), [])
            if name == "insert":
                docs.extend(cmd.get("documents", []))
                return {"n": len(cmd.get("documents", [])), "ok": 1.0}
            if name == "find":
                found = [d for d in docs if _matches(d, cmd.get("filter") or {})]
                limit = cmd.get("limit") or len(found)
                cursor = {
                    "id": bson.Int64(0),
                    "ns": f"{db}.{cmd[name]}",
                    "firstBatch": found[:limit],
                }
                return {"cursor": cursor, "ok": 1.0}
            if name == "delete":
                removed = 0
                for spec in cmd.get("deletes", []):
                    keep = [d for d in docs if not _matches(d, spec["q"])]
                    removed += len(docs) - len(keep)
                    docs[:] = keep
                return {"n": removed, "ok": 1.0}
            if name == "drop":
                del self.collections[(db, str(cmd[name]))]
                return {"ok": 1.0}
        return {
            "ok": 0.0,
            "errmsg": f"no such command: '{name}'",
            "code": 59,
            "codeName": "CommandNotFound",
        }


@contextmanager
def serving() -> Iterator[MongoServer]:
    """A started `MongoServer`, shut down and joined on exit."""
    srv = MongoServer()
    srv.thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        srv.thread.join()
