"""A client that records every acknowledged insert, with the server and instant of each ack.

It follows the primary by itself (the one writable server that is no replica),
so it needs no proxy; ``through`` pins it to one address instead (a HAProxy
frontend). ``probe`` is the account that looks for the primary when the writing
account is an application user that may not run SHOW SLAVE STATUS. With
``prepare(..., origin=True)`` a trigger stores ``@@server_id`` in each row, so a
test can tell on which server every write landed. ``read_timeout=None`` is the driver default most applications run
with: a client waiting on a frozen master waits for as long as it is frozen,
which is exactly the client that can receive a late acknowledgement.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field

import pymysql

from repman.db import Credential, ServerAddress, connect, execute, query

SCHEMA = "repman_test"
TABLE = f"{SCHEMA}.writes"
# Errors after which an insert certainly did not commit.
NOT_WRITTEN = {1290, 1223, 2003, 1045, 1040, 1205, 1213, 1146, 1049}


@dataclass
class Ack:
    id: int
    at: float           # time.monotonic() when the commit returned
    server: str         # the server the client was connected to (the frontend when routed)
    sent: float = 0.0   # time.monotonic() when the insert was sent


@dataclass
class Writer:
    """One client thread inserting rows one by one into whichever server is the primary."""

    servers: list[ServerAddress]
    credential: Credential
    pause: float = 0.002
    name: str = "w"
    read_timeout: float | None = 30.0
    through: ServerAddress | None = None
    probe: Credential | None = None
    acked: list[Ack] = field(default_factory=list)
    maybe: set[int] = field(default_factory=set)
    errors: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._ids = itertools.count(1)
        self._conn: pymysql.connections.Connection | None = None
        self._where = ""
        self._base = 0
        self._last = 0      # the highest id sent so far (ids are consecutive from base + 1)

    @staticmethod
    def prepare(primary: ServerAddress, credential: Credential, app: Credential | None = None,
                origin: bool = False) -> None:
        """Create the table; ``app`` gets an account without SUPER (read_only stops it, as it stops
        applications); ``origin`` adds the trigger recording the server that executed each insert."""
        with connect(primary, credential) as conn:
            execute(conn, f"CREATE DATABASE IF NOT EXISTS {SCHEMA}")
            execute(conn, f"CREATE TABLE IF NOT EXISTS {TABLE} (id BIGINT PRIMARY KEY, writer VARCHAR(16), "
                          "at DATETIME(6), origin INT NOT NULL DEFAULT 0) ENGINE=InnoDB")
            if origin:
                execute(conn, f"CREATE TRIGGER IF NOT EXISTS {SCHEMA}.writes_origin BEFORE INSERT ON {TABLE} "
                              "FOR EACH ROW SET NEW.origin = @@server_id")
            if app is not None:
                execute(conn, "CREATE USER IF NOT EXISTS %s@'%%' IDENTIFIED BY %s", (app.user, app.password))
                execute(conn, f"GRANT SELECT, INSERT ON {SCHEMA}.* TO %s@'%%'", (app.user,))

    def primary(self) -> ServerAddress | None:
        if self.through is not None:
            return self.through
        for addr in self.servers:
            try:
                with connect(addr, self.probe or self.credential, timeout=0.5, read_timeout=0.5) as conn:
                    ro = int(query(conn, "SELECT @@GLOBAL.read_only AS ro")[0]["ro"])
                    if ro == 0 and not query(conn, "SHOW SLAVE STATUS"):
                        return addr
            except pymysql.MySQLError:
                continue
        return None

    def _connect(self) -> bool:
        addr = self.primary()
        if addr is None:
            return False
        try:
            self._conn = connect(addr, self.credential, timeout=0.5, read_timeout=self.read_timeout)
            self._where = addr.url
            return True
        except pymysql.MySQLError:
            return False

    def _run(self) -> None:
        while not self._stop.is_set():
            if self._conn is None and not self._connect():
                time.sleep(0.005)
                continue
            row = self._base + next(self._ids)
            self._last = row
            sent = time.monotonic()
            try:
                execute(self._conn, f"INSERT INTO {TABLE} (id, writer, at) VALUES (%s, %s, NOW(6))",
                        (row, self.name))
                self.acked.append(Ack(row, time.monotonic(), self._where, sent))
            except pymysql.MySQLError as exc:
                code = exc.args[0] if exc.args else 0
                if code not in NOT_WRITTEN:
                    self.maybe.add(row)
                self.errors.append(f"{self._where}: {code} {exc.args[1] if len(exc.args) > 1 else ''}")
                if self._conn is not None:
                    try:
                        self._conn.close()
                    except Exception:  # noqa: BLE001
                        pass
                self._conn = None
                continue
            if self.pause:
                time.sleep(self.pause)

    def start(self, base: int = 0) -> Writer:
        self._base = base
        self._thread = threading.Thread(target=self._run, name=f"writer-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 60.0) -> None:
        """Stop after the insert in flight; a client without read timeout may wait for its server."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # noqa: BLE001
                pass

    def wait_acks(self, count: int, timeout: float = 30.0) -> None:
        """Block until ``count`` more inserts were acknowledged."""
        target = len(self.acked) + count
        deadline = time.monotonic() + timeout
        while len(self.acked) < target:
            if time.monotonic() > deadline:
                raise AssertionError(f"writer got {len(self.acked)} acks, wanted {target}; last errors "
                                     f"{self.errors[-3:]}")
            time.sleep(0.01)

    def rows(self, address: ServerAddress) -> dict[int, int]:
        """This writer's rows on ``address``: id -> origin (the executing @@server_id, 0 without trigger)."""
        with connect(address, self.probe or self.credential) as conn:
            found = query(conn, f"SELECT id, origin FROM {TABLE} WHERE writer=%s", (self.name,))
        return {int(r["id"]): int(r["origin"]) for r in found}

    def verify(self, address: ServerAddress) -> tuple[set[int], set[int]]:
        """(lost, unexpected) as seen on ``address``."""
        present = set(self.rows(address))
        acked = {a.id for a in self.acked}
        return acked - present, present - acked - self.maybe

    def attempted_ids(self) -> set[int]:
        """Every id sent so far, acknowledged or not: no other id of this writer may ever appear."""
        return set(range(self._base + 1, self._last + 1))

    def longest_gap(self, start: float, end: float) -> float:
        """The longest time without an acknowledgement inside [start, end], edges included.

        Unlike ``gaps`` the window's edges count: a writer silent from ``start`` on shows the
        whole silence even if its next acknowledgement comes after ``end``.
        """
        times = sorted(a.at for a in list(self.acked) if start <= a.at <= end)
        points = [start, *times, end]
        return max(b - a for a, b in zip(points, points[1:]))

    def gaps(self, start: float, end: float) -> float:
        """The longest time without an acknowledged write that overlaps [start, end]."""
        times = [a.at for a in self.acked]
        worst = 0.0
        for before, after in zip(times, times[1:]):
            if after >= start and before <= end:
                worst = max(worst, after - before)
        return worst

    def first_ack_after(self, at: float, server: str | None = None, not_server: str | None = None) -> float | None:
        """The instant of the first acknowledgement after ``at`` (optionally from / not from a server)."""
        for a in self.acked:
            if a.at > at and (server is None or a.server == server) and (not_server is None or a.server != not_server):
                return a.at
        return None

    def first_ack_sent_after(self, at: float) -> float | None:
        """The acknowledgement instant of the first insert sent after ``at`` (any server)."""
        return min((a.at for a in self.acked if a.sent > at), default=None)
