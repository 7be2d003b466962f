"""One cluster's monitor: a thin loop that reads every server, derives facts, decides, acts.

A tick reads all servers in parallel (a dead one costs its connect timeout, not
the others'), hands the states with what it remembers to ``facts.derive_facts``
(pure: pings, heartbeat history, the replicas' agreement, rejoin confirmation,
the lag kept after the master died), asks ``analysis.analyse`` for the decision,
applies the effects (log lines, state-store writes) and publishes an immutable
``status.Snapshot`` that the CLI and the API read without the monitor's lock.
The master is ``primary.find_primary``'s answer, never the latest failover's
deposed master, and no decision is taken on a snapshot read before an operation
finished. A second writable server is fenced within the tick that sees it (never
two writable masters); long actions (failover, rejoin, reopen, autoseed) and
operators' requests go to the cluster's operation runner (``runner``), so the
ticks go on; the operation lock keeps them exclusive with a CLI's operation.
Servers in maintenance come from the state store.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Mapping, Sequence

import pymysql

from repman.alerts.dispatch import Alerter
from repman.alerts.settings import AlertSettings
from repman.db import ServerAddress, connect, execute
from repman.routing import notify, scripts
from repman.routing.base import Topology
from repman.topology import ServerState, read_state
from repman.watcher.analysis import Action, Decision, Facts, Request, analyse
from repman.watcher.cluster_config import ClusterConfig
from repman.watcher.election import io_position
from repman.watcher.events import EventLog, operation_details
from repman.watcher.facts import (
    REJOIN_CONFIRM_TICKS,
    Effect,
    History,
    KeepEventScheduler,
    KeepLagSeen,
    LogLine,
    Memory,
    Sample,
    derive_facts,
    server_labels,
    stray_writable,
)
from repman.watcher.freeze import fence
from repman.watcher.metrics import ClusterMetrics
from repman.watcher.operations import build_routers, executor, request, store_for
from repman.watcher.oplock import OperationLock
from repman.watcher.primary import find_master, find_primary
from repman.watcher.result import OperationResult
from repman.watcher.runner import Operation, OperationRunner
from repman.watcher.status import Snapshot, cluster_status, read_targets, replica_healthy, server_status

logger = logging.getLogger("repman.watcher")
Reader = Callable[[ServerAddress], ServerState]
RETRY_AFTER_TICKS = 5         # a failed operation is retried after max(10 s, this many ticks)


def _situation(decision: Decision) -> tuple[str, Action, ServerAddress | None]:
    """What a decision is about, without its counters: the rule, the action and the target."""
    return decision.rule, decision.action, decision.target


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
        self._mutex = threading.RLock()     # a tick's derivation against an operation's end (_finish)
        latest = self.store.latest_crash()
        master = None
        if latest is not None:
            master = next((a for a in cfg.servers if a.url == latest.new_master), None)
        self._memory = Memory.start(cfg, master)
        self._snapshot = Snapshot(cluster=cfg.name, master=master)
        self.wake = threading.Event()       # set when an operation ends: the loop ticks at once
        self._execute = executor(cfg, self.log, lambda: self.routers)
        self.runner = OperationRunner(cfg.name, self._run, self.lock, on_finished=self._finish,
                                      wake=self.wake, clock=clock,
                                      retry_after=max(10.0, RETRY_AFTER_TICKS * cfg.ticker))
        self.metrics = ClusterMetrics()     # tick and operation durations for GET /metrics
        self.runner.on_run = self.metrics.observe_run
        self.alerter = Alerter(AlertSettings.from_config(cfg, cfg.state_dir), self.log)  # webhook, mail
        self._routing_busy = threading.Lock()
        self.closed = False
        self.scheduler: Any = None          # repman.watcher.scheduler.Scheduler (watch mode)
        self.binlog_archiver: Any = None    # repman.backup.binlogs.BinlogArchiver (backup-binlogs)
        self._op_finished_at = float("-inf")
        self.events = EventLog(cfg.name, self.store)   # written by the acting watcher only (flush_events)
        self._routed: tuple[Any, ...] | None = None    # the last routing told to the routers (router events)
        self.gate: Callable[[], str] | None = None   # HA (repman.watcher.ha): "" while this watcher leads
        self.acting = act

    # -- what readers see: the published snapshot ---------------------------------------
    @property
    def snapshot(self) -> Snapshot:
        """The last tick's outcome, immutable; swapped in whole, read without a lock."""
        return self._snapshot

    @property
    def master(self) -> ServerAddress | None:
        return self._snapshot.master

    @property
    def states(self) -> Mapping[ServerAddress, ServerState]:
        return self._snapshot.states

    @property
    def labels(self) -> Mapping[ServerAddress, str]:
        return self._snapshot.labels

    @property
    def decision(self) -> Decision | None:
        return self._snapshot.decision

    @property
    def decision_at(self) -> float:
        return self._snapshot.decision_at

    @property
    def candidate(self) -> ServerAddress | None:
        return self._snapshot.candidate

    @property
    def failed_pings(self) -> int:
        return self._snapshot.failed_pings

    @property
    def ticks(self) -> int:
        return self._snapshot.ticks

    @property
    def last_tick_at(self) -> float:
        return self._snapshot.last_tick_at

    @property
    def last_tick_seconds(self) -> float:
        return self._snapshot.last_tick_seconds

    # -- what the monitor remembers between ticks ---------------------------------------
    @property
    def memory(self) -> Memory:
        return self._memory

    @property
    def last_seen(self) -> Mapping[ServerAddress, ServerState]:
        return self._memory.last_seen

    @property
    def fails(self) -> Mapping[ServerAddress, int]:
        return self._memory.fails

    @property
    def history(self) -> History:
        return self._memory.history

    @property
    def whole_down(self) -> bool:
        return self._memory.whole_down

    @property
    def read_only_ticks(self) -> int:
        return self._memory.read_only_ticks

    @property
    def detached(self) -> Mapping[ServerAddress, int]:
        return self._memory.detached

    @property
    def lag_while_master_answered(self) -> Mapping[str, tuple[float, float]]:
        return self._memory.lag_while_master_answered

    @property
    def no_replica_since(self) -> float | None:
        return self._memory.no_replica_since

    @property
    def server_maintenance(self) -> frozenset[ServerAddress]:
        return self._memory.server_maintenance

    @property
    def maintenance(self) -> bool:
        return self._memory.maintenance

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

    # -- one round ----------------------------------------------------------------------
    def tick(self) -> Decision:
        """Read, derive the facts, decide, publish, then act on the decision."""
        started = self._clock()
        states = self.read_all()
        if self._op_finished_at >= started:
            # An operation finished while this tick read: its snapshot may predate the
            # promotion (the new master still a replica): read again, never decide on it.
            started = self._clock()
            states = self.read_all()
        now = self._clock()
        why_not = self.gate() if self.gate is not None else ""
        self.acting = self.act and not why_not
        with self._mutex:
            persisted = self.store.load()
            facts, memory, effects = derive_facts(self._memory, self.cfg, states, persisted, now,
                                                  self.operation_running(), wall=time.time())
            self._apply(effects)
            decision = analyse(facts)
            if why_not:
                decision = dataclasses.replace(decision, sentence=f"{decision.sentence}; {why_not}")
            labels = server_labels(self.cfg, memory, memory.states, decision, facts, persisted.quarantined)
            before = self._snapshot
            changed = before.decision is None or decision.sentence != before.decision.sentence
            # A new situation, not a new counter in the same sentence ("failed 188/3 pings"):
            # alerts go out once per situation, not once per tick.
            new_situation = before.decision is None or _situation(decision) != _situation(before.decision)
            self._memory = memory.with_labels(labels)
            self._publish(decision=decision, decision_at=time.time() if changed else before.decision_at,
                          candidate=facts.candidate, ticks=before.ticks + 1, last_tick_at=time.monotonic(),
                          last_tick_seconds=self._clock() - started)
        self.metrics.observe_tick(self._snapshot.last_tick_seconds)
        if changed:
            quiet = decision.action in (Action.NOTHING, Action.RECOVER, Action.REOPEN)
            level = "" if quiet else f"[{decision.action.value}] "
            self.log(f"{level}{decision.sentence}")
        if new_situation:        # the history keeps situations, not every tick's counter
            quiet = decision.action in (Action.NOTHING, Action.RECOVER, Action.REOPEN)
            self.events.emit("info" if quiet else "warning", "decision", decision.sentence,
                             {"rule": decision.rule, "action": decision.action.value,
                              "target": str(decision.target) if decision.target else None})
        for a, label in labels.items():
            old = before.labels.get(a)
            if old is not None and old != label:
                self.log(f"server {a}: {old} -> {label}")
                self.events.emit("warning" if label in ("Failed", "Suspect", "Unconnected") else "info", "state",
                                 f"server {a}: {old} -> {label}", {"server": a.url, "from": old, "to": label})
                if self.acting:
                    self._hook("state-change", a, label, old)
        if self.acting:
            self._act(decision, new_situation, facts)
            self._route(decision, facts)
        self.flush_events()
        return decision

    def flush_events(self) -> None:
        """Write the collected events in one store update (acting watcher only: an observer drops them)."""
        if not self.acting:
            self.events.discard()
            return
        try:
            self.events.flush()
        except OSError as exc:
            logger.warning("%s: cannot write the event history: %s", self.name, exc)

    def _apply(self, effects: list[Effect]) -> None:
        """Hand each effect to its owner: log lines to the log, the rest to the state store
        (only when acting: an observe-only monitor writes nothing)."""
        for effect in effects:
            if isinstance(effect, LogLine):
                self.log(effect.message)
            elif not self.acting:
                continue
            elif isinstance(effect, KeepLagSeen):
                self.store.set_lag_seen(effect.as_store_value())
            elif isinstance(effect, KeepEventScheduler):
                self.store.set_master_event_scheduler(effect.on)

    def _publish(self, **changes: Any) -> None:
        """Swap in a new snapshot: the memory's master, pings and states with ``changes``."""
        m = self._memory
        self._snapshot = dataclasses.replace(
            self._snapshot, master=m.master, failed_pings=m.failed_pings, states=m.states, labels=m.labels,
            last_seen=m.last_seen, **changes)

    def _adopt_primary(self, primary: ServerAddress) -> None:
        """An operation promoted ``primary``: remember and show it before the next tick."""
        with self._mutex:
            self._memory = self._memory.with_primary(primary)
            self._publish()

    def operation_running(self) -> str:
        """What runs now, here (the runner's operation) or in another process (the lock's holder)."""
        return self.runner.running

    @property
    def last_result(self) -> OperationResult | None:
        return self.runner.last_result

    # -- acting -------------------------------------------------------------------------
    def _hook(self, kind: str, *args: Any) -> None:
        """Run the state-change or alert script in the background (a slow script never delays a tick)."""
        if self.closed:
            return
        jobs: list[Callable[[], Any]] = []
        if kind == "state-change":
            addr, new, old = args
            if self.cfg.text("db-servers-state-change-script"):
                jobs.append(lambda: scripts.run_state_change_script(self.cfg, addr, new, old, self.log))
            if self.cfg.text("alert-script"):                   # repman alerts on state changes
                jobs.append(lambda: scripts.run_alert_script(self.cfg, f"{addr} {old} -> {new}", self.log,
                                                             host=str(addr), prev_state=old, state=new))
            jobs.append(lambda: self.alerter.notify(f"state-change {addr}", f"{addr} {old} -> {new}"))
        else:
            sentence = args[0]
            if self.cfg.text("alert-script"):
                jobs.append(lambda: scripts.run_alert_script(self.cfg, sentence, self.log))
            jobs.append(lambda: self.alerter.notify("alert", sentence))
        for job in jobs:
            try:
                self._background.submit(job)
            except RuntimeError:      # closing: the hook is dropped, the log has the line
                pass

    def alert(self, sentence: str) -> None:
        self.log(f"ALERT {sentence}")
        self.events.emit("error", "alert", sentence)
        self._hook("alert", sentence)

    def _act(self, decision: Decision, new_situation: bool, facts: Facts | None = None) -> None:
        if decision.action in (Action.ALERT, Action.REFUSE, Action.FAILED) and new_situation:
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
            master = find_primary(states, self.cfg.servers, self.store.latest_crash(), self.master).address
            if master is None or master != facts.master or not states[master].reachable:
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
        asked = f" ({operation.who})" if operation.who and operation.who not in operation.describe else ""
        self.events.emit("info", "operation", f"starting {operation.describe}{asked}",
                         {"operation": operation.kind, "by": operation.who or "the watcher", "phase": "start",
                          "server": str(operation.server or operation.to or "") or None})
        self.flush_events()
        return self._execute(operation)

    def _finish(self, result: OperationResult, operation: Operation | None = None) -> None:
        with self._mutex:
            self._op_finished_at = self._clock()
            if result.ok and result.new_primary is not None and result.kind in ("failover", "switchover"):
                self._adopt_primary(result.new_primary)
        self.log(result.sentence)
        run = self.runner.history[-1] if self.runner.history else None
        run = run if run is not None and run.result is result else None
        details = operation_details(result.as_dict(), (operation.who if operation else "") or "the watcher",
                                    run.started_at if run else None, run.seconds if run else None)
        self.events.emit("info" if result.ok else "error", "operation", result.sentence, {**details, "phase": "end"})
        if not result.ok:
            self.alert(result.sentence)
        self.flush_events()

    def operate(self, kind: str, to: ServerAddress | None = None, who: str = "an operator",
                timeout: float | None = None, source: ServerAddress | None = None) -> OperationResult | None:
        """An operator's request (API): a forced decision through the same guards and limits as
        the automatic ones, run by the runner. None: it still runs after ``timeout``."""
        return request(self.runner, self.cfg, Request(kind, to=to, who=who),
                       describe=f"{kind} requested by an operator", timeout=timeout, source=source)

    def _route(self, decision: Decision, facts: Facts) -> None:
        """Tell the routers the current view, in the background (a dead proxy never delays a tick)."""
        if not self.routers or self.master is None or facts.operation_running:
            return
        healthy, unhealthy = self.read_targets()
        topology = Topology(cluster=self.name, primary=self.master, replicas=tuple(healthy),
                            unhealthy=tuple(unhealthy), reason="monitor", servers=tuple(self.cfg.servers))
        if not self._routing_busy.acquire(blocking=False):
            return

        def run() -> None:
            try:
                outcome = notify(self.routers, topology, self.log)
                self._router_event(topology, outcome)
            finally:
                self._routing_busy.release()

        self._background.submit(run)

    def _router_event(self, topology: Topology, outcome: dict[str, str]) -> None:
        """An event when the routing told to the routers changes (not on every tick's resync)."""
        view = (topology.primary, topology.replicas, topology.unhealthy, tuple(sorted(outcome.items())))
        if view == self._routed or all(v == "unchanged" for v in outcome.values()):
            return
        self._routed = view
        failed = {k: v for k, v in outcome.items() if v.startswith("failed")}
        self.events.emit("error" if failed else "info", "router",
                         f"routers told: primary {topology.primary}, readers "
                         f"{', '.join(str(a) for a in topology.replicas) or 'none'}",
                         {"primary": topology.primary.url if topology.primary else None,
                          "replicas": [a.url for a in topology.replicas],
                          "unhealthy": [a.url for a in topology.unhealthy], "routers": dict(outcome)})

    def read_targets(self, max_lag: float | None = None) -> tuple[list[ServerAddress], list[ServerAddress]]:
        """(replicas fit for reads, every other non-master server), from the published snapshot."""
        if max_lag is None:
            max_lag = self.cfg.seconds("failover-max-slave-delay")
        return read_targets(self._snapshot, self.cfg.servers, max_lag)

    # -- status -------------------------------------------------------------------------
    def status(self) -> dict[str, Any]:
        """The status document from the published snapshot and the state store; no lock taken."""
        schedule = self.scheduler.status()["jobs"] if self.scheduler is not None else []
        doc = cluster_status(self._snapshot, self.cfg, self.store.load(), self.operation_running(),
                             self.last_result, schedule, self.runner.status())
        if self.gate is not None:           # HA: whether this watcher acts, and if not why (who leads)
            why_not = self.gate()
            doc["ha"] = {"acting": self.act and not why_not, "why_not": why_not}
        return doc

    def close(self) -> None:
        self.closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)
        self._background.shutdown(wait=False, cancel_futures=True)

    def replica_fit(self, server: ServerAddress, max_lag: float) -> bool:
        """The last tick's answer to "may ``server`` take reads?" (the API's /replica check)."""
        snap = self._snapshot
        return snap.labels.get(server) == "Slave" and replica_healthy(snap.states.get(server), snap.master, max_lag)

    def wait_operation(self, timeout: float | None = None) -> None:
        self.runner.wait(timeout)


__all__ = [
    "REJOIN_CONFIRM_TICKS", "ClusterMonitor", "Sample", "find_master", "io_position", "replica_healthy",
    "server_status", "stray_writable",
]
