"""Planned switchover: move the primary role to a replica without losing a write.

Steps (replication-manager's order): guards (long writes, open transactions,
FLUSH TABLES), election, pre-script, freeze of the old master, candidate
catch-up to the frozen final position, crash record, promotion, routers,
demotion of the old master and re-pointing of the other replicas (in parallel),
post-script. A refusal before the promotion undoes the freeze and changes nothing.
Nothing sleeps for a fixed time: every wait polls, so the write path moves in
a fraction of a second.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, Sequence

import pymysql

from repman.db import ServerAddress, connect, execute
from repman.errors import OperationRefused
from repman.routing import Topology, notify, route_change_wait
from repman.routing.base import Router
from repman.routing.scripts import run_post_script, run_pre_script
from repman.topology import ServerState
from repman.watcher import crash
from repman.watcher.checks import flush_tables, in_maintenance, long_writes, read_states, replicas_of
from repman.watcher.cluster_config import ClusterConfig
from repman.watcher.demote import demote
from repman.watcher.election import elect, same_server
from repman.watcher.freeze import Frozen, freeze, freeze_read_timeout, unfreeze
from repman.watcher.oplog import OpLog, error_text
from repman.watcher.prechain import chain, unchain
from repman.watcher.primary import cluster_primary
from repman.watcher.promote import (
    ensure_replicating,
    finish_replica,
    point_at,
    promote,
    repoint,
    start_event_scheduler,
    wait_gtid,
)
from repman.watcher.rejoin import rejoin
from repman.watcher.result import OperationResult
from repman.watcher.state_store import StateStore


def switchover(cfg: ClusterConfig, store: StateStore, log: Callable[[str], None] | None,
               to: ServerAddress | None = None, routers: Sequence[Router] = ()) -> OperationResult:
    op = OpLog(log, "switchover")
    try:
        return _switchover(cfg, store, op, to, list(routers))
    except OperationRefused as exc:
        return op.result(False, f"switchover refused: {exc}")
    except pymysql.MySQLError as exc:
        return op.result(False, f"switchover failed: {error_text(exc)}")


def _switchover(cfg: ClusterConfig, store: StateStore, op: OpLog, to: ServerAddress | None,
                routers: list[Router]) -> OperationResult:
    with op.step("read"):
        states = read_states(cfg)
        found = cluster_primary(cfg, states, store)
        if found.decided and found.address is not None and states[found.address].reachable:
            states = _settled(cfg, states, found.address)
            found = cluster_primary(cfg, states, store)
    master = found.address
    if master is None or not found.decided:
        raise OperationRefused(found.reason)
    if not states[master].reachable:
        raise OperationRefused(f"the master {master.url} is unreachable ({states[master].error}): use failover")
    # One connection to the master for the guards and the freeze (it will hold the lock).
    mconn = connect(master, cfg.admin, timeout=2, read_timeout=freeze_read_timeout(cfg))
    try:
        return _planned(cfg, store, op, to, routers, states, master, mconn)
    finally:
        _close(mconn)


# A replica whose IO thread was just (re)started shows these states for a moment.
_IO_STARTING = ("connecting", "preparing")
IO_SETTLE_S = 5.0


def _settled(cfg: ClusterConfig, states: dict[ServerAddress, ServerState],
             master: ServerAddress) -> dict[ServerAddress, ServerState]:
    """Re-read while a replica of the master is still starting its IO thread.

    A replica re-pointed a moment ago (by a previous switchover, failover or rejoin)
    is "Connecting"/"Preparing" for a short while; the election excludes a switchover
    candidate whose IO thread is not running, so a snapshot taken in that instant
    would pass over the preferred master. Bounded: a replica that never connects is
    judged as it is after ``IO_SETTLE_S`` seconds. Writes still flow meanwhile.
    """
    deadline = time.monotonic() + IO_SETTLE_S
    while True:
        starting = [a for a, s in states.items()
                    if s.reachable and s.replica is not None and same_server(s.replica.master, master)
                    and s.replica.io_running.lower() in _IO_STARTING]
        if not starting or time.monotonic() >= deadline:
            return states
        time.sleep(0.05)
        states = read_states(cfg)


def _planned(cfg: ClusterConfig, store: StateStore, op: OpLog, to: ServerAddress | None,
             routers: list[Router], states: dict[ServerAddress, ServerState], master: ServerAddress,
             mconn: pymysql.connections.Connection) -> OperationResult:
    with op.step("guards"):
        threshold = cfg.seconds("switchover-wait-write-query")
        busy = long_writes(mconn, threshold)
        if busy:
            raise OperationRefused(f"on {master.url} {busy[0]} (switchover-wait-write-query {threshold:g}s)"
                                   + (f" and {len(busy) - 1} more" if len(busy) > 1 else ""))
        slow = flush_tables(master, cfg.admin, cfg.seconds("switchover-wait-trx"))
        if slow:
            raise OperationRefused(slow)

    persisted = store.load()
    election = elect(cfg, states, master, "switchover", to=to, quarantined=persisted.quarantined,
                     maintenance=in_maintenance(cfg, persisted.maintenance))
    if election.candidate is None:
        raise OperationRefused(election.sentence)
    cand = election.candidate
    op.say(f"{master.url} -> {cand.url}: {election.why}")
    run_pre_script(cfg, master, cand, "switchover", op.say)
    if ensure_replicating(cfg, cand):
        op.say(f"started replication on {cand.url} so that it can catch up")
    wait = max(1.0, cfg.seconds("switchover-wait-trx"))
    others = [a for a in replicas_of(cfg, states, master) if a != cand and states[a].reachable]
    cconn = connect(cand, cfg.admin, timeout=2, read_timeout=wait + 30)
    chained: list[ServerAddress] = []
    if cfg.flag("semisync"):
        with op.step("prechain"):
            chained = chain(cfg, others, cand)
    try:
        try:
            with op.step("freeze"):
                frozen = freeze(cfg, master, op, conn=mconn)
            with op.step("catch_up"):
                try:
                    caught = wait_gtid(cand, cfg, frozen.final_pos, wait, conn=cconn)
                except pymysql.MySQLError as exc:
                    unfreeze(cfg, frozen)
                    raise OperationRefused(f"cannot wait on {cand.url}: {error_text(exc)}") from None
                if not caught:
                    unfreeze(cfg, frozen)
                    raise OperationRefused(f"{cand.url} did not reach the frozen position {frozen.final_pos} "
                                           f"within {wait:g}s; {master.url} is the master again")
        except (OperationRefused, pymysql.MySQLError):
            unchain(cfg, chained, master)
            raise

        scheduler = frozen.scheduler_before.upper() == "ON"
        # The other replicas move to the candidate now, while it is promoted: it holds the
        # final position, takes no write yet, and a semi-sync replica already attached
        # acknowledges its first commit at once (those chained before the freeze already are).
        movers = ThreadPoolExecutor(max_workers=max(1, len(others)))
        moved = {a: movers.submit(repoint, cfg, a, cand, frozen.final_pos, _repoint_wait(cfg))
                 for a in others if a not in chained}
        movers.shutdown(wait=False)
        for a in chained:
            moved[a] = Future()
            moved[a].set_result(f"{a.url} now replicates from {cand.url} (attached before the freeze)")
        with op.step("promote"), ThreadPoolExecutor(max_workers=1) as recorder:
            # The crash record (an fsync'ed file) is written while the candidate stops
            # replicating, and is durable before the candidate takes writes.
            recorded = recorder.submit(crash.record, store, "switchover", master, cand, states, frozen.final_pos,
                                       extra={master.url: frozen.final_pos}, event_scheduler=scheduler)
            try:
                promote(cfg, cand, open_writes=False, conn=cconn)
                recorded.result()
                execute(cconn, "SET GLOBAL read_only = OFF")
            except (pymysql.MySQLError, OSError) as exc:
                _rollback(cfg, frozen, cand, moved)
                raise OperationRefused(f"promotion of {cand.url} failed ({error_text(exc)}); {master.url} is the "
                                       "master again") from None
    finally:
        _close(cconn)
    op.say(f"{cand.url} is the master and takes writes")
    if scheduler:
        op.say(start_event_scheduler(cfg, cand))
    return _finish(cfg, store, op, frozen, master, cand, moved, routers)


def _repoint_wait(cfg: ClusterConfig) -> float:
    catch_wait = max(1.0, cfg.seconds("switchover-wait-trx"))
    return catch_wait if cfg.flag("switchover-slave-wait-catch") else 0.0


def _finish(cfg: ClusterConfig, store: StateStore, op: OpLog, frozen: Frozen,
            master: ServerAddress, cand: ServerAddress, moved: dict[ServerAddress, Future[str]],
            routers: list[Router]) -> OperationResult:
    """Writes are open on the candidate: tell the routers, demote the old master; the others are moving already."""
    others = list(moved)
    with ThreadPoolExecutor(max_workers=1) as pool:
        demoted = pool.submit(demote, cfg, frozen, cand)
        with op.step("routing"):
            notify(routers, Topology(cluster=cfg.name, primary=cand, replicas=tuple([master, *others]),
                                     old_primary=master, reason="switchover", servers=tuple(cfg.servers)),
                   op.say)
            route_wait = route_change_wait(cfg)
            if route_wait > 0:     # proxies repman does not drive discover the change by themselves
                op.say(f"waiting {route_wait:g} s for unmanaged proxies (switchover-wait-route-change)")
                time.sleep(route_wait)
        problems: list[str] = []
        with op.step("demote"):
            try:
                sentence, errant = demoted.result()
            except pymysql.MySQLError as exc:
                sentence, errant = f"demotion of {master.url} failed: {error_text(exc)}", []
                problems.append(sentence)
            op.say(sentence)
        with op.step("repoint"):
            for addr, fut in moved.items():
                try:
                    op.say(fut.result())
                except pymysql.MySQLError as exc:
                    problems.append(f"re-pointing {addr.url} failed: {error_text(exc)}")
                    op.say(problems[-1])
    if errant:
        problems.append(f"{master.url} holds {len(errant)} commit(s) made after its freeze")
        _rejoin_errant(cfg, store, master, op)
    run_post_script(cfg, master, cand, "switchover", op.say)
    if problems:
        return op.result(False, f"switchover to {cand.url} done with problems: {'; '.join(problems)}",
                         master, cand)
    return op.result(True, f"switchover done: {cand.url} is the master, {master.url} replicates from it",
                     master, cand)


def _rejoin_errant(cfg: ClusterConfig, store: StateStore, server: ServerAddress, op: OpLog) -> None:
    """A commit slipped in after the freeze: undo it (or quarantine) like a returning old master."""
    res = rejoin(cfg, store, server, op.say)
    op.say(f"rejoin of {server.url}: {res.sentence}")


def _rollback(cfg: ClusterConfig, frozen: Frozen, cand: ServerAddress,
              moved: dict[ServerAddress, Future[str]] | None = None) -> None:
    """Promotion failed half-way: the candidate and the other replicas follow the old master again, which thaws."""
    for addr in [cand, *(moved or {})]:
        if moved is not None and addr != cand:
            try:
                moved[addr].result()        # let the early re-pointing end before undoing it
            except pymysql.MySQLError:
                pass
        try:
            with connect(addr, cfg.admin, timeout=2) as conn:
                point_at(conn, cfg, frozen.address)
                finish_replica(conn, cfg)
        except pymysql.MySQLError:
            pass
    unfreeze(cfg, frozen)


def _close(conn: pymysql.connections.Connection) -> None:
    try:
        conn.close()
    except pymysql.MySQLError:
        pass
