"""Candidate election: which replica may become the master, and why the others may not.

Pure: it reads server snapshots and the cluster's settings, never the network, so
every rule is tested with plain data and the same answer is given to the monitor,
the CLI and the HA operations.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Collection, Literal

from repman.db import ServerAddress
from repman.gtid import GtidPosition
from repman.topology import ServerState
from repman.watcher.cluster_config import ClusterConfig

Purpose = Literal["switchover", "failover"]

_LOOPBACK = {"localhost", "127.0.0.1", "::1"}


@dataclass
class Election:
    """The elected candidate (or None) and, per excluded server url, a readable reason."""

    purpose: str
    candidate: ServerAddress | None
    reasons: dict[str, str] = field(default_factory=dict)
    why: str = ""                     # why the candidate won ("preferred master", "most advanced"...)

    @property
    def sentence(self) -> str:
        if self.candidate is not None:
            return f"{self.purpose} candidate {self.candidate.url} ({self.why})"
        if not self.reasons:
            return f"no {self.purpose} candidate: the cluster has no replica"
        parts = "; ".join(f"{url} {why}" for url, why in self.reasons.items())
        return f"no electable {self.purpose} candidate: {parts}"


def same_server(a: ServerAddress | None, b: ServerAddress | None) -> bool:
    """Equal addresses, treating the loopback spellings as one host."""
    if a is None or b is None:
        return False
    if a.port != b.port:
        return False
    return a.host == b.host or (a.host in _LOOPBACK and b.host in _LOOPBACK)


def io_position(state: ServerState) -> GtidPosition:
    """Events a server has received: Gtid_IO_Pos for a replica, its current position otherwise."""
    if state.replica is not None and state.replica.gtid_io_pos:
        received = GtidPosition.parse(state.replica.gtid_io_pos)
        current = state.current_pos
        # Relay log lost (restart) can leave Gtid_IO_Pos behind what was applied.
        merged = dict(current.by_domain)
        for d, g in received.by_domain.items():
            if g.seq >= current.seq(d):
                merged[d] = g
        return GtidPosition(merged)
    return state.current_pos


def errant_transactions(
    state: ServerState, others: Collection[ServerState],
) -> list[str]:
    """GTIDs written locally on a replica that no other server ever had.

    A replica's binlog holding a GTID of its own server_id beyond its applied
    slave position is a local write; it is errant unless another server of the
    cluster (the master, or a replica that got it) reached that sequence too.
    Comparing server ids, not only sequences, avoids false alarms from a master
    that kept writing between two snapshots.
    """
    if state.replica is None:
        return []
    binlog = state.binlog_pos
    slave = GtidPosition.parse(state.gtid_slave_pos)
    reached = [o.binlog_pos for o in others if o.reachable and o.address != state.address]
    out: list[str] = []
    for d, g in sorted(binlog.by_domain.items()):
        if g.server_id != state.server_id or g.seq <= slave.seq(d):
            continue
        if any(pos.seq(d) >= g.seq for pos in reached):
            continue
        out.append(str(g))
    return out


def _exclusion(
    cfg: ClusterConfig, state: ServerState | None, master: ServerAddress | None,
    master_state: ServerState | None, purpose: str, all_states: Collection[ServerState],
    maintenance: Collection[ServerAddress], quarantined: Collection[str],
) -> str | None:
    """The reason a server cannot be elected, or None when it is electable."""
    if state is None:
        return "was not monitored"
    addr = state.address
    if any(same_server(addr, i) for i in cfg.hosts("db-servers-ignored-hosts")):
        return "is listed in db-servers-ignored-hosts"
    if addr.url in quarantined:
        detail = quarantined.get(addr.url) if isinstance(quarantined, dict) else ""
        return f"is quarantined ({detail})" if detail else "is quarantined"
    if any(same_server(addr, m) for m in maintenance):
        return "is in maintenance"
    if not state.reachable:
        return f"is unreachable ({state.error or 'no answer'})"
    if not state.log_bin:
        return "has no binary log (log_bin is off)"
    rep = state.replica
    if rep is None:
        return "is not a replica"
    if master is not None and not same_server(rep.master, master):
        return f"replicates from {rep.master.url}, not from the master {master.url}"
    if rep.filters:
        return f"has replication filters ({rep.filters})"
    checks = cfg.flag("check-replication-state")
    if checks and rep.sql_running != "Yes":
        err = f": {rep.last_sql_error}" if rep.last_sql_error else ""
        return f"has its SQL thread stopped{err}"
    if checks and purpose == "switchover" and rep.io_running != "Yes":
        err = f": {rep.last_io_error}" if rep.last_io_error else ""
        return f"has its IO thread {'stopped' if rep.io_running == 'No' else rep.io_running.lower()}{err}"
    max_delay = cfg.seconds("failover-max-slave-delay")
    if checks and max_delay >= 0 and rep.seconds_behind is not None and rep.seconds_behind > max_delay:
        return f"lags {rep.seconds_behind}s behind the master, over failover-max-slave-delay {max_delay:g}s"
    errant = errant_transactions(state, all_states)
    if errant:
        return f"has errant transactions the master never had ({', '.join(errant)})"
    if purpose == "switchover" and cfg.flag("switchover-at-equal-gtid"):
        if master_state is None or not master_state.reachable:
            return "cannot be compared with the master's GTID (master unreachable)"
        if state.current_pos != master_state.binlog_pos:
            return (f"is at GTID {state.current_pos or 'empty'}, not at the master's "
                    f"{master_state.binlog_pos or 'empty'} (switchover-at-equal-gtid)")
    return None


def _rank(state: ServerState) -> tuple[int, int]:
    return (io_position(state).total(), state.current_pos.total())


def preferred_masters(cfg: Any) -> list[ServerAddress]:
    """``db-servers-prefered-master`` as a list (repman's type); a single address is accepted too."""
    value = cfg.get("db-servers-prefered-master")
    if value is None or value == "":
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def elect(
    cfg: ClusterConfig,
    states: dict[ServerAddress, ServerState],
    master: ServerAddress | None,
    purpose: Purpose,
    to: ServerAddress | None = None,
    maintenance: Collection[ServerAddress] = (),
    quarantined: Collection[str] = (),
) -> Election:
    """Elect the new master among the replicas of ``master``.

    Rules in order: never the master itself; skip ignored, quarantined, in-maintenance,
    unreachable servers, servers without binlog, with filters, with a stopped SQL thread
    (IO thread too for a switchover), lagging over ``failover-max-slave-delay``, with
    errant transactions, or (``switchover-at-equal-gtid``) not at the master's GTID.
    ``to`` forces the choice or explains the refusal; otherwise the preferred master
    wins when electable, else the most advanced (received, then applied events).
    ``quarantined`` may be a dict url -> reason (the state store's) for better reasons.
    """
    master_state = states.get(master) if master is not None else None
    all_states = list(states.values())
    reasons: dict[str, str] = {}
    electable: list[ServerState] = []
    for addr in cfg.servers:
        if same_server(addr, master):
            continue
        reason = _exclusion(cfg, states.get(addr), master, master_state, purpose, all_states,
                            maintenance, quarantined)
        if reason is None:
            electable.append(states[addr])
        else:
            reasons[addr.url] = reason

    if to is not None:
        target = next((a for a in cfg.servers if same_server(a, to)), None)
        if target is None:
            return Election(purpose, None, {to.url: "is not a server of this cluster"})
        if same_server(target, master):
            return Election(purpose, None, {target.url: "is already the master"})
        if target.url in reasons:
            return Election(purpose, None, {target.url: reasons[target.url]})
        return Election(purpose, target, reasons, why="requested")

    if not electable:
        return Election(purpose, None, reasons)
    preferred_list = preferred_masters(cfg)
    order = {a: i for i, a in enumerate(cfg.servers)}
    best = max(electable, key=lambda s: (_rank(s), -order.get(s.address, 0)))
    pos = io_position(best)
    note = ""
    for preferred in preferred_list:      # repman's list: the first electable one wins
        for s in electable:
            if not same_server(s.address, preferred):
                continue
            # A switchover lets every replica catch up with the frozen master first. A failover
            # cannot: a preferred master that received less would lose acknowledged writes.
            if purpose == "switchover" or io_position(s).total() >= pos.total():
                return Election(purpose, s.address, reasons, why="preferred master")
            note += f"; preferred master {s.address.url} received less ({io_position(s) or 'nothing'})"
    why = f"most advanced, received {pos or 'nothing'}{note}"
    for preferred in preferred_list:
        if preferred.url in reasons:
            why += f"; preferred master {preferred.url} {reasons[preferred.url]}"
    return Election(purpose, best.address, reasons, why=why)
