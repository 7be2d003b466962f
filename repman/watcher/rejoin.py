"""Rejoin: a returning server (usually an old master) becomes a replica of the primary.

First it is made read-only (never two writable masters). Then its GTIDs are
compared with the crash record's failover position:
- not ahead: replicate from the primary, starting after what it holds;
- ahead (it committed what the others never got): save those events, undo them
  with flashback (``autorejoin-flashback``), or re-seed it from a dump
  (``autorejoin-mysqldump``), or quarantine it with an alert.
Replication itself is the last check: with ``gtid_strict_mode`` a primary refuses
a replica whose history diverged, and that refusal leads to the same choices.
Diverged data is never replicated over silently.
"""

from __future__ import annotations

import time
from typing import Callable, Sequence

import pymysql

from repman.db import ServerAddress, connect, execute, query
from repman.errors import OperationRefused, RepmanError
from repman.gtid import Gtid, GtidPosition
from repman.routing.base import Router
from repman.routing.scripts import run_alert_script
from repman.topology import ServerState, read_state_from
from repman.watcher import crash
from repman.watcher.checks import member, read_states
from repman.watcher.cluster_config import ClusterConfig
from repman.watcher.demote import own_beyond
from repman.watcher.election import same_server
from repman.watcher.flashback import flashback, read_tail, save_tail
from repman.watcher.freeze import fence, kill_clients
from repman.watcher.oplog import OpLog, error_text
from repman.watcher.primary import cluster_primary
from repman.watcher.promote import finish_replica, point_at, replication_health
from repman.watcher.reseed import reseed
from repman.watcher.result import OperationResult
from repman.watcher.state_store import StateStore

HEALTH_WAIT = 10.0
# Replication errors that mean "this replica's history is not the primary's".
_DIVERGED = ("1236", "1950", "diverged", "not in the master's binlog", "out-of-order")


def rejoin(cfg: ClusterConfig, store: StateStore, server: ServerAddress, log: Callable[[str], None] | None,
           routers: Sequence[Router] = ()) -> OperationResult:
    op = OpLog(log, "rejoin")
    try:
        return _rejoin(cfg, store, server, op)
    except OperationRefused as exc:
        return op.result(False, f"rejoin of {server.url} refused: {exc}")
    except (pymysql.MySQLError, RepmanError) as exc:
        return op.result(False, f"rejoin of {server.url} failed: {error_text(exc)}")


def _rejoin(cfg: ClusterConfig, store: StateStore, server: ServerAddress, op: OpLog) -> OperationResult:
    addr = member(cfg, server)
    if addr is None:
        raise OperationRefused(f"{server.url} is not a server of this cluster")
    states = read_states(cfg)
    s = states[addr]
    if not s.reachable:
        raise OperationRefused(f"{addr.url} is unreachable ({s.error})")
    found = cluster_primary(cfg, states, store)
    primary = found.address
    if primary is None or not found.decided:
        raise OperationRefused(f"no primary to rejoin: {found.reason}")
    if primary == addr:
        return op.result(True, f"{addr.url} is the master: nothing to rejoin", new=addr)
    if not states[primary].reachable:
        raise OperationRefused(f"the primary {primary.url} is unreachable")

    if not s.read_only:
        with op.step("fence"):
            fence(cfg, addr, op.say)
        s = read_states(cfg, [addr])[addr]          # what it committed up to the fence
        if not s.reachable:
            raise OperationRefused(f"{addr.url} is unreachable ({s.error})")
    quarantined = store.load().quarantined
    if addr.url in quarantined:
        raise OperationRefused(f"{addr.url} is quarantined ({quarantined[addr.url]}); release it first")
    if not cfg.flag("autorejoin"):
        raise OperationRefused("autorejoin is off; it stays read-only and out of the cluster")

    if s.replica is not None and same_server(s.replica.master, primary):
        # A replica that took writes of its own (made writable by hand): its history is
        # no longer the primary's; what it wrote is beyond what it applied.
        local = own_beyond(s.gtid_binlog_pos, s.server_id, s.gtid_slave_pos)
        if local:
            op.say(f"{addr.url} wrote {', '.join(local)} itself while a replica of {primary.url}")
            return _diverged(cfg, store, op, addr, primary, s.gtid_slave_pos)
        return _resume(cfg, store, op, addr, primary, s)

    if s.replica is not None:
        # A replica of another server (a dead master, or one that missed a switchover and
        # chains through the old master). Its own writes are its server id beyond what it
        # applied; the rest came from masters, and a strict-mode primary refuses it if that
        # history is not its own.
        local = own_beyond(s.gtid_binlog_pos, s.server_id, s.gtid_slave_pos)
        if local:
            op.say(f"{addr.url} wrote {', '.join(local)} itself while a replica")
            return _diverged(cfg, store, op, addr, primary, s.gtid_slave_pos)
        if states[primary].gtid_strict_mode:
            return _attach(cfg, store, op, addr, primary, s)
    rec = crash.reference_for(store, addr, was_master=s.replica is None)
    reference = rec.failover_pos if rec else states[primary].gtid_binlog_pos
    extra = s.binlog_pos.ahead_of(GtidPosition.parse(reference))
    if not extra:
        return _attach(cfg, store, op, addr, primary, s)
    op.say(f"{addr.url} holds {', '.join(extra)} beyond the failover position {reference or 'empty'}"
           + (f" ({rec.kind} of {rec.old_master})" if rec else ""))
    return _diverged(cfg, store, op, addr, primary, reference)


