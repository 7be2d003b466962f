"""Recording stand-in for a MySQL-protocol admin endpoint (ProxySQL's admin port).

ProxySQL cannot run here. This small server speaks just enough of the MySQL client/server
protocol for pymysql: the v10 handshake (any password is accepted), COM_QUERY answered by
an OK packet, an error, or a small text result set, COM_PING and COM_QUIT. It records every
statement so tests can check the exact SQL a router sends. It does not execute anything.
"""

from __future__ import annotations

import os
import re
import socket
import struct
import threading
from dataclasses import dataclass
from typing import Callable, Sequence

CAPABILITIES = (
    0x00000001      # LONG_PASSWORD
    | 0x00000008    # CONNECT_WITH_DB
    | 0x00000200    # PROTOCOL_41
    | 0x00002000    # TRANSACTIONS
    | 0x00008000    # SECURE_CONNECTION
    | 0x00010000    # MULTI_STATEMENTS
    | 0x00020000    # MULTI_RESULTS
    | 0x00080000    # PLUGIN_AUTH
)
STATUS_AUTOCOMMIT = 0x0002


@dataclass
class ResultSet:
    columns: Sequence[str]
    rows: Sequence[Sequence[object]] = ()


@dataclass
class Error:
    code: int
    message: str


Answer = ResultSet | Error | None
Responder = Callable[[str], Answer]


@dataclass
class Statement:
    connection: int
    user: str
    sql: str


def _lenenc_int(n: int) -> bytes:
    if n < 251:
        return bytes([n])
    if n < 1 << 16:
        return b"\xfc" + struct.pack("<H", n)
    if n < 1 << 24:
        return b"\xfd" + struct.pack("<I", n)[:3]
    return b"\xfe" + struct.pack("<Q", n)


def _lenenc_str(b: bytes) -> bytes:
    return _lenenc_int(len(b)) + b


class _Conn:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""

    def _read(self, n: int) -> bytes:
        while len(self.buf) < n:
            data = self.sock.recv(65536)
            if not data:
                raise ConnectionError("client closed")
            self.buf += data
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_packet(self) -> tuple[int, bytes]:
        head = self._read(4)
        length = head[0] | head[1] << 8 | head[2] << 16
        return head[3], self._read(length)

    def send(self, seq: int, payload: bytes) -> None:
        self.sock.sendall(struct.pack("<I", len(payload))[:3] + bytes([seq & 0xFF]) + payload)


def _ok(affected: int = 0) -> bytes:
    return b"\x00" + _lenenc_int(affected) + _lenenc_int(0) + struct.pack("<HH", STATUS_AUTOCOMMIT, 0)


def _eof() -> bytes:
    return b"\xfe" + struct.pack("<HH", 0, STATUS_AUTOCOMMIT)


def _err(code: int, message: str) -> bytes:
    return b"\xff" + struct.pack("<H", code) + b"#HY000" + message.encode()


def _column(name: str) -> bytes:
    return (_lenenc_str(b"def") + _lenenc_str(b"") + _lenenc_str(b"") + _lenenc_str(b"")
            + _lenenc_str(name.encode()) + _lenenc_str(name.encode()) + b"\x0c"
            + struct.pack("<HIBHB", 33, 1024, 0xFD, 0, 0) + b"\x00\x00")


class RecordingMySQLServer:
    """Listens on 127.0.0.1; ``statements`` holds every COM_QUERY in arrival order."""

    def __init__(self, responder: Responder | None = None, version: str = "5.5.30 (recording stand-in)") -> None:
        self.responder = responder or (lambda sql: None)
        self.version = version
        self.statements: list[Statement] = []
        self.logins: list[str] = []
        self._lock = threading.Lock()
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port = self._listener.getsockname()[1]
        self._next_id = 1
        self._closed = False
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    # -- recording ---------------------------------------------------------------------
    def sql(self) -> list[str]:
        with self._lock:
            return [s.sql for s in self.statements]

    def clear(self) -> None:
        with self._lock:
            self.statements.clear()

    # -- serving -----------------------------------------------------------------------
    def _serve(self) -> None:
        while not self._closed:
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                conn_id, self._next_id = self._next_id, self._next_id + 1
            threading.Thread(target=self._session, args=(sock, conn_id), daemon=True).start()

    def _handshake(self, conn: _Conn, conn_id: int) -> str:
        salt = os.urandom(20).replace(b"\x00", b"\x01")
        payload = (b"\x0a" + self.version.encode() + b"\x00" + struct.pack("<I", conn_id) + salt[:8] + b"\x00"
                   + struct.pack("<H", CAPABILITIES & 0xFFFF) + bytes([33]) + struct.pack("<H", STATUS_AUTOCOMMIT)
                   + struct.pack("<H", CAPABILITIES >> 16) + bytes([21]) + b"\x00" * 10 + salt[8:] + b"\x00"
                   + b"mysql_native_password\x00")
        conn.send(0, payload)
        seq, response = conn.read_packet()
        user = response[32:].split(b"\x00", 1)[0].decode(errors="replace")
        conn.send(seq + 1, _ok())
        return user

    def _session(self, sock: socket.socket, conn_id: int) -> None:
        conn = _Conn(sock)
        try:
            user = self._handshake(conn, conn_id)
            with self._lock:
                self.logins.append(user)
            while True:
                _, packet = conn.read_packet()
                command, body = packet[0], packet[1:]
                if command == 0x01:          # COM_QUIT
                    return
                if command != 0x03:          # COM_PING, COM_INIT_DB, ...: fine
                    conn.send(1, _ok())
                    continue
                sql = body.decode(errors="replace")
                with self._lock:
                    self.statements.append(Statement(conn_id, user, sql))
                self._answer(conn, self.responder(sql))
        except (ConnectionError, OSError):
            pass
        finally:
            sock.close()

    @staticmethod
    def _answer(conn: _Conn, answer: Answer) -> None:
        if answer is None:
            conn.send(1, _ok())
        elif isinstance(answer, Error):
            conn.send(1, _err(answer.code, answer.message))
        else:
            seq = 1
            conn.send(seq, _lenenc_int(len(answer.columns)))
            for name in answer.columns:
                seq += 1
                conn.send(seq, _column(name))
            seq += 1
            conn.send(seq, _eof())
            for row in answer.rows:
                seq += 1
                conn.send(seq, b"".join(b"\xfb" if v is None else _lenenc_str(str(v).encode()) for v in row))
            conn.send(seq + 1, _eof())

    def close(self) -> None:
        self._closed = True
        try:
            self._listener.close()
        except OSError:
            pass


def table_responder(rules: Sequence[tuple[str, Answer]]) -> Responder:
    """First rule whose regex matches the statement (case-insensitive) answers; else OK."""
    compiled = [(re.compile(p, re.I), a) for p, a in rules]

    def respond(sql: str) -> Answer:
        for pattern, answer in compiled:
            if pattern.search(sql):
                return answer
        return None
    return respond
