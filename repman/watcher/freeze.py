"""Freezing an old master so that no client write can commit on it any more.

``read_only`` stops ordinary users at once but not those with SUPER / READ ONLY
ADMIN, so the freeze also kills the remaining client threads and holds
``FLUSH TABLES WITH READ LOCK`` on one connection that the switchover keeps open
until the server is a replica. Anything that committed before the lock is in the
final GTID position, which the candidate then reaches: nothing acknowledged is left
behind, and nothing can commit afterwards.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable

import pymysql

from repman.db import ServerAddress, connect, execute, query
from repman.errors import OperationRefused
from repman.watcher.cluster_config import ClusterConfig
from repman.watcher.oplog import OpLog, error_text

# Threads that are not clients: replication in both directions, daemons, our own.
_NOT_CLIENTS = (
    "SELECT ID, COMMAND, TIME_MS FROM information_schema.PROCESSLIST "
    "WHERE ID <> CONNECTION_ID() AND USER NOT IN ('system user', 'event_scheduler') "
    "AND COMMAND NOT IN ('Binlog Dump', 'Binlog Dump GTID', 'Daemon', 'Killed') "
    "AND COMMAND NOT LIKE 'Slave%%'"
)


# Writes are blocked while the freeze drains: poll often (a statement usually ends in a ms).
DRAIN_POLL_S = 0.002


@dataclass
class Frozen:
    """A master under freeze; ``conn`` holds the global read lock."""

    address: ServerAddress
    conn: pymysql.connections.Connection
    read_only_before: bool
    max_connections_before: int
    scheduler_before: str
    final_pos: str = ""
    killed: list[int] = field(default_factory=list)


def client_threads(conn: pymysql.connections.Connection) -> list[dict[str, Any]]:
    return query(conn, _NOT_CLIENTS)


def kill_clients(conn: pymysql.connections.Connection) -> list[int]:
    """KILL every client connection except replication threads and this one."""
    killed = []
    for row in client_threads(conn):
        try:
            execute(conn, f"KILL CONNECTION {int(row['ID'])}")
            killed.append(int(row["ID"]))
        except pymysql.err.OperationalError as exc:
            if not exc.args or exc.args[0] != 1094:   # unknown thread: it ended meanwhile
                raise
        except pymysql.err.InternalError:
            pass
    return killed


def drain(conn: pymysql.connections.Connection, budget_s: float) -> tuple[bool, int]:
    """Wait up to ``budget_s`` for the statements running now to finish.

    Only statements already running at the start are waited for: a client that
    keeps sending new ones would otherwise hold the switchover for the whole budget.
    Returns (drained, statements still running).
    """
    started = time.monotonic()
    first = {int(r["ID"]): float(r["TIME_MS"] or 0) for r in client_threads(conn) if r["COMMAND"] == "Query"}
    while first:
        elapsed_ms = (time.monotonic() - started) * 1000.0
        now = {int(r["ID"]): float(r["TIME_MS"] or 0) for r in client_threads(conn) if r["COMMAND"] == "Query"}
        # Still the same statement when its age covers the time we waited.
        first = {i: t for i, t in first.items() if i in now and now[i] >= t + elapsed_ms - 50}
        if not first:
            break
        if time.monotonic() - started >= budget_s:
            return False, len(first)
        time.sleep(DRAIN_POLL_S)
    return True, 0


def freeze(cfg: ClusterConfig, address: ServerAddress, op: OpLog,
           conn: pymysql.connections.Connection | None = None) -> Frozen:
    """Stop writes on ``address`` and return it locked with its final GTID position.

    ``conn`` (opened earlier, with a read timeout above switchover-wait-kill plus
    switchover-wait-trx) is taken over: it holds the lock until the demotion closes it.
    On any failure the server is unfrozen again and ``OperationRefused`` raised.
    """
    wait_kill = cfg.integer("switchover-wait-kill") / 1000.0
    lock_wait = max(1, int(round(cfg.seconds("switchover-wait-trx"))))
    if conn is None:
        conn = connect(address, cfg.admin, timeout=2, read_timeout=freeze_read_timeout(cfg))
    row = query(conn, "SELECT @@GLOBAL.read_only AS ro, @@GLOBAL.max_connections AS mc, "
                      "@@GLOBAL.event_scheduler AS es")[0]
    frozen = Frozen(address, conn, bool(int(row["ro"])), int(row["mc"]), str(row["es"]))
    try:
        execute(conn, f"SET SESSION lock_wait_timeout = {lock_wait}")
        if frozen.scheduler_before.upper() == "ON":
            execute(conn, "SET GLOBAL event_scheduler = OFF")
        execute(conn, "SET GLOBAL read_only = ON")
        drained, left = drain(conn, wait_kill)
        if not drained:
            op.say(f"{left} statement(s) still running on {address.url} after switchover-wait-kill "
                   f"{wait_kill * 1000:.0f}ms: killing them")
        if cfg.flag("switchover-decrease-max-conn"):
            value = cfg.integer("switchover-decrease-max-conn-value")
            execute(conn, f"SET GLOBAL max_connections = {value}")
        frozen.killed = kill_clients(conn)
        execute(conn, "FLUSH TABLES WITH READ LOCK")
        frozen.final_pos = str(query(conn, "SELECT @@GLOBAL.gtid_binlog_pos AS p")[0]["p"] or "")
    except pymysql.MySQLError as exc:
        unfreeze(cfg, frozen)
        raise OperationRefused(f"could not freeze {address.url}: {error_text(exc)}") from None
    op.say(f"froze {address.url} at {frozen.final_pos or 'empty GTID'} "
           f"(read_only, {len(frozen.killed)} client thread(s) killed, global read lock)")
    return frozen


def freeze_read_timeout(cfg: ClusterConfig) -> float:
    wait_kill = cfg.integer("switchover-wait-kill") / 1000.0
    return max(30.0, wait_kill + cfg.seconds("switchover-wait-trx") + 10)


def unfreeze(cfg: ClusterConfig, frozen: Frozen) -> None:
    """Undo a freeze: the server is the master again, as before."""
    conn = frozen.conn
    try:
        if not conn.open:
            conn = connect(frozen.address, cfg.admin, timeout=2)
        execute(conn, "UNLOCK TABLES")
        execute(conn, f"SET GLOBAL max_connections = {frozen.max_connections_before}")
        execute(conn, f"SET GLOBAL read_only = {'ON' if frozen.read_only_before else 'OFF'}")
        if frozen.scheduler_before.upper() == "ON":
            execute(conn, "SET GLOBAL event_scheduler = ON")
    finally:
        try:
            conn.close()
        except pymysql.MySQLError:
            pass


def fence(cfg: ClusterConfig, address: ServerAddress, log: Callable[[str], None] | None = None) -> bool:
    """Make a server that must not take writes read-only and drop its clients.

    Used when a server is seen writable while another primary exists. Returns True
    when it had been writable.
    """
    with connect(address, cfg.admin, timeout=2, read_timeout=5) as conn:
        was_writable = not bool(int(query(conn, "SELECT @@GLOBAL.read_only AS ro")[0]["ro"]))
        # Clients first: setting read_only waits behind a commit that waits for a semi-sync
        # acknowledgement (forever, without fallback); killing its client interrupts it, and
        # the client gets an error, never an acknowledgement.
        killed = kill_clients(conn) if was_writable else []
        execute(conn, "SET GLOBAL read_only = ON")
        if was_writable:
            killed += kill_clients(conn)
            if log is not None:
                log(f"fenced {address.url}: it was writable while another server is the master; "
                    f"set read_only and killed {len(killed)} client thread(s)")
        return was_writable