def _attach(cfg: ClusterConfig, store: StateStore, op: OpLog, addr: ServerAddress, primary: ServerAddress,
            s: ServerState) -> OperationResult:
    """Replicate from the primary, starting after everything the server holds."""
    with op.step("attach"):
        with connect(addr, cfg.admin, timeout=2, read_timeout=30) as conn:
            execute(conn, "STOP SLAVE")
            # Read the start only now: a replica that was still applying has moved on.
            start = _start_position(read_state_from(conn, addr))
            point_at(conn, cfg, primary, slave_pos=start)
            finish_replica(conn, cfg)
    rec = crash.reference_for(store, addr, was_master=s.replica is None)
    fallback = rec.failover_pos if rec and s.binlog_pos.ahead_of(GtidPosition.parse(rec.failover_pos)) else None
    sentence = f"{addr.url} rejoined {primary.url} by GTID from {start or 'the start'}"
    return _verify(cfg, store, op, addr, primary, sentence, fallback)


def _primary_pos(cfg: ClusterConfig, primary: ServerAddress) -> str:
    with connect(primary, cfg.admin, timeout=2) as conn:
        return str(query(conn, "SELECT @@GLOBAL.gtid_binlog_pos AS p")[0]["p"] or "")


def _start_position(s: ServerState) -> str:
    """Per domain the furthest of what it binlogged and what it applied."""
    merged: dict[int, Gtid] = dict(GtidPosition.parse(s.gtid_slave_pos).by_domain)
    for d, g in s.binlog_pos.by_domain.items():
        if g.seq >= (merged[d].seq if d in merged else -1):
            merged[d] = g
    return str(GtidPosition(merged))


def _resume(cfg: ClusterConfig, store: StateStore, op: OpLog, addr: ServerAddress, primary: ServerAddress,
            s: ServerState) -> OperationResult:
    """Already pointed at the primary: start it if needed and let replication judge."""
    if s.replica is not None and s.replica.healthy:
        with connect(addr, cfg.admin, timeout=2) as conn:
            finish_replica(conn, cfg)
        return op.result(True, f"{addr.url} already replicates from {primary.url}", new=primary)
    with connect(addr, cfg.admin, timeout=2) as conn:
        finish_replica(conn, cfg)
    return _verify(cfg, store, op, addr, primary, f"{addr.url} resumed replication from {primary.url}")


def _verify(cfg: ClusterConfig, store: StateStore, op: OpLog, addr: ServerAddress, primary: ServerAddress,
            sentence: str, reference: str | None = None) -> OperationResult:
    """Replication must run; a primary refusing the server's history sends it to repair
    (from ``reference``, the last failover position it is ahead of, when known)."""
    with op.step("verify"):
        healthy, detail = replication_health(cfg, addr, HEALTH_WAIT, _primary_pos(cfg, primary))
    if healthy:
        return op.result(True, sentence, new=primary)
    if any(marker in detail for marker in _DIVERGED):
        op.say(f"the primary refuses {addr.url}'s history: {detail}")
        with connect(addr, cfg.admin, timeout=2) as conn:
            execute(conn, "STOP SLAVE")
        return _diverged(cfg, store, op, addr, primary, reference)
    return op.result(False, f"{addr.url} points at {primary.url} but replication is not healthy: {detail}",
                     new=primary)


