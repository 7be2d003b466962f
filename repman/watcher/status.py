"""What the CLI and the API show of a cluster, from a snapshot the monitor publishes each tick.

The monitor builds one immutable ``Snapshot`` at the end of a tick (and when an
operation changes the master) and swaps it in with one assignment, so a status
reader never waits on the monitor's lock nor sees half a tick.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping, Sequence

from repman.db import ServerAddress
from repman.topology import ServerState
from repman.watcher.analysis import Decision
from repman.watcher.checks import in_maintenance
from repman.watcher.cluster_config import ClusterConfig
from repman.watcher.election import same_server
from repman.watcher.result import OperationResult
from repman.watcher.state_store import ClusterState


@dataclass(frozen=True)
class Snapshot:
    """One tick's outcome as readers see it."""

    cluster: str
    master: ServerAddress | None = None
    decision: Decision | None = None
    decision_at: float = 0.0                    # epoch time the decision's sentence last changed
    candidate: ServerAddress | None = None
    failed_pings: int = 0
    ticks: int = 0
    last_tick_at: float = 0.0                   # time.monotonic() at the end of the last tick
    last_tick_seconds: float = 0.0
    states: Mapping[ServerAddress, ServerState] = field(default_factory=lambda: MappingProxyType({}))
    labels: Mapping[ServerAddress, str] = field(default_factory=lambda: MappingProxyType({}))
    last_seen: Mapping[ServerAddress, ServerState] = field(default_factory=lambda: MappingProxyType({}))


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


def read_targets(snapshot: Snapshot, servers: Sequence[ServerAddress], max_lag: float
                 ) -> tuple[list[ServerAddress], list[ServerAddress]]:
    """(replicas fit for reads, every other non-master server)."""
    healthy, unhealthy = [], []
    for a in servers:
        if a == snapshot.master:
            continue
        if replica_healthy(snapshot.states.get(a), snapshot.master, max_lag) and snapshot.labels.get(a) == "Slave":
            healthy.append(a)
        else:
            unhealthy.append(a)
    return healthy, unhealthy


def cluster_status(snapshot: Snapshot, cfg: ClusterConfig, persisted: ClusterState, operation: str,
                   last_result: OperationResult | None, schedule: list[Any],
                   operations: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The cluster's status document (``repman status --json``, ``/api/clusters/<name>``).

    Maintenance comes from ``persisted``, read by the caller just now: a server an operator
    just put in maintenance shows so before the next tick.
    """
    d = snapshot.decision
    maintenance = set(in_maintenance(cfg, persisted.maintenance))
    return {
        "cluster": snapshot.cluster,
        "master": snapshot.master.url if snapshot.master else None,
        "failover_mode": cfg.text("failover-mode"),
        "decision": None if d is None else {
            "action": d.action.value, "sentence": d.sentence, "rule": d.rule,
            "target": d.target.url if d.target else None, "since": snapshot.decision_at,
        },
        "failover_candidate": snapshot.candidate.url if snapshot.candidate else None,
        "failed_pings": snapshot.failed_pings,
        "failover_count": persisted.failover_count,
        "failover_limit": cfg.integer("failover-limit"),
        "last_failover_at": persisted.last_failover_at or None,
        "quarantined": dict(persisted.quarantined),
        "maintenance": list(persisted.maintenance),
        "operation": operation or None,
        "last_operation": last_result.as_dict() if last_result else None,
        "operations": list(operations or []),
        "ticks": snapshot.ticks,
        "jobs": persisted.jobs[-20:],
        "schedule": schedule,
        "servers": [server_status(snapshot.states.get(a), snapshot.labels.get(a, "Unknown"), a, snapshot.master,
                                  snapshot.last_seen.get(a), maintenance=a in maintenance)
                    for a in cfg.servers],
    }


__all__ = ["Snapshot", "cluster_status", "read_targets", "replica_healthy", "server_status"]
