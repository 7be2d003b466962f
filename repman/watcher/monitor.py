"""One cluster's monitor: read every server, gather facts, decide, act.

A tick reads all servers in parallel (a dead one costs its connect timeout, not
the others'), keeps the per-server states (Master, Slave, Suspect, Failed,
Maintenance, Standalone), counts the master's failed pings, keeps a short
history of the replicas' heartbeat counters and received positions for the
false-positive checks (the heartbeat window, and the replicas' agreement that
they lost the master: IO thread not connected, nothing received since the
previous tick), and asks ``analysis.analyse`` for the decision. The
master is the latest crash record's new master while it is writable, else the
server the replicas follow; the latest failover's deposed master never is, until
an operation makes its successor a replica again (no flip-flop after a pause), and
no decision is taken on a snapshot read before an operation finished. A second writable server is fenced within the tick
that sees it (never two writable masters); long actions (failover, rejoin, reopen,
autoseed) and operators' requests go to the cluster's operation runner (``runner``),
so the ticks go on; the operation lock keeps them exclusive with a CLI's operation.
Servers in maintenance come from the state store.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter, deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Collection, Sequence

import pymysql

from repman.db import ServerAddress, connect, execute
from repman.topology import ServerState, read_state
from repman.watcher.analysis import Action, Decision, Facts, Request, analyse, master_state_label
from repman.watcher.checks import in_maintenance
from repman.watcher.cluster_config import ClusterConfig
from repman.watcher.crash import deposed_by_failover, recorded_primary
from repman.watcher.demote import own_beyond
from repman.watcher.election import elect, io_position, same_server
from repman.watcher.lag import fill_unknown_lag, lag_readings
from repman.watcher.freeze import fence
from repman.watcher.operations import build_routers, executor, request, store_for
from repman.watcher.oplock import OperationLock
from repman.watcher.primary import find_master
from repman.watcher.result import OperationResult
from repman.watcher.runner import Operation, OperationRunner

logger = logging.getLogger("repman.watcher")
Reader = Callable[[ServerAddress], ServerState]
REJOIN_CONFIRM_TICKS = 2      # a server must look detached this many ticks before a rejoin
RETRY_AFTER_TICKS = 5         # a failed operation is retried after max(10 s, this many ticks)


@dataclass(frozen=True)
class Sample:
    """What one replica reported about its master at one instant."""

    heartbeats: int
    received: str
    io_running: str


def stray_writable(cfg: ClusterConfig, states: dict[ServerAddress, ServerState], master: ServerAddress | None,
                   maintenance: Collection[ServerAddress] = ()) -> list[tuple[ServerAddress, str]]:
    """Servers other than the master that take writes: each is a second master.

    A writable non-replica always (an old master back without ``read_only``, a server
    opened by hand); a writable replica when ``failover-readonly-state`` keeps replicas
    read-only and an operator has not put it in maintenance.
    """
    if master is None:
        return []
    replicas_read_only = bool(cfg.get("failover-readonly-state", True))
    out = []
    for a in cfg.servers:
        s = states.get(a)
        if a == master or s is None or not s.reachable or s.read_only:
            continue
        if s.replica is None:
            out.append((a, "a standalone server"))
        elif replicas_read_only and a not in maintenance:
            out.append((a, f"a replica of {s.replica.master.url}"))
    return out


def server_status(state: ServerState | None, label: str, address: ServerAddress,
                  master: ServerAddress | None, last_seen: ServerState | None = None,
                  maintenance: bool = False) -> dict[str, Any]:
    """One server as status/API JSON: positions, threads, lag, errors; never a credential.

    An unreachable server keeps the role it had when last seen (a dead replica is no
    "standalone"); its positions and threads are unknown, so they stay empty.
    """
    s = state or ServerState(address=address, reachable=False, error="not read yet")
    rep = s.replica
    known = s if s.reachable else (last_seen or s)
    role = "master" if same_server(address, master) else ("replica" if known.replica else "standalone")
    return {
        "url": address.url, "state": label, "role": role, "reachable": s.reachable, "maintenance": maintenance,
        "error": s.error or None, "server_id": s.server_id or None, "version": s.version or None,
        "read_only": s.read_only if s.reachable else None,
        "gtid_binlog_pos": s.gtid_binlog_pos, "gtid_current_pos": s.gtid_current_pos,
        "gtid_slave_pos": s.gtid_slave_pos, "gtid_io_pos": rep.gtid_io_pos if rep else "",
        "master_url": rep.master.url if rep else None,
        "io_thread": rep.io_running if rep else None, "sql_thread": rep.sql_running if rep else None,
        "seconds_behind_master": rep.seconds_behind if rep else None,
        "last_io_error": (rep.last_io_error or None) if rep else None,
        "last_sql_error": (rep.last_sql_error or None) if rep else None,
        "using_gtid": rep.using_gtid if rep else None,
        "received_heartbeats": rep.received_heartbeats if rep else None,
        "semisync_master": s.semisync_master, "semisync_slave": s.semisync_slave,
    }


class ClusterMonitor:
    """Monitoring state of one cluster; ``tick()`` is one monitoring round."""

    def __init__(
        self, cfg: ClusterConfig, log: Callable[[str], None] | None = None,
        routers: Sequence[Any] | None = None, act: bool = True, reader: Reader | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self._sink = log
        self.act = act
        self.routers = list(routers) if routers is not None else (build_routers(cfg, self.log) if act else [])
        self.store = store_for(cfg)
        self.lock = OperationLock(cfg.state_dir)
        # Half a tick (0.3-1 s): a frozen master fails its ping within the tick that reads it.
        self._read = reader or (lambda a: read_state(a, cfg.admin, timeout=min(1.0, max(0.3, cfg.ticker / 2))))
        self._clock = clock
        self._pool = ThreadPoolExecutor(max_workers=max(2, len(cfg.servers)), thread_name_prefix=f"read-{cfg.name}")
        self._background = ThreadPoolExecutor(max_workers=2, thread_name_prefix=f"hooks-{cfg.name}")
        self._mutex = threading.RLock()
        self.states: dict[ServerAddress, ServerState] = {}
        self.last_seen: dict[ServerAddress, ServerState] = {}
        self.lag_while_master_answered: dict[str, list[float]] = {}
        self.labels: dict[ServerAddress, str] = {}
        self.fails: Counter[ServerAddress] = Counter()
        latest = self.store.latest_crash()
        self.master: ServerAddress | None = None
        if latest is not None:
            self.master = next((a for a in cfg.servers if a.url == latest.new_master), None)
        self.failed_pings = 0
        window = float(cfg["failover-falsepositive-heartbeat-timeout"])
        self.history: deque[tuple[float, dict[ServerAddress, Sample]]] = deque(
            maxlen=min(10000, int((window + 2.0) / max(cfg.ticker, 0.01)) + 5))
        self.whole_down = False
        self.read_only_ticks = 0
        self.detached: Counter[ServerAddress] = Counter()
        self.maintenance = False
        self.server_maintenance: set[ServerAddress] = set()
        self.decision: Decision | None = None
        self.decision_at = 0.0
        self.candidate: ServerAddress | None = None
        self.ticks = 0
        self.last_tick_at = 0.0
        self.last_tick_seconds = 0.0
        self.wake = threading.Event()       # set when an operation ends: the loop ticks at once
        self._execute = executor(cfg, self.log, lambda: self.routers)
        self.runner = OperationRunner(cfg.name, self._run, self.lock, on_finished=self._finish,
                                      wake=self.wake, clock=clock,
                                      retry_after=max(10.0, RETRY_AFTER_TICKS * cfg.ticker))
        self._routing_busy = threading.Lock()
        self.closed = False
        self.scheduler: Any = None          # repman.watcher.scheduler.Scheduler (watch mode)
        self.binlog_archiver: Any = None    # repman.backup.binlogs.BinlogArchiver (backup-binlogs)
        self.no_replica_since: float | None = None
        self._op_finished_at = float("-inf")

    # -- logging ------------------------------------------------------------------------
    def log(self, message: str) -> None:
        if self._sink is not None:
            try:
                self._sink(message)
            except Exception:  # noqa: BLE001 - a log sink must not stop monitoring
                pass
        else:
            logger.info("%s: %s", self.name, message)

    # -- reading ------------------------------------------------------------------------
    def read_all(self) -> dict[ServerAddress, ServerState]:
        futures = {a: self._pool.submit(self._read, a) for a in self.cfg.servers}
        out: dict[ServerAddress, ServerState] = {}
        for addr, fut in futures.items():
            try:
                out[addr] = fut.result()
            except Exception as exc:  # noqa: BLE001 - a reader bug marks the server unreachable
                out[addr] = ServerState(address=addr, reachable=False, error=str(exc) or type(exc).__name__)
        return out

    # -- facts --------------------------------------------------------------------------
    def _sample(self, states: dict[ServerAddress, ServerState]) -> dict[ServerAddress, Sample]:
        out = {}
        for a, s in states.items():
            if s.reachable and s.replica is not None and same_server(s.replica.master, self.master):
                out[a] = Sample(s.replica.received_heartbeats, s.replica.gtid_io_pos, s.replica.io_running)
        return out

    def _alive_observers(self, now: float, current: dict[ServerAddress, Sample]) -> tuple[bool, tuple]:
        """(window ready, replicas that still hear the master between a sample one window ago and now)."""
        window = float(self.cfg["failover-falsepositive-heartbeat-timeout"])
        base = None
        for at, samples in reversed(self.history):
            if at <= now - window:
                base = (at, samples)
                break
        if base is None:
            return window <= 0, ()
        at, before = base
        span = max(now - at, 1e-6)
        period = float(self.cfg.get("replication-heartbeat-period", 0.5) or 0.5)
        observers = []
        for addr, cur in current.items():
            old = before.get(addr)
            if old is None:
                continue
            if cur.heartbeats > old.heartbeats:
                observers.append((addr, f"received {cur.heartbeats - old.heartbeats} heartbeats in {span:.1f}s"))
            elif cur.received and cur.received != old.received:
                observers.append((addr, f"received events up to {cur.received}"))
            elif cur.io_running == "Yes" and old.io_running == "Yes" and span < 2 * period:
                observers.append((addr, "is still connected to it"))
        return True, tuple(observers)

    def _agreement(self, current: dict[ServerAddress, Sample]
                   ) -> tuple[tuple[ServerAddress, ...], tuple[tuple[ServerAddress, str], ...]]:
        """(replicas that lost the master, replicas that do not agree and why), from this tick's
        snapshot against the previous tick's.

        Every reachable replica of the master is an observer, in maintenance or ignored too:
        it lost the master when its IO thread is not connected ("Connecting", "No") and neither
        its heartbeat counter nor its received position moved since the previous reading.
        """
        before = self.history[-1][1] if self.history else {}
        lost: list[ServerAddress] = []
        hear: list[tuple[ServerAddress, str]] = []
        for addr in sorted(current):
            cur, old = current[addr], before.get(addr)
            if cur.io_running == "Yes":
                hear.append((addr, "still has its IO thread connected"))
            elif old is None:
                hear.append((addr, "has no earlier reading"))
            elif cur.heartbeats > old.heartbeats:
                hear.append((addr, f"received {cur.heartbeats - old.heartbeats} heartbeats since the last tick"))
            elif cur.received and cur.received != old.received:
                hear.append((addr, f"received events up to {cur.received} since the last tick"))
            else:
                lost.append(addr)
        return tuple(lost), tuple(hear)

    def _rejoin_needed(self, states: dict[ServerAddress, ServerState], quarantined: dict[str, str]
                       ) -> list[tuple[ServerAddress, str]]:
        out = []
        followers = {s.replica.master for s in states.values() if s.reachable and s.replica}
        replicas_read_only = bool(self.cfg.get("failover-readonly-state", True))
        for addr in self.cfg.servers:
            s = states[addr]
            if (same_server(addr, self.master) or not s.reachable or addr.url in quarantined
                    or addr in self.server_maintenance):
                self.detached.pop(addr, None)
                continue
            why = ""
            if s.replica is None:
                if not any(same_server(addr, f) for f in followers):
                    why = "is back as a standalone server" if self.labels.get(addr) == "Failed" else \
                        "replicates from nobody"
            elif not same_server(s.replica.master, self.master):
                why = f"replicates from {s.replica.master.url}, not from the master {self.master}"
            elif replicas_read_only and (own := own_beyond(s.gtid_binlog_pos, s.server_id, s.gtid_slave_pos)):
                # Writes of its own (it was made writable): errant, to undo. With
                # failover-readonly-state off replicas are writable on purpose: left alone.
                why = f"wrote {', '.join(own)} itself while a replica"
            elif (s.replica.io_running == "No" and s.replica.sql_running == "No"
                  and self.labels.get(addr) in ("Failed", "Suspect")):
                why = "is back with replication stopped"
            if why:
                self.detached[addr] += 1
                if self.detached[addr] >= REJOIN_CONFIRM_TICKS:
                    out.append((addr, why))
            else:
                self.detached.pop(addr, None)
        return out

    def gather(self, states: dict[ServerAddress, ServerState], now: float) -> Facts:
        cfg = self.cfg
        persisted = self.store.load()
        self.server_maintenance = set(in_maintenance(cfg, persisted.maintenance))
        previous_master = self.master
        latest = persisted.crashes[-1] if persisted.crashes else None
        self.master = find_master(states, cfg.servers, self.master, recorded_primary(cfg, latest, states))
        deposed = deposed_by_failover(cfg, latest, states)
        if deposed is not None and self.master == deposed[0]:
            self.master = deposed[1]         # no flip-flop back to a deposed master
        if self.master != previous_master:
            self.failed_pings = 0
            self.history.clear()
            if previous_master is not None:
                self.log(f"master is now {self.master} (was {previous_master})")
        for a, s in states.items():
            if s.reachable:
                self.last_seen[a] = s
                self.fails.pop(a, None)
            else:
                self.fails[a] += 1
        if not any(s.reachable for s in states.values()):
            self.whole_down = True
        master_state = states.get(self.master) if self.master else None
        reachable = bool(master_state and master_state.reachable)
        previous_pings = self.failed_pings
        self.failed_pings = 0 if reachable else self.failed_pings + 1
        if reachable:
            self.lag_while_master_answered = lag_readings(states, time.time())
        elif previous_pings == 0 and self.act and self.master is not None:
            # The master just stopped answering: keep the lag it left the replicas with
            # (they report NULL from now on) for failover-max-slave-delay.
            self.store.set_lag_seen(self.lag_while_master_answered)
        if reachable:
            self.whole_down = False
        self.read_only_ticks = self.read_only_ticks + 1 if reachable and master_state.read_only else 0

        samples = self._sample(states)
        ready, observers = self._alive_observers(now, samples) if not reachable else (True, ())
        agree = bool(cfg["failover-falsepositive-replicas-agree"])
        lost_by, still_hear = self._agreement(samples) if agree and not reachable else ((), ())
        self.history.append((now, samples))

        running = self.operation_running()
        if (self.act and reachable and not running and not master_state.read_only
                and persisted.master_event_scheduler != (on := master_state.event_scheduler.upper() == "ON")):
            self.store.set_master_event_scheduler(on)      # a later failover starts it on the new master
        replicas = tuple(a for a in cfg.servers if a != self.master and (s := self.last_seen.get(a))
                         and s.replica is not None and same_server(s.replica.master, self.master))
        candidate, no_reason = None, ""
        if self.master is not None and not reachable:
            fill_unknown_lag(states, self.lag_while_master_answered or persisted.lag_seen)
            election = elect(cfg, states, self.master, "failover", maintenance=self.server_maintenance,
                             quarantined=persisted.quarantined)
            candidate = election.candidate
            no_reason = "; ".join(f"{u} {w}" for u, w in election.reasons.items())
        self.candidate = candidate
        rejoin = self._rejoin_needed(states, persisted.quarantined) if self.master and reachable else []
        followers = Counter(s.replica.master for s in states.values() if s.reachable and s.replica)
        other_writable = tuple(
            a for a in cfg.servers
            if a != self.master and states[a].reachable and states[a].replica is None
            and not states[a].read_only and any(same_server(a, f) for f in followers)
        )
        broken = []
        for a in replicas:
            rep = states[a].replica if states[a].reachable else None
            if rep is None:
                continue
            if rep.sql_running != "Yes" and rep.last_sql_error:
                broken.append((a, f"SQL thread stopped: {rep.last_sql_error}"))
            elif rep.io_running == "No" and rep.last_io_error:
                broken.append((a, f"IO thread stopped: {rep.last_io_error}"))
        since = (time.time() - persisted.last_failover_at) if persisted.last_failover_at else None
        quarantined = tuple((a, persisted.quarantined[a.url]) for a in cfg.servers
                            if a.url in persisted.quarantined and states[a].reachable)
        connected = sum(1 for a in cfg.servers if a != self.master and states[a].reachable
                        and states[a].replica is not None and same_server(states[a].replica.master, self.master)
                        and states[a].replica.io_running == "Yes")
        if not reachable or connected:
            self.no_replica_since = None
        elif self.no_replica_since is None:
            self.no_replica_since = now
        return Facts(
            semisync_managed=bool(cfg.get("semisync", False)),
            semisync_master_on=bool(master_state and master_state.semisync_master),
            connected_replicas=connected,
            no_replica_for=(now - self.no_replica_since) if self.no_replica_since is not None else 0.0,
            async_fallback_after=float(cfg.get("failover-semisync-async-fallback", 10.0)),
            master=self.master, master_reachable=reachable,
            master_error=(master_state.error if master_state and not reachable else ""),
            failed_pings=self.failed_pings, ping_threshold=int(cfg["failover-falsepositive-ping-counter"]),
            previous_failed_pings=previous_pings if reachable else 0,
            replicas=replicas, replicas_reachable=sum(1 for a in replicas if states[a].reachable),
            heartbeat_check=bool(cfg["failover-falsepositive-heartbeat"]), heartbeat_window_ready=ready,
            alive_observers=observers, failover_mode=cfg["failover-mode"],
            replicas_agree=agree, replicas_agree_pings=int(cfg["failover-falsepositive-replicas-agree-pings"]),
            lost_by=lost_by, still_hear=still_hear,
            failover_count=persisted.failover_count, failover_limit=int(cfg["failover-limit"]),
            since_last_failover=since, failover_time_limit=float(cfg["failover-time-limit"]),
            candidate=candidate, no_candidate_reason=no_reason, maintenance=self.maintenance,
            operation_running=running,
            whole_cluster_was_down=self.whole_down, restart_unsafe=bool(cfg["failover-restart-unsafe"]),
            other_writable=other_writable, master_read_only=self.read_only_ticks >= 2,
            master_read_only_now=self.read_only_ticks >= 1,
            rejoin_needed=tuple(rejoin), autorejoin=bool(cfg["autorejoin"]), quarantined=quarantined,
            broken_replicas=tuple(broken), servers=len(cfg.servers), autoseed=bool(cfg.get("autoseed")),
            unreachable_replicas=tuple(a for a in cfg.servers if a != self.master and not states[a].reachable),
            stray_writable=tuple(stray_writable(cfg, states, self.master, self.server_maintenance)),
            master_maintenance=self.master in self.server_maintenance,
            in_maintenance=tuple(a for a in cfg.servers if a in self.server_maintenance),
        )

    def operation_running(self) -> str:
        """What runs now, here (the runner's operation) or in another process (the lock's holder)."""
        return self.runner.running

    @property
    def last_result(self) -> OperationResult | None:
        return self.runner.last_result

    # -- labels -------------------------------------------------------------------------
    def _labels(self, states: dict[ServerAddress, ServerState], decision: Decision, facts: Facts,
                quarantined: dict[str, str]) -> dict[ServerAddress, str]:
        threshold = int(self.cfg["failover-falsepositive-ping-counter"])
        out = {}
        for a in self.cfg.servers:
            s = states[a]
            if a == self.master:
                out[a] = master_state_label(decision, facts)
            elif a in self.server_maintenance or a.url in quarantined or self.maintenance:
                out[a] = "Maintenance"
            elif not s.reachable:
                out[a] = "Suspect" if self.fails[a] < threshold else "Failed"
            elif s.replica is not None:
                out[a] = "Slave"
            else:
                out[a] = "Standalone"
        return out

    # -- one round ----------------------------------------------------------------------
    def tick(self) -> Decision:
        started = self._clock()
        states = self.read_all()
        if self._op_finished_at >= started:
            # An operation finished while this tick read: its snapshot may predate the
            # promotion (the new master still a replica): read again, never decide on it.
            started = self._clock()
            states = self.read_all()
        now = self._clock()
        with self._mutex:
            facts = self.gather(states, now)
            decision = analyse(facts)
            persisted_q = self.store.load().quarantined
            labels = self._labels(states, decision, facts, persisted_q)
            changed = self.decision is None or decision.sentence != self.decision.sentence
            old_labels = self.labels
            self.states, self.labels = states, labels
            if changed:
                self.decision_at = time.time()
            self.decision = decision
            self.ticks += 1
            self.last_tick_at = time.monotonic()
            self.last_tick_seconds = self._clock() - started
        if changed:
            level = "" if decision.action in (Action.NOTHING, Action.RECOVER, Action.REOPEN) \
                else f"[{decision.action.value}] "
            self.log(f"{level}{decision.sentence}")
        for a, label in labels.items():
            old = old_labels.get(a)
            if old is not None and old != label:
                self.log(f"server {a}: {old} -> {label}")
                if self.act:
                    self._hook("state-change", a, label, old)
        if self.act:
            self._act(decision, changed, facts)
            self._route(decision, facts)
        return decision

    # -- acting -------------------------------------------------------------------------
    def _hook(self, kind: str, *args: Any) -> None:
        try:
            from repman.routing import scripts
        except ImportError:
            return
        if kind == "state-change":
            fn, call_args = scripts.run_state_change_script, (self.cfg, *args, self.log)
            addr, new, old = args
            if self.cfg.get("alert-script") and not self.closed:   # repman alerts on state changes
                try:
                    self._background.submit(scripts.run_alert_script, self.cfg, f"{addr} {old} -> {new}",
                                            self.log, host=str(addr), prev_state=old, state=new)
                except RuntimeError:
                    pass
        else:
            fn, call_args = scripts.run_alert_script, (self.cfg, args[0], self.log)
        path = self.cfg.get("db-servers-state-change-script" if kind == "state-change" else "alert-script")
        if path and not self.closed:
            try:
                self._background.submit(fn, *call_args)
            except RuntimeError:      # closing: the hook is dropped, the log has the line
                pass

    def alert(self, sentence: str) -> None:
        self.log(f"ALERT {sentence}")
        self._hook("alert", sentence)

    def _act(self, decision: Decision, changed: bool, facts: Facts | None = None) -> None:
        if decision.action in (Action.ALERT, Action.REFUSE, Action.FAILED) and changed:
            self.alert(decision.sentence)
        if decision.rule in ("semisync-async-fallback", "semisync-restore") and decision.target is not None:
            self._semisync_master(decision.target, decision.rule == "semisync-restore")
        elif decision.action == Action.FENCE and facts is not None:
            self._fence(facts)
        elif decision.action == Action.FAILOVER:
            self._start("failover", decision, None)
        elif decision.action == Action.REJOIN and decision.target is not None:
            self._start("rejoin", decision, decision.target)
        elif decision.action == Action.SEED and decision.target is not None:
            self._start("autoseed", decision, decision.target)
        elif decision.action == Action.REOPEN:
            self._start("reopen", decision, decision.target)

    def _semisync_master(self, master: ServerAddress, on: bool) -> None:
        """The watcher's own switch between semi-sync and asynchronous commits on the master."""
        try:
            with connect(master, self.cfg.admin, timeout=1, read_timeout=2) as conn:
                execute(conn, f"SET GLOBAL rpl_semi_sync_master_enabled = {'ON' if on else 'OFF'}")
            self.log(f"semi-sync {'on' if on else 'off (asynchronous commits)'} on master {master}")
        except pymysql.MySQLError as exc:
            self.alert(f"could not switch semi-sync {'on' if on else 'off'} on {master}: "
                       f"{exc.args[-1] if exc.args else exc}")

    def _fence(self, facts: Facts) -> None:
        """Fence the stray writable servers now, in this tick.

        Under the operation lock and on a fresh read: the facts may predate an operation
        that just finished (a new master is writable before the replicas follow it), and
        the lock keeps a switchover or failover of another process from starting meanwhile.
        """
        names = ", ".join(str(a) for a, _ in facts.stray_writable)
        lock = OperationLock(self.cfg.state_dir)
        if not lock.acquire(f"fence of {names}", timeout=0.5):
            self.log(f"not fencing {names} now: {lock.holder() or 'an operation'} is running")
            return
        try:
            states = self.read_all()
            latest = self.store.latest_crash()
            master = find_master(states, self.cfg.servers, self.master, recorded_primary(self.cfg, latest, states))
            deposed = deposed_by_failover(self.cfg, latest, states)
            if deposed is not None and master == deposed[0]:
                master = deposed[1]
            if master != facts.master or not states[master].reachable:
                self.log(f"not fencing {names}: the master changed or does not answer on a second read")
                return
            for addr, _ in stray_writable(self.cfg, states, master, self.server_maintenance):
                try:
                    fence(self.cfg, addr, self.log)
                except pymysql.MySQLError as exc:
                    self.alert(f"could not fence {addr}: {exc.args[-1] if exc.args else exc}")
        finally:
            lock.release()

    def _start(self, kind: str, decision: Decision, server: ServerAddress | None) -> None:
        """Hand an automatic decision to the runner; it refuses while an operation runs, and
        retries a failed one only after ``RETRY_AFTER_TICKS`` ticks (10 s at least)."""
        desc = f"{kind} to {decision.target}" if kind == "failover" else f"{kind} of {server}"
        self.runner.submit(Operation(kind, desc, server=server, lock_wait=1.0,
                                     retry_key=(kind, str(decision.target))))

    def _run(self, operation: Operation) -> OperationResult:
        """On the runner's thread: say it, then run it from the registry."""
        self.log(f"starting {operation.describe}")
        return self._execute(operation)

    def _finish(self, result: OperationResult, operation: Operation | None = None) -> None:
        with self._mutex:
            self._op_finished_at = self._clock()
            if result.ok and result.new_primary is not None and result.kind in ("failover", "switchover"):
                self.master = result.new_primary
                self.failed_pings = 0
                self.history.clear()
        self.log(result.sentence)
        if not result.ok:
            self.alert(result.sentence)

    def operate(self, kind: str, to: ServerAddress | None = None, who: str = "an operator",
                timeout: float | None = None) -> OperationResult | None:
        """An operator's switchover or failover (API): a forced decision through the same guards
        and limits as the automatic ones, run by the runner. None: it still runs after ``timeout``."""
        return request(self.runner, self.cfg, Request(kind, to=to, who=who),
                       describe=f"{kind} requested by an operator", timeout=timeout)

    def _route(self, decision: Decision, facts: Facts) -> None:
        """Tell the routers the current view, in the background (a dead proxy never delays a tick)."""
        if not self.routers or self.master is None or facts.operation_running:
            return
        try:
            from repman.routing import notify
            from repman.routing.base import Topology
        except ImportError:
            return
        healthy, unhealthy = self.read_targets()
        topology = Topology(cluster=self.name, primary=self.master, replicas=tuple(healthy),
                            unhealthy=tuple(unhealthy), reason="monitor", servers=tuple(self.cfg.servers))
        if not self._routing_busy.acquire(blocking=False):
            return

        def run() -> None:
            try:
                notify(self.routers, topology, self.log)
            finally:
                self._routing_busy.release()

        self._background.submit(run)

    def read_targets(self, max_lag: float | None = None) -> tuple[list[ServerAddress], list[ServerAddress]]:
        """(replicas fit for reads, every other non-master server)."""
        if max_lag is None:
            max_lag = float(self.cfg["failover-max-slave-delay"])
        healthy, unhealthy = [], []
        with self._mutex:
            for a in self.cfg.servers:
                if a == self.master:
                    continue
                if replica_healthy(self.states.get(a), self.master, max_lag) and self.labels.get(a) == "Slave":
                    healthy.append(a)
                else:
                    unhealthy.append(a)
        return healthy, unhealthy

    # -- status -------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        with self._mutex:
            persisted = self.store.load()
            d = self.decision
            return {
                "cluster": self.name,
                "master": self.master.url if self.master else None,
                "failover_mode": self.cfg["failover-mode"],
                "decision": None if d is None else {
                    "action": d.action.value, "sentence": d.sentence, "rule": d.rule,
                    "target": d.target.url if d.target else None, "since": self.decision_at,
                },
                "failover_candidate": self.candidate.url if self.candidate else None,
                "failed_pings": self.failed_pings,
                "failover_count": persisted.failover_count,
                "failover_limit": self.cfg["failover-limit"],
                "last_failover_at": persisted.last_failover_at or None,
                "quarantined": dict(persisted.quarantined),
                "maintenance": list(persisted.maintenance),
                "operation": self.operation_running() or None,
                "last_operation": self.last_result.as_dict() if self.last_result else None,
                "operations": self.runner.status(),
                "ticks": self.ticks,
                "jobs": persisted.jobs[-20:],
                "schedule": self.scheduler.status()["jobs"] if self.scheduler is not None else [],
                "servers": [server_status(self.states.get(a), self.labels.get(a, "Unknown"), a, self.master,
                                          self.last_seen.get(a), maintenance=a in self.server_maintenance)
                            for a in self.cfg.servers],
            }

    def close(self) -> None:
        self.closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._background.shutdown(wait=False, cancel_futures=True)

    def replica_fit(self, server: ServerAddress, max_lag: float) -> bool:
        """The last tick's answer to "may ``server`` take reads?" (the API's /replica check)."""
        with self._mutex:
            state, master, label = self.states.get(server), self.master, self.labels.get(server)
        return label == "Slave" and replica_healthy(state, master, max_lag)

    def maintenance_changed(self, server: ServerAddress, on: bool) -> None:
        """An operator's maintenance switch (already persisted): applied now, not at the next tick."""
        with self._mutex:
            (self.server_maintenance.add if on else self.server_maintenance.discard)(server)

    def wait_operation(self, timeout: float | None = None) -> None:
        self.runner.wait(timeout)


def replica_healthy(state: ServerState | None, master: ServerAddress | None, max_lag: float) -> bool:
    """Replicating from the master, both threads running, lag known and within ``max_lag`` (<0: any)."""
    if state is None or not state.reachable or state.replica is None:
        return False
    rep = state.replica
    if not same_server(rep.master, master) or not rep.healthy:
        return False
    if rep.seconds_behind is None:
        return False
    return max_lag < 0 or rep.seconds_behind <= max_lag


__all__ = ["ClusterMonitor", "find_master", "replica_healthy", "server_status", "io_position"]
