"""Give writes back to a master that restarted read-only (the ``readonly`` my.cnf tag).

When the master crashes and comes back before any failover, the replicas follow
it again but it refuses writes. Clearing ``read_only`` is safe only if it is
still the only root (nobody else writable) and no replica holds events beyond
its binlog (a crash that lost its last events): otherwise the watcher alerts.
The event scheduler, off after the restart, is started again if the master ran it.
"""

from __future__ import annotations

from typing import Callable, Sequence

import pymysql

from repman.db import ServerAddress, connect, execute
from repman.routing.base import Router
from repman.topology import read_state
from repman.watcher.cluster_config import ClusterConfig
from repman.watcher.crash import mark_finished, scheduler_was_on, unfinished_promotion
from repman.watcher.election import io_position, same_server
from repman.watcher.promote import semisync_roles, set_event_scheduler
from repman.watcher.result import OperationResult
from repman.watcher.state_store import StateStore


def reopen(cfg: ClusterConfig, store: StateStore, server: ServerAddress, log: Callable[[str], None] | None,
           routers: Sequence[Router] = ()) -> OperationResult:
    states = {a: read_state(a, cfg.admin, timeout=2.0) for a in cfg.servers}
    me = states.get(server)
    if me is None or not me.reachable:
        return OperationResult(False, f"cannot reopen {server}: it is unreachable", kind="reopen")
    if not me.read_only:
        return OperationResult(True, f"master {server} already takes writes", kind="reopen", new_primary=server)
    if me.replica is not None:
        return OperationResult(False, f"will not open writes on {server}: it is a replica of {me.replica.master}",
                               kind="reopen")
    others = [s for a, s in states.items() if a != server and s.reachable and s.replica is None and not s.read_only]
    if others:
        return OperationResult(False, f"will not open writes on {server}: {others[0].address} is writable too",
                               kind="reopen")
    mine = me.binlog_pos
    for a, s in states.items():
        if a == server or not s.reachable or s.replica is None or not same_server(s.replica.master, server):
            continue
        ahead = io_position(s).ahead_of(mine)
        if ahead:
            return OperationResult(False, f"will not open writes on {server}: replica {a} holds {', '.join(ahead)} "
                                   "beyond its binlog (lost at the crash?); fail over or re-seed by hand",
                                   kind="reopen")
    note = ""
    try:
        with connect(server, cfg.admin, timeout=2) as conn:
            semisync_roles(conn, cfg, master=True)
            execute(conn, "SET GLOBAL read_only = OFF")
            if scheduler_was_on(store):          # it ran before the crash: the restart turned it off
                why = set_event_scheduler(conn, True)
                note = f"; event scheduler not started: {why}" if why else "; event scheduler started again"
    except pymysql.MySQLError as exc:
        return OperationResult(False, f"cannot open writes on {server}: {exc.args[-1] if exc.args else exc}",
                               kind="reopen")
    crashes = store.load().crashes
    cut = unfinished_promotion(crashes[-1] if crashes else None, server)
    mark_finished(store, server)     # a failover cut after its promotion is complete now
    if log:
        log(f"read_only cleared on master {server}")
    why = "finishing the failover that promoted it" if cut else "read_only cleared after its restart"
    return OperationResult(True, f"master {server} takes writes again ({why}{note})",
                           kind="reopen", new_primary=server)
