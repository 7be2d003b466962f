"""One tick's facts from the servers' states and what the monitor remembers between ticks.

``derive_facts`` is pure: the monitor reads the servers and the state store, passes
them in with its ``Memory`` and the clocks, and gets back the ``Facts`` that
``analysis.analyse`` decides on, the next ``Memory``, and the effects to apply (log
lines, state-store writes). Every subtle derivation (heartbeat growth, the replicas'
agreement that they lost the master, the rejoin confirmation, the lag kept after the
master died) is therefore a table test without a server.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Collection, Mapping, TypeVar

from repman.db import ServerAddress
from repman.topology import ServerState
from repman.watcher.analysis import Decision, Facts, master_state_label
from repman.watcher.checks import in_maintenance
from repman.watcher.cluster_config import ClusterConfig
from repman.watcher.crash import unfinished_promotion
from repman.watcher.demote import own_beyond
from repman.watcher.election import elect, same_server
from repman.watcher.lag import fill_unknown_lag, lag_readings
from repman.watcher.primary import find_primary
from repman.watcher.state_store import ClusterState

REJOIN_CONFIRM_TICKS = 2      # a server must look detached this many ticks before a rejoin

K = TypeVar("K")
V = TypeVar("V")


def _frozen(mapping: Mapping[K, V]) -> Mapping[K, V]:
    """A read-only copy: memory is shared with the status readers of other threads."""
    return MappingProxyType(dict(mapping))


@dataclass(frozen=True)
class Sample:
    """What one replica reported about its master at one instant."""

    heartbeats: int
    received: str
    io_running: str


Samples = Mapping[ServerAddress, Sample]
History = tuple[tuple[float, Samples], ...]


@dataclass(frozen=True)
class Memory:
    """What the monitor keeps from one tick to the next; replaced, never changed."""

    master: ServerAddress | None = None
    failed_pings: int = 0                           # consecutive ticks the master did not answer
    history: History = ()                           # (monotonic time, samples of the master's replicas)
    history_size: int = 10                          # ticks spanning the heartbeat window, and some
    fails: Mapping[ServerAddress, int] = field(default_factory=lambda: _frozen({}))
    last_seen: Mapping[ServerAddress, ServerState] = field(default_factory=lambda: _frozen({}))
    whole_down: bool = False                        # every server was unreachable since the master last answered
    read_only_ticks: int = 0                        # consecutive ticks the master answered read-only
    detached: Mapping[ServerAddress, int] = field(default_factory=lambda: _frozen({}))
    lag_while_master_answered: Mapping[str, tuple[float, float]] = field(default_factory=lambda: _frozen({}))
    no_replica_since: float | None = None           # monotonic time the master lost its last replica
    server_maintenance: frozenset[ServerAddress] = frozenset()
    maintenance: bool = False                       # the whole cluster is in maintenance
    labels: Mapping[ServerAddress, str] = field(default_factory=lambda: _frozen({}))
    states: Mapping[ServerAddress, ServerState] = field(default_factory=lambda: _frozen({}))

    @classmethod
    def start(cls, cfg: ClusterConfig, master: ServerAddress | None) -> Memory:
        """A fresh memory whose history spans the heartbeat window (capped for tiny tickers)."""
        window = cfg.seconds("failover-falsepositive-heartbeat-timeout")
        size = min(10000, int((window + 2.0) / max(cfg.ticker, 0.01)) + 5)
        return cls(master=master, history_size=size)

    def with_labels(self, labels: Mapping[ServerAddress, str]) -> Memory:
        return dataclasses.replace(self, labels=_frozen(labels))

    def with_primary(self, master: ServerAddress) -> Memory:
        """An operation promoted ``master``: its pings and heartbeat history start over."""
        return dataclasses.replace(self, master=master, failed_pings=0, history=())


# -- effects: what the monitor must do with the outcome, by owner ----------------------------------
@dataclass(frozen=True)
class LogLine:
    message: str


@dataclass(frozen=True)
class KeepLagSeen:
    """Store the replicas' lag of the last tick the master answered (they report NULL from now on)."""

    readings: Mapping[str, tuple[float, float]]

    def as_store_value(self) -> dict[str, list[float]]:
        return {url: list(reading) for url, reading in self.readings.items()}


@dataclass(frozen=True)
class KeepEventScheduler:
    """Store whether the master runs the event scheduler: a later failover starts it on the new one."""

    on: bool


Effect = LogLine | KeepLagSeen | KeepEventScheduler


# -- derivations ---------------------------------------------------------------------------------------
def samples_of(states: Mapping[ServerAddress, ServerState], master: ServerAddress | None
               ) -> dict[ServerAddress, Sample]:
    """The heartbeat counter, received position and IO thread of every reachable replica of ``master``."""
    out = {}
    for a, s in states.items():
        if s.reachable and s.replica is not None and same_server(s.replica.master, master):
            out[a] = Sample(s.replica.received_heartbeats, s.replica.gtid_io_pos, s.replica.io_running)
    return out


