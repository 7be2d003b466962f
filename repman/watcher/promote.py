"""Replication moves shared by switchover, failover and rejoin.

Promote a replica, point a server at a master by GTID, wait for a position,
set the semi-sync roles. Each opens its own short connection: the moves of one
operation run in parallel threads.
"""

from __future__ import annotations

import time

import pymysql

from repman.bootstrap import change_master_sql, replica_net_timeout, replica_tls_ca
from repman.db import ServerAddress, connect, execute, execute_unlogged, query
from repman.gtid import Gtid, GtidPosition
from repman.topology import read_replica_status
from repman.watcher.cluster_config import ClusterConfig

CONNECT_RETRY = 1


def semisync_roles(conn: pymysql.connections.Connection, cfg: ClusterConfig, master: bool) -> None:
    """Master side on the primary only, replica side on the others; off when semisync is off.

    A demoted master left with the master side on waits ``rpl_semi_sync_master_timeout``
    on its first binlogged event, stalling its replication.
    """
    on = cfg.flag("semisync")
    wanted: list[tuple[str, bool]] = []
    if on:
        wanted = [("rpl_semi_sync_master_enabled", master), ("rpl_semi_sync_slave_enabled", not master)]
    elif not master:
        wanted = [("rpl_semi_sync_master_enabled", False)]   # unmanaged: only never a replica as master
    for name, value in wanted:
        try:
            execute(conn, f"SET GLOBAL {name} = {'ON' if value else 'OFF'}")
        except pymysql.err.OperationalError as exc:
            if on or (exc.args and exc.args[0] != 1193):   # unknown variable: plugin absent
                raise


def wait_gtid(address: ServerAddress, cfg: ClusterConfig, position: str, timeout: float,
              conn: pymysql.connections.Connection | None = None) -> bool:
    """True when ``address`` has applied ``position`` within ``timeout`` seconds."""
    if not position:
        return True
    if conn is not None:
        res = query(conn, "SELECT MASTER_GTID_WAIT(%s, %s) AS w", (position, float(timeout)))[0]["w"]
        return res is not None and int(res) == 0
    with connect(address, cfg.admin, timeout=2, read_timeout=timeout + 10) as own:
        return wait_gtid(address, cfg, position, timeout, own)


def applied_pos(address: ServerAddress, cfg: ClusterConfig) -> str:
    with connect(address, cfg.admin, timeout=2) as conn:
        return str(query(conn, "SELECT @@GLOBAL.gtid_current_pos AS p")[0]["p"] or "")


def point_at(conn: pymysql.connections.Connection, cfg: ClusterConfig, master: ServerAddress,
             slave_pos: str | None = None) -> None:
    """CHANGE MASTER to ``master`` by GTID (replication stopped); ``slave_pos`` resets the start."""
    execute(conn, "STOP SLAVE")
    if slave_pos is not None:
        execute(conn, "SET GLOBAL gtid_slave_pos = %s", (slave_pos,))
    heartbeat = cfg.seconds("replication-heartbeat-period")
    execute(conn, f"SET GLOBAL slave_net_timeout = {replica_net_timeout(heartbeat)}")
    sql, args = change_master_sql(master, cfg.replication, heartbeat,
                                  CONNECT_RETRY, replica_tls_ca(conn, cfg.flag("replication-use-ssl")))
    execute_unlogged(conn, sql, args)


def set_event_scheduler(conn: pymysql.connections.Connection, on: bool) -> str:
    """Turn the event scheduler on (a new master) or off (a replica: events run on the master only).

    Returns "" when done, else why not (a server started with ``event_scheduler=DISABLED``
    cannot turn it on; off it already is).
    """
    try:
        execute(conn, f"SET GLOBAL event_scheduler = {'ON' if on else 'OFF'}")
    except pymysql.err.MySQLError as exc:
        if exc.args and exc.args[0] == 1290:          # --event-scheduler=DISABLED
            return "" if not on else "it was started with event_scheduler=DISABLED"
        raise
    return ""


def start_event_scheduler(cfg: ClusterConfig, address: ServerAddress) -> str:
    """On the new master after its promotion; returns a sentence for the operation log."""
    try:
        with connect(address, cfg.admin, timeout=2) as conn:
            why = set_event_scheduler(conn, True)
    except pymysql.MySQLError as exc:           # the promotion stands; say what is missing
        why = f"{exc.args[0]}: {exc.args[1]}" if len(exc.args) >= 2 else str(exc)
    if why:
        return f"event scheduler not started on {address.url}: {why}"
    return f"event scheduler started on {address.url} (it ran on the old master)"


