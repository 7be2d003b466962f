"""Failover: replace a dead master by the replica that received the most.

The monitor loop decides when; this performs it, and re-checks the limits
(``failover-limit``, ``failover-time-limit``, with the analysis' own function) under
the operation lock, where no other failover can slip in between.
The replicas' IO threads are stopped first so that what each one received is
final; the candidate then applies its whole relay log (and, if another replica
received more, catches up from it) before it is promoted. With semi-sync
AFTER_SYNC an acknowledged write is in at least one replica's relay log, so
none is lost. The old master is fenced in parallel (``fencing``), and no step
waits on it beyond its read timeout: a frozen or cut-off master costs one read.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import Callable, Sequence

import pymysql

from repman.db import ServerAddress, connect, execute
from repman.errors import OperationRefused
from repman.gtid import GtidPosition
from repman.routing import Topology, notify
from repman.routing.base import Router
from repman.routing.scripts import run_post_script, run_pre_script
from repman.topology import ServerState
from repman.watcher import crash
from repman.watcher.analysis import Facts, limit_refusal
from repman.watcher.checks import in_maintenance, read_states, replicas_of
from repman.watcher.cluster_config import ClusterConfig
from repman.watcher.election import elect, io_position
from repman.watcher.fencing import fence_old_master
from repman.watcher.lag import fill_unknown_lag
from repman.watcher.oplog import OpLog, error_text
from repman.watcher.primary import dead_primary
from repman.watcher.promote import (
    applied_pos,
    open_writes,
    point_at,
    promote,
    repoint,
    start_event_scheduler,
    wait_gtid,
)
from repman.watcher.result import OperationResult
from repman.watcher.salvage import salvage
from repman.watcher.state_store import ClusterState, StateStore


def failover(cfg: ClusterConfig, store: StateStore, log: Callable[[str], None] | None,
             routers: Sequence[Router] = ()) -> OperationResult:
    op = OpLog(log, "failover")
    try:
        return _failover(cfg, store, op, list(routers))
    except OperationRefused as exc:
        return op.result(False, f"failover refused: {exc}")
    except pymysql.MySQLError as exc:
        return op.result(False, f"failover failed: {error_text(exc)}")


def limit_facts(cfg: ClusterConfig, state: ClusterState, running: str = "") -> Facts:
    """The facts a failover's limits are judged on outside the monitor (an operator's request,
    the re-check under the lock): the persisted counters, the limits, what runs here."""
    since = (time.time() - state.last_failover_at) if state.last_failover_at > 0 else None
    return Facts(master=None, failover_count=state.failover_count, failover_limit=cfg.integer("failover-limit"),
                 since_last_failover=since, failover_time_limit=cfg.seconds("failover-time-limit"),
                 operation_running=running)


def check_limits(cfg: ClusterConfig, store: StateStore) -> str | None:
    """The reason the failover limits forbid a failover now, or None.

    Asked again under the operation lock (another process may have failed over since the
    decision); the limits themselves are ``analysis.failover_limit``'s, as the monitor's."""
    return limit_refusal(limit_facts(cfg, store.load())) or None


def _io_threads(cfg: ClusterConfig, servers: list[ServerAddress], start: bool) -> None:
    def one(addr: ServerAddress) -> None:
        try:
            with connect(addr, cfg.admin, timeout=2) as conn:
                execute(conn, "START SLAVE IO_THREAD" if start else "STOP SLAVE IO_THREAD")
        except pymysql.MySQLError:
            pass
    if servers:
        with ThreadPoolExecutor(max_workers=len(servers)) as pool:
            list(pool.map(one, servers))


def _stop_io_threads(cfg: ClusterConfig) -> dict[ServerAddress, Future[None]]:
    """STOP SLAVE IO_THREAD on every server in the background: what each received becomes final.

    A replica's IO thread busy reconnecting to a frozen master may take its connect timeout
    to stop; the caller waits only for the replicas of the dead master, never for it.
    """
    def one(addr: ServerAddress) -> None:
        try:
            with connect(addr, cfg.admin, timeout=1, read_timeout=5) as conn:
                execute(conn, "STOP SLAVE IO_THREAD")
        except pymysql.MySQLError:
            pass
    pool = ThreadPoolExecutor(max_workers=max(1, len(cfg.servers)), thread_name_prefix="stop-io")
    futures = {a: pool.submit(one, a) for a in cfg.servers}
    pool.shutdown(wait=False)
    return futures


def _failover(cfg: ClusterConfig, store: StateStore, op: OpLog, routers: list[Router]) -> OperationResult:
    limited = check_limits(cfg, store)
    if limited:
        raise OperationRefused(limited)
    with op.step("read"):
        # The IO threads stop while the servers are read (bounded, in parallel): the dead
        # master's read costs its timeout once, not once per step.
        stopping = _stop_io_threads(cfg)
        states = read_states(cfg, timeout=0.5)
    dead = dead_primary(cfg, states, store)
    master, why = dead.address, dead.reason
    if master is None:
        _io_threads(cfg, [a for a, s in states.items() if s.reachable and s.replica is not None], start=True)
        raise OperationRefused(why)
    fencing = fence_old_master(cfg, master, op.say,       # in parallel with the next steps, bounded
                               answered=states[master].reachable)
    replicas = [a for a in replicas_of(cfg, states, master) if states[a].reachable]
    with op.step("freeze_received"):
        wait(([stopping[a] for a in replicas]), timeout=5.0)
    with op.step("read_received"):
        states = {**states, **read_states(cfg, replicas)}    # never wait on the dead master twice
    persisted = store.load()
    fill_unknown_lag(states, persisted.lag_seen)
    election = elect(cfg, states, master, "failover", quarantined=persisted.quarantined,
                     maintenance=in_maintenance(cfg, persisted.maintenance))
    if election.candidate is None:
        _io_threads(cfg, replicas, start=True)
        raise OperationRefused(election.sentence)
    cand = election.candidate
    op.say(f"{master.url} is dead -> {cand.url}: {election.why}")
    try:
        run_pre_script(cfg, master, cand, "failover", op.say)
        with op.step("apply_relay_log"):
            _catch_up(cfg, op, states, cand, [a for a in replicas if a != cand])
    except (OperationRefused, pymysql.MySQLError):
        _io_threads(cfg, replicas, start=True)
        raise
    with op.step("fence"):
        bound = cfg.seconds("failover-fence-timeout")
        fencing.join(bound)
        if fencing.is_alive():
            op.say(f"fencing {master.url} still runs after failover-fence-timeout {bound:g}s: promoting anyway "
                   "(semi-sync without fallback keeps it from acknowledging)")

    with op.step("salvage"):
        op.say(salvage(cfg, master, cand).sentence)
    failover_pos = applied_pos(cand, cfg)
    scheduler = crash.scheduler_was_on(store)
    crash.record(store, "failover", master, cand, states, failover_pos, event_scheduler=scheduler, finished=False)
    with op.step("promote"):
        promote(cfg, cand, open_writes=False)
    others = [a for a in replicas if a != cand]
    problems: list[str] = []
    with ThreadPoolExecutor(max_workers=max(1, len(others))) as pool:
        moved = {a: pool.submit(repoint, cfg, a, cand) for a in others}
        with op.step("open_writes"):
            open_writes(cfg, cand)
            crash.mark_finished(store, cand)
        op.say(f"{cand.url} is the master at {failover_pos or 'empty GTID'} and takes writes")
        if scheduler:
            op.say(start_event_scheduler(cfg, cand))
        with op.step("routing"):
            notify(routers, Topology(cluster=cfg.name, primary=cand, replicas=tuple(others),
                                     unhealthy=(master,), old_primary=master, reason="failover",
                                     servers=tuple(cfg.servers)), op.say)
        with op.step("repoint"):
            for addr, fut in moved.items():
                try:
                    op.say(fut.result())
                except pymysql.MySQLError as exc:
                    problems.append(f"re-pointing {addr.url} failed: {error_text(exc)}")
                    op.say(problems[-1])
    run_post_script(cfg, master, cand, "failover", op.say)
    count = store.load().failover_count
    if problems:
        return op.result(False, f"failover to {cand.url} done with problems: {'; '.join(problems)}", master, cand)
    return op.result(True, f"failover done: {cand.url} replaces {master.url} (failover {count})", master, cand)


def _catch_up(cfg: ClusterConfig, op: OpLog, states: dict[ServerAddress, ServerState], cand: ServerAddress,
              peers: list[ServerAddress]) -> None:
    """The candidate applies everything it received, then what any peer received beyond it."""
    max_delay = cfg.seconds("failover-max-slave-delay")
    bound = 10.0 + max(0.0, max_delay)
    target = io_position(states[cand])
    with connect(cand, cfg.admin, timeout=2) as conn:
        execute(conn, "START SLAVE SQL_THREAD")
    if not wait_gtid(cand, cfg, str(target), bound):
        raise OperationRefused(f"{cand.url} did not apply its relay log up to {target} within {bound:g}s")
    have = GtidPosition.parse(applied_pos(cand, cfg))
    for peer in sorted(peers, key=lambda p: io_position(states[p]).total(), reverse=True):
        theirs = io_position(states[peer])
        if not states[peer].reachable or have.contains(theirs):
            continue
        op.say(f"{peer.url} received more ({theirs}) than {cand.url} ({have}): catching up from it")
        with connect(peer, cfg.admin, timeout=2) as pconn:
            execute(pconn, "START SLAVE SQL_THREAD")
        if not wait_gtid(peer, cfg, str(theirs), bound):
            raise OperationRefused(f"{peer.url} did not apply its relay log up to {theirs} within {bound:g}s")
        with connect(cand, cfg.admin, timeout=2, read_timeout=30) as conn:
            point_at(conn, cfg, peer)
            execute(conn, "START SLAVE")
        if not wait_gtid(cand, cfg, str(theirs), bound):
            raise OperationRefused(f"{cand.url} did not catch up from {peer.url} to {theirs} within {bound:g}s")
        with connect(cand, cfg.admin, timeout=2) as conn:
            execute(conn, "STOP SLAVE")
        have = GtidPosition.parse(applied_pos(cand, cfg))