def alive_observers(history: History, now: float, current: Samples, window: float, period: float
                    ) -> tuple[bool, tuple[tuple[ServerAddress, str], ...]]:
    """(window ready, replicas that still hear the master between a sample one window ago and now)."""
    base = None
    for at, samples in reversed(history):
        if at <= now - window:
            base = (at, samples)
            break
    if base is None:
        return window <= 0, ()
    at, before = base
    span = max(now - at, 1e-6)
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


def agreement(history: History, current: Samples
              ) -> tuple[tuple[ServerAddress, ...], tuple[tuple[ServerAddress, str], ...]]:
    """(replicas that lost the master, replicas that do not agree and why), from this tick's
    snapshot against the previous tick's.

    Every reachable replica of the master is an observer, in maintenance or ignored too:
    it lost the master when its IO thread is not connected ("Connecting", "No") and neither
    its heartbeat counter nor its received position moved since the previous reading.
    """
    before = history[-1][1] if history else {}
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


def rejoin_needed(cfg: ClusterConfig, states: Mapping[ServerAddress, ServerState], master: ServerAddress | None,
                  quarantined: Mapping[str, str], maintenance: Collection[ServerAddress],
                  labels: Mapping[ServerAddress, str], detached: Mapping[ServerAddress, int],
                  ) -> tuple[list[tuple[ServerAddress, str]], dict[ServerAddress, int]]:
    """(servers detached for REJOIN_CONFIRM_TICKS ticks and why, the new detached counts).

    ``labels`` are the previous tick's: a server that was Failed or Suspect and is back
    explains itself differently from one that drifted away.
    """
    out = []
    counts = dict(detached)
    followers = {s.replica.master for s in states.values() if s.reachable and s.replica}
    replicas_read_only = cfg.flag("failover-readonly-state")
    for addr in cfg.servers:
        s = states[addr]
        if (same_server(addr, master) or not s.reachable or addr.url in quarantined
                or addr in maintenance):
            counts.pop(addr, None)
            continue
        why = ""
        if s.replica is None:
            if not any(same_server(addr, f) for f in followers):
                why = "is back as a standalone server" if labels.get(addr) == "Failed" else \
                    "replicates from nobody"
        elif not same_server(s.replica.master, master):
            why = f"replicates from {s.replica.master.url}, not from the master {master}"
        elif replicas_read_only and (own := own_beyond(s.gtid_binlog_pos, s.server_id, s.gtid_slave_pos)):
            # Writes of its own (it was made writable): errant, to undo. With
            # failover-readonly-state off replicas are writable on purpose: left alone.
            why = f"wrote {', '.join(own)} itself while a replica"
        elif (s.replica.io_running == "No" and s.replica.sql_running == "No"
              and labels.get(addr) in ("Failed", "Suspect")):
            why = "is back with replication stopped"
        if why:
            counts[addr] = counts.get(addr, 0) + 1
            if counts[addr] >= REJOIN_CONFIRM_TICKS:
                out.append((addr, why))
        else:
            counts.pop(addr, None)
    return out, counts


def stray_writable(cfg: ClusterConfig, states: Mapping[ServerAddress, ServerState], master: ServerAddress | None,
                   maintenance: Collection[ServerAddress] = ()) -> list[tuple[ServerAddress, str]]:
    """Servers other than the master that take writes: each is a second master.

    A writable non-replica always (an old master back without ``read_only``, a server
    opened by hand); a writable replica when ``failover-readonly-state`` keeps replicas
    read-only and an operator has not put it in maintenance.
    """
    if master is None:
        return []
    replicas_read_only = cfg.flag("failover-readonly-state")
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


def broken_replicas(states: Mapping[ServerAddress, ServerState], replicas: Collection[ServerAddress]
                    ) -> tuple[tuple[ServerAddress, str], ...]:
    """Reachable replicas whose replication stopped on an error, with the error."""
    broken = []
    for a in replicas:
        rep = states[a].replica if states[a].reachable else None
        if rep is None:
            continue
        if rep.sql_running != "Yes" and rep.last_sql_error:
            broken.append((a, f"SQL thread stopped: {rep.last_sql_error}"))
        elif rep.io_running == "No" and rep.last_io_error:
            broken.append((a, f"IO thread stopped: {rep.last_io_error}"))
    return tuple(broken)