def release_semisync_waiters(conn: pymysql.connections.Connection) -> None:
    """Let a deposed master's commits that wait for a semi-sync acknowledgement finish.

    Without fallback they wait "forever", holding their row locks, and KILL does not end
    the wait: the flashback of those very rows would time out on the locks. Their
    clients are killed first (they get an error, never an acknowledgement), then the
    master side is switched off: the commits complete, and the flashback undoes them
    with the rest of the server's extra transactions.
    """
    kill_clients(conn)
    try:
        execute(conn, "SET GLOBAL rpl_semi_sync_master_enabled = OFF")
    except pymysql.err.OperationalError as exc:
        if not exc.args or exc.args[0] != 1193:      # unknown variable: semi-sync plugin absent
            raise
    time.sleep(0.05)                                  # the released commits reach the binlog index


def _diverged(cfg: ClusterConfig, store: StateStore, op: OpLog, addr: ServerAddress, primary: ServerAddress,
              reference: str | None) -> OperationResult:
    """Flashback, else dump, else quarantine. ``reference`` None: the divergence point is unknown."""
    with connect(addr, cfg.admin, timeout=2) as conn:
        execute(conn, "STOP SLAVE")
        release_semisync_waiters(conn)
    reasons: list[str] = []
    tail = None
    if reference is not None:
        try:
            tail = read_tail(cfg, addr, reference)
            if cfg.flag("autorejoin-backup-binlog"):
                path = save_tail(cfg, addr, tail)
                op.say(f"saved {len(tail.gtids)} extra transaction(s) of {addr.url} to {path}")
        except RepmanError as exc:
            reasons.append(str(exc))
    else:
        reasons.append("the point where it diverged is unknown")

    if tail is not None and cfg.flag("autorejoin-flashback"):
        blockers = list(tail.blockers)
        with connect(addr, cfg.admin, timeout=2) as conn:
            image = str(query(conn, "SELECT @@GLOBAL.binlog_row_image AS i")[0]["i"])
        if image.upper() != "FULL":
            blockers.append(f"binlog_row_image is {image}, not FULL")
        if not blockers:
            try:
                with op.step("flashback"):
                    undo = flashback(cfg, addr, reference or "")
                    with connect(addr, cfg.admin, timeout=2, read_timeout=60) as conn:
                        execute(conn, "RESET MASTER")
                        point_at(conn, cfg, primary, slave_pos=reference)
                        finish_replica(conn, cfg)
                op.say(f"undid {len(tail.gtids)} transaction(s) on {addr.url} with {undo.name}")
                return _final_check(cfg, store, op, addr, primary,
                                    f"{addr.url} rejoined {primary.url} by flashback of {', '.join(tail.gtids)}")
            except (RepmanError, pymysql.MySQLError) as exc:
                reasons.append(f"flashback failed: {error_text(exc)}")
        else:
            reasons.append("flashback impossible: " + "; ".join(blockers[:3]))
    elif tail is not None:
        reasons.append("autorejoin-flashback is off")

    if cfg.flag("autorejoin-mysqldump"):
        try:
            with op.step("reseed"):
                position = reseed(cfg, addr, primary)
            return _final_check(cfg, store, op, addr, primary,
                                f"{addr.url} re-seeded from a dump of {primary.url} at {position}")
        except (RepmanError, pymysql.MySQLError) as exc:
            reasons.append(f"re-seed failed: {error_text(exc)}")
    else:
        reasons.append("autorejoin-mysqldump is off")
    return _quarantine(cfg, store, op, addr, "; ".join(reasons))


def _final_check(cfg: ClusterConfig, store: StateStore, op: OpLog, addr: ServerAddress, primary: ServerAddress,
                 sentence: str) -> OperationResult:
    with op.step("verify"):
        healthy, detail = replication_health(cfg, addr, HEALTH_WAIT, _primary_pos(cfg, primary))
    if healthy:
        return op.result(True, sentence, new=primary)
    with connect(addr, cfg.admin, timeout=2) as conn:
        execute(conn, "STOP SLAVE")
    return _quarantine(cfg, store, op, addr, f"replication failed after repair: {detail}")


def _quarantine(cfg: ClusterConfig, store: StateStore, op: OpLog, addr: ServerAddress, reason: str) -> OperationResult:
    store.quarantine(addr.url, reason)
    message = f"ALERT: {addr.url} is quarantined (read-only, not replicating): {reason}"
    run_alert_script(cfg, message, op.say, host=addr.url, state="Quarantined")
    return op.result(False, message)
