"""Many clusters in one process: one monitoring thread per cluster, one stop signal.

Each thread ticks every ``monitoring-ticker`` seconds (the tick's own duration
is subtracted, so a slow tick does not push the schedule), and at once when an
operation ends (the monitor's ``wake``): the next decision sees its outcome
without waiting a ticker. A bug in one tick is logged and the loop goes on: a
watcher that dies silently is the worst outcome.

With an ``ha:`` section several watchers share the clusters: an ``HaAgent`` keeps this
process's etcd lease and leader keys on its own thread, and each monitor, its runner and its
scheduler act only while ``Leadership.why_not()`` is empty; monitoring goes on regardless.
The clusters' state then lives in etcd (``EtcdStateStore``, registered for their state
directories), so the next leader continues from it.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Callable

from repman.watcher.cluster_config import ClusterConfig
from repman.watcher.config import WatcherConfig
from repman.watcher.ha.leadership import HaAgent
from repman.watcher.ha.settings import HaSettings
from repman.watcher.ha.state import etcd_store_factory
from repman.watcher.monitor import ClusterMonitor
from repman.watcher.scheduler import scheduler_for
from repman.watcher.state_store import use_store

logger = logging.getLogger("repman.watcher")


def cluster_logger(name: str) -> Callable[[str], None]:
    def log(message: str) -> None:
        logger.info("%s: %s", name, message)
    return log


class MonitorThread:
    """Runs one ``ClusterMonitor`` until ``stop`` is set."""

    def __init__(self, monitor: ClusterMonitor, stop: threading.Event) -> None:
        self.monitor = monitor
        self.stop = stop
        self.thread = threading.Thread(target=self.run, name=f"monitor-{monitor.name}", daemon=True)
        self.errors = 0

    def run(self) -> None:
        ticker = self.monitor.cfg.ticker
        while not self.stop.is_set():
            started = time.monotonic()
            try:
                self.monitor.tick()
                if self.monitor.scheduler is not None and self.monitor.acting:
                    self.monitor.scheduler.poll()   # starts due jobs on their own threads
            except Exception:  # noqa: BLE001 - keep monitoring whatever happened
                self.errors += 1
                logger.exception("%s: monitoring tick failed", self.monitor.name)
            if self.stop.is_set():
                break
            self.monitor.wake.wait(max(0.0, ticker - (time.monotonic() - started)))
            self.monitor.wake.clear()

    def halt(self) -> None:
        """Wake the thread so it sees ``stop`` now rather than after its ticker."""
        self.monitor.wake.set()


class Watcher:
    """All clusters of a config file, monitored together."""

    def __init__(self, config: WatcherConfig, clusters: list[str] | None = None, act: bool = True,
                 log_factory: Callable[[str], Callable[[str], None]] = cluster_logger) -> None:
        self.config = config
        names = clusters or list(config.clusters)
        self.stop_event = threading.Event()
        self.ha: HaAgent | None = None
        self._ha_said: dict[str, str] = {}
        if config.ha is not None:       # before the monitors: they open their state stores
            self.ha = HaAgent(config.ha, names, on_change=self._leadership_changed)
            for n in names:
                use_store(config.cluster(n).state_dir, etcd_store_factory(
                    self.ha.client, config.ha.key(n, "state"), self.ha.leadership(n), config.cluster(n).state_dir))
        self.monitors: dict[str, ClusterMonitor] = {
            n: ClusterMonitor(config.cluster(n), log=log_factory(n), act=act) for n in names
        }
        if self.ha is not None:
            for name, m in self.monitors.items():
                m.gate = m.runner.gate = self.ha.leadership(name).why_not
        if act:
            for m in self.monitors.values():
                m.scheduler = scheduler_for(m)
        self.threads = [MonitorThread(m, self.stop_event) for m in self.monitors.values()]

    def _leadership_changed(self, cluster: str, why_not: str) -> None:
        """Say it, and tick at once: a new leader acts without waiting a ticker."""
        m = self.monitors.get(cluster)
        if m is None or self._ha_said.get(cluster) == why_not:
            return
        self._ha_said[cluster] = why_not
        me = self.ha.name if self.ha is not None else ""
        m.log(f"ha: {why_not or f'this watcher ({me}) leads {cluster}'}")
        m.wake.set()

    @classmethod
    def for_clusters(cls, clusters: list[ClusterConfig], act: bool = True, ha: HaSettings | None = None,
                     log_factory: Callable[[str], Callable[[str], None]] = cluster_logger) -> Watcher:
        from pathlib import Path

        wc = WatcherConfig(Path("<memory>"), {c.name: c for c in clusters}, ha=ha)
        return cls(wc, act=act, log_factory=log_factory)

    def start(self) -> None:
        if self.ha is not None:
            self.ha.start()
        for t in self.threads:
            t.thread.start()

    def stop(self, timeout: float = 30.0, release: bool = True) -> None:
        """Stop ticking; let a running failover/rejoin finish (it must not be cut in half).
        ``release``: give up the etcd leadership at once (revoke the lease), rather than let it expire."""
        self.stop_event.set()
        for t in self.threads:
            t.halt()
        deadline = time.monotonic() + timeout
        for t in self.threads:
            if t.thread.ident is not None:
                t.thread.join(max(0.1, deadline - time.monotonic()))
        for m in self.monitors.values():
            m.wait_operation(max(0.1, deadline - time.monotonic()))
            m.close()
            if m.scheduler is not None:
                m.scheduler.close()
            if m.binlog_archiver is not None:
                m.binlog_archiver.stop()
        if self.ha is not None:
            self.ha.stop(release=release)    # after the operations: the next leader starts on a quiet cluster
            for m in self.monitors.values():
                use_store(m.cfg.state_dir, None)

    def wait(self, timeout: float | None = None) -> bool:
        return self.stop_event.wait(timeout)