def primary_of(cfg: ClusterConfig, states: Mapping[ServerAddress, ServerState], persisted: ClusterState,
               previous: ServerAddress | None) -> ServerAddress | None:
    """The master this tick: the primary finder's answer, never the latest failover's deposed master
    (no flip-flop back to it)."""
    latest = persisted.crashes[-1] if persisted.crashes else None
    return find_primary(dict(states), cfg.servers, latest, previous).address


def _with_lag_filled(states: Mapping[ServerAddress, ServerState], lag_seen: Mapping[str, tuple[float, float]] |
                     Mapping[str, list[float]]) -> dict[ServerAddress, ServerState]:
    """Copies of the states where a NULL lag takes the reading of the last tick the master answered
    (``lag.fill_unknown_lag``), the caller's states untouched."""
    copied = {a: dataclasses.replace(s, replica=dataclasses.replace(s.replica))
              if s.reachable and s.replica is not None and s.replica.seconds_behind is None else s
              for a, s in states.items()}
    fill_unknown_lag(copied, {url: list(reading) for url, reading in lag_seen.items()})
    return copied


def derive_facts(memory: Memory, cfg: ClusterConfig, states: Mapping[ServerAddress, ServerState],
                 persisted: ClusterState, now: float, running: str, *, wall: float,
                 ) -> tuple[Facts, Memory, list[Effect]]:
    """This tick's facts, the next memory and the effects to apply.

    ``now`` is the monitor's monotonic clock (heartbeat window, no-replica time), ``wall``
    the epoch time (lag readings, time since the last failover); ``running`` describes
    the operation in progress ("" when none); ``persisted`` is the state store's content.
    """
    effects: list[Effect] = []
    server_maintenance = frozenset(in_maintenance(cfg, persisted.maintenance))
    previous_master = memory.master
    master = primary_of(cfg, states, persisted, previous_master)
    failed_pings, history = memory.failed_pings, memory.history
    if master != previous_master:
        failed_pings, history = 0, ()
        if previous_master is not None:
            effects.append(LogLine(f"master is now {master} (was {previous_master})"))

    master_state = states.get(master) if master else None
    reachable = bool(master_state and master_state.reachable)
    seen = dict(states)     # as this tick saw them: a NULL lag filled once the master is gone
    if master is not None and not reachable:
        seen = _with_lag_filled(seen, memory.lag_while_master_answered or persisted.lag_seen)
        master_state = seen.get(master)

    last_seen, fails = dict(memory.last_seen), dict(memory.fails)
    for a, s in seen.items():
        if s.reachable:
            last_seen[a] = s
            fails.pop(a, None)
        else:
            fails[a] = fails.get(a, 0) + 1
    whole_down = memory.whole_down or not any(s.reachable for s in seen.values())
    previous_pings = failed_pings
    failed_pings = 0 if reachable else failed_pings + 1
    lag_kept = memory.lag_while_master_answered
    if reachable:
        lag_kept = _frozen({url: (r[0], r[1]) for url, r in lag_readings(seen, wall).items()})
        whole_down = False
    elif previous_pings == 0 and master is not None:
        effects.append(KeepLagSeen(lag_kept))
    read_only_ticks = memory.read_only_ticks + 1 if master_state is not None and reachable and master_state.read_only \
        else 0

    samples = samples_of(seen, master)
    window = cfg.seconds("failover-falsepositive-heartbeat-timeout")
    period = cfg.seconds("replication-heartbeat-period")
    ready, observers = alive_observers(history, now, samples, window, period) if not reachable else (True, ())
    agree = cfg.flag("failover-falsepositive-replicas-agree")
    lost_by, still_hear = agreement(history, samples) if agree and not reachable else ((), ())
    history = (*history, (now, _frozen(samples)))[-memory.history_size:]

    if (master_state is not None and reachable and not running and not master_state.read_only
            and persisted.master_event_scheduler != (on := master_state.event_scheduler.upper() == "ON")):
        effects.append(KeepEventScheduler(on))
    replicas = tuple(a for a in cfg.servers if a != master and (known := last_seen.get(a))
                     and known.replica is not None and same_server(known.replica.master, master))
    candidate, no_reason = None, ""
    if master is not None and not reachable:
        election = elect(cfg, seen, master, "failover", maintenance=server_maintenance,
                         quarantined=persisted.quarantined)
        candidate = election.candidate
        no_reason = "; ".join(f"{u} {w}" for u, w in election.reasons.items())
    rejoin: list[tuple[ServerAddress, str]] = []
    detached: Mapping[ServerAddress, int] = memory.detached     # counted only while the master answers
    if master and reachable:
        rejoin, detached = rejoin_needed(cfg, seen, master, persisted.quarantined, server_maintenance,
                                         memory.labels, memory.detached)
    followers = {s.replica.master for s in seen.values() if s.reachable and s.replica}
    other_writable = tuple(
        a for a in cfg.servers
        if a != master and seen[a].reachable and seen[a].replica is None
        and not seen[a].read_only and any(same_server(a, f) for f in followers)
    )
    since = (wall - persisted.last_failover_at) if persisted.last_failover_at else None
    quarantined = tuple((a, persisted.quarantined[a.url]) for a in cfg.servers
                        if a.url in persisted.quarantined and seen[a].reachable)
    connected = sum(1 for a in cfg.servers if a != master and (s := seen[a]).reachable
                    and s.replica is not None and same_server(s.replica.master, master)
                    and s.replica.io_running == "Yes")
    no_replica_since = memory.no_replica_since
    if not reachable or connected:
        no_replica_since = None
    elif no_replica_since is None:
        no_replica_since = now

    facts = Facts(
        semisync_managed=cfg.flag("semisync"),
        semisync_master_on=bool(master_state and master_state.semisync_master),
        connected_replicas=connected,
        no_replica_for=(now - no_replica_since) if no_replica_since is not None else 0.0,
        async_fallback_after=cfg.seconds("failover-semisync-async-fallback"),
        master=master, master_reachable=reachable,
        master_error=(master_state.error if master_state and not reachable else ""),
        failed_pings=failed_pings, ping_threshold=cfg.integer("failover-falsepositive-ping-counter"),
        previous_failed_pings=previous_pings if reachable else 0,
        replicas=replicas, replicas_reachable=sum(1 for a in replicas if seen[a].reachable),
        heartbeat_check=cfg.flag("failover-falsepositive-heartbeat"), heartbeat_window_ready=ready,
        alive_observers=observers, failover_mode=cfg.text("failover-mode"),
        replicas_agree=agree, replicas_agree_pings=cfg.integer("failover-falsepositive-replicas-agree-pings"),
        lost_by=lost_by, still_hear=still_hear,
        failover_count=persisted.failover_count, failover_limit=cfg.integer("failover-limit"),
        since_last_failover=since, failover_time_limit=cfg.seconds("failover-time-limit"),
        candidate=candidate, no_candidate_reason=no_reason, maintenance=memory.maintenance,
        operation_running=running,
        whole_cluster_was_down=whole_down, restart_unsafe=cfg.flag("failover-restart-unsafe"),
        other_writable=other_writable, master_read_only=read_only_ticks >= 2,
        master_read_only_now=read_only_ticks >= 1,
        promotion_unfinished=unfinished_promotion(persisted.crashes[-1] if persisted.crashes else None, master),
        rejoin_needed=tuple(rejoin), autorejoin=cfg.flag("autorejoin"), quarantined=quarantined,
        broken_replicas=broken_replicas(seen, replicas), servers=len(cfg.servers),
        autoseed=cfg.flag("autoseed"),
        unreachable_replicas=tuple(a for a in cfg.servers if a != master and not seen[a].reachable),
        stray_writable=tuple(stray_writable(cfg, seen, master, server_maintenance)),
        master_maintenance=master in server_maintenance,
        in_maintenance=tuple(a for a in cfg.servers if a in server_maintenance),
    )
    remembered = dataclasses.replace(
        memory, master=master, failed_pings=failed_pings, history=history, fails=_frozen(fails),
        last_seen=_frozen(last_seen), whole_down=whole_down, read_only_ticks=read_only_ticks,
        detached=_frozen(detached), lag_while_master_answered=lag_kept, no_replica_since=no_replica_since,
        server_maintenance=server_maintenance, states=_frozen(seen),
    )
    return facts, remembered, effects


