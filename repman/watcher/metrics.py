"""Prometheus metrics of the watcher, read from what the monitors already published.

Why a custom collector: a scrape must never open a database connection nor wait on
a monitor's lock, and the tick must not do extra work for metrics. So the gauges are
computed at scrape time from each monitor's immutable ``Snapshot`` (the same data the
status API shows); only what a snapshot cannot tell (every tick's duration, every
operation's duration and outcome) is counted as it happens, in ``ClusterMetrics``,
with one call from the monitor and one from the runner.
"""

from __future__ import annotations

import threading
import time
from bisect import bisect_left
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from repman.gtid import GtidPosition
from repman.watcher.status import server_status

if TYPE_CHECKING:
    from repman.watcher.monitor import ClusterMonitor
    from repman.watcher.runner import Run

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
TICK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
OPERATION_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 3600.0)
ROLES = ("master", "replica", "standalone")


class Histogram:
    """Cumulative bucket counts and a sum, safe to observe from any thread."""

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self._counts = [0] * (len(bounds) + 1)      # the last one is +Inf
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        with self._lock:
            self._counts[bisect_left(self.bounds, value)] += 1
            self._sum += value

    def buckets(self) -> tuple[list[tuple[str, float]], float]:
        """(Prometheus buckets as (le, cumulative count), sum)."""
        with self._lock:
            counts, total = list(self._counts), self._sum
        out, running = [], 0
        for le, n in zip([*(repr(b) for b in self.bounds), "+Inf"], counts):
            running += n
            out.append((le, float(running)))
        return out, total


class ClusterMetrics:
    """What one cluster's monitor counts as it goes: ticks, operations, completed failovers/switchovers."""

    def __init__(self) -> None:
        self.tick = Histogram(TICK_BUCKETS)
        self.operations: dict[tuple[str, str], Histogram] = {}
        self.completed: dict[str, int] = {"failover": 0, "switchover": 0}
        self._lock = threading.Lock()

    def observe_tick(self, seconds: float) -> None:
        self.tick.observe(seconds)

    def observe_run(self, run: Run) -> None:
        """A finished operation of the runner (HA operations and scheduled jobs alike)."""
        kind, outcome = run.operation.kind, "ok" if run.result.ok else "failed"
        with self._lock:
            hist = self.operations.setdefault((kind, outcome), Histogram(OPERATION_BUCKETS))
            if run.result.ok and kind in self.completed:
                self.completed[kind] += 1
        hist.observe(run.seconds)


def _gtid_by_domain(state: Any) -> dict[int, int]:
    """The server's position per domain: gtid_current_pos, or the binlog's when that is empty."""
    pos = GtidPosition.parse(state.gtid_current_pos or state.gtid_binlog_pos)
    return {d: g.seq for d, g in pos.by_domain.items()}


def _backup_successes(jobs: Iterable[Mapping[str, Any]]) -> dict[str, float]:
    """kind -> the end time of its last successful scheduled run."""
    out: dict[str, float] = {}
    for job in jobs:
        if job.get("status") == "ok" and job.get("ended_at"):
            kind = str(job.get("kind", ""))
            out[kind] = max(out.get(kind, 0.0), float(job["ended_at"]))
    return out