def finish_replica(conn: pymysql.connections.Connection, cfg: ClusterConfig) -> None:
    """Semi-sync replica side, event scheduler off, START SLAVE, read_only per ``failover-readonly-state``."""
    semisync_roles(conn, cfg, master=False)
    set_event_scheduler(conn, False)
    execute(conn, "START SLAVE")
    readonly = cfg.flag("failover-readonly-state")
    execute(conn, f"SET GLOBAL read_only = {'ON' if readonly else 'OFF'}")


def promote(cfg: ClusterConfig, address: ServerAddress, open_writes: bool = True,
            conn: pymysql.connections.Connection | None = None) -> str:
    """Make ``address`` a standalone primary; returns its GTID position at promotion."""
    if conn is None:
        with connect(address, cfg.admin, timeout=2, read_timeout=30) as own:
            return promote(cfg, address, open_writes, own)
    execute(conn, "STOP SLAVE")
    execute(conn, "RESET SLAVE ALL")
    semisync_roles(conn, cfg, master=True)
    if open_writes:
        execute(conn, "SET GLOBAL read_only = OFF")
    return str(query(conn, "SELECT @@GLOBAL.gtid_current_pos AS p")[0]["p"] or "")


def open_writes(cfg: ClusterConfig, address: ServerAddress) -> None:
    with connect(address, cfg.admin, timeout=2) as conn:
        execute(conn, "SET GLOBAL read_only = OFF")


def repoint(cfg: ClusterConfig, address: ServerAddress, master: ServerAddress,
            catch_up: str = "", wait: float = 0.0) -> str:
    """Re-point a replica at ``master``; first let it reach ``catch_up`` when asked.

    With GTID the wait is not needed for safety (the new master's binlog holds every
    event the replica lacks) but keeps its relay log from being thrown away half read.
    Returns a short sentence for the operation's log.
    """
    note = ""
    if catch_up and wait > 0:
        if not wait_gtid(address, cfg, catch_up, wait):
            note = f" (did not reach {catch_up} within {wait:g}s; resumes from its own position)"
    with connect(address, cfg.admin, timeout=2, read_timeout=30) as conn:
        point_at(conn, cfg, master)
        finish_replica(conn, cfg)
    return f"{address.url} now replicates from {master.url}{note}"


def ensure_replicating(cfg: ClusterConfig, address: ServerAddress) -> bool:
    """START SLAVE when a thread is stopped; True when something was started."""
    with connect(address, cfg.admin, timeout=2) as conn:
        status = read_replica_status(conn)
        if status is None or status.healthy:
            return False
        execute(conn, "START SLAVE")
        return True


def _past_seam(applied: GtidPosition, target: GtidPosition, first: dict[int, Gtid]) -> bool:
    """Applied ``target``: exactly it, or beyond it by events applied since the start.

    Sequence numbers alone do not prove it: a replica holding events the master never
    had (``0-1-11`` against the master's ``0-2-10``) is "further" by number while its IO
    thread has not yet received the master's refusal.
    """
    if not applied.contains(target):
        return False
    exact = all(applied.by_domain.get(d) == g for d, g in target.by_domain.items())
    return exact or dict(applied.by_domain) != first


def replication_health(cfg: ClusterConfig, address: ServerAddress, timeout: float,
                       master_pos: str = "") -> tuple[bool, str]:
    """Watch a freshly started replica until it applied ``master_pos`` or shows an error.

    A history the master refuses shows within moments (IO error 1236, SQL error 1950);
    passing ``master_pos`` proves events from the new master apply past the seam. A
    replica still catching up without error at ``timeout`` counts as healthy.
    Returns (healthy, last error or state).
    """
    deadline = time.monotonic() + timeout
    last = "no replication configured"
    target = GtidPosition.parse(master_pos)
    first: dict[int, Gtid] | None = None
    while True:
        with connect(address, cfg.admin, timeout=2) as conn:
            status = read_replica_status(conn)
            applied = GtidPosition.parse(str(query(conn, "SELECT @@GLOBAL.gtid_slave_pos AS p")[0]["p"] or ""))
        if first is None:
            first = dict(applied.by_domain)
        running = False
        if status is not None:
            err = status.last_io_error or status.last_sql_error
            if err:
                return False, err
            last = f"IO {status.io_running}, SQL {status.sql_running}"
            running = status.io_running == "Yes" and status.sql_running == "Yes"
            if running and _past_seam(applied, target, first):
                return True, last
        if time.monotonic() >= deadline:
            return running, (f"{last}, still catching up to {target}" if running else last)
        time.sleep(0.05)
