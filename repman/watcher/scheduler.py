"""Cron jobs of one cluster inside the watcher (``monitoring-scheduler``).

``poll()`` is called after every monitoring tick and only compares clocks: a
due job is handed to the cluster's operation runner, in a lane of its kind, so
a backup never delays a tick nor holds back a failover. One job of a kind runs
at a time per cluster (the runner refuses a due run while the previous one
still runs: it is recorded as ``skipped``). Every run is written to the cluster's
state store before it starts and when it ends; a run the store still shows as
``running`` when a watcher starts belonged to a watcher that died, and is
reported as ``interrupted`` instead of silently vanishing.
"""

from __future__ import annotations

import os
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Callable

from croniter import croniter

from repman.backup.binlogs import BinlogArchiver
from repman.backup.settings import BackupSettings, cron_expression
from repman.backup.take import take_backup
from repman.local.mariadb import pid_alive
from repman.watcher.cluster_config import ClusterConfig
from repman.watcher.result import OperationResult
from repman.watcher.runner import Operation, OperationRunner
from repman.watcher.state_store import ClusterState, StateStore

if TYPE_CHECKING:  # the monitor imports this module; the type is for the checker only
    from repman.watcher.monitor import ClusterMonitor

Log = Callable[[str], None]
Run = dict[str, Any]  # one job run as the state store keeps it (JSON)
HISTORY_KEEP = 100


@dataclass
class Job:
    kind: str                         # "physical-backup", "logical-backup"
    key: str                          # the cron key it comes from
    cron: str                         # croniter expression (seconds last)
    action: Callable[[], str]         # returns a one-line outcome; raises on failure
    next_at: float = 0.0


def backup_jobs(cfg: ClusterConfig) -> list[Job]:
    """The scheduler-* jobs the cluster's keys ask for."""
    def run(kind: str) -> Callable[[], str]:
        def action() -> str:
            r = take_backup(cfg, kind)
            return f"{kind} backup {r.id} of {r.server}: {r.size} bytes at GTID {r.gtid or 'unknown'}"
        return action

    out = []
    for kind in ("physical", "logical"):
        key = f"scheduler-db-servers-{kind}-backup-cron"
        out.append(Job(f"{kind}-backup", key, cron_expression(cfg.text(key), key), run(kind)))
    return out


class Scheduler:
    def __init__(self, store: StateStore, jobs: list[Job], log: Log = lambda m: None,
                 clock: Callable[[], float] = time.time, runner: OperationRunner | None = None,
                 on_tick: Callable[[], None] | None = None) -> None:
        self.store = store
        self.jobs = {j.kind: j for j in jobs}
        self.log = log
        self.clock = clock
        self.instance = uuid.uuid4().hex[:12]
        self.runner = runner or OperationRunner("scheduler", _no_registry_operation)
        self._side_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="scheduler-side")
        self._on_tick = on_tick          # e.g. binlog archiver following the primary
        self._side: Future[None] | None = None
        now = clock()
        for job in self.jobs.values():
            job.next_at = self._next(job, now)
        self._report_interrupted()

    @staticmethod
    def _next(job: Job, after: float) -> float:
        return float(croniter(job.cron, after).get_next(float))

    def _report_interrupted(self) -> None:
        found: list[Run] = []

        def change(state: ClusterState) -> None:
            for run in state.jobs:
                if run.get("status") == "running" and run.get("instance") != self.instance \
                        and not _other_watcher_alive(run):
                    run["status"] = "interrupted"
                    run["ended_at"] = self.clock()
                    run["sentence"] = (f"interrupted: the watcher (pid {run.get('pid')}) stopped while "
                                       f"this {run.get('kind')} ran")
                    found.append(run)
        self.store.update(change)
        for run in found:
            self.log(f"[alert] scheduled {run['kind']} {run['id']} was interrupted by a watcher restart")

    def _record(self, run: Run) -> None:
        def change(state: ClusterState) -> None:
            for i, r in enumerate(state.jobs):
                if r.get("id") == run["id"]:
                    state.jobs[i] = dict(run)
                    break
            else:
                state.jobs.append(dict(run))
            del state.jobs[:-HISTORY_KEEP]
        self.store.update(change)

    def poll(self) -> None:
        """Start what is due; returns at once (called from the monitoring tick)."""
        now = self.clock()
        if self._on_tick is not None and (self._side is None or self._side.done()):
            self._side = self._side_pool.submit(self._on_tick)
        for job in self.jobs.values():
            if now < job.next_at:
                continue
            due = job.next_at
            job.next_at = self._next(job, now)
            run: Run = {"id": f"{job.kind}-{int(due)}-{self.instance[:4]}", "kind": job.kind, "scheduled_at": due,
                   "started_at": now, "ended_at": None, "status": "running", "sentence": "",
                   "pid": os.getpid(), "instance": self.instance}
            ticket = self.runner.submit(Operation(job.kind, f"scheduled {job.kind}", lane=job.kind,
                                                  call=partial(self._execute, job, run)))
            if not ticket.accepted:
                run.update(status="skipped", ended_at=now, sentence=f"skipped: the previous {job.kind} still runs")
                self._record(run)
                self.log(f"scheduled {job.kind} skipped: the previous one still runs")

    def _execute(self, job: Job, run: Run) -> OperationResult:
        """On the runner's thread: recorded as running first, then as it ended."""
        self._record(run)
        self.log(f"scheduled {job.kind} started")
        try:
            sentence = job.action()
            run.update(status="ok", sentence=sentence)
        except Exception as exc:  # noqa: BLE001 - a failed job is recorded, never fatal
            run.update(status="failed", sentence=str(exc) or type(exc).__name__)
        run["ended_at"] = self.clock()
        self._record(run)
        self.log(f"scheduled {job.kind} {run['status']}: {run['sentence']}")
        return OperationResult(run["status"] == "ok", run["sentence"], kind=job.kind)

    def status(self) -> dict[str, Any]:
        return {"jobs": [{"kind": j.kind, "key": j.key, "next_at": j.next_at, "running": self.runner.busy(j.kind)}
                         for j in self.jobs.values()]}

    def close(self, wait: bool = False) -> None:
        if wait:
            for kind in self.jobs:
                self.runner.wait(lane=kind)
        self._side_pool.shutdown(wait=wait, cancel_futures=True)


def _no_registry_operation(op: Operation) -> OperationResult:
    """A scheduler's own runner runs jobs only (each brings its ``call``)."""
    raise ValueError(f"the scheduler runs jobs, not {op.kind}")


def _other_watcher_alive(run: Run) -> bool:
    """A run still owned by another live process (two watchers in one host) is not interrupted."""
    pid = int(run.get("pid") or 0)
    return pid > 0 and pid != os.getpid() and pid_alive(pid)


def scheduler_for(monitor: ClusterMonitor) -> Scheduler | None:
    """The scheduler of a monitored cluster, or None when it has nothing to run."""
    cfg = monitor.cfg
    jobs = backup_jobs(cfg) if cfg.flag("monitoring-scheduler") else []
    on_tick = None
    if cfg.flag("backup-binlogs"):
        archiver = BinlogArchiver(BackupSettings.from_cluster(cfg).binlogs_dir, cfg.admin, monitor.log)
        monitor.binlog_archiver = archiver

        def on_tick() -> None:
            try:
                archiver.follow(monitor.master)
            except Exception as exc:  # noqa: BLE001 - retried next tick, and said
                monitor.log(f"binlog archive: {exc}")
    if not jobs and on_tick is None:
        return None
    return Scheduler(monitor.store, jobs, monitor.log, runner=monitor.runner, on_tick=on_tick)