class WatcherCollector(Collector):
    """Reads the monitors' last snapshots at scrape time; ``clusters`` limits what a caller sees."""

    def __init__(self, monitors: Mapping[str, ClusterMonitor], clusters: Iterable[str] | None = None) -> None:
        self.monitors = monitors
        self.clusters = None if clusters is None else frozenset(clusters)

    def _visible(self) -> list[ClusterMonitor]:
        return [m for name, m in self.monitors.items() if self.clusters is None or name in self.clusters]

    def collect(self) -> Iterator[Metric]:  # noqa: C901 - one family after another, flat on purpose
        srv = ["cluster", "server"]
        up = GaugeMetricFamily("repman_server_up", "1 when the watcher's last read of the server succeeded", labels=srv)
        role = GaugeMetricFamily("repman_server_role", "1 for the server's role (master, replica, standalone)",
                                 labels=[*srv, "role"])
        ro = GaugeMetricFamily("repman_server_read_only", "1 when the server is read_only", labels=srv)
        lag = GaugeMetricFamily("repman_replication_lag_seconds", "Seconds_Behind_Master of a replica", labels=srv)
        io = GaugeMetricFamily("repman_replication_io_running", "1 when the replica's IO thread runs and is connected",
                              labels=srv)
        sq = GaugeMetricFamily("repman_replication_sql_running", "1 when the replica's SQL thread runs", labels=srv)
        gtid = GaugeMetricFamily("repman_gtid_sequence", "last GTID sequence number per replication domain",
                                 labels=[*srv, "domain"])
        decision = GaugeMetricFamily("repman_decision", "1 for the rule of the watcher's current decision",
                                     labels=["cluster", "rule", "action"])
        failovers = CounterMetricFamily("repman_failovers", "failovers this watcher completed", labels=["cluster"])
        switchovers = CounterMetricFamily("repman_switchovers", "switchovers this watcher completed",
                                          labels=["cluster"])
        ticks = CounterMetricFamily("repman_ticks", "monitoring ticks since the watcher started", labels=["cluster"])
        last_tick = GaugeMetricFamily("repman_last_tick_timestamp_seconds", "wall time of the last monitoring tick",
                                      labels=["cluster"])
        tick_hist = HistogramMetricFamily("repman_tick_duration_seconds", "wall time of one monitoring tick",
                                          labels=["cluster"])
        op_hist = HistogramMetricFamily("repman_operation_duration_seconds",
                                        "duration of operations (failover, switchover, rejoin, backups...)",
                                        labels=["cluster", "kind", "outcome"])
        backup = GaugeMetricFamily("repman_backup_last_success_timestamp_seconds",
                                   "end time of the last successful scheduled backup", labels=["cluster", "kind"])
        now_wall, now_mono = time.time(), time.monotonic()
        for m in self._visible():
            snap, c = m.snapshot, m.name
            for addr in m.cfg.servers:
                state = snap.states.get(addr)
                if state is None:
                    continue
                s = server_status(state, snap.labels.get(addr, "Unknown"), addr, snap.master, snap.last_seen.get(addr))
                labels = [c, addr.url]
                up.add_metric(labels, 1.0 if s["reachable"] else 0.0)
                for r in ROLES:
                    role.add_metric([*labels, r], 1.0 if s["role"] == r else 0.0)
                if not state.reachable:
                    continue
                ro.add_metric(labels, 1.0 if state.read_only else 0.0)
                for domain, seq in sorted(_gtid_by_domain(state).items()):
                    gtid.add_metric([*labels, str(domain)], float(seq))
                if state.replica is not None:
                    io.add_metric(labels, 1.0 if state.replica.io_running == "Yes" else 0.0)   # not Connecting
                    sq.add_metric(labels, 1.0 if state.replica.sql_running == "Yes" else 0.0)
                    if state.replica.seconds_behind is not None:
                        lag.add_metric(labels, float(state.replica.seconds_behind))
            if snap.decision is not None:
                decision.add_metric([c, snap.decision.rule, snap.decision.action.value], 1.0)
            metrics: ClusterMetrics = m.metrics
            failovers.add_metric([c], float(metrics.completed["failover"]))
            switchovers.add_metric([c], float(metrics.completed["switchover"]))
            ticks.add_metric([c], float(snap.ticks))
            if snap.ticks:
                last_tick.add_metric([c], now_wall - (now_mono - snap.last_tick_at))
            buckets, total = metrics.tick.buckets()
            tick_hist.add_metric([c], buckets, total)
            for (kind, outcome), hist in sorted(metrics.operations.items()):
                buckets, total = hist.buckets()
                op_hist.add_metric([c, kind, outcome], buckets, total)
            if m.scheduler is not None:     # backups exist only where the scheduler runs jobs
                for kind, at in sorted(_backup_successes(m.store.load().jobs).items()):
                    backup.add_metric([c, kind], at)
        yield from (up, role, ro, lag, io, sq, gtid, decision, failovers, switchovers, ticks, last_tick,
                    tick_hist, op_hist, backup)


def exposition(monitors: Mapping[str, ClusterMonitor], clusters: Iterable[str] | None = None) -> bytes:
    """The text a scrape answers: the visible clusters' metrics in Prometheus' exposition format."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(WatcherCollector(monitors, clusters))
    return generate_latest(registry)


__all__ = ["CONTENT_TYPE", "ClusterMetrics", "Histogram", "WatcherCollector", "exposition"]
