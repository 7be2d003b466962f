"""A Jepsen-style writer and reader that reach the cluster only through a proxy port.

The writer inserts increasing ids one per autocommit statement and records which were
acknowledged; on any error it reconnects and goes on with a new id (the failed one is
"uncertain": it may or may not have committed). A trigger on the table stores
``@@server_id`` of the server that executed each insert, so a test can tell where
every write landed. Not a stand-in: it drives real servers through real HAProxy.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import pymysql

from repman.db import Credential, ServerAddress, execute

SCHEMA = (
    "CREATE DATABASE IF NOT EXISTS app",
    "CREATE TABLE IF NOT EXISTS app.w (id BIGINT PRIMARY KEY, origin INT NOT NULL DEFAULT 0, "
    "at DOUBLE NOT NULL DEFAULT 0)",
    "CREATE TRIGGER IF NOT EXISTS app.w_origin BEFORE INSERT ON app.w FOR EACH ROW SET NEW.origin = @@server_id",
)


def create_schema(conn: pymysql.connections.Connection, app: Credential) -> None:
    """Table, origin trigger and an application user without SUPER (read_only stops it)."""
    for sql in SCHEMA:
        execute(conn, sql)
    execute(conn, f"CREATE USER IF NOT EXISTS '{app.user}'@'%' IDENTIFIED BY '{app.password}'")
    execute(conn, f"GRANT SELECT, INSERT ON app.* TO '{app.user}'@'%'")


@dataclass
class Write:
    id: int
    started: float
    acked: float | None = None       # monotonic time of the acknowledgement


@dataclass
class Writer:
    proxy: ServerAddress
    credential: Credential
    writes: list[Write] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    pause: float = 0.0
    first_id: int = 1

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="proxy-writer")
        self._lock = threading.Lock()

    def target(self) -> ServerAddress:
        """Where the next connection goes: the proxy (a subclass may pick a server itself)."""
        return self.proxy

    def start(self) -> Writer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def _connect(self) -> pymysql.connections.Connection:
        target = self.target()
        return pymysql.connect(ssl_disabled=True, host=target.host, port=target.port, user=self.credential.user,
                               password=self.credential.password, autocommit=True,
                               connect_timeout=2, read_timeout=15, write_timeout=15)

    def _run(self) -> None:
        conn = None
        next_id = self.first_id
        while not self._stop.is_set():
            w = Write(next_id, time.monotonic())
            next_id += 1
            with self._lock:
                self.writes.append(w)
            try:
                if conn is None:
                    conn = self._connect()
                with conn.cursor() as cur:
                    cur.execute("INSERT INTO app.w (id, at) VALUES (%s, UNIX_TIMESTAMP(NOW(6)))", (w.id,))
                w.acked = time.monotonic()
                if self.pause:
                    time.sleep(self.pause)
            except pymysql.MySQLError as exc:
                with self._lock:
                    self.errors.append(f"{time.monotonic():.3f} {exc.args[-1] if exc.args else exc}")
                if conn is not None:
                    try:
                        conn.close()
                    except Exception:  # noqa: BLE001 - already broken
                        pass
                conn = None
                time.sleep(0.005)
        if conn is not None:
            conn.close()

    # -- views --------------------------------------------------------------------------
    def acked(self) -> list[Write]:
        with self._lock:
            return [w for w in self.writes if w.acked is not None]

    def acked_count(self) -> int:
        return len(self.acked())

    def attempted_ids(self) -> set[int]:
        with self._lock:
            return {w.id for w in self.writes}

    def wait_acked(self, more: int, timeout: float = 60.0) -> None:
        target = self.acked_count() + more
        deadline = time.monotonic() + timeout
        while self.acked_count() < target:
            if time.monotonic() > deadline:
                raise AssertionError(f"writer stalled: {self.acked_count()} acked, wanted {target}; "
                                     f"last errors {self.errors[-3:]}")
            time.sleep(0.01)

    def longest_gap(self, start: float, end: float) -> float:
        """Longest time without any acknowledgement within [start, end] (seconds)."""
        times = sorted(w.acked for w in self.acked() if start <= w.acked <= end)  # type: ignore[operator]
        points = [start, *times, end]
        return max(b - a for a, b in zip(points, points[1:]))


@dataclass
class Reader:
    """Opens a fresh connection through the read port in a loop and records the backend port."""

    proxy: ServerAddress
    credential: Credential
    seen: list[tuple[float, int]] = field(default_factory=list)
    failures: int = 0

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="proxy-reader")

    def start(self) -> Reader:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(30)

    def _run(self) -> None:
        while not self._stop.is_set():
            t = time.monotonic()
            try:
                conn = pymysql.connect(ssl_disabled=True, host=self.proxy.host, port=self.proxy.port,
                                       user=self.credential.user, password=self.credential.password,
                                       connect_timeout=2, read_timeout=5)
                try:
                    with conn.cursor() as cur:
                        cur.execute("SELECT @@port")
                        self.seen.append((t, int(cur.fetchone()[0])))
                finally:
                    conn.close()
            except pymysql.MySQLError:
                self.failures += 1
            time.sleep(0.01)

    def ports_since(self, since: float) -> set[int]:
        return {p for t, p in list(self.seen) if t >= since}
