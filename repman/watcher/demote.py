"""Turning a frozen old master into a replica of the new one without a stray commit.

Order matters: client threads are killed again *before* ``UNLOCK TABLES`` (a
write blocked on the read lock would otherwise commit there and diverge), the
replica's start position is the frozen final position (not whatever the binlog
holds a moment later), and the semi-sync master side is switched off. A commit
that still slipped in shows as a GTID of the old master's own server id beyond
the final position: it is reported, never replicated over.
"""

from __future__ import annotations

import pymysql

from repman.db import ServerAddress, connect, execute, query
from repman.gtid import GtidPosition
from repman.watcher.cluster_config import ClusterConfig
from repman.watcher.freeze import Frozen, kill_clients
from repman.watcher.promote import finish_replica, point_at


def own_beyond(binlog_pos: str, server_id: int, reference: str) -> list[str]:
    """GTIDs this server wrote itself beyond ``reference`` (its extra, unreplicated commits)."""
    ref = GtidPosition.parse(reference)
    return [str(g) for d, g in sorted(GtidPosition.parse(binlog_pos).by_domain.items())
            if g.server_id == server_id and g.seq > ref.seq(d)]


def demote(cfg: ClusterConfig, frozen: Frozen, new_master: ServerAddress) -> tuple[str, list[str]]:
    """Make the frozen old master replicate from ``new_master``.

    Returns (sentence, errant GTIDs). With errant GTIDs replication is left stopped and
    the server read-only: the caller hands it to rejoin (flashback, dump or quarantine).
    """
    conn = frozen.conn
    try:
        server_id = int(query(conn, "SELECT @@GLOBAL.server_id AS s")[0]["s"])
        kill_clients(conn)
        # Start a new binlog at the freeze point (still locked); done here, after the
        # promotion, because rotating and syncing the binlog took ~9 ms of the write outage.
        execute(conn, "FLUSH BINARY LOGS")
        execute(conn, "UNLOCK TABLES")
        execute(conn, f"SET GLOBAL max_connections = {frozen.max_connections_before}")
        try:
            point_at(conn, cfg, new_master, slave_pos=frozen.final_pos)
        except pymysql.err.OperationalError as exc:
            if exc.args and exc.args[0] == 1947:   # the binlog moved past the final position
                pos = str(query(conn, "SELECT @@GLOBAL.gtid_binlog_pos AS p")[0]["p"] or "")
                errant = own_beyond(pos, server_id, frozen.final_pos) or [pos]
                return f"{frozen.address.url} committed after its freeze ({', '.join(errant)})", errant
            raise
        finish_replica(conn, cfg)
        pos = str(query(conn, "SELECT @@GLOBAL.gtid_binlog_pos AS p")[0]["p"] or "")
        errant = own_beyond(pos, server_id, frozen.final_pos)
        if errant:
            execute(conn, "STOP SLAVE")
            return f"{frozen.address.url} committed after its freeze ({', '.join(errant)})", errant
        return f"{frozen.address.url} now replicates from {new_master.url}", []
    except pymysql.MySQLError:
        _restore_connections(cfg, frozen)
        raise
    finally:
        try:
            conn.close()
        except pymysql.MySQLError:
            pass


def _restore_connections(cfg: ClusterConfig, frozen: Frozen) -> None:
    """After a failed demotion: never leave the lowered max_connections behind (it stays read-only)."""
    try:
        with connect(frozen.address, cfg.admin, timeout=2) as conn:
            execute(conn, "SET GLOBAL read_only = ON")
            execute(conn, f"SET GLOBAL max_connections = {frozen.max_connections_before}")
    except pymysql.MySQLError:
        pass