def server_labels(cfg: ClusterConfig, memory: Memory, states: Mapping[ServerAddress, ServerState],
                  decision: Decision, facts: Facts, quarantined: Mapping[str, str]) -> dict[ServerAddress, str]:
    """Every server's state word (Master, Suspect, Failed, Slave, Standalone, Maintenance) after
    the decision; ``memory`` is this tick's (its master, failure counts, maintenance)."""
    threshold = cfg.integer("failover-falsepositive-ping-counter")
    out = {}
    for a in cfg.servers:
        s = states[a]
        if a == memory.master:
            out[a] = master_state_label(decision, facts)
        elif a in memory.server_maintenance or a.url in quarantined or memory.maintenance:
            out[a] = "Maintenance"
        elif not s.reachable:
            out[a] = "Suspect" if memory.fails.get(a, 0) < threshold else "Failed"
        elif s.replica is not None:
            out[a] = "Slave"
        else:
            out[a] = "Standalone"
    return out


__all__ = [
    "REJOIN_CONFIRM_TICKS", "Effect", "KeepEventScheduler", "KeepLagSeen", "LogLine", "Memory", "Sample",
    "agreement", "alive_observers", "broken_replicas", "derive_facts", "primary_of", "rejoin_needed",
    "samples_of", "server_labels", "stray_writable",
]
