"""Semi-sync switchover: the other replicas follow the candidate before the freeze.

With semi-sync the new master's first commit waits for a replica's acknowledgement.
A replica re-pointed only when the candidate is promoted attaches tens of
milliseconds later (CHANGE MASTER recreates its relay log, START SLAVE connects),
and the first write waits for it. Chained under the candidate before the freeze
(the candidate logs what it applies: log_slave_updates), that replica is attached
when writes open. Only a replica whose applied position the candidate's binlog
already holds is chained, else it would ask the candidate for GTIDs it lacks; the
others are re-pointed after the freeze as before. A switchover refused before the
promotion points the chained replicas back at the old master.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pymysql

from repman.db import ServerAddress, connect, execute, query
from repman.gtid import GtidPosition
from repman.watcher.cluster_config import ClusterConfig
from repman.watcher.promote import finish_replica, point_at


def chain(cfg: ClusterConfig, replicas: list[ServerAddress], cand: ServerAddress) -> list[ServerAddress]:
    """Point each replica at ``cand`` when it can be; returns those that now follow ``cand``."""
    if not replicas:
        return []
    with ThreadPoolExecutor(max_workers=len(replicas)) as pool:
        done = list(pool.map(lambda a: _chain_one(cfg, a, cand), replicas))
    return [a for a, ok in zip(replicas, done) if ok]


def _chain_one(cfg: ClusterConfig, address: ServerAddress, cand: ServerAddress) -> bool:
    try:
        with connect(address, cfg.admin, timeout=2, read_timeout=30) as conn:
            execute(conn, "STOP SLAVE")
            mine = GtidPosition.parse(str(query(conn, "SELECT @@GLOBAL.gtid_slave_pos AS p")[0]["p"] or ""))
            with connect(cand, cfg.admin, timeout=2) as cconn:
                theirs = GtidPosition.parse(str(query(cconn, "SELECT @@GLOBAL.gtid_binlog_pos AS p")[0]["p"] or ""))
            if not theirs.contains(mine):
                execute(conn, "START SLAVE")          # ahead of the candidate: stays where it was
                return False
            point_at(conn, cfg, cand)
            finish_replica(conn, cfg)
            return True
    except pymysql.MySQLError:
        return False


def unchain(cfg: ClusterConfig, replicas: list[ServerAddress], master: ServerAddress) -> None:
    """Undo ``chain`` after a refusal: the replicas follow ``master`` again (best effort)."""
    for address in replicas:
        try:
            with connect(address, cfg.admin, timeout=2, read_timeout=30) as conn:
                point_at(conn, cfg, master)
                finish_replica(conn, cfg)
        except pymysql.MySQLError:
            pass
